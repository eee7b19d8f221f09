"""Build and check batch input (``data``) before anything is sent to Cargo.

A batch spends credits as soon as it is created, so everything that can be checked
locally is checked here, with an error that says what to change.

Example:
    >>> filter_data("model-uuid", {"conjonction": "and", "groups": []}, limit=10)
    {'kind': 'filter', 'modelUuid': 'model-uuid', 'filter': {'conjonction': 'and', 'groups': []}, 'limit': 10}
    >>> validate_filter({"conjunction": "and", "groups": []})
    Traceback (most recent call last):
    ...
    dagster_cargo.client.errors.CargoInputError: Filter at filter uses 'conjunction'; Cargo spells it 'conjonction' and silently ignores the misspelling. Rename the key to 'conjonction'.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from .errors import CargoInputError

__all__ = [
    "PLAY_DATA_KINDS",
    "TOOL_DATA_KINDS",
    "EMPTY_FILTER",
    "segment_data",
    "filter_data",
    "record_ids_data",
    "change_data",
    "records_data",
    "validate_filter",
    "validate_data",
    "date_window_filter",
    "chunk_records",
    "to_json_records",
    "json_safe",
]

PLAY_DATA_KINDS = frozenset({"segment", "change", "filter", "recordIds", "schedule", "runs"})
TOOL_DATA_KINDS = frozenset({"records", "file", "form", "runs"})
EMPTY_FILTER: dict[str, Any] = {"conjonction": "and", "groups": []}
_CHANGE_KINDS = frozenset({"added", "updated", "removed", "unchanged"})


def segment_data(segment_uuid: str) -> dict[str, Any]:
    """Run a play over a (non play-owned) segment."""
    return {"kind": "segment", "segmentUuid": segment_uuid}


def filter_data(
    model_uuid: str,
    filter: Mapping[str, Any] | None = None,
    *,
    sort: Sequence[Mapping[str, str]] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Run a play over the model's records matching ``filter`` (Cargo's recommended way)."""
    data: dict[str, Any] = {"kind": "filter", "modelUuid": model_uuid}
    if filter is not None:
        validate_filter(filter)
        data["filter"] = dict(filter)
    if sort is not None:
        data["sort"] = [dict(s) for s in sort]
    if limit is not None:
        data["limit"] = int(limit)
    return data


def record_ids_data(model_uuid: str, ids: Iterable[str]) -> dict[str, Any]:
    """Run a play over explicit record ids of its model."""
    return {"kind": "recordIds", "modelUuid": model_uuid, "ids": [str(i) for i in ids]}


def change_data(change_uuid: str, change_kinds: Iterable[str] = ("added", "updated")) -> dict[str, Any]:
    """Run a play over the records of a segment change (e.g. newly added records)."""
    kinds = [str(k) for k in change_kinds]
    bad = [k for k in kinds if k not in _CHANGE_KINDS]
    if bad or not kinds:
        raise CargoInputError(
            f"Invalid change kinds {bad or kinds!r}; use some of {sorted(_CHANGE_KINDS)}."
        )
    return {"kind": "change", "changeUuid": change_uuid, "changeKinds": kinds}


def records_data(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Run a tool over inline records (JSON-safe copies are made)."""
    return {"kind": "records", "records": [json_safe(dict(r)) for r in records]}


def date_window_filter(
    column_slug: str,
    start: dt.date | dt.datetime | str,
    end: dt.date | dt.datetime | str,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``column_slug`` between ``start`` and ``end`` (a partition's window), AND-ed with ``base``.

    >>> date_window_filter("created_at", dt.date(2025, 1, 1), dt.date(2025, 1, 2))["groups"][0]["conditions"][0]
    {'kind': 'date', 'columnSlug': 'created_at', 'operator': 'between', 'firstValue': '2025-01-01', 'lastValue': '2025-01-02'}
    """
    as_text = lambda v: v if isinstance(v, str) else v.isoformat()  # noqa: E731
    condition = {"kind": "date", "columnSlug": column_slug, "operator": "between",
                 "firstValue": as_text(start), "lastValue": as_text(end)}
    window_group = {"conjonction": "and", "conditions": [condition]}
    if base is None or not base.get("groups"):
        return {"conjonction": "and", "groups": [window_group]}
    validate_filter(base)
    if base.get("conjonction", "and") == "and":
        return {"conjonction": "and", "groups": [*base["groups"], window_group]}
    # (g1 OR g2) AND window == (g1 AND window) OR (g2 AND window), for AND-groups only
    if any(g.get("conjonction", "and") != "and" for g in base["groups"]):
        raise CargoInputError(
            "Cannot add a date window to an 'or' filter whose groups are also 'or': Cargo filters "
            "have two levels. Rewrite the filter as an 'or' of 'and' groups."
        )
    return {"conjonction": "or", "groups": [
        {"conjonction": "and", "conditions": [*g.get("conditions", []), condition]} for g in base["groups"]]}


def _reject_conjunction(obj: Mapping[str, Any], path: str) -> None:
    if "conjunction" in obj:
        raise CargoInputError(
            f"Filter at {path} uses 'conjunction'; Cargo spells it 'conjonction' and silently "
            "ignores the misspelling. Rename the key to 'conjonction'."
        )


def validate_filter(filter: Any, path: str = "filter") -> None:
    """Reject filters Cargo would silently misread (``conjunction``) or cannot parse."""
    if not isinstance(filter, Mapping):
        raise CargoInputError(f"Filter at {path} must be an object with 'conjonction' and 'groups'.")
    _reject_conjunction(filter, path)
    conj = filter.get("conjonction", "and")
    if conj not in ("and", "or"):
        raise CargoInputError(f"Filter at {path}: 'conjonction' must be 'and' or 'or', not {conj!r}.")
    groups = filter.get("groups", [])
    if not isinstance(groups, list):
        raise CargoInputError(f"Filter at {path}: 'groups' must be a list.")
    for i, group in enumerate(groups):
        gpath = f"{path}.groups[{i}]"
        if not isinstance(group, Mapping):
            raise CargoInputError(f"Filter at {gpath} must be an object.")
        _reject_conjunction(group, gpath)
        conditions = group.get("conditions", [])
        if not isinstance(conditions, list):
            raise CargoInputError(f"Filter at {gpath}: 'conditions' must be a list.")
        for j, cond in enumerate(conditions):
            if not isinstance(cond, Mapping) or "kind" not in cond:
                raise CargoInputError(f"Filter at {gpath}.conditions[{j}] needs a 'kind'.")
            _reject_conjunction(cond, f"{gpath}.conditions[{j}]")


def validate_data(data: Mapping[str, Any], *, workflow_type: str | None) -> None:
    """Check that ``data`` has a kind that fits the workflow type (``play`` or ``tool``)."""
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise CargoInputError("Batch data needs a 'kind' (e.g. 'filter', 'segment', 'records').")
    if workflow_type == "play" and kind not in PLAY_DATA_KINDS:
        raise CargoInputError(
            f"Data kind {kind!r} does not fit a play: plays take segment, change, filter or "
            "recordIds data (use filter_data(model_uuid, ...) to select records)."
        )
    if workflow_type == "tool" and kind not in TOOL_DATA_KINDS:
        raise CargoInputError(
            f"Data kind {kind!r} does not fit a tool: tools take records or file data "
            "(use records_data([...]))."
        )
    if "filter" in data and data["filter"] is not None:
        validate_filter(data["filter"], "data.filter")


def chunk_records(
    records: Sequence[Mapping[str, Any]],
    *,
    max_records: int,
    max_bytes: int,
    max_total: int | None = None,
) -> list[list[Mapping[str, Any]]]:
    """Split JSON-safe records into chunks of at most ``max_records`` records and about
    ``max_bytes`` of JSON each, one batch per chunk.

    Raises ``CargoInputError`` (before anything is sent) when one record alone exceeds
    ``max_bytes`` or there are more than ``max_total`` records.

    >>> [len(c) for c in chunk_records([{"a": i} for i in range(5)], max_records=2, max_bytes=1000)]
    [2, 2, 1]
    """
    import json

    if max_total is not None and len(records) > max_total:
        raise CargoInputError(
            f"{len(records)} input records exceed the limit of {max_total} for one asset run. Next step: "
            "partition the asset (or raise max_input_records if the credits are intended)."
        )
    chunks: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    size = 0
    for index, record in enumerate(records):
        record_bytes = len(json.dumps(record, separators=(",", ":"), default=str)) + 1
        if record_bytes > max_bytes:
            raise CargoInputError(
                f"Input record {index} is {record_bytes} bytes of JSON, over the {max_bytes}-byte request "
                "limit for one batch. Next step: drop large columns (only the tool's form fields are needed)."
            )
        if current and (len(current) >= max_records or size + record_bytes > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(record)
        size += record_bytes
    if current:
        chunks.append(current)
    return chunks


def json_safe(value: Any) -> Any:
    """Convert pandas/numpy/datetime values into plain JSON values.

    NaN/NaT/None → ``None``; Timestamps and datetimes → ISO-8601 strings; numpy scalars →
    Python scalars; Decimals → float.

    >>> import math
    >>> json_safe({"a": math.nan, "b": dt.date(2025, 1, 2)})
    {'a': None, 'b': '2025-01-02'}
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return float(value)
    module = type(value).__module__
    if module.startswith(("numpy", "pandas")) and _is_missing(value):  # NaT is a datetime subclass
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    # numpy / pandas scalars without importing them eagerly
    if module.startswith(("numpy", "pandas")):
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "tolist"):
            return json_safe(value.tolist())
        if hasattr(value, "item"):
            return json_safe(value.item())
    return value


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return not hasattr(value, "__len__") and bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def to_json_records(frame: Any) -> list[dict[str, Any]]:
    """Turn a pandas DataFrame (or an iterable of mappings) into JSON-safe records."""
    if hasattr(frame, "to_dict") and hasattr(frame, "columns"):
        rows = frame.to_dict(orient="records")
    else:
        rows = list(frame)
    return [json_safe(dict(row)) for row in rows]
