"""The fault suite at CI size: every must-be-zero figure is zero, and the faults really happened.

CI runs 16 materializations (8 tool, 8 play steps of one run, 8 at once in subprocesses) on workflows that
already hold 110 batches, without the kill -9 scenarios (``test_crash_reexecution.py`` runs those). Set
``DAGSTER_CARGO_LONG=1`` for the README size (200 materializations, crash scenarios included).
"""

import logging
import os

import pytest
from cargo_fault_suite import SuiteConfig, run_fault_suite
from cargo_fault_suite.capture import LeakWatch, watch_logs
from cargo_fault_suite.runner import explaining_error, is_clear
from cargo_gtm_emulator import FAULT_KINDS

LONG = os.environ.get("DAGSTER_CARGO_LONG") == "1"
MATERIALIZATIONS = 200 if LONG else 16
# the module fixture runs the whole suite inside the first test: give it room (pytest-timeout would
# otherwise cut the full-size run short and report its interrupted steps as unclear failures)
pytestmark = pytest.mark.timeout(3600 if LONG else 1200)
# the mixed preset, with the kinds a 40-materialization run could otherwise miss (each has only a few
# eligible requests per materialization) made likelier, so that every kind surely occurs
BOOSTED = (("lost_create_response", 0.3), ("unknown_status", 0.5), ("expired_download_url", 0.3),
           ("truncated_download", 0.3), ("slow_response", 0.05), ("connection_reset", 0.04))


@pytest.fixture(scope="module")
def report():
    # slower simulated time than the README run, so that polls see running batches (unknown_status only hits those)
    return run_fault_suite(SuiteConfig(materializations=MATERIALIZATIONS, seed=1, fault_overrides=BOOSTED,
                                       earlier_batches=150 if LONG else 110, crash_scenarios=LONG, speed=40.0))


def test_every_fault_kind_was_injected(report):
    # otherwise the zeros below would prove nothing
    assert set(report.faults) == set(FAULT_KINDS)
    assert all(report.faults[kind] > 0 for kind in FAULT_KINDS), report.faults


def test_every_materialization_is_accounted_for(report):
    assert report.succeeded + report.failed_clear + report.failed_unclear == MATERIALIZATIONS
    assert report.succeeded >= MATERIALIZATIONS * 0.6, report.render()
    assert report.tools == report.plays == MATERIALIZATIONS // 2 and report.concurrency == 8
    assert report.earlier_batches > 100


def test_no_batch_is_adopted_by_the_wrong_materialization(report):
    assert report.wrong_adoptions == 0, report.render()


def test_every_input_record_is_accounted_for(report):
    assert report.unaccounted_records == 0, report.render()


def test_every_orphan_is_listed_with_its_credits(report):
    assert len(report.orphans) == len([o for o in report.orphans if "credits" in o])
    assert (report.orphan_credits > 0) == bool(report.orphans)


def test_no_failure_has_an_unclear_error(report):
    assert report.failed_unclear == 0, report.render()


def test_no_duplicate_batch(report):
    assert report.untraceable_batches == 0, report.render()
    assert report.duplicate_batches == 0, report.render()


def test_credits_spent_equal_one_batch_per_materialization(report):
    assert report.credits_expected > 0
    assert report.credits_spent == report.credits_expected, report.render()


def test_the_token_never_leaks(report):
    assert report.token_leaks == 0, report.render()
    # the search covered every place it claims to
    for where in ("Dagster event", "stdout/stderr", "emulator request log entry"):
        assert report.searched.get(where, 0) > 0, report.searched


def test_no_dataframe_misses_rows(report):
    assert report.missing_rows == 0, report.render()


def test_the_report_renders_every_figure(report):
    text = report.render()
    for label in ("Materializations succeeded", "Failed with a clear error", "Failed with an unclear error",
                  "Duplicate batches", "Provider credits spent / expected", "Token leaks", "wrong materialization",
                  "Orphan batches", "Input records not accounted for",
                  "DataFrames returned with missing rows", "Injected faults", "Wall time"):
        assert label in text


# ---------------------------------------------------------------------------- the detectors themselves
def test_the_leak_watch_finds_the_token_in_a_debug_log_record():
    watch = LeakWatch(secret="cfs_0123456789abcdef")
    with watch_logs(watch):
        logging.getLogger("httpcore.http11").debug("send_request_headers %r", [(b"authorization", b"Bearer cfs_0123456789abcdef")])
        logging.getLogger("cargo_gtm").info("nothing secret here")
    assert watch.leaks == 1 and watch.searched["log record"] == 2
    assert "cfs_0123456789abcdef" not in watch.samples[0] and "<TOKEN>" in watch.samples[0]


@pytest.mark.parametrize("message, clear", [
    ("Cargo API GET /orchestration/tools/list failed with HTTP 503: Server error Next step: try later.", True),
    ("Cargo batch 1a72f50a-f86c-4c9a-b370-bce1729bea7e failed. Next step: open it in Cargo.", True),
    ("Cargo batch 1a72f50a-f86c-4c9a-b370-bce1729bea7e failed.", False),  # no next step
    ("Something failed. Next step: retry.", False),  # does not say what failed
    ("KeyError: 'batch'", False),
])
def test_clear_error_rule(message, clear):
    assert is_clear(message) is clear


def test_the_explaining_error_skips_dagster_wrappers():
    from dagster._utils.error import SerializableErrorInfo

    inner = SerializableErrorInfo("CargoDownloadError: x", [], "CargoDownloadError")
    outer = SerializableErrorInfo("Error occurred while executing op", [], "DagsterExecutionStepExecutionError",
                                  cause=inner)
    assert explaining_error(outer) is inner


def test_the_leak_watch_searches_an_exception_chain():
    from cargo_fault_suite.runner import _watch_exception

    class Leaky(Exception):
        def __init__(self) -> None:
            super().__init__("request failed")
            self.headers = {"authorization": "Bearer cfs_0123456789abcdef"}

    watch = LeakWatch(secret="cfs_0123456789abcdef")
    try:
        try:
            raise Leaky()
        except Leaky as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        _watch_exception(outer, watch)
    assert watch.searched["exception text"] == 2 and watch.leaks == 1
