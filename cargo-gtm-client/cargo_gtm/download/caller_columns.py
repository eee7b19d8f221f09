"""The caller's own input columns back in a tool's output, values and dtypes as the caller gave them.

A tool's input travels as JSON: a Timestamp goes as ISO text, a ``Decimal`` as a number, a date as text, a
categorical or nullable column as plain values. :func:`~cargo_gtm.download.outcomes.align_inputs` already puts
the *sent* values back (the file's text is re-typed by its parser); this puts back what the caller's DataFrame
held, so an input column comes back as it went in, not in its JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .outcomes import OUTPUT_COLUMNS, STATUS_COLUMN

__all__ = ["restore_caller_columns"]


def restore_caller_columns(frame: Any, sent: Sequence[Mapping[str, Any]]) -> Any:
    """``frame`` with each of the caller's input columns holding the caller's own values and dtype.

    ``sent``: the JSON records the step sent, in the caller's order, as :func:`~cargo_gtm.inputs.to_json_records`
    made them: their ``source`` is the caller's DataFrame (records given as dicts have none: they are what was
    sent, and ``frame`` already holds them).
    ``frame``: the step's output, one row per input record in the caller's order, or fewer when failed rows were
    dropped (rows are then matched to the caller's in order, by their sent values). The output's own columns
    (``_id``, ``_title``, ``_status``, ``_error_message``) are never touched. When the rows cannot be matched
    to the caller's exactly, ``frame`` is returned as it is (its input columns in their JSON form).
    """
    import pandas as pd

    caller = getattr(sent, "source", None)
    if not isinstance(caller, pd.DataFrame) or not len(frame) or len(sent) != len(caller):
        return frame
    columns = [c for c in caller.columns if isinstance(c, str) and c in frame.columns and c not in OUTPUT_COLUMNS]
    if not columns:
        return frame
    positions = _positions(frame, columns, sent)
    if positions is None:
        return frame
    out = frame.copy(deep=False)
    for column in columns:
        values = caller[column].iloc[positions]
        out[column] = pd.Series(values.array, index=out.index, name=column)
    return out


def _positions(frame: Any, columns: list[str], sent: Sequence[Mapping[str, Any]]) -> slice | list[int] | None:
    """The caller position of each of ``frame``'s rows, proven by their values (a row holds the values its record
    was sent with): all of them in order (a slice: no copy to index), or (rows dropped) the rows matched to the
    caller's in order; None when they are not in the caller's order (rows restored from runs that could not be
    matched to their records are put at the end, in their JSON form) or a row matches no record."""
    if len(frame) == len(sent):
        return slice(None) if _in_order(frame, columns, sent) else None
    if len(frame) > len(sent) or STATUS_COLUMN not in frame.columns:
        return None
    rows = zip(*(frame[c].tolist() for c in columns))
    positions: list[int] = []
    k = 0
    for row in rows:
        while k < len(sent) and not _same_row(row, columns, sent[k]):
            k += 1
        if k == len(sent):
            return None
        positions.append(k)
        k += 1
    return positions


def _in_order(frame: Any, columns: list[str], sent: Sequence[Mapping[str, Any]]) -> bool:
    return all([_plain(v) for v in frame[c].tolist()] == [r.get(c) for r in sent] for c in columns)


def _same_row(row: tuple[Any, ...], columns: list[str], record: Mapping[str, Any]) -> bool:
    return all(_plain(value) == record.get(column) for value, column in zip(row, columns))


def _plain(value: Any) -> Any:
    """A frame cell as its sent JSON value compares: numpy scalars as Python, every missing marker as None."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__module__.startswith("pandas") and not hasattr(value, "__len__"):
        import pandas as pd

        return None if pd.isna(value) else value
    return value
