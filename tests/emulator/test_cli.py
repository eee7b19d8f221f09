"""``cargo-emulator serve`` started as a subprocess; its token never on its command line."""

from __future__ import annotations

import os
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
    argv = [sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", str(port), "--speed", "100",
            "--seed", "3", "--variant", "batch_user_uuid=absent", "--variant", "json_shape=ndjson"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CARGO_EMULATOR_TOKEN": token})
    assert token not in " ".join(argv)  # what ps would show
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"Cargo emulator ready at http://127.0.0.1:{port}"), line
        assert f"(API base http://127.0.0.1:{port}/v1)" in line
        assert token not in line
        base = f"http://127.0.0.1:{port}/v1"
        ok = httpx.get(base + "/orchestration/plays/list", headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and len(ok.json()["plays"]) == 4  # the agent play by default
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
    res = subprocess.run([sys.executable, "-m", "cargo_gtm_emulator.cli", "--help"], check=False, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "serve" in res.stdout and "ctl" in res.stdout


def test_cli_rejects_unknown_variant() -> None:
    res = subprocess.run([sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", "0",
                          "--variant", "download_gzip=zip"], check=False, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CARGO_EMULATOR_TOKEN": "t"})
    assert res.returncode == 2 and "allowed: off, file, transport" in res.stderr


def test_cli_takes_no_token_on_its_command_line(tmp_path) -> None:
    """A token on the command line shows in ``ps`` to every local user: ``--token`` is refused, and the token
    comes from ``--token-env`` (default CARGO_EMULATOR_TOKEN) or ``--token-file``."""
    from cargo_gtm_emulator.cli import build_parser
    from cargo_gtm_emulator.control import build_parser as ctl_parser
    from cargo_gtm_emulator.token_source import read_token

    for parse in (lambda a: build_parser().parse_args(["serve", *a]), lambda a: ctl_parser().parse_args([*a, "state"])):
        try:
            parse(["--token", "secret"])
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError("--token was accepted")
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert read_token(build_parser().parse_args(["serve", "--token-file", str(secret)])) == "from-file"
    env = os.environ.get("CARGO_EMULATOR_TOKEN")
    os.environ["CARGO_EMULATOR_TOKEN"] = "from-env"
    try:
        assert read_token(build_parser().parse_args(["serve"])) == "from-env"
    finally:
        if env is None:
            del os.environ["CARGO_EMULATOR_TOKEN"]
        else:
            os.environ["CARGO_EMULATOR_TOKEN"] = env
    res = subprocess.run([sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", "0"], check=False,
                         capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "CARGO_EMULATOR_TOKEN"})
    assert res.returncode == 2 and "Set CARGO_EMULATOR_TOKEN" in res.stderr


def test_serve_help_documents_every_option() -> None:
    res = subprocess.run([sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--help"], check=True,
                         capture_output=True, text=True, timeout=60)
    for option in ("--speed", "--seed", "--run-failure-rate", "--credits", "--token-env", "--token-file"):
        assert option in res.stdout
    assert "(default: 20.0)" in res.stdout  # the demo speed, documented
