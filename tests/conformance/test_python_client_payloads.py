"""The project's own Python client (cargo_gtm.CargoClient) sends request bodies and
query strings that conform to the official @cargo-ai/api payload types. Requests are taken
from the emulator's request log and validated with schemas.validate_request."""

from __future__ import annotations

import pytest

from . import schemas
from .conftest import TOKEN


@pytest.fixture(scope="module")
def python_client_log(emulator_cls, schema_dir):
    try:
        from cargo_gtm import CargoClient
    except ImportError as e:
        pytest.fail(f"cargo_gtm.CargoClient cannot be imported: {e}", pytrace=False)
    # manual clock: batches stay unfinished until we advance it, so cancel is always valid
    with emulator_cls(token=TOKEN, seed=3, port=0, run_failure_rate=0.0, clock="manual") as emu:
        # built with a workspace UUID, so every call but the "without workspace" ones carries
        # selected-workspace-uuid (REFERENCE.md 2.2; checked by test_python_client_workspace_header)
        client = CargoClient(TOKEN, base_url=emu.base_url, workspace_uuid=emu.workspace_uuid)
        try:
            plays = client.list_plays()
            client.list_plays(is_enabled=True) if _accepts(client.list_plays, "is_enabled") else None
            play = client.find_play("Score inbound companies")
            tool = client.find_tool("Enrich company")
            client.list_workflows()
            client.list_tools()
            client.get_play(play.uuid)
            client.get_tool(tool.uuid)
            release = client.get_deployed_release(play.workflow_uuid)
            client.get_release(release.uuid)
            models = client.list_models()
            segments = client.list_segments()
            standalone = next(s for s in segments if not s.from_play)
            client.get_segment(standalone.uuid)
            f = {"conjonction": "and", "groups": [{"conjonction": "or", "conditions": [
                {"kind": "string", "columnSlug": "domain", "operator": "isNotNull"}]}]}
            client.fetch_segment(play.model_uuid, f, fetching_limit=5, fetching_offset=0)
            client.list_changes(segment_uuid=standalone.uuid, not_empty=True, limit=5, offset=0)
            client.get_usage_metrics("2025-01-01", "2025-01-31", group_by="workflow_uuid", unit="billing.credits")
            client.get_subscription()
            client.get_current_workspace()
            me = client.get_current_user()
            client.get_model(play.model_uuid)
            client.list_datasets()
            b1 = client.create_batch(play.workflow_uuid, {"kind": "filter", "modelUuid": play.model_uuid,
                                                          "filter": f, "limit": 3})
            b2 = client.create_batch(tool.workflow_uuid, {"kind": "records", "records": [
                {"domain": "acme.example", "company_name": "Acme"}]})
            b3 = client.create_batch(play.workflow_uuid, {"kind": "filter", "modelUuid": play.model_uuid, "limit": 2})
            client.cancel_batch(b3.uuid)
            client.list_batches(workflow_uuids=[play.workflow_uuid, tool.workflow_uuid],
                                statuses=["pending", "running"], has_runs=True, limit=10, offset=0)
            done = {}
            for _ in range(2000):
                done = {u: client.get_batch(u) for u in (b1.uuid, b2.uuid)}
                if all(b.status in ("success", "error", "cancelled") for b in done.values()):
                    break
                emu.advance(30)
            assert all(b.status == "success" for b in done.values()), {u: b.status for u, b in done.items()}
            client.get_batch_download_url(b1.uuid)
            client.get_batch_download_url(b1.uuid, output_node_slug=release.nodes[-1].slug)
            client.list_runs(workflow_uuid=play.workflow_uuid, batch_uuid=b1.uuid, statuses=["success"],
                             limit=10, offset=0)
            client.count_runs(workflow_uuid=play.workflow_uuid, batch_uuid=b1.uuid, is_finished=True)
            client.get_run_metrics(play.workflow_uuid, batch_uuid=b1.uuid)
            runs = client.list_runs(workflow_uuid=play.workflow_uuid, batch_uuid=b1.uuid)
            client.get_run(runs.runs[0].uuid)
            client.get_run_outputs_download_url(play.workflow_uuid, batch_uuid=b1.uuid, format="json")
            client.get_run_outputs_download_url(play.workflow_uuid, batch_uuid=b1.uuid, format="csv",
                                                output_node_slug=release.nodes[-1].slug)
        finally:
            client.close()
        assert plays and models and me.uuid
        return list(emu.request_log)


def _accepts(fn, kw: str) -> bool:
    import inspect

    return kw in inspect.signature(fn).parameters


def test_python_client_requests_match_official_payload_types(python_client_log):
    checked, problems = set(), []
    for entry in python_client_log:
        if entry["path"].startswith("/_files/"):
            continue
        key = schemas.route(entry["method"], entry["path"])
        if key not in schemas.PAYLOAD_TYPES and key not in schemas.NO_BODY:
            continue
        headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
        try:
            schemas.validate_request(entry["method"], entry["path"], body=entry.get("json"),
                                     query=entry.get("query"))
            if key in schemas.NO_BODY:
                assert "content-type" not in headers, f"{key}: content-type sent without a body"
            elif key[0] != "GET":
                assert headers.get("content-type", "").startswith("application/json"), f"{key}: content-type"
            checked.add(key)
        except AssertionError as e:
            problems.append(f"{entry['method']} {entry['path']}?{entry.get('query') or ''}\n{e}")
    assert not problems, "\n\n".join(problems)
    expected = set(schemas.PAYLOAD_TYPES) | schemas.NO_BODY
    assert checked == expected, f"endpoints not exercised: {sorted(expected - checked)}"


def test_python_client_sends_auth(python_client_log):
    api = [e for e in python_client_log if e["path"].startswith("/v1/")]
    assert api and all("authorization" in {k.lower() for k in e["headers"]} for e in api)


def test_python_client_workspace_header(python_client_log):
    """Like the official client: with a workspace UUID configured, GET /userManagement/users/current
    goes out WITHOUT selected-workspace-uuid (flagged "without workspace"), every other call WITH it."""
    seen_without, problems, others = 0, [], 0
    for entry in python_client_log:
        if not entry["path"].startswith("/v1/"):
            continue
        key = schemas.route(entry["method"], entry["path"])
        headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
        value = headers.get("selected-workspace-uuid")
        if key in schemas.WITHOUT_WORKSPACE:
            seen_without += 1
            if value is not None:
                problems.append(f"{key[0]} {key[1]}: sent selected-workspace-uuid={value!r}; the official "
                                "client omits it on this call even when configured")
        else:
            others += 1
            if not value:
                problems.append(f"{key[0]} {key[1]}: no selected-workspace-uuid header although the client "
                                "was built with a workspace UUID")
    assert not problems, "\n".join(problems)
    assert seen_without >= 1, "CargoClient.get_current_user() made no GET /userManagement/users/current request"
    assert others >= 20, f"only {others} other requests checked"

