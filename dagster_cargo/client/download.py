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

:func:`read_csv_text_batches` and :func:`infer_column` are shared with
:mod:`dagster_cargo.client.parquet`, which streams outputs too big for memory to Parquet.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from .errors import CargoDownloadError

__all__ = ["arrow_available", "download_dataframe", "frame_from_bytes", "parse_dates"]

Engine = Literal["auto", "pyarrow", "pandas"]

#: Bytes pyarrow parses per block. Every block is a Python ``bytes`` read from the HTTP stream;
#: 1 MiB measured best on time and peak RSS (8 MiB blocks left glibc's heap, fed from pyarrow's
#: I/O thread, ~250 MiB bigger for a 320 MB body, and were no faster).
DEFAULT_BLOCK_SIZE = 1 << 20

#: Cells read as missing: only the empty cell. Text that merely *looks* missing ("None", "NA", "null",
#: "N/A", "nan", "#N/A", ...) is a value: a company named "None" or the country code "NA" stays text.
NULL_VALUES = [""]
TRUE_VALUES = ["True", "TRUE", "true"]
FALSE_VALUES = ["False", "FALSE", "false"]

_ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
_ISO_DATE = re.compile(_ISO_DATE_PATTERN)


def arrow_available() -> bool:
    """Whether ``pyarrow`` (the ``arrow`` extra) is importable, i.e. the fast CSV path is used."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


class _CountingStream(io.RawIOBase):
    """A readable file object over an iterator of byte chunks, counting bytes read.

    ``read(n)`` hands out whole chunks where it can (no copy), so pyarrow's large block
    reads and pandas' buffered reads both stay cheap. A transport error raised by the
    iterator is kept in :attr:`error` (pyarrow reports it as its own ``OSError``), so the
    caller can name the real cause.
    """

    def __init__(self, chunks: Iterator[bytes], prefix: bytes = b"") -> None:
        self._chunks = chunks
        self._pending: list[bytes] = [prefix] if prefix else []
        self._pending_size = len(prefix)
        self._done = False
        self.bytes_read = 0  # bytes taken from the iterator (the wire count checked against Content-Length)
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def _pull(self) -> bool:
        """Move one chunk from the iterator into the pending list; False at the end."""
        if self._done:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = True
            return False
        except Exception as exc:  # noqa: BLE001 - kept and re-raised: pyarrow would hide the type
            self.error = exc
            self._done = True
            raise
        self.bytes_read += len(chunk)
        if chunk:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
        return True

    @property
    def exhausted(self) -> bool:
        """Whether the iterator has ended (or failed)."""
        return self._done

    def peek_prefix(self, size: int) -> bytes:
        """At least ``size`` bytes (fewer at the end of the body) without consuming them."""
        while self._pending_size < size and self._pull():
            pass
        if len(self._pending) > 1:
            self._pending = [b"".join(self._pending)]
        return self._pending[0] if self._pending else b""

    def append(self, data: bytes) -> None:
        """Add bytes after what the iterator gave (not counted in :attr:`bytes_read`)."""
        self._pending.append(data)
        self._pending_size += len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._pull():
                pass
            out = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            return out
        while self._pending_size < size and self._pull():
            if self._pending_size >= size:
                break
        if not self._pending:
            return b""
        if len(self._pending) == 1 and self._pending_size <= size:
            out = self._pending.pop()
        else:
            joined = b"".join(self._pending)
            out, rest = joined[:size], joined[size:]
            self._pending = [rest] if rest else []
        self._pending_size -= len(out)
        return out

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


class _GzipTruncated(ValueError):
    """A gzip stream ended before its trailer: the body was cut short."""


GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(source: _CountingStream) -> Iterator[bytes]:
    """Decompress a gzip body (one or more members) as it streams; raise :class:`_GzipTruncated` if it
    ends before the last member's trailer (a truncated ``.gz`` file or transfer)."""
    inflater = zlib.decompressobj(wbits=31)
    while True:
        chunk = source.read(1 << 16)
        if not chunk:
            break
        while chunk:
            out = inflater.decompress(chunk)
            if out:
                yield out
            chunk = b""
            if inflater.eof and inflater.unused_data:  # concatenated members
                chunk = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
    tail = inflater.flush()
    if tail:
        yield tail
    if not inflater.eof:
        raise _GzipTruncated("the gzip stream ended before its end marker")


@dataclass
class _Body:
    """An open download: the (decompressed) body stream and what the response promised.

    ``raw`` counts the bytes on the wire (checked against ``Content-Length``); ``stream`` is what
    parsers read: the same stream, or its gunzipped content when the body is gzip (a ``.gz`` file
    served without ``Content-Encoding``, or ``Content-Encoding: gzip``).
    """

    stream: _CountingStream
    expected: int | None  # Content-Length of the wire bytes (None when absent)
    what: str  # " for batch <uuid>" or ""
    batch_uuid: str | None
    raw: _CountingStream | None = None
    gzipped: bool = False

    @property
    def wire(self) -> _CountingStream:
        return self.raw if self.raw is not None else self.stream

    @property
    def received(self) -> int:
        """Bytes received on the wire."""
        return self.wire.bytes_read

    def truncated(self) -> bool:
        return self.expected is not None and self.wire.bytes_read != self.expected

    def truncation_error(self) -> CargoDownloadError:
        detail = (f"received {self.wire.bytes_read} of {self.expected} bytes" if self.truncated()
                  else "the gzip stream ended early")
        return CargoDownloadError(
            f"Cargo outputs{self.what} were truncated: {detail}.", hint="download again with a fresh URL.",
            batch_uuid=self.batch_uuid,
        )

    def check_complete(self) -> None:
        """Drain what the parser left (e.g. a trailing newline) and raise if the body was cut short."""
        try:
            while self.stream._pull():
                pass
        except _GzipTruncated:
            raise self.truncation_error() from None
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.what, self.batch_uuid) from exc
        if self.truncated():
            raise self.truncation_error()

    def failure(self, exc: BaseException, format: str) -> CargoDownloadError:
        """The error to raise for a parser failure: a dropped connection or a short body is
        reported as such (a cut row is the usual symptom), anything else as unparseable."""
        for stream in (self.stream, self.wire):
            if isinstance(stream.error, httpx.TransportError):
                return _transport_error(stream.error, self.what, self.batch_uuid)
        if isinstance(exc, _GzipTruncated) or isinstance(self.stream.error, _GzipTruncated):
            return self.truncation_error()
        if self.wire.exhausted and self.truncated():  # the body ended early (a parse error stops sooner)
            return self.truncation_error()
        if isinstance(exc, zlib.error):
            return CargoDownloadError(
                f"Cargo outputs{self.what} are not valid gzip: {exc}.", hint="download again with a fresh URL.",
                batch_uuid=self.batch_uuid)
        return CargoDownloadError(
            f"Cargo outputs{self.what} could not be parsed as {format.upper()}: {exc}.",
            hint="re-download; if it persists, report the batch to Cargo.",
            batch_uuid=self.batch_uuid,
        )


def _transport_error(exc: BaseException, what: str, batch_uuid: str | None) -> CargoDownloadError:
    error = CargoDownloadError(
        f"Downloading Cargo outputs{what} failed: {type(exc).__name__}.", hint="request a "
        "fresh download URL and retry.",
        batch_uuid=batch_uuid,
    )
    error.__cause__ = exc
    return error


def retry_pause(attempt: int) -> float:
    """Seconds to wait before download attempt ``attempt`` (2, 3, …): 0.5 s, doubling, at most 8 s.

    >>> [retry_pause(a) for a in (2, 3, 4, 5, 9)]
    [0.5, 1.0, 2.0, 4.0, 8.0]
    """
    return min(0.5 * 2 ** (attempt - 2), 8.0)


@contextlib.contextmanager
def open_download(url: str, *, timeout: float = 300.0, http: httpx.Client | None = None,
                  batch_uuid: str | None = None) -> Iterator[_Body]:
    """GET ``url`` with no auth headers and yield the streamed body.

    Raises:
        CargoDownloadError: non-2xx status (e.g. an expired URL) or a transport failure.
    """
    owns = http is None
    client = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True)
    what = f" for batch {batch_uuid}" if batch_uuid else ""
    try:
        with client.stream("GET", url, headers={}) as response:
            if not response.is_success:
                snippet = response.read()[:300].decode("utf-8", "replace")
                raise CargoDownloadError(
                    f"Downloading Cargo outputs{what} failed with HTTP {response.status_code} "
                    f"({snippet.strip() or 'no body'}). Download URLs expire.", hint="request a fresh "
                    "URL and download it right away.",
                    batch_uuid=batch_uuid,
                )
            yield _open_body(response, what, batch_uuid)
    except httpx.TransportError as exc:
        raise _transport_error(exc, what, batch_uuid) from exc
    finally:
        if owns:
            client.close()


def _open_body(response: httpx.Response, what: str, batch_uuid: str | None) -> _Body:
    """The body of ``response`` as a :class:`_Body`, gunzipped when it is gzip.

    The wire bytes are read raw (so ``Content-Length`` is checked on what was sent) and decompressed
    here, for ``Content-Encoding: gzip`` and for a gzip file served plain (detected by its magic
    bytes): both end with a trailer, so a cut-short gzip body is always detected. Other content
    encodings are left to httpx.
    """
    length = response.headers.get("content-length")
    encoding = (response.headers.get("content-encoding") or "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        return _Body(_CountingStream(response.iter_bytes()), None, what, batch_uuid)
    raw = _CountingStream(response.iter_raw())
    expected = int(length) if length is not None else None
    if encoding in ("gzip", "x-gzip") or raw.peek_prefix(2)[:2] == GZIP_MAGIC:
        return _Body(_CountingStream(_gunzip(raw)), expected, what, batch_uuid, raw=raw, gzipped=True)
    return _Body(raw, expected, what, batch_uuid)


# ------------------------------------------------------------------------------ dates
def _looks_like_dates(series: Any) -> bool:
    """Every non-null value of a text column is an ISO-8601 date or date-time (vectorized)."""
    values = series.dropna()
    if values.empty:
        return False
    first = values.iloc[0]
    if not isinstance(first, str) or not _ISO_DATE.match(first):
        return False  # the cheap test settles almost every text column
    matched = values.str.fullmatch(_ISO_DATE_PATTERN)
    return bool(matched.notna().all() and matched.astype(bool).all())


def parse_dates(frame: Any) -> Any:
    """Turn text columns whose every value is an ISO-8601 date or date-time into UTC datetimes.

    Cheap on big frames: a column is only scanned (with vectorized ``str.fullmatch``) when
    its first value looks like a date.

    >>> import pandas as pd
    >>> frame = parse_dates(pd.DataFrame({"d": ["2025-01-02", None], "t": ["x", "2025-01-02"]}))
    >>> str(frame["d"].dtype).startswith("datetime64"), frame["d"][0].isoformat(), frame["t"][1]
    (True, '2025-01-02T00:00:00+00:00', '2025-01-02')
    """
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        if series.dtype.kind not in ("O", "T") and str(series.dtype) not in ("str", "string"):
            continue
        if not _looks_like_dates(series):
            continue
        try:
            frame[column] = pd.to_datetime(series, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            continue
    return frame


# ------------------------------------------------------------------------------ pyarrow
def _unique_names(names: list[str]) -> list[str]:
    """pandas' header rules: empty names become ``Unnamed: i``, duplicates get ``.1``, ``.2`` …"""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        name = name if name != "" else f"Unnamed: {i}"
        candidate, n = name, 0
        while candidate in seen:
            n += 1
            candidate = f"{name}.{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _header(stream: _CountingStream) -> list[str] | None:
    """The CSV header's column names, peeked (not consumed) from the start of the body; None if empty."""
    size = 1 << 16
    while True:
        prefix = stream.peek_prefix(size)
        if not prefix.strip():
            return None if len(prefix) < size else []
        complete = len(prefix) < size  # the whole body is in the prefix
        text = prefix.decode("utf-8-sig", "replace")
        reader = csv.reader(io.StringIO(text, newline=""), strict=False)
        try:
            names = next(reader)
        except (StopIteration, csv.Error):
            names = None
        # the record must end inside the prefix: another line follows it, or the body ends there
        if names is not None and (complete or text.count("\n") > reader.line_num - 1):
            if complete and not prefix.endswith((b"\n", b"\r")):
                stream.append(b"\n")  # pyarrow rejects a last row without a line end after skipped rows
            return names
        if complete:
            raise ValueError("the CSV header could not be read")
        size *= 4


def _text_csv_options(width: int, *, block_size: int, use_threads: bool = True) -> tuple[Any, Any, Any]:
    """pyarrow CSV options reading ``width`` columns (``c0`` …) as text, the header row skipped."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    internal = [f"c{i}" for i in range(width)]
    return (
        pacsv.ReadOptions(block_size=block_size, use_threads=use_threads, column_names=internal,
                          skip_rows_after_names=1),
        pacsv.ParseOptions(newlines_in_values=True),
        pacsv.ConvertOptions(column_types={c: pa.string() for c in internal}, null_values=NULL_VALUES,
                             strings_can_be_null=True, quoted_strings_can_be_null=True),
    )


def _names(stream: _CountingStream) -> list[str] | None:
    names = _header(stream)
    return None if names is None else _unique_names(names)


def read_csv_text_batches(
    stream: _CountingStream,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    use_threads: bool = True,
) -> tuple[list[str], Iterator[Any]] | None:
    """Stream a CSV body through ``pyarrow.csv.open_csv`` with every column read as text.

    Returns the column names (pandas' header rules) and an iterator of ``RecordBatch``es whose
    columns are ``string`` (empty cells and pandas' ``na_values`` are null), or None for an
    empty body. Memory is a few blocks of ``block_size`` bytes, whatever the body's size.
    """
    import pyarrow.csv as pacsv

    names = _names(stream)
    if names is None:
        return None
    if not names:
        return [], iter(())
    read, parse, convert = _text_csv_options(len(names), block_size=block_size, use_threads=use_threads)
    reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert,
                            memory_pool=_reader_pool())
    return names, iter(reader)


def _reader_pool() -> Any:
    """The memory pool for the streaming reader: jemalloc when pyarrow has it, unless the user chose one.

    The reader allocates and frees a block's buffers over and over. pyarrow's default pool on Linux
    (mimalloc) hands freed huge pages back and faults fresh ones in: on a 2-core VM that cost 0.8–1.4 s
    of kernel time per 320 MB body, in about half of the runs (B3); jemalloc reuses them (0.3 s, every
    run) for the same user CPU. ``ARROW_DEFAULT_MEMORY_POOL``, when set, wins.
    """
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return None
    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, AttributeError):  # builds without jemalloc (e.g. Windows, macOS wheels)
        return None


def _cast_dates(column: Any) -> Any | None:
    """A text column of ISO-8601 values as UTC timestamps (µs, like ``pd.to_datetime``), or None
    when arrow's parser can't take every value (pandas then has the last word)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    utc = pa.timestamp("us", "UTC")
    try:
        return pc.cast(column, utc)  # every value carries an offset ("Z", "+02:00")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return pc.cast(pc.cast(column, pa.timestamp("us")), utc)  # no offsets: read as UTC
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _first_value(column: Any) -> Any:
    """The first non-null value of an Array or ChunkedArray (None if all null), without copying it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        if chunk.null_count == len(chunk):
            continue
        for start in range(0, len(chunk), 4096):
            window = pc.drop_null(chunk.slice(start, 4096))
            if len(window):
                return window[0].as_py()
    return None


def _all_valid_match(column: Any, pattern: str) -> bool:
    """Every non-null value matches ``pattern`` (RE2, vectorized; nulls are skipped)."""
    import pyarrow.compute as pc

    return bool(pc.all(pc.match_substring_regex(column, pattern)).as_py())


def _all_match_dates(column: Any) -> bool:
    first = _first_value(column)
    if not isinstance(first, str) or not _ISO_DATE.match(first):
        return False  # the cheap test settles almost every text column
    return _all_valid_match(column, _ISO_DATE_PATTERN)


def _cast_bool(column: Any) -> Any | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if _first_value(column) not in TRUE_VALUES + FALSE_VALUES:
        return None
    known = pc.sum(pc.is_in(column, value_set=pa.array(TRUE_VALUES + FALSE_VALUES))).as_py() or 0
    if known != len(column) - column.null_count:
        return None
    flags = pc.is_in(column, value_set=pa.array(TRUE_VALUES))
    return pc.if_else(pc.is_null(column), pa.scalar(None, pa.bool_()), flags) if column.null_count else flags


def _looks_numeric(value: Any) -> bool:
    """A cheap test on one value: could its column be numbers? (Saves three failing casts per text column.)

    Only finite numbers count: "nan", "NaN", "inf" are text, never read as a missing or infinite number.
    """
    if not isinstance(value, str) or "_" in value:
        return False
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number)


def _has_non_finite(floats: Any) -> bool:
    """Whether a float column cast from text holds NaN or infinity (from text such as "nan" or "inf")."""
    import pyarrow.compute as pc

    finite = pc.is_finite(floats)
    return bool(pc.any(pc.invert(finite)).as_py())


def _integers_beyond_64_bits(column: Any, floats: Any) -> bool:
    import pyarrow.compute as pc

    largest = pc.max(pc.abs(floats)).as_py()
    if largest is None or largest < 2.0**63:
        return False
    return _all_valid_match(column, r"^\s*[+-]?\d+\s*$")


def infer_column(column: Any) -> tuple[Any, str]:
    """Type a text column (``string`` Array or ChunkedArray) the way ``pandas.read_csv`` would.

    Returns the converted column and its kind: ``"null"`` (every cell empty: float NaN),
    ``"int"`` (``int64``, or ``uint64`` beyond it), ``"bigint"`` (integers beyond 64 bits: left as
    text here, Python ints in the DataFrame), ``"float"``, ``"bool"``, ``"datetime"`` (UTC, µs), ``"date-text"`` (ISO dates
    arrow's parser won't take: left as text for :func:`parse_dates`) or ``"text"``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count == len(column):
        return pa.nulls(len(column), pa.float64()), "null"
    numeric = (("int", pa.int64()), ("int", pa.uint64()), ("float", pa.float64()))
    for kind, target in numeric if _looks_numeric(_first_value(column)) else ():
        try:
            converted = pc.cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if kind == "float" and _has_non_finite(converted):
            break  # "nan" / "inf" among the numbers: text, not a guessed missing value
        if kind == "float" and _integers_beyond_64_bits(column, converted):
            return column, "bigint"  # pandas keeps integers too big for (u)int64 as Python ints
        return converted, kind
    flags = _cast_bool(column)
    if flags is not None:
        return flags, "bool"
    if _all_match_dates(column):
        stamps = _cast_dates(column)
        return (stamps, "datetime") if stamps is not None else (column, "date-text")
    return column, "text"


def convert_text(column: Any, target: Any) -> Any | None:
    """Cast a text column to ``target`` under the same rules as :func:`infer_column`, or None when
    some value doesn't fit (a number column meeting ``"n/a (private)"``, a date column meeting ``"soon"``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count == len(column):
        return pa.nulls(len(column), target) if not isinstance(column, pa.ChunkedArray) else column.cast(target)
    if pa.types.is_string(target):
        return column
    if pa.types.is_boolean(target):
        return _cast_bool(column)
    if pa.types.is_timestamp(target):
        stamps = _cast_dates(column) if _all_match_dates(column) else None
        return stamps.cast(target) if stamps is not None else None
    try:
        converted = pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_floating(target) and _has_non_finite(converted):
        return None
    return converted


#: Rows typed at a time by :class:`_ColumnTyper` (a few parser blocks: few Python calls, small pieces).
TYPING_ROWS = 65_536


class _ColumnTyper:
    """Types columns group by group while the parser reads on (in a worker thread).

    The first group of rows proposes each column's type (:func:`infer_column`); every later group is
    cast to it (:func:`convert_text`). A column whose later values don't fit, or that is empty or
    undecided in the first group, is typed from its whole text at the end, so the result always
    equals :func:`infer_column` over the whole column. The text is kept until then for that reason.
    """

    _TYPED = ("int", "float", "bool", "datetime")

    def __init__(self, width: int) -> None:
        self.targets: list[Any] = [None] * width  # pyarrow type while the column stays typed
        self.pieces: list[list[Any]] = [[] for _ in range(width)]
        self.kinds: list[str | None] = [None] * width
        self.started = False

    def feed(self, batches: list[Any]) -> None:
        """Type the next group of record batches (text columns)."""
        import pyarrow as pa

        table = pa.Table.from_batches(batches)
        for i in range(table.num_columns):
            column = table.column(i)
            if not self.started:
                converted, kind = infer_column(column)
                self.kinds[i] = kind
                if kind in self._TYPED:
                    self.targets[i] = converted.type
                    self.pieces[i].append(converted)
            elif self.targets[i] is not None:
                converted = convert_text(column, self.targets[i])
                if converted is None:  # a later value doesn't fit: retype the whole column at the end
                    self.targets[i], self.pieces[i] = None, []
                else:
                    self.pieces[i].append(converted)
        self.started = True

    def typed(self, i: int) -> tuple[Any, str] | None:
        """Column ``i`` converted, with its kind, if it stayed typed over every group (else None)."""
        import pyarrow as pa

        if self.targets[i] is None:
            return None
        chunks = [chunk for piece in self.pieces[i]
                  for chunk in (piece.chunks if isinstance(piece, pa.ChunkedArray) else [piece])]
        self.pieces[i] = []
        return pa.chunked_array(chunks, type=self.targets[i]), str(self.kinds[i])


def _arrow_frame(body: _Body, *, block_size: int) -> Any:
    """The pyarrow path of :func:`download_dataframe` (CSV).

    Three stages overlap: pyarrow's I/O thread pulls the HTTP body, the calling thread parses
    blocks (every column as text), a worker thread types the rows parsed so far.
    """
    import pandas as pd
    import pyarrow as pa

    read = read_csv_text_batches(body.stream, block_size=block_size)
    if read is None:
        return pd.DataFrame()
    names, batches = read
    if not names:
        return pd.DataFrame()
    typer = _ColumnTyper(len(names))
    collected = _read_and_type(batches, typer)
    if not any(len(b) for b in collected):
        return pd.DataFrame(columns=names)  # header only: like pandas, columns and no rows
    table = pa.Table.from_batches(collected)
    del collected
    table, kinds = _typed_table(table, names, typer)
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    return _pandas_types(frame, kinds)


def _read_and_type(batches: Iterator[Any], typer: _ColumnTyper) -> list[Any]:
    """Every text batch read, typed on a worker thread ``TYPING_ROWS`` rows at a time while reading goes on."""
    from concurrent.futures import Future, ThreadPoolExecutor

    collected: list[Any] = []
    with ThreadPoolExecutor(1, thread_name_prefix="cargo-csv-typing") as pool:  # pyarrow frees the GIL
        pending: list[Future[None]] = []
        group: list[Any] = []
        rows = 0
        try:
            for batch in batches:
                collected.append(batch)
                group.append(batch)
                rows += batch.num_rows
                if rows >= TYPING_ROWS:
                    pending.append(pool.submit(typer.feed, group))
                    group, rows = [], 0
            if rows:
                pending.append(pool.submit(typer.feed, group))
        except BaseException:
            for future in pending:
                future.cancel()  # the read failed: don't type what's left
            raise
        for future in pending:
            future.result()  # re-raise a typing error
    return collected


def _typed_table(table: Any, names: list[str], typer: _ColumnTyper) -> tuple[Any, dict[str, list[str]]]:
    """The table with each text column replaced by its typed version, and the columns pandas must finish:
    ``date-text`` (parsed as UTC datetimes), nullable ``bool`` and ``bigint``."""
    kinds: dict[str, list[str]] = {"date-text": [], "bool": [], "bigint": []}
    for i, name in enumerate(names):
        typed = typer.typed(i)
        converted, kind = typed if typed is not None else infer_column(table.column(i))
        table = table.set_column(i, name, converted)  # the text version is freed here
        if kind in ("date-text", "bigint") or kind == "bool" and converted.null_count:
            kinds[kind].append(name)
    return table, kinds


def _pandas_types(frame: Any, kinds: dict[str, list[str]]) -> Any:
    import pandas as pd

    for name in kinds["date-text"]:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    for name in kinds["bool"]:  # object True/False/None → True/False/NaN, as pandas.read_csv gives
        frame[name] = frame[name].where(frame[name].notna(), float("nan"))
    for name in kinds["bigint"]:
        frame[name] = pd.Series([int(v) if isinstance(v, str) else v for v in frame[name]], dtype=object,
                                index=frame.index)
    return frame


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
            stream = _CountingStream(iter([data]))
            return _arrow_frame(_Body(stream, None, "", None), block_size=DEFAULT_BLOCK_SIZE)
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
    block_size: int = DEFAULT_BLOCK_SIZE,
    sniff: bool = False,
) -> Any:
    """Fetch ``url`` (no auth headers) and parse it into a pandas DataFrame.

    CSV is parsed while it streams in: with pyarrow (``engine="auto"`` picks it when it is
    installed) in blocks of ``block_size`` bytes, else with ``pandas.read_csv``. See
    :func:`frame_from_bytes` for the typing rules, the same for both. A gzip body (a ``.gz``
    file, or ``Content-Encoding: gzip``) is gunzipped as it streams. With ``sniff``, the format
    is read from the body itself (JSON when it starts with ``[`` or ``{``, else CSV), for
    files whose format Cargo does not document (the batch download).

    Raises:
        CargoDownloadError: non-2xx status (e.g. an expired URL), a transfer shorter than
            its ``Content-Length``, or unparseable content. The message names the batch.
    """
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
                frame = _arrow_frame(body, block_size=block_size)
            else:
                frame = frame_from_bytes(io.BufferedReader(body.stream, buffer_size=1 << 20), format,
                                         engine="pandas")
        except httpx.TransportError:
            raise  # open_download names it
        except (ValueError, UnicodeDecodeError, OSError, zlib.error) as exc:  # pyarrow.ArrowInvalid: ValueError
            raise body.failure(exc, format) from exc
        body.check_complete()
        return frame
