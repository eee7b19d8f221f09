"""A watermark over Cargo items ordered by creation time (segment changes, batches): which ones are handled.

Cargo's timestamps can tie (several changes created in the same millisecond), so a watermark is the newest
creation time handled (``after``) plus the uuids handled *at* that time (``seen``): an item created before
``after`` is handled, one created at it is handled when its uuid is in ``seen``. Both orchestrator layers keep
one: Dagster's change sensor in its cursor, the Airflow change trigger in the watched asset's state store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["Watermark", "stamp"]


def stamp(moment: datetime | None) -> str:
    """A fixed-width UTC timestamp that sorts as the instant does (``""`` when unknown)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Watermark:
    """Every item created before ``after`` is handled, and so are the ``seen`` ones created exactly at it."""

    after: str | None = None
    seen: list[str] = field(default_factory=list)

    def is_new(self, item: Any) -> bool:
        """Whether ``item`` (anything with ``uuid`` and ``created_at``) is not handled yet."""
        created = stamp(item.created_at)
        if self.after is None or created > self.after:
            return True
        return created == self.after and item.uuid not in self.seen

    def advance(self, item: Any) -> None:
        """Record ``item`` as handled."""
        self.mark(item.uuid, stamp(item.created_at))

    def mark(self, uuid: str, created: str) -> None:
        """Record the item ``uuid`` created at ``created`` (a :func:`stamp`) as handled."""
        if self.after is None or created > self.after:
            self.after, self.seen = created, [uuid]
        elif created == self.after and uuid not in self.seen:
            self.seen.append(uuid)
