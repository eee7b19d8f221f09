"""The official client against the behaviours Cargo's own docs state (the `fidelity` scenario): single tool
runs, file upload + file batch, one download row per input record, download-outputs columns, usage units,
strict bodies and lenient filters. Each test names the CARGO-DOCS facts it checks (see EMULATOR.md)."""

from __future__ import annotations

import json

import pytest

from ._helpers import assert_error, get_call, ok_result, parse_csv

RUN_COLUMNS = ["_uuid", "_workspace_uuid", "_workflow_uuid", "_record_id", "_record_title", "_created_at",
               "_finished_at", "_status", "_error_message"]


def _no_fatal(doc: dict) -> None:
    assert doc.get("fatal") is None, doc["fatal"]["stack"]


def test_single_tool_run_to_terminal(fidelity_run):
    """CARGO-DOCS 11.1, 11.2: run create is async (pending, no batch), run get hydrates the context."""
    doc = fidelity_run
    _no_fatal(doc)
    run = ok_result(doc, "runs.create")["run"]
    assert run["status"] == "pending", run
    # the client turns null into undefined: batchUuid is absent from its view, null on the wire
    wire = json.loads(get_call(doc, "runs.create")["wire"][-1]["responseText"])["run"]
    assert wire["batchUuid"] is None and wire["releaseUuid"] and wire["nodes"] is None
    statuses = doc["context"]["runStatuses"]
    assert statuses[-1] == "success", statuses
    got = ok_result(doc, "runs.get.poll")
    assert got["run"]["uuid"] == doc["context"]["runUuid"]
    assert got["runComputedConfigs"]["start"] == {"domain": "single.example.com"}
    assert got["runContext"]["output"]["domain"] == "single.example.com"


def test_play_run_create_is_not_compatible(fidelity_run):
    assert_error(fidelity_run, "runs.create.play", type_="RequestError", reason="playNotCompatible",
                 message="Play workflows are not compatible with run creation.", status_range=(400, 499))


def test_file_upload_and_file_batch(fidelity_run):
    """CARGO-DOCS 12.1: upload → {s3Filename, contentType, name}; listColumns; one run per CSV data row."""
    doc = fidelity_run
    up = ok_result(doc, "files.upload")
    assert up["s3Filename"].endswith("fidelity.csv") and up["name"] == "fidelity.csv"
    assert up["contentType"] == "text/csv"
    upload_req = get_call(doc, "files.upload")["wire"][-1]
    assert upload_req["url"].endswith("/workspaceManagement/files/upload") and upload_req["status"] == 200
    cols = ok_result(doc, "files.listColumns")["columns"]
    assert cols == [{"type": "string", "name": "Website"}, {"type": "string", "name": "Company"}]
    batch = doc["context"]["fileBatch"]
    data_rows = doc["context"]["csvText"].strip().count("\n")  # lines minus the header
    assert batch["status"] == "success" and batch["runsCount"] == data_rows == 3
    rows = parse_csv(get_call(doc, "file.batch.file")["text"])
    assert [r["company_name"] for r in rows] == ["File One", "File Two", "File Three"]


def test_tool_batch_with_failed_runs_has_one_row_per_input_record(fidelity_run):
    """CARGO-DOCS 1.2: one row per batch record; an errored run keeps its input fields, empty output."""
    doc = fidelity_run
    batch = doc["context"]["failingBatch"]
    records = doc["context"]["records"]
    assert batch["status"] == "success" and batch["failedRunsCount"] == 2 and batch["runsCount"] == 4
    rows = parse_csv(get_call(doc, "file.batch.failing")["text"])
    assert len(rows) == len(records)
    assert [r["company_name"] for r in rows] == [r["company_name"] for r in records]
    assert list(rows[0])[:4] == ["_id", "_title", "domain", "company_name"]
    for row, rec in zip(rows, records):
        assert row["domain"] == rec.get("domain", "")
        if rec.get("domain"):
            assert row["industry"] and row["output.domain"] == rec["domain"]
        else:
            assert row["industry"] == "" and row["output.domain"] == ""


def test_download_outputs_rows_carry_the_documented_columns(fidelity_run):
    """CARGO-DOCS 2.1, 2.2, 2.5: one row per run, nine `_` columns + input + output; CSV default."""
    doc = fidelity_run
    records = doc["context"]["records"]
    data = json.loads(get_call(doc, "file.outputs.failing")["text"])
    assert len(data) == len(records)
    assert all(list(x) == [*RUN_COLUMNS, "input", "output"] for x in data)
    assert [x["input"] for x in data] == records
    assert [x["_status"] for x in data] == ["success", "error", "success", "error"]
    assert all((x["output"] is None) == (x["_status"] == "error") for x in data)
    assert all(x["_error_message"] for x in data if x["_status"] == "error")
    req = json.loads(get_call(doc, "runs.downloadOutputs.failing.csv")["wire"][0]["requestBody"])
    assert "format" not in req and "outputNodeSlug" not in req
    rows = parse_csv(get_call(doc, "file.outputs.failing.csv")["text"])
    assert list(rows[0]) == [*RUN_COLUMNS, "input", "output"]
    assert json.loads(rows[0]["input"]) == records[0] and rows[1]["output"] == ""


@pytest.mark.parametrize("unit,slugs", [
    ("billing.credits", {"integration.clearbit.action.enrichCompany"}),
    ("orchestration.executions", {"success", "error"}),
])
def test_usage_units(fidelity_run, unit, slugs):
    """CARGO-DOCS 5.5, 5.6: exactly three units, documented slug families."""
    metrics = ok_result(fidelity_run, f"billing.usage.{unit}")["metrics"]
    seen = {i["slug"] for m in metrics for i in m["items"]}
    assert seen == slugs


def test_usage_unit_invalid_and_interleaved(fidelity_run):
    doc = fidelity_run
    assert_error(doc, "billing.usage.credits", type_="RequestError", reason=None, status=400)
    body = json.loads(get_call(doc, "billing.usage.credits")["wire"][-1]["responseText"])
    assert all(u in body["errorMessage"] for u in ("billing.credits", "orchestration.executions",
                                                   "storage.records"))
    mixed = {i["slug"] for m in ok_result(doc, "billing.usage.noUnit")["metrics"] for i in m["items"]}
    assert {"success", "error", "integration.clearbit.action.enrichCompany"} <= mixed
    assert ok_result(doc, "billing.usage.storage.records")["metrics"] is not None


def test_subscription_pays_provider_plus_execution_charge(fidelity_run):
    """CARGO-DOCS 5.2: the subscription loses provider credits + 0.01 per node execution."""
    doc = fidelity_run
    executions = sum(i["count"] for m in ok_result(doc, "billing.usage.orchestration.executions")["metrics"]
                     for i in m["items"])
    provider = sum(i["count"] for m in ok_result(doc, "billing.usage.billing.credits")["metrics"] for i in m["items"])
    used = ok_result(doc, "billing.subscription")["subscription"]["subscriptionCreditsUsedCount"]
    assert executions == doc["executions"] > 0 and provider == doc["provider_credits"] > 0
    assert used == pytest.approx(provider + executions / 100) == pytest.approx(doc["credits_used"])


def test_unknown_body_key_is_rejected(fidelity_run):
    """CARGO-DOCS 10.1, 10.2: 400 unrecognized_keys with the zod issue."""
    doc = fidelity_run
    assert_error(doc, "runs.list.unknownKey", type_="RequestError", reason="unrecognized_keys", status=400)
    body = json.loads(get_call(doc, "runs.list.unknownKey")["wire"][-1]["responseText"])
    assert body["issues"][0]["keys"] == ["notAKey"] and body["issues"][0]["path"] == []


def test_misspelled_conjonction_degrades_to_an_empty_200(fidelity_run):
    """CARGO-DOCS 9.1: the unknown key is dropped, the filter degenerates, empty result, HTTP 200."""
    doc = fidelity_run
    bad = ok_result(doc, "segments.fetch.conjunction")
    assert bad["count"] == 0 and bad["records"] == []
    assert get_call(doc, "segments.fetch.conjunction")["wire"][-1]["status"] == 200
    assert ok_result(doc, "segments.fetch.conjonction")["count"] > 0


#: Successful calls of the scenario whose responses must match the official types.
SCHEMA_CHECKED = ["runs.get.poll", "batches.create.file", "batches.get.file", "batches.download.file",
                  "batches.create.failing", "batches.get.failing", "batches.download.failing",
                  "runs.downloadOutputs.failing", "runs.downloadOutputs.failing.csv", "billing.usage.billing.credits",
                  "billing.usage.orchestration.executions", "billing.usage.noUnit", "billing.subscription",
                  "segments.fetch.conjunction", "segments.fetch.conjonction"]
#: Requests built on purpose to break the declared payload types.
DELIBERATELY_INVALID = {"runs.list.unknownKey", "segments.fetch.conjunction", "billing.usage.credits"}


@pytest.mark.parametrize("call", SCHEMA_CHECKED)
def test_fidelity_responses_match_official_types(fidelity_run, schema_dir, call):
    from . import schemas

    ex = get_call(fidelity_run, call)["wire"][-1]
    assert 200 <= ex["status"] < 300, f"{call}: HTTP {ex['status']}: {ex['responseText'][:300]}"
    key = schemas.route(ex["method"], ex["url"])
    wire_name, result_name = schemas.RESPONSE_TYPES[key]
    body = json.loads(ex["responseText"])
    schemas.validate(wire_name, body, context=f"{call} raw body")
    schemas.validate_client_view(result_name, body, context=f"{call} after nullToUndefined")


def test_fidelity_requests_match_payload_types(fidelity_run, schema_dir):
    from . import schemas

    checked = 0
    for name, c in fidelity_run["calls"].items():
        if name in DELIBERATELY_INVALID:
            continue
        for ex in c.get("wire") or []:
            key = schemas.route(ex["method"], ex["url"])
            if key not in schemas.PAYLOAD_TYPES:
                continue
            query = ex["url"].split("?", 1)[1] if "?" in ex["url"] else ""
            body = json.loads(ex["requestBody"]) if ex.get("requestBody") else None
            schemas.validate_request(ex["method"], ex["url"], body=body, query=query)
            checked += 1
    assert checked >= 8
