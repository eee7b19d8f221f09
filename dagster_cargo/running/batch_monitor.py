"""Progress logging and the credit budget, as plain functions of a polling round's status snapshot.

Progress lines show the batches' ``creditsUsedCount`` as it grows, labelled "provider credits": the
execution charge (0.01 per node execution, from ``runs/metrics``) is added once the batch ends, and the
summary line then says "<total> credits (<provider> provider + <charge> execution charge ...)". "Credits"
alone always means the billed total (see :mod:`cargo_gtm.credits`).

Neither raises: :class:`ProgressLog` writes to the run log, :class:`CreditBudget` says whether the
batches are over the budget; the caller (:func:`dagster_cargo.running.execution.execute_batches`) decides.
Time is the snapshot's ``elapsed`` (the client's clock), so a manual clock drives the cadence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cargo_gtm.models import Batch
from cargo_gtm.running.handle import StatusSnapshot
from cargo_gtm.running.waiting import BatchProgress

__all__ = ["CreditBudget", "ProgressLog"]


class ProgressLog:
    """Logs each batch's progress to the run log at a sensible cadence: every ``every_seconds``, on each
    status change, and at the end.

    With more than ``detail_limit`` batches (a fan-out), per-batch lines are kept for what needs
    attention (unknown status, ``error``/``cancelled``, failed runs at the end) and the rest is summed
    up in one line every ``every_seconds`` and when the last batch ends, so a 50-batch step writes a
    handful of events instead of hundreds.
    """

    def __init__(self, log: Any, every_seconds: float, total: int = 1, detail_limit: int = 5) -> None:
        self.log = log
        self.every = every_seconds
        self.total = total
        self.detailed = total <= detail_limit
        self._last_logged: dict[str, float] = {}
        self._last_key: dict[str, tuple[Any, ...]] = {}
        self._last_summary = 0.0

    def __call__(self, snapshot: StatusSnapshot) -> None:
        """Log what the round's polls found."""
        for progress in snapshot.updates:
            if self.detailed:
                self._log_batch(progress)
            else:
                self._log_attention(progress)
        if not self.detailed and snapshot.updates:
            self._summary(snapshot)

    def _log_batch(self, progress: BatchProgress) -> None:
        b = progress.batch
        key = (b.status.value, b.failed_runs_count > 0)
        now = progress.elapsed
        due = now - self._last_logged.get(b.uuid, float("-inf")) >= self.every
        if key == self._last_key.get(b.uuid) and not due and not b.is_terminal:
            return
        if progress.unknown_status:
            self.log.warning(f"Cargo {progress.describe()}; waiting for a known status.")
        else:
            self.log.info(f"Cargo {progress.describe()}")
        self._last_logged[b.uuid] = now
        self._last_key[b.uuid] = key

    def _log_attention(self, progress: BatchProgress) -> None:
        """A fan-out's per-batch lines: only what needs attention (unknown status, failure)."""
        b = progress.batch
        if progress.unknown_status and self._last_key.get(b.uuid) != ("unknown",):
            self.log.warning(f"Cargo {progress.describe()}; waiting for a known status.")
            self._last_key[b.uuid] = ("unknown",)
        elif b.is_terminal and (b.status.value in ("error", "cancelled") or b.failed_runs_count):
            self.log.warning(f"Cargo {progress.describe()}")

    def _summary(self, snapshot: StatusSnapshot) -> None:
        """One line for all the batches: every ``every`` seconds, and once when the last one has ended."""
        batches = list(snapshot.batches.values())
        finished = sum(x.is_terminal for x in batches)
        final = finished == self.total and any(u.batch.is_terminal for u in snapshot.updates)
        if snapshot.elapsed - self._last_summary < self.every and not final:
            return
        self._last_summary = snapshot.elapsed
        self.log.info(
            f"Cargo: {finished}/{self.total} batches finished, "
            f"{sum(x.executed_runs_count for x in batches)}/{sum(x.runs_count for x in batches)} runs "
            f"executed, {sum(x.failed_runs_count for x in batches)} failed, "
            f"{sum(x.credits_used_count for x in batches):g} provider credits so far, {snapshot.elapsed:.0f}s elapsed"
        )


class CreditBudget:
    """A credit budget over the batches of one step.

    Args:
        limit: the budget, in credits.
        spent: ``spent(batch)``, the credits a batch has cost so far with the execution charge (see
            :mod:`cargo_gtm.credits`); asked again only when the batch's counters move. Without it,
            the batches' ``creditsUsedCount`` (provider credits, a lower bound) is all that is used.
    """

    def __init__(self, limit: float, spent: Callable[[Batch], float] | None = None) -> None:
        self.limit = limit
        self.spent = spent
        self._cache: dict[str, tuple[tuple[Any, ...], float]] = {}

    def overrun(self, snapshot: StatusSnapshot) -> float | None:
        """The credits used when the batches, some still running, are over the budget; else ``None``."""
        batches = list(snapshot.batches.values())
        if snapshot.finished or not batches:
            return None  # nothing left to stop: the finished total is checked by the caller
        floor = float(sum(b.credits_used_count for b in batches))  # provider cost: a lower bound
        if floor > self.limit:
            return floor
        if self.spent is None:
            return None
        used = sum(self._spent(b) for b in batches)
        return used if used > self.limit else None

    def _spent(self, batch: Batch) -> float:
        key = (batch.status.value, batch.executed_runs_count, batch.failed_runs_count, batch.credits_used_count)
        cached = self._cache.get(batch.uuid)
        if cached is not None and cached[0] == key:
            return cached[1]
        assert self.spent is not None
        value = float(self.spent(batch))
        self._cache[batch.uuid] = (key, value)
        return value
