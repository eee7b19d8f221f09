"""The credit budget of a step, and every message about it, in one place.

* :func:`tighter_budget`: the limit that applies when several are given (a resource-wide cap and a per-call
  budget): the tighter one, always.
* :class:`CreditBudget`: whether the units of a step (batches or single runs), some still running, are over the
  budget, from a polling round's :class:`~cargo_gtm.running.waiting.StatusSnapshot`. It never raises; the step
  driver (:mod:`cargo_gtm.running.step`) cancels and fails.
* :func:`budget_error`, :func:`estimate_error`: the errors users read, each with the same next step
  (:data:`BUDGET_HINT`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CargoStepError

__all__ = ["ASSET_BUDGET", "BUDGET_HINT", "BudgetWording", "CreditBudget", "StepBudgetError", "budget_error", "estimate_error", "tighter_budget",
           "unaffordable_round", "no_estimate", "ramp_stopped",
           "over_budget_cancelled", "over_budget_finished"]

#: The next step of every budget failure.
BUDGET_HINT = ("raise credit_budget (run config, credit_budget= or the resource's max_credits_per_batch) if this "
               "cost is expected, or narrow the input (limit, filter, fewer records).")


@dataclass(frozen=True)
class BudgetWording:
    """How budget failures name the budget and what they advise: an orchestrator's own terms (a Dagster asset's
    budget by default; an Airflow task's ``credit_budget``)."""

    name: str = "this asset's budget"
    hint: str = BUDGET_HINT


ASSET_BUDGET = BudgetWording()


class StepBudgetError(CargoStepError):
    """A step went, or would go, over its credit budget. ``metadata``: plain figures (``credits_used``,
    ``credit_budget``, ``batch_uuid`` or ``run_uuid``) for the orchestrator to record."""

    def __init__(self, message: str, *, metadata: dict[str, Any], hint: str | None = BUDGET_HINT) -> None:
        super().__init__(message, metadata=metadata, hint=hint)


def tighter_budget(*limits: float | None) -> float | None:
    """The tightest of the limits given (``None``: no limit); ``None`` when none is given."""
    given = [float(x) for x in limits if x is not None]
    return min(given) if given else None


def budget_error(noun: str, uuids: Sequence[str], used: float, budget: float, detail: str,
                 wording: BudgetWording = ASSET_BUDGET) -> StepBudgetError:
    """``<noun>(s) <uuids> used <used> credits in the end, over <wording.name> of <budget><detail>.``"""
    key = "run_uuid" if noun == "run" else "batch_uuid"
    return StepBudgetError(
        f"Cargo {noun}(s) {', '.join(uuids)} used {used:g} credits in the end, over {wording.name} of "
        f"{budget:g}{detail}.",
        metadata={key: ",".join(uuids) if noun == "run" else uuids[0], "credits_used": float(used),
                  "credit_budget": float(budget)}, hint=wording.hint)


def over_budget_cancelled(noun: str, uuids: Sequence[str], spend: float, budget: float, *, guard: float,
                          executed: int, runs: int, settled: bool, outcome: str,
                          wording: BudgetWording = ASSET_BUDGET) -> StepBudgetError:
    """The failure of units cancelled by the in-flight guard: the final spend, where the guard fired, and what
    was done about them (``outcome``: cancelled, or could not be)."""
    state = "cancelled" if settled else "cancel requested, still stopping when last read"
    return budget_error(noun, uuids, spend, budget,
                        f" after {executed}/{runs} runs ({state}; the guard fired at {guard:g} credits, "
                        f"{spend - budget:g} over the budget in the end); {outcome}", wording)


def over_budget_finished(noun: str, uuids: Sequence[str], used: float, budget: float,
                         wording: BudgetWording = ASSET_BUDGET) -> StepBudgetError:
    """The failure of units that finished over the budget before the guard could cancel them."""
    plural = f"{noun}(es)" if noun == "batch" else f"{noun}(s)"
    return budget_error(noun, uuids, used, budget,
                        f"; the {plural} finished before the budget check could cancel them, so the output is "
                        "not returned", wording)


def estimate_error(what: str, estimate_text: str, budget: float, metadata: dict[str, Any],
                   wording: BudgetWording = ASSET_BUDGET, *, running: Sequence[str] = (),
                   attached: int = 0) -> StepBudgetError:
    """The refusal of a step estimated over its budget, before anything is created; or (``attached``: how many of
    its batches an earlier attempt created, ``running`` their uuids) before the rest of them is created."""
    if not attached:
        return StepBudgetError(
            f"Not starting Cargo {what}: {estimate_text}, over the budget of {budget:g} credits. No batch was "
            "created: 0 credits spent.",
            metadata={**metadata, "credit_budget": float(budget), "credits_used": 0.0}, hint=wording.hint)
    return StepBudgetError(
        f"Not starting the rest of Cargo {what}: {estimate_text}, over the budget of {budget:g} credits, counting "
        f"the {attached} batch(es) an earlier attempt created, which run on "
        f"({', '.join(running) or 'their creates were sent; not found yet'}). No other batch was created.",
        metadata={**metadata, "credit_budget": float(budget), "batch_uuid": running[0] if running else None},
        hint=wording.hint)


def ramp_stopped(what: str, uuids: Sequence[str], total: int, done: int, spent: float, budget: float, *,
                 rounds: int, wording: BudgetWording = ASSET_BUDGET) -> StepBudgetError:
    """The failure of a ramp (:mod:`.ramp`) that stopped because not one more record fits in the budget."""
    per_record = spent / done if done else 0.0
    return StepBudgetError(
        f"Cargo {what}: ran {done} of {total} records in {rounds} round(s) for {spent:g} credits "
        f"({per_record:g} per record); the next record would take the spend over the budget of {budget:g}, so "
        f"the other {total - done} records were not run (0 credits spent on them). Round batches: "
        f"{', '.join(uuids) or 'none'}.",
        metadata={"batch_uuid": uuids[0] if uuids else None, "credits_used": round(spent, 6),
                  "credit_budget": float(budget), "records_run": done, "records_not_run": total - done},
        hint=wording.hint)


def unaffordable_round(count: int, what: str, estimate: float, per_record: float, spent: float,
                       budget: float) -> str:
    """The warning of a heal round not started because it would take the spend over the budget."""
    return (f"Not re-running the {count} failed records of {what}: about {estimate:g} credits ({per_record:g} per "
            f"record so far) would take the spend of {spent:g} over the budget of {budget:g}. They stay flagged "
            "_status='error'.")


def no_estimate(what: str, budget: float) -> str:
    """The note of a budget that has no estimate to check before the start."""
    return f"No credit estimate for Cargo {what}; the budget of {budget:g} credits is enforced while the batch runs."


class CreditBudget:
    """A credit budget over the units (batches or single runs) of one step.

    Args:
        limit: the budget, in credits.
        spent: ``spent(unit)``, the credits a unit has cost so far with the execution charge (see
            :mod:`cargo_gtm.credits`); asked again only when the unit's counters move. Without it,
            the units' ``creditsUsedCount`` (provider credits, a lower bound) is all that is used.
    """

    def __init__(self, limit: float, spent: Callable[[Any], float] | None = None) -> None:
        self.limit = limit
        self.spent = spent
        #: the spend the last :meth:`overrun` saw
        self.last_used = 0.0
        self._cache: dict[str, tuple[tuple[Any, ...], float]] = {}

    def overrun(self, snapshot: Any) -> float | None:
        """The credits used when the units, some still running, are over the budget; else ``None``."""
        units = list(snapshot.batches.values())
        if snapshot.finished or not units:
            return None  # nothing left to stop: the finished total is checked by the caller
        floor = float(sum(u.credits_used_count for u in units))  # provider cost: a lower bound
        self.last_used = floor
        if floor > self.limit:
            return floor
        if self.spent is None:
            return None
        used = sum(self._spent(u) for u in units)
        self.last_used = used
        return used if used > self.limit else None

    def near(self, fraction: float = 0.5) -> bool:
        """Whether the spend last seen is at least ``fraction`` of the budget (poll sooner then)."""
        return self.last_used >= fraction * self.limit

    def _spent(self, unit: Any) -> float:
        key = (unit.status.value, unit.executed_runs_count, unit.failed_runs_count, unit.credits_used_count,
               tuple(str(e.status) for e in getattr(unit, "executions", ()) or ()))  # a run's node executions
        cached = self._cache.get(unit.uuid)
        if cached is not None and cached[0] == key:
            return cached[1]
        assert self.spent is not None
        value = float(self.spent(unit))
        self._cache[unit.uuid] = (key, value)
        return value
