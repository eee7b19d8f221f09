"""The asset page plots numeric metadata across materializations: the failure ratio is one of them, as a
float, on batches and single runs alike (``failed_rows`` alone moves with the input's size)."""

import dagster as dg
import pandas as pd

from dagster_cargo import CargoResource

from ..conftest import make_resource


def _materialize(emu, rows, **overrides):
    @dg.asset
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", pd.DataFrame(rows)).materialize_result()

    result = dg.materialize([enriched], resources={"cargo": make_resource(emu, **overrides)})
    return result.asset_materializations_for_node("enriched")[0].metadata


def test_a_batch_records_its_failure_ratio_as_a_float(manual_emulator):
    manual_emulator.plan_failures({"domain=shop1.io": "always", "domain=shop5.io": "always"})
    meta = _materialize(manual_emulator, [{"domain": f"shop{i}.io"} for i in range(8)])
    ratio = meta["dagster-cargo/failed_ratio"]
    assert isinstance(ratio, dg.FloatMetadataValue) and ratio.value == 0.25
    assert meta["dagster-cargo/failed_rows"].value == 2 and meta["dagster-cargo/input_records"].value == 8


def test_a_single_run_records_its_failure_ratio_too(manual_emulator):
    manual_emulator.plan_failures({"domain=acme.com": "always"})
    meta = _materialize(manual_emulator, [{"domain": "acme.com"}])
    assert meta["dagster-cargo/mode"].value == "single_run"
    assert meta["dagster-cargo/failed_ratio"].value == 1.0


def test_a_clean_run_plots_zero(manual_emulator):
    meta = _materialize(manual_emulator, [{"domain": "acme.com"}, {"domain": "hooli.com"}])
    assert meta["dagster-cargo/failed_ratio"].value == 0.0
