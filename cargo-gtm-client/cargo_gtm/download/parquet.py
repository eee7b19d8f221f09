"""Stream a Cargo output to a Parquet file, for outputs that outgrow memory (needs ``pyarrow``).

The CSV body is parsed block by block (:func:`~cargo_gtm.download.csv_arrow.read_csv_text_batches`)
and written as it arrives, one Parquet row group per ``row_group_rows`` rows, so peak memory is
bounded by the row-group size, not by the file's size. The file is written to a temporary name
next to ``path`` and renamed onto ``path`` only once the whole body arrived (``Content-Length``
checked) and, with ``expected_rows``, holds enough rows: a failed attempt never leaves a partial
file behind, and ``path`` is either the complete output or untouched.

JSON files (Cargo's docs leave the batch file's format open) are parsed whole and written as one row
group, their ``output`` objects spread into columns; memory is then the output's size. A CSV with one JSON
``output`` column is written as served (the column stays JSON text): use
:meth:`~cargo_gtm.CargoClient.download_batch_dataframe` to have it spread. The Parquet file holds
the batch file's rows, without the ``_status`` column the DataFrame download adds.

Column types
------------
A column's type is decided on the **first row group**, with the same rules as the DataFrame
download (:func:`~cargo_gtm.download.csv_arrow.infer_column`): ``int64`` (``uint64`` beyond
it), ``float64``, ``bool``, ``timestamp[us, UTC]`` for ISO-8601 text, else ``string``. A column
that is empty throughout the first row group is written as ``string``.

Parquet has one schema per file, so a later value that doesn't fit the decided type (``"n/a"``
after 250,000 integers) cannot be written into the file already started. Then the column is
*pinned* to a wider type (``int64`` → ``float64`` when the value is a decimal number, anything
else → ``string``), the temporary file is dropped and the download starts again with a fresh
URL; such a restart does not count as a failed attempt and is logged as a warning. Pass
``column_types={"employee_count": "string"}`` to pin a column up front and skip the restart.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import httpx

from ..errors import CargoDownloadError
from ..running.clock import SYSTEM_CLOCK
from .csv_arrow import (
    DEFAULT_BLOCK_SIZE,
    ExactChunkingNeeded,
    _integers_beyond_64_bits,
    convert_text,
    infer_column,
    read_csv_text_batches,
)
from .fetch import fetch_with_retries
from .stream import _CountingStream, open_download

__all__ = ["DEFAULT_ROW_GROUP_ROWS", "ParquetResult", "StrPath", "download_to_parquet", "write_parquet_from_url"]

StrPath: TypeAlias = "str | os.PathLike[str]"

logger = logging.getLogger("cargo_gtm")

#: Rows per Parquet row group (and per in-memory batch): about 80 MiB of text for 20 columns.
DEFAULT_ROW_GROUP_ROWS = 250_000


@dataclass(frozen=True)
class ParquetResult:
    """What :func:`download_to_parquet` wrote.

    Attributes:
        path: the Parquet file (absolute).
        rows: rows written (equals the rows served).
        columns: column names, in file order.
        schema: column → Arrow type, e.g. ``{"employee_count": "int64", "created_at": "timestamp[us, tz=UTC]"}``.
        row_groups: Parquet row groups written.
        bytes_downloaded: CSV bytes received.
        restarts: downloads started again because a column's values outgrew the type of the first row
            group (see the module docs); 0 in the usual case.
    """

    path: str
    rows: int
    columns: list[str] = field(default_factory=list)
    schema: dict[str, str] = field(default_factory=dict)
    row_groups: int = 0
    bytes_downloaded: int = 0
    restarts: int = 0


class _TypeConflict(Exception):
    """A later row group holds a value the column's type can't take: restart with ``widened``."""

    def __init__(self, column: str, current: Any, widened: Any, detail: str) -> None:
        super().__init__(f"column {column!r}: {detail}")
        self.column, self.current, self.widened = column, current, widened


def _require_pyarrow() -> None:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("Writing Parquet needs pyarrow: pip install 'dagster-cargo[arrow]'") from exc


def _as_type(value: Any) -> Any:
    """A pyarrow DataType from a DataType or an alias (``"string"``, ``"int64"``, ``"float64"``, ``"bool"``,
    ``"timestamp"`` = ``timestamp[us, tz=UTC]``)."""
    import pyarrow as pa

    if isinstance(value, pa.DataType):
        return value
    if value in ("timestamp", "datetime"):
        return pa.timestamp("us", "UTC")
    return pa.type_for_alias(str(value))


def _decide(column: Any) -> tuple[Any, Any]:
    """Infer a first row group's column: ``(converted column, type for the file)``."""
    import pyarrow as pa

    converted, kind = infer_column(column)
    if kind in ("null", "date-text", "text", "bigint"):
        return column, pa.string()
    return converted, converted.type


def _convert(name: str, column: Any, target: Any) -> Any:
    """Cast a text column to the file's ``target`` type, or raise :class:`_TypeConflict`."""
    import pyarrow as pa

    converted = convert_text(column, target)
    if converted is not None:
        return converted
    widened = pa.string()
    if pa.types.is_integer(target):
        floats = convert_text(column, pa.float64())
        if floats is not None and not _integers_beyond_64_bits(column, floats):
            widened = pa.float64()
    raise _TypeConflict(name, target, widened, f"a value doesn't fit {target}")


def _write(stream: _CountingStream, tmp: str, pins: Mapping[str, Any], *, block_size: int,
           row_group_rows: int, compression: str, exact: bool = False) -> tuple[int, list[str], dict[str, str], int]:
    """Parse ``stream`` and write it to ``tmp``; return (rows, columns, schema, row groups).

    Parser errors propagate as they are (the caller names them); a column outgrowing its type raises
    :class:`_TypeConflict`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if stream.peek_prefix(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{"):
        return _write_json(stream, tmp, compression=compression)
    read = read_csv_text_batches(stream, block_size=block_size, exact=exact)
    if read is None or not read[0]:
        pq.write_table(pa.table({}), tmp, compression=compression)
        return 0, [], {}, 0
    names, batches = read
    internal = [f"c{i}" for i in range(len(names))]
    writer: Any = None
    schema: Any = None
    rows = groups = 0
    pending: list[Any] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal writer, schema, rows, groups, pending, pending_rows
        table = pa.Table.from_batches(pending, schema=pa.schema([(c, pa.string()) for c in internal]))
        pending, pending_rows = [], 0
        columns = []
        if schema is None:
            fields = []
            for i, name in enumerate(names):
                if name in pins:
                    converted = _convert(name, table.column(i), pins[name])
                    fields.append(pa.field(name, pins[name]))
                else:
                    converted, decided = _decide(table.column(i))
                    fields.append(pa.field(name, decided))
                columns.append(converted)
            schema = pa.schema(fields)
            writer = pq.ParquetWriter(tmp, schema, compression=compression)
        else:
            columns = [_convert(f.name, table.column(i), f.type) for i, f in enumerate(schema)]
        del table
        out = pa.Table.from_arrays(columns, schema=schema)
        writer.write_table(out, row_group_size=max(1, out.num_rows))
        rows += out.num_rows
        groups += 1

    try:
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= row_group_rows:
                flush()
        if pending_rows or writer is None:
            flush()  # the last row group; or, for a header-only body, a file with columns and no rows
    finally:
        if writer is not None:
            writer.close()
    assert schema is not None
    return rows, list(names), {f.name: str(f.type) for f in schema}, groups if rows else 0


def _write_json(stream: _CountingStream, tmp: str, *, compression: str) -> tuple[int, list[str], dict[str, str], int]:
    """A JSON output file (array or NDJSON) to Parquet: parsed whole (JSON has no streaming reader here), its
    ``output`` objects spread into columns as in the DataFrame download, written as one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .layout import frame_from_rows, is_object_column, json_rows, spread_output

    frame = frame_from_rows(json_rows(stream.read()))
    if is_object_column(frame):
        frame = spread_output(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp, compression=compression)
    return table.num_rows, [str(c) for c in frame.columns], {f.name: str(f.type) for f in table.schema}, \
        1 if table.num_rows else 0


def _temp_path(path: Path) -> str:
    return str(path.with_name(f".{path.name}.{secrets.token_hex(6)}.part"))


def _unlink(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def write_parquet_from_url(
    url: str,
    path: StrPath,
    *,
    expected_rows: int | None = None,
    column_types: Mapping[str, Any] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    compression: str = "snappy",
    timeout: float = 300.0,
    http: httpx.Client | None = None,
    batch_uuid: str | None = None,
    exact: bool = False,
) -> ParquetResult:
    """One download of ``url`` (no auth headers) into the Parquet file ``path``, atomically: ``path``
    is replaced only by a complete file (every byte of ``Content-Length``, at least ``expected_rows``).

    Raises:
        CargoDownloadError: as :func:`~cargo_gtm.download.dataframe.download_dataframe`, or fewer
            rows than ``expected_rows`` (a partial download).
        _TypeConflict: a column outgrew its first-row-group type (internal; see
            :func:`download_to_parquet`, which restarts).
        ExactChunkingNeeded: the CSV can't be cut by quote parity; :func:`download_to_parquet` restarts
            with ``exact=True``.
    """
    _require_pyarrow()
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    pins = {name: _as_type(t) for name, t in (column_types or {}).items()}
    tmp = _temp_path(target)
    try:
        with open_download(url, timeout=timeout, http=http, batch_uuid=batch_uuid) as body:
            try:
                rows, columns, schema, groups = _write(body.stream, tmp, pins, block_size=block_size,
                                                       row_group_rows=row_group_rows, compression=compression,
                                                       exact=exact)
            except (_TypeConflict, httpx.TransportError, ExactChunkingNeeded):
                raise
            except (ValueError, UnicodeDecodeError) as exc:  # pyarrow.ArrowInvalid is a ValueError
                raise body.failure(exc, "csv") from exc
            except OSError as exc:
                if body.stream.error is None and body.wire.error is None:
                    raise  # the disk, not the download (e.g. no space left): retrying won't help
                raise body.failure(exc, "csv") from exc
            body.check_complete()
            received = body.received
        if expected_rows is not None and rows < expected_rows:
            raise CargoDownloadError(
                f"Cargo outputs{body.what} hold {rows} rows but {expected_rows} runs succeeded: the download "
                "is partial.", hint="re-run; if it persists, report the batch to Cargo.",
                batch_uuid=batch_uuid,
            )
        os.replace(tmp, target)
    except BaseException:
        _unlink(tmp)
        raise
    return ParquetResult(str(target), rows, columns, schema, groups, received)


def download_to_parquet(
    get_url: Callable[[], str],
    path: StrPath,
    *,
    expected_rows: int | None = None,
    attempts: int = 3,
    column_types: Mapping[str, Any] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    compression: str = "snappy",
    timeout: float = 300.0,
    batch_uuid: str | None = None,
    sleep: Callable[[float], None] = SYSTEM_CLOCK.sleep,
) -> ParquetResult:
    """Download a Cargo output into the Parquet file ``path``, with retries; memory stays bounded.

    ``get_url`` is called for every attempt (download URLs expire: each attempt gets a fresh one).
    A failed transfer (expired URL, truncated body, dropped connection) or, with ``expected_rows``,
    fewer rows than that is retried after a pause (:func:`~.stream.retry_pause`, through ``sleep``),
    up to ``attempts`` tries; a column that outgrows the type of
    the first row group restarts the download with that column widened (see the module docs).
    ``path`` is replaced only by a complete file.

    Raises:
        CargoDownloadError: still failing or partial after ``attempts`` tries.
    """
    pins: dict[str, Any] = {name: _as_type(t) for name, t in (column_types or {}).items()}
    restarts = 0
    exact = False
    what = f" for batch {batch_uuid}" if batch_uuid else ""

    def one_download() -> ParquetResult:
        nonlocal restarts, exact
        while True:  # a type conflict is no failed attempt: the download was fine, the column is widened
            try:
                return write_parquet_from_url(get_url(), path, expected_rows=expected_rows, column_types=pins,
                                              block_size=block_size, row_group_rows=row_group_rows,
                                              compression=compression, timeout=timeout, batch_uuid=batch_uuid,
                                              exact=exact)
            except _TypeConflict as conflict:
                _widen(pins, conflict, what, batch_uuid)
                restarts += 1
            except ExactChunkingNeeded:
                if exact:  # pragma: no cover - the exact reader never raises it
                    raise
                exact = True  # a stray quote: read again with pyarrow's newline-aware chunker
                restarts += 1

    def give_up(last: CargoDownloadError) -> CargoDownloadError:
        return CargoDownloadError(
            f"Downloading Cargo outputs{what} to Parquet failed {attempts} time(s), each with a fresh URL; "
            f"last: {last.message} {Path(path)} was left as it was.",
            hint="re-execute the step later; if downloads keep failing, report the batch UUID to Cargo.",
            batch_uuid=batch_uuid)

    result = fetch_with_retries(one_download, attempts=attempts, sleep=sleep, what=f"Parquet download{what}",
                                give_up=give_up)
    return ParquetResult(result.path, result.rows, result.columns, result.schema, result.row_groups,
                         result.bytes_downloaded, restarts)


def _widen(pins: dict[str, Any], conflict: _TypeConflict, what: str, batch_uuid: str | None) -> None:
    """Pin the conflicting column to its widened type for the next download (logged)."""
    if conflict.column in pins and pins[conflict.column] == conflict.widened:  # pragma: no cover
        raise CargoDownloadError(f"Cargo outputs{what}: {conflict}", batch_uuid=batch_uuid) from conflict
    pins[conflict.column] = conflict.widened
    logger.warning(
        "Parquet download%s: %s; it was typed %s from the first row group. Downloading again with it "
        "as %s (pass column_types={%r: %r} to skip this).", what, conflict, conflict.current,
        conflict.widened, conflict.column, str(conflict.widened))
