"""Progress logging and the credit budget are plain functions of one polling round's status snapshot."""

import pytest
from cargo_gtm import Batch
from cargo_gtm.running.waiting import BatchProgress, StatusSnapshot

from dagster_cargo.running.batch_monitor import CreditBudget, ProgressLog


def batch(uuid, status, executed=0, runs=10, credits=0.0):
    return Batch.model_validate({"uuid": uuid, "workflowUuid": "wf", "status": status, "runsCount": runs,
                                 "executedRunsCount": executed, "failedRunsCount": 0, "creditsUsedCount": credits})


def snapshot(*batches, elapsed=0.0, polled=None):
    polled = batches if polled is None else polled
    pending = tuple(b.uuid for b in batches if not b.is_terminal)
    return StatusSnapshot(batches={b.uuid: b for b in batches}, elapsed=elapsed, pending=pending, wake_in=1.0,
                          updates=tuple(BatchProgress(batch=b, elapsed=elapsed, polls=1) for b in polled))


class Log:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warning", text))


def test_the_budget_says_by_how_much_running_batches_passed_it_and_never_raises():
    budget = CreditBudget(10)
    assert budget.overrun(snapshot(batch("a", "running", 2, credits=6), batch("b", "running", 2, credits=4))) is None
    assert budget.overrun(snapshot(batch("a", "running", 3, credits=7), batch("b", "running", 2, credits=4))) == 11
    # finished batches: nothing left to cancel, the caller checks the final spend
    assert budget.overrun(snapshot(batch("a", "success", 10, credits=20))) is None


def test_the_budget_counts_the_execution_charge_and_asks_again_only_when_counters_move():
    asked = []

    def spent(b):
        asked.append(b.uuid)
        return b.credits_used_count + 0.03 * b.executed_runs_count

    budget = CreditBudget(10, spent)
    running = batch("a", "running", 10, credits=9.8)
    assert budget.overrun(snapshot(running)) == pytest.approx(10.1)  # 9.8 provider + 0.3 execution charge
    assert budget.overrun(snapshot(running)) == pytest.approx(10.1) and asked == ["a"]  # same counters: not asked again


def test_progress_is_logged_on_change_and_at_the_cadence_not_at_every_poll():
    log = Log()
    progress = ProgressLog(log, every_seconds=30, total=1)
    progress(snapshot(batch("a", "running", 1), elapsed=1))
    progress(snapshot(batch("a", "running", 2), elapsed=5))  # same status, 4 s later: quiet
    progress(snapshot(batch("a", "running", 5), elapsed=40))  # 30 s since the last line
    progress(snapshot(batch("a", "success", 10), elapsed=41))  # the end
    assert [t.split(":")[1].split(",")[0].strip() for _, t in log.lines] == ["running", "running", "success"]


def test_a_fan_out_is_summed_up_in_one_line():
    log = Log()
    progress = ProgressLog(log, every_seconds=30, total=6)
    done = [batch(str(i), "success", 10, credits=1) for i in range(6)]
    progress(snapshot(*done, elapsed=12))
    assert log.lines == [("info", "Cargo: 6/6 batches finished, 60/60 runs executed, 0 failed, 6 provider credits so far, "
                                  "12s elapsed")]
