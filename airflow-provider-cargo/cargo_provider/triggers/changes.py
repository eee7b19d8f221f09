"""``CargoSegmentChangeTrigger``: an event trigger that fires once per new change of a Cargo segment, for
event-driven scheduling with ``AssetWatcher``.

A Cargo *change* is a snapshot diff of a segment (records added, updated, removed). Each new change with
records of the wanted kinds becomes one asset event whose payload names it (``change_uuid``,
``segment_uuid``, counts); a DAG scheduled on the asset runs a play over exactly those records with
``CargoRunOperator(play=..., change=CHANGE_FROM_EVENT)``.

**The watermark** (changes handled: every change created before ``after``, plus the ``seen`` ones created
exactly at ``after``) lives in Airflow's asset state store of the watched asset, so it survives triggerer
restarts. It is advanced only after Airflow has confirmed the asset event stored in its database: the
trigger runs in the triggerer's *ack mode* (a :class:`~airflow.triggers.shared_stream.SharedStreamProducer`
whose ``advance`` is called with events whose trigger events were persisted). So a triggerer that dies
before an event is stored re-emits it on restart (no change is missed). A triggerer that dies in the
instant between the store and the watermark write re-emits an event that was stored: the consumer then
attaches to the batch already made for that change (``CargoRunOperator`` deduplicates a change by its
content, the batch's echoed ``changeUuid``), so no change is enrolled twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from cargo_gtm.watermark import Watermark
from cargo_gtm.watermark import stamp as _stamp

from cargo_provider.hooks.cargo import CargoHook

__all__ = ["CargoSegmentChangeTrigger", "ChangeCursor", "WATERMARK_KEY", "CHANGE_FROM_EVENT"]

CLASSPATH = "cargo_provider.triggers.changes.CargoSegmentChangeTrigger"
WATERMARK_KEY = "cargo.changes.watermark"
#: ``CargoRunOperator(change=CHANGE_FROM_EVENT)``: the change(s) named by the triggering asset events
CHANGE_FROM_EVENT = "__cargo_change_from_triggering_asset_events__"
PAGE = 100
#: the asset state store accessors of the running triggers, by shared-stream key (the producer reads them)
_STORES: dict[Hashable, Any] = {}


@dataclass
class ChangeCursor(Watermark):
    """The core's watermark of handled changes, stored as a JSON value in the watched asset's state store."""

    @classmethod
    def from_value(cls, value: Any) -> ChangeCursor:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            return cls()
        return cls(after=value.get("after"), seen=list(value.get("seen") or []))

    def to_value(self) -> dict[str, Any]:
        return asdict(self)


def _payload(change: Any, segment_uuid: str, kinds: Sequence[str]) -> dict[str, Any]:
    return {"change_uuid": change.uuid, "segment_uuid": segment_uuid, "created_at": _stamp(change.created_at),
            "change_kinds": list(kinds),
            "records": sum(int(getattr(change, f"{k}_records_count", 0) or 0) for k in kinds),
            "added": int(getattr(change, "added_records_count", 0) or 0),
            "updated": int(getattr(change, "updated_records_count", 0) or 0),
            "removed": int(getattr(change, "removed_records_count", 0) or 0)}


class _Store:
    """The watermark in the watched asset's state store (in memory when the trigger watches no asset)."""

    def __init__(self, accessor: Any) -> None:
        self.accessor = accessor
        self.memory: Any = None

    async def read(self) -> ChangeCursor:
        if self.accessor is None:
            return ChangeCursor.from_value(self.memory)
        return ChangeCursor.from_value(await self.accessor.aget(WATERMARK_KEY))

    async def write(self, cursor: ChangeCursor) -> None:
        if self.accessor is None:
            self.memory = cursor.to_value()
        else:
            await self.accessor.aset(WATERMARK_KEY, cursor.to_value())


class ChangeSource:
    """Lists a segment's changes and yields the new ones, oldest first; advances the stored watermark."""

    def __init__(self, kwargs: dict[str, Any], accessor: Any) -> None:
        self.kwargs = kwargs
        self.store = _Store(accessor)
        self.cursor = ChangeCursor()
        self.pending: set[str] = set()  # yielded, not yet advanced (never yielded twice by this process)

    async def _changes(self, client: Any, segment_uuid: str) -> list[Any]:
        from cargo_gtm.paging import read_all

        changes = await asyncio.to_thread(read_all, lambda offset: client.list_changes(
            segment_uuid=segment_uuid, limit=PAGE, offset=offset), page_size=PAGE, key=lambda c: c.uuid)
        return sorted(changes, key=lambda c: (_stamp(c.created_at), c.uuid))

    async def stream(self) -> AsyncIterator[tuple[dict[str, Any], tuple[str, str]]]:
        settings = await CargoHook.aget_settings(self.kwargs["cargo_conn_id"])
        client = settings.client()
        try:
            segment_uuid = await asyncio.to_thread(_segment_uuid, client, self.kwargs["segment"])
            self.cursor = await self.store.read()
            if self.cursor.after is None and self.kwargs.get("start_from", "latest") == "latest":
                for change in await self._changes(client, segment_uuid):
                    self.cursor.advance(change)
                await self.store.write(self.cursor)
            while True:
                for change in await self._changes(client, segment_uuid):
                    if change.uuid in self.pending or not self.cursor.is_new(change):
                        continue
                    self.pending.add(change.uuid)
                    yield _payload(change, segment_uuid, self.kwargs["change_kinds"]), \
                        (change.uuid, _stamp(change.created_at))
                await asyncio.sleep(float(self.kwargs.get("poll_interval", 60.0)))
        finally:
            client.close()

    async def advance(self, done: Sequence[tuple[str, str]], failed: Sequence[tuple[str, str]] = ()) -> None:
        """Record changes whose events Airflow stored; forget failed ones so they are emitted again."""
        for uuid, _ in failed:
            self.pending.discard(uuid)
        if not done:
            return
        for uuid, created in done:
            self.cursor.mark(uuid, created)
            self.pending.discard(uuid)
        await self.store.write(self.cursor)


def _segment_uuid(client: Any, segment: str) -> str:
    from cargo_provider.inputs import _segment_uuid as find

    return find(client, segment)


def _wants(payload: dict[str, Any]) -> bool:
    return int(payload.get("records") or 0) > 0


class CargoSegmentChangeTrigger(BaseEventTrigger):
    """Fire once per new change of a Cargo segment that has records of ``change_kinds``.

    :param segment: the segment's name or UUID.
    :param cargo_conn_id: the Cargo connection (read asynchronously).
    :param change_kinds: which records of a change count (``added``, ``updated``, ``removed``).
    :param poll_interval: seconds between listings of the segment's changes (default 60).
    :param start_from: ``latest`` (the first start records the newest change and fires nothing) or
        ``beginning`` (every existing change fires).

    Use one watched asset per trigger: the watermark lives in that asset's state store.
    """

    def __init__(self, segment: str, cargo_conn_id: str = CargoHook.default_conn_name, *,
                 change_kinds: Sequence[str] = ("added", "updated"), poll_interval: float = 60.0,
                 start_from: str = "latest") -> None:
        super().__init__()
        if start_from not in ("latest", "beginning"):
            raise ValueError(f"start_from must be 'latest' or 'beginning', not {start_from!r}. Next step: use "
                             "'latest' to fire only changes made from now on.")
        self.segment = segment
        self.cargo_conn_id = cargo_conn_id
        self.change_kinds = list(change_kinds)
        self.poll_interval = float(poll_interval)
        self.start_from = start_from

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {"segment": self.segment, "cargo_conn_id": self.cargo_conn_id,
                           "change_kinds": list(self.change_kinds), "poll_interval": self.poll_interval,
                           "start_from": self.start_from}

    # -- ack mode: the watermark advances only after Airflow stored the events --------------------------
    def shared_stream_key(self) -> Hashable | None:
        key = ("cargo-segment-changes", self.cargo_conn_id, self.segment, tuple(self.change_kinds), self.start_from)
        _STORES[key] = self.asset_state_store
        return key

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        from cargo_provider.triggers._producer import ChangeProducer

        key = ("cargo-segment-changes", kwargs["cargo_conn_id"], kwargs["segment"], tuple(kwargs["change_kinds"]),
               kwargs.get("start_from", "latest"))
        return ChangeProducer(ChangeSource(kwargs, _STORES.get(key)))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for payload in shared_stream:
            if _wants(payload):
                yield TriggerEvent(payload)

    # -- standalone path (no shared stream): used where the triggerer does not group the trigger ---------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        source = ChangeSource(self.serialize()[1], self.asset_state_store)
        async for payload, mark in source.stream():
            if _wants(payload):
                yield TriggerEvent(payload)
            await source.advance([mark])
