"""Which Cargo the example talks to: the real API, or the embedded emulator.

* ``CARGO_API_TOKEN`` set → the real Cargo API (``CARGO_BASE_URL`` optional,
  ``CARGO_WORKSPACE_UUID`` optional).
* otherwise ``CARGO_EMULATOR_URL`` (set by ``python -m example_project``) → that emulator;
* otherwise an emulator process is started on ``CARGO_EMULATOR_PORT`` (default 8765), or
  reused if one already answers there, so that ``dagster dev``'s code server and run
  workers all see the same emulated workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx

from dagster_cargo import CargoResource

EMULATOR_TOKEN = "emulator-token"
DEFAULT_EMULATOR_PORT = 8765


def _say(message: str) -> None:
    print(f"[dagster-cargo example] {message}", file=sys.stderr, flush=True)


def _emulator_answers(base_url: str) -> bool:
    try:
        response = httpx.get(
            f"{base_url}/v1/workspaceManagement/workspaces/current",
            headers={"authorization": f"Bearer {EMULATOR_TOKEN}"},
            timeout=1.0,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def ensure_emulator_process(port: int) -> str:
    """Start a background emulator on ``port`` unless one already answers there."""
    base_url = f"http://127.0.0.1:{port}"
    if _emulator_answers(base_url):
        return base_url
    log_path = Path(os.environ.get("DAGSTER_HOME", ".")) / "cargo-emulator.log"
    with open(log_path, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "dagster_cargo.cli", "emulator", "--port", str(port),
             "--token", EMULATOR_TOKEN, "--speed", os.environ.get("CARGO_EMULATOR_SPEED", "20")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _emulator_answers(base_url):
            return base_url
        time.sleep(0.2)
    raise RuntimeError(f"The Cargo emulator did not start on port {port}; see {log_path}.")


def cargo_resource() -> CargoResource:
    """The CargoResource for this environment (and say which Cargo it is)."""
    if os.environ.get("CARGO_API_TOKEN"):
        base_url = os.environ.get("CARGO_BASE_URL", "https://api.getcargo.io")
        _say(f"using the real Cargo API at {base_url} (CARGO_API_TOKEN is set)")
        return CargoResource(
            api_token=dg.EnvVar("CARGO_API_TOKEN"),
            base_url=base_url,
            workspace_uuid=os.environ.get("CARGO_WORKSPACE_UUID"),
        )
    base_url = os.environ.get("CARGO_EMULATOR_URL") or ensure_emulator_process(
        int(os.environ.get("CARGO_EMULATOR_PORT", DEFAULT_EMULATOR_PORT))
    )
    _say(f"using the embedded Cargo emulator at {base_url} (set CARGO_API_TOKEN to use real Cargo)")
    return CargoResource(api_token=EMULATOR_TOKEN, base_url=base_url, poll_interval=0.2, max_poll_interval=2.0)
