"""Transport behaviour: auth, errors, unknown routes, request log, bodies on DELETE / none on POST."""

from __future__ import annotations

import httpx

from .conftest import TOKEN


def test_missing_and_wrong_token_401(emu) -> None:
    r = httpx.get(emu.api_url + "/orchestration/plays/list")
    assert r.status_code == 401 and r.json()["errorMessage"]
    r = httpx.get(emu.api_url + "/orchestration/plays/list", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401
    r = httpx.get(emu.api_url + "/orchestration/plays/list", headers={"authorization": TOKEN})
    assert r.status_code == 401


def test_unknown_route_404_json(api: httpx.Client) -> None:
    r = api.get("/orchestration/nope")
    assert r.status_code == 404 and "errorMessage" in r.json()
    r = api.request("DELETE", "/segmentation/segments/x", json={})
    assert r.status_code == 404 and r.json()["errorMessage"]


def test_not_found_reasons(api: httpx.Client) -> None:
    for path, reason, msg in [
        ("/orchestration/plays/00000000-0000-4000-8000-000000000000", "playNotFound", "Play not found."),
        ("/orchestration/tools/x", "toolNotFound", "Tool not found."),
        ("/orchestration/releases/deployed?workflowUuid=x", "releaseNotFound", "Deployed release not found."),
    ]:
        r = api.get(path)
        assert r.status_code == 404
        assert r.json() == {"errorMessage": msg, "reason": reason}
    r = api.post("/orchestration/batches/x/cancel")
    assert r.status_code == 404 and r.json()["reason"] == "batchNotFound"


def test_request_log_redacts_token(emu, api: httpx.Client) -> None:
    emu.request_log.clear()
    api.post("/orchestration/runs/count", json={"isFinished": True})
    api.get("/orchestration/batches/list?statuses%5B%5D=running")
    first, second = emu.request_log
    assert first["method"] == "POST" and first["path"] == "/v1/orchestration/runs/count"
    assert first["json"] == {"isFinished": True}
    assert first["headers"]["authorization"] == "REDACTED"
    assert TOKEN not in str(emu.request_log)
    assert second["query"] == "statuses%5B%5D=running" and second["json"] is None


def test_workspace_header(emu, api: httpx.Client) -> None:
    ok = api.get("/workspaceManagement/workspaces/current",
                 headers={"selected-workspace-uuid": emu.workspace_uuid})
    assert ok.status_code == 200 and ok.json()["workspace"]["uuid"] == emu.workspace_uuid
    bad = api.get("/workspaceManagement/workspaces/current", headers={"selected-workspace-uuid": "other"})
    assert bad.status_code == 403


def test_invalid_json_400(api: httpx.Client) -> None:
    r = api.post("/orchestration/runs/list", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_keep_alive_reuses_connection(emu) -> None:
    with httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as c:
        for _ in range(5):
            assert c.get("/storage/models/list").status_code == 200
