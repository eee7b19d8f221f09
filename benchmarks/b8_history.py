"""B8: cost against history: requests and wall time per materialization and per sensor tick, with 100, 1,000
and 10,000 earlier batches on the workflow.

An in-process emulator on a manual clock (simulated time moves only when the client waits, so the wall time is
the client's own work plus loopback round trips) holds the workflow's history: hourly batches seeded straight
into its store (the API's create path, no HTTP), all finished. Then, for each history size:

* one materialization of a tool asset on 100 records (``CargoResource.run_tool``, the defaults: estimate,
  exactly-once create, wait, download, credits), counted from the emulator's request log;
* one tick of the observation sensor over that workflow's asset, after a new batch ran outside Dagster.

Cargo's docs leave the batch list's order open; the emulator serves it newest first here (what Cargo's
dashboards show), the order the client reads only the newest page of. A last row shows the fallback cost at
10,000 batches when the list comes oldest first (every page read). Wall times are the median of ``repeats``
runs with their spread; request counts are exact (the same every run).
"""


import time
from typing import Any

from ._report import Row, median, spread
from ._token import env_token

TOKEN = "bench-b8-token"
TOOL = "Enrich company"
HOUR = 3600.0
OUTSIDE_USER = "b8000000-0000-4000-8000-00000000b8b8"  # a colleague in Cargo's UI: a batch run outside Dagster


def _seed(emu: Any, workflow_uuid: str, count: int) -> None:
    from cargo_gtm import records_data
    from cargo_gtm_emulator.backend.batches import create_batch_from

    start = emu.store.sync()
    data = records_data([{"domain": "earlier.example"}])
    for i in range(count):
        create_batch_from(emu.store, {"workflowUuid": workflow_uuid, "data": dict(data)}, start + i * HOUR)
    emu.advance(count * HOUR + 600)


def _api(emu: Any, since: int) -> int:
    return len([e for e in emu.request_log[since:] if e["path"].startswith("/v1/")])


def _polls(emu: Any, since: int) -> int:
    """Status polls (``GET /orchestration/batches/<uuid>``) among the requests since ``since``."""
    return len([e for e in emu.request_log[since:] if e["method"] == "GET" and e["path"].startswith(
        "/v1/orchestration/batches/") and not e["path"].endswith("/list")])


def _materialize(emu: Any, resource: Any) -> tuple[int, float]:
    import dagster as dg
    import pandas as pd

    from dagster_cargo import CargoResource

    rows = pd.DataFrame({"domain": [f"b8-{i}.example" for i in range(100)]})

    @dg.asset(name="enriched")
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, TOOL, rows).materialize_result()

    mark = len(emu.request_log)
    started = time.perf_counter()
    result = dg.materialize([enriched], resources={"cargo": resource})
    wall = time.perf_counter() - started
    assert result.success and len(result.output_for_node("enriched")) == 100
    emu.b8_polls.append(_polls(emu, mark))
    return _api(emu, mark), wall


def _tick(emu: Any, resource: Any, sensor: Any, cursor: str | None, instance: Any) -> tuple[int, float, Any]:
    import dagster as dg

    mark = len(emu.request_log)
    started = time.perf_counter()
    with dg.build_sensor_context(cursor=cursor, resources={"cargo": resource}, instance=instance) as ctx:
        result = sensor(ctx)
    return _api(emu, mark), time.perf_counter() - started, result


def measure(sizes: list[int], repeats: int, order: str = "newest_first") -> dict[int, dict[str, Any]]:
    """Per history size: requests and walls of ``repeats`` materializations and sensor ticks."""
    import dagster as dg
    from cargo_gtm import records_data
    from cargo_gtm.running.clock import ManualClock
    from cargo_gtm_emulator import CargoEmulator
    from cargo_gtm_emulator.backend.batches import create_batch_from

    from dagster_cargo import CargoResource
    from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
    from dagster_cargo.definitions.sensors import build_cargo_observation_sensor

    out: dict[int, dict[str, Any]] = {}
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, credits=10**9,
                       variants={"batch_list_order": order}) as emu, dg.instance_for_test() as instance:
        resource = CargoResource(api_token=env_token(TOKEN), base_url=emu.base_url, poll_interval=1.0,
                                 max_poll_interval=30.0).with_clock(ManualClock(on_sleep=emu.advance))
        workflow = str(emu.store.tool_by_name(TOOL)["workflowUuid"])
        sensor = build_cargo_observation_sensor(build_cargo_assets_definitions(resource, selector=[TOOL]))
        cursor: str | None = None
        emu.b8_polls = []
        for size in sizes:
            _seed(emu, workflow, size - len(emu.batches(workflow)))
            for _ in range(2):  # catch up with the history (the watermark trails the tick before)
                cursor = _tick(emu, resource, sensor, cursor, instance)[2].cursor
            runs: dict[str, list[tuple[int, float]]] = {"materialization": [], "tick": []}
            for i in range(repeats):
                runs["materialization"].append(_materialize(emu, resource))
                emu.advance(HOUR)
                create_batch_from(emu.store, {"workflowUuid": workflow, "data": records_data(
                    [{"domain": f"outside-{size}-{i}.example"}])}, emu.store.sync(), user_uuid=OUTSIDE_USER)
                emu.advance(600)
                requests, wall, result = _tick(emu, resource, sensor, cursor, instance)
                assert len(result.asset_events) == 1, "the batch run outside Dagster is reported once"
                cursor = result.cursor
                runs["tick"].append((requests, wall))
                emu.advance(HOUR)
            out[size] = {**runs, "batches": len(emu.batches(workflow)), "polls": emu.b8_polls[-repeats:]}
    return out


GOAL = "flat within 1 request"


def _besides_polls(m: dict[int, dict[str, Any]], sizes: list[int]) -> str:
    """The materializations' requests besides status polls (the polls follow each batch's simulated duration)."""
    rest = [sorted({r - p for (r, _), p in zip(m[s]["materialization"], m[s]["polls"], strict=True)}) for s in sizes]
    return "; besides status polls: " + " / ".join("/".join(map(str, r)) for r in rest)


def run(quick: bool) -> list[Row]:
    sizes, repeats = ([100, 1_000], 1) if quick else ([100, 1_000, 10_000], 3)
    m = measure(sizes, repeats)
    fallback = measure([sizes[-1]], 1, order="oldest_first")[sizes[-1]]
    smoke = "quick run: a smoke test of the harness. " if quick else ""
    rows: list[Row] = []
    for what, label in (("materialization", "per materialization (tool, 100 records)"), ("tick", "per sensor tick")):
        counts = {size: sorted({r for r, _ in m[size][what]}) for size in sizes}
        flat = max(max(c) for c in counts.values()) - min(min(c) for c in counts.values())
        walls = {size: [w for _, w in m[size][what]] for size in sizes}
        rows.append(Row(
            "B8", f"requests {label}", " / ".join(f"{'/'.join(map(str, counts[s]))}" for s in sizes),
            f"{sizes[0]:,} batches: {counts[sizes[0]][0]}", f"+{flat} at {sizes[-1]:,}", GOAL,
            (flat <= 1) if not quick else None,
            note=(f"{smoke}at {' / '.join(f'{s:,}' for s in sizes)} earlier batches (hourly), list served newest "
                  f"first{_besides_polls(m, sizes) if what == 'materialization' else ''}; fallback when served oldest first at {sizes[-1]:,}: "
                  f"{fallback[what][0][0]} requests (every page)")))
        rows.append(Row(
            "B8", f"wall time {label}", " / ".join(f"{median(walls[s]):.3f} s" for s in sizes),
            f"{median(walls[sizes[0]]):.3f} s at {sizes[0]:,}",
            f"{median(walls[sizes[-1]]) / median(walls[sizes[0]]):.2f}",
            note=(f"{smoke}median [min–max] of {repeats} run(s): "
                  + "; ".join(f"{s:,}: {spread(walls[s], 3)} s" for s in sizes)
                  + f"; the oldest-first fallback at {sizes[-1]:,}: {fallback[what][0][1]:.3f} s. Manual clock: "
                    "Cargo's time costs nothing, the wall is the client's work and loopback round trips")))
    return rows


if __name__ == "__main__":
    import sys

    from ._report import render

    print(render(run(quick="--quick" in sys.argv)))
