"""The ack-mode producer of :class:`~cargo_provider.triggers.changes.CargoSegmentChangeTrigger`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

__all__ = ["ChangeProducer"]


class ChangeProducer(SharedStreamProducer):
    """Yields a segment's new changes; :meth:`advance` (called by the triggerer once the asset events derived
    from them are stored in Airflow's database) moves the watermark past them."""

    def __init__(self, source: Any) -> None:
        self.source = source

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        async for payload, mark in self.source.stream():
            yield payload, mark

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        def stored(item: AdvanceItem) -> bool:  # every subscriber moved past it and its events were persisted
            return item.outcome.failed == 0 and (item.outcome.acked > 0 or item.outcome.rejected > 0)

        done = [item.broker_payload for item in batch if stored(item)]
        failed = [item.broker_payload for item in batch if not stored(item)]
        await self.source.advance(done, failed)
