"""B2 completion latency: how long after a batch ends does the waiting code see it?

A set of batches of very different sizes (from a few seconds to several minutes of Cargo
time) is waited for with the package's adaptive polling (``CargoClient.wait_for_batches``
with the resource defaults: 1 s first/minimum interval, 30 s maximum, next poll at half the
estimated time left) and, in a second emulator with the same seed and inputs, with the
baseline: every batch polled every 5 s (the Cargo CLI docs' interval).

Latency is measured in Cargo time: the emulator's clock when the waiting code receives the
terminal status, minus the batch's ``finishedAt``. Requests per batch-minute = polls ÷ the
sum of the batches' durations in minutes. Cargo time runs ``SPEED``× faster than wall time;
polling intervals are scaled the same way, HTTP round trips are not (which only adds to
measured latency, on both sides).
"""

from __future__ import annotations

from typing import Any

from dagster_cargo.client import CargoClient
from dagster_cargo.client.waiting import BatchProgress
from dagster_cargo.emulator import CargoEmulator

from ._report import Row, fmt

TOKEN = "bench-b2-token"
TOOL = "Enrich company"
SPEED = 10.0
FULL_SIZES = [2, 5, 10, 20, 40, 80, 120, 200, 300, 400] * 3
QUICK_SIZES = [2, 10, 40]


def _records(size: int, tag: int) -> list[dict[str, Any]]:
    return [{"domain": f"lat{tag}-{i}.example.com", "company_name": f"Lat {tag} {i}"} for i in range(size)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _measure(sizes: list[int], adaptive: bool) -> dict[str, Any]:
    with CargoEmulator(token=TOKEN, speed=SPEED, run_failure_rate=0.0, credits=10_000_000) as emu, \
            CargoClient(TOKEN, base_url=emu.base_url, allow_insecure_http=True) as client:
        workflow = client.find_tool(TOOL).workflow_uuid
        created = [client.create_batch(workflow, {"kind": "records", "records": _records(n, i)}, reconcile=False)
                   for i, n in enumerate(sizes)]
        uuids = [b.uuid for b in created]
        seen: dict[str, float] = {}
        polls: dict[str, int] = dict.fromkeys(uuids, 0)

        def on_progress(progress: BatchProgress) -> None:
            polls[progress.batch.uuid] += 1
            if progress.batch.is_terminal and progress.batch.uuid not in seen:
                seen[progress.batch.uuid] = emu.clock.now()

        # the baseline is the same per-batch scheduling loop with a fixed 5 s interval, so it is not
        # penalised for polling its batches one after the other
        first, longest = (1.0, 30.0) if adaptive else (5.0, 5.0)
        client.wait_for_batches(uuids, timeout=None, poll_interval=first / SPEED, max_poll_interval=longest / SPEED,
                                on_progress=on_progress, initial={b.uuid: b for b in created})
        latencies, minutes = [], 0.0
        for uuid in uuids:
            state = emu.store.engine.batches[uuid]
            latencies.append(seen[uuid] - state.finished_at)
            minutes += (state.finished_at - state.created_at) / 60
        return {"latencies": latencies, "polls": sum(polls.values()), "batch_minutes": minutes,
                "per_batch": [(n, polls[u], round(lat, 2)) for n, u, lat in zip(sizes, uuids, latencies)]}


def run(quick: bool) -> list[Row]:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    ours = _measure(sizes, adaptive=True)
    base = _measure(sizes, adaptive=False)
    rows = []
    for q in (50, 95):
        o, b = _percentile(ours["latencies"], q), _percentile(base["latencies"], q)
        rows.append(Row("B2", f"completion latency p{q} ({len(sizes)} batches)", fmt(o, "s"), fmt(b, "s"),
                        fmt(o / b) if b else "", "< baseline", o < b))
    o_rate = ours["polls"] / ours["batch_minutes"]
    b_rate = base["polls"] / base["batch_minutes"]
    rows.append(Row("B2", "requests per batch-minute", fmt(o_rate, digits=1), fmt(b_rate, digits=1),
                    fmt(o_rate / b_rate), "< baseline", o_rate < b_rate,
                    note=f"Cargo time ×{SPEED:g}; batches of {min(sizes)}-{max(sizes)} records, "
                         f"{ours['batch_minutes']:.0f} batch-minutes in all"))
    return rows
