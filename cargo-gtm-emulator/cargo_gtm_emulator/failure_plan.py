"""A failure plan: chosen records fail their first N runs, then succeed (or always fail).

Without a plan, run failures are a pure function of (seed, workflow, record id) (``run_failure_rate``,
:func:`~cargo_gtm_emulator.engine.planned_failure`): a record that fails once fails in every batch, so a
retry can never heal it. Real provider failures are mostly transient (timeouts, 429s, 502s): a retry a few
minutes later succeeds. The plan models that, per record:

* ``{"cmp_0007": 2}``: the first 2 runs of record ``cmp_0007`` (counted from when the plan is set, across
  every batch and single run) fail with a provider timeout; later runs succeed;
* ``{"domain=acme.com": "always"}``: every run of a record whose ``domain`` field is ``acme.com`` fails;
* ``{"cmp_0007": 0}``: ``cmp_0007`` never fails (overrides ``run_failure_rate``).

A key is a record id (the run's ``recordId``: a model record's ``_id``; an inline tool record's ``_id`` / ``id``
field, else its content hash) or ``field=value`` (the record's ``field``, compared as text). A planned record
ignores ``run_failure_rate``; the others keep it. A failure happens at a paid (connector) node, as every
provider failure does (CARGO-DOCS 6.4): on a workflow without one, or where a ``filter`` node stops the run
first, the plan does not apply and nothing is counted. Skipped runs (dedupe) are not counted either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALWAYS", "FailurePlan", "PlanEntry", "TRANSIENT_MESSAGE", "PERMANENT_MESSAGE"]

ALWAYS = "always"
TRANSIENT_MESSAGE = "Timed out after 30000ms waiting for provider response"
PERMANENT_MESSAGE = "Provider returned an invalid payload"


@dataclass
class PlanEntry:
    """One key of the plan: how many runs of each matching record fail (``None``: all of them)."""

    key: str
    times: int | None
    workflow_uuid: str | None = None
    failed: dict[str, int] = field(default_factory=dict)  # record id -> runs failed by this entry so far

    def matches(self, workflow_uuid: str, record: Mapping[str, Any]) -> bool:
        if self.workflow_uuid is not None and self.workflow_uuid != workflow_uuid:
            return False
        if str(record.get("_id")) == self.key:
            return True
        name, sep, value = self.key.partition("=")
        return bool(sep) and name in record and str(record[name]) == value

    def due(self, record_id: str) -> bool:
        """Whether the next run of ``record_id`` fails."""
        return self.times is None or self.failed.get(record_id, 0) < self.times

    def count(self, record_id: str) -> None:
        self.failed[record_id] = self.failed.get(record_id, 0) + 1

    @property
    def message(self) -> str:
        return TRANSIENT_MESSAGE if self.times is not None else PERMANENT_MESSAGE

    def view(self) -> dict[str, Any]:
        return {"key": self.key, "times": ALWAYS if self.times is None else self.times,
                "workflowUuid": self.workflow_uuid, "failed": dict(self.failed)}


def _times(key: str, value: Any) -> int | None:
    if value is None or value == ALWAYS:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"failure plan {key!r}: expected a number of runs >= 0 or {ALWAYS!r}, got {value!r}")
    return value


class FailurePlan:
    """The plan's entries, in the order they were set (the first matching entry decides)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str | None, str], PlanEntry] = {}

    def set(self, plan: Mapping[str, Any], workflow_uuid: str | None = None) -> None:
        """Add or replace entries (a replaced entry starts counting again); ``ValueError`` on a bad value."""
        checked = {str(k): _times(str(k), v) for k, v in plan.items()}
        for key, times in checked.items():
            if not key:
                raise ValueError("failure plan keys must be record ids or field=value, not empty")
            self.entries.pop((workflow_uuid, key), None)
            self.entries[(workflow_uuid, key)] = PlanEntry(key, times, workflow_uuid)

    def clear(self) -> None:
        self.entries.clear()

    def entry_for(self, workflow_uuid: str, record: Mapping[str, Any]) -> PlanEntry | None:
        return next((e for e in self.entries.values() if e.matches(workflow_uuid, record)), None)

    def view(self) -> list[dict[str, Any]]:
        return [e.view() for e in self.entries.values()]
