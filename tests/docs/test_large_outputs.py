"""The large-outputs guide's partitioned Parquet example materializes a day with records, as written."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pyarrow.parquet as pq
from cargo_gtm.running import ManualClock

from dagster_cargo import CargoResource

from ._blocks import ROOT, blocks_of
from .test_blocks import TOKEN, _emulator


def test_partitioned_parquet_example_materializes_a_day(tmp_path, monkeypatch):
    (block,) = [b for b in blocks_of(ROOT / "docs" / "dagster" / "large-outputs.md") if "scored_companies_daily" in b.code
                and "def scored_companies_daily" in b.code]
    assert 'OUTPUT_ROOT = Path("cargo-outputs")' in block.code
    monkeypatch.chdir(tmp_path)  # the page writes under ./cargo-outputs
    namespace: dict = {"__name__": "large_outputs_page"}
    exec(compile(block.code, block.where, "exec", dont_inherit=True), namespace)
    with _emulator() as emu:
        model = emu.store.model_by_slug("companies")
        days = Counter(str(r["created_at"])[:10] for r in emu.store.model_records(model["uuid"]))
        day = days.most_common(1)[0][0]  # the created_at day with the most seeded companies
        # the resource does not wait in real time: its sleeps move the emulator's clock forward by as much
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url, poll_interval=0.01,
                              max_poll_interval=0.05).with_clock(ManualClock(on_sleep=emu.advance))
        result = dg.materialize([namespace["scored_companies_daily"], namespace["tier_a_counts"]],
                                resources={"cargo": cargo}, partition_key=day)
    assert result.success
    table = pq.read_table(tmp_path / "cargo-outputs" / "scored_companies" / f"{day}.parquet")
    meta = result.asset_materializations_for_node("scored_companies_daily")[0].metadata
    assert meta["dagster/row_count"].value == table.num_rows == days[day]
    assert "domain" in table.column_names and "tier" in table.column_names
    tier_a = result.asset_materializations_for_node("tier_a_counts")[0].metadata["dagster/row_count"].value
    assert tier_a == sum(t == "A" for t in table.column("tier").to_pylist())
