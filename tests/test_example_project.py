"""The example project: its definitions load, and the Quickstart run works end to end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_every_feature(emulator, monkeypatch):
    monkeypatch.delenv("CARGO_API_TOKEN", raising=False)
    monkeypatch.setenv("CARGO_EMULATOR_URL", emulator.base_url)
    import importlib

    import example_project.connection as connection

    monkeypatch.setenv(connection.EMULATOR_TOKEN_ENV, emulator.token)
    definitions = importlib.reload(importlib.import_module("example_project.definitions"))
    defs: dg.Definitions = definitions.defs
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"inbound_signups", "enriched_signups", "scored_icp_companies", "daily_company_scores",
            "cargo/score_inbound_companies", "cargo/find_decision_makers", "cargo/find_work_email",
            "cargo_credit_usage"} <= keys
    assert {s.name for s in defs.schedules} == {"daily_company_scoring_schedule", "weekly_decision_makers"}
    assert {s.name for s in defs.sensors} == {"score_new_icp_companies", "cargo_observation_sensor",
                                              "default_automation_condition_sensor"}
    # sensors start RUNNING (the README says so); the token is an EnvVar, never a literal
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)
    assert isinstance(defs.resources["cargo"].api_token, dg.EnvVar)
    check_keys = {k for a in defs.get_repository_def().assets_defs_by_key.values() for k in a.check_keys}
    assert dg.AssetCheckKey(dg.AssetKey("enriched_signups"), "cargo_output_completeness") in check_keys


def test_quickstart_main_job_runs_end_to_end():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_")}
    out = subprocess.run([sys.executable, "-m", "example_project"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "using the embedded Cargo emulator" in out.stderr
    credits = dict(re.findall(r"^- (\S+): \d+ rows, ([\d.]+) credits used", out.stdout, re.M))
    assert float(credits["enriched_signups"]) > 0 and float(credits["scored_icp_companies"]) > 0
    assert "industry" in out.stdout  # the enriched DataFrame's head is printed
    assert "All example assets materialized." in out.stdout


PARENT = """
import sys
from pathlib import Path
from example_project.connection import ensure_emulator_process
port = int(sys.argv[1])
print(ensure_emulator_process(port), flush=True)
for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
    try:
        args = cmdline.read_bytes().split(b"\\0")
    except OSError:
        continue
    if b"example_project.emulator_process" in args and str(port).encode() in args:
        print("EMULATOR_ARGS", b" ".join(args).decode(), flush=True)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parent_env(tmp_path: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_")}
    env.update(DAGSTER_HOME=str(tmp_path), CARGO_EMULATOR_TOKEN=token, PYTHONPATH=str(ROOT))
    return env


def _until_stopped(port: int, why: str) -> None:
    """Wait until nothing answers on ``port`` (the emulator checks its parent 4 times a second), at most 60 s."""
    import time

    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/workspaceManagement/workspaces/current", timeout=1.0)
        except httpx.HTTPError:
            return
        time.sleep(0.25)
    raise AssertionError(why)


def test_example_emulator_takes_its_token_from_the_environment_and_stops_with_its_parent(tmp_path):
    port = _free_port()
    token = "example-emulator-token-93be1"
    env = _parent_env(tmp_path, token)
    out = subprocess.run([sys.executable, "-c", PARENT, str(port)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"http://127.0.0.1:{port}" in out.stdout
    if Path("/proc").is_dir():
        args = [line for line in out.stdout.splitlines() if line.startswith("EMULATOR_ARGS")]
        assert args and token not in args[0]
    _until_stopped(port, "the example's emulator outlived the process that started it")
    assert "stopping the emulator" in (tmp_path / "cargo-emulator.log").read_text()


def test_example_emulator_stops_when_its_parent_exits_even_while_that_parent_is_an_unreaped_zombie(tmp_path):
    """A code server that exited but was not yet reaped by whoever started it is a zombie: ``kill(pid, 0)`` still
    succeeds on it. The emulator watches for being reparented too, so it stops all the same."""
    port = _free_port()
    env = _parent_env(tmp_path, "example-emulator-token-5d2")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert f"http://127.0.0.1:{port}" in parent.stdout.read()
        os.waitid(os.P_PID, parent.pid, os.WEXITED | os.WNOWAIT)  # until it has exited, leaving it unreaped
        state = Path(f"/proc/{parent.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "Z", f"the parent should be an unreaped zombie here, its state is {state!r}"
        _until_stopped(port, "the emulator outlived its parent, which stayed a zombie")
        assert Path(f"/proc/{parent.pid}").exists(), "the parent was reaped before the emulator stopped"
    finally:
        parent.wait(timeout=30)
    assert f"Process {parent.pid} stopped; stopping the emulator." in (tmp_path / "cargo-emulator.log").read_text()


def test_definitions_load_without_calling_cargo_once_the_state_is_stored(emulator, tmp_path):
    """The first load lists the workspace (3 calls) into $DAGSTER_HOME; every later process —
    code server, run worker, `dagster`/`dg` CLI commands — reads it and makes no catalog call."""
    catalog = {f"/v1/orchestration/{what}/list" for what in ("plays", "tools", "workflows")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_")}
    env.update(DAGSTER_HOME=str(tmp_path), CARGO_EMULATOR_URL=emulator.base_url,
               CARGO_EMULATOR_TOKEN=emulator.token, PYTHONPATH=str(ROOT))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    calls = []
    for _ in range(2):
        emulator.request_log.clear()
        out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
                              "example_project.definitions"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        calls.append(sorted(r["path"] for r in emulator.request_log if r["path"] in catalog))
    assert calls[0] == sorted(catalog)  # first load: the 3 list calls, stored
    assert calls[1] == []               # from then on: none
    assert list(tmp_path.glob("cargo-workspace-*.json"))
