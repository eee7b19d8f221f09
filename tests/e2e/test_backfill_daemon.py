"""The UI's backfill of a date-partitioned workspace play over 7 partitions, run by a real ``dagster-daemon``
(issue 19, item 8), on both paths docs/dagster/schedules-and-partitions.md ("Backfills") documents.

The code location is the one the CLI backfill test loads (tests/dagster_layer/backfill_defs/defs.py):
``cargo_partitioned_io_manager`` and ``single_run_backfill=True`` (the ``single_run`` case), or without it
(``per_partition``: Dagster's default policy, one run per partition). A real ``dagster-webserver`` serves it; the
backfill is
submitted with the GraphQL mutation the UI's "Materialize → partitions" dialog sends (``launchPartitionBackfill``
with an asset selection and partition names); a real ``dagster-daemon run`` on the same temporary DAGSTER_HOME
picks it up and launches the run (code server, run worker: every process a UI backfill involves).

What the docs promise, asserted: the backfill completes; one Dagster run covers the 7 partitions (``single_run``)
or one run per partition (``per_partition``); either way one Cargo batch per partition whose window holds
records (none for an empty window), each over its own window; 7 materializations; each record in exactly one
batch and stored once, in its day's partition file; the credits the materializations report are what the
emulator billed (provider + 0.01 per node execution).

Real processes, real time (the emulator runs at speed 400): the daemon's backfill loop sleeps 30 s between
iterations (``DEFAULT_DAEMON_INTERVAL_SECONDS``, not configurable), so the backfill needs about 30 s to be marked
complete after its run succeeds. The folder is marked slow (tests/conftest.py ``SLOW``); nothing asserts a
duration, deadlines only bound a hang.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm_emulator import CargoEmulator
from dagster._core.instance.ref import InstanceRef

from . import _stack

DEFS = _stack.ROOT / "tests" / "dagster_layer" / "backfill_defs" / "defs.py"
LOCATION = "defs.py"
PLAY = "Score inbound companies"
ASSET = ["cargo", "score_inbound_companies"]
#: provider credits of one run of the play (enrich_company 2 + score 1) and its node executions (start,
#: enrich_company, score, output): Cargo bills 2 + 1 + 4 × 0.01 (CARGO-DOCS 5)
PER_RECORD = 3 + 4 * 0.01

LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

BACKFILL_STATUS = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status numPartitions isAssetBackfill }
    ... on PythonError { message }
  }
}
"""

FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def seven_days(emu: CargoEmulator) -> tuple[list[str], dict[str, set[str]]]:
    """7 consecutive days (UTC) of the play's model, some with records and some without, and each day's ids."""
    by_day: dict[str, set[str]] = {}
    for record in emu.store.records[emu.store.model_by_slug("companies")["uuid"]].values():
        by_day.setdefault(str(record["created_at"])[:10], set()).add(record["_id"])
    days_sorted = sorted(by_day)
    for first in days_sorted[len(days_sorted) // 2:]:
        days = [str(d.date()) for d in pd.date_range(first, periods=7, freq="D")]
        if 2 <= sum(1 for d in days if by_day.get(d)) < 7:  # several batches, and a window that makes none
            return days, {d: by_day.get(d, set()) for d in days}
    raise AssertionError("no 7-day range with both empty and non-empty days")


@pytest.fixture(params=["single_run", "per_partition"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def emulator(mode: str) -> Iterator[CargoEmulator]:
    with CargoEmulator(token=_stack.EMULATOR_TOKEN, speed=400.0, seed=1, run_failure_rate=0.0,
                       credits=1_000_000) as emu:
        yield emu


@pytest.fixture
def stack(emulator: CargoEmulator, mode: str, tmp_path: Path) -> Iterator[_stack.Webserver]:
    """The webserver on the partitioned code location (its own DAGSTER_HOME); the test starts the daemon."""
    home = _stack.make_dagster_home(tmp_path / "dagster_home")
    server = _stack.start_webserver(
        home, emulator.base_url, target=("-f", str(DEFS)), location=LOCATION,
        extra_env={"CARGO_API_TOKEN": _stack.EMULATOR_TOKEN, "CARGO_BASE_URL": emulator.base_url,
                   "BACKFILL_SINGLE_RUN": "1" if mode == "single_run" else "0"})
    try:
        yield server
    finally:
        server.shutdown()


def _backfill_status(server: _stack.Webserver, backfill_id: str) -> dict[str, Any]:
    data = server.graphql(BACKFILL_STATUS, backfillId=backfill_id)["partitionBackfillOrError"]
    assert data["__typename"] == "PartitionBackfill", data
    return data


def _wait_finished(server: _stack.Webserver, backfill_id: str, timeout: float = 420.0) -> dict[str, Any]:
    """Poll the backfill's status until it is finished (the deadline only bounds a hang)."""
    deadline = time.monotonic() + timeout
    status = _backfill_status(server, backfill_id)
    while status["status"] not in FINISHED:
        if time.monotonic() > deadline:
            raise AssertionError(f"backfill not finished in time: {status}\n{server.diagnostics()}")
        time.sleep(1.0)
        status = _backfill_status(server, backfill_id)
    return status


def _batch_records(emu: CargoEmulator, batch_uuid: str) -> list[str]:
    with httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {emu.token}"}) as api:
        runs = api.post("/orchestration/runs/list", json={"batchUuid": batch_uuid, "limit": 1000}).json()["runs"]
    return [r["recordId"] for r in runs]


def _credits(meta: dict[str, Any]) -> float:
    value = meta.get("dagster-cargo/credits_used")
    return float(getattr(value, "value", value) or 0.0)


def test_the_uis_backfill_of_7_partitions_runs_through_the_daemon(emulator, stack, mode):
    days, want = seven_days(emulator)
    expected_batches = sum(1 for d in days if want[d])
    n_records = sum(len(ids) for ids in want.values())

    launched = stack.graphql(LAUNCH_BACKFILL, backfillParams={
        "assetSelection": [{"path": ASSET}], "partitionNames": days, "fromFailure": False,
        "tags": []})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    # the webserver only records the request: nothing runs, nothing is spent, until the daemon takes it
    requested = _backfill_status(stack, backfill_id)
    assert requested["status"] == "REQUESTED" and requested["isAssetBackfill"] is True
    assert emulator.credits_used == 0

    _stack.start_daemon(stack)
    finished = _wait_finished(stack, backfill_id)
    assert finished["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), f"{finished}\n{stack.diagnostics()}"
    assert finished["numPartitions"] == 7

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(stack.dagster_home))) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        mats = instance.fetch_materializations(dg.AssetKey(ASSET), limit=100).records
        storage = Path(instance.storage_directory())
    if mode == "single_run":  # one Dagster run over the range, and it succeeded
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS], stack.diagnostics()
        assert runs[0].tags["dagster/asset_partition_range_start"] == days[0]
        assert runs[0].tags["dagster/asset_partition_range_end"] == days[-1]
    else:  # Dagster's default: one run per partition, each succeeded
        assert {r.tags["dagster/partition"]: r.status for r in runs} == {
            d: dg.DagsterRunStatus.SUCCESS for d in days}, stack.diagnostics()
    # 7 partitions materialized, each stored once, in its own file, with exactly its window's records
    assert sorted(m.partition_key for m in mats) == days
    stored = {d: pd.read_pickle(storage / "cargo" / "score_inbound_companies" / d) for d in days}
    assert {d: set(f["_id"]) if "_id" in f else set() for d, f in stored.items()} == want
    assert {d: len(f) for d, f in stored.items()} == {d: len(ids) for d, ids in want.items()}  # no row twice

    # Cargo: one batch per non-empty window (none for an empty one), each record in exactly one batch
    with CargoClient(_stack.EMULATOR_TOKEN, base_url=emulator.base_url) as client:
        batches = client.list_all_batches(client.find_play(PLAY).workflow_uuid)
    assert len(batches) == expected_batches and all(b.status.value == "success" for b in batches)
    per_batch = [_batch_records(emulator, b.uuid) for b in batches]
    every = [rid for ids in per_batch for rid in ids]
    assert len(every) == len(set(every)) == n_records
    assert sorted(sorted(ids) for ids in per_batch) == sorted(sorted(ids) for ids in want.values() if ids)

    # credits: what the materializations report is what Cargo billed
    billed = emulator.credits_used
    assert billed == pytest.approx(n_records * PER_RECORD, abs=1e-6)
    metas = [m.asset_materialization.metadata for m in mats]
    if mode == "single_run":  # one step's result, recorded on each of its 7 partitions
        assert _credits(metas[0]) == pytest.approx(billed, abs=1e-6)
        assert set(metas[0]["dagster-cargo/batch_uuids"].value.split(",")) == {b.uuid for b in batches}
        assert metas[0]["dagster-cargo/counts"].value["partitions"] == 7
    else:  # each partition its own figure; together, the bill
        assert sum(_credits(m) for m in metas) == pytest.approx(billed, abs=1e-6)
    assert _stack.EMULATOR_TOKEN not in "".join(p.logs(tail=10**7) for p in (stack.process, *stack.others))
