"""B2 completion latency: how long after a batch ends does the waiting code see it?

A set of batches of very different sizes (from a few seconds to several minutes of Cargo
time) is waited for with the package's adaptive polling (``CargoClient.wait_for_batches``
with the resource defaults: 1 s first/minimum interval, 30 s maximum, next poll at half the
estimated time left, within Cargo's guidance: on average at most one request per 5 s per batch,
every 10 s at most after the first minute for 1,000+ records) and, in a second emulator with the same seed and inputs, with the
baseline: every batch polled every 5 s (the Cargo CLI docs' interval).

Latency is measured in Cargo time: the emulator's clock when the waiting code receives the
terminal status, minus the batch's ``finishedAt``. Requests per batch-minute = requests ÷ the
sum of the batches' durations in minutes, counting every HTTP request the waiting code sends
(ours reads all unfinished batches with one list call per round; the baseline GETs each one). Cargo time runs ``SPEED``× faster than wall time;
polling intervals are scaled the same way, HTTP round trips are not (which only adds to
measured latency, on both sides).
"""

from __future__ import annotations

from typing import Any

from cargo_gtm import CargoClient
from cargo_gtm.running.waiting import BatchProgress, PollingGuidance, wait_for_batches
from cargo_gtm_emulator import CargoEmulator

from ._report import Row, fmt

TOKEN = "bench-b2-token"
TOOL = "Enrich company"
SPEED = 10.0
FULL_SIZES = [2, 5, 10, 20, 40, 80, 120, 200, 300, 400] * 3
QUICK_SIZES = [2, 10, 40]
#: Cargo's polling guidance (5 s on average; 10 s after a minute for 1,000+ records), in wall seconds at SPEED.
GUIDANCE = PollingGuidance(average_interval=5.0 / SPEED, large_batch_after=60.0 / SPEED,
                           large_batch_interval=10.0 / SPEED)


def _records(size: int, tag: int) -> list[dict[str, Any]]:
    return [{"domain": f"lat{tag}-{i}.example.com", "company_name": f"Lat {tag} {i}"} for i in range(size)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _measure(sizes: list[int], adaptive: bool, listing: bool = True) -> dict[str, Any]:
    with CargoEmulator(token=TOKEN, speed=SPEED, run_failure_rate=0.0, credits=10_000_000) as emu, \
            CargoClient(TOKEN, base_url=emu.base_url, allow_insecure_http=True) as client:
        workflow = client.find_tool(TOOL).workflow_uuid
        created = [client.create_batch(workflow, {"kind": "records", "records": _records(n, i)}, reconcile=False)
                   for i, n in enumerate(sizes)]
        uuids = [b.uuid for b in created]
        seen: dict[str, float] = {}

        def on_progress(progress: BatchProgress) -> None:
            if progress.batch.is_terminal and progress.batch.uuid not in seen:
                seen[progress.batch.uuid] = emu.clock.now()

        before = client.request_count
        if adaptive and not listing:  # the adaptive schedule alone, one GET per batch (as for a lone batch)
            wait_for_batches(client.get_batch, uuids, timeout=None, poll_interval=1.0 / SPEED,
                             max_poll_interval=30.0 / SPEED, on_progress=on_progress,
                             initial={b.uuid: b for b in created}, guidance=GUIDANCE)
        elif adaptive:  # the package's loop: adaptive per-batch schedule, one list call per round
            client.wait_for_batches(uuids, timeout=None, poll_interval=1.0 / SPEED, max_poll_interval=30.0 / SPEED,
                                    on_progress=on_progress, initial={b.uuid: b for b in created}, guidance=GUIDANCE)
        else:  # the baseline: each batch read with its own GET every 5 s (same loop, no adaptation, no list)
            wait_for_batches(client.get_batch, uuids, timeout=None, poll_interval=5.0 / SPEED,
                             max_poll_interval=5.0 / SPEED, on_progress=on_progress,
                             initial={b.uuid: b for b in created}, guidance=GUIDANCE)
        requests = client.request_count - before
        latencies, minutes = [], 0.0
        for uuid in uuids:
            state = emu.store.engine.batches[uuid]
            latencies.append(seen[uuid] - state.finished_at)
            minutes += (state.finished_at - state.created_at) / 60
        return {"latencies": latencies, "requests": requests, "batch_minutes": minutes}


def run(quick: bool) -> list[Row]:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    ours = _measure(sizes, adaptive=True)
    base = _measure(sizes, adaptive=False)
    rows = []
    for q in (50, 95):
        o, b = _percentile(ours["latencies"], q), _percentile(base["latencies"], q)
        rows.append(Row("B2", f"completion latency p{q} ({len(sizes)} batches)", fmt(o, "s"), fmt(b, "s"),
                        fmt(o / b) if b else "", "< baseline", o < b))
    alone = _measure(sizes, adaptive=True, listing=False)
    o_rate = ours["requests"] / ours["batch_minutes"]
    b_rate = base["requests"] / base["batch_minutes"]
    a_rate = alone["requests"] / alone["batch_minutes"]
    rows.append(Row("B2", "requests per batch-minute", fmt(o_rate, digits=1), fmt(b_rate, digits=1),
                    fmt(o_rate / b_rate),
                    note=f"Cargo time ×{SPEED:g}; batches of {min(sizes)}-{max(sizes)} records, "
                         f"{ours['batch_minutes']:.0f} batch-minutes in all"))
    for q in (50, 95):
        o, b = _percentile(alone["latencies"], q), _percentile(base["latencies"], q)
        rows.append(Row("B2", f"latency p{q}, adaptive schedule alone (GET each)", fmt(o, "s"), fmt(b, "s"),
                        fmt(o / b) if b else "", "< baseline", o < b))
    rows.append(Row("B2", "requests per batch-minute, adaptive schedule alone", fmt(a_rate, digits=1),
                    fmt(b_rate, digits=1), fmt(a_rate / b_rate),
                    note="each batch polled with its own GET on the adaptive schedule (what a lone batch gets): "
                         "about the request budget of fixed 5 s polling, spent where it cuts latency"))
    return rows
