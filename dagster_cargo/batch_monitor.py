"""Progress logging and credit-budget enforcement while batches run (one or many)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .client import BatchProgress
from .client.models import Batch

__all__ = ["BatchMonitor", "CreditBudgetExceeded"]


class CreditBudgetExceeded(Exception):
    """Raised from the polling loop when the batches' credits pass the budget."""

    def __init__(self, batches: list[Batch], budget: float, used: float | None = None) -> None:
        super().__init__(", ".join(b.uuid for b in batches))
        self.batches = batches
        self.budget = budget
        self._used = used

    @property
    def credits_used(self) -> float:
        """Credits billed so far (provider + execution charge when known)."""
        if self._used is not None:
            return self._used
        return float(sum(b.credits_used_count for b in self.batches))


class BatchMonitor:
    """``on_progress`` callback: logs each batch's progress to the run log at a sensible
    cadence (every ``every_seconds``, on each status change, and at the end), and raises
    :class:`CreditBudgetExceeded` once the credits of all watched batches pass ``budget``.

    With more than ``detail_limit`` batches (a fan-out), per-batch lines are kept for what
    needs attention (unknown status, ``error``/``cancelled``, failed runs at the end) and the
    rest is summed up in one line every ``every_seconds`` and when the last batch ends, so a
    50-batch step writes a handful of events instead of hundreds.
    """

    def __init__(self, log: Any, every_seconds: float, budget: float | None = None, total: int = 1,
                 detail_limit: int = 5, spent: Callable[[Batch], float] | None = None) -> None:
        self.log = log
        #: ``spent(batch)``: credits a batch has cost so far, execution charge included (see
        #: :mod:`dagster_cargo.credits`); without it the batches' ``creditsUsedCount`` is used
        self.spent = spent
        self._spent_cache: dict[str, tuple[tuple[Any, ...], float]] = {}
        self.every = every_seconds
        self.budget = budget
        self.total = total
        self.detailed = total <= detail_limit
        self.latest: dict[str, Batch] = {}
        self._last_logged: dict[str, float] = {}
        self._last_key: dict[str, tuple[Any, ...]] = {}
        self._last_summary = time.monotonic()

    def __call__(self, progress: BatchProgress) -> None:
        b = progress.batch
        self.latest[b.uuid] = b
        if self.detailed:
            self._log_batch(progress)
        else:
            self._log_fan_out(progress)
        if self.budget is not None and not all(batch.is_terminal for batch in self.latest.values()):
            batches = list(self.latest.values())
            floor = float(sum(batch.credits_used_count for batch in batches))  # provider cost: a lower bound
            if floor > self.budget:
                raise CreditBudgetExceeded(batches, self.budget, floor)
            if self.spent is not None:
                used = sum(self._spent(batch) for batch in batches)
                if used > self.budget:
                    raise CreditBudgetExceeded(batches, self.budget, used)

    def _spent(self, batch: Batch) -> float:
        """``spent(batch)``, asked again only when the batch's counters moved."""
        key = (batch.status.value, batch.executed_runs_count, batch.failed_runs_count, batch.credits_used_count)
        cached = self._spent_cache.get(batch.uuid)
        if cached is not None and cached[0] == key:
            return cached[1]
        assert self.spent is not None
        value = float(self.spent(batch))
        self._spent_cache[batch.uuid] = (key, value)
        return value

    def _log_batch(self, progress: BatchProgress) -> None:
        b = progress.batch
        key = (b.status.value, b.failed_runs_count > 0)
        now = time.monotonic()
        if (key != self._last_key.get(b.uuid) or now - self._last_logged.get(b.uuid, float("-inf")) >= self.every
                or b.is_terminal):
            if progress.unknown_status:
                self.log.warning(f"Cargo {progress.describe()}; waiting for a known status.")
            else:
                self.log.info(f"Cargo {progress.describe()}")
            self._last_logged[b.uuid] = now
            self._last_key[b.uuid] = key

    def _log_fan_out(self, progress: BatchProgress) -> None:
        b = progress.batch
        if progress.unknown_status and self._last_key.get(b.uuid) != ("unknown",):
            self.log.warning(f"Cargo {progress.describe()}; waiting for a known status.")
            self._last_key[b.uuid] = ("unknown",)
        elif b.is_terminal and (b.status.value in ("error", "cancelled") or b.failed_runs_count):
            self.log.warning(f"Cargo {progress.describe()}")
        now = time.monotonic()
        finished = sum(x.is_terminal for x in self.latest.values())
        if now - self._last_summary >= self.every or (b.is_terminal and finished == self.total):
            self._last_summary = now
            batches = list(self.latest.values())
            self.log.info(
                f"Cargo: {finished}/{self.total} batches finished, "
                f"{sum(x.executed_runs_count for x in batches)}/{sum(x.runs_count for x in batches)} runs "
                f"executed, {sum(x.failed_runs_count for x in batches)} failed, "
                f"{sum(x.credits_used_count for x in batches):g} credits so far, {progress.elapsed:.0f}s elapsed"
            )
