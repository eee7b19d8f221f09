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

A play is ramped the same way over a snapshot of its selection (:func:`selection_ids`): the record ids its
``filter`` (or ``segment``, or ``recordIds``) input selects, read once at the start in Cargo's order; each round
is a ``recordIds`` batch over the next ids of the snapshot, so no id is in two rounds and the rounds together
are the snapshot. Rounds already fixed by an earlier attempt are passed as ``fixed`` sizes (their ids first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..credits import CreditSplit
from .budget import StepBudgetError, ramp_stopped
from .step import StepResult, StepSettings, status_counts

if TYPE_CHECKING:
    from ..client import CargoClient

__all__ = ["RAMP_SIZES", "SNAPSHOT_KINDS", "next_round_size", "run_ramped", "merge_results", "selection_ids"]

#: Play input kinds whose selection can be read as record ids beforehand (``change`` input cannot: a change's
#: ``removed`` records are no longer in the model, so a ``recordIds`` batch could not run them).
SNAPSHOT_KINDS = ("filter", "segment", "recordIds")
SNAPSHOT_PAGE = 1000

#: Cargo's ramp advice (CARGO-DOCS): one record, then 50, then 500.
RAMP_SIZES = (1, 50, 500)


def next_round_size(*, total: int, done: int, spent: float, budget: float, max_round: int = 500,
                    succeeded: int | None = None) -> int:
    """How many records the next round runs: the next step of :data:`RAMP_SIZES` (then ``max_round``), no more
    than what is left, and no more than what the rest of the budget pays for at the credits per record seen so
    far (0: stop). ``succeeded``: how many records of the rounds so far ran through; while none has, the credits
    per record are those of records that failed early (cheaper than one that runs through), so the rounds only
    double (1, 1, 2, 4 …) until one succeeds.

    >>> next_round_size(total=100, done=1, spent=0.02, budget=50, succeeded=0)
    1
    >>> next_round_size(total=100, done=1, spent=0.02, budget=50, succeeded=1)
    50
    """
    left = total - done
    if left <= 0:
        return 0
    if done == 0:
        return min(RAMP_SIZES[0], left)
    steps = [s for s in RAMP_SIZES if s > done] or [max_round]
    cap = min(steps[0], max_round, done if succeeded == 0 else max_round)
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


def selection_ids(client: CargoClient, data: Mapping[str, Any], *, model_uuid: str | None = None,
                  page: int = SNAPSHOT_PAGE) -> list[str] | None:
    """The record ids a play batch of ``data`` would run over, in Cargo's order, read now (a snapshot); None for
    input whose batch Cargo would refuse or that cannot be read as ids beforehand (``change``): one batch of
    ``data`` as given then says what it says.

    ``filter`` input: Cargo's segment fetch of its filter, sort and limit (the match-everything filter when it
    has none), page by page; ``segment`` input: the same with the segment's filter, sort and limit (not a
    play's own segment, which Cargo refuses as batch input: ``segmentLinkedToPlay``); ``recordIds``: the ids
    given that the model has, once each, in the order given (Cargo drops the others). ``model_uuid``: the play's
    model (input over another model is refused by Cargo). An id that a page shift shows twice is kept once."""
    kind = data.get("kind")
    if kind == "segment":
        segment = client.get_segment(str(data["segmentUuid"]))
        if segment.from_play or (model_uuid is not None and segment.model_uuid != model_uuid):
            return None
        return _fetched_ids(client, segment.model_uuid, segment.filter, segment.sort, segment.limit, page)
    if kind not in ("filter", "recordIds") or (model_uuid is not None and data.get("modelUuid") != model_uuid):
        return None
    model = str(data["modelUuid"])
    if kind == "filter":
        return _fetched_ids(client, model, data.get("filter"), data.get("sort"), data.get("limit"), page)
    given = list(dict.fromkeys(str(i) for i in data.get("ids") or []))
    known = {str(r.get("_id")) for r in client.fetch_records(model, given)}
    return [i for i in given if i in known]


def _fetched_ids(client: CargoClient, model: str, flt: Mapping[str, Any] | None, sort: Any, limit: int | None,
                 page: int) -> list[str]:
    """The ids of Cargo's segment fetch of a filter, page by page (``fetchingLimit``/``fetchingOffset``)."""
    from ..inputs.records import EMPTY_FILTER

    ids: dict[str, None] = {}
    offset = 0
    while True:
        fetched = client.fetch_segment(model, flt or EMPTY_FILTER, sort=sort, limit=limit, fetching_limit=page,
                                       fetching_offset=offset or None)
        ids.update((str(r["_id"]), None) for r in fetched.records if r.get("_id") is not None)
        offset += len(fetched.records)
        if not fetched.records or offset >= fetched.count:
            return list(ids)


def run_ramped(records: Sequence[Any], settings: StepSettings,
               run_round: Callable[[list[Any], StepSettings, int], StepResult], *,
               max_round: int = 500, log: Any = None, fixed: Sequence[int] = ()) -> StepResult:
    """Run ``records`` (tool records, or a play's record ids) in rounds within ``settings.credit_budget`` (see
    the module docstring).

    ``run_round(records, settings, n)`` runs round ``n`` (0, 1, …) as one step of the run path (scope it
    ``ramp<n>`` for exactly-once) and returns its result; its ``settings`` carry the budget left. ``fixed``:
    the sizes of the first rounds, fixed by an earlier attempt (they run as they were, to attach to their
    batches).
    """
    budget = settings.credit_budget
    if budget is None:
        raise ValueError("run_ramped needs settings.credit_budget")
    results: list[StepResult] = []
    done, spent = 0, 0.0
    while done < len(records):
        size = fixed[len(results)] if len(results) < len(fixed) else \
            next_round_size(total=len(records), done=done, spent=spent, budget=budget, max_round=max_round,
                            succeeded=sum(r.statuses.get("success", 0) for r in results))
        if size <= 0:
            raise _stopped(results, settings, len(records), done, spent, budget)
        if log is not None:
            log.info(f"Ramp round {len(results) + 1}: {size} record(s) of {len(records)} (done {done}, "
                     f"{spent:g} of {budget:g} credits spent).")
        result = run_round(list(records[done:done + size]),
                           replace(settings, credit_budget=budget - spent, first_row=done), len(results))
        results.append(result)
        done += size
        spent += result.credits_used
    return merge_results(results, settings)


def _stopped(results: list[StepResult], settings: StepSettings, total: int, done: int, spent: float,
             budget: float) -> StepBudgetError:
    return ramp_stopped(settings.what, [u.uuid for r in results for u in r.units], total, done, spent, budget,
                        rounds=len(results), wording=settings.budget_wording)
