"""Plain records of the emulated workspace shared by the store and the engine (no behaviour, no imports of
either, so neither module depends on the other through them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHANGE_KINDS = ("added", "updated", "removed", "unchanged")
PLAY_SEGMENT_NAME = "GENERATED_PLAY_SEGMENT"
EXECUTION_CHARGE = 0.01  # credit per node execution (CARGO-DOCS 5.2)


@dataclass
class ChangeState:
    """A segment snapshot diff: the wire fields plus ``entries`` = ``{record_id: (kind, record)}``."""

    wire: dict[str, Any]
    entries: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class UsageEvent:
    """One billable (or counted) unit of usage, aggregated by ``/billing/usage/metrics``."""

    at: float
    unit: str
    slug: str
    count: float
    workflow_uuid: str | None
    model_uuid: str | None
    connector_uuid: str | None
    integration_slug: str | None
