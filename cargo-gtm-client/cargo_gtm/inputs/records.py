"""Build and check batch input (``data``) before anything is sent to Cargo.

A batch spends credits as soon as it is created, so everything that can be checked
locally is checked here, with an error that says what to change.

Example:
    >>> filter_data("model-uuid", {"conjonction": "and", "groups": []}, limit=10)
    {'kind': 'filter', 'modelUuid': 'model-uuid', 'filter': {'conjonction': 'and', 'groups': []}, 'limit': 10}
    >>> validate_filter({"conjunction": "and", "groups": []})
    Traceback (most recent call last):
    ...
    cargo_gtm.errors.CargoInputError: Filter at filter uses 'conjunction'; Cargo spells it 'conjonction' and silently ignores the misspelling. Rename the key to 'conjonction'.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..errors import CargoInputError
from .filter_check import check_filter

__all__ = [
    "PLAY_DATA_KINDS",
    "TOOL_DATA_KINDS",
    "EMPTY_FILTER",
    "segment_data",
    "filter_data",
    "record_ids_data",
    "change_data",
    "play_input",
    "records_data",
    "validate_filter",
    "validate_data",
    "date_window_filter",
    "chunk_records",
    "check_limit",
    "check_required_fields",
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
        data["limit"] = check_limit(limit)
    return data


def check_limit(limit: Any) -> int:
    """``limit`` as given, if it is a positive whole number; otherwise a :class:`CargoInputError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        try:
            import numpy as np

            if isinstance(limit, np.integer) and int(limit) > 0:
                return int(limit)
        except ImportError:  # pragma: no cover - numpy comes with pandas
            pass
        raise CargoInputError(f"limit must be a positive whole number of records, not {limit!r}.", hint="pass "
                              "an int such as limit=100, or no limit to run over every matching record.")
    return limit


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


def play_input(
    model_uuid: str | None,
    *,
    change_uuid: str | None = None,
    change_kinds: Iterable[str] = ("added", "updated"),
    segment_uuid: str | None = None,
    record_ids: Iterable[str] | None = None,
    filter: Mapping[str, Any] | None = None,
    limit: int | None = None,
    play_name: str = "",
) -> dict[str, Any]:
    """The batch ``data`` of a play run, from whichever selection is given: the records of a segment
    change, of a segment, the record ids of the play's model, or else (Cargo's recommended input) the
    model's records matching ``filter`` (all of them without one), at most ``limit``.

    The one place play input is built (assets, the op, the resource and the CLI all call it).

    >>> play_input("m1", record_ids=["r1"])
    {'kind': 'recordIds', 'modelUuid': 'm1', 'ids': ['r1']}
    >>> play_input("m1", limit=5)
    {'kind': 'filter', 'modelUuid': 'm1', 'limit': 5}
    """
    _one_selection(play_name, change_uuid=change_uuid, segment_uuid=segment_uuid, record_ids=record_ids,
                   filter=filter)
    if change_uuid:
        return change_data(change_uuid, change_kinds)
    if segment_uuid:
        return segment_data(segment_uuid)
    if not model_uuid:
        raise CargoInputError(f"Play {play_name!r} has no model; pass data= explicitly.")
    if record_ids:
        return record_ids_data(model_uuid, record_ids)
    return filter_data(model_uuid, filter, limit=limit)


def _one_selection(play_name: str, **given: Any) -> None:
    """A play batch runs over one selection of records: refuse several (one would be dropped silently)."""
    named = [name for name, value in given.items() if value is not None and value != [] and value != ""]
    if len(named) <= 1:
        return
    kept = named[0]
    raise CargoInputError(
        f"Play {play_name!r} was given {' and '.join(repr(n) for n in named)}: a Cargo batch runs over one selection "
        f"of records, so all but {kept!r} would be dropped silently and the batch would run (and be charged) on "
        "other records than meant. Nothing was created: 0 credits spent.",
        hint="give only one of them (in run config or as arguments).")


def records_data(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Run a tool over inline records (JSON-safe copies are made)."""
    return {"kind": "records", "records": to_json_records(records)}


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
    as_text = lambda v: v if isinstance(v, str) else json_safe(v, "date window")  # noqa: E731
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


def validate_filter(filter: Any, path: str = "filter", columns: Mapping[str, str] | None = None) -> None:
    """Reject filters Cargo would silently misread or cannot parse (see :mod:`.filter_check`).

    ``columns`` (the model's column slug → type) also checks column slugs and condition kinds.
    """
    check_filter(filter, columns, path)


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
        validate_filter(data["filter"], "filter")  # the path the caller wrote: filter=, run config 'filter'


def check_required_fields(records: Sequence[Mapping[str, Any]], required: Sequence[str], what: str = "tool", *,
                          positions: Sequence[int] | None = None) -> None:
    """Every record must carry each required form field with a value, or nothing is sent. ``positions``: each
    record's place in the caller's input, when ``records`` are only some of it (default: their index).

    >>> check_required_fields([{"domain": "a.com"}, {"domain": ""}], ["domain"])
    Traceback (most recent call last):
    ...
    cargo_gtm.errors.CargoInputError: Input record 1 has no value for the required form field 'domain' of the tool (1 of 2 records lack a required field). Cargo would fail those runs and still charge the batch. Next step: fill or drop those records, or map a column to 'domain'.
    """
    if not required:
        return
    lacking = [(i, field) for i, rec in enumerate(records) for field in required
               if rec.get(field) is None or rec.get(field) == ""]
    if lacking:
        index, field = lacking[0]
        index = positions[index] if positions is not None else index
        count = len({i for i, _ in lacking})
        raise CargoInputError(
            f"Input record {index} has no value for the required form field {field!r} of the {what} ({count} of "
            f"{len(records)} records lack a required field). Cargo would fail those runs and still charge the "
            f"batch.", hint=f"fill or drop those records, or map a column to {field!r}."
        )


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
            f"{len(records)} input records exceed the limit of {max_total} for one asset run.", hint=""
            "partition the asset (or raise max_input_records if the credits are intended)."
        )
    chunks: list[list[Mapping[str, Any]]] = []
    max_records = max(1, max_records)
    start = 0
    while start < len(records):
        window = records[start:start + max_records]
        # a full window that fits (a record's size is its compact JSON + 1, so the window's sizes add up to its
        # JSON as one list - 1) is what the record-by-record split below would make, in one encoding, not one each
        if len(json.dumps(window, separators=(",", ":"), default=str)) - 1 <= max_bytes:
            chunk = list(window)
        else:
            chunk = _fill_chunk(records, start, max_records, max_bytes)
        chunks.append(chunk)
        start += len(chunk)
    return chunks


def _fill_chunk(records: Sequence[Mapping[str, Any]], start: int, max_records: int,
                max_bytes: int) -> list[Mapping[str, Any]]:
    """The chunk that begins at ``records[start]``: records while they fit ``max_records`` and ``max_bytes``."""
    import json

    chunk: list[Mapping[str, Any]] = []
    size = 0
    for index in range(start, min(start + max_records, len(records))):
        record = records[index]
        record_bytes = len(json.dumps(record, separators=(",", ":"), default=str)) + 1
        if record_bytes > max_bytes:
            raise CargoInputError(
                f"Input record {index} is {record_bytes} bytes of JSON, over the {max_bytes}-byte request "
                "limit for one batch.", hint="drop large columns (only the tool's form fields are needed)."
            )
        if chunk and size + record_bytes > max_bytes:
            break
        chunk.append(record)
        size += record_bytes
    return chunk


def json_safe(value: Any, path: str = "value") -> Any:
    """Convert pandas/numpy/datetime values into the JSON values they stand for, exactly.

    NaN/NaT/None (missing values) → ``None``; datetimes, dates, times, pandas Timestamps and
    ``np.datetime64`` → ISO-8601 text; numpy scalars and arrays → Python numbers and lists;
    a ``Decimal`` → a number only when a float holds it exactly. Anything JSON cannot carry
    exactly (bytes, complex numbers, infinities, timedeltas, sets, arbitrary objects, a
    ``Decimal`` beyond float precision) raises :class:`CargoInputError` naming ``path``, never
    a silent ``str()``.

    >>> import math
    >>> json_safe({"a": math.nan, "b": dt.date(2025, 1, 2)})
    {'a': None, 'b': '2025-01-02'}
    >>> json_safe({"price": Decimal("0.1000000000000000055511151231257827")}, "Input record 0")
    Traceback (most recent call last):
    ...
    cargo_gtm.errors.CargoInputError: Input record 0, column 'price': Decimal('0.1000000000000000055511151231257827') has more precision than a JSON number carries; Cargo would receive a different value. Next step: round it, or send it as text (str) on purpose.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, Mapping):
        return _json_mapping(value, path)
    if isinstance(value, (list, tuple)):
        return [json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        return _json_float(value, path)
    if isinstance(value, Decimal):
        return _json_decimal(value, path)
    return _json_other(value, path)


def _json_mapping(value: Mapping[Any, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise _unsafe(path, f"has a key {k!r} that is not text")
        out[k] = json_safe(v, _join(path, k))
    return out


def _json_float(value: float, path: str) -> float | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise _unsafe(path, f"is {value!r}, which JSON cannot represent")
    return value


def _json_decimal(value: Decimal, path: str) -> int | float:
    if not value.is_finite():
        raise _unsafe(path, f"is {value!r}, which JSON cannot represent")
    as_float = float(value)
    if Decimal(repr(as_float)) != value.normalize() and Decimal(as_float) != value:
        raise _unsafe(path, f"{value!r} has more precision than a JSON number carries", hint=_ROUND_IT)
    return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else as_float


def _json_other(value: Any, path: str) -> Any:
    """Dates and times, numpy and pandas values; anything else cannot be sent exactly."""
    module = type(value).__module__
    if module.startswith(("numpy", "pandas")) and _is_missing(value):  # NaT is a datetime subclass
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if module.startswith("numpy"):
        return _numpy_value(value, path)
    if module.startswith("pandas") and hasattr(value, "isoformat") and not _is_timedelta(value):
        return value.isoformat()
    raise _unsafe(path, f"is a {type(value).__name__} ({_short(value)}), which JSON cannot represent exactly")


def _numpy_value(value: Any, path: str) -> Any:
    import numpy as np

    if isinstance(value, np.datetime64):
        import pandas as pd

        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.ndarray):
        return [json_safe(v, f"{path}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
        return json_safe(value.item(), path)
    raise _unsafe(path, f"is a numpy {type(value).__name__} ({_short(value)}), which JSON cannot represent exactly")


def _is_timedelta(value: Any) -> bool:
    return isinstance(value, dt.timedelta) or type(value).__name__ == "Timedelta"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str) -> str:
    if path.startswith("Input record") and ", column" not in path:
        return f"{path}, column {key!r}"
    return f"{path}.{key}"


_ROUND_IT = "round it, or send it as text (str) on purpose."
_CONVERT_IT = ("convert the column to a JSON type (number, text, boolean, list, object) yourself, e.g. with "
               ".astype(str) if text is meant.")


def _unsafe(path: str, problem: str, hint: str = _CONVERT_IT) -> CargoInputError:
    return CargoInputError(f"{path}: {problem}; Cargo would receive a different value.", hint=hint)


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return not hasattr(value, "__len__") and bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


class JsonRecords(list):  # type: ignore[type-arg]
    """Records :func:`to_json_records` made JSON-safe: passing them to it again returns them as they are, so a
    tool's input is converted exactly once on its way from ``run_tool`` to the create.

    ``source``: the DataFrame they were made from (None for other input), whose columns go back into the output
    as the caller gave them (:func:`~cargo_gtm.download.caller_columns.restore_caller_columns`)."""

    source: Any = None


def to_json_records(frame: Any) -> list[dict[str, Any]]:
    """Turn a pandas DataFrame (or an iterable of mappings) into JSON records, exactly (see :func:`json_safe`).

    Raises :class:`CargoInputError` for duplicate column names (a DataFrame would silently keep
    only one of them), a record that is not a mapping, and any value JSON cannot carry exactly.
    Records it made already (:class:`JsonRecords`) are returned as they are.
    """
    if isinstance(frame, JsonRecords):
        return frame
    if hasattr(frame, "to_dict") and hasattr(frame, "columns"):
        columns = [str(c) for c in frame.columns]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise CargoInputError(
                f"The input DataFrame has duplicate column names {duplicates}; only one of each would reach "
                "Cargo.", hint="rename or drop the duplicates (df.loc[:, ~df.columns.duplicated()])."
            )
        made = JsonRecords(_record(row, i) for i, row in enumerate(_frame_rows(frame)))
        made.source = frame
        return made
    if isinstance(frame, Mapping) or isinstance(frame, (str, bytes)):
        raise CargoInputError(
            f"Records must be a DataFrame or a list of dicts, not a single {type(frame).__name__}.",
            hint="wrap it in a list ([record])."
        )
    return JsonRecords(_record(row, i) for i, row in enumerate(frame))


def _frame_rows(frame: Any) -> list[dict[Any, Any]]:
    """A DataFrame's rows as dicts, column by column (``Series.tolist``): a quarter of ``to_dict(orient="records")``'s
    time (B1's 40,000 rows: 22 ms, not 91 ms). The values differ from ``to_dict``'s only where :func:`json_safe`
    makes them equal (``pd.NA`` for ``None``, numpy scalars of object columns for Python numbers)."""
    columns = list(frame.columns)
    if not columns:
        return [{} for _ in range(len(frame))]
    values = [frame.iloc[:, k].tolist() for k in range(len(columns))]
    return [dict(zip(columns, row)) for row in zip(*values)]


def _record(row: Any, index: int) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise CargoInputError(
            f"Input record {index} is a {type(row).__name__} ({_short(row)}), not a mapping of column names to "
            "values.", hint="pass a DataFrame or a list of dicts such as [{'domain': 'acme.com'}]."
        )
    out: dict[str, Any] = {}
    for key, value in row.items():
        if not isinstance(key, str):
            raise CargoInputError(f"Input record {index} has a column name {key!r} that is not text.", hint=""
                                  "rename the columns to text.")
        out[key] = json_safe(value, f"Input record {index}, column {key!r}")
    return out
