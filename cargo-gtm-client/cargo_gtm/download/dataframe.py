"""Download Cargo output files (presigned URLs) into pandas DataFrames.

The download URL returned by Cargo is fetched **without** any Cargo header: the API token
is never sent to the storage host. The body is streamed (never held whole as one bytes
object) and checked against ``Content-Length``, so a truncated transfer raises instead of
returning partial data.

Two CSV parsers produce the same DataFrame (see :func:`frame_from_bytes` for the rules):

* **pyarrow** (picked automatically when ``pyarrow`` is importable, the ``arrow`` extra): the
  body goes through ``pyarrow.csv.open_csv`` block by block as it arrives, every column read
  as text, while a worker thread types the rows parsed so far with vectorized casts; the
  result is what inferring each *whole* column gives, as pandas does. Reading as text first
  means a value late in the file that doesn't fit the type of the first rows (``"n/a"`` after
  a million integers) can't break the read, as it would with pyarrow's own first-block
  inference: the column is typed again from its full text.
* **pandas** (``pandas.read_csv``, C engine): the fallback without pyarrow.

:mod:`.stream` holds the body handling (counting, gunzip, failures) and :mod:`.csv_arrow` the pyarrow
reading and column typing; both are shared with :mod:`cargo_gtm.download.parquet`, which streams
outputs too big for memory to Parquet.
"""

from __future__ import annotations

import io
import zlib
from typing import Any, Literal

import httpx

from .csv_arrow import (  # noqa: F401 - parse_dates, read_csv_text_batches: re-exported
    DEFAULT_BLOCK_SIZE,
    FRAME_BLOCK_SIZE,
    NULL_VALUES,
    ExactChunkingNeeded,
    _arrow_frame,
    parse_dates,
    read_csv_text_batches,
)
from .stream import _Body, _CountingStream, open_download, retry_pause  # noqa: F401 - re-exported

__all__ = ["arrow_available", "download_dataframe", "frame_from_bytes", "parse_dates"]

Engine = Literal["auto", "pyarrow", "pandas"]
DtypeBackend = Literal["numpy", "pyarrow"]


def arrow_available() -> bool:
    """Whether ``pyarrow`` (the ``arrow`` extra) is importable, i.e. the fast CSV path is used."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _pandas_csv(source: Any) -> Any:
    import pandas as pd

    try:
        return parse_dates(pd.read_csv(source, keep_default_na=False, na_values=NULL_VALUES))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _resolve(engine: Engine) -> Literal["pyarrow", "pandas"]:
    if engine == "auto":
        return "pyarrow" if arrow_available() else "pandas"
    if engine == "pyarrow" and not arrow_available():
        raise ImportError("engine='pyarrow' needs pyarrow: pip install 'dagster-cargo[arrow]'")
    return engine


def frame_from_bytes(content: bytes | io.IOBase, format: Literal["csv", "json"], *,
                     engine: Engine = "auto") -> Any:
    """Parse CSV or JSON (array of objects, or NDJSON) output into a DataFrame.

    Rules (both CSV engines): numbers come out as numbers (``int64``; ``float64`` when a
    column has decimals or empty cells), ``true``/``false`` columns as booleans, **only empty
    cells** as NaN/None (text such as ``None``, ``NA``, ``null``, ``N/A``, ``nan`` stays text), columns whose every value is an ISO-8601 date or date-time as UTC datetimes
    (``pd.to_datetime(utc=True)``), anything else (JSON-ish cells included) as text. An empty
    body gives an empty DataFrame; a header-only body, one with columns and no rows. JSON keeps its
    own types (``null`` is missing). Gzip is handled by :func:`download_dataframe`, not here.
    """
    import pandas as pd

    if format == "csv":
        if _resolve(engine) == "pyarrow":
            data = content if isinstance(content, bytes) else content.read()
            try:
                return _arrow_frame(_Body(_CountingStream(iter([data])), None, "", None),
                                    block_size=FRAME_BLOCK_SIZE)
            except ExactChunkingNeeded:
                return _arrow_frame(_Body(_CountingStream(iter([data])), None, "", None),
                                    block_size=FRAME_BLOCK_SIZE, exact=True)
        source = io.BytesIO(content) if isinstance(content, bytes) else content
        return _pandas_csv(source)
    from .layout import frame_from_rows, json_rows

    raw = content if isinstance(content, bytes) else content.read()
    rows = json_rows(raw)  # a JSON array of objects, or one object per line
    return frame_from_rows(rows) if rows else pd.DataFrame()


def download_dataframe(
    url: str,
    *,
    format: Literal["csv", "json"] = "csv",
    timeout: float = 300.0,
    http: httpx.Client | None = None,
    batch_uuid: str | None = None,
    engine: Engine = "auto",
    block_size: int = FRAME_BLOCK_SIZE,
    sniff: bool = False,
    dtype_backend: DtypeBackend = "numpy",
) -> Any:
    """Fetch ``url`` (no auth headers) and parse it into a pandas DataFrame.

    CSV is parsed while it streams in: with pyarrow (``engine="auto"`` picks it when it is
    installed) in blocks of ``block_size`` bytes, else with ``pandas.read_csv``. See
    :func:`frame_from_bytes` for the typing rules, the same for both. A gzip body (a ``.gz``
    file, or ``Content-Encoding: gzip``) is gunzipped as it streams. With ``sniff``, the format
    is read from the body itself (JSON when it starts with ``[`` or ``{``, else CSV), for
    files whose format Cargo does not document (the batch download).

    ``dtype_backend="pyarrow"`` gives ``pd.ArrowDtype`` columns (``int64[pyarrow]``, ``string[pyarrow]``,
    ``timestamp[us, tz=UTC][pyarrow]``, nullable ``bool[pyarrow]``): the parsed arrow buffers are handed over
    without conversion to numpy, which is faster and keeps missing integers and booleans as ``<NA>``.
    Same values, same typing rules; integers beyond 64 bits stay Python ints (``object``).

    Raises:
        CargoDownloadError: non-2xx status (e.g. an expired URL), a transfer shorter than
            its ``Content-Length``, or unparseable content. The message names the batch.
    """
    try:
        frame = _download_frame(url, format=format, timeout=timeout, http=http, batch_uuid=batch_uuid,
                                engine=engine, block_size=block_size, sniff=sniff, exact=False,
                                arrow_dtypes=dtype_backend == "pyarrow")
    except ExactChunkingNeeded:  # a CSV quote parity can't cut (a stray quote): read it again, exactly
        frame = _download_frame(url, format=format, timeout=timeout, http=http, batch_uuid=batch_uuid,
                                engine=engine, block_size=block_size, sniff=sniff, exact=True,
                                arrow_dtypes=dtype_backend == "pyarrow")
    return to_dtype_backend(frame, dtype_backend)


def to_dtype_backend(frame: Any, dtype_backend: DtypeBackend) -> Any:
    """``frame`` with its columns not yet ``pd.ArrowDtype`` converted to it (``dtype_backend="pyarrow"``);
    as it is for ``"numpy"``. Python-int columns (beyond 64 bits) stay ``object``."""
    import numpy as np
    import pandas as pd

    if dtype_backend != "pyarrow":
        return frame
    todo = [c for c, dtype in frame.dtypes.items() if not isinstance(dtype, pd.ArrowDtype)
            and not (dtype is np.dtype(object) and _holds_big_ints(frame[c]))]  # Python ints: numpy object
    if todo:
        frame[todo] = frame[todo].convert_dtypes(dtype_backend="pyarrow")
    return frame


def _holds_big_ints(series: Any) -> bool:
    """Whether an object column holds an integer beyond 64 bits; pandas' C type inference rules out a
    column holding no integer at all (text, None: ``_error_message`` of a 1M-row frame) without a Python
    call per value."""
    import pandas as pd

    if pd.api.types.infer_dtype(series, skipna=True) not in ("integer", "mixed-integer", "mixed-integer-float",
                                                             "mixed"):
        return False
    return bool(series.map(_beyond_64_bits).any())


def _beyond_64_bits(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64


def _download_frame(url: str, *, format: Literal["csv", "json"], timeout: float, http: httpx.Client | None,
                    batch_uuid: str | None, engine: Engine, block_size: int, sniff: bool, exact: bool,
                    arrow_dtypes: bool) -> Any:
    with open_download(url, timeout=timeout, http=http, batch_uuid=batch_uuid) as body:
        if sniff:
            try:
                head = body.stream.peek_prefix(64).lstrip(b"\xef\xbb\xbf \t\r\n")
            except (ValueError, OSError, zlib.error) as exc:
                raise body.failure(exc, format) from exc
            format = "json" if head[:1] in (b"[", b"{") else "csv"
        chosen = _resolve(engine) if format == "csv" else "pandas"
        try:
            if chosen == "pyarrow":
                frame = _arrow_frame(body, block_size=block_size, exact=exact, arrow_dtypes=arrow_dtypes)
            else:
                frame = frame_from_bytes(io.BufferedReader(body.stream, buffer_size=1 << 20), format,
                                         engine="pandas")
        except httpx.TransportError:
            raise  # open_download names it
        except ExactChunkingNeeded:
            if body.wire.exhausted and body.truncated():  # a body cut inside a quoted value: say so, don't re-read
                raise body.truncation_error() from None
            raise  # the caller reads again, exactly
        except (ValueError, UnicodeDecodeError, OSError, zlib.error) as exc:  # pyarrow.ArrowInvalid: ValueError
            raise body.failure(exc, format) from exc
        body.check_complete()
        return frame
