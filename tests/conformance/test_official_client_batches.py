"""Batches and runs through the official client, on a manual-clock emulator: every batch kind
is created, observed unfinished, the clock is advanced, then observed finished. No wall-clock
timing is involved, so every assertion is deterministic."""

from __future__ import annotations

import json

import pytest

from ._helpers import assert_error, get_call, ok_result, parse_csv

NON_TERMINAL = {"pending", "syncing", "querying", "running", "cancelling"}
TERMINAL = {"success", "error", "cancelled", "skipped"}
KINDS = {"playFilter": "filter", "playSegment": "segment", "playRecordIds": "recordIds", "toolRecords": "records"}


@pytest.fixture(scope="module")
def start(manual_runs):
    return manual_runs["start"]


@pytest.fixture(scope="module")
def finish(manual_runs):
    return manual_runs["finish"]


def test_driver_completed(manual_runs):
    for phase in ("start", "finish"):
        assert manual_runs[phase].get("fatal") is None, manual_runs[phase]["fatal"]["stack"]


@pytest.mark.parametrize("key", list(KINDS))
def test_create_returns_unfinished_batch(start, key):
    ctx = start["context"]
    batch = ok_result(start, f"batches.create.{key}")["batch"]
    payload = ctx["created"][key]["payload"]
    assert batch["workflowUuid"] == payload["workflowUuid"]
    assert batch["data"]["kind"] == KINDS[key]
    assert batch["status"] in NON_TERMINAL, f"a just-created batch cannot be {batch['status']!r} on a frozen clock"
    assert batch.get("finishedAt") is None
    assert batch["executedRunsCount"] <= batch["runsCount"]
    again = ok_result(start, f"batches.get.{key}.unfinished")["batch"]
    assert again["uuid"] == batch["uuid"] and again["status"] in NON_TERMINAL


def test_stored_batch_data(start):
    ctx = start["context"]
    f = ok_result(start, "batches.create.playFilter")["batch"]["data"]
    assert f["modelUuid"] == ctx["play"]["modelUuid"] and f["limit"] == 7
    assert f["filter"]["conjonction"] == "and"
    s = ok_result(start, "batches.create.playSegment")["batch"]["data"]
    assert s["segmentUuid"] == ctx["standalone"]["uuid"]
    r = ok_result(start, "batches.create.playRecordIds")["batch"]["data"]
    assert r["ids"] == ctx["ids"] and r["modelUuid"] == ctx["play"]["modelUuid"]
    # stored form of inline records is {kind: "records", s3Filename} (BatchData), not the records
    t = ok_result(start, "batches.create.toolRecords")["batch"]["data"]
    assert isinstance(t.get("s3Filename"), str) and t["s3Filename"], t
    assert "records" not in t, "BatchData kind=records stores s3Filename, not the inline records"


def test_download_unfinished_is_batch_not_finished(start):
    assert_error(start, "batches.download.unfinished", type_="RequestError", reason="batchNotFinished",
                 message="Batch not finished.", status_range=(400, 499))


def test_cancel_unfinished(start, finish, manual_runs):
    c = get_call(start, "batches.cancel.unfinished")
    assert c["ok"] is True, c.get("error")
    wire = c["wire"][0]
    assert wire["method"] == "POST" and wire["requestBody"] is None
    after = ok_result(start, "batches.get.toCancel.afterCancel")["batch"]
    assert after["status"] in {"cancelling", "cancelled"}
    final = ok_result(finish, "batches.get.toCancel.finished")["batch"]
    assert final["status"] == "cancelled" and final["finishedAt"] is not None


def test_list_unfinished_with_arrays(start):
    ctx = start["context"]
    batches = ok_result(start, "batches.list.unfinished")["batches"]
    url = get_call(start, "batches.list.unfinished")["wire"][0]["url"]
    assert "statuses%5B%5D=pending" in url and "workflowUuids%5B%5D=" in url
    wf = {ctx["play"]["workflowUuid"], ctx["tool"]["workflowUuid"]}
    assert all(b["status"] in {"pending", "syncing", "querying", "running"} for b in batches)
    assert all(b["workflowUuid"] in wf for b in batches)
    listed = {b["uuid"] for b in batches}
    for key in KINDS:
        assert ctx["created"][key]["uuid"] in listed, f"{key} batch missing from the filtered list"
    assert ctx["created"]["toCancel"]["uuid"] not in listed, "a cancelled batch must not match statuses[]=pending..running"


def test_all_batches_reach_terminal_state(manual_runs):
    statuses = manual_runs["statuses_after_advance"]
    assert statuses and all(s in TERMINAL for s in statuses.values()), statuses


@pytest.mark.parametrize("key", list(KINDS))
def test_finished_batch_counters(start, finish, key):
    ctx = start["context"]
    b = ok_result(finish, f"batches.get.{key}.finished")["batch"]
    assert b["status"] == "success", f"{key}: {b['status']} {b.get('errorMessage')}"
    assert b["finishedAt"] is not None
    assert b["executedRunsCount"] == b["runsCount"] > 0
    assert 0 <= b["failedRunsCount"] <= b["runsCount"]
    assert b["creditsUsedCount"] >= 0
    expected = {
        "playRecordIds": len(ctx["ids"]),
        "toolRecords": len(ctx["records"]),
    }
    if key in expected:
        assert b["runsCount"] == expected[key], f"{key}: runsCount {b['runsCount']} != inputs {expected[key]}"
    if key == "playFilter":
        assert b["runsCount"] <= 7, "filter batch with limit=7"


def test_segment_batch_enrols_the_segment(start, finish, catalog_run):
    seg = next(s for s in ok_result(start, "segments.list")["segments"] if s["uuid"] == start["context"]["standalone"]["uuid"])
    b = ok_result(finish, "batches.get.playSegment.finished")["batch"]
    assert b["runsCount"] == seg["recordsCount"], (b["runsCount"], seg["recordsCount"])


def test_list_finished(start, finish):
    ctx = start["context"]
    batches = ok_result(finish, "batches.list.finished")["batches"]
    assert all(b["status"] in {"success", "error", "cancelled"} for b in batches)
    assert {ctx["created"][k]["uuid"] for k in ctx["created"]} <= {b["uuid"] for b in batches}
    success = ok_result(finish, "batches.list.success.play")["batches"]
    assert success and len(success) <= 50
    assert all(b["status"] == "success" and b["workflowUuid"] == ctx["play"]["workflowUuid"] for b in success)
    assert ctx["created"]["toolRecords"]["uuid"] not in {b["uuid"] for b in success}
    everything = ok_result(finish, "batches.list.all")["batches"]
    assert len(everything) >= len(ctx["created"])


def test_cancel_finished_is_already_finished(finish):
    assert_error(finish, "batches.cancel.finished", type_="RequestError", reason="batchAlreadyFinished",
                 message="Batch already finished.", status_range=(400, 499))


@pytest.mark.parametrize("key", list(KINDS))
def test_download_finished_batch(finish, key):
    url = ok_result(finish, f"batches.download.{key}")["url"]
    assert isinstance(url, str) and url.startswith("http")
    req = get_call(finish, f"batches.download.{key}")["wire"][0]
    assert json.loads(req["requestBody"]) == {}, "the client sends {} without outputNodeSlug"
    f = get_call(finish, f"file.batch.{key}")
    assert f.get("status") == 200, f"downloading {url} without a token: {f}"
    b = ok_result(finish, f"batches.get.{key}.finished")["batch"]
    rows = parse_csv(f["text"])
    # CARGO-DOCS 1.2: one row per batch record; a record whose run errored keeps its input, empty output
    assert len(rows) == b["runsCount"], (
        f"{key}: {len(rows)} CSV rows for runsCount={b['runsCount']} failed={b['failedRunsCount']}")
    assert f["text"].startswith("_id,_title"), f["text"][:80]
    ids = [r["_id"] for r in rows]
    assert all(ids) and len(set(ids)) == len(ids)


def test_download_with_output_node_slug(finish):
    ctx = finish["context"]
    url = ok_result(finish, "batches.download.playFilter.outputNodeSlug")["url"]
    req = get_call(finish, "batches.download.playFilter.outputNodeSlug")["wire"][0]
    assert json.loads(req["requestBody"]) == {"outputNodeSlug": ctx["lastSlug"]}
    assert get_call(finish, "file.batch.playFilter.outputNodeSlug").get("status") == 200, url


def test_runs_list_count(start, finish):
    b = ok_result(finish, "batches.get.playFilter.finished")["batch"]
    listed = ok_result(finish, "runs.list")
    assert listed["count"] == b["runsCount"] == len(listed["runs"])
    for r in listed["runs"]:
        assert r["batchUuid"] == b["uuid"] and r["workflowUuid"] == b["workflowUuid"]
        assert r["status"] in {"success", "error"}
    page = ok_result(finish, "runs.list.page")
    assert page["count"] == listed["count"], "count is the total, not the page size"
    assert [r["uuid"] for r in page["runs"]] == [r["uuid"] for r in listed["runs"]][1:3], "limit=2 offset=1"
    errors = ok_result(finish, "runs.list.error")
    assert errors["count"] == b["failedRunsCount"] and all(r["status"] == "error" for r in errors["runs"])
    assert ok_result(finish, "runs.count")["count"] == b["runsCount"]
    assert ok_result(finish, "runs.count.success")["count"] == b["runsCount"] - b["failedRunsCount"]


def test_runs_metrics(finish):
    b = ok_result(finish, "batches.get.playFilter.finished")["batch"]
    release = ok_result(finish, "releases.deployed.play")["release"]
    metrics = ok_result(finish, "runs.metrics")["runMetrics"]
    node_uuids = {n["uuid"] for n in release["nodes"]}
    assert metrics, "one RunMetric per node"
    assert {m["nodeUuid"] for m in metrics} <= node_uuids
    for m in metrics:
        parts = sum(m[k] for k in ("idleExecutionsCount", "pendingExecutionsCount", "runningExecutionsCount",
                                   "successExecutionsCount", "errorExecutionsCount", "cancellingExecutionsCount",
                                   "cancelledExecutionsCount", "skippedExecutionsCount"))
        assert parts == m["totalExecutionsCount"] <= b["runsCount"], m
    assert sum(m["creditsUsedCount"] for m in metrics) == b["creditsUsedCount"]


def test_runs_download_outputs(finish):
    b = ok_result(finish, "batches.get.playFilter.finished")["batch"]
    csv_file = get_call(finish, "file.runs.csv")
    assert csv_file.get("status") == 200, csv_file
    rows = parse_csv(csv_file["text"])
    json_file = get_call(finish, "file.runs.json")
    assert json_file.get("status") == 200, json_file
    data = json.loads(json_file["text"])
    assert isinstance(data, list)
    # CARGO-DOCS 2.2: one row per run, the nine "_" columns + input + output
    assert len(rows) == b["runsCount"] > 0, (len(rows), b)
    assert len(data) == len(rows) and all(isinstance(x, dict) for x in data)
    columns = ["_uuid", "_workspace_uuid", "_workflow_uuid", "_record_id", "_record_title", "_created_at",
               "_finished_at", "_status", "_error_message", "input", "output"]
    assert list(rows[0]) == columns and all(list(x) == columns for x in data)
    assert {x["_status"] for x in data} <= {"success", "error"}
    assert sum(x["_status"] == "error" for x in data) == b["failedRunsCount"]
    for x in data:
        assert isinstance(x["input"], dict) and x["input"]["_id"] == x["_record_id"]
        assert (x["output"] is None) == (x["_status"] == "error")
    req = json.loads(get_call(finish, "runs.downloadOutputs.csv")["wire"][0]["requestBody"])
    assert req["format"] == "csv" and req["batchUuid"] == b["uuid"]
    assert_error(finish, "runs.downloadOutputs.none", type_="RequestError", reason="noRunsFound",
                 message="No runs found matching the given filters.", status_range=(400, 499))


def test_run_get(finish):
    ctx = finish["context"]
    b = ok_result(finish, "batches.get.playFilter.finished")["batch"]
    release = ok_result(finish, "releases.deployed.play")["release"]
    slugs = {n["slug"] for n in release["nodes"]}
    listed = {r["uuid"]: r for r in ok_result(finish, "runs.list")["runs"]}
    assert ctx["runUuid"] in listed, "the run fetched by uuid comes from runs.list"
    got = ok_result(finish, "runs.get")
    run = got["run"]
    assert run["uuid"] == ctx["runUuid"]
    assert run["batchUuid"] == b["uuid"] and run["workflowUuid"] == b["workflowUuid"]
    assert run["status"] == listed[run["uuid"]]["status"] == "success"
    assert run["recordId"] == listed[run["uuid"]]["recordId"]
    assert run["executions"], "a finished run has executions"
    exec_slugs = [e["nodeSlug"] for e in run["executions"]]
    assert all(exec_slugs) and set(exec_slugs) <= slugs, f"execution node slugs {exec_slugs} vs release {sorted(slugs)}"
    assert {e["nodeUuid"] for e in run["executions"]} <= {n["uuid"] for n in release["nodes"]}
    assert all(e["status"] == "success" for e in run["executions"]), [e["status"] for e in run["executions"]]
    # runContext / runComputedConfigs: objects keyed by node slug (REFERENCE.md 3.5)
    for key in ("runContext", "runComputedConfigs"):
        assert isinstance(got[key], dict), f"{key} must be an object, got {type(got[key]).__name__}"
        assert set(got[key]) <= slugs, f"{key} keys {sorted(got[key])} are not node slugs {sorted(slugs)}"
    assert got["runContext"], "a successful run has node outputs in runContext"
    req = get_call(finish, "runs.get")["wire"][0]
    assert req["method"] == "GET" and req["url"].endswith(f"/orchestration/runs/{ctx['runUuid']}")


def test_run_get_keeps_context_nulls(finish):
    """The official client keeps runContext/runComputedConfigs raw (nulls included) and converts
    the rest: what it returned must equal the raw body under exactly that rule."""
    from .schemas import client_view

    c = get_call(finish, "runs.get")
    raw = json.loads(c["wire"][-1]["responseText"])
    # JSON round trip of the driver output turned undefined into missing keys, as client_view does
    assert ok_result(finish, "runs.get") == client_view("GetRunResult", raw)


def test_current_user_created_the_batches(start, finish):
    user = ok_result(finish, "users.current")["user"]
    creators = {key: ok_result(start, f"batches.create.{key}")["batch"]["userUuid"] for key in KINDS}
    assert all(u == user["uuid"] for u in creators.values()), (
        f"batches created with the token carry userUuid {creators}, current user is {user['uuid']}")
    header_names = {k.lower() for k in get_call(finish, "users.current")["wire"][0]["requestHeaders"]}
    assert "selected-workspace-uuid" not in header_names


def test_failed_run_get(finish):
    """A failed run fetched by uuid (the driver takes one from runs.list when the batch has any):
    error status and message on the run, and an execution that failed."""
    from . import schemas

    b = ok_result(finish, "batches.get.playFilter.finished")["batch"]
    assert (finish["context"]["errorRunUuid"] is not None) == (b["failedRunsCount"] > 0)
    if b["failedRunsCount"] == 0:
        return  # nothing failed in this batch: no failed run to fetch
    got = ok_result(finish, "runs.get.error")
    run = got["run"]
    assert run["uuid"] == finish["context"]["errorRunUuid"]
    assert run["status"] == "error" and run.get("errorMessage"), (run["status"], run.get("errorMessage"))
    assert any(e["status"] == "error" for e in run["executions"]), [e["status"] for e in run["executions"]]
    raw = json.loads(get_call(finish, "runs.get.error")["wire"][-1]["responseText"])
    schemas.validate("GetRunResponse", raw, context="runs.get.error raw body")
    schemas.validate_client_view("GetRunResult", raw, context="runs.get.error after nullToUndefined")


def test_single_run_cancel(start, finish):
    """runs.cancel (``{workflowUuid, uuids}``, REFERENCE.md 3.5) on a pending single run: void, the run reads
    ``cancelling``, and once the clock moved it is ``cancelled`` with ``finishedAt`` and no execution."""
    run = ok_result(start, "runs.create.toCancel")["run"]
    assert run["status"] == "pending" and run.get("batchUuid") is None
    cancel = get_call(start, "runs.cancel")
    assert cancel["ok"] and cancel.get("result") is None, cancel  # void
    (ex,) = cancel["wire"]
    assert ex["method"] == "POST" and ex["url"].endswith("/orchestration/runs/cancel") and ex["status"] == 200
    assert json.loads(ex["requestBody"]) == {"workflowUuid": run["workflowUuid"], "uuids": [run["uuid"]]}
    assert ok_result(start, "runs.get.cancelling")["run"]["status"] == "cancelling"
    done = ok_result(finish, "runs.get.cancelled")["run"]
    assert done["uuid"] == run["uuid"] and done["status"] == "cancelled"
    assert done["finishedAt"] is not None and not done["executions"]
