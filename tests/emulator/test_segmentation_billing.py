"""Segment fetch with filters and paging; usage metrics; determinism across emulators."""

from __future__ import annotations

import httpx
from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.seed import EU_COUNTRIES

from .conftest import TOKEN


def _fetch(api: httpx.Client, model: str, conditions: list[dict], conj: str = "and", **extra) -> dict:
    body = {"modelUuid": model, "filter": {"conjonction": "and", "groups": [
        {"conjonction": conj, "conditions": conditions}]}, **extra}
    r = api.post("/segmentation/segments/fetch", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_fetch_conditions(emu: CargoEmulator, api: httpx.Client) -> None:
    companies = emu.store.model_by_slug("companies")["uuid"]
    records = emu.store.model_records(companies)
    out = _fetch(api, companies, [{"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan",
                                   "value": 200}], fetchingLimit=1000)
    assert out["count"] == sum(r["employee_count"] > 200 for r in records)
    assert out["isRefreshing"] is False and {c["slug"] for c in out["columns"]} >= {"_id", "domain"}
    assert all(r["employee_count"] > 200 for r in out["records"])
    icp = emu.store.segment_by_name("ICP companies")
    assert icp["recordsCount"] == out["count"]
    out = _fetch(api, companies, [{"kind": "number", "columnSlug": "employee_count", "operator": "between",
                                   "firstValue": 10, "lastValue": 50}])
    assert out["count"] == sum(10 <= r["employee_count"] <= 50 for r in records)
    out = _fetch(api, companies, [{"kind": "string", "columnSlug": "domain", "operator": "endsWith",
                                   "values": ".io"},
                                  {"kind": "string", "columnSlug": "country", "operator": "is", "values": ["US"]}],
                 conj="or")
    assert out["count"] == sum(r["domain"].endswith(".io") or r["country"] == "US" for r in records)
    out = _fetch(api, companies, [{"kind": "date", "columnSlug": "created_at", "operator": "greaterThan",
                                   "value": "2024-10-01"}])
    assert out["count"] == sum(r["created_at"] > "2024-10-01" for r in records)
    # a column the model lacks, or a kind that does not match the column type, matches nothing (CARGO-DOCS 9.3)
    out = _fetch(api, companies, [{"kind": "boolean", "columnSlug": "missing", "operator": "isNull"}])
    assert out["count"] == 0
    out = _fetch(api, companies, [{"kind": "string", "columnSlug": "employee_count", "operator": "isNotNull"}])
    assert out["count"] == 0
    contacts = emu.store.model_by_slug("contacts")["uuid"]
    eu = _fetch(api, contacts, [{"kind": "string", "columnSlug": "country", "operator": "is",
                                 "values": EU_COUNTRIES}])
    assert eu["count"] == emu.store.segment_by_name("EU contacts")["recordsCount"]


def test_fetch_paging_sort_and_errors(emu: CargoEmulator, api: httpx.Client) -> None:
    companies = emu.store.model_by_slug("companies")["uuid"]
    cond = [{"kind": "number", "columnSlug": "employee_count", "operator": "isNotNull"}]
    page1 = _fetch(api, companies, cond, sort=[{"columnSlug": "employee_count", "kind": "desc"}],
                   fetchingLimit=10, fetchingOffset=0)
    page2 = _fetch(api, companies, cond, sort=[{"columnSlug": "employee_count", "kind": "desc"}],
                   fetchingLimit=10, fetchingOffset=10)
    counts = [r["employee_count"] for r in page1["records"] + page2["records"]]
    assert counts == sorted(counts, reverse=True) and len(counts) == 20
    assert page1["count"] == 300
    capped = _fetch(api, companies, cond, limit=25, fetchingLimit=100)
    assert capped["count"] == 25 and len(capped["records"]) == 25
    bad = api.post("/segmentation/segments/fetch", json={"modelUuid": companies, "filter": {
        "conjonction": "and", "groups": [{"conjonction": "and", "conditions": [{"kind": "sql"}]}]}})
    assert bad.status_code == 400 and bad.json()["reason"] == "invalidFilter"


def test_usage_metrics_buckets(emu: CargoEmulator, api: httpx.Client) -> None:
    r = api.get("/billing/usage/metrics")
    assert r.status_code == 400
    empty = api.get("/billing/usage/metrics?from=2025-01-10&to=2025-01-12").json()
    assert [m["date"] for m in empty["metrics"]] == ["2025-01-10T00:00:00.000Z", "2025-01-11T00:00:00.000Z",
                                                   "2025-01-12T00:00:00.000Z"]
    assert all(m["items"] == [] for m in empty["metrics"])


def test_same_seed_same_workspace() -> None:
    with CargoEmulator(token=TOKEN, seed=7, clock="manual") as a, CargoEmulator(token=TOKEN, seed=7,
                                                                               clock="manual") as b:
        assert a.workspace_uuid == b.workspace_uuid
        assert a.store.play_by_name("Find decision makers") == b.store.play_by_name("Find decision makers")
        assert a.store.model_records(a.store.model_by_slug("contacts")["uuid"]) == b.store.model_records(
            b.store.model_by_slug("contacts")["uuid"])
    with CargoEmulator(token=TOKEN, seed=8, clock="manual") as c:
        assert c.workspace_uuid != a.workspace_uuid


def test_real_clock_advances_without_polling() -> None:
    """With the real clock, state is computed on access: a batch finishes even if nobody polled."""
    # real time by design: this tests the real-clock mode itself (it jumps with advance, it never sleeps)
    with CargoEmulator(token=TOKEN, speed=1.0, clock="real", run_failure_rate=0.0) as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        tool = emu.store.tool_by_name("Enrich company")
        b = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
            "kind": "records", "records": [{"domain": "acme.com"}]}}).json()["batch"]
        emu.advance(60)  # jump simulated time forward instead of sleeping
        done = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
        assert done["status"] == "success" and done["creditsUsedCount"] == 2
