"""Layout variants, the three export files, filter-stopped / skipped runs, repeated slugs and credits."""

from __future__ import annotations

import csv
import gzip
import io
import json

import httpx
import pytest
from cargo_gtm_emulator import VARIANTS, CargoEmulator, enrichment
from cargo_gtm_emulator.workflows import FREE_MAIL_DOMAINS

from .conftest import TOKEN, run_to_completion

RUN_COLUMNS = ["_uuid", "_workspace_uuid", "_workflow_uuid", "_record_id", "_record_title", "_created_at",
               "_finished_at", "_status", "_error_message"]


def _tool_batch(emu: CargoEmulator, api: httpx.Client, name: str, records: list[dict]) -> dict:
    wf = emu.store.tool_by_name(name)["workflowUuid"]
    r = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records",
                                                                              "records": records}})
    assert r.status_code == 200, r.text
    return run_to_completion(emu, api, r.json()["batch"]["uuid"])


def _download(api: httpx.Client, uuid: str, **body: str) -> httpx.Response:
    url = api.post(f"/orchestration/batches/{uuid}/download", json=body).json()["url"]
    return httpx.get(url)


def test_variants_api() -> None:
    assert all(isinstance(v, tuple) and v for v in VARIANTS.values())
    assert VARIANTS["download_gzip"][0] == "off" and VARIANTS["batch_list_order"][0] == "newest_first"
    with pytest.raises(ValueError, match="allowed: off, file, transport"):
        CargoEmulator(variants={"download_gzip": "zip"})
    with pytest.raises(ValueError, match="unknown emulator variant 'nope'"):
        CargoEmulator(variants={"nope": "x"})
    emu = CargoEmulator(variants={"batch_list_order": "oldest_first"})
    assert emu.variants["batch_list_order"] == "oldest_first" and emu.variants["json_shape"] == "array"
    emu.set_variants(json_shape="ndjson")
    assert emu.variants["json_shape"] == "ndjson"
    with pytest.raises(ValueError):
        emu.set_variants(json_shape="xml")


def test_filter_stops_runs_and_repeated_slugs(emu: CargoEmulator, api: httpx.Client) -> None:
    records = [{"domain": "https://www.Acme.com/about"}, {"domain": "gmail.com"}, {"domain": ""}]
    b = _tool_batch(emu, api, "Normalize domain", records)
    assert b["runsCount"] == 3 and b["executedRunsCount"] == 3 and b["failedRunsCount"] == 1
    assert b["creditsUsedCount"] == 0  # natives only: provider cost 0
    runs = api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"]}).json()["runs"]
    by_title = {r["recordId"]: r for r in runs}
    assert len(by_title) == 3
    statuses = sorted(r["status"] for r in runs)
    assert statuses == ["error", "success", "success"]  # filter_stop_status default: success
    gmail = next(r for r in runs if r["recordTitle"] == "gmail.com")
    assert [e["nodeSlug"] for e in gmail["executions"]] == ["start", "variables", "variables", "filter"]
    detail = api.get(f"/orchestration/runs/{gmail['uuid']}").json()
    assert "output" not in detail["runContext"] and detail["runContext"]["filter"] == {"result": False}
    # repeated slug: runContext keeps the node executed last
    assert detail["runContext"]["variables"] == {"domain": "gmail.com", "label": "gmail", "tld": "com"}
    assert "gmail.com" in FREE_MAIL_DOMAINS

    rows = list(csv.DictReader(io.StringIO(_download(api, b["uuid"]).text)))
    assert [r["output.domain"] for r in rows] == ["acme.com", "", ""]  # stopped + errored: empty output
    assert [r["domain"] for r in rows] == [rec["domain"] for rec in records]
    assert rows[0]["label"] == "acme" and rows[0]["tld"] == "com"
    emu.set_variants(stopped_rows="omitted")
    rows = list(csv.DictReader(io.StringIO(_download(api, b["uuid"]).text)))
    assert [r["domain"] for r in rows] == [records[0]["domain"], ""]  # errored rows are always present

    emu.set_variants(filter_stop_status="skipped")
    b2 = _tool_batch(emu, api, "Normalize domain", [{"domain": "yahoo.com"}])
    run = api.post("/orchestration/runs/list", json={"batchUuid": b2["uuid"]}).json()["runs"][0]
    assert run["status"] == "skipped" and run["finishedAt"] is not None


def test_dedupe_skips_records_that_already_ran(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Qualify inbound companies")
    assert play["runCreationRule"] == "once"
    rel = emu.store.release_for(play["workflowUuid"])
    assert [n["slug"] for n in rel["nodes"]] == ["start", "filter", "enrich_company", "end"]
    ids = [f"cmp_{i:04d}" for i in range(1, 21)]
    body = {"workflowUuid": play["workflowUuid"], "data": {"kind": "recordIds", "modelUuid": play["modelUuid"],
                                                           "ids": ids}}
    first = run_to_completion(emu, api, api.post("/orchestration/batches", json=body).json()["batch"]["uuid"])
    second = run_to_completion(emu, api, api.post("/orchestration/batches", json=body).json()["batch"]["uuid"])
    assert first["executedRunsCount"] == 20 and second["executedRunsCount"] == 0  # skipped: not executed (4.4)
    assert second["runsCount"] == 20 and second["status"] == "success"
    runs = api.post("/orchestration/runs/list", json={"batchUuid": second["uuid"]}).json()["runs"]
    assert {r["status"] for r in runs} == {"skipped"} and all(not r["executions"] for r in runs)
    assert second["creditsUsedCount"] == 0 and second["failedRunsCount"] == 0
    # the filter stopped the small companies in the first batch
    small = {rid for rid in ids if emu.store.records[play["modelUuid"]][rid]["employee_count"] < 50}
    assert small
    first_runs = api.post("/orchestration/runs/list", json={"batchUuid": first["uuid"]}).json()["runs"]
    for r in first_runs:
        if r["recordId"] in small:
            assert [e["nodeSlug"] for e in r["executions"]] == ["start", "filter"]
    rows = list(csv.DictReader(io.StringIO(_download(api, second["uuid"]).text)))
    assert [r["_id"] for r in rows] == ids
    assert "output.domain" not in rows[0]  # flat: output columns come from the outputs present (none here)


@pytest.mark.parametrize("gz", ["off", "file", "transport"])
@pytest.mark.parametrize("fmt,shape", [("csv", "array"), ("json", "array"), ("json", "ndjson")])
def test_batch_download_layouts(gz: str, fmt: str, shape: str) -> None:
    variants = {"download_gzip": gz, "batch_download_format": fmt, "json_shape": shape,
                "batch_download_output": "json"}
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, variants=variants) as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        records = [{"domain": "stripe.com", "company_name": "Stripe"}, {"domain": ""}]
        b = _tool_batch(emu, api, "Enrich company", records)
        resp = _download(api, b["uuid"])
        raw = resp.content
        if gz == "file":
            assert "content-encoding" not in resp.headers
            raw = gzip.decompress(raw)
        elif gz == "transport":
            assert resp.headers["content-encoding"] == "gzip"  # httpx already decoded it
        text = raw.decode()
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            outputs = [json.loads(r["output"]) if r["output"] else None for r in rows]
        else:
            rows = [json.loads(line) for line in text.splitlines()] if shape == "ndjson" else json.loads(text)
            outputs = [r["output"] for r in rows]
        assert list(rows[0]) == ["_id", "_title", "domain", "company_name", "output"]
        assert outputs[0]["industry"] == enrichment.enrich_company("stripe.com")["industry"]
        assert outputs[1] is None and rows[1]["domain"] == ""


def test_runs_download_outputs_and_runs_download(emu: CargoEmulator, api: httpx.Client) -> None:
    records = [{"domain": "acme.com"}, {"domain": "gmail.com"}, {"domain": ""}]
    b = _tool_batch(emu, api, "Normalize domain", records)
    wf = emu.store.tool_by_name("Normalize domain")["workflowUuid"]
    url = api.post("/orchestration/runs/download-outputs", json={"workflowUuid": wf}).json()["url"]
    rows = list(csv.DictReader(io.StringIO(httpx.get(url).text)))  # csv by default
    assert list(rows[0]) == [*RUN_COLUMNS, "input", "output"]
    assert [json.loads(r["input"]) for r in rows] == records
    assert [r["_status"] for r in rows] == ["success", "success", "error"]
    assert json.loads(rows[0]["output"]) == {"domain": "acme.com", "label": "acme", "tld": "com"}
    assert rows[1]["output"] == "" and rows[2]["output"] == "" and rows[2]["_error_message"]
    page = api.post("/orchestration/runs/download-outputs", json={
        "workflowUuid": wf, "format": "json", "limit": 1, "offset": 1, "outputNodeSlug": "filter"}).json()
    got = httpx.get(page["url"]).json()
    assert len(got) == 1 and got[0]["_record_title"] == "gmail.com" and got[0]["output"] == {"result": False}
    bad = api.post("/orchestration/runs/download-outputs", json={"workflowUuid": wf, "outputNodeSlug": "x"})
    assert bad.status_code == 404 and bad.json()["reason"] == "nodeNotFound"

    url = api.post("/orchestration/runs/download", json={"workflowUuid": wf, "batchUuid": b["uuid"]}).json()["url"]
    resp = httpx.get(url)
    assert "content-encoding" not in resp.headers
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(resp.content).decode())))
    assert list(rows[0]) == [*RUN_COLUMNS, "start", "variables", "filter", "output"]
    assert rows[1]["filter"] == "Condition not met" and rows[0]["filter"] == "Condition met"


def test_usage_units_and_execution_charge(emu: CargoEmulator, api: httpx.Client) -> None:
    before = emu.credits_used
    b = _tool_batch(emu, api, "Enrich company", [{"domain": f"c{i}.com"} for i in range(10)])
    runs = api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"]}).json()["runs"]
    executions = sum(len(r["executions"]) for r in runs)
    provider = sum(e["creditsUsedCount"] for r in runs for e in r["executions"])
    assert provider == b["creditsUsedCount"]  # batch_credits default: provider only
    assert emu.credits_used - before == pytest.approx(provider + executions / 100)
    emu.set_variants(batch_credits="with_execution_charge")
    again = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
    assert again["creditsUsedCount"] == pytest.approx(provider + executions / 100)

    q = "/billing/usage/metrics?from=2025-01-15&to=2025-01-15"
    bad = api.get(q + "&unit=credits")
    assert bad.status_code == 400
    assert all(u in bad.json()["errorMessage"] for u in ("billing.credits", "orchestration.executions",
                                                         "storage.records"))
    emu.store.upsert_records("companies", [{"_id": "cmp_0001", "name": "Renamed"}])
    items = api.get(q).json()["metrics"][0]["items"]
    slugs = [i["slug"] for i in items]
    assert slugs == sorted(slugs)
    assert {"success", "insert", "integration.clearbit.action.enrichCompany"} <= set(slugs)
    assert set(slugs) <= {"success", "error", "insert", "integration.clearbit.action.enrichCompany"}


def test_download_outputs_too_many_runs(emu: CargoEmulator, api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from cargo_gtm_emulator.handlers import runs as runs_handlers

    b = _tool_batch(emu, api, "Normalize domain", [{"domain": f"d{i}.com"} for i in range(3)])
    wf = emu.store.tool_by_name("Normalize domain")["workflowUuid"]
    monkeypatch.setattr(runs_handlers, "EXPORT_LIMIT", 2)
    r = api.post("/orchestration/runs/download-outputs", json={"workflowUuid": wf, "batchUuid": b["uuid"]})
    assert r.status_code == 400 and r.json()["reason"] == "tooManyRuns"
    ok = api.post("/orchestration/runs/download-outputs", json={"workflowUuid": wf, "limit": 2})
    assert ok.status_code == 200  # a page within the cap


def test_gzip_transport_on_download_outputs() -> None:
    with CargoEmulator(token=TOKEN, clock="manual", variants={"download_gzip": "transport"}) as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        _tool_batch(emu, api, "Normalize domain", [{"domain": "a.io"}])
        wf = emu.store.tool_by_name("Normalize domain")["workflowUuid"]
        url = api.post("/orchestration/runs/download-outputs", json={"workflowUuid": wf}).json()["url"]
        with httpx.stream("GET", url) as resp:
            raw = b"".join(resp.iter_raw())
            assert resp.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw).decode().startswith("_uuid,_workspace_uuid,")
