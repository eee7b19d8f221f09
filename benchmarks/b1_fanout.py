"""B1 fan-out: 50 batches of ~200 records from one asset, against the sequential CLI pattern.

Ours: one Dagster asset calls ``CargoResource.run_tool`` on 10,000 records with
``max_records_per_batch=200``: 50 batches are created, waited for in one adaptive polling loop
and downloaded as each finishes. The figure is the asset's wall time ÷ the slowest batch's own
duration (its ``finishedAt - createdAt`` in Cargo time).

Baseline: the Cargo CLI's ``--wait-until-finished`` pattern, one batch after the other:
create → poll every 5 s → download, with the same client.

Time: the emulator runs ``SPEED`` simulated seconds per wall second, and both sides poll in
simulated seconds (a 5 s poll is ``5 / SPEED`` wall seconds), so every ratio is what the real
service would show; HTTP round trips are not sped up, which only works against us.
"""



import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
from cargo_gtm import Batch, CargoClient

from dagster_cargo import CargoResource

from ._report import Row, fmt

TOKEN = "bench-b1-token"
TOOL = "Enrich company"
SPEED = 20.0  # a ~80 s (Cargo time) batch of 200 records lasts ~4 s of wall time


def records(n: int) -> pd.DataFrame:
    return pd.DataFrame({"domain": [f"fan{i}.example.com" for i in range(n)],
                         "company_name": [f"Fan {i}" for i in range(n)]})


@contextlib.contextmanager
def emulator_process(speed: float) -> Iterator[str]:
    """``cargo-emulator serve`` in its own process (as a real Cargo is on another machine,
    its CPU is not ours); yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", "0",
         "--speed", str(speed), "--run-failure-rate", "0", "--credits", "10000000"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "CARGO_EMULATOR_TOKEN": TOKEN})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"ready at (\S+)", line)
        if not match:
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _seconds(batches: list[Batch]) -> list[float]:
    """Each batch's own duration (finishedAt - createdAt), in wall seconds."""
    return [float(b.duration_seconds or 0.0) / SPEED for b in batches]


def run_ours(n_batches: int, per_batch: int) -> dict[str, Any]:
    frame = records(n_batches * per_batch)
    seen: dict[str, Any] = {}

    @dg.asset(kinds={"cargo"})
    def enriched_companies(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        client = cargo.get_client()
        before = client.request_count
        started = time.perf_counter()
        result = cargo.run_tool(context, TOOL, frame)
        seen["wall"] = time.perf_counter() - started
        seen["requests"] = client.request_count - before
        seen["rows"] = len(result.frame)
        seen["batches"] = result.batches
        return result.materialize_result()

    with emulator_process(SPEED) as base_url:
        resource = CargoResource(
            api_token=TOKEN, base_url=base_url, max_records_per_batch=per_batch,
            poll_interval=1.0 / SPEED, max_poll_interval=30.0 / SPEED,  # credit breakdown on, as by default
        )
        result = dg.materialize([enriched_companies], resources={"cargo": resource})
        assert result.success
    return {"wall": seen["wall"], "slowest": max(_seconds(seen["batches"])), "batches": len(seen["batches"]),
            "rows": seen["rows"], "requests": seen["requests"]}


def run_baseline(n_batches: int, per_batch: int) -> dict[str, Any]:
    rows = records(n_batches * per_batch).to_dict("records")
    with emulator_process(SPEED) as base_url, \
            CargoClient(TOKEN, base_url=base_url, allow_insecure_http=True) as client:
        workflow = client.find_tool(TOOL).workflow_uuid
        before = client.request_count
        started = time.perf_counter()
        finished, total = [], 0
        for i in range(n_batches):
            chunk = rows[i * per_batch:(i + 1) * per_batch]
            batch = client.create_batch(workflow, {"kind": "records", "records": chunk})
            while not batch.is_terminal:
                time.sleep(5.0 / SPEED)
                batch = client.get_batch(batch.uuid)
            total += len(client.download_batch_dataframe(batch.uuid))
            finished.append(batch)
        wall = time.perf_counter() - started
        return {"wall": wall, "slowest": max(_seconds(finished)), "batches": n_batches, "rows": total,
                "requests": client.request_count - before}


def run(quick: bool) -> list[Row]:
    n, per = (5, 40) if quick else (50, 200)
    ours = run_ours(n, per)
    base = run_baseline(n, per)
    assert ours["rows"] == base["rows"] == n * per, (ours["rows"], base["rows"])
    ratio = ours["wall"] / ours["slowest"]
    b_ratio = base["wall"] / base["slowest"]
    return [
        Row("B1", f"wall ÷ slowest batch ({n}×{per} records)", fmt(ratio), fmt(b_ratio), fmt(ratio),
            "<= 1.15", ratio <= 1.15,
            note=f"ours {ours['wall']:.2f} s vs slowest batch {ours['slowest']:.2f} s; Cargo time ×{SPEED:g}"),
        Row("B1", "total wall time", fmt(ours["wall"], "s"), fmt(base["wall"], "s"),
            f"{base['wall'] / ours['wall']:.1f}× faster"),
        Row("B1", "HTTP requests per batch", fmt(ours["requests"] / n, digits=1),
            fmt(base["requests"] / n, digits=1), fmt(ours["requests"] / base["requests"])),
    ]
