"""The in-process transport (no socket), the inspection API and the control plane's reset / outputs /
redeploy / batches routes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator

from .conftest import TOKEN, run_to_completion


@pytest.fixture()
def local() -> Iterator[CargoEmulator]:
    """An emulator that is never started: no port, no thread."""
    yield CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.1, clock="manual")


@pytest.fixture()
def lapi(local: CargoEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=local.transport(), base_url=local.in_process_url + "/v1",
                      headers={"authorization": f"Bearer {TOKEN}"}, timeout=5) as client:
        yield client


def _tool_batch(emu: CargoEmulator, api: httpx.Client, domains: list[str]) -> dict:
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    r = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {
        "kind": "records", "records": [{"domain": d} for d in domains]}})
    assert r.status_code == 200, r.text
    return run_to_completion(emu, api, r.json()["batch"]["uuid"])


def test_in_process_batch_lifecycle_and_download(local: CargoEmulator, lapi: httpx.Client) -> None:
    assert local._httpd is None  # never bound a socket
    batch = _tool_batch(local, lapi, ["stripe.com", "notion.so", "linear.app"])
    assert batch["status"] == "success" and batch["runsCount"] == 3
    url = lapi.post(f"/orchestration/batches/{batch['uuid']}/download", json={}).json()["url"]
    assert url.startswith(local.in_process_url + "/_files/")
    rows = list(csv.DictReader(io.StringIO(lapi.get(url).text)))
    assert [r["domain"] for r in rows] == ["stripe.com", "notion.so", "linear.app"]
    assert [e["method"] + " " + e["path"] for e in local.requests(path="/v1/orchestration/batches")] == [
        "POST /v1/orchestration/batches"]


def test_in_process_serves_what_the_socket_serves(local: CargoEmulator, lapi: httpx.Client) -> None:
    unauthorized = httpx.Client(transport=local.transport(), base_url=local.in_process_url + "/v1")
    assert unauthorized.get("/orchestration/plays/list").status_code == 401
    with local:  # the same emulator, now also on loopback
        with httpx.Client(base_url=local.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as wire:
            for path in ("/orchestration/plays/list", "/orchestration/workflows/list", "/nope",
                         "/orchestration/batches/unknown"):
                over_socket, in_process = wire.get(path), lapi.get(path)
                assert (in_process.status_code, in_process.json()) == (over_socket.status_code, over_socket.json())
                assert in_process.headers["content-type"] == over_socket.headers["content-type"]


def test_in_process_faults(local: CargoEmulator, lapi: httpx.Client) -> None:
    local.faults.next("GET /orchestration/plays/list", "connection_reset")
    with pytest.raises(httpx.RemoteProtocolError):
        lapi.get("/orchestration/plays/list")
    local.faults.next("GET /orchestration/plays/list", "slow_response", seconds=60)
    with pytest.raises(httpx.ReadTimeout):  # longer than the 5 s read timeout: raised at once, no wait
        lapi.get("/orchestration/plays/list")
    local.faults.next("GET /orchestration/plays/list", "server_error", status=503)
    assert lapi.get("/orchestration/plays/list").status_code == 503
    batch = _tool_batch(local, lapi, ["stripe.com"])
    url = lapi.post(f"/orchestration/batches/{batch['uuid']}/download", json={}).json()["url"]
    local.faults.next("GET /_files/*", "truncated_download")
    with pytest.raises(httpx.RemoteProtocolError):
        lapi.get(url)
    assert lapi.get(url).status_code == 200
    assert {k: v for k, v in local.faults.counts.items() if v} == {
        "connection_reset": 1, "slow_response": 1, "server_error": 1, "truncated_download": 1}
    assert [e.get("fault") for e in local.requests("GET", "/_files/*")] == ["truncated_download", None]


def test_in_process_lost_create_response_commits_the_batch(local: CargoEmulator, lapi: httpx.Client) -> None:
    local.faults.next("POST /orchestration/batches", "lost_create_response")
    wf = local.store.tool_by_name("Enrich company")["workflowUuid"]
    with pytest.raises(httpx.RemoteProtocolError):
        lapi.post("/orchestration/batches", json={"workflowUuid": wf, "data": {
            "kind": "records", "records": [{"domain": "stripe.com"}]}})
    (batch,) = local.batches()
    assert batch.workflow_name == "Enrich company" and batch.record_ids and batch.inputs == (
        {"domain": "stripe.com"},)


def test_in_process_gzip_transport_is_decoded(local: CargoEmulator, lapi: httpx.Client) -> None:
    local.set_variants(download_gzip="transport")
    batch = _tool_batch(local, lapi, ["stripe.com"])
    url = lapi.post(f"/orchestration/batches/{batch['uuid']}/download", json={}).json()["url"]
    with lapi.stream("GET", url) as resp:
        raw = b"".join(resp.iter_raw())
        assert resp.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).decode().startswith("_id,_title,domain")
    assert lapi.get(url).text.startswith("_id,_title,domain")


def test_inspection_api(local: CargoEmulator, lapi: httpx.Client) -> None:
    done = _tool_batch(local, lapi, ["stripe.com", "bad domain"])
    play = local.store.play_by_name("Score inbound companies")
    started = lapi.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0001"]}}).json()["batch"]
    assert [b.uuid for b in local.batches()] == [done["uuid"], started["uuid"]]  # oldest first
    assert [b.uuid for b in local.batches(workflow="Enrich company")] == [done["uuid"]]
    assert [b.uuid for b in local.batches(workflow=play["uuid"], status="pending")] == [started["uuid"]]
    assert local.batches(status="error") == []
    info = local.batches(workflow="Enrich company")[0]
    assert (info.workflow_kind, info.data_kind, info.status, info.runs_count) == ("tool", "records", "success", 2)
    assert info.wire["uuid"] == done["uuid"] and info.wire["status"] == "success"
    runs = local.runs(batch_uuid=done["uuid"])
    assert [r.input for r in runs] == [{"domain": "stripe.com"}, {"domain": "bad domain"}]
    assert all(r.batch_uuid == done["uuid"] and r.release_uuid == info.release_uuid for r in runs)
    assert [s for s, _ in runs[0].node_statuses] == ["start", "enrich_company", "output"]
    with pytest.raises(KeyError):
        local.runs(batch_uuid="nope")
    with pytest.raises(KeyError):
        local.batches(workflow="No such tool")
    creates = local.requests("post", "/v1/orchestration/batches")
    assert [c["json"]["data"]["kind"] for c in creates] == ["records", "recordIds"]
    assert creates[0]["headers"]["authorization"] == "REDACTED"
    creates[0]["json"]["data"] = None  # copies: the log is untouched
    assert local.requests("POST", "/v1/orchestration/batches")[0]["json"]["data"]["kind"] == "records"


def test_control_plane_reset_outputs_redeploy_batches(emu: CargoEmulator, api: httpx.Client, tmp_path: Path) -> None:
    ctl = httpx.Client(base_url=emu.base_url + "/_emulator", headers={"authorization": f"Bearer {TOKEN}"})
    batch = run_to_completion(emu, api, api.post("/orchestration/batches", json={
        "workflowUuid": emu.store.tool_by_name("Enrich company")["workflowUuid"],
        "data": {"kind": "records", "records": [{"domain": "stripe.com"}]}}).json()["batch"]["uuid"])
    big = tmp_path / "out.csv"
    big.write_text("_id,_title,domain,industry\nr1,R1,a.com,x\nr2,R2,b.com,y\n")
    attached = ctl.post("/outputs", json={"batchUuid": batch["uuid"], "path": str(big)})
    assert attached.status_code == 200, attached.text
    url = api.post(f"/orchestration/batches/{batch['uuid']}/download", json={}).json()["url"]
    assert httpx.get(url).text == big.read_text()
    assert ctl.post("/outputs", json={"batchUuid": "nope", "path": str(big)}).json()["reason"] == "batchNotFound"
    listed = ctl.get("/batches", params={"workflow": "Enrich company"}).json()["batches"]
    assert [b["uuid"] for b in listed] == [batch["uuid"]] and listed[0]["status"] == "success"
    red = ctl.post("/redeploy", json={"workflow": "Enrich company", "description": "v2"})
    assert red.status_code == 200 and red.json()["release"]["version"] == "2"
    assert ctl.post("/redeploy", json={"workflow": "nope"}).json()["reason"] == "workflowNotFound"
    emu.faults.next("*", "server_error")
    reset = ctl.post("/reset")
    assert reset.status_code == 200 and reset.json()["creditsUsed"] == 0
    assert emu.batches() == [] and emu.faults.pending == 0
    assert [e["path"] for e in emu.requests()] == []  # the log restarts (the reset itself is not kept)
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    assert emu.store.release_for(wf)["version"] == "1"  # the redeploy is gone too
    assert api.get("/orchestration/plays/list").status_code == 200  # still serving, no fault pending


def test_control_cli_reset_redeploy_and_batches(emu: CargoEmulator, api: httpx.Client) -> None:
    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cargo_gtm_emulator.control", "--url", emu.base_url, *args],
                              capture_output=True, text=True, timeout=60, env={**os.environ, "CARGO_EMULATOR_TOKEN": TOKEN})

    out = ctl("redeploy", "Enrich company", "--configs", '{"enrich_company": {"reveal": "full"}}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["release"]["version"] == "2"
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    assert emu.store.release_for(wf)["nodes"][1]["config"]["reveal"] == "full"
    assert json.loads(ctl("batches", "--workflow", "Enrich company").stdout) == {"batches": []}
    assert ctl("reset").returncode == 0
    assert emu.store.release_for(wf)["version"] == "1"


def test_reset_restores_the_constructor_fault_profile() -> None:
    from cargo_gtm_emulator import FaultProfile

    profile = FaultProfile(server_error=1.0)
    emu = CargoEmulator(token=TOKEN, clock="manual", faults=profile, variants={"batch_list_order": "oldest_first"})
    emu.faults.profile = None
    emu.set_variants(batch_list_order="unordered")
    emu.advance(60)
    emu.reset()
    assert emu.faults.profile is profile and emu.variants["batch_list_order"] == "oldest_first"
    with httpx.Client(transport=emu.transport(), base_url=emu.in_process_url + "/v1",
                      headers={"authorization": f"Bearer {TOKEN}"}) as api:
        assert api.get("/orchestration/plays/list").status_code in (500, 502, 503)
    assert emu.clock.now() == CargoEmulator(token=TOKEN, clock="manual").clock.now()


def test_client_shortcut(local: CargoEmulator) -> None:
    with local.client(timeout=5) as api:
        assert api.get("/orchestration/tools/list").status_code == 200
        assert local.requests("GET")[-1]["headers"]["authorization"] == "REDACTED"
