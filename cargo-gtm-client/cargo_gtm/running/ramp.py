"""A credit budget with nothing to estimate from: ramp up, as Cargo's docs advise (1 record, then 50, then 500).

Without an estimate (no earlier run of the workflow to learn credits per record from), a budget can only be
checked while batches run, and a large batch passes it between two polls. So a tool input is run in rounds,
each a step of the one run path (:class:`~cargo_gtm.running.step.StepDriver`):

1. a first small round (1 record) learns the credits per record;
2. each next round is sized so that, at the credits per record seen so far, it fits in what is left of the
   budget (and grows as Cargo advises: 1 → 50 → 500, never past ``max_round``): the budget can then only be
   exceeded by one round's spread around that average;
3. when not even one more record fits, the rounds stop and the step fails with the figures
   (:class:`~cargo_gtm.running.budget.StepBudgetError`): records not run cost nothing.

Each round runs with what is left of the budget as its own budget (the in-flight guard still cancels), and
under its own attempt scope (``ramp<n>``), so a re-executed step attaches to each round's batch: the rounds
are sized from the same figures again and come out the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..credits import CreditSplit
from .budget import StepBudgetError, ramp_stopped
from .step import StepResult, StepSettings, status_counts

__all__ = ["RAMP_SIZES", "next_round_size", "run_ramped", "merge_results"]

#: Cargo's ramp advice (CARGO-DOCS): one record, then 50, then 500.
RAMP_SIZES = (1, 50, 500)


def next_round_size(*, total: int, done: int, spent: float, budget: float, max_round: int = 500) -> int:
    """How many records the next round runs: the next step of :data:`RAMP_SIZES` (then ``max_round``), no more
    than what is left, and no more than what the rest of the budget pays for at the credits per record seen so
    far (0: stop)."""
    left = total - done
    if left <= 0:
        return 0
    if done == 0:
        return min(RAMP_SIZES[0], left)
    steps = [s for s in RAMP_SIZES if s > done] or [max_round]
    cap = min(steps[0], max_round)
    per_record = spent / done
    remaining = budget - spent
    affordable = left if per_record <= 0 else math.floor(remaining / per_record + 1e-9)
    return max(0, min(left, cap, affordable))


def merge_results(results: Sequence[StepResult], settings: StepSettings) -> StepResult:
    """One result from the rounds of a step (in order): their rows, units, credits and counts together."""
    import pandas as pd

    frames = [r.frame for r in results if r.frame is not None]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    walls = [r.wall_clock_seconds for r in results if r.wall_clock_seconds is not None]
    return StepResult(frame=frame, batches=[b for r in results for b in r.batches],
                      runs=[u for r in results for u in r.runs], credits=_credits(results),
                      statuses=_summed(r.statuses for r in results) if results else status_counts(frame),
                      records_count=sum(r.records_count for r in results), settings=settings,
                      credits_remaining=results[-1].credits_remaining if results else None,
                      wall_clock_seconds=round(sum(walls), 3) if walls else None)


def _credits(results: Sequence[StepResult]) -> CreditSplit | None:
    """The rounds' credit splits added up (None when one of them is unknown)."""
    splits = [r.credits for r in results]
    if not splits or any(s is None for s in splits):
        return None
    total = CreditSplit(0.0, 0)
    for split in splits:
        total = total + split  # type: ignore[operator]
    return total


def _summed(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def run_ramped(records: Sequence[Mapping[str, Any]], settings: StepSettings,
               run_round: Callable[[list[Mapping[str, Any]], StepSettings, int], StepResult], *,
               max_round: int = 500, log: Any = None) -> StepResult:
    """Run ``records`` in rounds within ``settings.credit_budget`` (see the module docstring).

    ``run_round(records, settings, n)`` runs round ``n`` (0, 1, …) as one step of the run path (scope it
    ``ramp<n>`` for exactly-once) and returns its result; its ``settings`` carry the budget left.
    """
    budget = settings.credit_budget
    if budget is None:
        raise ValueError("run_ramped needs settings.credit_budget")
    results: list[StepResult] = []
    done, spent = 0, 0.0
    while done < len(records):
        size = next_round_size(total=len(records), done=done, spent=spent, budget=budget, max_round=max_round)
        if size <= 0:
            raise _stopped(results, settings, len(records), done, spent, budget)
        if log is not None:
            log.info(f"Ramp round {len(results) + 1}: {size} record(s) of {len(records)} (done {done}, "
                     f"{spent:g} of {budget:g} credits spent).")
        result = run_round(list(records[done:done + size]), replace(settings, credit_budget=budget - spent),
                           len(results))
        results.append(result)
        done += size
        spent += result.credits_used
    return merge_results(results, settings)


def _stopped(results: list[StepResult], settings: StepSettings, total: int, done: int, spent: float,
             budget: float) -> StepBudgetError:
    return ramp_stopped(settings.what, [u.uuid for r in results for u in r.units], total, done, spent, budget,
                        rounds=len(results))
