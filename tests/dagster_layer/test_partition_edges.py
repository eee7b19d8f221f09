"""Records at a partition's edges fall in exactly one daily partition (issue 19, item 8b).

``partition_window`` turns Dagster's [start, end) into Cargo's inclusive ``between start and end − 1 ms``: Cargo's
date operators are ``between`` (inclusive), ``greaterThan``, ``lowerThan`` and ``is``/``isNot``, and neither
REFERENCE nor CARGO-DOCS says whether the two comparisons are strict, so a half-open window cannot be written
with certainty. The window is exact when dates compare at millisecond precision, as a JavaScript ``Date`` holds
them (the emulator's default ``date_precision=ms``): a record at ``…T23:59:59.9995Z`` is in its day's
partition. Under microsecond precision (the ``us`` variant) it falls between two partitions: documented, and
asserted here so a change to either side is seen.
"""

import dagster as dg
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.inputs.records import date_window_filter
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo.definitions.asset_defs import partition_window

from ..conftest import TOKEN

EDGES = ["2025-03-01T00:00:00.000Z", "2025-03-01T00:00:00.0004Z", "2025-03-01T12:00:00Z",
         "2025-03-01T23:59:59.999Z", "2025-03-01T23:59:59.9995Z", "2025-03-01T23:59:59.999999Z",
         "2025-03-02T00:00:00Z", "2025-02-28T23:59:59.9999Z"]


def _company(i: int, created_at: str) -> dict:
    return {"_id": f"edge_{i}", "_title": f"Edge {i}", "domain": f"edge{i}.example", "name": f"Edge {i}",
            "industry": "Software", "employee_count": 10, "country": "US", "founded_year": 2020,
            "created_at": created_at}


def partitions_of(precision: str) -> dict[str, list[str]]:
    """Each edge record's id → the daily partitions (Feb 28 .. Mar 2) whose window selects it."""
    days = dg.DailyPartitionsDefinition(start_date="2025-02-27")
    with CargoEmulator(token=TOKEN, seed=1, clock="manual", variants={"date_precision": precision}) as emu:
        emu.store.upsert_records("companies", [_company(i, c) for i, c in enumerate(EDGES)])
        model = emu.store.model_by_slug("companies")["uuid"]
        found: dict[str, list[str]] = {f"edge_{i}": [] for i in range(len(EDGES))}
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            for key in ("2025-02-28", "2025-03-01", "2025-03-02"):
                start, end = partition_window(days.time_window_for_partition_key(key))
                records = client.fetch_segment(model, date_window_filter("created_at", start, end), limit=1000).records
                for r in records:
                    if str(r["_id"]).startswith("edge_"):
                        found[str(r["_id"])].append(key)
    return found


def test_every_edge_record_is_in_exactly_one_partition_at_millisecond_precision():
    found = partitions_of("ms")
    assert {EDGES[int(k[5:])]: v for k, v in found.items()} == {
        "2025-03-01T00:00:00.000Z": ["2025-03-01"], "2025-03-01T00:00:00.0004Z": ["2025-03-01"],
        "2025-03-01T12:00:00Z": ["2025-03-01"], "2025-03-01T23:59:59.999Z": ["2025-03-01"],
        "2025-03-01T23:59:59.9995Z": ["2025-03-01"], "2025-03-01T23:59:59.999999Z": ["2025-03-01"],
        "2025-03-02T00:00:00Z": ["2025-03-02"], "2025-02-28T23:59:59.9999Z": ["2025-02-28"]}


@pytest.mark.parametrize("precision", ["us"])
def test_sub_millisecond_edges_fall_between_partitions_at_microsecond_precision(precision):
    """The documented limit: if Cargo compared microseconds, the last millisecond's tail would be missed."""
    found = partitions_of(precision)
    missed = sorted(EDGES[int(k[5:])] for k, v in found.items() if not v)
    assert missed == ["2025-02-28T23:59:59.9999Z", "2025-03-01T23:59:59.9995Z", "2025-03-01T23:59:59.999999Z"]
    assert all(len(v) <= 1 for v in found.values())  # never in two partitions
