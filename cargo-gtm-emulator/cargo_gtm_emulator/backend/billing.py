"""Billing: usage events aggregated into daily buckets (REFERENCE §6, CARGO-DOCS 5.5)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

from ..entities import UsageEvent
from ..store import Store
from ..util import credit_number, iso

#: ``groupBy`` value -> UsageEvent attribute (``agent_uuid``: no agents in the emulator, always null).
GROUP_FIELDS = {"workflow_uuid": "workflow_uuid", "model_uuid": "model_uuid", "connector_uuid": "connector_uuid",
                "integration_slug": "integration_slug", "agent_uuid": None}


def day_of(ts: float) -> datetime:
    """Midnight UTC of the day holding ``ts``."""
    d = datetime.fromtimestamp(ts, tz=timezone.utc)
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def _selected(ev: UsageEvent, unit: str | None, matches: dict[str, Any]) -> bool:
    return (unit is None or ev.unit == unit) and all(getattr(ev, attr) == value for attr, value in matches.items())


def usage_metrics(store: Store, first: datetime, last: datetime, unit: str | None, group_by: str | None,
                  matches: dict[str, Any], agent_uuid: str | None = None) -> list[dict[str, Any]]:
    """One bucket per UTC day from ``first`` to ``last`` (inclusive) of the events of ``unit`` (all units when
    ``None``) whose attributes equal ``matches``; items keyed by (unit, slug, group value). ``agent_uuid``:
    the emulator has no agents, so an agent filter matches no event."""
    buckets: OrderedDict[datetime, dict[tuple[str, str, Any], float]] = OrderedDict()
    day = first
    while day <= last:
        buckets[day] = {}
        day += timedelta(days=1)
    attr = GROUP_FIELDS.get(group_by or "") if group_by else None
    for ev in store.usage:
        bucket = buckets.get(day_of(ev.at))
        if bucket is None or agent_uuid is not None or not _selected(ev, unit, matches):
            continue
        key = (ev.unit, ev.slug, getattr(ev, attr) if attr else None)
        bucket[key] = bucket.get(key, 0) + ev.count
    # Items sorted by slug across units: with no ``unit`` the three units come back interleaved in one
    # ``items[]`` (CARGO-DOCS 5.5) and nothing in an item says which unit it counts.
    return [{"date": iso(d.timestamp()),
             "items": [{"slug": s, "count": credit_number(c), "groupBy": g} for (_, s, g), c in sorted(
                 items.items(), key=lambda kv: (kv[0][1], str(kv[0][2]), kv[0][0]))]}
            for d, items in buckets.items()]
