"""Helpers of the end-to-end suite: real ``dagster-webserver`` / ``dagster-daemon`` processes
over a temporary ``DAGSTER_HOME``, and a small GraphQL client for the webserver.

Every process is started in its own session (process group); :meth:`DagsterProcess.stop`
terminates that group and any descendant that escaped it (code servers, run workers).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULE = "example_project.definitions"
# The emulator's token, given to the Dagster processes as CARGO_EMULATOR_TOKEN (the example reads
# it through dg.EnvVar); distinctive, so that a leak scan cannot miss it.
EMULATOR_TOKEN = "e2e-emulator-token-5b2f9c0d7e"

# Runs are launched straight from the webserver (no queue), so a materialization does not
# depend on the daemon; the daemon is only needed for sensors and schedules.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_dagster_home(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(DAGSTER_YAML)
    return path


def child_env(dagster_home: Path, emulator_url: str) -> dict[str, str]:
    """The environment of the Dagster processes: never the real Cargo, always our emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_")}
    env.pop("DAGSTER_HOME", None)
    env.update(
        DAGSTER_HOME=str(dagster_home),
        CARGO_EMULATOR_URL=emulator_url,
        CARGO_EMULATOR_TOKEN=EMULATOR_TOKEN,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    return env


def _descendants(pid: int) -> list[int]:
    """PIDs of every descendant of ``pid`` (from /proc; empty where /proc is unavailable)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class DagsterProcess:
    """One long-running Dagster CLI process, its log file, and its teardown."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def logs(self, tail: int = 8000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<no log: {e}>"
        return text[-tail:]

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return f"--- {self.name} ({' '.join(self.args)}; {state}), log {self.log_path} ---\n{self.logs()}"

    def stop(self, grace: float = 20.0) -> None:
        pid = self.popen.pid
        stragglers = _descendants(pid)
        if self.alive():
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for child in stragglers:  # descendants that started their own session
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


class GraphQLError(AssertionError):
    pass


class Webserver:
    """A running ``dagster-webserver`` serving the example project, and its GraphQL API."""

    def __init__(self, process: DagsterProcess, url: str, dagster_home: Path, env: dict[str, str],
                 target: tuple[str, ...] = ("-m", MODULE)) -> None:
        self.process = process
        self.target = target  # the code location's CLI target, which the daemon loads too
        self.url = url
        self.dagster_home = dagster_home
        self.env = env
        self.http = httpx.Client(base_url=url, timeout=60.0)
        self.others: list[DagsterProcess] = []  # e.g. the daemon, for diagnostics

    def diagnostics(self) -> str:
        return "\n".join(p.describe() for p in (self.process, *self.others))

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or body is None or body.get("errors"):
            raise GraphQLError(
                f"GraphQL request failed ({response.status_code}): "
                f"{(body or {}).get('errors') or response.text[:2000]}\nquery: {query}\n"
                f"variables: {variables}\n{self.diagnostics()}")
        return body["data"]

    def close(self) -> None:
        self.http.close()

    def shutdown(self) -> None:
        """Close the GraphQL client and stop the processes started with the webserver (the daemon first)."""
        self.close()
        for process in (*self.others, self.process):
            process.stop()


WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def _wait_until_loaded(server: Webserver, deadline: float, location: str = MODULE) -> None:
    """/server_info answers, then the code location is LOADED (fail fast on a load error)."""
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not server.process.alive():
            raise AssertionError(f"dagster-webserver exited before it was ready\n{server.diagnostics()}")
        try:
            info = server.http.get("/server_info", timeout=5.0)
        except httpx.HTTPError as e:
            last = repr(e)
            time.sleep(0.3)
            continue
        if info.status_code != 200:
            last = f"/server_info → {info.status_code}"
            time.sleep(0.3)
            continue
        data = server.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        entries = [e for e in data.get("locationEntries", []) if e["name"] == location]
        if entries and entries[0]["loadStatus"] == "LOADED":
            location = entries[0]["locationOrLoadError"]
            if location and location["__typename"] == "PythonError":
                raise AssertionError(
                    f"the code location {location} failed to load:\n{location['message']}\n"
                    f"{''.join(location.get('stack') or [])}\n{server.diagnostics()}")
            if location and location["__typename"] == "RepositoryLocation":
                return
        last = f"workspace: {data}"
        time.sleep(0.3)
    raise AssertionError(f"dagster-webserver not ready in time (last: {last})\n{server.diagnostics()}")


def start_webserver(dagster_home: Path, emulator_url: str, timeout: float = 180.0,
                    attempts: int = 3, *, target: tuple[str, ...] = ("-m", MODULE), location: str = MODULE,
                    extra_env: dict[str, str] | None = None) -> Webserver:
    """Start the real webserver on a free port (another port if that one gets taken), serving ``target``
    (the example project by default), whose code location is named ``location``."""
    env = {**child_env(dagster_home, emulator_url), **(extra_env or {})}
    failures = []
    for attempt in range(attempts):
        port = free_port()
        process = DagsterProcess(
            "dagster-webserver",
            [str(BIN / "dagster-webserver"), *target, "-h", "127.0.0.1", "-p", str(port)],
            env, dagster_home / f"webserver-{attempt}.log")
        server = Webserver(process, f"http://127.0.0.1:{port}", dagster_home, env, target)
        try:
            _wait_until_loaded(server, time.monotonic() + timeout, location)
            return server
        except AssertionError as e:
            port_taken = "address already in use" in process.logs().lower()
            server.close()
            process.stop()
            if not port_taken:
                raise
            failures.append(str(e))
    raise AssertionError("no free port for dagster-webserver:\n" + "\n".join(failures))


DAEMON_HEALTH_QUERY = """
query DaemonHealth {
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType required healthy lastHeartbeatTime
                          lastHeartbeatErrors { message } }
    }
  }
}
"""


def start_daemon(server: Webserver, timeout: float = 120.0) -> DagsterProcess:
    """Start ``dagster-daemon run`` on the webserver's DAGSTER_HOME; wait until the webserver
    reports every required daemon healthy (they heartbeat into the shared instance)."""
    process = DagsterProcess(
        "dagster-daemon", [str(BIN / "dagster-daemon"), "run", *server.target], server.env,
        server.dagster_home / "daemon.log")
    server.others.append(process)
    deadline = time.monotonic() + timeout
    statuses: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if not process.alive():
            process.stop()
            raise AssertionError(f"dagster-daemon exited early\n{server.diagnostics()}")
        statuses = server.graphql(DAEMON_HEALTH_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
        required = [s for s in statuses if s["required"]]
        if required and all(s["healthy"] for s in required):
            return process
        time.sleep(1.0)
    process.stop()
    raise AssertionError(f"dagster-daemon not healthy in time: {statuses}\n{server.diagnostics()}")
