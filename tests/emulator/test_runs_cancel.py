"""``POST /orchestration/runs/cancel`` (REFERENCE §3.5) over loopback HTTP with the manual clock.

A pending or running run reads ``cancelling`` at once, ``cancelled`` one simulated second later, and no node
starts after the cancel, so it spends no further credits.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator

CANCEL = "/orchestration/runs/cancel"


def _tool(emu: CargoEmulator, name: str = "Enrich company") -> str:
    return str(emu.store.tool_by_name(name)["workflowUuid"])


def _single_run(emu: CargoEmulator, api: httpx.Client, domain: str = "acme.io") -> dict[str, Any]:
    r = api.post("/orchestration/runs", json={"workflowUuid": _tool(emu), "data": {"domain": domain}})
    assert r.status_code == 200, r.text
    return dict(r.json()["run"])


def _run(api: httpx.Client, uuid: str) -> dict[str, Any]:
    return dict(api.get(f"/orchestration/runs/{uuid}").json()["run"])


def test_pending_single_run_is_cancelled_and_spends_nothing(emu: CargoEmulator, api: httpx.Client) -> None:
    run = _single_run(emu, api)
    assert run["status"] == "pending"
    before = emu.credits_used
    r = api.post(CANCEL, json={"workflowUuid": run["workflowUuid"], "uuids": [run["uuid"]]})
    assert r.status_code == 200 and r.json() == {}
    cancelling = _run(api, run["uuid"])
    assert cancelling["status"] == "cancelling" and cancelling["finishedAt"] is None
    emu.advance(1.0)
    done = _run(api, run["uuid"])
    assert done["status"] == "cancelled" and done["finishedAt"] is not None and done["executions"] == []
    emu.advance(60)
    assert _run(api, run["uuid"]) == done  # nothing moves after the cancel
    assert emu.credits_used == before == 0.0
    assert [(i.status, i.node_statuses) for i in emu.runs()] == [("cancelled", ())]
    finished = api.post("/orchestration/runs/count", json={"workflowUuid": run["workflowUuid"],
                                                           "isFinished": True, "statuses": ["cancelled"]})
    assert finished.json() == {"count": 1}


def test_running_run_stops_after_the_node_in_flight(emu: CargoEmulator, api: httpx.Client) -> None:
    """Enrich company: start (native) → enrich_company (2 credits, 1–5 s) → output. Cancelled while the paid
    node executes: that node may still complete within the cancelling second, nothing after it starts."""
    run = _single_run(emu, api)
    spec = emu.store.spec_for(run["workflowUuid"])
    emu.advance(1.0 + spec.nodes[0].max_seconds + 0.01)  # pending 1 s, then start done: enrich in flight
    seen = _run(api, run["uuid"])
    assert seen["status"] == "running"
    assert [e["nodeSlug"] for e in seen["executions"]] == ["start", "enrich_company"]
    api.post(CANCEL, json={"workflowUuid": run["workflowUuid"], "uuids": [run["uuid"]]}).raise_for_status()
    assert _run(api, run["uuid"])["status"] == "cancelling"
    emu.advance(60)
    done = _run(api, run["uuid"])
    assert done["status"] == "cancelled"
    executed = [e["nodeSlug"] for e in done["executions"]]
    assert "output" not in executed and executed[0] == "start"
    paid = sum(e["creditsUsedCount"] for e in done["executions"])
    assert emu.store.provider_credits_used == paid
    assert emu.credits_used == pytest.approx(paid + 0.01 * len(executed))


def test_filter_shape_cancels_only_unfinished_runs_of_that_workflow(emu: CargoEmulator,
                                                                    api: httpx.Client) -> None:
    wf = _tool(emu)
    finished = _single_run(emu, api, "done.io")
    emu.advance(60)
    assert _run(api, finished["uuid"])["status"] in ("success", "error")
    a, b = _single_run(emu, api, "a.io"), _single_run(emu, api, "b.io")
    other = api.post("/orchestration/runs", json={"workflowUuid": _tool(emu, "Normalize domain"),
                                                  "data": {"domain": "x.io"}}).json()["run"]
    r = api.post(CANCEL, json={"workflowUuid": wf, "recordTitleOrId": "a.io"})
    assert r.status_code == 200
    emu.advance(1.0)
    assert _run(api, a["uuid"])["status"] == "cancelled"
    assert _run(api, b["uuid"])["status"] in ("pending", "running")
    api.post(CANCEL, json={"workflowUuid": wf}).raise_for_status()  # no filter: every unfinished run
    emu.advance(60)
    assert _run(api, b["uuid"])["status"] == "cancelled"
    assert _run(api, finished["uuid"])["status"] in ("success", "error")  # finished runs are left alone
    assert _run(api, other["uuid"])["status"] in ("success", "error")  # other workflow untouched


def test_cancelling_some_runs_of_a_batch_lets_the_batch_finish(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = _tool(emu)
    records = [{"domain": f"d{i}.io"} for i in range(15)]  # 10 slots: the last 5 wait
    b = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records",
                                                                              "records": records}}).json()["batch"]
    emu.advance(3.0)  # pending 1 s + querying 2 s: runs created
    runs = api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"], "limit": 100}).json()["runs"]
    waiting = [r["uuid"] for r in runs if r["status"] == "pending"]
    assert len(runs) == 15 and waiting
    api.post(CANCEL, json={"workflowUuid": wf, "uuids": waiting}).raise_for_status()
    emu.advance(600)
    batch = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
    assert batch["status"] == "success" and batch["finishedAt"] is not None
    assert batch["executedRunsCount"] == 15 - len(waiting)  # cancelled runs are finished, not executed
    statuses = {r.uuid: r.status for r in emu.runs(b["uuid"])}
    assert {statuses[u] for u in waiting} == {"cancelled"}
    assert all(r.node_statuses == () for r in emu.runs(b["uuid"]) if r.uuid in waiting)


def test_a_batch_whose_runs_are_all_cancelled_ends_cancelled(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = _tool(emu)
    b = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records", "records": [
        {"domain": "a.io"}, {"domain": "b.io"}]}}).json()["batch"]
    emu.advance(3.0)
    api.post(CANCEL, json={"workflowUuid": wf, "batchUuid": b["uuid"]}).raise_for_status()
    emu.advance(1.0)
    batch = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
    assert batch["status"] == "cancelled" and batch["executedRunsCount"] == 0
    assert api.post(f"/orchestration/batches/{b['uuid']}/cancel").json()["reason"] == "batchAlreadyFinished"


def test_cancel_of_a_finished_or_unknown_run_is_a_no_op(emu: CargoEmulator, api: httpx.Client) -> None:
    run = _single_run(emu, api)
    emu.advance(60)
    done = _run(api, run["uuid"])
    r = api.post(CANCEL, json={"workflowUuid": run["workflowUuid"], "uuids": [run["uuid"], "no-such-run"]})
    assert r.status_code == 200 and r.json() == {}
    emu.advance(5)
    assert _run(api, run["uuid"]) == done


def test_cancel_twice_keeps_one_cancel(emu: CargoEmulator, api: httpx.Client) -> None:
    run = _single_run(emu, api)
    body = {"workflowUuid": run["workflowUuid"], "uuids": [run["uuid"]]}
    api.post(CANCEL, json=body).raise_for_status()
    emu.advance(0.5)
    api.post(CANCEL, json=body).raise_for_status()  # still cancelling: the first cancel stands
    emu.advance(0.5)
    assert _run(api, run["uuid"])["status"] == "cancelled"


@pytest.mark.parametrize(("body", "reason", "path"), [
    ({"uuids": ["x"]}, "invalid_type", ["workflowUuid"]),
    ({"workflowUuid": "WF", "uuids": "x"}, "invalid_type", ["uuids"]),
    ({"workflowUuid": "WF", "uuids": ["x"], "batchUuid": "b"}, "invalid_union", []),
    ({"workflowUuid": "WF", "statuses": ["pending"]}, "unrecognized_keys", []),  # not a cancel filter field
    ({"workflowUuid": "WF", "limit": 5}, "unrecognized_keys", []),
])
def test_body_validation(emu: CargoEmulator, api: httpx.Client, body: dict[str, Any], reason: str,
                         path: list[str]) -> None:
    body = {k: (_tool(emu) if v == "WF" else v) for k, v in body.items()}
    r = api.post(CANCEL, json=body)
    assert r.status_code == 400 and r.json()["reason"] == reason
    assert r.json()["issues"][0]["path"] == path


def test_unknown_workflow_is_failed_to_start(emu: CargoEmulator, api: httpx.Client) -> None:
    r = api.post(CANCEL, json={"workflowUuid": "00000000-0000-0000-0000-000000000000", "uuids": []})
    assert r.status_code == 400
    assert r.json() == {"errorMessage": "Failed to cancel runs.", "reason": "failedToStart"}
