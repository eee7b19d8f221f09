"""Runs: which runs a filter selects (REFERENCE §3.5), the latest run per record, single-run creation, cancel.

Handlers parse the request body into a :class:`RunQuery`, call these and serialize the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine import RunState
from ..errors import ApiError
from ..store import Store
from .batches import tool_record

TIME_KEYS = ("createdAfter", "createdBefore", "updatedAfter", "updatedBefore")


@dataclass(frozen=True)
class RunQuery:
    """The run filter fields shared by runs list / count / metrics / downloads (all optional)."""

    workflow_uuid: str | None = None
    batch_uuid: str | None = None
    release_uuid: str | None = None
    user_uuid: str | None = None
    uuids: list[Any] | None = None
    sub_runs: bool = False  # a parent* filter or isGroupParent: the emulator has no sub-runs
    record_id: str | None = None
    record_title: str | None = None
    record_title_or_id: str | None = None
    statuses: list[Any] | None = None
    is_finished: bool | None = None
    times: dict[str, float | None] = field(default_factory=dict)  # TIME_KEYS -> epoch seconds
    executions_filter: Any = None

    def _identity_ok(self, run: RunState) -> bool:
        return all((
            not self.workflow_uuid or run.workflow_uuid == self.workflow_uuid,
            not self.batch_uuid or run.batch_uuid == self.batch_uuid,
            not self.release_uuid or run.release_uuid == self.release_uuid,
            not self.user_uuid or run.user_uuid == self.user_uuid,
            self.uuids is None or run.uuid in self.uuids,
            not self.sub_runs,
        ))

    def _record_ok(self, run: RunState) -> bool:
        title = run.record_title.lower()
        rto = self.record_title_or_id
        return all((
            not self.record_id or run.record_id == self.record_id,
            not self.record_title or self.record_title.lower() in title,
            not rto or run.record_id == rto or rto.lower() in title,
        ))

    def _time_ok(self, run: RunState) -> bool:
        t = self.times
        bounds = ((t.get("createdAfter"), run.created_at, 1), (t.get("createdBefore"), run.created_at, -1),
                  (t.get("updatedAfter"), run.updated_at, 1), (t.get("updatedBefore"), run.updated_at, -1))
        return all(limit is None or (value - limit) * sign >= 0 for limit, value, sign in bounds)

    def matches(self, store: Store, run: RunState, now: float) -> bool:
        """Whether ``run`` passes every filter at time ``now``."""
        if not (self._identity_ok(run) and self._record_ok(run)):
            return False
        if self.statuses and store.engine.run_view_status(run, now) not in self.statuses:
            return False
        if self.is_finished is not None and run.finished != self.is_finished:
            return False
        return self._time_ok(run) and executions_filter_ok(store, run, self.executions_filter, now)


def select_runs(store: Store, query: RunQuery, now: float) -> list[RunState]:
    """Runs matching ``query``, newest first. A ``batchUuid`` filter looks only at that batch's runs (every run of a
    batch is in its ``run_uuids``): the same answer, without reading every run of the workspace per request (a
    fan-out reads each batch's metrics, which read all runs, made the emulator's work grow with its square)."""
    engine = store.engine
    batch = engine.batches.get(query.batch_uuid) if query.batch_uuid else None
    pool = [engine.runs[u] for u in batch.run_uuids] if batch is not None else engine.runs.values()
    out = [run for run in pool if query.matches(store, run, now)]
    out.sort(key=lambda r: (r.created_at, r.seq), reverse=True)
    return out


def node_status(store: Store, run: RunState, slug: str, now: float) -> tuple[str, str | None]:
    """``(status, text)`` of the run's execution of node ``slug``: its title (success) or error;
    ``pending`` while it executes; ``absent`` when it never ran."""
    spec = store.spec_for_release(run.release_uuid)
    for ex in run.executions:
        if spec.nodes[ex.index].slug == slug:
            return ex.status, (ex.title if ex.status == "success" else ex.error)
    step = store.engine.in_progress_step(run, now)
    if step is not None and spec.nodes[step.index].slug == slug:
        return "pending", None
    return "absent", None


def _combine(conj: Any, results: list[bool]) -> bool:
    if not results:
        return True
    return all(results) if conj == "and" else any(results)


def executions_filter_ok(store: Store, run: RunState, flt: Any, now: float) -> bool:
    """Whether ``run`` passes an ``executionsFilter`` (groups of node-status conditions)."""
    if not flt:
        return True
    if not isinstance(flt, dict):
        raise ApiError(None, "Invalid executionsFilter.", status=400)

    def cond_ok(c: dict[str, Any]) -> bool:
        status, text = node_status(store, run, str(c.get("nodeSlug")), now)
        if status != c.get("status"):
            return False
        value = c.get("value")
        return not value or (text is not None and str(value).lower() in text.lower())

    groups = [_combine(g.get("conjonction"), [cond_ok(c) for c in g.get("conditions", [])])
              for g in flt.get("groups", [])]
    return _combine(flt.get("conjonction"), groups)


def latest_per_record(runs: list[RunState], ids: list[Any] | None) -> list[RunState]:
    """The most recent run of each record id (only ``ids`` when given), ordered by that run's creation."""
    wanted = None if ids is None else {str(i) for i in ids}
    latest: dict[str, RunState] = {}
    for run in sorted(runs, key=lambda r: r.seq):
        if wanted is None or run.record_id in wanted:
            latest.pop(run.record_id, None)
            latest[run.record_id] = run  # keeps the newest, ordered by its creation
    return list(latest.values())


def create_single_run(store: Store, body: dict[str, Any], now: float) -> RunState:
    """``POST /orchestration/runs``: one record through a **tool**, asynchronously (CARGO-DOCS 11.1); ad-hoc
    nodes are not emulated; a play → ``playNotCompatible``."""
    wf, rel, nodes = body.get("workflowUuid"), body.get("releaseUuid"), body.get("nodes")
    if nodes is not None:
        if wf or rel:  # CARGO-DOCS 11.3: both a release and nodes
            raise ApiError("invalidReleaseOrCustomNodes")
        raise ApiError("invalidReleaseOrCustomNodes", "Ad-hoc nodes are not supported by the emulator.")
    if not wf or wf not in store.workflows:
        raise ApiError("workflowNotFound")
    if rel is not None and store.releases.get(rel, {}).get("workflowUuid") != wf:
        raise ApiError("invalidReleaseOrCustomNodes")
    spec = store.spec_for(wf)
    if spec.kind == "play":
        raise ApiError("playNotCompatible")
    data = body.get("data")
    if not isinstance(data, dict):
        raise ApiError("invalidData")
    if store.credits_remaining <= 0:
        raise ApiError("notEnoughCredits")
    store.check_concurrency()
    record = tool_record(store, data, [f["slug"] for f in spec.form_fields])
    return store.engine.create_run(wf, record, data, now)


def cancel_runs(store: Store, query: RunQuery, now: float) -> None:
    """``POST /orchestration/runs/cancel``: the unfinished runs of ``query.workflow_uuid`` that ``query`` selects
    (by ``uuids`` or by filter) go ``cancelling`` now and ``cancelled`` a moment later; finished runs and uuids
    that name no run of the workflow are left alone (the call is void). A workflowUuid naming no workflow of the
    workspace is ``failedToStart``, the only reason the endpoint declares."""
    if not query.workflow_uuid or query.workflow_uuid not in store.workflows:
        raise ApiError("failedToStart", "Failed to cancel runs.")
    store.engine.cancel_runs([r for r in select_runs(store, query, now) if not r.finished], now)
