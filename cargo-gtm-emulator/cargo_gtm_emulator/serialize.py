"""Wire-format (JSON-ready dict) builders for dynamic entities, checked against ``@cargo-ai/types``.

Static seeded entities are stored already in wire format; this module renders batches, runs, executions,
run metrics and the workflow's derived fields (``lastBatch``, ``deployedRelease``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engine import BatchState, Execution, RunState
from .store import EXECUTION_CHARGE
from .util import credit_number, iso

if TYPE_CHECKING:
    from .store import Store


def batch_credits(store: Store, b: BatchState) -> int | float:
    """``Batch.creditsUsedCount`` per the ``batch_credits`` variant (default: provider cost only)."""
    total = float(b.credits)
    if store.variants["batch_credits"] == "with_execution_charge":
        total += b.executions * EXECUTION_CHARGE
    return credit_number(total)


def executed_runs(store: Store, b: BatchState) -> int:
    """``Batch.executedRunsCount`` per the ``executed_runs_count`` variant: runs that ended ``success`` or
    ``error`` (CARGO-DOCS 4.4, the default), or those plus ``skipped`` runs."""
    return b.executed + (b.skipped if store.variants["executed_runs_count"] == "with_skipped" else 0)


def batch(store: Store, b: BatchState) -> dict[str, Any]:
    """``OrchestrationTypes.Batch`` (``userUuid`` / ``data`` omitted under the ``absent`` variants)."""
    out = {
        "uuid": b.uuid, "workspaceUuid": store.workspace_uuid, "workflowUuid": b.workflow_uuid,
        "userUuid": b.user_uuid, "releaseUuid": b.release_uuid, "nodes": None,
        "temporalWorkflowId": f"batch-{b.uuid}", "traceUuid": None, "data": b.data,
        "errorMessage": b.error, "status": b.status, "runsStatus": b.runs_status, "runsCount": b.runs_count,
        "executedRunsCount": executed_runs(store, b), "failedRunsCount": b.failed,
        "creditsUsedCount": batch_credits(store, b),
        "createdAt": iso(b.created_at), "updatedAt": iso(b.updated_at), "finishedAt": iso(b.finished_at),
    }
    if store.variants["batch_user_uuid"] == "absent":
        del out["userUuid"]
    if store.variants["batch_data_echo"] == "absent":
        del out["data"]
    return out


def _execution_base(store: Store, run: RunState, index: int) -> dict[str, Any]:
    spec = store.spec_for_release(run.release_uuid)
    release = store.releases[run.release_uuid]
    node_wire = release["nodes"][index]
    node = spec.nodes[index]
    nxt = node_wire["childrenUuids"][0] if node_wire["childrenUuids"] else None
    out: dict[str, Any] = {
        "nodeUuid": node_wire["uuid"], "nodeSlug": node.slug, "nodeBatchUuid": None, "nodeRunUuid": None,
        "nodeMessageUuid": None, "nodeChildIndex": 0 if nxt else None, "nextNodeUuid": nxt,
        "iconUrl": node.icon_url, "nodeWaitUntilFinished": False, "nodeKind": node.kind,
    }
    if node.kind in ("agent", "tool"):  # no action slug; the agent / tool and its release (Execution type)
        wire_key, key = ("agentUuid", "nodeAgentUuid") if node.kind == "agent" else ("toolUuid", "nodeToolUuid")
        out.update({key: node_wire.get(wire_key), "nodeReleaseUuid": node_wire.get("releaseUuid"),
                    "nodeWaitUntilFinished": bool(node_wire.get("waitUntilFinished"))})
    else:
        out["nodeActionSlug"] = node.action_slug
    if node.kind == "connector":
        out["nodeConnectorUuid"] = node_wire["connectorUuid"]
        out["nodeIntegrationSlug"] = node.integration_slug
    return out


def spec_node_falls_back(store: Store, run: RunState, index: int) -> bool:
    """Whether node ``index`` of the run's release continues on failure (``fallbackOnFailure``)."""
    return store.spec_for_release(run.release_uuid).nodes[index].fallback_on_failure


def execution(store: Store, run: RunState, ex: Execution) -> dict[str, Any]:
    """A finished ``OrchestrationTypes.Execution``."""
    out = _execution_base(store, run, ex.index)
    if ex.status == "error":  # the run stops here, or goes on with the fallback child (CARGO-DOCS 4.5)
        fallback = store.releases[run.release_uuid]["nodes"][ex.index].get("fallbackChildUuid")
        out["nodeChildIndex"] = None
        out["nextNodeUuid"] = fallback if spec_node_falls_back(store, run, ex.index) else None
    out.update({"status": ex.status, "errorMessage": ex.error, "title": ex.title,
                "creditsUsedCount": ex.credits, "startedAt": iso(ex.start), "updatedAt": iso(ex.end),
                "finishedAt": iso(ex.end)})
    return out


def run(store: Store, r: RunState, now: float) -> dict[str, Any]:
    """``OrchestrationTypes.Run`` as of ``now`` (an executing node appears as a ``pending`` execution)."""
    engine = store.engine
    executions = [execution(store, r, ex) for ex in r.executions]
    step = engine.in_progress_step(r, now)
    updated = r.updated_at
    if step is not None:
        pending = _execution_base(store, r, step.index)
        pending.update({"status": "pending", "errorMessage": None, "title": None, "creditsUsedCount": 0,
                        "startedAt": iso(step.start), "updatedAt": iso(step.start), "finishedAt": None})
        executions.append(pending)
        updated = max(updated, step.start)
    ws = store.workspace_uuid
    return {
        "uuid": r.uuid, "workspaceUuid": ws, "workflowUuid": r.workflow_uuid, "userUuid": r.user_uuid,
        "releaseUuid": r.release_uuid, "nodes": None,
        "batchUuid": None if engine.batches[r.batch_uuid].hidden else r.batch_uuid, "traceUuid": r.trace_uuid,
        "temporalWorkflowId": f"run-{r.uuid}", "recordId": r.record_id, "recordTitle": r.record_title,
        "contextS3Filename": f"workspaces/{ws}/runs/{r.uuid}/context.json",
        "computedConfigsS3Filename": f"workspaces/{ws}/runs/{r.uuid}/computedConfigs.json",
        "parentUuid": None, "parentNodeUuid": None, "parentBatchUuid": None, "parentAgentUuid": None,
        "parentChatUuid": None, "parentMessageUuid": None, "isGroupParent": None,
        "status": engine.run_view_status(r, now), "errorMessage": r.error, "executions": executions,
        "createdAt": iso(r.created_at), "updatedAt": iso(updated), "finishedAt": iso(r.finished_at),
        "deletedAt": None,
    }


def workflow(store: Store, wf: dict[str, Any]) -> dict[str, Any]:
    """``OrchestrationTypes.Workflow`` with ``lastBatch`` and ``deployedRelease`` filled."""
    out = dict(wf)
    batches = [b for b in store.engine.batches.values() if b.workflow_uuid == wf["uuid"] and not b.hidden]
    last = max(batches, key=lambda b: b.seq) if batches else None
    out["lastBatch"] = None if last is None else {
        "uuid": last.uuid, "status": last.status, "runsStatus": last.runs_status, "errorMessage": last.error,
        "createdAt": iso(last.created_at), "finishedAt": iso(last.finished_at)}
    rel = store.release_for(wf["uuid"])
    out["deployedRelease"] = {k: rel[k] for k in (
        "uuid", "userUuid", "description", "version", "nodes", "formFields", "templateSlug", "deployedAt",
        "createdAt")}
    return out


def segmentation_columns(store: Store, model_uuid: str) -> list[dict[str, Any]]:
    """``SegmentationTypes.Column[]`` of a model."""
    return [{"slug": c["slug"], "type": c["type"], "label": c["label"], "modelUuid": model_uuid}
            for c in store.models[model_uuid]["columns"]]


def run_metrics(store: Store, workflow_uuid: str, runs: list[RunState], now: float) -> list[dict[str, Any]]:
    """``RunMetric[]``: one entry per node of the workflow's deployed release. A run of an earlier release
    counts under the node with the same uuid (a redeploy keeps the uuids of the nodes it keeps)."""
    by_node = {node["uuid"]: {
        "nodeUuid": node["uuid"], "totalExecutionsCount": 0, "idleExecutionsCount": 0, "pendingExecutionsCount": 0,
        "runningExecutionsCount": 0, "successExecutionsCount": 0, "errorExecutionsCount": 0,
        "cancellingExecutionsCount": 0, "cancelledExecutionsCount": 0, "skippedExecutionsCount": 0,
        "creditsUsedCount": 0} for node in store.release_for(workflow_uuid)["nodes"]}
    for r in runs:  # one pass over the runs (a node of another release that the deployed one lacks: not counted)
        run_nodes = store.releases[r.release_uuid]["nodes"]
        for ex in r.executions:
            m = by_node.get(run_nodes[ex.index]["uuid"])
            if m is not None:
                m["successExecutionsCount" if ex.status == "success" else "errorExecutionsCount"] += 1
                m["creditsUsedCount"] += ex.credits
        step = store.engine.in_progress_step(r, now)
        m = by_node.get(run_nodes[step.index]["uuid"]) if step is not None else None
        if m is not None:
            m["runningExecutionsCount"] += 1
    for m in by_node.values():
        m["totalExecutionsCount"] = sum(v for k, v in m.items() if k.endswith("ExecutionsCount")
                                        and k != "totalExecutionsCount")
    return list(by_node.values())
