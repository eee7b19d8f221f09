"""The ``dagster-cargo emulator`` subcommand started as a subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_serves_until_terminated() -> None:
    port = _free_port()
    token = "cli-secret-token"
    proc = subprocess.Popen([sys.executable, "-m", "dagster_cargo.cli", "emulator", "--port", str(port),
                             "--token", token, "--speed", "100", "--seed", "3",
                             "--variant", "batch_user_uuid=absent", "--variant", "json_shape=ndjson"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"Cargo emulator ready at http://127.0.0.1:{port}"), line
        assert f"(API base http://127.0.0.1:{port}/v1)" in line
        assert token not in line
        base = f"http://127.0.0.1:{port}/v1"
        ok = httpx.get(base + "/orchestration/plays/list", headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and len(ok.json()["plays"]) == 3
        tool = next(t for t in httpx.get(base + "/orchestration/tools/list", headers={
            "authorization": f"Bearer {token}"}).json()["tools"] if t["name"] == "Enrich company")
        made = httpx.post(base + "/orchestration/batches", headers={"authorization": f"Bearer {token}"}, json={
            "workflowUuid": tool["workflowUuid"], "data": {"kind": "records", "records": [{"domain": "a.io"}]}})
        assert made.status_code == 200 and "userUuid" not in made.json()["batch"]  # the variant is on
        bad = httpx.get(base + "/orchestration/plays/list", headers={"authorization": "Bearer wrong"})
        assert bad.status_code == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert token not in out + err


def test_cli_help_lists_subcommand() -> None:
    res = subprocess.run([sys.executable, "-m", "dagster_cargo.cli", "--help"], check=False, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "emulator" in res.stdout


def test_cli_rejects_unknown_variant() -> None:
    res = subprocess.run([sys.executable, "-m", "dagster_cargo.cli", "emulator", "--token", "t", "--port", "0",
                          "--variant", "download_gzip=zip"], check=False, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "allowed: off, file, transport" in res.stderr
