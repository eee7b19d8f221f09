"""Batches: create (all play/tool data kinds), list, get, cancel, download (REFERENCE §3.4, §10).

Thin: parse the request, call :mod:`..backend.batches`, serialize."""

from __future__ import annotations

from typing import Any

from .. import serialize
from ..backend import batches as backend
from ..routing import Request, Router
from .common import BATCH_STATUSES, as_bool, as_list, as_statuses, paginate


def create_batch(req: Request) -> dict[str, Any]:
    """POST /orchestration/batches"""
    return {"batch": serialize.batch(req.store, backend.create_batch_from(req.store, req.json_obj(), req.now))}


def get_batch(req: Request) -> dict[str, Any]:
    """GET /orchestration/batches/{uuid}"""
    return {"batch": serialize.batch(req.store, backend.visible_batch(req.store, req.params["uuid"]))}


def _query(q: dict[str, Any], variants: dict[str, str]) -> backend.BatchQuery:
    return backend.BatchQuery(
        workflow_uuids=as_list(q.get("workflowUuids")), uuids=as_list(q.get("uuids")),
        statuses=as_statuses(q.get("statuses"), BATCH_STATUSES, variants), release_uuid=q.get("releaseUuid") or None,
        child_of=any(q.get(k) for k in ("parentBatchUuid", "parentRunUuid", "parentNodeUuid")),
        has_runs=as_bool(q.get("hasRuns")), is_finished=as_bool(q.get("isFinished")),
        is_skipped=as_bool(q.get("isSkipped")), included_kinds=as_list(q.get("includedDataKinds")),
        excluded_kinds=as_list(q.get("excludedDataKinds")))


def list_batches(req: Request) -> dict[str, Any]:
    """GET /orchestration/batches/list — newest first, default limit 100."""
    found = backend.list_batches(req.store, _query(req.query, req.store.variants))
    return {"batches": [serialize.batch(req.store, b) for b in paginate(found, req.query)]}


def cancel_batch(req: Request) -> dict[str, Any]:
    """POST /orchestration/batches/{uuid}/cancel → 200 ``{}``."""
    backend.cancel_batch(req.store, req.params["uuid"], req.now)
    return {}


def download_batch(req: Request) -> dict[str, Any]:
    """POST /orchestration/batches/{uuid}/download body ``{outputNodeSlug?}`` → ``{url}``."""
    slug = req.json_obj().get("outputNodeSlug")
    return {"url": req.base_url + backend.download_path(req.store, req.params["uuid"], slug)}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("POST", "/orchestration/batches", create_batch, ("workflowUuid", "releaseUuid", "nodes", "data"))
    router.add("GET", "/orchestration/batches/list", list_batches)
    router.add("GET", "/orchestration/batches/{uuid}", get_batch)
    router.add("POST", "/orchestration/batches/{uuid}/cancel", cancel_batch, ())
    router.add("POST", "/orchestration/batches/{uuid}/download", download_batch, ("outputNodeSlug",))
