"""Batches: the domain rules behind the batch endpoints and the control plane (create from every data kind,
lookup, listing filters and order, cancel, output node choice, scheduled play batches).

Handlers parse the request, call these, and serialize what they return (REFERENCE §3.4, §10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import exports, filters
from ..engine import BatchState
from ..entities import CHANGE_KINDS
from ..errors import ApiError, data_error, unrecognized_keys
from ..store import Store
from ..util import canonical_json, stable_hash

if TYPE_CHECKING:
    from ..workflows import WorkflowSpec

PLAY_KINDS = ("segment", "change", "filter", "recordIds")
TOOL_KINDS = ("records", "file")
CREATE_KINDS = ("segment", "change", "file", "filter", "runs", "recordIds", "records", "schedule", "form")
#: Keys the create payload's ``data`` declares per kind (``CreateBatchPayload``, REFERENCE §9.1).
DATA_KEYS = {"segment": ("kind", "segmentUuid"), "change": ("kind", "changeUuid", "changeKinds"),
             "filter": ("kind", "modelUuid", "filter", "sort", "limit"), "recordIds": ("kind", "modelUuid", "ids"),
             "records": ("kind", "records"), "file": ("kind", "s3Filename", "mappings")}


def _check_data_keys(store: Store, data: dict[str, Any]) -> None:
    """Keys inside ``data`` its kind does not declare: stripped (ignored, the default) or, under the
    ``batch_data_unknown_keys=rejected`` variant, a 400 ``unrecognized_keys`` at path ``["data"]``."""
    if store.variants["batch_data_unknown_keys"] != "rejected":
        return
    unknown = [k for k in data if k not in DATA_KEYS.get(data["kind"], (k,))]
    if unknown:
        raise unrecognized_keys(unknown, ["data"])


def tool_record(store: Store, raw: dict[str, Any], form_slugs: list[str]) -> dict[str, Any]:
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


Resolved = tuple[list[dict[str, Any]], dict[str, Any]]


def _play_segment(store: Store, model_uuid: str, data: dict[str, Any]) -> Resolved:
    seg = store.segments.get(str(data.get("segmentUuid")))
    if seg is None:
        raise data_error("failedToGetSegment")
    if seg["fromPlay"]:
        raise data_error("segmentLinkedToPlay")
    if seg["modelUuid"] != model_uuid:
        raise data_error("invalidData", "Segment model does not match the play's model.")
    return store.segment_records(seg["uuid"]), {"kind": "segment", "segmentUuid": seg["uuid"]}


def _play_change(store: Store, model_uuid: str, data: dict[str, Any]) -> Resolved:
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


def _same_model(data: dict[str, Any], model_uuid: str) -> None:
    if data.get("modelUuid") != model_uuid:
        raise data_error("invalidData", "modelUuid does not match the play's model.")


def _play_filter(store: Store, model_uuid: str, data: dict[str, Any]) -> Resolved:
    _same_model(data, model_uuid)
    try:
        records = filters.apply(store.model_records(model_uuid), data.get("filter"), data.get("sort"),
                                data.get("limit"), segments=store._segment_ids,
                                columns=store.column_types(model_uuid), date_precision=store.variants["date_precision"])
    except filters.FilterError as exc:
        raise data_error("invalidData", f"Invalid filter: {exc}") from None
    stored = {"kind": "filter", "modelUuid": model_uuid}
    stored.update({k: data[k] for k in ("filter", "sort", "limit") if data.get(k) is not None})
    return records, stored


def _play_record_ids(store: Store, model_uuid: str, data: dict[str, Any]) -> Resolved:
    _same_model(data, model_uuid)
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
        raise data_error("invalidData")
    table = store.records[model_uuid]
    records = [table[str(i)] for i in dict.fromkeys(str(i) for i in ids) if str(i) in table]
    return records, {"kind": "recordIds", "modelUuid": model_uuid, "ids": [str(i) for i in ids]}


_PLAY_RESOLVERS = {"segment": _play_segment, "change": _play_change, "filter": _play_filter,
                   "recordIds": _play_record_ids}


def _resolve_play(store: Store, play: dict[str, Any], data: dict[str, Any]) -> Resolved:
    """Records and the stored ``data`` of a play batch (kinds ``segment``, ``change``, ``filter``,
    ``recordIds``; the caller has checked the kind)."""
    return _PLAY_RESOLVERS[data["kind"]](store, play["modelUuid"], data)


def _file_rename(mappings: dict[str, Any], slugs: list[str], columns: set[str]) -> dict[str, str]:
    """File column -> form field slug; a ``mappings`` pair may be written either way (ledger row 46)."""
    rename: dict[str, str] = {}
    for k, v in mappings.items():
        if k in slugs and v in columns:
            rename[str(v)] = k
        elif v in slugs and k in columns:
            rename[str(k)] = str(v)
    return rename


def _tool_file(store: Store, slugs: list[str], data: dict[str, Any]
               ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    file_name = data.get("s3Filename")
    if not isinstance(file_name, str) or file_name not in store.files:
        raise data_error("invalidData", "File not found.")
    mappings = data.get("mappings") or {}
    if not isinstance(mappings, dict):
        raise data_error("invalidData")
    columns = set().union(*(r.keys() for r in store.files[file_name])) if store.files[file_name] else set()
    rename = _file_rename(mappings, slugs, columns)
    rows = [{rename.get(c, c): val for c, val in row.items()} for row in store.files[file_name]]
    stored: dict[str, Any] = {"kind": "file", "s3Filename": file_name}
    if data.get("mappings") is not None:
        stored["mappings"] = mappings
    return [tool_record(store, r, slugs) for r in rows], stored, rows


def _resolve_tool(store: Store, workflow_uuid: str, batch_key: str, data: dict[str, Any]
                  ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Records (with ``_id``/``_title``), the stored ``data`` and the inputs as sent (or as mapped)."""
    spec = store.spec_for(workflow_uuid)
    slugs = [f["slug"] for f in spec.form_fields]
    if data["kind"] != "records":
        return _tool_file(store, slugs, data)
    raw = data.get("records")
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise data_error("invalidData")
    s3 = f"workspaces/{store.workspace_uuid}/batches/{batch_key}/records.json"
    return [tool_record(store, r, slugs) for r in raw], {"kind": "records", "s3Filename": s3}, raw


def create_batch_from(store: Store, body: dict[str, Any], now: float, user_uuid: str | None = None) -> BatchState:
    """Validate a create body and register the batch (``user_uuid``: created by another user; control
    plane only)."""
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
    _check_data_keys(store, data)
    if store.credits_remaining <= 0:
        raise ApiError("notEnoughCredits")
    store.check_concurrency()
    if spec.kind == "play":
        play = store.play_for_workflow(wf_uuid)
        assert play is not None
        records, stored = _resolve_play(store, play, data)
        inputs = records
    else:
        records, stored, inputs = _resolve_tool(store, wf_uuid, store.ids.hex(16), data)
    if not records:
        raise data_error("noRecords")
    return store.engine.create_batch(wf_uuid, stored, records, now, inputs=inputs, user_uuid=user_uuid)


def get_batch(store: Store, uuid: str) -> BatchState:
    b = store.engine.batches.get(uuid)
    if b is None or b.hidden:
        raise ApiError("batchNotFound")
    return b


def ordered_batches(store: Store) -> list[BatchState]:
    """Batches in the order of the ``batch_list_order`` variant (``unordered``: a fixed hash order)."""
    order = store.variants["batch_list_order"]
    items = [b for b in store.engine.batches.values() if not b.hidden]
    if order == "newest_first":
        return sorted(items, key=lambda b: b.seq, reverse=True)
    if order == "oldest_first":
        return sorted(items, key=lambda b: b.seq)
    return sorted(items, key=lambda b: stable_hash("batch-order", b.uuid))


def resolve_output_slug(store: Store, workflow_uuid: str, slug: Any, spec: WorkflowSpec | None = None
                        ) -> str | None:
    """``outputNodeSlug``, or ``None`` for the default node (see :func:`..exports.default_output`); a slug no
    node has → "node not found" (CARGO-DOCS 1.4). ``spec``: the release to read (default: the workflow's
    deployed one)."""
    spec = spec if spec is not None else store.spec_for(workflow_uuid)
    if slug is None or slug == "":
        return None
    if not isinstance(slug, str) or not spec.has_slug(slug):
        raise ApiError("nodeNotFound", f"Node not found: {slug}.")
    return slug


def schedule_play_batch(store: Store, play: dict[str, Any], change_kinds: tuple[str, ...], at: float,
                        user_uuid: str | None = None) -> BatchState:
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
    return store.engine.create_batch(play["workflowUuid"], stored, records, at, system=True, user_uuid=user_uuid)


def visible_batch(store: Store, uuid: str) -> BatchState:
    """The batch ``uuid`` as the API sees it (single-run carriers do not exist); else ``batchNotFound``."""
    b = store.engine.batches.get(uuid)
    if b is None or b.hidden:
        raise ApiError("batchNotFound")
    return b


@dataclass(frozen=True)
class BatchQuery:
    """The filters of ``GET /orchestration/batches/list`` (all optional; lists match any item)."""

    workflow_uuids: list[Any] | None = None
    uuids: list[Any] | None = None
    statuses: list[Any] | None = None
    release_uuid: str | None = None
    child_of: bool = False  # parentBatchUuid / parentRunUuid / parentNodeUuid given: the emulator has none
    has_runs: bool | None = None
    is_finished: bool | None = None
    is_skipped: bool | None = None
    included_kinds: list[Any] | None = None
    excluded_kinds: list[Any] | None = None

    def matches(self, b: BatchState) -> bool:
        """Whether ``b`` passes every filter."""
        checks = (
            not self.workflow_uuids or b.workflow_uuid in self.workflow_uuids,
            not self.uuids or b.uuid in self.uuids,
            not self.statuses or b.status in self.statuses,
            not self.release_uuid or b.release_uuid == self.release_uuid,
            not self.child_of,  # top-level batches only in the emulator
            self.has_runs is None or (len(b.run_uuids) > 0) == self.has_runs,
            self.is_finished is None or b.finished == self.is_finished,
            self.is_skipped is None or (b.status == "skipped") == self.is_skipped,
            not self.included_kinds or b.data["kind"] in self.included_kinds,
            not self.excluded_kinds or b.data["kind"] not in self.excluded_kinds,
        )
        return all(checks)


def list_batches(store: Store, query: BatchQuery) -> list[BatchState]:
    """Visible batches matching ``query``, in the order of the ``batch_list_order`` variant."""
    return [b for b in ordered_batches(store) if query.matches(b)]


def cancel_batch(store: Store, uuid: str, now: float) -> None:
    """Cancel a running batch; a finished or already cancelling one is ``batchAlreadyFinished``."""
    b = visible_batch(store, uuid)
    if b.finished or b.status == "cancelling":
        raise ApiError("batchAlreadyFinished")
    store.engine.cancel_batch(b, now)


def download_path(store: Store, uuid: str, output_node_slug: Any) -> str:
    """Export a finished batch's rows (one per batch record, CARGO-DOCS 1.2; layout per the variants) and
    return the presigned path (``/_files/…``). The output node defaults to the terminal node of the
    release the batch ran with."""
    b = visible_batch(store, uuid)
    if not b.finished:
        raise ApiError("batchNotFinished")
    spec = store.spec_for_release(b.release_uuid)
    slug = resolve_output_slug(store, b.workflow_uuid, output_node_slug, spec)
    attached = store.downloads.attached(b.uuid)  # a file given by CargoEmulator.attach_output_file
    if attached is not None and slug in (None, spec.output_node.slug):
        path, fmt = attached
        return store.downloads.create_from_file(path, fmt)
    columns, rows = exports.batch_rows(store, b, slug)
    v = store.variants
    return store.downloads.create(columns, rows, v["batch_download_format"], gzip=v["download_gzip"],
                                  json_shape=v["json_shape"])
