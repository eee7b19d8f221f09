"""Segments and changes (REFERENCE §4)."""

from __future__ import annotations

from typing import Any

from .. import filters, serialize
from ..backend import segmentation
from ..errors import ApiError, zod_error
from ..routing import Request, Router
from ..store import CHANGE_KINDS
from .common import as_bool, as_int, paginate


def list_segments(req: Request) -> dict[str, Any]:
    """GET /segmentation/segments/list"""
    return {"segments": list(req.store.segments.values())}


def get_segment(req: Request) -> dict[str, Any]:
    """GET /segmentation/segments/{uuid}"""
    seg = req.store.segments.get(req.params["uuid"])
    if seg is None:
        raise ApiError("segmentNotFound")
    return {"segment": seg}


def _matching_records(store: Any, model_uuid: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's records that ``body``'s filter (sorted, limited) selects; a bad filter is ``invalidFilter``."""
    try:
        return filters.apply(store.model_records(model_uuid), body.get("filter"), body.get("sort"),
                             body.get("limit"), segments=store._segment_ids, columns=store.column_types(model_uuid),
                             date_precision=store.variants["date_precision"])
    except filters.FilterError as exc:
        raise ApiError("invalidFilter", f"Invalid filter: {exc}") from None


def fetch_segment(req: Request) -> dict[str, Any]:
    """POST /segmentation/segments/fetch → ``{records, count, columns, isRefreshing}``.

    ``limit`` caps the segment (count included); ``fetchingLimit``/``fetchingOffset`` page the records
    (default page size 100).
    """
    store = req.store
    body = req.json_obj()
    model_uuid = body.get("modelUuid")
    if model_uuid not in store.models:
        raise ApiError("modelNotFound")
    if "filter" not in body:
        raise ApiError("invalidFilter")
    records = _matching_records(store, str(model_uuid), body)
    offset = as_int(body.get("fetchingOffset"), "fetchingOffset") or 0
    limit = as_int(body.get("fetchingLimit"), "fetchingLimit")
    limit = 100 if limit is None else min(limit, 1000)
    return {"records": records[offset: offset + limit], "count": len(records),
            "columns": serialize.segmentation_columns(store, str(model_uuid)), "isRefreshing": False}


def list_changes(req: Request) -> dict[str, Any]:
    """GET /segmentation/changes/list (segmentUuid, notEmpty, hasRecords, limit, offset) — newest first."""
    q = req.query
    if not q.get("segmentUuid"):  # required (CARGO-DOCS 8.2, 10.2)
        raise zod_error([{"code": "invalid_type", "expected": "string", "received": "undefined",
                          "path": ["segmentUuid"], "message": "Required"}])
    not_empty = as_bool(q.get("notEmpty"))
    has = q.get("hasRecords")
    if has is not None and has not in CHANGE_KINDS:
        raise ApiError(None, "hasRecords must be a ChangeKind.", status=400)
    out = []
    for c in reversed(list(req.store.changes.values())):
        w = c.wire
        if q.get("segmentUuid") and w["segmentUuid"] != q["segmentUuid"]:
            continue
        if not_empty is not None:
            moved = w["addedRecordsCount"] + w["updatedRecordsCount"] + w["removedRecordsCount"]
            if (moved > 0) != not_empty:
                continue
        if has and w[f"{has}RecordsCount"] == 0:
            continue
        out.append(w)
    return {"changes": paginate(out, q)}


def get_change(req: Request) -> dict[str, Any]:
    """GET /segmentation/changes/{uuid}"""
    c = req.store.changes.get(req.params["uuid"])
    if c is None:
        raise ApiError("changeNotFound")
    return {"change": c.wire}


def fetch_change(req: Request) -> dict[str, Any]:
    """POST /segmentation/changes/{uuid}/fetch body ``{kinds, limit?, offset?}`` → ``{records, count, columns}``."""
    store = req.store
    c = store.changes.get(req.params["uuid"])
    if c is None:
        raise ApiError("changeNotFound")
    seg = store.segments.get(c.wire["segmentUuid"])
    if seg is None:
        raise ApiError("segmentNotFound")
    body = req.json_obj()
    kinds = body.get("kinds")
    if kinds is None:  # required (CARGO-DOCS 8.2): a zod "expected array, received undefined"
        raise zod_error([{"code": "invalid_type", "expected": "array", "received": "undefined",
                          "path": ["kinds"], "message": "Required"}])
    if not isinstance(kinds, list) or any(k not in CHANGE_KINDS for k in kinds):
        raise ApiError(None, "kinds must be an array of ChangeKind.", status=400)
    records, columns = segmentation.change_rows(store, c, seg, kinds)
    return {"records": paginate(records, body), "count": len(records), "columns": columns}


def download_segment(req: Request) -> dict[str, Any]:
    """POST /segmentation/segments/download body ``{modelUuid, filter, sort?, limit?}`` → ``{urls: [url]}``:
    a model + filter (not a segment uuid), exported as one CSV of the matching records with the model's
    columns; the signed URL expires (CARGO-DOCS 8.5)."""
    store = req.store
    body = req.json_obj()
    model_uuid = body.get("modelUuid")
    if model_uuid not in store.models:
        raise ApiError("modelNotFound")
    if "filter" not in body:
        raise zod_error([{"code": "invalid_type", "expected": "object", "received": "undefined",
                          "path": ["filter"], "message": "Required"}])
    records = _matching_records(store, str(model_uuid), body)
    columns = [c["slug"] for c in store.models[str(model_uuid)]["columns"]]
    return {"urls": [req.base_url + store.downloads.create(columns, records, "csv", prefix="segments")]}


def fetch_records(req: Request) -> dict[str, Any]:
    """POST /segmentation/records/fetch body ``{modelUuid, ids, resetCache?}`` → ``{records}``; an unknown id
    is simply absent (``records: []``, not an error, CARGO-DOCS 8.5)."""
    store = req.store
    body = req.json_obj()
    for key, expected in (("modelUuid", "string"), ("ids", "array")):
        if key not in body:
            raise zod_error([{"code": "invalid_type", "expected": expected, "received": "undefined",
                              "path": [key], "message": "Required"}])
    table = store.records.get(str(body["modelUuid"]))
    if table is None:
        raise ApiError("modelNotFound")
    ids = body["ids"] if isinstance(body["ids"], list) else []
    return {"records": [dict(table[str(i)]) for i in ids if str(i) in table]}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("GET", "/segmentation/segments/list", list_segments)
    router.add("POST", "/segmentation/records/fetch", fetch_records, ("modelUuid", "ids", "resetCache"))
    router.add("POST", "/segmentation/segments/download", download_segment, ("modelUuid", "filter", "sort", "limit"))
    router.add("POST", "/segmentation/segments/fetch", fetch_segment,
               ("modelUuid", "filter", "sort", "limit", "fetchingLimit", "fetchingOffset", "enrich", "sync"))
    router.add("GET", "/segmentation/segments/{uuid}", get_segment)
    router.add("GET", "/segmentation/changes/list", list_changes)
    router.add("GET", "/segmentation/changes/{uuid}", get_change)
    router.add("POST", "/segmentation/changes/{uuid}/fetch", fetch_change, ("kinds", "limit", "offset"))
