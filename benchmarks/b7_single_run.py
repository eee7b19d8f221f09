"""B7 time to result for one record: a Cargo single run against a one-record batch, same emulator, same run.

Both go through ``CargoResource.run_tool`` with the resource defaults, one record at a time, alternately on
one emulator: with ``single_run_threshold=1`` (the default: ``POST /orchestration/runs``, polled at Cargo's
2 s run guidance, outputs from ``runContext``) and with ``single_run_threshold=0`` (the baseline: a batch,
polled within Cargo's 5 s batch guidance, outputs from the batch file + run statuses, credits from
``runs/metrics``). Both return the same one-row DataFrame and credit figures (tests/client/test_single_run.py).

Time to result is measured in **Cargo time** (the emulator's manual clock, advanced only by the package's
own waits): from the call to the DataFrame in hand, so it counts Cargo's pending/querying stages and the
polling schedule, deterministically. Wall time (local HTTP + processing, loopback) and API requests per
record are reported beside it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from cargo_gtm import CargoClient
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource

from ._report import Row, fmt
from ._token import env_token

TOKEN = "bench-b7-token"
TOOL = "Enrich company"
FULL_RECORDS = 10
QUICK_RECORDS = 2


class _Log:
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def debug(self, msg: str) -> None: ...


class _Context:
    """What ``run_tool`` needs of a Dagster context outside a run (no run tags, no materialization history)."""

    log = _Log()


def _resource(emu: CargoEmulator, threshold: int) -> CargoResource:
    cargo = CargoResource(api_token=env_token(TOKEN), base_url=emu.base_url, single_run_threshold=threshold,
                          estimate_credits=False)
    cargo._client = CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock(on_sleep=emu.advance))
    return cargo


def _one(emu: CargoEmulator, cargo: CargoResource, record: dict[str, Any]) -> tuple[float, float, int]:
    client = cargo.get_client()
    cargo_start, wall_start, requests = emu.clock.now(), time.perf_counter(), client.request_count
    result = cargo.run_tool(_Context(), TOOL, [record])
    assert len(result.frame) == 1 and result.frame["_status"].iloc[0] == "success"
    return emu.clock.now() - cargo_start, time.perf_counter() - wall_start, client.request_count - requests


def run(quick: bool) -> list[Row]:
    n = QUICK_RECORDS if quick else FULL_RECORDS
    single: list[tuple[float, float, int]] = []
    batch: list[tuple[float, float, int]] = []
    with CargoEmulator(token=TOKEN, clock="manual", seed=7, run_failure_rate=0.0, credits=1_000_000) as emu:
        runs, batches = _resource(emu, 1), _resource(emu, 0)
        for cargo in (runs, batches):  # warm-up, not measured: imports and connections on both sides
            _one(emu, cargo, {"domain": "b7-warm.example.com", "company_name": f"warm {cargo.single_run_threshold}"})
        for i in range(n):  # alternate, so neither side gets a warmer emulator
            record = {"domain": f"b7-{i}.example.com", "company_name": f"B7 {i}"}
            single.append(_one(emu, runs, record))
            batch.append(_one(emu, batches, {**record, "company_name": f"B7 batch {i}"}))
        assert len(emu.batches()) == n + 1 and len([r for r in emu.runs() if r.batch_uuid is None]) == n + 1
        runs.close()
        batches.close()
    return _rows(n, single, batch)


def _rows(n: int, single: list[tuple[float, float, int]], batch: list[tuple[float, float, int]]) -> list[Row]:
    rows = []
    names = [("Cargo time to result (median)", "s"), ("wall time to result (median)", "s"),
             ("API requests per record (median)", "")]
    for k, (name, unit) in enumerate(names):
        o = statistics.median(x[k] for x in single)
        b = statistics.median(x[k] for x in batch)
        goal, met = ("< baseline", o < b) if k != 1 else ("", None)
        rows.append(Row("B7", f"{name}, {n} records", fmt(o, unit, 2 if unit else 0), fmt(b, unit, 2 if unit else 0),
                        fmt(o / b) if b else "", goal, met,
                        note="single run (threshold 1) vs one-record batch (threshold 0), run_tool defaults, "
                             "emulator's manual clock" if k == 0 else ""))
    return rows
