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
    assert meta["dagster-cargo/counts"].value["failed_rows"] == 2 and meta["dagster-cargo/counts"].value["input_records"] == 8


def test_a_single_run_records_its_failure_ratio_too(manual_emulator):
    manual_emulator.plan_failures({"domain=acme.com": "always"})
    meta = _materialize(manual_emulator, [{"domain": "acme.com"}])
    assert meta["dagster-cargo/mode"].value == "single_run"
    assert meta["dagster-cargo/failed_ratio"].value == 1.0


def test_a_clean_run_plots_zero(manual_emulator):
    meta = _materialize(manual_emulator, [{"domain": "acme.com"}, {"domain": "hooli.com"}])
    assert meta["dagster-cargo/failed_ratio"].value == 0.0


#: The numbers a plain tool batch records, each plotted by Dagster (an ``IntMetadataValue``/``FloatMetadataValue``
#: key gets a plot on the asset page): what the run cost, how well it went, how long it took.
PLOTTED = {"dagster/row_count", "dagster-cargo/credits_used", "dagster-cargo/provider_credits",
           "dagster-cargo/execution_charge", "dagster-cargo/credits_per_record", "dagster-cargo/failed_ratio",
           "dagster-cargo/wall_clock_seconds", "dagster-cargo/cargo_duration_seconds",
           "dagster-cargo/credits_remaining", "dagster-cargo/provider_credits/enrich_company",
           "dagster-cargo/estimated_credits", "dagster-cargo/estimate_ratio"}


def _numeric(meta) -> dict:
    return {k: v.value for k, v in meta.items() if isinstance(v, (dg.IntMetadataValue, dg.FloatMetadataValue))}


def test_every_plotted_number_moves_between_two_inputs_and_the_counts_are_one_json_entry(manual_emulator):
    """Issue 21 item 4: two materializations of one asset over two inputs (3 records, 1 failing; 40 records, 10
    failing; after a first one, so that both have an estimate from history): every number Dagster plots differs
    between them, and the counts (input records, runs, rows per status, node executions: flat for a play run at
    a fixed limit) are in ``dagster-cargo/counts``, not plotted."""
    from dagster_cargo.running.metadata import COUNT_FIELDS, COUNTS_KEY, CargoMetadataSet

    manual_emulator.plan_failures({"domain=other1.io": "always",
                                   **{f"domain=shop{i}.io": "always" for i in range(0, 40, 4)}})
    resource = make_resource(manual_emulator)
    inputs = [[{"domain": f"shop{i}.io"} for i in range(40)], [{"domain": f"other{i}.io"} for i in range(3)]]

    @dg.asset(config_schema={"which": int})
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        rows = pd.DataFrame(inputs[context.op_execution_context.op_config["which"]])
        return cargo.run_tool(context, "Enrich company", rows).materialize_result()

    instance = dg.DagsterInstance.ephemeral()
    metas = []
    for which in (0, 1, 0):
        result = dg.materialize([enriched], resources={"cargo": resource}, instance=instance,
                                run_config={"ops": {"enriched": {"config": {"which": which}}}})
        metas.append(result.asset_materializations_for_node("enriched")[0].metadata)
    metas = metas[1:]
    first, second = (_numeric(m) for m in metas)
    assert set(first) == set(second) == PLOTTED
    flat = sorted(k for k in PLOTTED if first[k] == second[k])
    assert not flat, f"plotted but the same for both inputs: {flat}"
    assert (first["dagster-cargo/failed_ratio"], second["dagster-cargo/failed_ratio"]) == (round(1 / 3, 6), 0.25)

    for meta, (records, failed) in zip(metas, [(3, 1), (40, 10)], strict=True):
        assert not {f"dagster-cargo/{name}" for name in COUNT_FIELDS} & set(meta)
        counts = meta[COUNTS_KEY]
        assert isinstance(counts, dg.JsonMetadataValue)  # shown on the asset page, never plotted
        assert counts.value["input_records"] == counts.value["runs_count"] == records
        assert counts.value["failed_rows"] == counts.value["failed_runs_count"] == failed
        assert counts.value["node_executions"] == round(meta["dagster-cargo/execution_charge"].value / 0.01)
        assert all(type(counts.value[name]) is int for name in COUNT_FIELDS if name != "batch_count")
        assert "batch_count" not in counts.value  # one batch: no always-1 figure
        typed = CargoMetadataSet.extract(meta)  # the typed way back, as integers
        assert (typed.runs_count, typed.failed_rows) == (records, failed)


def test_counts_recorded_as_numbers_of_their_own_before_are_still_read():
    """Materializations recorded before the counts were grouped keep ``dagster-cargo/runs_count`` &c.: the typed
    reader and the expected-cost and estimate history read both layouts."""
    from cargo_gtm.estimate import history_per_record

    from dagster_cargo.running.metadata import CargoMetadataSet, count_of

    old = {"dagster-cargo/runs_count": dg.MetadataValue.int(4), "dagster-cargo/provider_credits": 8.0}
    new = {"dagster-cargo/counts": dg.MetadataValue.json({"runs_count": 6}), "dagster-cargo/provider_credits": 6.0}
    assert CargoMetadataSet.extract(old).runs_count == 4 and CargoMetadataSet.extract(new).runs_count == 6
    assert (count_of(old, "runs_count"), count_of(new, "runs_count"), count_of(new, "input_records")) == (4, 6, None)
    assert history_per_record([old, new]) == (1.4, 2)  # (8 + 6) provider credits / (4 + 6) runs
