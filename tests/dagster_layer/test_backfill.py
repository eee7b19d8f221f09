"""Backfilling a date-partitioned play over 7 partitions (issue 19, item 8c).

``dagster asset materialize --partition-range`` runs one step over the range; Dagster refuses it unless the asset's
backfill policy is single-run, and the IO manager then needs one output per partition. With
``single_run_backfill=True`` a date-partitioned workspace play asset is single-run: the step runs one batch per
partition (each over its own window) and returns ``{partition: DataFrame}``, which ``cargo_partitioned_io_manager``
stores one file per partition. The UI's backfill (the daemon) takes the same single-run path then; without the
flag it runs one run per partition (Dagster's default), which already worked.
"""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
from cargo_gtm import CargoClient
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import cargo_partitioned_io_manager
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.translator import DagsterCargoTranslator

from ..conftest import TOKEN, make_resource

PLAY = "Score inbound companies"
NODE = "cargo__score_inbound_companies"


def seven_days(emu) -> tuple[list[str], dict[str, set[str]]]:
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        play = c.find_play(PLAY)
        everything = c.fetch_segment(play.model_uuid, {"conjonction": "and", "groups": []}, fetching_limit=10_000)
    by_day: dict[str, set[str]] = {}
    for r in everything.records:
        by_day.setdefault(str(r["created_at"])[:10], set()).add(r["_id"])
    first = sorted(by_day)[len(by_day) // 2]
    days = [str(d.date()) for d in pd.date_range(first, periods=7, freq="D")]
    return days, {d: by_day.get(d, set()) for d in days}


def test_a_partition_range_runs_each_partition_once_in_one_run(emulator, tmp_path):
    daily = dg.DailyPartitionsDefinition(start_date="2020-01-01")

    class Daily(DagsterCargoTranslator):
        def get_asset_spec(self, props):
            return super().get_asset_spec(props).replace_attributes(partitions_def=daily)

    (play_asset,) = build_cargo_assets_definitions(make_resource(emulator), translator=Daily(), selector=[PLAY],
                                                   partition_date_columns={PLAY: "created_at"},
                                                   single_run_backfill=True)
    assert play_asset.backfill_policy == dg.BackfillPolicy.single_run()
    days, want = seven_days(emulator)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize([play_asset], instance=instance, resources={
            "cargo": make_resource(emulator), "io_manager": cargo_partitioned_io_manager},
                                tags={"dagster/asset_partition_range_start": days[0],
                                      "dagster/asset_partition_range_end": days[-1]})
        assert result.success
        stored = {d: pd.read_pickle(Path(instance.storage_directory()) / "cargo" / "score_inbound_companies" / d)
                  for d in days}
        mats = instance.fetch_materializations(play_asset.key, limit=100).records
    assert {d: set(f["_id"]) if "_id" in f else set() for d, f in stored.items()} == want
    assert sorted(m.partition_key for m in mats) == days
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        batches = c.list_all_batches(c.find_play(PLAY).workflow_uuid)
    assert len(batches) == sum(1 for d in days if want[d])  # one per non-empty window, none twice


def test_the_documented_cli_backfill_works_for_7_partitions(tmp_path):
    with CargoEmulator(token=TOKEN, speed=400.0, seed=1, run_failure_rate=0.0, credits=1_000_000) as emu:
        days, want = seven_days(emu)
        home = tmp_path / "home"
        home.mkdir()
        env = {**os.environ, "DAGSTER_HOME": str(home), "CARGO_API_TOKEN": TOKEN, "CARGO_BASE_URL": emu.base_url}
        defs = Path(__file__).parent / "backfill_defs" / "defs.py"
        proc = subprocess.run(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(defs), "--select", NODE.replace(
                "__", "/"), "--partition-range", f"{days[0]}...{days[-1]}"],
            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with dg.DagsterInstance.from_ref(_ref(home)) as instance:
            mats = instance.fetch_materializations(dg.AssetKey(["cargo", "score_inbound_companies"]), limit=100).records
            stored = {d: pd.read_pickle(home / "storage" / "cargo" / "score_inbound_companies" / d) for d in days}
        assert sorted(m.partition_key for m in mats) == days
        assert {d: set(f["_id"]) if "_id" in f else set() for d, f in stored.items()} == want
        assert TOKEN not in proc.stdout + proc.stderr


def _ref(home):
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.from_dir(str(home))
