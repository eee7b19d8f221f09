"""The large-outputs guide's Dagster example runs as written (against the emulator)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from dagster_cargo import CargoResource
from dagster_cargo.emulator import CargoEmulator

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-docs-4c1d"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_partitioned_parquet_example_materializes_a_day(tmp_path):
    (code,) = [b for b in python_blocks(ROOT / "docs" / "large_outputs.md") if "scored_companies_daily" in b]
    assert 'OUTPUT_ROOT = Path("/data/cargo")' in code
    namespace: dict = {}
    exec(compile(code.replace('Path("/data/cargo")', repr(str(tmp_path)).join(("Path(", ")"))),
                 "large_outputs.md", "exec", dont_inherit=True), namespace)
    with CargoEmulator(token=TOKEN, speed=400, run_failure_rate=0.0) as emu:
        day = _a_day_with_records(emu)
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url, poll_interval=0.01, max_poll_interval=0.05)
        result = dg.materialize([namespace["scored_companies_daily"], namespace["tier_a_counts"]],
                                resources={"cargo": cargo}, partition_key=day)
    assert result.success
    written = tmp_path / "scored_companies" / f"{day}.parquet"
    table = pq.read_table(written)
    meta = result.asset_materializations_for_node("scored_companies_daily")[0].metadata
    assert meta["dagster/row_count"].value == table.num_rows > 0
    assert "domain" in table.column_names and "tier" in table.column_names
    tier_a = result.asset_materializations_for_node("tier_a_counts")[0].metadata["dagster/row_count"].value
    assert tier_a == sum(t == "A" for t in table.column("tier").to_pylist())


def _a_day_with_records(emu: CargoEmulator) -> str:
    """The created_at day with the most seeded companies."""
    model = emu.store.model_by_slug("companies")
    days = Counter(str(r["created_at"])[:10] for r in emu.store.model_records(model["uuid"]))
    return days.most_common(1)[0][0]
