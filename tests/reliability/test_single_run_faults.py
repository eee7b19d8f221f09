"""Single-record runs under faults, through the fault suite: one-record tool inputs run as Cargo single runs
(``single_run_threshold`` defaults to 1), their creates are lost or answered 5xx, and the report traces each
single run to its materialization by its carrier. Every must-be-zero figure is zero.

The full-size acceptance run (``DAGSTER_CARGO_LONG=1``, test_concurrent_creates.py) once counted single runs as
duplicates, because the report knew only batch UUIDs: this suite keeps that path in CI.
"""

import pytest
from cargo_fault_suite import SuiteConfig, run_fault_suite

pytestmark = pytest.mark.timeout(1200)
RUN_CREATE = "POST /v1/orchestration/runs"


@pytest.fixture(scope="module")
def report():
    # real time (the file is marked slow in tests/conftest.py): the suite runs each step in a subprocess of the
    # multiprocess executor, whose client waits on its own system clock
    return run_fault_suite(SuiteConfig(
        materializations=8, seed=5, profile="none", min_records=1, max_records=1, earlier_batches=0,
        crash_scenarios=False, speed=40.0,
        fault_overrides=(("lost_create_response", 0.3), ("server_error", 0.15)),
        fault_paths=(("lost_create_response", (RUN_CREATE,)), ("server_error", (RUN_CREATE,)))))


def test_one_record_tool_inputs_ran_as_single_runs_and_faults_hit_their_creates(report):
    assert report.tools == 4 and report.single_runs == report.tools - report.failed_clear, report.render()
    assert report.faults["lost_create_response"] + report.faults["server_error"] > 0, report.faults


def test_no_single_run_is_paid_twice_or_lost(report):
    assert report.failed_unclear == 0, report.render()
    assert report.duplicate_batches == 0 and report.wrong_adoptions == 0, report.render()
    assert report.unaccounted_records == 0 and report.missing_rows == 0, report.render()
    assert report.credits_spent == pytest.approx(report.credits_expected, abs=1e-6), report.render()
    assert report.token_leaks == 0
