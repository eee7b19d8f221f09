"""The task's output file: Parquet at ``output_path``, whatever values a paid batch's rows hold.

A column Parquet cannot type in one (text and numbers, text and lists, empty objects) is written as JSON text and
named in the summary's ``json_text_columns``; an input column Parquet cannot write in the caller's dtype is written
in the form it was sent in. A paid batch always gives its file, and a retry does not fail on the same rows again.
"""

from __future__ import annotations

from typing import Any

__all__ = ["parquet_writable", "write_parquet", "json_text"]


def _parquet_bytes(frame: Any) -> tuple[bytes, list[str]]:
    """``frame`` as Parquet, and the columns written as JSON text: a column whose values Parquet cannot hold in one
    type (text and numbers, text and lists, empty objects) is written with each value as its JSON text, so that a
    paid batch always gives its output file (and a retry does not fail on the same rows again)."""
    import io

    import pyarrow as pa

    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue(), []
    except (pa.ArrowException, TypeError, ValueError):
        pass
    as_text = [c for c in frame.columns if frame[c].dtype == object and not _parquet_can_hold(frame[[c]])]
    fixed = frame.copy()
    for column in as_text:
        fixed[column] = fixed[column].map(json_text)
    buffer = io.BytesIO()
    fixed.to_parquet(buffer, index=False)
    return buffer.getvalue(), [str(c) for c in as_text]


def parquet_writable(sent_form: Any, restored: Any, given: list[Any]) -> Any:
    """``restored``, with each input column (of ``given``) Parquet cannot write in the caller's dtype (a sparse column,
    a categorical of text and numbers) back in the form it was sent in: the output file is written whatever the
    input held."""
    import numpy as np
    import pandas as pd

    out = restored
    for column in (c for c in given if c in restored.columns and restored is not sent_form):
        dtype = restored[column].dtype
        if isinstance(dtype, pd.ArrowDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "biufcmM"):
            continue  # a type Parquet always holds
        if not _parquet_can_hold(restored[[column]]):
            out = out.copy(deep=False) if out is restored else out
            out[column] = sent_form[column]
    return out


def _parquet_can_hold(column: Any) -> bool:
    import io

    import pyarrow as pa

    try:
        column.to_parquet(io.BytesIO(), index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return False
    return True


def json_text(value: Any) -> str | None:
    """A value as its JSON text; a missing one (None, NaN, pandas' NA or NaT) stays missing."""
    import json
    import math

    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.dumps(value, default=str, ensure_ascii=False)


def write_parquet(frame: Any, path: Any) -> tuple[str, list[str]]:
    """Write ``frame`` as Parquet to an ``ObjectStoragePath`` (parents made for local paths); its URI and the columns
    written as JSON text (see :func:`_parquet_bytes`)."""
    data, as_text = _parquet_bytes(frame)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (NotImplementedError, OSError, AttributeError):  # object stores have no directories
        pass
    with path.open("wb") as handle:
        handle.write(data)
    return str(path), as_text
