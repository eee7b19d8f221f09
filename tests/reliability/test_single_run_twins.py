"""Twins of single runs: identical one-record-per-run tool inputs materialized at the same moment never share a
Cargo single run (issue 19, item 1, for the single-run path: ``single_run_threshold``, ``RunHandle``).

The batch twins' harness (:mod:`.test_twins`) with ``kind="run"``: each twin runs the same two records as two
Cargo single runs (``POST /orchestration/runs``), creates faulted (a 5xx: nothing created; a lost response:
created, the answer dropped), every twin taking its watermark before any twin sends. Content cannot tell the
twins' runs apart: before claims and turns covered single runs, a twin whose create failed adopted its sibling's
run (one run reported twice, credits reported twice) and a terminated twin cancelled the other's run. Now every
run is reported by exactly one materialization, none is orphaned, credits reported equal the emulator's bill,
and terminating one twin leaves the other's runs to succeed.
"""

import pytest

from .test_twins import EIGHT_FAULTS, assert_terminated_twin_left_the_other_alone, assert_twins_hold, run_twins

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def instance(tmp_path):
    import dagster as dg

    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.mark.parametrize("faults", [["server_error", "lost_create_response"], ["server_error"],
                                    ["lost_create_response"]])
def test_two_single_run_twins_with_create_faults_never_share_a_run(manual_emulator, instance, faults):
    outcome = run_twins(manual_emulator, instance, 2, faults=faults, kind="run")
    print("2 single-run twins:", outcome.figures())
    assert_twins_hold(outcome, 2, kind="run")


def test_eight_single_run_twins_with_create_faults_never_share_a_run(manual_emulator, instance):
    outcome = run_twins(manual_emulator, instance, 8, faults=EIGHT_FAULTS, kind="run")
    print("8 single-run twins:", outcome.figures())
    assert_twins_hold(outcome, 8, kind="run")


def test_terminating_one_single_run_twin_leaves_the_other_runs_running(manual_emulator, instance):
    outcome = run_twins(manual_emulator, instance, 2, faults=["server_error", "lost_create_response"],
                        interrupt={0: 2}, kind="run")
    print("terminated single-run twin:", outcome.figures())
    assert_terminated_twin_left_the_other_alone(outcome, kind="run")
