"""Which Cargo the example talks to: the real API, or the embedded emulator.

* ``CARGO_API_TOKEN`` set → the real Cargo API (``CARGO_BASE_URL`` optional,
  ``CARGO_WORKSPACE_UUID`` optional).
* otherwise ``CARGO_EMULATOR_URL`` (set by ``python -m example_project``) → that emulator;
* otherwise an emulator process is started on ``CARGO_EMULATOR_PORT`` (default 8765), or
  reused if one already answers there, so that ``dg dev``'s code server and run workers all
  see the same emulated workspace. It stops when the process that started it (the code
  server) stops.

The token is always a ``dg.EnvVar``: the Dagster UI, the launchpad and the job snapshots in
the instance database show the variable's name, never the token. The emulator's token is
``CARGO_EMULATOR_TOKEN`` when set, else a random one kept in ``$DAGSTER_HOME/.cargo-emulator-token``
(mode 0600) so that every Dagster process of one instance shares it; the emulator process gets
it through its environment, never its command line.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import httpx

from dagster_cargo import CargoResource

EMULATOR_TOKEN_ENV = "CARGO_EMULATOR_TOKEN"
DEFAULT_EMULATOR_PORT = 8765
_BANNER_SHOWN_ENV = "CARGO_EXAMPLE_BANNER_SHOWN"


def _say(message: str) -> None:
    """Print the example's banner once per process tree (child processes inherit the marker)."""
    if os.environ.get(_BANNER_SHOWN_ENV):
        return
    os.environ[_BANNER_SHOWN_ENV] = "1"
    print(f"[dagster-cargo example] {message}", file=sys.stderr, flush=True)


def emulator_token() -> str:
    """The emulator's token: ``CARGO_EMULATOR_TOKEN``, else the instance's token file (created once)."""
    token = os.environ.get(EMULATOR_TOKEN_ENV)
    if not token:
        path = Path(os.environ.get("DAGSTER_HOME") or ".") / ".cargo-emulator-token"
        try:
            token = path.read_text().strip()
        except OSError:
            token = ""
        if not token:
            token = f"emu-{secrets.token_urlsafe(18)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(token)
        os.environ[EMULATOR_TOKEN_ENV] = token  # the resource's EnvVar and child processes read it here
    return token


def _emulator_answers(base_url: str, token: str) -> bool:
    try:
        response = httpx.get(f"{base_url}/v1/workspaceManagement/workspaces/current",
                             headers={"authorization": f"Bearer {token}"}, timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def ensure_emulator_process(port: int) -> str:
    """Start a background emulator on ``port`` unless one already answers there.

    The emulator (``python -m example_project.emulator_process``) watches this process and stops
    when it stops, so it never outlives the code server that started it.
    """
    base_url = f"http://127.0.0.1:{port}"
    token = emulator_token()
    if _emulator_answers(base_url, token):
        return base_url
    log_path = Path(os.environ.get("DAGSTER_HOME") or ".") / "cargo-emulator.log"
    env = {**os.environ, EMULATOR_TOKEN_ENV: token}
    with open(log_path, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "example_project.emulator_process", "--port", str(port),
             "--speed", os.environ.get("CARGO_EMULATOR_SPEED", "20"), "--parent-pid", str(os.getpid())],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _emulator_answers(base_url, token):
            return base_url
        time.sleep(0.2)
    raise RuntimeError(f"The Cargo emulator did not start on port {port}; see {log_path}.")


def workspace_state_path(base_url: str) -> Path | None:
    """Where the example keeps the workspace listing (``state_path=``): one file per Cargo host in
    ``$DAGSTER_HOME``, so that after the first load no process (code server, run worker, ``dg`` or
    ``dagster`` CLI command) calls Cargo to build definitions. ``None`` without ``DAGSTER_HOME``.
    Delete the file to see plays and tools added in Cargo since."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return None
    host = re.sub(r"[^0-9A-Za-z.]+", "_", urlsplit(base_url).netloc or base_url)
    workspace = os.environ.get("CARGO_WORKSPACE_UUID") if os.environ.get("CARGO_API_TOKEN") else None
    return Path(home) / f"cargo-workspace-{host}{'-' + workspace if workspace else ''}.json"


def cargo_resource() -> CargoResource:
    """The CargoResource for this environment (and say which Cargo it is, once)."""
    if os.environ.get("CARGO_API_TOKEN"):
        base_url = os.environ.get("CARGO_BASE_URL", "https://api.getcargo.io")
        _say(f"using the real Cargo API at {base_url} (CARGO_API_TOKEN is set)")
        return CargoResource(
            api_token=dg.EnvVar("CARGO_API_TOKEN"),
            base_url=base_url,
            workspace_uuid=dg.EnvVar("CARGO_WORKSPACE_UUID"),  # optional: unset means the token's workspace
        )
    emulator_token()
    base_url = os.environ.get("CARGO_EMULATOR_URL") or ensure_emulator_process(
        int(os.environ.get("CARGO_EMULATOR_PORT", DEFAULT_EMULATOR_PORT))
    )
    _say(f"using the embedded Cargo emulator at {base_url} (set CARGO_API_TOKEN to use real Cargo)")
    return CargoResource(api_token=dg.EnvVar(EMULATOR_TOKEN_ENV), base_url=base_url,
                         poll_interval=0.2, max_poll_interval=2.0)
