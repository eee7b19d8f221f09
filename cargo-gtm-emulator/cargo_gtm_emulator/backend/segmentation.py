"""Segmentation: the rows of a segment change (REFERENCE §5, CARGO-DOCS 8.2)."""

from __future__ import annotations

from typing import Any

from .. import serialize
from ..entities import ChangeState
from ..store import Store


def change_rows(store: Store, change: ChangeState, segment: dict[str, Any], kinds: list[str]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(records, columns)`` of a change's entries of ``kinds``: rows start with ``_kind, _id, _title,
    _time``, then the model's columns (CARGO-DOCS 8.2)."""
    model_uuid = segment["modelUuid"]
    time_col = store.models[model_uuid].get("timeColumnSlug")
    records = [{"_kind": kind, "_id": rec.get("_id"), "_title": rec.get("_title"),
                "_time": rec.get(time_col) if time_col else None,
                **{k: v for k, v in rec.items() if k not in ("_id", "_title")}}
               for kind, rec in change.entries.values() if kind in kinds]
    meta = [{"slug": "_kind", "type": "string", "label": "_kind", "modelUuid": model_uuid},
            {"slug": "_time", "type": "date", "label": "_time", "modelUuid": model_uuid}]
    columns = serialize.segmentation_columns(store, model_uuid)
    columns = [meta[0], *[c for c in columns if c["slug"] in ("_id", "_title")], meta[1],
               *[c for c in columns if c["slug"] not in ("_id", "_title")]]
    return records, columns
