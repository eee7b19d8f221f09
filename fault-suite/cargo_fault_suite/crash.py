"""kill -9 at each step of a materialization, then re-execution: how many batches, how many credits.

For each crash point the tool step runs in a child process that kills itself (SIGKILL, no cleanup)
at that point; the run is then marked failed, as Dagster's run monitoring marks a run whose
worker died, and re-executed either as the UI and the run-retry daemon do (a new run tagged
with ``dagster/parent_run_id``/``dagster/root_run_id``) or through the Python API
(``execute_job(..., reexecution_options=ReexecutionOptions.from_failure(...))``, which sets
the run's own ``parent_run_id``/``root_run_id``). Exactly one batch must exist afterwards.

Crash points: ``before_create`` (intent recorded, request not sent), ``in_flight`` (request sent
and committed by Cargo, response not yet back), ``after_create`` (response back, batch not yet
tagged on the run), ``during_download`` (batch finished, outputs being downloaded).

CLI of the child: ``python -m cargo_fault_suite.crash <point> <instance dir> <run config json>``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import dagster as dg
from cargo_gtm_emulator import CargoEmulator

from .capture import LeakWatch
from .jobs import TOKEN_ENV, resource_config, single_tool_job, stored_output

CRASH_POINTS = ("before_create", "in_flight", "after_create", "during_download")
PATHS = ("ui", "python_api")
CREATE = "/orchestration/batches"


@dataclass
class CrashOutcome:
    """One scenario: where the first attempt died, how it was re-executed, and what was paid."""

    point: str
    path: str
    child_exit: int | None
    reexecution_succeeded: bool
    batches: list[str]
    credits: float
    rows: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.reexecution_succeeded and len(self.batches) == 1


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_crash(point: str) -> None:
    """In the child: make the process die at ``point`` (patches the transport / the download)."""
    from cargo_gtm import client as client_module
    from cargo_gtm.transport import Transport

    original = Transport.request

    def request(self: Transport, method: str, endpoint: str, **kw: Any) -> Any:
        is_create = method == "POST" and endpoint == CREATE
        if is_create and point == "before_create":
            _kill()
        if is_create and point == "in_flight":
            threading.Timer(0.5, _kill).start()  # Cargo holds the response (scripted slow_response)
        result = original(self, method, endpoint, **kw)
        if is_create and point == "after_create":
            _kill()
        return result

    Transport.request = request  # type: ignore[method-assign]
    if point == "during_download":
        # the method every Dagster download goes through (whatever module renders the frame), so that a
        # change of the download's internals cannot turn this scenario into a run that simply succeeds
        client_module.CargoClient.download_batch_dataframe = lambda *a, **k: _kill()  # type: ignore[method-assign]


def _child(point: str, home: str, run_config: str, tags: str) -> None:
    from dagster._core.instance.ref import InstanceRef

    install_crash(point)
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(home))
    dg.execute_job(dg.reconstructable(single_tool_job), instance=instance, run_config=json.loads(run_config),
                   tags=json.loads(tags))


def _run_config(emu: CargoEmulator, domains: list[str]) -> dict[str, Any]:
    fields = {"request_timeout": 10.0, "poll_interval": 0.01, "max_poll_interval": 0.1, "poll_timeout": 120.0,
              "credit_breakdown": False}
    return {"ops": {"tool_0": {"config": {"index": -1, "domains": domains}}},
            "resources": resource_config(emu.base_url, **fields)}


def _batches_of(emu: CargoEmulator, domains: list[str]) -> tuple[list[str], float]:
    """Batches holding any of ``domains`` (settled), and their credits."""
    store = emu.store
    wanted = set(domains)
    deadline = time.monotonic() + 30
    while True:
        store.sync()
        with store.lock:
            mine = [b for b in store.engine.batches.values()
                    if any(str(r.get("domain")) in wanted for r in b.records)]
            if all(b.finished for b in mine) or time.monotonic() > deadline:
                return [b.uuid for b in mine], float(sum(b.credits for b in mine))
        time.sleep(0.05)


def run_scenario(point: str, path: str, n: int, emu: CargoEmulator, instance: dg.DagsterInstance,
                 watch: LeakWatch) -> CrashOutcome:
    """Kill the first attempt at ``point``, re-execute by ``path``, count batches and credits."""
    domains = [f"crash{n:02d}-{j:02d}.example" for j in range(3)]
    config = _run_config(emu, domains)
    tag = f"{point}/{path}/{n}"
    if point == "in_flight":
        emu.faults.next(f"POST /v1{CREATE}", "slow_response", seconds=3.0)
    saved, emu.faults.profile = emu.faults.profile, None  # the crash is the fault here
    try:
        child = subprocess.run(
            [sys.executable, "-m", "cargo_fault_suite.crash", point, str(instance.root_directory),
             json.dumps(config), json.dumps({"fault-suite/crash": tag})],
            env={**os.environ}, capture_output=True, text=True, timeout=300, check=False)
        watch.check("stdout/stderr", child.stdout + child.stderr)
        (first,) = instance.get_runs(filters=dg.RunsFilter(tags={"fault-suite/crash": tag}))
        instance.report_run_failed(first, message=f"run worker killed (kill -9 at {point})")
        # as the daemon's run monitoring does for a dead worker: give back the pool slots its steps held
        # (with a limited `cargo` pool, slots of killed runs would otherwise block every later step)
        instance.event_log_storage.free_concurrency_slots_for_run(first.run_id)
        if path == "python_api":
            options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
            result = dg.execute_job(dg.reconstructable(single_tool_job), instance=instance, run_config=config,
                                    reexecution_options=options)
        else:
            tags = {"dagster/parent_run_id": first.run_id, "dagster/root_run_id": first.root_run_id or first.run_id}
            result = dg.execute_job(dg.reconstructable(single_tool_job), instance=instance, run_config=config,
                                    tags=tags)
        with result:
            ok = result.success
            rows = len(stored_output(instance, "tool_0")) if ok else 0
            error = "" if ok else str(getattr(result.failure_data_for_node("tool_0"), "error", ""))[:300]
            for run_id in (first.run_id, result.run_id):
                for entry in instance.all_logs(run_id):
                    watch.check("Dagster event", str(entry))
    finally:
        emu.faults.profile = saved
    uuids, credits = _batches_of(emu, domains)
    return CrashOutcome(point=point, path=path, child_exit=child.returncode, reexecution_succeeded=ok,
                        batches=uuids, credits=credits, rows=rows, error=error)


def run_crash_scenarios(emu: CargoEmulator, instance: dg.DagsterInstance, config: Any,
                        watch: LeakWatch) -> list[CrashOutcome]:
    """Every crash point × every re-execution path."""
    os.environ.setdefault(TOKEN_ENV, config.token())
    paths = tuple(getattr(config, "crash_paths", PATHS))
    return [run_scenario(point, path, n, emu, instance, watch)
            for n, (point, path) in enumerate((p, q) for p in CRASH_POINTS for q in paths)]


if __name__ == "__main__":
    _child(*sys.argv[1:5])
