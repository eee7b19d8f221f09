"""Cargo asset checks evaluated on real materializations."""

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import Batch

from dagster_cargo import CargoResource
from dagster_cargo.definitions.checks import CargoCheckConfig, cargo_check_specs, evaluate_cargo_checks
from dagster_cargo.running.execution import CargoBatchResult
from dagster_cargo.running.metadata import CargoMetadataSet

from ..conftest import make_resource


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator

SIGNUPS = pd.DataFrame({"domain": [f"company{i}.com" for i in range(40)], "company_name": [f"C{i}" for i in range(40)]})


def run_with_checks(emu, config):
    @dg.asset(check_specs=cargo_check_specs("enriched", config))
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource):
        return cargo.run_tool(context, "Enrich company", SIGNUPS).materialize_result(checks=config)

    resource = make_resource(emu)
    result = dg.materialize([enriched], resources={"cargo": resource})
    return {e.check_name: e for e in result.get_asset_check_evaluations()}, result


def test_checks_pass_on_a_clean_batch(emulator):
    checks, _ = run_with_checks(emulator, CargoCheckConfig(max_credits_per_record=10))
    assert set(checks) == {"cargo_failed_run_ratio", "cargo_output_completeness", "cargo_skipped_run_ratio",
                           "cargo_credits_per_record"}
    assert all(c.passed for c in checks.values())
    assert checks["cargo_output_completeness"].metadata["rows_accounted"].value == 40
    assert checks["cargo_output_completeness"].metadata["records_missing"].value == 0
    # thresholds are in the description, not stored as plottable metadata
    assert not any("threshold" in k for c in checks.values() for k in c.metadata)


def test_failed_ratio_and_cost_checks_fail_with_figures(flaky_emulator):
    checks, result = run_with_checks(
        flaky_emulator, CargoCheckConfig(failed_ratio_warn=0.01, failed_ratio_error=0.9, max_credits_per_record=0.5))
    ratio = checks["cargo_failed_run_ratio"]
    assert not ratio.passed and ratio.severity == dg.AssetCheckSeverity.WARN
    failed = ratio.metadata["failed_rows"].value
    assert failed > 0 and ratio.metadata["failed_ratio"].value == pytest.approx(failed / 40, abs=1e-6)
    assert checks["cargo_output_completeness"].passed  # every input record has its row, failed ones flagged
    cost = checks["cargo_credits_per_record"]
    assert not cost.passed and cost.metadata["succeeded_records"].value == 40 - failed


def _result(rows, statuses, credits, runs):
    batch = Batch.model_validate({"uuid": "b", "workflowUuid": "w", "status": "success", "runsCount": runs,
                                  "executedRunsCount": runs, "failedRunsCount": statuses.get("error", 0),
                                  "creditsUsedCount": credits})
    return CargoBatchResult(frame=pd.DataFrame({"x": range(rows)}), batches=[batch], cargo_metadata=CargoMetadataSet(),
                            statuses=statuses, records_count=rows)


def test_completeness_detects_unaccounted_records_and_error_threshold():
    checks = {c.check_name: c for c in evaluate_cargo_checks(_result(7, {"success": 6, "error": 1}, 20, 10),
                                                             CargoCheckConfig())}
    assert not checks["cargo_output_completeness"].passed
    assert checks["cargo_output_completeness"].metadata["records_missing"].value == 3
    checks = {c.check_name: c for c in evaluate_cargo_checks(_result(10, {"success": 5, "error": 5}, 20, 10),
                                                             CargoCheckConfig())}
    assert checks["cargo_failed_run_ratio"].severity == dg.AssetCheckSeverity.ERROR
    assert not checks["cargo_failed_run_ratio"].passed and checks["cargo_output_completeness"].passed


def test_skipped_ratio_counts_skipped_and_filtered_records():
    result = _result(10, {"success": 3, "filtered": 5, "skipped": 2}, 6, 10)
    checks = {c.check_name: c for c in evaluate_cargo_checks(result, CargoCheckConfig(skipped_ratio_warn=0.5))}
    skipped = checks["cargo_skipped_run_ratio"]
    assert not skipped.passed and skipped.severity == dg.AssetCheckSeverity.WARN
    assert skipped.metadata["skipped_rows"].value == 7 and skipped.metadata["skipped_ratio"].value == 0.7
    assert "cargo_skipped_run_ratio" not in CargoCheckConfig(skipped_ratio_warn=None).names


def test_a_play_whose_filter_stops_runs_materializes_every_record(emulator):
    config = CargoCheckConfig(skipped_ratio_warn=0.9, max_credits_per_record=10)

    @dg.asset(check_specs=cargo_check_specs("qualified", config))
    def qualified(context: dg.AssetExecutionContext, cargo: CargoResource):
        return cargo.run_play(context, "Qualify inbound companies", limit=30).materialize_result(checks=config)

    resource = make_resource(emulator)
    result = dg.materialize([qualified], resources={"cargo": resource})
    frame = result.output_for_node("qualified")
    meta = {k: getattr(v, "value", v) for k, v in result.asset_materializations_for_node("qualified")[0].metadata.items()}
    assert len(frame) == 30 == meta["dagster-cargo/counts"]["input_records"] == meta["dagster/row_count"]
    counts = frame["_status"].value_counts().to_dict()
    assert counts.get("filtered", 0) > 0 and counts.get("success", 0) > 0
    assert meta["dagster-cargo/counts"]["filtered_rows"] == counts["filtered"]
    assert meta["dagster-cargo/counts"]["failed_rows"] == counts.get("error", 0)
    stopped = frame[frame["_status"] == "filtered"]
    assert (stopped["employee_count"] < 50).all() and stopped["_error_message"].isna().all()
    assert (frame.loc[frame["_status"] == "success", "employee_count"] >= 50).all()
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["cargo_output_completeness"].passed
    assert checks["cargo_skipped_run_ratio"].metadata["skipped_rows"].value == counts["filtered"]


def test_thresholds_validated():
    with pytest.raises(ValueError):
        CargoCheckConfig(failed_ratio_warn=0.5, failed_ratio_error=0.1)
