"""In-memory state of the emulated Cargo workspace.

All mutation happens under :attr:`Store.lock`. Call :meth:`Store.sync` (done automatically on every HTTP
request) to advance the simulated batches up to the clock's current time.
"""

from __future__ import annotations

import threading
from typing import Any

from . import filters
from .clock import Clock
from .engine import Engine
from .entities import CHANGE_KINDS, EXECUTION_CHARGE, PLAY_SEGMENT_NAME, ChangeState, UsageEvent
from .failure_plan import FailurePlan
from .files import DownloadRegistry
from .util import IdFactory, canonical_json, iso
from .variants import check_variants, default_variants
from .workflows import WorkflowSpec

__all__ = ["CHANGE_KINDS", "EXECUTION_CHARGE", "PLAY_SEGMENT_NAME", "ChangeState", "Store", "UsageEvent"]


class Store:
    """Entities of the emulated workspace plus the batch engine."""

    def __init__(self, clock: Clock, seed: int = 0, run_failure_rate: float = 0.05, credits: int = 100_000,
                 max_concurrent_runs: int = 10, variants: dict[str, str] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.seed = seed
        self.run_failure_rate = float(run_failure_rate)
        #: chosen records that fail their first N runs, or always (see :mod:`.failure_plan`)
        self.failure_plan = FailurePlan()
        self.max_concurrent_runs = int(max_concurrent_runs)
        #: unfinished batches (single-run carriers included) the workspace accepts; a create beyond it is
        #: refused with ``concurrencyLimitReached`` and creates nothing. ``None``: no limit (the default).
        self.concurrency_limit: int | None = None
        self.ids = IdFactory(seed, "runtime")
        #: segments whose Changes take their uuids from a sequence of their own, not the runtime one (the agent
        #: play's, so that the workspace with it draws the same batch and run uuids as without it)
        self.change_ids: dict[str, IdFactory] = {}
        self.workspace_uuid = ""
        self.user_uuid = ""
        self.workspace: dict[str, Any] = {}
        self.user: dict[str, Any] = {}
        self.role: dict[str, Any] = {}
        self.datasets: dict[str, dict[str, Any]] = {}
        self.connectors: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {}  # model uuid -> {_id: record}
        self.segments: dict[str, dict[str, Any]] = {}
        self.snapshots: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}  # seg -> {id: (hash, rec)}
        self.changes: dict[str, ChangeState] = {}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, WorkflowSpec] = {}
        self.deployed_release: dict[str, str] = {}
        self.release_specs: dict[str, WorkflowSpec] = {}  # releases deployed after seeding (redeploys)
        self.drafts: dict[str, str] = {}  # workflow uuid -> its draft release uuid
        self.releases: dict[str, dict[str, Any]] = {}
        self.plays: dict[str, dict[str, Any]] = {}
        self.tools: dict[str, dict[str, Any]] = {}
        self.files: dict[str, list[dict[str, Any]]] = {}  # s3Filename -> rows
        self.file_columns: dict[str, list[str]] = {}  # s3Filename -> header
        self.usage: list[UsageEvent] = []
        self.credits_available = int(credits)
        self.credits_additional = 0
        self.provider_credits_used: float = 0  # provider cost (sum of node creditsUsedCount)
        self.executions_billed = 0  # node executions, each billed EXECUTION_CHARGE
        self.variants = default_variants()
        self.variants.update(check_variants(variants or {}))
        self.subscription_created = clock.now() - 30 * 86400
        self.subscription_uuid = ""
        self.engine = Engine(self)
        self.downloads = DownloadRegistry(clock)

    # ------------------------------------------------------------------ time
    def sync(self) -> float:
        """Advance the simulation to the clock's current time; return that time."""
        with self.lock:
            now = self.clock.now()
            self.engine.advance_to(now)
            return now

    # ------------------------------------------------------------------ lookups
    def model_by_slug(self, slug: str) -> dict[str, Any]:
        """The model with ``slug`` (``companies`` / ``contacts``)."""
        return next(m for m in self.models.values() if m["slug"] == slug)

    def play_by_name(self, name: str) -> dict[str, Any]:
        """The play named ``name`` (wire dict)."""
        return next(p for p in self.plays.values() if p["name"] == name)

    def tool_by_name(self, name: str) -> dict[str, Any]:
        """The tool named ``name`` (wire dict)."""
        return next(t for t in self.tools.values() if t["name"] == name)

    def segment_by_name(self, name: str) -> dict[str, Any]:
        """The segment named ``name``; a play's name gives that play's own (``GENERATED_PLAY_SEGMENT``) one."""
        play = next((p for p in self.plays.values() if p["name"] == name), None)
        if play is not None:
            return self.segments[play["segmentUuid"]]
        return next(s for s in self.segments.values() if s["name"] == name)

    def spec_for(self, workflow_uuid: str) -> WorkflowSpec:
        """The workflow definition behind ``workflow_uuid``."""
        return self.specs[workflow_uuid]

    def spec_for_release(self, release_uuid: str) -> WorkflowSpec:
        """The workflow definition a release executes (a batch runs with the release it was created with)."""
        spec = self.release_specs.get(release_uuid)
        return spec if spec is not None else self.specs[self.releases[release_uuid]["workflowUuid"]]

    def check_concurrency(self) -> None:
        """Refuse a create (400 ``concurrencyLimitReached``, nothing created) while the workspace has
        :attr:`concurrency_limit` unfinished batches or single runs (EMULATOR.md ledger row 103)."""
        from .errors import ApiError

        limit = self.concurrency_limit
        if limit is not None and sum(not b.finished for b in self.engine.batches.values()) >= limit:
            raise ApiError("concurrencyLimitReached")

    def release_for(self, workflow_uuid: str) -> dict[str, Any]:
        """The deployed release of ``workflow_uuid``."""
        return self.releases[self.deployed_release[workflow_uuid]]

    def play_for_workflow(self, workflow_uuid: str) -> dict[str, Any] | None:
        """The play that owns the workflow, if any."""
        return next((p for p in self.plays.values() if p["workflowUuid"] == workflow_uuid), None)

    def model_records(self, model_uuid: str) -> list[dict[str, Any]]:
        """All records of a model, in insertion order."""
        return list(self.records.get(model_uuid, {}).values())

    def changes_for(self, segment_uuid: str) -> list[ChangeState]:
        """Changes of a segment, oldest first."""
        return [c for c in self.changes.values() if c.wire["segmentUuid"] == segment_uuid]

    # ------------------------------------------------------------------ credits
    @property
    def credits_used(self) -> float:
        """Credits the subscription lost: provider cost + 0.01 per node execution, exact to 0.01."""
        return round(self.provider_credits_used + self.executions_billed * EXECUTION_CHARGE, 2)

    @property
    def credits_remaining(self) -> float:
        """Available (subscription + additional) minus used."""
        return round(self.credits_available + self.credits_additional - self.credits_used, 2)

    def debit(self, amount: float) -> bool:
        """Consume ``amount`` provider credits if the balance allows it; return whether it did."""
        if amount <= 0:
            return True
        if self.credits_remaining < amount:
            return False
        self.provider_credits_used = round(self.provider_credits_used + amount, 2)
        return True

    def charge_execution(self) -> None:
        """Bill one node execution (0.01 credit, CARGO-DOCS 5.2). Metered after the fact, so always billed,
        even when it takes the balance below zero (see EMULATOR.md)."""
        self.executions_billed += 1

    # ------------------------------------------------------------------ segments & changes
    def segment_records(self, segment_uuid: str) -> list[dict[str, Any]]:
        """Evaluate a segment now (filter, sort, limit) against its model's records."""
        seg = self.segments[segment_uuid]
        return filters.apply(self.model_records(seg["modelUuid"]), seg["filter"], seg["sort"], seg["limit"],
                             segments=self._segment_ids, columns=self.column_types(seg["modelUuid"]),
                             date_precision=self.variants["date_precision"])

    def column_types(self, model_uuid: str) -> dict[str, str]:
        """A model's column slug → type (filter conditions must match it, CARGO-DOCS 9.3)."""
        model = self.models[model_uuid]
        return {c["slug"]: c["type"] for c in [*model["columns"], *model.get("additionalColumns", [])]}

    def _segment_ids(self, segment_uuid: str) -> set[str]:
        if segment_uuid not in self.segments:
            raise filters.FilterError("unknown segment")
        return {r["_id"] for r in self.segment_records(segment_uuid)}

    def create_segment(self, uuid: str, model_uuid: str, name: str, flt: dict[str, Any], created: float,
                       from_play: bool = False, tracking: list[str] | None = None,
                       change_ids: IdFactory | None = None) -> dict[str, Any]:
        """Create a segment and take its initial snapshot (one Change, every record ``added``).

        A play's own segment is named ``GENERATED_PLAY_SEGMENT`` and its record count is never populated
        (CARGO-DOCS 8.3); ``tracking`` = its ``trackingColumnSlugs`` (CARGO-DOCS 8.1). ``change_ids``: where
        this segment's Changes take their uuids from (default: the runtime sequence, which batches and runs draw
        from too).
        """
        if from_play:
            name = PLAY_SEGMENT_NAME
        slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
        self.segments[uuid] = {
            "uuid": uuid, "workspaceUuid": self.workspace_uuid, "userUuid": self.user_uuid,
            "modelUuid": model_uuid, "slug": slug, "name": name, "filter": flt, "sort": None, "limit": None,
            "recordsCount": 0, "fromPlay": from_play, "trackingColumnSlugs": tracking, "columnSlugs": None,
            "syncedAt": None, "createdAt": iso(created), "updatedAt": iso(created), "deletedAt": None,
            "lastChange": None,
        }
        self.snapshots[uuid] = {}
        self.models[model_uuid]["segmentsCount"] += 1
        if change_ids is not None:
            self.change_ids[uuid] = change_ids
        self.snapshot_segment(uuid, at=created)
        return self.segments[uuid]

    def _record_hash(self, seg: dict[str, Any], record: dict[str, Any]) -> str:
        """Only tracked columns make a record ``updated``; without ``trackingColumnSlugs`` nothing does
        (CARGO-DOCS 8.1)."""
        cols = seg.get("trackingColumnSlugs")
        return canonical_json({k: record.get(k) for k in cols}) if cols else ""

    def snapshot_segment(self, segment_uuid: str, at: float | None = None) -> dict[str, Any]:
        """Diff the segment against its previous snapshot and record a new Change; return its wire dict."""
        with self.lock:
            at = self.clock.now() if at is None else at
            seg = self.segments[segment_uuid]
            previous = self.snapshots[segment_uuid]
            current = {r["_id"]: (self._record_hash(seg, r), dict(r)) for r in self.segment_records(segment_uuid)}
            entries: dict[str, tuple[str, dict[str, Any]]] = {}
            for rid, (h, rec) in current.items():
                if rid not in previous:
                    entries[rid] = ("added", rec)
                elif previous[rid][0] != h:
                    entries[rid] = ("updated", rec)
                else:
                    entries[rid] = ("unchanged", rec)
            for rid, (_, rec) in previous.items():
                if rid not in current:
                    entries[rid] = ("removed", rec)
            counts = {k: sum(1 for kind, _ in entries.values() if kind == k) for k in CHANGE_KINDS}
            day = iso(at)[:10]  # type: ignore[index]
            existing = {c.wire["slug"] for c in self.changes_for(segment_uuid)}
            slug, n = day, 1
            while slug in existing:
                n += 1
                slug = f"{day}-{n}"
            cu = self.change_ids.get(segment_uuid, self.ids).uuid()
            wire = {
                "uuid": cu, "workspaceUuid": self.workspace_uuid, "segmentUuid": segment_uuid, "slug": slug,
                "totalRecordsCount": len(current), "updatedRecordsCount": counts["updated"],
                "removedRecordsCount": counts["removed"], "addedRecordsCount": counts["added"],
                "unchangedRecordsCount": counts["unchanged"], "createdAt": iso(at),
            }
            self.changes[cu] = ChangeState(wire=wire, entries=entries)
            self.snapshots[segment_uuid] = current
            if not seg["fromPlay"]:  # a play segment's count is never populated (CARGO-DOCS 8.3), so it
                seg["recordsCount"] = len(current)  # reads as "never synced" (8.4): no syncedAt either
                seg["syncedAt"] = iso(at)
            seg["lastChange"] = {k: wire[k] for k in (
                "uuid", "slug", "totalRecordsCount", "updatedRecordsCount", "removedRecordsCount",
                "addedRecordsCount", "unchangedRecordsCount", "createdAt")}
            return wire

    def upsert_records(self, model: str, records: list[dict[str, Any]], snapshot: bool = True
                       ) -> list[dict[str, Any]]:
        """Insert or update records of a model (by ``_id``, or slug/uuid ``model``) and, by default, snapshot a
        new Change for every segment of that model. Returns the new Change wire dicts.

        Records without ``_id`` get a generated one; ``_title`` defaults to ``name`` / first+last name.
        Updates merge the given fields into the existing record.
        """
        with self.lock:
            self.sync()
            model_uuid = model if model in self.models else self.model_by_slug(model)["uuid"]
            table = self.records[model_uuid]
            for rec in records:
                rid = rec.get("_id") or f"rec_{self.ids.hex(12)}"
                merged = dict(table.get(rid, {}))
                merged.update(rec)
                merged["_id"] = rid
                if not merged.get("_title"):
                    merged["_title"] = merged.get("name") or " ".join(
                        str(merged[k]) for k in ("first_name", "last_name") if merged.get(k)) or rid
                table[rid] = merged
            now = self.clock.now()
            self.models[model_uuid]["lastEmittedAt"] = iso(now)
            if records:  # storage.records / insert = records written (CARGO-DOCS 5.6)
                self.usage.append(UsageEvent(now, "storage.records", "insert", len(records), None, model_uuid,
                                             None, None))
            if not snapshot:
                return []
            return [self.snapshot_segment(s["uuid"], at=now) for s in list(self.segments.values())
                    if s["modelUuid"] == model_uuid]

    def remove_records(self, model: str, ids: list[str], snapshot: bool = True) -> list[dict[str, Any]]:
        """Delete records from a model and (by default) snapshot its segments."""
        with self.lock:
            self.sync()
            model_uuid = model if model in self.models else self.model_by_slug(model)["uuid"]
            for rid in ids:
                self.records[model_uuid].pop(rid, None)
            if not snapshot:
                return []
            now = self.clock.now()
            return [self.snapshot_segment(s["uuid"], at=now) for s in list(self.segments.values())
                    if s["modelUuid"] == model_uuid]

    # ------------------------------------------------------------------ files
    def put_file(self, rows: list[dict[str, Any]], s3_filename: str | None = None,
                 columns: list[str] | None = None) -> str:
        """Register an uploaded file's rows (as parsed CSV) and return its ``s3Filename``."""
        with self.lock:
            name = s3_filename or f"uploads/{self.workspace_uuid}/{self.ids.uuid()}.csv"
            self.files[name] = [dict(r) for r in rows]
            self.file_columns[name] = list(columns) if columns is not None else list(
                dict.fromkeys(k for r in rows for k in r))
            return name
