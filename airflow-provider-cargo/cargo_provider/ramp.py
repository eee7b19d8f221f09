"""Ramp rounds for a task with a ``credit_budget`` and nothing to estimate from, as dagster-cargo runs them.

The first time a tool runs there is no history to estimate its credits from, so a budget could only be checked
while one large batch runs (and is passed between two polls). The task then runs its records in rounds, as
Cargo's docs advise ramping: 1 record, then up to 50, then 500, each sized by the core
(:func:`cargo_gtm.running.next_round_size`) to what is left of the budget at the credits per record seen so far.
When not even one more record fits, the task fails with the figures; the records not run cost nothing.

Each round is its own batch (its own attempt key, scope ``ramp<n>``), deferred and resumed like any round: a
resume or retry replays the finished rounds from the ledger, sizes the next ones from the same figures, and so
attaches to each round's batch instead of paying again. A task that ramped once ramps on every retry, whatever
the estimate says since (its first rounds are history now).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["RampPlan"]


class RampPlan:
    """The rounds of one task's records: which slice each round runs, and when to stop."""

    def __init__(self, records: Sequence[Mapping[str, Any]], budget: float, *, max_round: int) -> None:
        self.records = list(records)
        self.budget = budget  # what was left of the task's budget when round 0 started
        self.max_round = max_round
        self.done = 0  # records in the rounds started so far
        self.rounds = 0

    @property
    def total(self) -> int:
        return len(self.records)

    def next_size(self, spent: float, succeeded: int) -> int:
        """How many records the next round runs (0: stop, or all done) after ``spent`` credits in the rounds, in
        which ``succeeded`` records ran through."""
        from cargo_gtm.running import next_round_size

        return next_round_size(total=self.total, done=self.done, spent=spent, budget=self.budget,
                               max_round=self.max_round, succeeded=succeeded)

    def take(self, size: int) -> dict[str, Any]:
        """The next round's data: the ``size`` records after those already run."""
        return self._take(size)

    def _take(self, size: int) -> dict[str, Any]:
        data = {"kind": "records", "records": self.records[self.done:self.done + size]}
        self.done += size
        self.rounds += 1
        return data

    def stopped(self, what: str, uuids: list[str], spent: float, wording: Any) -> Any:
        """The core's failure when not one more record fits (its figures, the rounds' batches, the next step in
        the task's terms)."""
        from cargo_gtm.running import ramp_stopped

        return ramp_stopped(what, uuids, self.total, self.done, spent, self.budget, rounds=self.rounds,
                            wording=wording)

    @staticmethod
    def scope(n: int) -> str:
        return f"ramp{n}"
