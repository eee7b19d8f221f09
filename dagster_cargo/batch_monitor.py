"""Progress logging and credit-budget enforcement while batches run (one or many)."""

from __future__ import annotations

import time
from typing import Any

from .client import BatchProgress
from .client.models import Batch

__all__ = ["BatchMonitor", "CreditBudgetExceeded"]


class CreditBudgetExceeded(Exception):
    """Raised from the polling loop when the batches' credits pass the budget."""

    def __init__(self, batches: list[Batch], budget: float) -> None:
        super().__init__(", ".join(b.uuid for b in batches))
        self.batches = batches
        self.budget = budget

    @property
    def credits_used(self) -> float:
        return float(sum(b.credits_used_count for b in self.batches))


class BatchMonitor:
    """``on_progress`` callback: logs each batch's progress to the run log at a sensible
    cadence (every ``every_seconds``, on each status change, and at the end), and raises
    :class:`CreditBudgetExceeded` once the credits of all watched batches pass ``budget``."""

    def __init__(self, log: Any, every_seconds: float, budget: float | None = None) -> None:
        self.log = log
        self.every = every_seconds
        self.budget = budget
        self.latest: dict[str, Batch] = {}
        self._last_logged: dict[str, float] = {}
        self._last_key: dict[str, tuple[Any, ...]] = {}

    def __call__(self, progress: BatchProgress) -> None:
        b = progress.batch
        self.latest[b.uuid] = b
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
        if self.budget is not None:
            used = sum(batch.credits_used_count for batch in self.latest.values())
            if used > self.budget and not all(batch.is_terminal for batch in self.latest.values()):
                raise CreditBudgetExceeded(list(self.latest.values()), self.budget)
