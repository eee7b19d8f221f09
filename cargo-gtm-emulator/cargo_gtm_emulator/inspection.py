"""Read-only views of the emulator's state for tests: plain frozen dataclasses and dicts, so that tests
assert on what happened without reaching into ``emu.store.engine``.

Used through :meth:`CargoEmulator.batches`, :meth:`CargoEmulator.runs` and :meth:`CargoEmulator.requests`.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import serialize

if TYPE_CHECKING:
    from .engine import BatchState, RunState
    from .store import Store


@dataclass(frozen=True)
class BatchInfo:
    """One batch as created (times are epoch seconds of the emulator's clock)."""

    uuid: str
    workflow_uuid: str
    workflow_name: str  # the play's or tool's name
    workflow_kind: str  # "play" | "tool"
    release_uuid: str  # the release the batch runs with (kept across redeploys)
    user_uuid: str | None
    data_kind: str  # "records", "segment", "schedule", ...
    status: str
    record_ids: tuple[str, ...]  # the batch records' ``_id``, in batch order
    inputs: tuple[dict[str, Any], ...]  # the records as the caller sent them
    runs_count: int
    failed_runs_count: int
    provider_credits: float
    executions: int  # node executions (each billed 0.01 credit)
    created_at: float
    finished_at: float | None
    wire: dict[str, Any]  # the Batch object the API returns now


@dataclass(frozen=True)
class RunInfo:
    """One run (one record through the workflow)."""

    uuid: str
    batch_uuid: str | None  # ``None`` for a single run (``POST /orchestration/runs``)
    workflow_uuid: str
    release_uuid: str
    record_id: str
    record_title: str
    status: str  # as the API reports it now
    error: str | None
    input: dict[str, Any]
    outputs: dict[str, Any]  # node slug -> that node's output data (executed nodes only)
    node_statuses: tuple[tuple[str, str], ...]  # (node slug, execution status), in execution order
    created_at: float
    finished_at: float | None


def workflow_uuid(store: Store, ref: str) -> str:
    """A workflow uuid from a workflow uuid, or a play's / tool's uuid or name; ``KeyError`` otherwise."""
    if ref in store.workflows:
        return ref
    for entity in (*store.plays.values(), *store.tools.values()):
        if ref in (entity["uuid"], entity["name"]):
            return str(entity["workflowUuid"])
    raise KeyError(f"no workflow, play or tool {ref!r}")


def _workflow_name(store: Store, wf_uuid: str) -> tuple[str, str]:
    for kind, table in (("play", store.plays), ("tool", store.tools)):
        for entity in table.values():
            if entity["workflowUuid"] == wf_uuid:
                return str(entity["name"]), kind
    return wf_uuid, "unknown"


def batch_info(store: Store, b: BatchState) -> BatchInfo:
    """The :class:`BatchInfo` of one batch."""
    name, kind = _workflow_name(store, b.workflow_uuid)
    return BatchInfo(
        uuid=b.uuid, workflow_uuid=b.workflow_uuid, workflow_name=name, workflow_kind=kind,
        release_uuid=b.release_uuid, user_uuid=b.user_uuid, data_kind=str(b.data.get("kind")), status=b.status,
        record_ids=tuple(str(r.get("_id")) for r in b.records), inputs=tuple(copy.deepcopy(b.inputs)),
        runs_count=b.runs_count, failed_runs_count=b.failed, provider_credits=float(b.credits),
        executions=b.executions, created_at=b.created_at, finished_at=b.finished_at,
        wire=serialize.batch(store, b))


def batches(store: Store, workflow: str | None = None, status: str | None = None) -> list[BatchInfo]:
    """Visible batches, oldest first, optionally of one workflow (uuid or play/tool name) and status."""
    wf = workflow_uuid(store, workflow) if workflow is not None else None
    found = sorted((b for b in store.engine.batches.values() if not b.hidden), key=lambda b: b.seq)
    return [batch_info(store, b) for b in found
            if (wf is None or b.workflow_uuid == wf) and (status is None or b.status == status)]


def run_info(store: Store, r: RunState) -> RunInfo:
    """The :class:`RunInfo` of one run."""
    spec = store.spec_for_release(r.release_uuid)
    hidden = store.engine.batches[r.batch_uuid].hidden
    return RunInfo(
        uuid=r.uuid, batch_uuid=None if hidden else r.batch_uuid, workflow_uuid=r.workflow_uuid,
        release_uuid=r.release_uuid, record_id=r.record_id, record_title=r.record_title,
        status=store.engine.run_view_status(r, store.clock.now()), error=r.error, input=copy.deepcopy(r.input),
        outputs={spec.nodes[ex.index].slug: copy.deepcopy(ex.data) for ex in r.executions if ex.data is not None},
        node_statuses=tuple((spec.nodes[ex.index].slug, ex.status) for ex in r.executions),
        created_at=r.created_at, finished_at=r.finished_at)


def runs(store: Store, batch_uuid: str | None = None) -> list[RunInfo]:
    """Runs in creation order, optionally of one batch (``KeyError`` for an unknown batch)."""
    if batch_uuid is not None and batch_uuid not in store.engine.batches:
        raise KeyError(f"no batch {batch_uuid}")
    found = sorted(store.engine.runs.values(), key=lambda r: r.seq)
    return [run_info(store, r) for r in found if batch_uuid is None or r.batch_uuid == batch_uuid]


def requests(entries: list[dict[str, Any]], method: str | None = None, path: str | None = None
             ) -> list[dict[str, Any]]:
    """Copies of the log entries with this method (any case) and path (exact or ``fnmatch`` glob)."""
    out = []
    for entry in entries:
        if method is not None and entry["method"] != method.upper():
            continue
        if path is not None and entry["path"] != path and not fnmatch.fnmatchcase(entry["path"], path):
            continue
        out.append(copy.deepcopy(entry))
    return out
