"""The failure plan: chosen records fail their first N runs and then succeed, or always fail (Python, control
plane and CLI)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.control import main as ctl_main
from cargo_gtm_emulator.failure_plan import PERMANENT_MESSAGE, TRANSIENT_MESSAGE

from .conftest import TOKEN, run_to_completion

RECORDS = [{"domain": f"company{i}.com", "company_name": f"Co {i}"} for i in range(6)]


def _tool_batch(emu: CargoEmulator, api: httpx.Client, records: list[dict[str, Any]]) -> dict[str, Any]:
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    r = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records", "records": records}})
    assert r.status_code == 200, r.text
    return run_to_completion(emu, api, r.json()["batch"]["uuid"])


def _statuses(emu: CargoEmulator, batch_uuid: str) -> dict[str, str]:
    return {r.input["domain"]: r.status for r in emu.runs(batch_uuid)}


@pytest.fixture()
def quiet() -> Any:
    """No failures but the planned ones."""
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.0, clock="manual") as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
        yield emu, api


def test_transient_failures_end_after_n_runs(quiet: Any) -> None:
    emu, api = quiet
    plan = emu.plan_failures({"domain=company1.com": 1, "domain=company4.com": 2})
    assert [(e["key"], e["times"]) for e in plan] == [("domain=company1.com", 1), ("domain=company4.com", 2)]
    first = _tool_batch(emu, api, RECORDS)
    assert first["failedRunsCount"] == 2
    assert {d for d, s in _statuses(emu, first["uuid"]).items() if s == "error"} == {"company1.com", "company4.com"}
    errors = [r.error for r in emu.runs(first["uuid"]) if r.status == "error"]
    assert all(e is not None and e.endswith(TRANSIENT_MESSAGE) for e in errors)
    # a retry of the two: company1 has used up its one failure, company4 fails once more, then succeeds
    second = _tool_batch(emu, api, [RECORDS[1], RECORDS[4]])
    assert _statuses(emu, second["uuid"]) == {"company1.com": "success", "company4.com": "error"}
    third = _tool_batch(emu, api, [RECORDS[4]])
    assert _statuses(emu, third["uuid"]) == {"company4.com": "success"}
    counts = {e["key"]: e["failed"] for e in emu.failure_plan}
    assert list(counts["domain=company1.com"].values()) == [1] and list(counts["domain=company4.com"].values()) == [2]


def test_always_fails_and_by_record_id_on_a_play(quiet: Any) -> None:
    emu, api = quiet
    play = emu.store.play_by_name("Score inbound companies")
    emu.plan_failures({"cmp_0002": "always"}, workflow="Score inbound companies")
    emu.plan_failures({"cmp_0002": 5}, workflow="Enrich company")  # another workflow's entry does not apply
    data = {"kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0001", "cmp_0002", "cmp_0003"]}
    for _ in range(3):
        b = api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": data}).json()
        done = run_to_completion(emu, api, b["batch"]["uuid"])
        runs = {r.record_id: r for r in emu.runs(done["uuid"])}
        assert {k: r.status for k, r in runs.items()} == {"cmp_0001": "success", "cmp_0002": "error",
                                                            "cmp_0003": "success"}
        assert runs["cmp_0002"].error is not None and runs["cmp_0002"].error.endswith(PERMANENT_MESSAGE)


def test_zero_overrides_the_failure_rate_and_clear_restores_it() -> None:
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=1.0, clock="manual") as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
        emu.plan_failures({"domain=company0.com": 0})
        b = _tool_batch(emu, api, RECORDS[:2])
        assert _statuses(emu, b["uuid"]) == {"company0.com": "success", "company1.com": "error"}
        emu.clear_failure_plan()
        assert emu.failure_plan == []
        b = _tool_batch(emu, api, RECORDS[:1])
        assert _statuses(emu, b["uuid"]) == {"company0.com": "error"}
        emu.plan_failures({"domain=company0.com": 0})
        emu.reset()
        assert emu.failure_plan == []


def test_bad_plans_are_refused(quiet: Any) -> None:
    emu, api = quiet
    for bad in ({"x": -1}, {"x": "often"}, {"x": 1.5}, {"": 1}):
        with pytest.raises(ValueError):
            emu.plan_failures(bad)
    with pytest.raises(KeyError):
        emu.plan_failures({"x": 1}, workflow="No such tool")
    r = api.post(emu.base_url + "/_emulator/failures", json={"plan": {"x": "often"}})
    assert r.status_code == 400 and r.json()["reason"] == "invalidData"
    r = api.post(emu.base_url + "/_emulator/failures", json={"plan": {"x": 1}, "workflow": "nope"})
    assert r.status_code == 404 and r.json()["reason"] == "workflowNotFound"


def test_control_plane_and_cli(quiet: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    emu, api = quiet
    monkeypatch.setenv("CARGO_EMULATOR_TOKEN", TOKEN)
    r = api.post(emu.base_url + "/_emulator/failures", json={"plan": {"domain=company2.com": 1}})
    assert r.status_code == 200 and r.json()["failures"][0]["times"] == 1
    code = ctl_main(["--url", emu.base_url, "fail-records", "domain=company3.com=always",
                     "--workflow", "Enrich company"])
    assert code == 0
    got = api.get(emu.base_url + "/_emulator/failures").json()["failures"]
    assert [(e["key"], e["times"]) for e in got] == [("domain=company2.com", 1), ("domain=company3.com", "always")]
    b = _tool_batch(emu, api, RECORDS[:4])
    assert [d for d, s in _statuses(emu, b["uuid"]).items() if s == "error"] == ["company2.com", "company3.com"]
    assert ctl_main(["--url", emu.base_url, "fail-records", "--clear"]) == 0
    assert emu.failure_plan == []
    assert ctl_main(["--url", emu.base_url, "fail-records", "nokey"]) == 2
    capsys.readouterr()
