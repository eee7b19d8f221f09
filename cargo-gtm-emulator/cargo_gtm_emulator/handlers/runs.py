"""Runs: create, list, count, metrics, download-outputs, get, cancel (REFERENCE §3.5)."""

from __future__ import annotations

from typing import Any

from .. import exports, serialize
from ..backend import runs as backend
from ..backend.batches import resolve_output_slug
from ..backend.runs import TIME_KEYS, RunQuery
from ..engine import RunState
from ..errors import ApiError, unrecognized_keys, zod_enum_error, zod_error
from ..routing import Request, Router
from ..store import Store
from .common import RUN_STATUSES, as_bool, as_list, as_statuses, as_time, paginate

EXPORT_LIMIT = 10_000

#: Top-level body keys each endpoint declares (REFERENCE §3.5); anything else → 400 unrecognized_keys.
RUN_FILTER_KEYS = ("workflowUuid", "userUuid", "batchUuid", "releaseUuid", "statuses", "parentBatchUuid",
                   "parentUuid", "parentNodeUuid", "isGroupParent", "recordId", "recordTitle", "recordTitleOrId",
                   "isFinished", "executionsFilter", "createdAfter", "createdBefore", "updatedAfter",
                   "updatedBefore")
#: ``isFinished`` is accepted here by the router and checked by :func:`_export_request` against the
#: ``is_finished_exports`` variant: by default the API rejects it with ``unrecognized_keys`` (CARGO-DOCS 2.6).
DOWNLOAD_OUTPUTS_KEYS = ("workflowUuid", "outputNodeSlug", "format", "batchUuid", "releaseUuid", "statuses",
                         "parentBatchUuid", "parentUuid", "parentNodeUuid", "isGroupParent", "recordId",
                         "recordTitle", "recordTitleOrId", "executionsFilter", "createdAfter", "createdBefore",
                         "limit", "offset", "isFinished")
DOWNLOAD_RUNS_KEYS = ("workflowUuid", "uuids", "batchUuid", "releaseUuid", "statuses", "parentBatchUuid",
                      "parentUuid", "parentNodeUuid", "isGroupParent", "recordId", "recordTitle", "recordTitleOrId",
                      "isFinished", "executionsFilter", "createdAfter", "createdBefore", "updatedAfter",
                      "updatedBefore")


def _export_request(req: Request) -> tuple[dict[str, Any], str, str | None]:
    """The body of a download-outputs request, its file format and its output node slug, checked."""
    body = req.json_obj()
    if "isFinished" in body and req.store.variants["is_finished_exports"] == "rejected":
        raise unrecognized_keys(["isFinished"])  # CARGO-DOCS 2.6, 10.1: until cargo#5579 is deployed
    wf = body.get("workflowUuid")
    if not wf or wf not in req.store.workflows:
        raise ApiError("workflowNotFound")
    fmt = body.get("format") or "csv"
    if fmt not in ("csv", "json"):
        raise zod_enum_error("format", fmt, ("csv", "json"))
    return body, fmt, resolve_output_slug(req.store, wf, body.get("outputNodeSlug"))


def _export_url(req: Request, store: Store, runs: list[RunState], slug: str | None, fmt: str) -> dict[str, Any]:
    """``{url}`` of a per-run outputs file (download-outputs of runs or records), in the layout variants."""
    columns, rows = exports.output_rows(store, runs, slug, req.now)
    v = store.variants
    return {"url": req.base_url + store.downloads.create(columns, rows, fmt, gzip=v["download_gzip"],
                                                         json_shape=v["json_shape"])}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def run_query(body: dict[str, Any], variants: dict[str, str]) -> RunQuery:
    """Parse the run filter fields of a request body."""
    return RunQuery(
        workflow_uuid=_text(body.get("workflowUuid")), batch_uuid=_text(body.get("batchUuid")),
        release_uuid=_text(body.get("releaseUuid")), user_uuid=_text(body.get("userUuid")),
        uuids=as_list(body.get("uuids")),
        sub_runs=bool(any(body.get(k) for k in ("parentBatchUuid", "parentUuid", "parentNodeUuid"))
                      or as_bool(body.get("isGroupParent"))),
        record_id=_text(body.get("recordId")), record_title=_text(body.get("recordTitle")),
        record_title_or_id=_text(body.get("recordTitleOrId")), statuses=as_statuses(body.get("statuses"), RUN_STATUSES, variants),
        is_finished=as_bool(body.get("isFinished")), times={k: as_time(body.get(k), k) for k in TIME_KEYS},
        executions_filter=body.get("executionsFilter"))


def select_runs(store: Store, body: dict[str, Any], now: float) -> list[RunState]:
    """Runs matching the documented filter fields of ``body``, newest first."""
    return backend.select_runs(store, run_query(body, store.variants), now)


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
    body, fmt, slug = _export_request(req)
    selection = {k: v for k, v in body.items() if k not in ("limit", "offset", "format", "outputNodeSlug")}
    runs = select_runs(store, selection, req.now)
    runs = sorted(runs, key=lambda r: r.seq)
    if body.get("limit") is not None or body.get("offset") is not None:
        runs = paginate(runs, body, default_limit=EXPORT_LIMIT + 1, max_limit=EXPORT_LIMIT + 1)
    if not runs:
        raise ApiError("noRunsFound")
    if len(runs) > EXPORT_LIMIT:
        raise ApiError("tooManyRuns")
    return _export_url(req, store, runs, slug, fmt)


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


def create_run(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs → ``{run}``: one record through a **tool**, asynchronously (the run comes back
    ``pending`` with ``batchUuid: null`` and ``releaseUuid`` set, CARGO-DOCS 11.1); a play → ``playNotCompatible``."""
    run = backend.create_single_run(req.store, req.json_obj(), req.now)
    return {"run": serialize.run(req.store, run, req.now)}


_RECORD_TO_RUN = {"ids": None, "runUuids": "uuids", "title": "recordTitle", "titleOrId": "recordTitleOrId",
                  "parentRunUuid": "parentUuid"}


def download_record_outputs(req: Request) -> dict[str, Any]:
    """POST /orchestration/records/download-outputs → ``{url}``: one row per **record id** (its most recent
    run), same columns as ``runs/download-outputs``; csv (default) or json; ``noRecordsFound`` /
    ``tooManyRecords`` (> 10 000)."""
    store = req.store
    body, fmt, slug = _export_request(req)
    selection = {(_RECORD_TO_RUN.get(k) or k): v for k, v in body.items()
                 if k not in ("limit", "offset", "format", "outputNodeSlug", "ids")}
    runs = backend.latest_per_record(select_runs(store, selection, req.now), as_list(body.get("ids")))
    if body.get("limit") is not None or body.get("offset") is not None:
        runs = paginate(runs, body, default_limit=EXPORT_LIMIT + 1, max_limit=EXPORT_LIMIT + 1)
    if not runs:
        raise ApiError("noRecordsFound")
    if len(runs) > EXPORT_LIMIT:
        raise ApiError("tooManyRecords")
    return _export_url(req, store, runs, slug, fmt)


RECORD_OUTPUTS_KEYS = ("workflowUuid", "outputNodeSlug", "format", "ids", "runUuids", "title", "titleOrId",
                       "releaseUuid", "batchUuid", "statuses", "parentBatchUuid", "parentRunUuid", "parentNodeUuid",
                       "isGroupParent", "executionsFilter", "createdAfter", "createdBefore", "limit", "offset",
                       "isFinished")

#: ``runs/cancel`` takes ``workflowUuid`` plus exactly one of two shapes: ``uuids``, or these filter fields.
CANCEL_FILTER_KEYS = ("recordId", "recordTitle", "recordTitleOrId", "releaseUuid", "batchUuid", "parentBatchUuid",
                      "parentUuid", "parentNodeUuid", "isGroupParent", "executionsFilter", "createdAfter",
                      "createdBefore")


def _required_string(body: dict[str, Any], key: str) -> None:
    if not isinstance(body.get(key), str):
        received = "undefined" if key not in body else type(body[key]).__name__
        raise zod_error([{"code": "invalid_type", "expected": "string", "received": received, "path": [key],
                          "message": "Required" if key not in body else "Expected string"}])


def cancel_runs(req: Request) -> dict[str, Any]:
    """POST /orchestration/runs/cancel ``{workflowUuid, uuids}`` or ``{workflowUuid, <filter fields>}`` → 200
    ``{}`` (void); the selected unfinished runs go ``cancelling`` then ``cancelled``. Mixing the two shapes →
    400 ``invalid_union`` (the type forbids it); an unknown workflow → ``failedToStart``."""
    body = req.json_obj()
    _required_string(body, "workflowUuid")
    uuids = body.get("uuids")
    if "uuids" in body and (not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids)):
        raise zod_error([{"code": "invalid_type", "expected": "array", "received": type(uuids).__name__,
                          "path": ["uuids"], "message": "Expected array of strings"}])
    mixed = sorted(k for k in CANCEL_FILTER_KEYS if k in body)
    if "uuids" in body and mixed:
        raise zod_error([{"code": "invalid_union", "path": [], "unionErrors": [],
                          "message": "Invalid input: uuids cannot be combined with " + ", ".join(mixed)}])
    backend.cancel_runs(req.store, run_query(body, req.store.variants), req.now)
    return {}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("POST", "/orchestration/runs", create_run, ("workflowUuid", "releaseUuid", "nodes", "data"))
    router.add("POST", "/orchestration/records/download-outputs", download_record_outputs, RECORD_OUTPUTS_KEYS)
    router.add("POST", "/orchestration/runs/list", list_runs, (*RUN_FILTER_KEYS, "limit", "offset"))
    router.add("POST", "/orchestration/runs/count", count_runs, RUN_FILTER_KEYS)
    router.add("POST", "/orchestration/runs/metrics", run_metrics,
               ("workflowUuid", "releaseUuid", "batchUuid", "createdAfter", "createdBefore"))
    router.add("POST", "/orchestration/runs/download-outputs", download_outputs, DOWNLOAD_OUTPUTS_KEYS)
    router.add("POST", "/orchestration/runs/download", download_runs, DOWNLOAD_RUNS_KEYS)
    router.add("POST", "/orchestration/runs/cancel", cancel_runs, ("workflowUuid", "uuids", *CANCEL_FILTER_KEYS))
    router.add("GET", "/orchestration/runs/{uuid}", get_run)
