"""Simulated batch/run execution, event-driven over simulated time.

A batch goes ``pending`` (PENDING_SECONDS) → ``querying`` (QUERYING_SECONDS) → ``running`` → ``success``;
``cancelling`` → ``cancelled`` after a cancel. Runs can also be cancelled one by one (``POST /orchestration/
runs/cancel``): such a run reads ``cancelling`` for CANCEL_SECONDS, then ``cancelled``; no node starts after the
cancel, so it spends no further credits; its batch ends once every run is finished or cancelled. When a batch starts running its runs are created and scheduled
on ``max_concurrent_runs`` slots (list scheduling, input order); each run executes its nodes one after the
other with deterministic per-node durations. Events (state changes, node completions) are processed in
global time order by :meth:`Engine.advance_to`, which every request calls first — so state is the same
whether or not somebody polled in between.

Provider credits are debited when a node execution *completes*. If the balance cannot cover a node at that
moment the execution fails with ``Not enough credits.`` (0 credits) and the run ends in ``error``; the batch
carries on and still ends ``success`` (see EMULATOR.md). Every node execution, errored ones included, also
bills the execution charge (0.01 credit, CARGO-DOCS 5.2), attributed to no node.

A ``filter`` node that evaluates false stops its run (status per the ``filter_stop_status`` variant); a play
with ``runCreationRule: "once"`` marks records that already ran in an earlier batch ``skipped`` without
executing anything (dedupe, CARGO-DOCS 4.1).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

from .entities import UsageEvent
from .failure_plan import FailurePlan
from .util import IdFactory, stable_hash, unit_float
from .workflows import NodeFailure, NodeSpec, WorkflowSpec, filter_passes, is_filter

PENDING_SECONDS = 1.0
QUERYING_SECONDS = 2.0
CANCEL_SECONDS = 1.0

FAILURE_MESSAGES = [
    "Provider returned 502 Bad Gateway",
    "Timed out after 30000ms waiting for provider response",
    "Rate limit exceeded on provider (429)",
    "No match found for the given input",
    "Provider returned an invalid payload",
]


def planned_failure(seed: int, rate: float, workflow_uuid: str, record_id: str, spec: WorkflowSpec
                    ) -> tuple[int, str] | None:
    """Whether a run of ``record_id`` fails by design, as ``(node_index, error_message)``, else ``None``.

    Pure function of (seed, workflow, record id): the same record fails in every batch of that workflow.
    Only paid (connector) nodes fail.
    """
    if rate <= 0 or unit_float(seed, "fail", workflow_uuid, record_id) >= rate:
        return None
    paid = [i for i, n in enumerate(spec.nodes) if n.cost > 0]
    if not paid:
        return None
    idx = paid[stable_hash(seed, "fail-node", workflow_uuid, record_id) % len(paid)]
    msg = FAILURE_MESSAGES[stable_hash(seed, "fail-msg", record_id) % len(FAILURE_MESSAGES)]
    return idx, f"{spec.nodes[idx].name} failed for record {record_id}: {msg}"


def forced_failure(seed: int, workflow_uuid: str, record_id: str, spec: WorkflowSpec, message: str
                   ) -> tuple[int, str] | None:
    """A failure the failure plan asks for: at the paid (connector) node :func:`planned_failure` would pick,
    with ``message``; ``None`` when the workflow has no paid node (only providers fail)."""
    paid = [i for i, n in enumerate(spec.nodes) if n.cost > 0]
    if not paid:
        return None
    idx = paid[stable_hash(seed, "fail-node", workflow_uuid, record_id) % len(paid)]
    return idx, f"{spec.nodes[idx].name} failed for record {record_id}: {message}"


def node_duration(seed: int, batch_uuid: str, record_id: str, node: NodeSpec) -> float:
    """Deterministic simulated duration (seconds) of one node execution."""
    u = unit_float(seed, "duration", batch_uuid, record_id, node.slug)
    return round(node.min_seconds + u * (node.max_seconds - node.min_seconds), 3)


@dataclass
class Step:
    """A planned node execution."""

    index: int
    start: float
    end: float


def planned_stop(spec: WorkflowSpec, record: dict[str, Any]) -> int | None:
    """Index of the first ``filter`` node that stops ``record`` (evaluates false), else ``None``."""
    for i, node in enumerate(spec.nodes):
        if is_filter(node) and not filter_passes(node, record):
            return i
    return None


@dataclass
class Execution:
    """A finished node execution."""

    index: int
    status: str  # success | error
    credits: int  # provider cost only (CARGO-DOCS 5.1)
    start: float
    end: float
    error: str | None
    data: dict[str, Any] | None
    config: dict[str, Any]
    title: str | None


@dataclass
class RunState:
    """A run (one input record through the workflow)."""

    uuid: str
    seq: int
    batch_uuid: str
    workflow_uuid: str
    release_uuid: str
    trace_uuid: str
    user_uuid: str | None
    record_id: str
    record_title: str
    record: dict[str, Any]
    created_at: float
    steps: list[Step]
    failure: tuple[int, str] | None
    input: dict[str, Any] = field(default_factory=dict)  # the record as sent (first node's resolved config)
    stop_at: int | None = None  # index of the filter node that stops this run
    cancel_at: float | None = None  # when ``runs/cancel`` selected this run (no node starts from then on)
    executions: list[Execution] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # pending | success | error | skipped | cancelled (running derived from time)
    error: str | None = None
    finished_at: float | None = None
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("success", "error", "cancelled", "skipped")


@dataclass
class BatchState:
    """A batch and its counters."""

    uuid: str
    seq: int
    workflow_uuid: str
    release_uuid: str
    user_uuid: str | None
    data: dict[str, Any]
    records: list[dict[str, Any]]
    created_at: float
    inputs: list[dict[str, Any]] = field(default_factory=list)  # records as sent, aligned with ``records``
    status: str = "pending"
    updated_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None
    runs_status: str | None = None
    run_uuids: list[str] = field(default_factory=list)
    runs_count: int = 0
    executed: int = 0  # runs that ended success or error (CARGO-DOCS 4.4)
    skipped: int = 0  # runs that ended skipped (dedupe, or a filter stop under filter_stop_status=skipped)
    failed: int = 0
    cancelled_runs: int = 0  # runs cancelled one by one (``runs/cancel``): finished, but not executed
    credits: int = 0  # provider credits
    executions: int = 0  # node executions (each billed 0.01 credit)
    cancel_at: float | None = None
    health_threshold: float = 50.0  # runsStatus turns unhealthy above this failed share (a play's healthThreshold)
    hidden: bool = False  # the internal carrier of a single run (POST /orchestration/runs): never listed

    @property
    def finished(self) -> bool:
        return self.status in ("success", "error", "cancelled", "skipped")


class EngineHost(Protocol):
    """What the engine reads from and writes to the workspace that owns it (the :class:`~.store.Store`).

    Declared here, so that the engine depends on this narrow interface and not on the store module (which
    builds the engine): no import cycle, and the engine's needs are listed in one place.
    """

    seed: int
    run_failure_rate: float
    max_concurrent_runs: int
    failure_plan: FailurePlan
    ids: IdFactory
    user_uuid: str
    deployed_release: dict[str, str]
    variants: dict[str, str]
    connectors: dict[str, dict[str, Any]]
    usage: list[UsageEvent]

    def spec_for_release(self, release_uuid: str) -> WorkflowSpec: ...

    def play_for_workflow(self, workflow_uuid: str) -> dict[str, Any] | None: ...

    def model_by_slug(self, slug: str) -> dict[str, Any]: ...

    def debit(self, amount: float) -> bool: ...

    def charge_execution(self) -> None: ...


class Engine:
    """Owns batches and runs and processes their events in time order."""

    def __init__(self, store: EngineHost) -> None:
        self.store = store
        self.batches: dict[str, BatchState] = {}
        self.runs: dict[str, RunState] = {}
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._seq = itertools.count()
        self._batch_seq = itertools.count()
        self._run_seq = itertools.count()
        self.now = 0.0
        # (release, integration, action, usage slug) -> (model uuid, connector uuid, credit usage slug) of a node's
        # usage events: what decides them (a slug alone does not: an agent and a variables node may share one)
        self._usage_keys: dict[tuple[str, str | None, str, str | None], tuple[str | None, str | None, str]] = {}
        self._handlers = {"querying": self._on_querying, "running": self._on_running, "step": self._on_step,
                          "cancelled": self._on_cancelled, "run_cancelled": self._on_run_cancelled}

    # ------------------------------------------------------------------ public API
    def create_batch(self, workflow_uuid: str, data: dict[str, Any], records: list[dict[str, Any]],
                     at: float, system: bool = False, inputs: list[dict[str, Any]] | None = None,
                     user_uuid: str | None = None) -> BatchState:
        """Register a batch whose input was already resolved to ``records``; it starts ``pending``.

        ``system=True`` marks a batch Cargo created itself (a play schedule): ``userUuid`` is null unless
        ``user_uuid`` names another user. ``inputs`` are the records as the caller sent them (default:
        ``records``).
        """
        s = self.store
        user = user_uuid if user_uuid is not None else (None if system else s.user_uuid)
        b = BatchState(uuid=s.ids.uuid(), seq=next(self._batch_seq), workflow_uuid=workflow_uuid,
                       release_uuid=s.deployed_release[workflow_uuid], user_uuid=user,
                       data=data, records=records, created_at=at, updated_at=at,
                       inputs=[dict(r) for r in (inputs if inputs is not None else records)],
                       health_threshold=self._health_threshold(workflow_uuid))
        self.batches[b.uuid] = b
        self._push(at + PENDING_SECONDS, "querying", b.uuid)
        return b

    def create_run(self, workflow_uuid: str, record: dict[str, Any], raw: dict[str, Any], at: float) -> RunState:
        """A single run outside any batch (``POST /orchestration/runs``): ``pending`` for PENDING_SECONDS,
        then executed like a batch run. It is carried by a hidden batch that no endpoint shows."""
        s = self.store
        b = BatchState(uuid=s.ids.uuid(), seq=-1, workflow_uuid=workflow_uuid,
                       release_uuid=s.deployed_release[workflow_uuid], user_uuid=s.user_uuid,
                       data={"kind": "records"}, records=[record], created_at=at, updated_at=at,
                       inputs=[dict(raw)], status="running", runs_count=1, hidden=True,
                       health_threshold=self._health_threshold(workflow_uuid))
        self.batches[b.uuid] = b
        self._launch(b, at, at + PENDING_SECONDS)
        return self.runs[b.run_uuids[0]]

    def cancel_batch(self, batch: BatchState, at: float) -> None:
        """Move a non-terminal batch to ``cancelling``; it becomes ``cancelled`` CANCEL_SECONDS later."""
        batch.status = "cancelling"
        batch.cancel_at = at
        batch.updated_at = at
        self._push(at + CANCEL_SECONDS, "cancelled", batch.uuid)

    def cancel_runs(self, runs: list[RunState], at: float) -> None:
        """``runs/cancel``: each unfinished run not already cancelling reads ``cancelling`` from ``at`` and becomes
        ``cancelled`` CANCEL_SECONDS later; no node of it starts from ``at`` on (a node already executing may
        still complete within that window, as in a batch cancel)."""
        for run in runs:
            if run.finished or run.cancel_at is not None or self.batches[run.batch_uuid].cancel_at is not None:
                continue
            run.cancel_at = run.updated_at = at
            self._push(at + CANCEL_SECONDS, "run_cancelled", run.uuid)

    def advance_to(self, t: float) -> None:
        """Process every event scheduled at or before ``t``."""
        heap, handlers, pop = self._heap, self._handlers, heapq.heappop
        while heap and heap[0][0] <= t:
            when, _, kind, ref, idx = pop(heap)
            self.now = when
            handlers[kind](when, ref, idx)
        self.now = max(self.now, t)

    # ------------------------------------------------------------------ events
    def _push(self, when: float, kind: str, ref: str, idx: int = 0) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), kind, ref, idx))

    def _on_querying(self, t: float, batch_uuid: str, _: int) -> None:
        b = self.batches[batch_uuid]
        if b.status != "pending":
            return
        b.status, b.updated_at = "querying", t
        self._push(t + QUERYING_SECONDS, "running", batch_uuid)

    def _on_running(self, t: float, batch_uuid: str, _: int) -> None:
        b = self.batches[batch_uuid]
        if b.status != "querying":
            return
        b.status, b.updated_at, b.runs_count = "running", t, len(b.records)
        self._launch(b, t, t)

    def _launch(self, b: BatchState, t: float, first_start: float) -> None:
        """Create the batch's runs at ``t`` and schedule them on the concurrency slots from ``first_start``."""
        s = self.store
        spec = s.spec_for_release(b.release_uuid)
        slots = [first_start] * max(1, min(s.max_concurrent_runs, len(b.records)))
        heapq.heapify(slots)
        seen = self._already_run(b, spec)
        for rec, raw in zip(b.records, b.inputs):
            rid = str(rec["_id"])
            skip = seen is not None and rid in seen
            stop = planned_stop(spec, rec)
            failure = self._failure(b, rec, spec, stop, counted=not skip)
            steps = [] if skip else _plan_steps(s.seed, b.uuid, rid, spec, _last_step(spec, failure, stop), slots)
            run = RunState(uuid=s.ids.uuid(), seq=next(self._run_seq), batch_uuid=b.uuid,
                           workflow_uuid=b.workflow_uuid, release_uuid=b.release_uuid, trace_uuid=s.ids.uuid(),
                           user_uuid=b.user_uuid, record_id=rid, record_title=str(rec.get("_title") or rid),
                           record=rec, created_at=t, steps=steps, failure=failure, updated_at=t,
                           input=dict(raw), stop_at=stop)
            self.runs[run.uuid] = run
            b.run_uuids.append(run.uuid)
            if skip:
                self._finish_run(run, b, t, "skipped", None)
            else:
                self._push(steps[0].end, "step", run.uuid, 0)
            if seen is not None:
                seen.add(rid)
        if not b.records or (self._settled(b) and b.status == "running"):
            self._finish_batch(b, t)

    def _failure(self, b: BatchState, rec: dict[str, Any], spec: WorkflowSpec, stop: int | None,
                 counted: bool) -> tuple[int, str] | None:
        """How a new run of ``rec`` fails, if it does: the failure plan decides for a planned record (and counts
        the failure when the run executes), ``run_failure_rate`` for the others. A failure after the node where
        a filter stops the run does not happen."""
        s = self.store
        rid = str(rec["_id"])
        entry = s.failure_plan.entry_for(b.workflow_uuid, rec)
        if entry is None:
            failure = planned_failure(s.seed, s.run_failure_rate, b.workflow_uuid, rid, spec)
        else:
            failure = forced_failure(s.seed, b.workflow_uuid, rid, spec, entry.message) if entry.due(rid) else None
        if failure is not None and stop is not None and failure[0] > stop:
            return None
        if failure is not None and entry is not None and counted:
            entry.count(rid)
        return failure

    def _already_run(self, b: BatchState, spec: WorkflowSpec) -> set[str] | None:
        """Dedupe (``checkToSkipRuns``): for a play with ``runCreationRule: "once"``, the record ids that
        already have a run not skipped or cancelled in an earlier batch of the workflow; ``None`` otherwise."""
        if spec.kind != "play" or spec.run_creation_rule != "once":
            return None
        return {r.record_id for r in self.runs.values()
                if r.workflow_uuid == b.workflow_uuid and r.batch_uuid != b.uuid
                and r.status not in ("skipped", "cancelled")}

    def _on_step(self, t: float, run_uuid: str, idx: int) -> None:
        run = self.runs[run_uuid]
        b = self.batches[run.batch_uuid]
        if run.finished or b.finished:
            return
        step = run.steps[idx]
        if _stopped_before(step, b.cancel_at, run.cancel_at):
            return  # never started: cancelled before it began
        spec = self.store.spec_for_release(run.release_uuid)
        node = spec.nodes[idx]
        config, data, error = self._compute(run, node, idx)
        credits, error = self._bill(t, run, b, node, error)
        run.configs[node.slug] = config
        title = None
        if error is None:
            run.context[node.slug] = data
            title = _title(node, data or {})
        run.executions.append(Execution(idx, "error" if error else "success", credits, step.start, t, error,
                                        None if error else data, config, title))
        run.updated_at = t
        b.updated_at = t
        self._after_step(t, run, b, spec, idx, error)

    def _compute(self, run: RunState, node: NodeSpec, idx: int
                 ) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
        """``(resolved config, output, error)`` of the run's execution of ``node`` (before billing)."""
        config: dict[str, Any] = {}
        data: dict[str, Any] | None = None
        error: str | None = None
        try:
            config, data = node.compute(run.record, run.context)
        except NodeFailure as exc:
            error = str(exc)
        if idx == 0 and node.action_slug == "start":
            config = dict(run.input)
        if error is None and run.failure and run.failure[0] == idx:
            error = run.failure[1]
        return config, data, error

    def _bill(self, t: float, run: RunState, b: BatchState, node: NodeSpec, error: str | None
              ) -> tuple[int, str | None]:
        """Debit the node's provider credits (a node the balance cannot cover fails ``Not enough credits.``)
        and bill the execution charge; ``(provider credits, error)``."""
        s = self.store
        credits = 0
        if error is None and node.cost > 0:
            if s.debit(node.cost):
                credits = node.cost
                b.credits += credits
                self._record_usage(t, run, node, credits)
            else:
                error = "Not enough credits."
        s.charge_execution()
        b.executions += 1
        self._record_usage(t, run, node, 1, unit="orchestration.executions", slug="error" if error else "success")
        return credits, error

    def _after_step(self, t: float, run: RunState, b: BatchState, spec: WorkflowSpec, idx: int,
                    error: str | None) -> None:
        """End the run, or schedule its next node. A node with ``fallbackOnFailure`` whose execution failed
        lets the run continue to its next node (CARGO-DOCS 4.5), so such a run can still end ``success``."""
        if error is not None and not spec.nodes[idx].fallback_on_failure:
            self._finish_run(run, b, t, "error", error)
        elif run.stop_at == idx:
            self._finish_run(run, b, t, self.store.variants["filter_stop_status"], None)
        elif idx == len(spec.nodes) - 1:
            self._finish_run(run, b, t, "success", None)
        else:
            nxt = run.steps[idx + 1]
            if not _stopped_before(nxt, b.cancel_at, run.cancel_at):
                self._push(nxt.end, "step", run.uuid, idx + 1)

    def _on_cancelled(self, t: float, batch_uuid: str, _: int) -> None:
        b = self.batches[batch_uuid]
        if b.status != "cancelling":
            return
        for ru in b.run_uuids:
            run = self.runs[ru]
            if not run.finished:
                run.status, run.finished_at, run.updated_at = "cancelled", t, t
        b.status, b.finished_at, b.updated_at = "cancelled", t, t

    def _on_run_cancelled(self, t: float, run_uuid: str, _: int) -> None:
        run = self.runs[run_uuid]
        if run.finished:  # its last node completed, or its batch was cancelled, in the meantime
            return
        b = self.batches[run.batch_uuid]
        run.status, run.finished_at, run.updated_at = "cancelled", t, t
        b.cancelled_runs += 1
        b.updated_at = t
        if self._settled(b) and b.status == "running":
            if b.cancelled_runs >= b.runs_count:  # nothing ran to the end (a single run's carrier, too)
                b.status, b.finished_at = "cancelled", t
            else:
                self._finish_batch(b, t)

    # ------------------------------------------------------------------ helpers
    def _health_threshold(self, workflow_uuid: str) -> float:
        """The play's ``healthThreshold`` (a share of failed runs, in %); 50 for a tool."""
        play = self.store.play_for_workflow(workflow_uuid)
        return 50.0 if play is None else float(play["healthThreshold"])

    @staticmethod
    def _settled(b: BatchState) -> bool:
        """Every run of the batch is finished (executed, skipped, or cancelled one by one)."""
        return b.executed + b.skipped + b.cancelled_runs >= b.runs_count

    def _finish_run(self, run: RunState, b: BatchState, t: float, status: str, error: str | None) -> None:
        run.status, run.error, run.finished_at, run.updated_at = status, error, t, t
        if status == "skipped":
            b.skipped += 1  # not executed (CARGO-DOCS 4.4); Batch.executedRunsCount per its variant
        else:
            b.executed += 1
        if status == "error":
            b.failed += 1
        b.runs_status = "unhealthy" if b.failed * 100.0 > b.health_threshold * b.executed else "healthy"
        if self._settled(b) and b.status == "running":
            self._finish_batch(b, t)

    def _finish_batch(self, b: BatchState, t: float) -> None:
        b.status, b.finished_at, b.updated_at = "success", t, t

    def _record_usage(self, t: float, run: RunState, node: NodeSpec, count: float,
                      unit: str = "billing.credits", slug: str | None = None) -> None:
        key = (run.release_uuid, node.integration_slug, node.action_slug, node.usage_slug)
        cached = self._usage_keys.get(key)
        if cached is None:
            cached = self._usage_keys[key] = self._usage_key(run.release_uuid, node)
        model_uuid, connector, credit_slug = cached
        self.store.usage.append(UsageEvent(t, unit, credit_slug if slug is None else slug, count, run.workflow_uuid,
                                           model_uuid, connector, node.integration_slug))

    def _usage_key(self, release_uuid: str, node: NodeSpec) -> tuple[str | None, str | None, str]:
        """``(model uuid, connector uuid, billing.credits slug)`` of a node's usage events (the workspace's
        models and connectors are fixed once seeded)."""
        s = self.store
        spec = s.spec_for_release(release_uuid)
        model_uuid = s.model_by_slug(spec.model_slug)["uuid"] if spec.model_slug else None
        connector = None
        if node.integration_slug:
            connector = next((c["uuid"] for c in s.connectors.values()
                              if c["integrationSlug"] == node.integration_slug), None)
        # billing.credits slug families (CARGO-DOCS 5.6)
        slug = node.usage_slug or (f"integration.{node.integration_slug}.action.{node.action_slug}"
                                   if node.integration_slug else f"native.{node.action_slug}")
        return model_uuid, connector, slug

    # ------------------------------------------------------------------ views
    def run_view_status(self, run: RunState, now: float) -> str:
        """RunStatus as seen at ``now``."""
        if run.finished:
            return run.status
        if run.cancel_at is not None or self.batches[run.batch_uuid].status == "cancelling":
            return "cancelling"
        return "running" if now >= run.steps[0].start else "pending"

    def in_progress_step(self, run: RunState, now: float) -> Step | None:
        """The step currently executing at ``now`` (shown as a ``pending`` execution), if any."""
        if run.finished:
            return None
        b = self.batches[run.batch_uuid]
        idx = len(run.executions)
        if idx >= len(run.steps):
            return None
        step = run.steps[idx]
        if step.start > now or _stopped_before(step, b.cancel_at, run.cancel_at):
            return None
        return step


def _plan_steps(seed: int, batch_uuid: str, record_id: str, spec: WorkflowSpec, last: int,
                slots: list[float]) -> list[Step]:
    """A run's node executions up to ``last``, one after the other from the earliest free slot (list
    scheduling, input order); the slot is busy until the last one ends."""
    cursor = heapq.heappop(slots)
    steps: list[Step] = []
    for i, node in enumerate(spec.nodes[:last + 1]):
        end = cursor + node_duration(seed, batch_uuid, record_id, node)
        steps.append(Step(i, cursor, end))
        cursor = end
    heapq.heappush(slots, cursor)
    return steps


def _last_step(spec: WorkflowSpec, failure: tuple[int, str] | None, stop: int | None) -> int:
    """Index of the last node a new run will execute: where it fails (unless that node has
    ``fallbackOnFailure``), where a filter stops it, or the exit node."""
    fail_at = failure[0] if failure is not None and not spec.nodes[failure[0]].fallback_on_failure else None
    return min(i for i in (fail_at, stop, len(spec.nodes) - 1) if i is not None)


def _stopped_before(step: Step, batch_cancel_at: float | None, run_cancel_at: float | None) -> bool:
    """Whether a cancel (of the batch or of the run) came at or before ``step`` would start."""
    return ((batch_cancel_at is not None and step.start >= batch_cancel_at)
            or (run_cancel_at is not None and step.start >= run_cancel_at))


def _title(node: NodeSpec, data: dict[str, Any]) -> str | None:
    if is_filter(node):
        return "Condition met" if data.get("result") else "Condition not met"
    if node.kind != "connector":
        return None
    parts = [f"{k}: {v}" for k, v in list(data.items())[:2]]
    return ", ".join(parts)[:120] or None
