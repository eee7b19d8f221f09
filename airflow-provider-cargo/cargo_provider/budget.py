"""The credit budget checked after each polling round, in the worker and in the triggerer.

A batch's spend is what Cargo bills: provider credits plus 0.01 per node execution (``runs/metrics``,
:func:`cargo_gtm.credits.credit_split`); the batches' ``creditsUsedCount`` (provider credits only) is a
lower bound checked first, so ``runs/metrics`` is read only when the counters move.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Budget"]


class Budget:
    """``overrun(snapshot)``: the credits used when unfinished batches are over ``limit``, else ``None``."""

    def __init__(self, client: Any, limit: float) -> None:
        self.client = client
        self.limit = limit
        self._cache: dict[str, tuple[tuple[Any, ...], float]] = {}

    def _spent(self, batch: Any) -> float:
        from cargo_gtm.credits import credit_split

        key = (batch.status.value, batch.executed_runs_count, batch.failed_runs_count, batch.credits_used_count)
        cached = self._cache.get(batch.uuid)
        if cached is not None and cached[0] == key:
            return cached[1]
        spent = credit_split(self.client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid)).total
        self._cache[batch.uuid] = (key, spent)
        return spent

    def overrun(self, snapshot: Any) -> float | None:
        batches = list(snapshot.batches.values())
        if snapshot.finished or not batches:
            return None  # nothing left to stop: the final spend is checked when the step completes
        floor = float(sum(b.credits_used_count for b in batches))
        if floor > self.limit:
            return floor
        used = sum(self._spent(b) for b in batches)
        return used if used > self.limit else None
