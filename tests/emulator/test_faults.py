"""Fault injection observed on the wire with raw httpx (not the project's client)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from cargo_gtm_emulator import FAULT_KINDS, CargoEmulator, FaultProfile
from cargo_gtm_emulator.cli import _fault_profile, build_parser

from .conftest import TOKEN, run_to_completion

DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)
PLAYS = "/orchestration/plays/list"


def _start(profile: FaultProfile | None = None) -> CargoEmulator:
    return CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.0, clock="manual", faults=profile).start()


def _client(emu: CargoEmulator, timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=timeout)


def _create_body(emu: CargoEmulator, n: int = 5) -> dict[str, Any]:
    play = emu.store.play_by_name("Score inbound companies")
    return {"workflowUuid": play["workflowUuid"], "data": {
        "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": [f"cmp_{i:04d}" for i in range(1, n + 1)]}}


def _finished_batch(emu: CargoEmulator, api: httpx.Client) -> str:
    r = api.post("/orchestration/batches", json=_create_body(emu))
    assert r.status_code == 200
    uuid = r.json()["batch"]["uuid"]
    assert run_to_completion(emu, api, uuid)["status"] == "success"
    return str(uuid)


def _download_url(api: httpx.Client, batch_uuid: str) -> str:
    r = api.post(f"/orchestration/batches/{batch_uuid}/download", json={})
    assert r.status_code == 200
    return str(r.json()["url"])


@pytest.fixture()
def femu() -> Iterator[CargoEmulator]:
    emu = _start()
    yield emu
    emu.stop()


@pytest.fixture()
def fapi(femu: CargoEmulator) -> Iterator[httpx.Client]:
    with _client(femu) as c:
        yield c


# ---------------------------------------------------------------------------- no faults by default
def test_no_profile_injects_nothing(femu: CargoEmulator, fapi: httpx.Client) -> None:
    assert femu.faults.profile is None
    for _ in range(20):
        assert fapi.get(PLAYS).status_code == 200
    uuid = _finished_batch(femu, fapi)
    url = _download_url(fapi, uuid)
    assert httpx.get(url).status_code == 200
    assert femu.faults.counts == dict.fromkeys(FAULT_KINDS, 0)
    assert not any("fault" in entry for entry in femu.request_log)


def test_zero_probability_profile_injects_nothing() -> None:
    emu = _start(FaultProfile(seed=7))
    try:
        with _client(emu) as api:
            assert all(api.get(PLAYS).status_code == 200 for _ in range(20))
        assert sum(emu.faults.counts.values()) == 0
    finally:
        emu.stop()


# ---------------------------------------------------------------------------- rate_limit
def test_rate_limit_429_with_retry_after_seconds() -> None:
    emu = _start(FaultProfile(rate_limit=1.0, retry_after_seconds=3, retry_after_http_date_rate=0.0))
    try:
        with _client(emu) as api:
            r = api.get(PLAYS)
            assert r.status_code == 429
            assert r.headers["retry-after"] == "3"
            assert r.headers["content-type"].startswith("application/json")
            assert r.json() == {"errorMessage": "Too many requests", "reason": "rateLimited"}
        assert emu.faults.counts["rate_limit"] == 1
        assert emu.request_log[-1]["fault"] == "rate_limit"
    finally:
        emu.stop()


def test_rate_limit_http_date_form() -> None:
    emu = _start(FaultProfile(rate_limit=1.0, retry_after_seconds=30, retry_after_http_date_rate=1.0))
    try:
        with _client(emu) as api:
            r = api.get(PLAYS)
        assert r.status_code == 429
        value = r.headers["retry-after"]
        assert value.endswith(" GMT") and not value.isdigit()
        sent = parsedate_to_datetime(r.headers["date"])
        delay = (parsedate_to_datetime(value) - sent).total_seconds()
        assert 25 <= delay <= 31
    finally:
        emu.stop()


def test_auth_check_is_never_faulted() -> None:
    emu = _start(FaultProfile(rate_limit=1.0))
    try:
        emu.faults.next("*", "server_error", times=3)
        with httpx.Client(base_url=emu.api_url, headers={"authorization": "Bearer wrong"}) as bad:
            assert bad.get(PLAYS).status_code == 401
            assert bad.post("/orchestration/batches", json={}).status_code == 401
        assert emu.faults.counts == dict.fromkeys(FAULT_KINDS, 0)
        assert emu.faults.pending == 3
    finally:
        emu.stop()


# ---------------------------------------------------------------------------- server_error
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_statuses(femu: CargoEmulator, fapi: httpx.Client, status: int) -> None:
    femu.faults.next("GET /v1/orchestration/plays/list", "server_error", status=status)
    r = fapi.get(PLAYS)
    assert r.status_code == status
    if status == 500:
        assert r.json() == {"errorMessage": "Internal server error."}
    else:
        assert r.headers["content-type"].startswith("text/html")
        assert f"<h1>{status} " in r.text
    assert fapi.get(PLAYS).status_code == 200  # one-shot
    assert femu.faults.counts["server_error"] == 1


def test_server_error_does_not_run_the_handler(femu: CargoEmulator, fapi: httpx.Client) -> None:
    femu.faults.next("POST /orchestration/batches", "server_error", status=503)
    assert fapi.post("/orchestration/batches", json=_create_body(femu)).status_code == 503
    assert femu.batches() == []


def test_server_error_codes_drawn_from_profile() -> None:
    emu = _start(FaultProfile(server_error=1.0, seed=5))
    try:
        with _client(emu) as api:
            codes = {api.get(PLAYS).status_code for _ in range(30)}
        assert codes == {500, 502, 503}
    finally:
        emu.stop()


# ---------------------------------------------------------------------------- connection_reset / slow
def test_connection_reset_drops_without_response(femu: CargoEmulator, fapi: httpx.Client) -> None:
    femu.faults.next("POST /v1/orchestration/batches", "connection_reset")
    with pytest.raises(DROPPED):
        fapi.post("/orchestration/batches", json=_create_body(femu))
    assert femu.batches() == []  # reset before the handler: nothing committed
    assert fapi.get(PLAYS).status_code == 200  # the client reconnects
    assert femu.faults.counts["connection_reset"] == 1


def test_slow_response_times_out_a_short_read_timeout(femu: CargoEmulator) -> None:
    # real time (0.5 s): a socket read timeout over loopback HTTP fires only on the wall clock
    femu.faults.next("GET /orchestration/plays/list", "slow_response", seconds=0.5)
    with _client(femu, timeout=0.1) as api, pytest.raises(httpx.ReadTimeout):
        api.get(PLAYS)
    with _client(femu, timeout=5) as api:
        assert api.get(PLAYS).status_code == 200
    assert femu.faults.counts["slow_response"] == 1


def test_slow_response_from_profile_delivers_late() -> None:
    # real time (2 x 0.5 s): a socket read timeout over loopback HTTP fires only on the wall clock
    emu = _start(FaultProfile(slow_response=1.0, slow_seconds=0.5))
    try:
        with _client(emu, timeout=0.1) as fast, pytest.raises(httpx.ReadTimeout):
            fast.get(PLAYS)
        with _client(emu, timeout=10) as patient:
            r = patient.get(PLAYS)
        assert r.status_code == 200 and len(r.json()["plays"]) == 4  # late, but complete
        assert emu.faults.counts["slow_response"] == 2
    finally:
        emu.stop()


# ---------------------------------------------------------------------------- lost_create_response
def test_lost_create_response_commits_the_batch(femu: CargoEmulator, fapi: httpx.Client) -> None:
    body = _create_body(femu)
    femu.faults.next("POST /v1/orchestration/batches", "lost_create_response", times=1)
    with pytest.raises(DROPPED):
        fapi.post("/orchestration/batches", json=body)
    assert femu.faults.counts["lost_create_response"] == 1
    listed = fapi.get("/orchestration/batches/list",
                      params={"workflowUuids[]": body["workflowUuid"]}).json()["batches"]
    assert len(listed) == 1
    batch = listed[0]
    assert batch["data"] == body["data"] and batch["workflowUuid"] == body["workflowUuid"]
    user = fapi.get("/workspaceManagement/users/current").json()["user"]
    assert batch["userUuid"] == user["uuid"]
    assert run_to_completion(femu, fapi, batch["uuid"])["status"] == "success"
    # the next creation is answered normally
    assert fapi.post("/orchestration/batches", json=body).status_code == 200


def test_lost_create_only_on_successful_creation(femu: CargoEmulator, fapi: httpx.Client) -> None:
    femu.faults.next("POST /v1/orchestration/batches", "lost_create_response")
    bad = fapi.post("/orchestration/batches", json={"workflowUuid": "nope", "data": {"kind": "segment"}})
    assert bad.status_code == 404  # failed creation: normal error, script still pending
    assert femu.faults.pending == 1
    assert fapi.get(PLAYS).status_code == 200  # other routes are not eligible
    with pytest.raises(DROPPED):
        fapi.post("/orchestration/batches", json=_create_body(femu))
    assert femu.faults.pending == 0 and len(femu.batches()) == 1


def _run_body(emu: CargoEmulator) -> dict[str, Any]:
    return {"workflowUuid": emu.store.tool_by_name("Enrich company")["workflowUuid"],
            "data": {"domain": "lost.example"}}


def _single_runs(api: httpx.Client, workflow_uuid: str) -> list[dict[str, Any]]:
    runs = api.post("/orchestration/runs/list", json={"workflowUuid": workflow_uuid}).json()["runs"]
    return [r for r in runs if r["batchUuid"] is None]


def test_lost_create_response_commits_the_single_run(femu: CargoEmulator, fapi: httpx.Client) -> None:
    body = _run_body(femu)
    femu.faults.next("POST /v1/orchestration/batches", "lost_create_response")  # a batch script: not a run's
    femu.faults.next("POST /v1/orchestration/runs", "lost_create_response")
    with pytest.raises(DROPPED):
        fapi.post("/orchestration/runs", json=body)
    assert femu.faults.counts["lost_create_response"] == 1 and femu.faults.pending == 1
    assert [e.get("fault") for e in femu.requests("POST", "/v1/orchestration/runs")] == ["lost_create_response"]
    (run,) = _single_runs(fapi, body["workflowUuid"])  # committed exactly once, listed like any run
    user = fapi.get("/workspaceManagement/users/current").json()["user"]
    assert run["userUuid"] == user["uuid"] and not femu.batches()
    femu.advance(60)
    done = fapi.get(f"/orchestration/runs/{run['uuid']}").json()
    assert done["run"]["status"] == "success" and done["runContext"]["start"]["domain"] == "lost.example"
    again = fapi.post("/orchestration/runs", json=body)  # the next creation is answered normally
    assert again.status_code == 200 and len(_single_runs(fapi, body["workflowUuid"])) == 2


def test_lost_run_create_only_on_successful_creation(femu: CargoEmulator, fapi: httpx.Client) -> None:
    femu.faults.next("POST /v1/orchestration/runs", "lost_create_response")
    play = femu.store.play_by_name("Score inbound companies")["workflowUuid"]
    refused = fapi.post("/orchestration/runs", json={"workflowUuid": play, "data": {}})
    assert refused.json()["reason"] == "playNotCompatible" and femu.faults.pending == 1
    with pytest.raises(DROPPED):
        fapi.post("/orchestration/runs", json=_run_body(femu))
    assert femu.faults.pending == 0 and len(femu.runs()) == 1


def test_random_lost_create_can_target_run_creates_only() -> None:
    emu = _start(FaultProfile(lost_create_response=1.0, paths={
        "lost_create_response": ["POST /orchestration/runs"]}))
    try:
        with _client(emu) as api:
            assert api.post("/orchestration/batches", json=_create_body(emu)).status_code == 200
            with pytest.raises(DROPPED):
                api.post("/orchestration/runs", json=_run_body(emu))
        assert emu.faults.counts["lost_create_response"] == 1
        assert len([r for r in emu.runs() if r.batch_uuid is None]) == 1
    finally:
        emu.stop()


def test_server_error_and_slow_response_on_run_create(femu: CargoEmulator, fapi: httpx.Client) -> None:
    body = _run_body(femu)
    femu.faults.next("POST /v1/orchestration/runs", "server_error", status=503)
    assert fapi.post("/orchestration/runs", json=body).status_code == 503
    assert not femu.runs()  # handler not run: nothing committed
    femu.faults.next("POST /v1/orchestration/runs", "slow_response", seconds=0.3)
    with _client(femu, timeout=0.05) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post("/orchestration/runs", json=body)
    assert len(femu.runs()) == 1  # committed: the ambiguous outcome


# ---------------------------------------------------------------------------- downloads
def test_truncated_download(femu: CargoEmulator, fapi: httpx.Client) -> None:
    url = _download_url(fapi, _finished_batch(femu, fapi))
    femu.faults.next("GET /_files/*", "truncated_download")
    received = bytearray()
    with httpx.Client() as raw, raw.stream("GET", url) as r:
        assert r.status_code == 200
        declared = int(r.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in r.iter_raw():
                received += chunk
    assert 0 < len(received) < declared
    full = httpx.get(url)  # the same URL works again, complete
    assert full.status_code == 200 and len(full.content) == declared
    assert full.content.startswith(bytes(received))
    assert femu.faults.counts["truncated_download"] == 1


def test_expired_download_url_then_fresh_url_works(femu: CargoEmulator, fapi: httpx.Client) -> None:
    uuid = _finished_batch(femu, fapi)
    url = _download_url(fapi, uuid)
    femu.faults.next("GET /_files/*", "expired_download_url")
    first = httpx.get(url)
    assert first.status_code == 403
    assert "<Code>AccessDenied</Code>" in first.text and "<Message>Request has expired</Message>" in first.text
    assert httpx.get(url).status_code == 403  # an expired URL stays expired
    fresh = _download_url(fapi, uuid)
    assert fresh != url
    ok = httpx.get(fresh)
    assert ok.status_code == 200 and ok.text.startswith("_id,_title,")
    assert len(ok.text.strip().splitlines()) == 6
    assert femu.faults.counts["expired_download_url"] == 1


def test_expired_download_url_only_on_first_fetch() -> None:
    emu = _start()
    try:
        with _client(emu) as api:
            uuid = _finished_batch(emu, api)
            url = _download_url(api, uuid)
            assert httpx.get(url).status_code == 200
            emu.faults.profile = FaultProfile(expired_download_url=1.0)
            assert httpx.get(url).status_code == 200  # second fetch: not eligible
            assert httpx.get(_download_url(api, uuid)).status_code == 403
    finally:
        emu.stop()


def test_connection_reset_on_download_route(femu: CargoEmulator, fapi: httpx.Client) -> None:
    url = _download_url(fapi, _finished_batch(femu, fapi))
    femu.faults.next("GET /_files/*", "connection_reset")
    with pytest.raises(DROPPED):
        httpx.get(url)
    assert httpx.get(url).status_code == 200


# ---------------------------------------------------------------------------- unknown_status
def test_unknown_status_appears_then_clears(femu: CargoEmulator, fapi: httpx.Client) -> None:
    uuid = fapi.post("/orchestration/batches", json=_create_body(femu)).json()["batch"]["uuid"]
    femu.faults.next("GET /v1/orchestration/batches/*", "unknown_status")
    seen = [fapi.get(f"/orchestration/batches/{uuid}").json()["batch"]["status"] for _ in range(4)]
    assert seen == ["paused_for_review", "paused_for_review", "pending", "pending"]
    listed = fapi.get("/orchestration/batches/list").json()["batches"]
    assert listed[0]["status"] == "pending"  # only GET batches/{uuid} is affected
    assert femu.faults.counts["unknown_status"] == 1


def test_unknown_status_never_on_finished_batch() -> None:
    emu = _start(FaultProfile(unknown_status=1.0, unknown_status_value="on_hold", unknown_status_polls=1))
    try:
        with _client(emu) as api:
            uuid = api.post("/orchestration/batches", json=_create_body(emu)).json()["batch"]["uuid"]
            assert api.get(f"/orchestration/batches/{uuid}").json()["batch"]["status"] == "on_hold"
            emu.advance(600)
            assert api.get(f"/orchestration/batches/{uuid}").json()["batch"]["status"] == "success"
    finally:
        emu.stop()


# ---------------------------------------------------------------------------- determinism & scripting
def _outcomes(seed: int) -> tuple[list[str], dict[str, int]]:
    profile = FaultProfile(rate_limit=0.2, server_error=0.2, connection_reset=0.1, unknown_status=0.3,
                           lost_create_response=0.3, seed=seed)
    emu = _start(profile)
    out: list[str] = []
    try:
        with _client(emu) as api:
            for i in range(40):
                try:
                    if i % 5 == 0:
                        r = api.post("/orchestration/batches", json=_create_body(emu, 2))
                    elif i % 5 == 1 and emu.batches():
                        r = api.get(f"/orchestration/batches/{emu.batches()[0].uuid}")
                    else:
                        r = api.get(PLAYS)
                    status = r.json()["batch"]["status"] if "batch" in r.text and r.status_code == 200 else ""
                    out.append(f"{r.status_code}{status}")
                except DROPPED:
                    out.append("dropped")
        return out, emu.faults.counts
    finally:
        emu.stop()


def test_same_seed_same_faults() -> None:
    first, counts = _outcomes(11)
    second, counts2 = _outcomes(11)
    assert first == second and counts == counts2
    assert counts["rate_limit"] > 0 and counts["server_error"] > 0
    assert _outcomes(12)[0] != first


def test_setting_profile_restarts_the_sequence(femu: CargoEmulator, fapi: httpx.Client) -> None:
    profile = FaultProfile(rate_limit=0.5, seed=3)
    femu.faults.profile = profile
    a = [fapi.get(PLAYS).status_code for _ in range(20)]
    femu.faults.profile = profile
    b = [fapi.get(PLAYS).status_code for _ in range(20)]
    assert a == b and 429 in a and 200 in a
    femu.faults.profile = None
    assert all(fapi.get(PLAYS).status_code == 200 for _ in range(10))


def test_scripted_times_and_targets(femu: CargoEmulator, fapi: httpx.Client) -> None:
    femu.faults.next("GET /v1/orchestration/batches/list", "rate_limit", times=2)
    assert fapi.get(PLAYS).status_code == 200  # other path untouched
    assert fapi.post("/orchestration/batches/list").status_code == 404  # other method untouched
    assert [fapi.get("/orchestration/batches/list").status_code for _ in range(3)] == [429, 429, 200]
    femu.faults.next("*", "server_error", times=5)
    assert femu.faults.pending == 5
    femu.faults.clear()
    assert femu.faults.pending == 0 and femu.faults.counts == dict.fromkeys(FAULT_KINDS, 0)
    assert fapi.get(PLAYS).status_code == 200


def test_profile_paths_target_kinds() -> None:
    emu = _start(FaultProfile(rate_limit=1.0, paths={"rate_limit": ["GET /v1/orchestration/batches/*"]}))
    try:
        with _client(emu) as api:
            assert api.get(PLAYS).status_code == 200
            assert api.get("/orchestration/batches/list").status_code == 429
    finally:
        emu.stop()


def test_profile_validation() -> None:
    with pytest.raises(ValueError):
        FaultProfile(rate_limit=1.5)
    with pytest.raises(ValueError):
        FaultProfile(paths={"nope": ["*"]})
    with pytest.raises(ValueError):
        FaultProfile.preset("chaos")
    assert FaultProfile.preset("mixed", seed=4).lost_create_response == 0.1
    with pytest.raises(ValueError):
        CargoEmulator().faults.next("*", "meteor_strike")


# ---------------------------------------------------------------------------- CLI
def test_cli_fault_flags_build_a_profile() -> None:
    parse = build_parser().parse_args
    assert _fault_profile(parse(["serve"])) is None
    mixed = _fault_profile(parse(["serve", "--fault-profile", "mixed", "--fault-seed", "9",
                                  "--fault-rate-limit", "0.5"]))
    assert mixed is not None and mixed.seed == 9 and mixed.rate_limit == 0.5 and mixed.server_error == 0.05
    one = _fault_profile(parse(["serve", "--fault-lost-create-response", "1",
                                "--fault-slow-seconds", "0.5", "--fault-retry-after", "4"]))
    assert one is not None and one.lost_create_response == 1.0 and one.rate_limit == 0.0
    assert one.slow_seconds == 0.5 and one.retry_after_seconds == 4


def test_cli_serves_faults() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", str(port),
                             "--fault-rate-limit", "1", "--fault-seed", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CARGO_EMULATOR_TOKEN": "cli-token"})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("Cargo emulator ready")
        assert "rate_limit=1.0" in proc.stdout.readline()
        base = f"http://127.0.0.1:{port}/v1"
        r = httpx.get(base + PLAYS, headers={"authorization": "Bearer cli-token"})
        assert r.status_code == 429 and r.json()["reason"] == "rateLimited"
        assert httpx.get(base + PLAYS, headers={"authorization": "Bearer x"}).status_code == 401
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0
