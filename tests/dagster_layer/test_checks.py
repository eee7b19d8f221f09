"""Cargo asset checks evaluated on real materializations."""

import dagster as dg
import pandas as pd
import pytest

from dagster_cargo import CargoResource
from dagster_cargo.checks import CargoCheckConfig, cargo_check_specs, evaluate_cargo_checks
from dagster_cargo.client import Batch
from dagster_cargo.execution import CargoBatchResult
from dagster_cargo.metadata import CargoMetadataSet

from ..conftest import TOKEN

SIGNUPS = pd.DataFrame({"domain": [f"company{i}.com" for i in range(40)], "company_name": [f"C{i}" for i in range(40)]})


def run_with_checks(emu, config):
    @dg.asset(check_specs=cargo_check_specs("enriched", config))
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource):
        return cargo.run_tool(context, "Enrich company", SIGNUPS).materialize_result(checks=config)

    resource = CargoResource(api_token=TOKEN, base_url=emu.base_url, poll_interval=0.05, max_poll_interval=0.5)
    result = dg.materialize([enriched], resources={"cargo": resource})
    return {e.check_name: e for e in result.get_asset_check_evaluations()}, result


def test_checks_pass_on_a_clean_batch(emulator):
    checks, _ = run_with_checks(emulator, CargoCheckConfig(max_credits_per_record=10))
    assert set(checks) == {"cargo_failed_run_ratio", "cargo_output_completeness", "cargo_credits_per_record"}
    assert all(c.passed for c in checks.values())
    assert checks["cargo_output_completeness"].metadata["rows_downloaded"].value == 40


def test_failed_ratio_and_cost_checks_fail_with_figures(flaky_emulator):
    checks, result = run_with_checks(
        flaky_emulator, CargoCheckConfig(failed_ratio_warn=0.01, failed_ratio_error=0.9, max_credits_per_record=0.5))
    ratio = checks["cargo_failed_run_ratio"]
    assert not ratio.passed and ratio.severity == dg.AssetCheckSeverity.WARN
    failed = ratio.metadata["failed_runs"].value
    assert failed > 0 and ratio.metadata["failed_ratio"].value == pytest.approx(failed / 40, abs=1e-6)
    assert checks["cargo_output_completeness"].passed  # missing rows are exactly the failed runs
    assert not checks["cargo_credits_per_record"].passed


def _result(rows, executed, failed, credits):
    batch = Batch.model_validate({"uuid": "b", "workflowUuid": "w", "status": "success", "runsCount": executed,
                                  "executedRunsCount": executed, "failedRunsCount": failed,
                                  "creditsUsedCount": credits})
    return CargoBatchResult(frame=pd.DataFrame({"x": range(rows)}), batches=[batch], cargo_metadata=CargoMetadataSet())


def test_completeness_detects_missing_rows_and_error_threshold():
    checks = {c.check_name: c for c in evaluate_cargo_checks(_result(7, 10, 1, 20), CargoCheckConfig())}
    assert not checks["cargo_output_completeness"].passed
    assert checks["cargo_output_completeness"].metadata["missing_rows"].value == 2
    checks = {c.check_name: c for c in evaluate_cargo_checks(_result(5, 10, 5, 20), CargoCheckConfig())}
    assert checks["cargo_failed_run_ratio"].severity == dg.AssetCheckSeverity.ERROR
    assert not checks["cargo_failed_run_ratio"].passed


def test_thresholds_validated():
    with pytest.raises(ValueError):
        CargoCheckConfig(failed_ratio_warn=0.5, failed_ratio_error=0.1)
