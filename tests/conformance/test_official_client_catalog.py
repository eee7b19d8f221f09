"""The official TypeScript client (@cargo-ai/api 1.0.57) against the emulator: read-only
endpoints and error cases. Each test asserts values, not just that the call went through."""

from __future__ import annotations

import json

import pytest

from ._helpers import assert_error, get_call, ok_result

MISSING = "00000000-0000-4000-8000-000000000000"


def test_driver_completed(catalog_run):
    assert catalog_run.get("fatal") is None, catalog_run["fatal"]["stack"]


def test_workflows_list(catalog_run):
    workflows = ok_result(catalog_run, "workflows.list")["workflows"]
    plays = ok_result(catalog_run, "plays.list")["plays"]
    tools = ok_result(catalog_run, "tools.list")["tools"]
    by_uuid = {w["uuid"]: w for w in workflows}
    for p in plays:
        assert p["workflowUuid"] in by_uuid, f"play {p['name']!r} points to unknown workflow"
        assert by_uuid[p["workflowUuid"]].get("playUuid") == p["uuid"]
    for t in tools:
        assert t["workflowUuid"] in by_uuid, f"tool {t['name']!r} points to unknown workflow"
        assert by_uuid[t["workflowUuid"]].get("toolUuid") == t["uuid"]


def test_plays_list_and_filters(catalog_run):
    plays = ok_result(catalog_run, "plays.list")["plays"]
    names = {p["name"] for p in plays}
    assert "Score inbound companies" in names, names
    ctx = catalog_run["context"]
    enabled = ok_result(catalog_run, "plays.list.enabled")["plays"]
    assert all(p["isEnabled"] is True for p in enabled)
    assert {p["uuid"] for p in enabled} == {p["uuid"] for p in plays if p["isEnabled"]}
    by_model = ok_result(catalog_run, "plays.list.byModel")["plays"]
    assert by_model and all(p["modelUuid"] == ctx["play"]["modelUuid"] for p in by_model)
    assert {p["uuid"] for p in by_model} == {p["uuid"] for p in plays if p["modelUuid"] == ctx["play"]["modelUuid"]}
    by_segment = ok_result(catalog_run, "plays.list.bySegment")["plays"]
    assert [p["uuid"] for p in by_segment] == [ctx["play"]["uuid"]]
    # the client serialises the params into the query string; the emulator must honour them
    assert "isEnabled=true" in get_call(catalog_run, "plays.list.enabled")["wire"][0]["url"]


def test_play_get_and_not_found(catalog_run):
    play = ok_result(catalog_run, "plays.get")["play"]
    assert play["uuid"] == catalog_run["context"]["play"]["uuid"]
    assert play["name"] == catalog_run["context"]["play"]["name"]
    assert_error(catalog_run, "plays.get.missing", type_="RequestError", reason="playNotFound",
                 message="Play not found.", status_range=(400, 499))


def test_tool_get_and_not_found(catalog_run):
    tool = ok_result(catalog_run, "tools.get")["tool"]
    assert tool["uuid"] == catalog_run["context"]["tool"]["uuid"]
    assert "Enrich company" in {t["name"] for t in ok_result(catalog_run, "tools.list")["tools"]}
    assert_error(catalog_run, "tools.get.missing", type_="RequestError", reason="toolNotFound",
                 message="Tool not found.", status_range=(400, 499))


def test_releases(catalog_run):
    ctx = catalog_run["context"]
    deployed = ok_result(catalog_run, "releases.deployed")["release"]
    assert deployed["workflowUuid"] == ctx["play"]["workflowUuid"]
    assert deployed["status"] == "deployed"
    assert deployed["nodes"], "a deployed play release has nodes"
    slugs = [n["slug"] for n in deployed["nodes"]]
    assert len(set(slugs)) == len(slugs) and all(slugs), f"node slugs must be unique and non-empty: {slugs}"
    same = ok_result(catalog_run, "releases.get")["release"]
    assert same["uuid"] == deployed["uuid"]
    tool_release = ok_result(catalog_run, "releases.deployed.tool")["release"]
    form = {f["slug"] for f in tool_release.get("formFields") or []}
    assert {"domain", "company_name"} <= form, f"tool release formFields: {form}"
    assert_error(catalog_run, "releases.deployed.missing", type_="RequestError", reason="releaseNotFound",
                 message="Deployed release not found.", status_range=(400, 499))


def test_models_list(catalog_run):
    models = ok_result(catalog_run, "models.list")["models"]
    slugs = {m["slug"] for m in models}
    assert {"companies", "contacts"} <= slugs, slugs


def test_segments_list_get(catalog_run):
    segments = ok_result(catalog_run, "segments.list")["segments"]
    standalone = [s for s in segments if s["fromPlay"] is False]
    owned = [s for s in segments if s["fromPlay"] is True]
    assert len(standalone) >= 2 and owned, [(s["name"], s["fromPlay"]) for s in segments]
    plays = ok_result(catalog_run, "plays.list")["plays"]
    assert {p["segmentUuid"] for p in plays} <= {s["uuid"] for s in owned}, "every play owns a fromPlay segment"
    seg = ok_result(catalog_run, "segments.get")["segment"]
    assert seg["uuid"] == catalog_run["context"]["standalone"]["uuid"]


def test_segments_fetch_with_real_filter(catalog_run):
    ctx = catalog_run["context"]
    everything = ok_result(catalog_run, "segments.fetch.all")
    assert everything["count"] >= len(everything["records"]) > 0
    assert len(everything["records"]) <= 5, "fetchingLimit=5 must cap the page"
    assert all("_id" in r for r in everything["records"])
    filtered = ok_result(catalog_run, "segments.fetch.filter")
    col, value = ctx["filterColumn"], ctx["filterValue"]
    assert filtered["count"] >= 1, f"filter {col} is {value!r} (value taken from a real record) matched nothing"
    assert filtered["count"] < everything["count"], "an 'is' filter on one value must narrow the result"
    assert len(filtered["records"]) == min(filtered["count"], 50)
    assert all(r[col] == value for r in filtered["records"]), [r[col] for r in filtered["records"]]
    assert isinstance(filtered["isRefreshing"], bool)
    if ctx.get("numberColumn"):
        num = ok_result(catalog_run, "segments.fetch.number")
        ncol, threshold = ctx["numberColumn"], ctx["numberThreshold"]
        assert all(r[ncol] > threshold for r in num["records"]), f"{ncol} > {threshold} violated"
        assert num["count"] < everything["count"]


def test_changes_list(catalog_run):
    seg_uuid = catalog_run["context"]["standalone"]["uuid"]
    changes = ok_result(catalog_run, "changes.list")["changes"]
    assert changes, "seeded standalone segments have changes"
    assert all(c["segmentUuid"] == seg_uuid for c in changes)
    for c in changes:
        parts = c["addedRecordsCount"] + c["updatedRecordsCount"] + c["unchangedRecordsCount"]
        assert c["totalRecordsCount"] >= 0 and parts >= 0
    # CARGO-DOCS 8.2 / 10.2: changes/list requires segmentUuid; the zod issue names the path
    err = assert_error(catalog_run, "changes.list.all", type_="RequestError", reason="invalid_type", status=400)
    body = json.loads(get_call(catalog_run, "changes.list.all")["wire"][-1]["responseText"])
    assert body["issues"][0]["path"] == ["segmentUuid"], (err, body)


def test_billing_and_workspace(catalog_run):
    metrics = ok_result(catalog_run, "billing.usage")["metrics"]
    assert isinstance(metrics, list)
    for m in metrics:
        assert all(isinstance(i["count"], (int, float)) for i in m["items"])
    grouped = ok_result(catalog_run, "billing.usage.grouped")["metrics"]
    assert isinstance(grouped, list)
    sub = ok_result(catalog_run, "billing.subscription")["subscription"]
    assert sub["subscriptionAvailableCreditsCount"] >= sub["subscriptionCreditsUsedCount"] >= 0
    assert sub["hasCredits"] is True
    ws = ok_result(catalog_run, "workspace.current")["workspace"]
    assert ws["uuid"] == catalog_run["workspace_uuid"]


def test_error_invalid_data_kind(catalog_run):
    assert_error(catalog_run, "batches.create.recordsToPlay", type_="RequestError", reason="invalidDataKind",
                 message="Invalid data kind for workflow type.", status_range=(400, 499))


def test_error_workflow_not_found(catalog_run):
    assert_error(catalog_run, "batches.create.unknownWorkflow", type_="RequestError", reason="workflowNotFound",
                 message="Workflow not found.", status_range=(400, 499))


def test_error_segment_linked_to_play(catalog_run):
    assert catalog_run["context"]["playSegment"]["fromPlay"] is True
    assert_error(
        catalog_run, "batches.create.playSegment", type_="RequestError", reason="dataError",
        data_error_reason="segmentLinkedToPlay", status_range=(400, 499),
        message='This segment belongs to a play and cannot be enrolled directly. Trigger the play with '
                '{"kind":"filter","modelUuid":"<uuid>"} instead.',
    )


def test_error_wrong_token(auth_run):
    assert auth_run.get("fatal") is None
    for name in ("workspace.current", "plays.list", "batches.create"):
        assert_error(auth_run, name, type_="AuthorizationError", reason=None, status=401,
                     message=None)
        assert get_call(auth_run, name)["error"]["type"] == "AuthorizationError"


def test_error_not_enough_credits(credits_run):
    assert credits_run.get("fatal") is None
    for name in ("batches.create.noCredits.play", "batches.create.noCredits.tool"):
        assert_error(credits_run, name, type_="RequestError", reason="notEnoughCredits",
                     message="Not enough credits.", status_range=(400, 499))
    sub = ok_result(credits_run, "billing.subscription")["subscription"]
    assert sub["hasCredits"] is False, "a workspace started with credits=0 reports hasCredits=false"


@pytest.mark.parametrize("name", ["plays.get.missing", "tools.get.missing", "releases.deployed.missing",
                                  "models.get.missing"])
def test_not_found_is_4xx_not_401(catalog_run, name):
    status = get_call(catalog_run, name)["wire"][-1]["status"]
    assert 400 <= status < 499 and status != 401, status


def test_model_get_and_not_found(catalog_run):
    ctx = catalog_run["context"]
    model = ok_result(catalog_run, "models.get")["model"]
    assert model["uuid"] == ctx["model"]["uuid"]
    assert model["slug"] == ctx["model"]["slug"], (model["slug"], ctx["model"]["slug"])
    listed = {m["uuid"]: m for m in ok_result(catalog_run, "models.list")["models"]}
    assert model["name"] == listed[model["uuid"]]["name"], "get and list disagree on the model"
    assert model["workspaceUuid"] == catalog_run["workspace_uuid"]
    url = get_call(catalog_run, "models.get")["wire"][0]["url"]
    assert url.endswith(f"/storage/models/{model['uuid']}"), url
    assert_error(catalog_run, "models.get.missing", type_="RequestError", reason="modelNotFound",
                 message="Model not found.", status_range=(400, 499))


def test_datasets_list(catalog_run):
    datasets = ok_result(catalog_run, "datasets.list")["datasets"]
    assert datasets, "the seeded workspace has datasets"
    uuids = [d["uuid"] for d in datasets]
    assert len(set(uuids)) == len(uuids) and all(uuids)
    assert all(d["kind"] in {"connector", "native"} for d in datasets), [d.get("kind") for d in datasets]
    assert all(d["workspaceUuid"] == catalog_run["workspace_uuid"] for d in datasets)
    models = ok_result(catalog_run, "models.list")["models"]
    missing = {m["slug"]: m["datasetUuid"] for m in models if m["datasetUuid"] not in set(uuids)}
    assert not missing, f"models point to datasets absent from datasets/list: {missing}"
    wire = get_call(catalog_run, "datasets.list")["wire"][0]
    assert wire["method"] == "GET" and wire["requestBody"] is None, "GET with an empty payload sends no body"


def test_current_user(catalog_run):
    user = ok_result(catalog_run, "users.current")["user"]
    assert isinstance(user["uuid"], str) and user["uuid"]
    assert isinstance(user["email"], str) and "@" in user["email"], user["email"]
    again = ok_result(catalog_run, "users.current.withWorkspace")["user"]
    assert again["uuid"] == user["uuid"], "the workspace header must not change who the token is"


def test_current_user_sent_without_workspace_header(catalog_run):
    """The official client flags getCurrent user "without workspace" (REFERENCE.md 2.2): even
    when built with a workspace UUID it omits selected-workspace-uuid there, and only there."""
    ws = catalog_run["workspace_uuid"]

    def headers(name):
        return {k.lower(): v for k, v in get_call(catalog_run, name)["wire"][0]["requestHeaders"].items()}

    user_headers = headers("users.current.withWorkspace")
    assert "selected-workspace-uuid" not in user_headers, user_headers
    assert user_headers.get("authorization", "").startswith("Bearer ")
    assert headers("workspace.current.withWorkspace").get("selected-workspace-uuid") == ws
