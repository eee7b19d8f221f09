"""Batches: create (all play/tool data kinds), list, get, cancel, download (REFERENCE §3.4, §10)."""

from __future__ import annotations

from typing import Any

from .. import exports, filters, serialize
from ..engine import BatchState
from ..errors import ApiError, data_error
from ..server import Request, Router
from ..store import CHANGE_KINDS, Store
from ..util import canonical_json, stable_hash
from .common import as_bool, as_list, paginate, strict_keys

PLAY_KINDS = ("segment", "change", "filter", "recordIds")
TOOL_KINDS = ("records", "file")
CREATE_KINDS = ("segment", "change", "file", "filter", "runs", "recordIds", "records", "schedule", "form")


def _tool_record(store: Store, raw: dict[str, Any], form_slugs: list[str]) -> dict[str, Any]:
    """Give an inline tool record its ``_id`` / ``_title`` (see EMULATOR.md, unknown §11.14)."""
    rec = dict(raw)
    rid = rec.get("_id") or rec.get("id")
    if rid is None or rid == "":
        rid = f"rec_{stable_hash(canonical_json(raw)):016x}"
    rec["_id"] = str(rid)
    if not rec.get("_title"):
        title = next((rec[s] for s in form_slugs if rec.get(s) not in (None, "")), None)
        rec["_title"] = str(title) if title is not None else rec["_id"]
    return rec


def _resolve_play(store: Store, play: dict[str, Any], data: dict[str, Any]
                  ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    kind = data["kind"]
    model_uuid = play["modelUuid"]
    if kind == "segment":
        seg = store.segments.get(str(data.get("segmentUuid")))
        if seg is None:
            raise data_error("failedToGetSegment")
        if seg["fromPlay"]:
            raise data_error("segmentLinkedToPlay")
        if seg["modelUuid"] != model_uuid:
            raise data_error("invalidData", "Segment model does not match the play's model.")
        return store.segment_records(seg["uuid"]), {"kind": "segment", "segmentUuid": seg["uuid"]}
    if kind == "change":
        change = store.changes.get(str(data.get("changeUuid")))
        if change is None:
            raise data_error("invalidChange")
        seg = store.segments.get(change.wire["segmentUuid"])
        if seg is None:
            raise data_error("failedToGetSegmentChange")
        if seg["modelUuid"] != model_uuid:
            raise data_error("invalidChange")
        kinds = data.get("changeKinds")
        if not isinstance(kinds, list) or not kinds or any(k not in CHANGE_KINDS for k in kinds):
            raise data_error("invalidChangeKinds")
        records = [rec for kind_, rec in change.entries.values() if kind_ in kinds]
        stored = {"kind": "change", "changeUuid": change.wire["uuid"], "changeKinds": kinds,
                  "segmentUuid": seg["uuid"]}
        return records, stored
    if kind == "filter":
        if data.get("modelUuid") != model_uuid:
            raise data_error("invalidData", "modelUuid does not match the play's model.")
        flt = data.get("filter")
        try:
            records = filters.apply(store.model_records(model_uuid), flt, data.get("sort"), data.get("limit"),
                                    segments=store._segment_ids)
        except filters.FilterError as exc:
            raise data_error("invalidData", f"Invalid filter: {exc}") from None
        stored = {"kind": "filter", "modelUuid": model_uuid}
        stored.update({k: data[k] for k in ("filter", "sort", "limit") if data.get(k) is not None})
        return records, stored
    # recordIds
    if data.get("modelUuid") != model_uuid:
        raise data_error("invalidData", "modelUuid does not match the play's model.")
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
        raise data_error("invalidData")
    table = store.records[model_uuid]
    records = [table[str(i)] for i in dict.fromkeys(str(i) for i in ids) if str(i) in table]
    return records, {"kind": "recordIds", "modelUuid": model_uuid, "ids": [str(i) for i in ids]}


def _resolve_tool(store: Store, workflow_uuid: str, batch_key: str, data: dict[str, Any]
                  ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Records (with ``_id``/``_title``), the stored ``data`` and the inputs as sent (or as mapped)."""
    spec = store.spec_for(workflow_uuid)
    slugs = [f["slug"] for f in spec.form_fields]
    if data["kind"] == "records":
        raw = data.get("records")
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise data_error("invalidData")
        s3 = f"workspaces/{store.workspace_uuid}/batches/{batch_key}/records.json"
        return [_tool_record(store, r, slugs) for r in raw], {"kind": "records", "s3Filename": s3}, raw
    file_name = data.get("s3Filename")
    if not isinstance(file_name, str) or file_name not in store.files:
        raise data_error("invalidData", "File not found.")
    mappings = data.get("mappings") or {}
    if not isinstance(mappings, dict):
        raise data_error("invalidData")
    columns = set().union(*(r.keys() for r in store.files[file_name])) if store.files[file_name] else set()
    rename: dict[str, str] = {}  # file column -> form field slug
    for k, v in mappings.items():
        if k in slugs and v in columns:
            rename[str(v)] = k
        elif v in slugs and k in columns:
            rename[str(k)] = str(v)
    rows = [{rename.get(c, c): val for c, val in row.items()} for row in store.files[file_name]]
    stored: dict[str, Any] = {"kind": "file", "s3Filename": file_name}
    if data.get("mappings") is not None:
        stored["mappings"] = mappings
    return [_tool_record(store, r, slugs) for r in rows], stored, rows


def create_batch(req: Request) -> dict[str, Any]:
    """POST /orchestration/batches"""
    store = req.store
    body = req.json_obj()
    wf_uuid = body.get("workflowUuid")
    if not wf_uuid:
        if body.get("nodes") is not None:
            raise ApiError("invalidReleaseOrCustomNodes", "Ad-hoc nodes are not supported by the emulator.")
        raise ApiError("workflowNotFound")
    if wf_uuid not in store.workflows:
        raise ApiError("workflowNotFound")
    if body.get("releaseUuid") is not None and store.releases.get(body["releaseUuid"], {}).get(
            "workflowUuid") != wf_uuid:
        raise ApiError("invalidReleaseOrCustomNodes")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("kind") not in CREATE_KINDS:
        raise data_error("invalidData")
    spec = store.spec_for(wf_uuid)
    allowed = PLAY_KINDS if spec.kind == "play" else TOOL_KINDS
    if data["kind"] not in allowed:
        raise ApiError("invalidDataKind")
    if store.credits_remaining <= 0:
        raise ApiError("notEnoughCredits")
    if spec.kind == "play":
        play = store.play_for_workflow(wf_uuid)
        assert play is not None
        records, stored = _resolve_play(store, play, data)
        inputs = records
    else:
        records, stored, inputs = _resolve_tool(store, wf_uuid, store.ids.hex(16), data)
    if not records:
        raise data_error("noRecords")
    b = store.engine.create_batch(wf_uuid, stored, records, req.now, inputs=inputs)
    return {"batch": serialize.batch(store, b)}


def _get(store: Store, uuid: str) -> BatchState:
    b = store.engine.batches.get(uuid)
    if b is None:
        raise ApiError("batchNotFound")
    return b


def get_batch(req: Request) -> dict[str, Any]:
    """GET /orchestration/batches/{uuid}"""
    return {"batch": serialize.batch(req.store, _get(req.store, req.params["uuid"]))}


def list_batches(req: Request) -> dict[str, Any]:
    """GET /orchestration/batches/list — newest first, default limit 100."""
    q = req.query
    wfs = as_list(q.get("workflowUuids"))
    uuids = as_list(q.get("uuids"))
    statuses = as_list(q.get("statuses"))
    included = as_list(q.get("includedDataKinds"))
    excluded = as_list(q.get("excludedDataKinds"))
    has_runs, finished, skipped = as_bool(q.get("hasRuns")), as_bool(q.get("isFinished")), as_bool(
        q.get("isSkipped"))
    out = []
    for b in ordered_batches(req.store):
        if wfs and b.workflow_uuid not in wfs or uuids and b.uuid not in uuids:
            continue
        if statuses and b.status not in statuses:
            continue
        if q.get("releaseUuid") and b.release_uuid != q["releaseUuid"]:
            continue
        if any(q.get(k) for k in ("parentBatchUuid", "parentRunUuid", "parentNodeUuid")):
            continue  # top-level batches only in the emulator
        if has_runs is not None and (len(b.run_uuids) > 0) != has_runs:
            continue
        if finished is not None and b.finished != finished:
            continue
        if skipped is not None and (b.status == "skipped") != skipped:
            continue
        if included and b.data["kind"] not in included or excluded and b.data["kind"] in excluded:
            continue
        out.append(b)
    return {"batches": [serialize.batch(req.store, b) for b in paginate(out, q)]}


def ordered_batches(store: Store) -> list[BatchState]:
    """Batches in the order of the ``batch_list_order`` variant (``unordered``: a fixed hash order)."""
    order = store.variants["batch_list_order"]
    items = list(store.engine.batches.values())
    if order == "newest_first":
        return sorted(items, key=lambda b: b.seq, reverse=True)
    if order == "oldest_first":
        return sorted(items, key=lambda b: b.seq)
    return sorted(items, key=lambda b: stable_hash("batch-order", b.uuid))


def cancel_batch(req: Request) -> dict[str, Any]:
    """POST /orchestration/batches/{uuid}/cancel → 200 ``{}``."""
    b = _get(req.store, req.params["uuid"])
    if b.finished or b.status == "cancelling":
        raise ApiError("batchAlreadyFinished")
    req.store.engine.cancel_batch(b, req.now)
    return {}


def resolve_output_slug(store: Store, workflow_uuid: str, slug: Any) -> str:
    """``outputNodeSlug`` or the default (the release's terminal node); a slug no node has → "node not found"
    (CARGO-DOCS 1.4)."""
    spec = store.spec_for(workflow_uuid)
    if slug is None or slug == "":
        return spec.output_node.slug
    if not isinstance(slug, str) or not spec.has_slug(slug):
        raise ApiError("nodeNotFound", f"Node not found: {slug}.")
    return slug


def download_batch(req: Request) -> dict[str, Any]:
    """POST /orchestration/batches/{uuid}/download body ``{outputNodeSlug?}`` → ``{url}``: one row per batch
    record (CARGO-DOCS 1.2), file layout per the variants."""
    store = req.store
    b = _get(store, req.params["uuid"])
    body = req.json_obj()
    strict_keys(body, ("outputNodeSlug",))
    if not b.finished:
        raise ApiError("batchNotFinished")
    spec = store.spec_for(b.workflow_uuid)
    slug = resolve_output_slug(store, b.workflow_uuid, body.get("outputNodeSlug"))
    attached = store.downloads.attached(b.uuid)  # a file given by CargoEmulator.attach_output_file
    if attached is not None and slug == spec.output_node.slug:
        path, fmt = attached
        return {"url": req.base_url + store.downloads.create_from_file(path, fmt)}
    columns, rows = exports.batch_rows(store, b, slug)
    v = store.variants
    return {"url": req.base_url + store.downloads.create(
        columns, rows, v["batch_download_format"], gzip=v["download_gzip"], json_shape=v["json_shape"])}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("POST", "/orchestration/batches", create_batch)
    router.add("GET", "/orchestration/batches/list", list_batches)
    router.add("GET", "/orchestration/batches/{uuid}", get_batch)
    router.add("POST", "/orchestration/batches/{uuid}/cancel", cancel_batch)
    router.add("POST", "/orchestration/batches/{uuid}/download", download_batch)


def schedule_play_batch(store: Store, play: dict[str, Any], change_kinds: tuple[str, ...], at: float) -> BatchState:
    """What Cargo's play scheduler does on a tick: snapshot the play's segment and enrol the
    records of the new change in a ``schedule`` batch created by no user (``userUuid`` null)."""
    change = store.snapshot_segment(play["segmentUuid"], at)
    entries = store.changes[change["uuid"]].entries
    records = [rec for kind, rec in entries.values() if kind in change_kinds]
    stored = {
        "kind": "schedule", "modelUuid": play["modelUuid"], "segmentUuid": play["segmentUuid"],
        "changeKinds": list(change_kinds), "changeUuid": change["uuid"], "skip": False,
        "totalRecordsCount": change["totalRecordsCount"], "updatedRecordsCount": change["updatedRecordsCount"],
        "removedRecordsCount": change["removedRecordsCount"], "addedRecordsCount": change["addedRecordsCount"],
        "unchangedRecordsCount": change["unchangedRecordsCount"],
    }
    return store.engine.create_batch(play["workflowUuid"], stored, records, at, system=True)
