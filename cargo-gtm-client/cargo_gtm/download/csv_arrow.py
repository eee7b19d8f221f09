"""CSV to typed columns: the pyarrow path of :func:`~cargo_gtm.download.dataframe.download_dataframe`
(every column read as text block by block, then typed from its whole text, as pandas infers it) and the
ISO-8601 date detection both CSV engines share. :func:`read_csv_text_batches` and :func:`infer_column` are
shared with :mod:`cargo_gtm.download.parquet`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterator
from typing import Any

from .stream import _Body, _CountingStream

__all__ = ["DEFAULT_BLOCK_SIZE", "FRAME_BLOCK_SIZE", "ExactChunkingNeeded", "convert_text", "infer_column", "parse_dates",
           "read_csv_text_batches", "read_csv_text_table"]

#: Bytes pyarrow's streaming reader parses per block (the Parquet path): 1 MiB measured best on time and peak RSS.
DEFAULT_BLOCK_SIZE = 1 << 20
#: Bytes per block of a DataFrame download (:class:`_Segments`, one ``read_csv`` call each): 2 MiB took ~4% less
#: CPU than 1 MiB on B3's 1M-row body (fewer calls), 8 MiB more (a block no longer fits the cache while parsed).
FRAME_BLOCK_SIZE = 2 << 20
#: Below this many rows a table's columns are typed one after the other on the calling thread: a pool's
#: threads cost more to start than a few thousand values take to type.
SMALL_TABLE_ROWS = 20_000
#: The first block of a DataFrame download; later ones grow ×4 up to FRAME_BLOCK_SIZE.
FIRST_BLOCK_SIZE = 256 << 10

#: Cells read as missing: only the empty cell. Text that merely *looks* missing ("None", "NA", "null",
#: "N/A", "nan", "#N/A", ...) is a value: a company named "None" or the country code "NA" stays text.
NULL_VALUES = [""]
TRUE_VALUES = ["True", "TRUE", "true"]
FALSE_VALUES = ["False", "FALSE", "false"]

_ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
_ISO_DATE = re.compile(_ISO_DATE_PATTERN)


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


class ExactChunkingNeeded(ValueError):
    """The quote-parity cut (:class:`_RowBlocks`) met a CSV it can't cut safely (a stray quote in an
    unquoted field, or no row end in a long stretch): read the body again with pyarrow's own
    newline-aware chunker. Raised before any frame is returned, never after."""


#: Without a row end in this many bytes the quote-parity cut gives up (see :class:`ExactChunkingNeeded`).
MAX_CARRY = 1 << 24


def _row_end(buf: bytearray, size: int) -> tuple[int, int]:
    """Bytes of ``buf[:size]`` (which starts at a row boundary) up to and including its last row-ending
    ``\n`` (0 when it holds none), and the quotes before that point.

    A ``\n`` ends a row when an even number of quotes precede it: in CSV as writers produce it
    (RFC 4180: a field holding a quote, comma or line end is quoted, quotes inside it doubled) every
    quote opens a quoted field, closes it, or is half of a doubled pair. A block without quotes is cut at
    its last ``\n`` at once (``find`` is a ``memchr``); otherwise counting uses numpy (a few hundredths of a
    second per 300 MB). A file with a stray quote in an unquoted field can make the count lie; the cut is
    then inside a quoted value and pyarrow's parser stops with an error there (it cannot end a block inside
    quotes), which :func:`read_csv_text_batches` turns into :class:`ExactChunkingNeeded`.
    """
    import numpy as np

    end = buf.rfind(b"\n", 0, size)
    if end < 0:
        return 0, 0
    if buf.find(b'"', 0, end) < 0:
        return end + 1, 0
    codes = np.frombuffer(buf, dtype=np.uint8, count=size)
    quotes = seen = int(np.count_nonzero(codes[:end] == 34))
    while quotes % 2:  # that \n is inside a quoted value: step back to the previous one
        previous = buf.rfind(b"\n", 0, end)
        if previous < 0:
            return 0, seen
        quotes -= int(np.count_nonzero(codes[previous:end] == 34))
        end = previous
    return end + 1, seen


class _RowBlocks(io.RawIOBase):
    """Blocks of whole CSV rows read from a :class:`_CountingStream`, for pyarrow's plain chunker.

    pyarrow's newline-aware chunker (``newlines_in_values=True``) lexes every block serially; blocks that
    already end at a row end can be parsed without it (by the streaming reader's plain chunker, or whole by
    :class:`_Segments`), and the parser still reads line ends inside quoted values. Each block is a buffer
    (fresh, or one a parsed block gave back: :meth:`recycle`) the body is read into, straight from the socket
    when the body comes from one (no copy at all); only the cut-off tail (less than one row) is copied into
    the next.
    """

    def __init__(self, source: _CountingStream, block_size: int) -> None:
        self._source = source
        self._block_size = block_size
        # blocks grow to block_size (×4 each): a small body (a batch of a few hundred rows) is one small
        # buffer, not a zeroed block of block_size bytes; a big one pays two or three extra parse calls
        self._next_size = min(block_size, FIRST_BLOCK_SIZE)
        self._carry = b""
        self.saw_quote = False
        self._spares: list[bytearray] = []  # buffers handed back by recycle(), reused: no fresh pages to fault in

    def readable(self) -> bool:
        return True

    def recycle(self, buf: bytearray) -> None:
        """Give a block's buffer back for a later block, once nothing can read it any more: a buffer some view
        still exports (pyarrow holding on to it) can't shrink, and is left alone."""
        try:
            buf.pop()  # O(1), and refused while exported
        except BufferError:
            return
        buf.append(0)
        self._spares.append(buf)

    def _buffer(self, size: int) -> bytearray:
        while self._spares:
            buf = self._spares.pop()
            if len(buf) == size:
                return buf
        return bytearray(size)

    def read(self, size: int | None = -1) -> Any:  # noqa: ARG002 - blocks are cut at row ends, not at size
        block = self.block()
        return b"" if block is None else memoryview(block[0])[:block[1]]

    def block(self, spare: int = 0) -> tuple[bytearray, int] | None:
        """The next block: a buffer whose first ``cut`` bytes are whole rows (the last block: the rest of the
        body), with at least ``spare`` bytes of room after them; None at the end of the body."""
        if not self._carry and self._source.drained:
            return None
        carry, want = self._carry, self._next_size
        self._next_size = min(self._block_size, self._next_size * 4)
        while True:
            want = max(want, len(carry) + 1)
            buf = self._buffer(want + spare)
            view = memoryview(buf)
            view[:len(carry)] = carry
            filled = len(carry) + self._source.fill(view[len(carry):want])
            if filled < want:  # the body ended: the rest is the last block
                self._carry = b""
                return (buf, filled) if filled else None
            cut, quotes = _row_end(buf, filled)
            if cut:
                break
            if filled > MAX_CARRY:
                raise ExactChunkingNeeded(f"no row end in {filled} bytes")
            carry, want = buf[:filled], filled + self._block_size  # grow this block until a row ends in it
        self.saw_quote = self.saw_quote or quotes > 0
        self._carry = bytes(view[cut:filled])
        return buf, cut

    def readinto(self, target: Any) -> int:  # pragma: no cover - pyarrow calls read()
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


def _text_csv_options(width: int, *, block_size: int, use_threads: bool = True,
                      exact: bool = True) -> tuple[Any, Any, Any]:
    """pyarrow CSV options reading ``width`` columns (``c0`` …) as text, the header row skipped;
    ``exact=False`` when the blocks are cut at row ends already (:class:`_RowBlocks`)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    internal = [f"c{i}" for i in range(width)]
    return (
        pacsv.ReadOptions(block_size=block_size, use_threads=use_threads, column_names=internal,
                          skip_rows_after_names=1),
        pacsv.ParseOptions(newlines_in_values=exact),
        pacsv.ConvertOptions(column_types={c: pa.string() for c in internal}, null_values=NULL_VALUES,
                             strings_can_be_null=True, quoted_strings_can_be_null=True),
    )


def _names(stream: _CountingStream) -> list[str] | None:
    names = _header(stream)
    return None if names is None else _unique_names(names)


def _prepared(stream: _CountingStream, block_size: int, use_threads: bool,
              exact: bool) -> tuple[list[str], Any, tuple[Any, Any, Any]] | None:
    """The column names, the source pyarrow reads (row blocks, or the body itself when ``exact``) and
    the options reading every column as text; None for an empty body (names ``[]``: no columns)."""
    names = _names(stream)
    if names is None:
        return None
    head = stream.peek_prefix(0)
    line_end = head.find(b"\n")
    if not exact and b'"' in (head if line_end < 0 else head[:line_end]):
        exact = True  # a quoted header may hold a line end: pyarrow skips it with the exact chunker only
    options = _text_csv_options(max(len(names), 1), block_size=block_size, use_threads=use_threads, exact=exact)
    return names, (stream if exact else _RowBlocks(stream, block_size)), options


def read_csv_text_batches(
    stream: _CountingStream,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    use_threads: bool = True,
    exact: bool = False,
) -> tuple[list[str], Iterator[Any]] | None:
    """Stream a CSV body through ``pyarrow.csv.open_csv`` with every column read as text.

    Returns the column names (pandas' header rules) and an iterator of ``RecordBatch``es whose
    columns are ``string`` (empty cells and pandas' ``na_values`` are null), or None for an
    empty body. Memory is a few blocks of ``block_size`` bytes, whatever the body's size.

    Blocks are cut at row ends by quote parity (:class:`_RowBlocks`) unless ``exact``, which uses
    pyarrow's newline-aware chunker (slower, serial). Iterating may raise :class:`ExactChunkingNeeded`:
    read the body again with ``exact=True``.
    """
    import pyarrow.csv as pacsv

    prepared = _prepared(stream, block_size, use_threads, exact)
    if prepared is None:
        return None
    names, source, (read, parse, convert) = prepared
    if not names:
        return [], iter(())
    reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert,
                            memory_pool=_reader_pool())
    return names, (_checked(reader, source, stream) if isinstance(source, _RowBlocks) else iter(reader))


def read_csv_text_table(stream: _CountingStream, *, block_size: int = FRAME_BLOCK_SIZE,
                        exact: bool = False) -> tuple[list[str], Any] | None:
    """The whole CSV body as one ``pyarrow.Table`` of text columns (see :func:`read_csv_text_batches`), its
    blocks parsed in parallel as they arrive (:class:`_Segments`). None for an empty body; ``([], None)``
    for no columns. May raise :class:`ExactChunkingNeeded`, as :func:`read_csv_text_batches` does; with
    ``exact``, pyarrow's ``read_csv`` reads the body with its newline-aware chunker."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    prepared = _prepared(stream, block_size, True, exact)
    if prepared is None:
        return None
    names, source, (read, parse, convert) = prepared
    if not names:
        return [], None
    if not isinstance(source, _RowBlocks):
        return names, pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert,
                                     memory_pool=_reader_pool())
    try:
        return names, _Segments(source, len(names), convert).read()
    except pa.ArrowInvalid as exc:
        if _parity_may_be_wrong(exc, source, stream):
            raise ExactChunkingNeeded(str(exc)) from exc
        raise


class _Segments:
    """Row blocks (:class:`_RowBlocks`) parsed in parallel, each on its own by ``pyarrow.csv.read_csv`` as one
    block (a worker thread each; pyarrow frees the GIL), while the calling thread receives the next ones.

    pyarrow's own multi-threaded reader can't take the blocks: it parses the pieces its chunker cuts with
    no check that each ends where a row does, so a cut that quote parity got wrong (a stray quote) would
    silently split a quoted value. Here every block is parsed as a whole with a **sentinel row** appended (a
    random token in the first column): when the block really ends at a row end, the sentinel is its last
    row (and is dropped); when the cut is inside a quoted value, the sentinel is swallowed by it, and
    :class:`ExactChunkingNeeded` asks for an exact read.
    """

    def __init__(self, blocks: _RowBlocks, width: int, convert: Any) -> None:
        import secrets

        self._blocks = blocks
        self._width = width
        self._convert = convert
        self._token = f"\x00cargo-sentinel-{secrets.token_hex(8)}"
        self._sentinel = (self._token + "," * (width - 1) + "\n").encode()
        self._pool = _reader_pool()

    def read(self) -> Any:
        """Every block's rows, in order, as one table of text columns."""
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        import pyarrow as pa

        spare = len(self._sentinel) + 1
        head = self._blocks.block(spare=spare)
        if head is None:
            return self._parse(bytearray(spare), 0, False)  # no rows: the schema
        block = self._blocks.block(spare=spare)
        if block is None:  # a body of one block (most batches): parsed here, no thread pool to start
            return self._parse(*head, True)
        workers = max(1, pa.cpu_count())
        tables: list[Any] = []
        pending: deque[Future[Any]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="cargo-csv-parse") as pool:
            try:
                pending.append(pool.submit(self._parse, *head, True))
                while block is not None:
                    pending.append(pool.submit(self._parse, *block, False))
                    while len(pending) > 2 * workers:  # bounded: at most a few blocks wait, whatever the body
                        tables.append(pending.popleft().result())
                    block = self._blocks.block(spare=spare)
                while pending:
                    tables.append(pending.popleft().result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return pa.concat_tables(tables)

    def _parse(self, buf: bytearray, size: int, first: bool) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if size and buf[size - 1] not in (10, 13):  # the body's last row, without a line end
            buf[size] = 10
            size += 1
        end = size + len(self._sentinel)
        buf[size:end] = self._sentinel
        internal = [f"c{i}" for i in range(self._width)]
        read = pacsv.ReadOptions(block_size=end + 1, use_threads=False, column_names=internal,
                                 skip_rows_after_names=1 if first else 0)
        table = pacsv.read_csv(pa.py_buffer(memoryview(buf)[:end]), read_options=read,
                               parse_options=pacsv.ParseOptions(newlines_in_values=False),
                               convert_options=self._convert, memory_pool=self._pool)
        last = table.num_rows - 1
        if last < 0 or table.column(0)[last].as_py() != self._token:
            raise ExactChunkingNeeded("a block was not cut at a row end (a stray quote misled quote parity)")
        self._blocks.recycle(buf)  # the table holds copies of the values, not the block
        return table.slice(0, last)


def _parity_may_be_wrong(exc: BaseException, blocks: _RowBlocks, stream: _CountingStream) -> bool:
    """A parse error after a quote was seen, with the body intact so far, may come from a cut that quote
    parity got wrong."""
    return blocks.saw_quote and stream.error is None and not isinstance(exc, ExactChunkingNeeded)


def _checked(reader: Any, blocks: _RowBlocks, stream: _CountingStream) -> Iterator[Any]:
    """``reader``'s batches; a parse error that quote parity may have caused (:func:`_parity_may_be_wrong`)
    becomes :class:`ExactChunkingNeeded`, which asks for an exact read."""
    import pyarrow as pa

    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        if _parity_may_be_wrong(exc, blocks, stream):
            raise ExactChunkingNeeded(str(exc)) from exc
        raise


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
    return _all_shaped_like(column, first) or _all_valid_match(column, _ISO_DATE_PATTERN)


def _all_shaped_like(column: Any, sample: str) -> bool:
    """Whether every non-null value has ``sample``'s shape: its length, an ASCII digit wherever ``sample`` has
    one and ``sample``'s byte everywhere else (vectorized over the values' bytes, a few times cheaper than the
    regex). ``sample`` matching the ISO pattern, every value of its shape does: the pattern tells digits
    apart only as ``\\d``. False means "not proven", never "no": the regex then decides."""
    import numpy as np
    import pyarrow as pa

    if not sample.isascii():
        return False
    shape = np.frombuffer(sample.encode(), dtype=np.uint8)
    digits = (shape >= 48) & (shape <= 57)
    low = np.where(digits, 48, shape).astype(np.uint8)  # value - low: below 10 for a digit, 0 for the same byte
    span = np.where(digits, 10, 1).astype(np.uint8)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return all(_chunk_shaped(chunk, low, span) for chunk in chunks)


def _chunk_shaped(chunk: Any, low: Any, span: Any) -> bool:
    import numpy as np
    import pyarrow as pa

    if chunk.null_count == len(chunk):
        return True
    if chunk.type != pa.string():
        return False
    width = len(low)
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    sizes = np.diff(offsets)
    # every non-null value is `width` long (nulls are empty here: pyarrow's CSV reader writes no bytes for them)
    if int(np.count_nonzero(sizes == width)) != len(chunk) - chunk.null_count or np.count_nonzero(sizes) != len(
            chunk) - chunk.null_count:
        return False
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].reshape(-1, width)
    return bool(((data - low) < span).all())


def _cast_bool(column: Any) -> Any | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if _first_value(column) not in TRUE_VALUES + FALSE_VALUES:
        return None
    # one hash lookup: the position among the true then false spellings, null for a null or any other value
    positions = pc.index_in(column, value_set=pa.array(TRUE_VALUES + FALSE_VALUES))
    if positions.null_count != column.null_count:
        return None
    return pc.less(positions, len(TRUE_VALUES))  # null stays null


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


def _arrow_frame(body: _Body, *, block_size: int, exact: bool = False, arrow_dtypes: bool = False) -> Any:
    """The pyarrow path of :func:`download_dataframe` (CSV).

    pyarrow's ``read_csv`` reads the body as text columns (its I/O thread pulls the body while its pool
    parses blocks in parallel), then every column is typed from its whole text (:func:`infer_column`),
    columns in parallel, and the text is freed column by column.
    """
    import pandas as pd

    read = read_csv_text_table(body.stream, block_size=block_size, exact=exact)
    if read is None:
        return pd.DataFrame()
    names, table = read
    if not names:
        return pd.DataFrame()
    if table.num_rows == 0:
        return pd.DataFrame(columns=names)  # header only: like pandas, columns and no rows
    table, kinds = _typed_table(table, names)
    if arrow_dtypes:  # ArrowDtype columns: the arrow buffers as they are, no conversion to numpy
        frame = table.to_pandas(types_mapper=pd.ArrowDtype, self_destruct=True, split_blocks=True)
        del table
        return _pandas_types(frame, {"date-text": kinds["date-text"], "bool": [], "bigint": kinds["bigint"]})
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    return _pandas_types(frame, kinds)


def _typed_table(table: Any, names: list[str]) -> tuple[Any, dict[str, list[str]]]:
    """The table with each text column replaced by its typed version (typed on a few threads: pyarrow's
    kernels free the GIL), and the columns pandas must finish: ``date-text`` (parsed as UTC datetimes),
    nullable ``bool`` and ``bigint``."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import pyarrow as pa

    kinds: dict[str, list[str]] = {"date-text": [], "bool": [], "bigint": []}

    def take(i: int, converted: Any, kind: str) -> None:
        nonlocal table
        table = table.set_column(i, names[i], converted)  # the text version is freed here
        if kind in ("date-text", "bigint") or kind == "bool" and converted.null_count:
            kinds[kind].append(names[i])

    workers = max(1, min(len(names), pa.cpu_count()))
    if table.num_rows < SMALL_TABLE_ROWS or workers == 1:  # threads would cost more than they save
        for i in range(len(names)):
            take(i, *infer_column(table.column(i)))
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="cargo-csv-typing") as pool:
            pending = {pool.submit(infer_column, table.column(i)): i for i in range(len(names))}
            for future in as_completed(pending):
                take(pending.pop(future), *future.result())
    order = {name: i for i, name in enumerate(names)}
    return table, {kind: sorted(columns, key=order.__getitem__) for kind, columns in kinds.items()}


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
