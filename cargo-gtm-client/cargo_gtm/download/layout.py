"""Row layouts of Cargo's output files, made into one DataFrame shape.

Cargo's docs fix what a batch download's rows *are* (one per batch record, its input fields, then the
output node's data; CARGO-DOCS 1.2) but not how the file is laid out (1.3): CSV or JSON, a JSON array or
one object per line, gzipped or not, the output object spread into columns or kept as one ``output``
column. Whatever the layout, the DataFrame is the same:

* ``_id``, ``_title``, the record's input fields, then one column per output key. An output key equal to
  an input field (or to ``_id``/``_title``) becomes ``output.<key>``: input is never overwritten and no
  column is dropped or duplicated.
* Values keep their JSON types when the file has them (JSON files, and the JSON text of an ``output``
  column in CSV); CSV cells are typed by column (see :func:`~cargo_gtm.download.dataframe.frame_from_bytes`).
* Only an empty cell (or a JSON ``null``) is missing. Text such as ``"None"``, ``"NA"``, ``"null"``,
  ``"N/A"`` or ``"nan"`` stays text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["OUTPUT_COLUMN", "json_rows", "frame_from_rows", "spread_output", "is_object_column"]

#: The column holding the output node's object when Cargo does not spread it (``batch_download_output=json``).
OUTPUT_COLUMN = "output"


def json_rows(raw: bytes | str) -> list[dict[str, Any]]:
    """Rows of a JSON download: one JSON array of objects, or one object per line (NDJSON)."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.lstrip("\ufeff")
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("expected JSON objects (an array of them, or one per line)")
    return rows


def frame_from_rows(rows: list[dict[str, Any]], columns: Iterable[str] | None = None) -> Any:
    """A DataFrame from JSON row objects: JSON types kept, JSON ``null`` missing, ISO dates as UTC datetimes.

    Column order is first appearance over the rows (or ``columns`` first when given).
    """
    import pandas as pd

    from .csv_arrow import parse_dates

    order: dict[str, None] = dict.fromkeys(columns or ())
    for row in rows:
        order.update(dict.fromkeys(row))
    if not rows:
        return pd.DataFrame(columns=list(order))
    frame = pd.DataFrame.from_records(rows, columns=list(order))
    return parse_dates(frame)


def _as_object(value: Any) -> dict[str, Any] | None | bool:
    """A cell of an ``output`` column as a dict; None when missing; False when it is not an object."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not text.startswith("{"):
            return False
        try:
            parsed = json.loads(text)
        except ValueError:
            return False
        return parsed if isinstance(parsed, dict) else False
    return False


def is_object_column(frame: Any, column: str = OUTPUT_COLUMN) -> bool:
    """Whether ``column`` holds the output node's object (JSON objects or JSON text) in every non-empty cell."""
    if column not in frame.columns:
        return False
    series = frame[column]
    if series.dtype.kind not in ("O", "T") and str(series.dtype) not in ("str", "string", "object"):
        return bool(series.isna().all()) and len(series) > 0 and list(frame.columns)[-1] == column
    seen = False
    for value in series:
        parsed = _as_object(value)
        if parsed is False:
            return False
        seen = seen or parsed is not None
    return seen or list(frame.columns)[-1] == column


def spread_output(frame: Any, column: str = OUTPUT_COLUMN) -> Any:
    """Spread the ``column`` of output objects into one typed column per key, in its place.

    A key equal to another column's name becomes ``output.<key>`` (as in Cargo's spread layout), so
    input fields are never overwritten. Missing objects (errored or stopped runs) give missing cells.
    """
    import pandas as pd

    from .csv_arrow import parse_dates

    objects = [_as_object(v) for v in frame[column]]
    others = [c for c in frame.columns if c != column]
    taken = set(others)
    keys: dict[str, None] = {}
    for obj in objects:
        if isinstance(obj, dict):
            keys.update(dict.fromkeys(obj))
    names = {k: (f"output.{k}" if k in taken else k) for k in keys}
    records = [{names[k]: v for k, v in obj.items()} if isinstance(obj, dict) else {} for obj in objects]
    spread = pd.DataFrame.from_records(records, columns=list(names.values()), index=frame.index) if keys \
        else pd.DataFrame(index=frame.index)
    spread = parse_dates(spread)
    position = list(frame.columns).index(column)
    before, after = others[:position], others[position:]
    return pd.concat([frame[before], spread, frame[after]], axis=1)
