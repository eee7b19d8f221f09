"""Runs: list, count, metrics, download-outputs, get (REFERENCE §3.5)."""

from __future__ import annotations

from typing import Any

from .. import exports, serialize
from ..engine import RunState
from ..errors import ApiError, zod_enum_error
from ..server import Request, Router
from ..store import Store
from .batches import resolve_output_slug
from .common import as_bool, as_list, as_time, paginate

EXPORT_LIMIT = 10_000


def _node_status(store: Store, run: RunState, slug: str, now: float) -> tuple[str, str | None]:
    spec = store.spec_for(run.workflow_uuid)
    for ex in run.executions:
        if spec.nodes[ex.index].slug == slug:
            return ex.status, (ex.title if ex.status == "success" else ex.error)
    step = store.engine.in_progress_step(run, now)
    if step is not None and spec.nodes[step.index].slug == slug:
        return "pending", None
    return "absent", None


def _executions_filter(store: Store, run: RunState, flt: Any, now: float) -> bool:
    if not flt:
        return True
    if not isinstance(flt, dict):
        raise ApiError(None, "Invalid executionsFilter.", status=400)

    def cond_ok(c: dict[str, Any]) -> bool:
        status, text = _node_status(store, run, str(c.get("nodeSlug")), now)
        if status != c.get("status"):
            return False
        value = c.get("value")
        return not value or (text is not None and str(value).lower() in text.lower())

    def combine(conj: Any, results: list[bool]) -> bool:
        if not results:
            return True
        return all(results) if conj == "and" else any(results)

    groups = [combine(g.get("conjonction"), [cond_ok(c) for c in g.get("conditions", [])])
              for g in flt.get("groups", [])]
    return combine(flt.get("conjonction"), groups)


def select_runs(store: Store, body: dict[str, Any], now: float) -> list[RunState]:
    """Runs matching the documented filter fields, newest first."""
    statuses = as_list(body.get("statuses"))
    uuids = as_list(body.get("uuids"))
    finished = as_bool(body.get("isFinished"))
    group_parent = as_bool(body.get("isGroupParent"))
    times = {k: as_time(body.get(k), k) for k in ("createdAfter", "createdBefore", "updatedAfter", "updatedBefore")}
    out = []
    engine = store.engine
    for run in engine.runs.values():
        if body.get("workflowUuid") and run.workflow_uuid != body["workflowUuid"]:
            continue
        if body.get("batchUuid") and run.batch_uuid != body["batchUuid"]:
            continue
        if body.get("releaseUuid") and run.release_uuid != body["releaseUuid"]:
            continue
        if body.get("userUuid") and run.user_uuid != body["userUuid"]:
            continue
        if uuids is not None and run.uuid not in uuids:
            continue
        if any(body.get(k) for k in ("parentBatchUuid", "parentUuid", "parentNodeUuid")) or group_parent:
            continue  # no sub-runs in the emulator
        if body.get("recordId") and run.record_id != str(body["recordId"]):
            continue
        if body.get("recordTitle") and str(body["recordTitle"]).lower() not in run.record_title.lower():
            continue
        rto = body.get("recordTitleOrId")
        if rto and run.record_id != str(rto) and str(rto).lower() not in run.record_title.lower():
            continue
        status = engine.run_view_status(run, now)
        if statuses and status not in statuses:
            continue
        if finished is not None and run.finished != finished:
            continue
        if times["createdAfter"] is not None and run.created_at < times["createdAfter"]:
            continue
        if times["createdBefore"] is not None and run.created_at > times["createdBefore"]:
            continue
        if times["updatedAfter"] is not None and run.updated_at < times["updatedAfter"]:
            continue
        if times["updatedBefore"] is not None and run.updated_at > times["updatedBefore"]:
            continue
        if not _executions_filter(store, run, body.get("executionsFilter"), now):
            continue
        out.append(run)
    out.sort(key=lambda r: (r.created_at, r.seq), reverse=True)
    return out


def list_runs(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs/list → ``{runs, count}`` (count = total before paging)."""
    body = req.json_obj()
    runs = select_runs(req.store, body, req.now)
    page = paginate(runs, body)
    return {"runs": [serialize.run(req.store, r, req.now) for r in page], "count": len(runs)}


def count_runs(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs/count"""
    return {"count": len(select_runs(req.store, req.json_obj(), req.now))}


def run_metrics(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs/metrics → one RunMetric per node of the deployed release."""
    body = req.json_obj()
    wf = body.get("workflowUuid")
    if not wf or wf not in req.store.workflows:
        raise ApiError("workflowNotFound")
    flt = {k: body.get(k) for k in ("workflowUuid", "releaseUuid", "batchUuid", "createdAfter", "createdBefore")}
    runs = select_runs(req.store, flt, req.now)
    return {"runMetrics": serialize.run_metrics(req.store, wf, runs, req.now)}


def download_outputs(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs/download-outputs → ``{url}``: one row per run, the nine ``_`` columns +
    ``input`` + ``output`` (CARGO-DOCS 2.1–2.4); csv (default) or json; ``outputNodeSlug`` optional."""
    store = req.store
    body = req.json_obj()
    wf = body.get("workflowUuid")
    if not wf or wf not in store.workflows:
        raise ApiError("workflowNotFound")
    fmt = body.get("format") or "csv"
    if fmt not in ("csv", "json"):
        raise zod_enum_error("format", fmt, ("csv", "json"))
    slug = resolve_output_slug(store, wf, body.get("outputNodeSlug"))
    selection = {k: v for k, v in body.items() if k not in ("limit", "offset", "format", "outputNodeSlug")}
    runs = select_runs(store, selection, req.now)
    runs = sorted(runs, key=lambda r: r.seq)
    if body.get("limit") is not None or body.get("offset") is not None:
        runs = paginate(runs, body, default_limit=EXPORT_LIMIT + 1, max_limit=EXPORT_LIMIT + 1)
    if not runs:
        raise ApiError("noRunsFound")
    if len(runs) > EXPORT_LIMIT:
        raise ApiError("tooManyRuns")
    columns, rows = exports.output_rows(store, runs, slug, req.now)
    v = store.variants
    return {"url": req.base_url + store.downloads.create(columns, rows, fmt, gzip=v["download_gzip"],
                                                         json_shape=v["json_shape"])}


def download_runs(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs/download → ``{url}`` of a gzipped CSV: the nine ``_`` columns, then one column
    per node slug holding that execution's title (CARGO-DOCS 3.1)."""
    store = req.store
    body = req.json_obj()
    wf = body.get("workflowUuid")
    if not wf or wf not in store.workflows:
        raise ApiError("workflowNotFound")
    slugs = store.spec_for(wf).unique_slugs()
    if not slugs:  # CARGO-DOCS 3.2: the query is built per node slug
        raise ApiError(None, "Internal server error.", status=500)
    runs = sorted(select_runs(store, body, req.now), key=lambda r: r.seq)
    columns, rows = exports.title_rows(store, runs, slugs, req.now)
    return {"url": req.base_url + store.downloads.create(columns, rows, "csv", gzip="file")}


def get_run(req: Request) -> dict[str, Any]:
    """GET /orchestration/runs/{uuid} → ``{run, runContext, runComputedConfigs}`` keyed by node slug."""
    run = req.store.engine.runs.get(req.params["uuid"])
    if run is None:
        raise ApiError("runNotFound")
    return {"run": serialize.run(req.store, run, req.now), "runContext": dict(run.context),
            "runComputedConfigs": dict(run.configs)}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("POST", "/orchestration/runs/list", list_runs)
    router.add("POST", "/orchestration/runs/count", count_runs)
    router.add("POST", "/orchestration/runs/metrics", run_metrics)
    router.add("POST", "/orchestration/runs/download-outputs", download_outputs)
    router.add("POST", "/orchestration/runs/download", download_runs)
    router.add("GET", "/orchestration/runs/{uuid}", get_run)
