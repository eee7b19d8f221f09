"""Every ledger row of EMULATOR.md that cites a CARGO-DOCS fact is checked here, one case per fact number.

The table is parsed from the document itself, so a row citing a fact without a check below fails
``test_every_cited_fact_has_a_check``; "not emulated" rows are checked for exactly what they claim.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cargo_gtm_emulator import VARIANTS, CargoEmulator
from cargo_gtm_emulator.engine import planned_failure

from .conftest import TOKEN, run_to_completion

LEDGER = Path(__file__).resolve().parents[2] / "cargo-gtm-emulator" / "cargo_gtm_emulator" / "EMULATOR.md"
RUN_COLUMNS = ["_uuid", "_workspace_uuid", "_workflow_uuid", "_record_id", "_record_title", "_created_at",
               "_finished_at", "_status", "_error_message"]


def ledger_rows() -> list[tuple[str, str, str, str]]:
    """``(number, area, behaviour, source)`` of every ledger row."""
    rows = []
    for line in LEDGER.read_text().splitlines():
        m = re.match(r"^\| (\d+) \| ([a-z ]+) \| (.*) \| ([^|]*) \|$", line)
        if m:
            rows.append((m[1], m[2], m[3], m[4]))
    return rows


def cited_facts() -> dict[str, list[str]]:
    """CARGO-DOCS fact number -> ledger row numbers citing it."""
    out: dict[str, list[str]] = {}
    for num, _, _, source in ledger_rows():
        for part in source.split("; "):
            if part.startswith("CARGO-DOCS"):
                for fact in re.findall(r"\b(\d+\.\d+)\b", part):
                    out.setdefault(fact, []).append(num)
    return out


@dataclass
class World:
    """One emulator with finished batches every check can read."""

    emu: CargoEmulator
    api: httpx.Client
    tool_records: list[dict[str, Any]]
    tool_batch: dict[str, Any]
    norm_records: list[dict[str, Any]]
    norm_batch: dict[str, Any]
    dedupe_batches: tuple[dict[str, Any], dict[str, Any]]

    def wf(self, name: str) -> str:
        s = self.emu.store
        try:
            return str(s.tool_by_name(name)["workflowUuid"])
        except StopIteration:
            return str(s.play_by_name(name)["workflowUuid"])

    def runs(self, batch_uuid: str) -> list[dict[str, Any]]:
        out = self.api.post("/orchestration/runs/list", json={"batchUuid": batch_uuid, "limit": 1000}).json()
        return sorted(out["runs"], key=lambda r: r["createdAt"])

    def batch_rows(self, batch_uuid: str, **body: Any) -> list[dict[str, str]]:
        r = self.api.post(f"/orchestration/batches/{batch_uuid}/download", json=body)
        assert r.status_code == 200, r.text
        return list(csv.DictReader(io.StringIO(httpx.get(r.json()["url"]).text)))

    def outputs(self, **body: Any) -> httpx.Response:
        return self.api.post("/orchestration/runs/download-outputs", json=body)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.3, clock="manual") as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
        def create(wf: str, data: dict[str, Any]) -> dict[str, Any]:
            r = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": data})
            assert r.status_code == 200, r.text
            return run_to_completion(emu, api, r.json()["batch"]["uuid"])

        tool_records = [{"domain": f"company{i}.com", "company_name": f"Co {i}"} for i in range(12)]
        tool_records.append({"company_name": "No domain"})
        s = emu.store
        tool = create(s.tool_by_name("Enrich company")["workflowUuid"], {"kind": "records", "records": tool_records})
        norm_records = [{"domain": "https://www.Acme.com/x"}, {"domain": "gmail.com"}, {"domain": ""}]
        norm = create(s.tool_by_name("Normalize domain")["workflowUuid"], {"kind": "records", "records": norm_records})
        play = s.play_by_name("Qualify inbound companies")
        data = {"kind": "recordIds", "modelUuid": play["modelUuid"], "ids": [f"cmp_{i:04d}" for i in range(1, 11)]}
        first = create(play["workflowUuid"], data)
        second = create(play["workflowUuid"], data)
        yield World(emu, api, tool_records, tool, norm_records, norm, (first, second))


Check = Callable[[World], None]
CHECKS: dict[str, Check] = {}


def fact(*numbers: str) -> Callable[[Check], Check]:
    def deco(fn: Check) -> Check:
        for n in numbers:
            CHECKS[n] = fn
        return fn
    return deco


def _route_missing(w: World, method: str, path: str) -> None:
    r = w.api.request(method, path, json={})
    assert r.status_code == 404 and r.json()["reason"] == "routeNotFound", (path, r.text)


# ------------------------------------------------------------------ 1. batch download
@fact("1.1")
def _batch_download_is_a_url(w: World) -> None:
    body = w.api.post(f"/orchestration/batches/{w.tool_batch['uuid']}/download", json={}).json()
    assert list(body) == ["url"] and body["url"].startswith(w.emu.base_url + "/_files/")


@fact("1.2")
def _one_row_per_batch_record(w: World) -> None:
    rows = w.batch_rows(w.tool_batch["uuid"])
    assert len(rows) == len(w.tool_records) == w.tool_batch["runsCount"]
    assert [r["company_name"] for r in rows] == [r["company_name"] for r in w.tool_records]
    errored = {r["recordId"] for r in w.runs(w.tool_batch["uuid"]) if r["status"] == "error"}
    assert errored, "the fixture has failed runs"
    for row in rows:
        if row["_id"] in errored:
            assert row["industry"] == "" and row["output.domain"] == "" and row["company_name"]
        else:
            assert row["industry"] and row["output.domain"] == row["domain"]


@fact("1.3")
def _open_layouts_are_variants(w: World) -> None:
    assert {"download_gzip", "batch_download_format", "batch_download_output", "stopped_rows",
            "json_shape"} <= set(VARIANTS)
    w.emu.set_variants(batch_download_format="json", batch_download_output="json")
    try:
        url = w.api.post(f"/orchestration/batches/{w.tool_batch['uuid']}/download", json={}).json()["url"]
        rows = httpx.get(url).json()
        assert len(rows) == len(w.tool_records) and list(rows[0]) == ["_id", "_title", "domain", "company_name",
                                                                     "output"]
    finally:
        w.emu.set_variants(batch_download_format="csv", batch_download_output="flat")


@fact("1.4")
def _wrong_slug_node_not_found(w: World) -> None:
    r = w.api.post(f"/orchestration/batches/{w.tool_batch['uuid']}/download", json={"outputNodeSlug": "nope"})
    assert r.status_code == 404 and "node not found" in r.json()["errorMessage"].lower()


@fact("1.5")
def _slugs_from_the_batch_release(w: World) -> None:
    b = w.tool_batch
    release = w.api.get(f"/orchestration/releases/{b['releaseUuid']}").json()["release"]
    slugs = [n["slug"] for n in release["nodes"]]
    assert release["workflowUuid"] == b["workflowUuid"] and slugs[-1] == "output"
    deployed = w.api.get("/orchestration/releases/deployed", params={"workflowUuid": b["workflowUuid"]}).json()
    assert deployed["release"]["uuid"] == b["releaseUuid"]  # no redeploy in this world (see 14.2)
    for slug in slugs:
        assert len(w.batch_rows(b["uuid"], outputNodeSlug=slug)) == len(w.tool_records)


@fact("1.6")
def _slugs_are_not_unique(w: World) -> None:
    rel = w.emu.store.release_for(w.wf("Normalize domain"))
    slugs = [n["slug"] for n in rel["nodes"]]
    assert slugs.count("variables") == 2 and all(n.get("name") for n in rel["nodes"])
    rows = w.batch_rows(w.norm_batch["uuid"], outputNodeSlug="variables")
    assert rows[0]["tld"] == "com"  # the later of the two nodes


# ------------------------------------------------------------------ 2. runs/download-outputs
@fact("2.1", "2.3")
def _download_outputs_csv_default_json_on_request(w: World) -> None:
    wf = w.wf("Enrich company")
    csv_url = w.outputs(workflowUuid=wf).json()["url"]  # no outputNodeSlug, no format
    rows = list(csv.DictReader(io.StringIO(httpx.get(csv_url).text)))
    assert len(rows) == len(w.tool_records)
    data = httpx.get(w.outputs(workflowUuid=wf, format="json").json()["url"]).json()
    assert isinstance(data, list) and len(data) == len(rows)


@fact("2.2")
def _download_outputs_columns(w: World) -> None:
    data = httpx.get(w.outputs(workflowUuid=w.wf("Enrich company"), format="json").json()["url"]).json()
    assert all(list(x) == [*RUN_COLUMNS, "input", "output"] for x in data)
    assert [x["input"] for x in data] == w.tool_records
    assert all((x["output"] is None) == (x["_status"] == "error") for x in data)


@fact("2.4")
def _no_limit_covers_every_run(w: World) -> None:
    wf = w.wf("Qualify inbound companies")
    count = w.api.post("/orchestration/runs/count", json={"workflowUuid": wf}).json()["count"]
    data = httpx.get(w.outputs(workflowUuid=wf, format="json").json()["url"]).json()
    assert len(data) == count == 20


@fact("2.5")
def _input_output_json_text_in_csv(w: World) -> None:
    rows = list(csv.DictReader(io.StringIO(httpx.get(w.outputs(workflowUuid=w.wf("Enrich company")).json()[
        "url"]).text)))
    assert json.loads(rows[0]["input"]) == w.tool_records[0]
    assert isinstance(json.loads(rows[0]["output"]), dict) or rows[0]["output"] == ""


@fact("2.6")
def _is_finished_rejected(w: World) -> None:
    r = w.outputs(workflowUuid=w.wf("Enrich company"), isFinished=True)
    assert r.status_code == 400 and r.json()["reason"] == "unrecognized_keys"
    assert r.json()["issues"][0]["keys"] == ["isFinished"]


@fact("2.7")
def _statuses_are_run_statuses(w: World) -> None:
    wf = w.wf("Enrich company")
    assert w.outputs(workflowUuid=wf, statuses=["finished"]).json()["reason"] == "noRunsFound"
    ok = httpx.get(w.outputs(workflowUuid=wf, statuses=["success", "error"], format="json").json()["url"]).json()
    assert len(ok) == len(w.tool_records)


# ------------------------------------------------------------------ 3. runs/download
@fact("3.1")
def _runs_download_gzipped_titles(w: World) -> None:
    url = w.api.post("/orchestration/runs/download", json={"workflowUuid": w.wf("Normalize domain")}).json()["url"]
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(httpx.get(url).content).decode())))
    assert list(rows[0]) == [*RUN_COLUMNS, "start", "variables", "filter", "output"]
    assert "runContext" not in rows[0] and "executions" not in rows[0]
    assert rows[1]["filter"] == "Condition not met"


@fact("3.2")
def _zero_nodes_is_500(w: World) -> None:
    with CargoEmulator(token=TOKEN, clock="manual") as emu, httpx.Client(
            base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
        emu.store.specs[wf] = replace(emu.store.specs[wf], nodes=[])
        assert api.post("/orchestration/runs/download", json={"workflowUuid": wf}).status_code == 500


# ------------------------------------------------------------------ 4. skipped, filters, counters
@fact("4.1")
def _skipped_is_routine_and_finished(w: World) -> None:
    second = w.dedupe_batches[1]
    runs = w.runs(second["uuid"])
    assert runs and all(r["status"] == "skipped" and r["finishedAt"] for r in runs)
    finished = w.api.post("/orchestration/runs/count", json={"batchUuid": second["uuid"], "isFinished": True})
    assert finished.json()["count"] == len(runs)


@fact("4.2")
def _filter_stops_without_error(w: World) -> None:
    runs = w.runs(w.norm_batch["uuid"])
    stopped = next(r for r in runs if r["recordTitle"] == "gmail.com")
    assert stopped["status"] == "success" and stopped["errorMessage"] is None  # filter_stop_status default
    assert [e["nodeSlug"] for e in stopped["executions"]][-1] == "filter"


@fact("4.3")
def _executed_below_runs_while_pending(w: World) -> None:
    api, emu = w.api, w.emu
    wf = w.wf("Enrich company")
    b = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records", "records": [
        {"domain": f"x{i}.io"} for i in range(30)]}}).json()["batch"]
    emu.advance(4)
    mid = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
    assert mid["status"] == "running" and mid["executedRunsCount"] < mid["runsCount"] == 30
    pending = api.post("/orchestration/runs/count", json={"batchUuid": b["uuid"], "isFinished": False}).json()
    assert pending["count"] == mid["runsCount"] - mid["executedRunsCount"]
    done = run_to_completion(emu, api, b["uuid"])
    assert done["executedRunsCount"] == done["runsCount"]


@fact("4.4")
def _skipped_and_stopped_counters(w: World) -> None:
    second = w.dedupe_batches[1]  # every run skipped by dedupe
    now = w.api.get(f"/orchestration/batches/{second['uuid']}").json()["batch"]
    assert now["status"] == "success" and now["runsCount"] == 10  # settled although nothing was executed
    assert now["executedRunsCount"] == 0 and now["failedRunsCount"] == 0  # success or error only
    w.emu.set_variants(executed_runs_count="with_skipped")
    try:
        again = w.api.get(f"/orchestration/batches/{second['uuid']}").json()["batch"]
        assert again["executedRunsCount"] == again["runsCount"] == 10
    finally:
        w.emu.set_variants(executed_runs_count="success_error")
    rows = w.batch_rows(second["uuid"])
    assert len(rows) == second["runsCount"]  # stopped_rows default: present, empty output


# ------------------------------------------------------------------ 5. credits
@fact("5.1")
def _provider_cost_only_per_node(w: World) -> None:
    for run in w.runs(w.tool_batch["uuid"]):
        for ex in run["executions"]:
            expected = 2 if ex["nodeKind"] == "connector" and ex["status"] == "success" else 0
            assert ex["creditsUsedCount"] == expected, ex


@fact("5.2", "5.6")
def _execution_charge_on_the_subscription(w: World) -> None:
    emu, api = w.emu, w.api
    before = api.get("/billing/subscriptions").json()["subscription"]["subscriptionCreditsUsedCount"]
    b = api.post("/orchestration/batches", json={"workflowUuid": w.wf("Normalize domain"), "data": {
        "kind": "records", "records": w.norm_records}}).json()["batch"]
    b = run_to_completion(emu, api, b["uuid"])
    executions = sum(len(r["executions"]) for r in w.runs(b["uuid"]))
    after = api.get("/billing/subscriptions").json()["subscription"]["subscriptionCreditsUsedCount"]
    assert b["creditsUsedCount"] == 0 and after - before == pytest.approx(executions / 100)  # natives bill too
    q = "/billing/usage/metrics?from=2025-01-01&to=2025-02-01&unit=orchestration.executions"
    counts = {i["slug"]: 0 for m in api.get(q).json()["metrics"] for i in m["items"]}
    for m in api.get(q).json()["metrics"]:
        for i in m["items"]:
            counts[i["slug"]] += i["count"]
    assert set(counts) <= {"success", "error"}
    provider = emu.store.provider_credits_used
    assert emu.credits_used == pytest.approx(provider + (counts.get("success", 0) + counts.get("error", 0)) / 100)
    q = "/billing/usage/metrics?from=2025-01-01&to=2025-02-01&unit=billing.credits"
    slugs = {i["slug"] for m in api.get(q).json()["metrics"] for i in m["items"]}
    assert slugs and all(re.fullmatch(r"integration\.\w+\.action\.\w+|native\.\w+", s) for s in slugs)
    assert list(api.get("/billing/usage/metrics?from=2025-01-15&to=2025-01-15").json()) == ["metrics"]


@fact("5.3")
def _no_tool_nodes(w: World) -> None:
    for rel in w.emu.store.releases.values():
        assert all(n["kind"] in ("native", "connector", "agent") for n in rel["nodes"])  # no nested tool


@fact("5.4")
def _batch_credits_provider_only(w: World) -> None:
    provider = sum(e["creditsUsedCount"] for r in w.runs(w.tool_batch["uuid"]) for e in r["executions"])
    assert w.api.get(f"/orchestration/batches/{w.tool_batch['uuid']}").json()["batch"]["creditsUsedCount"] == provider
    assert VARIANTS["batch_credits"] == ("provider_only", "with_execution_charge")


@fact("5.5")
def _usage_units(w: World) -> None:
    bad = w.api.get("/billing/usage/metrics?from=2025-01-15&to=2025-01-15&unit=credits")
    assert bad.status_code == 400
    assert all(u in bad.json()["errorMessage"] for u in ("billing.credits", "orchestration.executions",
                                                         "storage.records"))
    w.emu.store.upsert_records("contacts", [{"_id": "ctc_0002", "title": "CTO"}])
    items = w.api.get("/billing/usage/metrics?from=2025-01-15&to=2025-01-15").json()["metrics"][0]["items"]
    slugs = {i["slug"] for i in items}
    assert {"success", "insert"} <= slugs and any(s.startswith("integration.") for s in slugs)


@fact("5.7", "10.5")
def _no_sql_or_spans(w: World) -> None:
    _route_missing(w, "POST", "/orchestration/query")
    _route_missing(w, "GET", "/orchestration/spans/list")


@fact("5.8")
def _credits_are_configurable(w: World) -> None:
    with CargoEmulator(token=TOKEN, clock="manual") as emu:
        assert emu.store.credits_available == 100_000
    with CargoEmulator(token=TOKEN, clock="manual", credits=100) as emu:
        assert emu.store.credits_remaining == 100


@fact("5.9")
def _zero_credit_behaviour(w: World) -> None:
    with CargoEmulator(token=TOKEN, clock="manual", credits=5, run_failure_rate=0) as emu, httpx.Client(
            base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
        b = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records", "records": [
            {"domain": f"d{i}.com"} for i in range(4)]}}).json()["batch"]
        b = run_to_completion(emu, api, b["uuid"])
        assert b["creditsUsedCount"] == 4 and b["failedRunsCount"] == 2
        assert emu.credits_used == pytest.approx(4 + (2 * 3 + 2 * 2) / 100)
        emu.store.credits_available = 4
        r = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records", "records": [
            {"domain": "e.com"}]}})
        assert r.status_code == 402 and r.json()["reason"] == "notEnoughCredits"


# ------------------------------------------------------------------ 6. lifecycle
@fact("6.1", "6.5")
def _no_api_rate_limit(w: World) -> None:
    assert all(w.api.get("/orchestration/plays/list").status_code == 200 for _ in range(30))
    w.emu.faults.next("GET /v1/orchestration/plays/list", "rate_limit")
    r = w.api.get("/orchestration/plays/list")
    assert r.status_code == 429 and r.headers["retry-after"]  # only from fault injection


@fact("6.2")
def _create_is_async(w: World) -> None:
    b = w.api.post("/orchestration/batches", json={"workflowUuid": w.wf("Enrich company"), "data": {
        "kind": "records", "records": [{"domain": "async.io"}]}}).json()["batch"]
    assert b["status"] == "pending" and b["finishedAt"] is None
    run_to_completion(w.emu, w.api, b["uuid"])


@fact("6.3")
def _disabled_play_still_runs(w: World) -> None:
    play = w.emu.store.play_by_name("Find decision makers")
    assert play["isEnabled"] is False
    b = w.api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["ctc_0001"]}}).json()["batch"]
    assert run_to_completion(w.emu, w.api, b["uuid"])["executedRunsCount"] == 1


@fact("6.4")
def _only_connector_nodes_fail_by_provider(w: World) -> None:
    s = w.emu.store
    for name in ("Enrich company", "Normalize domain"):
        wf = w.wf(name)
        spec = s.spec_for(wf)
        for i in range(200):
            plan = planned_failure(s.seed, s.run_failure_rate, wf, f"r{i}", spec)
            assert plan is None or spec.nodes[plan[0]].kind == "connector"


# ------------------------------------------------------------------ 7. batch list
@fact("7.1")
def _list_by_uuids(w: World) -> None:
    uuids = [w.tool_batch["uuid"], w.norm_batch["uuid"]]
    got = w.api.get("/orchestration/batches/list", params={"uuids[]": uuids}).json()["batches"]
    assert sorted(b["uuid"] for b in got) == sorted(uuids)


@fact("7.2")
def _batch_object_fields(w: World) -> None:
    b = w.api.get(f"/orchestration/batches/{w.tool_batch['uuid']}").json()["batch"]
    assert {"data", "nodes", "temporalWorkflowId", "userUuid"} <= set(b)
    w.emu.set_variants(batch_user_uuid="absent")
    try:
        b = w.api.get(f"/orchestration/batches/{w.tool_batch['uuid']}").json()["batch"]
        assert "userUuid" not in b and "data" in b
    finally:
        w.emu.set_variants(batch_user_uuid="present")


@fact("7.3")
def _list_order_is_a_variant(w: World) -> None:
    newest = [b["uuid"] for b in w.api.get("/orchestration/batches/list").json()["batches"]]
    w.emu.set_variants(batch_list_order="oldest_first")
    try:
        assert [b["uuid"] for b in w.api.get("/orchestration/batches/list").json()["batches"]] == newest[::-1]
    finally:
        w.emu.set_variants(batch_list_order="newest_first")
    page = w.api.post("/orchestration/runs/list", json={"workflowUuid": w.wf("Enrich company")}).json()
    assert len(page["runs"]) <= 100 < page["count"] or page["count"] <= 100


# ------------------------------------------------------------------ 8. segments and changes
@fact("8.1")
def _updated_only_with_tracking(w: World) -> None:
    icp = w.emu.store.segment_by_name("ICP companies")
    member = w.api.post("/segmentation/segments/fetch", json={"modelUuid": icp["modelUuid"], "filter": icp[
        "filter"], "fetchingLimit": 1}).json()["records"][0]
    changes = w.emu.store.upsert_records("companies", [{"_id": member["_id"], "country": "ZZ"}])
    assert next(c for c in changes if c["segmentUuid"] == icp["uuid"])["updatedRecordsCount"] == 0


@fact("8.2")
def _change_rows_and_required_args(w: World) -> None:
    seg = w.emu.store.segment_by_name("Score inbound companies")
    change = w.api.get("/segmentation/changes/list", params={"segmentUuid": seg["uuid"]}).json()["changes"][-1]
    out = w.api.post(f"/segmentation/changes/{change['uuid']}/fetch", json={"kinds": ["added"]}).json()
    assert list(out["records"][0])[:4] == ["_kind", "_id", "_title", "_time"]
    assert w.api.post(f"/segmentation/changes/{change['uuid']}/fetch", json={}).status_code == 400
    assert w.api.get("/segmentation/changes/list").json()["issues"][0]["path"] == ["segmentUuid"]


@fact("8.3", "8.4")
def _play_segments(w: World) -> None:
    play = w.emu.store.play_by_name("Score inbound companies")
    seg = w.api.get(f"/segmentation/segments/{play['segmentUuid']}").json()["segment"]
    assert seg["fromPlay"] and seg["name"] == "GENERATED_PLAY_SEGMENT"
    assert seg["recordsCount"] == 0 and seg["syncedAt"] is None
    r = w.api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "segment", "segmentUuid": seg["uuid"]}})
    assert r.json()["dataError"]["reason"] == "segmentLinkedToPlay"
    icp = w.emu.store.segment_by_name("ICP companies")
    assert icp["syncedAt"] is not None and icp["recordsCount"] > 0


@fact("8.5")
def _segment_download_and_record_fetch(w: World) -> None:
    model = w.emu.store.model_by_slug("companies")["uuid"]
    flt = {"conjonction": "and", "groups": []}
    urls = w.api.post("/segmentation/segments/download", json={"modelUuid": model, "filter": flt}).json()["urls"]
    assert len(list(csv.DictReader(io.StringIO(httpx.get(urls[0]).text)))) == 300
    assert w.api.post("/segmentation/records/fetch", json={"modelUuid": model, "ids": ["nope"]}).json() == {
        "records": []}
    icp = w.emu.store.segment_by_name("ICP companies")
    play = w.emu.store.play_by_name("Score inbound companies")
    b = w.api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "segment", "segmentUuid": icp["uuid"]}}).json()["batch"]
    w.emu.advance(3.5)
    assert w.api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]["runsCount"] == icp["recordsCount"]
    w.api.post(f"/orchestration/batches/{b['uuid']}/cancel")


# ------------------------------------------------------------------ 9. filters
def _count(w: World, flt: dict[str, Any]) -> int:
    model = w.emu.store.model_by_slug("companies")["uuid"]
    r = w.api.post("/segmentation/segments/fetch", json={"modelUuid": model, "filter": flt})
    assert r.status_code == 200, r.text
    return int(r.json()["count"])


BIG = {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 200}


@fact("9.1")
def _misspelled_conjonction_is_empty(w: World) -> None:
    assert _count(w, {"conjunction": "and", "groups": [{"conjunction": "and", "conditions": [BIG]}]}) == 0


@fact("9.2")
def _top_level_conditions_ignored(w: World) -> None:
    assert _count(w, {"conjonction": "and", "groups": [], "conditions": [BIG]}) == _count(
        w, {"conjonction": "and", "groups": []}) > 0


@fact("9.3")
def _value_values_mixups_and_mismatches(w: World) -> None:
    n = _count(w, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [BIG]}]})
    wrong = {"kind": "string", "columnSlug": "country", "operator": "is", "value": "US"}
    assert _count(w, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [wrong, BIG]}]}) == n
    mismatch = {"kind": "string", "columnSlug": "employee_count", "operator": "isNotNull"}
    assert _count(w, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [mismatch]}]}) == 0


@fact("9.4")
def _lenient_filters_strict_bodies(w: World) -> None:
    assert _count(w, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [BIG],
                                                        "note": "dropped"}], "extra": 1}) > 0
    model = w.emu.store.model_by_slug("companies")["uuid"]
    r = w.api.post("/segmentation/segments/fetch", json={"modelUuid": model, "filter": None, "extra": 1})
    assert r.status_code == 400 and r.json()["reason"] == "unrecognized_keys"


@fact("9.5")
def _unknown_kind_is_invalid_filter(w: World) -> None:
    model = w.emu.store.model_by_slug("companies")["uuid"]
    r = w.api.post("/segmentation/segments/fetch", json={"modelUuid": model, "filter": {
        "conjonction": "and", "groups": [{"conjonction": "and", "conditions": [{"kind": "relation"}]}]}})
    assert r.status_code == 400 and r.json()["reason"] == "invalidFilter"


# ------------------------------------------------------------------ 10. strictness
@fact("10.1")
def _unrecognized_keys(w: World) -> None:
    r = w.api.post("/orchestration/runs/list", json={"workflowUuid": w.wf("Enrich company"), "pageSize": 5})
    assert r.status_code == 400 and r.json()["reason"] == "unrecognized_keys"


@fact("10.2")
def _zod_issue_path(w: World) -> None:
    r = w.api.post("/orchestration/runs/list", json={"nope": 1})
    assert r.json()["errorMessage"].startswith("RequestError: [") and r.json()["issues"][0]["path"] == []
    assert w.api.get("/segmentation/changes/list").json()["issues"][0]["path"] == ["segmentUuid"]


@fact("10.3", "10.4", "11.4", "14.3")
def _actions_not_emulated(w: World) -> None:
    for path in ("/orchestration/actions/execute", "/orchestration/actions/execute-batch",
                 "/orchestration/actions/get-output-schema"):
        _route_missing(w, "POST", path)


# ------------------------------------------------------------------ 11. runs
@fact("11.1")
def _run_create(w: World) -> None:
    run = w.api.post("/orchestration/runs", json={"workflowUuid": w.wf("Enrich company"), "data": {
        "domain": "single.io"}}).json()["run"]
    assert run["status"] == "pending" and run["batchUuid"] is None and run["releaseUuid"]
    r = w.api.post("/orchestration/runs", json={"workflowUuid": w.wf("Score inbound companies"), "data": {}})
    assert r.json()["reason"] == "playNotCompatible"


@fact("11.2")
def _run_get(w: World) -> None:
    run = w.runs(w.tool_batch["uuid"])[0]
    got = w.api.get(f"/orchestration/runs/{run['uuid']}").json()
    assert got["run"]["releaseUuid"] and got["run"]["nodes"] is None
    assert set(got) == {"run", "runContext", "runComputedConfigs"}


@fact("11.3")
def _release_and_nodes(w: World) -> None:
    wf = w.wf("Enrich company")
    rel = w.emu.store.release_for(wf)
    r = w.api.post("/orchestration/runs", json={"workflowUuid": wf, "releaseUuid": rel["uuid"], "nodes": [],
                                                "data": {}})
    assert r.status_code == 400 and r.json()["reason"] == "invalidReleaseOrCustomNodes"


@fact("11.5")
def _one_record_sample(w: World) -> None:
    b = w.api.post("/orchestration/batches", json={"workflowUuid": w.wf("Find work email"), "data": {
        "kind": "records", "records": [{"first_name": "A", "last_name": "B", "domain": "c.io"}]}}).json()["batch"]
    assert run_to_completion(w.emu, w.api, b["uuid"])["runsCount"] == 1


# ------------------------------------------------------------------ 12–15
@fact("12.1")
def _file_upload(w: World) -> None:
    up = w.api.post("/workspaceManagement/files/upload", files={"file": ("f.csv", b"domain\na.io\nb.io\n",
                                                                        "text/csv")}).json()
    assert set(up) == {"s3Filename", "contentType", "name"}
    cols = w.api.get("/workspaceManagement/files/listColumns", params={"s3Filename": up["s3Filename"]}).json()
    assert cols == {"columns": [{"type": "string", "name": "domain"}]}
    b = w.api.post("/orchestration/batches", json={"workflowUuid": w.wf("Enrich company"), "data": {
        "kind": "file", "s3Filename": up["s3Filename"]}}).json()["batch"]
    assert run_to_completion(w.emu, w.api, b["uuid"])["runsCount"] == 2  # lines - header


@fact("13.1", "13.2")
def _replays_and_record_ids(w: World) -> None:
    play = w.emu.store.play_by_name("Score inbound companies")
    runs = w.api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "runs", "filter": {}, "reset": {}}})
    assert runs.json()["reason"] == "invalidDataKind"
    wrong = w.api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "recordIds", "recordIds": ["cmp_0001"]}})
    assert wrong.status_code == 400 and wrong.json()["dataError"]["reason"] == "invalidData"
    ok = w.api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0001"]}})
    assert ok.status_code == 200
    run_to_completion(w.emu, w.api, ok.json()["batch"]["uuid"])


@fact("14.1")
def _exit_nodes(w: World) -> None:
    exits = {w.emu.store.release_for(wf)["nodes"][-1]["slug"] for wf in w.emu.store.workflows}
    firsts = {w.emu.store.release_for(wf)["nodes"][0]["slug"] for wf in w.emu.store.workflows}
    assert exits == {"output", "end"} and firsts == {"start"}


@fact("15.1")
def _urls_expire(w: World) -> None:
    url = w.api.post(f"/orchestration/batches/{w.norm_batch['uuid']}/download", json={}).json()["url"]
    assert "X-Amz-Expires=3600" in url and httpx.get(url).status_code == 200


@fact("15.2")
def _no_templates(w: World) -> None:
    assert "{{" not in json.dumps(list(w.emu.store.releases.values()))


def _agent_play_run(planned: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """On a separate default emulator (no random failures), the seeded agent play: ``(release, runs of a
    2-record batch, batch)``."""
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.0, clock="manual") as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        play = emu.store.play_by_name("Classify inbound companies")
        emu.plan_failures(planned)
        created = api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
            "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0001", "cmp_0002"]}}).json()["batch"]
        done = run_to_completion(emu, api, created["uuid"])
        runs = api.post("/orchestration/runs/list", json={"batchUuid": done["uuid"]}).json()["runs"]
        release = api.get(f"/orchestration/releases/{done['releaseUuid']}").json()["release"]
        return release, sorted(runs, key=lambda r: r["recordId"]), done


@fact("4.5")
def _fallback_on_failure_ends_success(w: World) -> None:
    release, runs, batch = _agent_play_run({"cmp_0002": "always"})
    agent = next(n for n in release["nodes"] if n["kind"] == "agent")
    assert agent["fallbackOnFailure"] is True and agent["retry"]["maximumAttempts"] == 3
    fell_back = runs[1]
    assert fell_back["status"] == "success" and fell_back["executions"][1]["status"] == "error"
    assert [e["status"] for e in fell_back["executions"]][2:] == ["success", "success"]
    assert batch["failedRunsCount"] == 0 and batch["executedRunsCount"] == 2
    # without fallbackOnFailure a connector failure still ends the run error: the seeded agent is the only
    # node of the default workspace that falls back
    fallbacks = [(n["slug"], n["kind"]) for r in w.emu.store.releases.values() for n in r["nodes"]
                 if n["fallbackOnFailure"]]
    assert fallbacks == [("classify", "agent")]


@fact("15.4")
def _live_release_node_fields(w: World) -> None:
    """The default seeded workspace (the shared world) shows the live release fields, read over HTTP."""
    play = w.emu.store.play_by_name("Classify inbound companies")
    rel_uuid = w.emu.store.deployed_release[play["workflowUuid"]]
    release = w.api.get(f"/orchestration/releases/{rel_uuid}").json()["release"]
    kinds = {(n["slug"], n["kind"]) for n in release["nodes"]}
    assert {("classify", "agent"), ("classify", "native")} <= kinds  # a slug repeated across kinds
    agent = next(n for n in release["nodes"] if n["kind"] == "agent")
    assert "actionSlug" not in agent and agent["agentUuid"] and agent["fallbackChildUuid"]
    assert all({"kind", "config", "childrenUuids", "position"} <= set(n) for n in release["nodes"])


@fact("14.2")
def _batches_keep_their_release(w: World) -> None:
    """A redeploy (on a separate emulator, so the shared world keeps one release per workflow): the batch
    created before it still reads and runs its own release; the node added by the redeploy is not in it."""
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.0, clock="manual") as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
        created = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {
            "kind": "records", "records": [{"domain": "stripe.com"}]}}).json()["batch"]
        new = emu.redeploy("Enrich company", add_nodes=[{"slug": "extra", "kind": "native", "actionSlug": "x"}])
        done = run_to_completion(emu, api, created["uuid"])
        assert done["releaseUuid"] == created["releaseUuid"] != new["uuid"]
        old = api.get(f"/orchestration/releases/{done['releaseUuid']}").json()["release"]
        assert old["status"] == "archived" and "extra" not in [n["slug"] for n in old["nodes"]]
        r = api.post(f"/orchestration/batches/{done['uuid']}/download", json={"outputNodeSlug": "extra"})
        assert r.status_code == 404  # slugs come from the batch's release, not the deployed one
        assert [r.node_statuses[-1][0] for r in emu.runs(done["uuid"])] == ["output"]


# ------------------------------------------------------------------ the tests
def test_ledger_counts_match_the_closing_note() -> None:
    rows = ledger_rows()
    kinds = {"REFERENCE": 0, "CARGO-DOCS": 0, "decision": 0}
    for *_, source in rows:
        for kind in kinds:
            if any(part.startswith(kind) for part in source.split("; ")):
                kinds[kind] += 1
    text = LEDGER.read_text()
    assert f"**Closing note.** {len(rows)} rows." in text
    for kind, n in kinds.items():
        assert f"{kind} {n} rows" in text, (kind, n)
    assert all(any(p.startswith(tuple(kinds)) for p in src.split("; ")) for *_, src in rows)
    assert "/work/" not in text


def test_every_cited_fact_has_a_check() -> None:
    missing = sorted(set(cited_facts()) - set(CHECKS), key=lambda f: tuple(map(int, f.split("."))))
    assert not missing, f"ledger rows cite CARGO-DOCS facts with no check: {missing}"


@pytest.mark.parametrize("fact_number", sorted(cited_facts(), key=lambda f: tuple(map(int, f.split(".")))))
def test_ledger_fact(world: World, fact_number: str) -> None:
    CHECKS[fact_number](world)
