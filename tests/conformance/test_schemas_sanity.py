"""The generated schemas are real constraints (negative controls) and cover every type the
suite promises. If these fail, the generation pipeline is broken, not the emulator."""

from __future__ import annotations

import json

import pytest

from . import schemas

DOMAIN = ["Batch", "Run", "RunMetric", "Play", "Tool", "Workflow", "Release", "Segment", "Change", "Model",
          "Dataset", "UsageMetric", "EnrichedSubscription", "Workspace", "User"]


def test_versions_are_pinned(node_ready):
    lock = json.loads(schemas._toolchain.LOCKFILE.read_text())
    pk = lock["packages"]
    assert pk["node_modules/@cargo-ai/api"]["version"] == "1.0.57"
    assert pk["node_modules/@cargo-ai/types"]["version"] == "1.0.56"
    for name, version in (("@cargo-ai/api", "1.0.57"), ("@cargo-ai/types", "1.0.56")):
        installed = json.loads((schemas._toolchain.NODE_MODULES / name / "package.json").read_text())["version"]
        assert installed == version


def test_manifest_covers_everything(schema_dir):
    names = set(schemas.schema_names())
    missing = set(DOMAIN) | set(schemas.PAYLOAD_TYPES.values()) | {n for pair in schemas.RESPONSE_TYPES.values() for n in pair}
    assert missing <= names, sorted(missing - names)


@pytest.mark.parametrize("name", DOMAIN + sorted({p[0] for p in schemas.RESPONSE_TYPES.values()}))
def test_empty_object_is_rejected(schema_dir, name):
    with pytest.raises(AssertionError, match="required"):
        schemas.validate(name, {})


def _batch():
    return {"uuid": "u", "workspaceUuid": "w", "workflowUuid": "wf", "userUuid": None, "releaseUuid": "r",
            "nodes": None, "temporalWorkflowId": "t", "traceUuid": None,
            "data": {"kind": "filter", "modelUuid": "m", "filter": {"conjonction": "and", "groups": []}},
            "errorMessage": None, "status": "pending", "runsStatus": None, "runsCount": 0,
            "executedRunsCount": 0, "failedRunsCount": 0, "creditsUsedCount": 0,
            "createdAt": "2025-01-15T10:00:00.000Z", "updatedAt": "2025-01-15T10:00:00Z", "finishedAt": None}


def test_batch_controls(schema_dir):
    schemas.validate("Batch", _batch())
    for mutation, expect in [
        ({"status": "done"}, "$.status"),
        ({"createdAt": "yesterday"}, "$.createdAt"),
        ({"surprise": 1}, "surprise"),
        ({"data": {"kind": "records", "records": []}}, "$.data"),
        ({"runsCount": "3"}, "$.runsCount"),
    ]:
        with pytest.raises(AssertionError, match=expect.replace("$", r"\$").replace(".", r"\.")):
            schemas.validate("Batch", {**_batch(), **mutation})
    missing = _batch()
    del missing["finishedAt"]  # nullable but required on the wire
    with pytest.raises(AssertionError, match="finishedAt"):
        schemas.validate("Batch", missing)
    # the client view drops null-valued keys instead
    schemas.validate_client_view("GetBatchResult", {"batch": _batch()})
    with pytest.raises(AssertionError):
        schemas.validate("GetBatchResult", {"batch": _batch()})


def test_payload_controls(schema_dir):
    f = {"conjonction": "and", "groups": [{"conjonction": "or", "conditions": [
        {"kind": "string", "columnSlug": "domain", "operator": "is", "values": ["a.com"]}]}]}
    schemas.validate_request("POST", "/v1/orchestration/batches",
                             {"workflowUuid": "w", "data": {"kind": "filter", "modelUuid": "m", "filter": f}})
    with pytest.raises(AssertionError, match=r"\$\.data: 'segmentUuid' is a required property"):
        schemas.validate_request("POST", "/v1/orchestration/batches", {"workflowUuid": "w", "data": {"kind": "segment"}})
    with pytest.raises(AssertionError, match="conjonction"):
        schemas.validate_request("POST", "/v1/segmentation/segments/fetch",
                                 {"modelUuid": "m", "filter": {"conjunction": "and", "groups": []}})
    with pytest.raises(AssertionError, match="uuid"):
        schemas.validate_request("POST", "/v1/orchestration/batches/abc/download", {"uuid": "abc"})
    schemas.validate_request("GET", "/v1/orchestration/batches/list",
                             query="workflowUuids%5B%5D=a&statuses%5B%5D=running&hasRuns=true&limit=20&offset=0")
    with pytest.raises(AssertionError, match=r"\$\.statuses"):
        schemas.validate_request("GET", "/v1/orchestration/batches/list", query="statuses%5B%5D=finished")
    with pytest.raises(AssertionError, match="no body"):
        schemas.validate_request("POST", "/v1/orchestration/batches/abc/cancel", {"x": 1})


def _user():
    return {"uuid": "u", "email": "a@b.c", "firstName": None, "lastName": "L", "picture": None,
            "lastSignInAt": None, "createdAt": "2025-01-15T10:00:00Z", "updatedAt": "2025-01-15T10:00:00Z",
            "webExtensionData": None}


def test_user_controls(schema_dir):
    schemas.validate("GetCurrentUserResponse", {"user": _user()})
    schemas.validate_client_view("GetCurrentUserResult", {"user": _user()})
    for mutation, expect in [({"workspaceUuid": "w"}, "workspaceUuid"), ({"lastSignInAt": "never"}, r"\$\.user\.lastSignInAt"),
                             ({"role": {}}, "role")]:
        with pytest.raises(AssertionError, match=expect):
            schemas.validate("GetCurrentUserResponse", {"user": {**_user(), **mutation}})
    missing = _user()
    del missing["picture"]
    with pytest.raises(AssertionError, match="picture"):
        schemas.validate("GetCurrentUserResponse", {"user": missing})


def test_get_run_controls(schema_dir):
    """runContext / runComputedConfigs are required objects; the client view keeps them raw."""
    def problems(body):  # all of them: an empty run alone yields more than validate() shows
        return "\n".join(schemas.describe_errors("GetRunResponse", body, max_errors=1000))

    assert "'runContext' is a required property" in problems({"run": {}, "runComputedConfigs": {}})
    assert "'surprise' was unexpected" in problems({"run": {}, "runComputedConfigs": {}, "runContext": {},
                                                    "surprise": 1})
    assert "$.runContext: None is not of type 'object'" in problems({"run": {}, "runComputedConfigs": {},
                                                                     "runContext": None})
    raw = {"run": {"errorMessage": None}, "runContext": {"a": {"x": None}}, "runComputedConfigs": {"a": None}}
    assert schemas.client_view("GetRunResult", raw) == {
        "run": {}, "runContext": {"a": {"x": None}}, "runComputedConfigs": {"a": None}}
