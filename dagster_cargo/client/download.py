"""Download Cargo output files (presigned URLs) into pandas DataFrames.

The download URL returned by Cargo is fetched **without** any Cargo header: the API token
is never sent to the storage host. The body is streamed (not held whole in memory for
CSV) and checked against ``Content-Length``, so a truncated transfer raises instead of
returning partial data.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any, Literal

import httpx

from .errors import CargoDownloadError

__all__ = ["download_dataframe", "frame_from_bytes"]


class _CountingStream(io.RawIOBase):
    """A readable file object over an iterator of byte chunks, counting bytes read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self.bytes_read += size
        return size


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_dates(frame: Any) -> Any:
    """Turn text columns whose every value is an ISO-8601 date or date-time into UTC datetimes.

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
        values = series.dropna()
        if values.empty or not all(isinstance(v, str) and _ISO_DATE.match(v) for v in values):
            continue
        try:
            frame[column] = pd.to_datetime(series, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            continue
    return frame


def frame_from_bytes(content: bytes | io.IOBase, format: Literal["csv", "json"]) -> Any:
    """Parse CSV or JSON (array of objects, or NDJSON) output into a DataFrame.

    Numbers come out as numbers (pandas inference) and ISO-8601 dates as UTC datetimes.
    """
    import pandas as pd

    if format == "csv":
        source = io.BytesIO(content) if isinstance(content, bytes) else content
        try:
            return parse_dates(pd.read_csv(source))
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
    raw = content if isinstance(content, bytes) else content.read()
    text = raw.decode("utf-8").strip()
    if not text:
        return pd.DataFrame()
    if text.startswith("["):
        rows = json.loads(text)
    else:  # newline-delimited JSON
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return parse_dates(pd.DataFrame.from_records(rows)) if rows else pd.DataFrame()


def download_dataframe(
    url: str,
    *,
    format: Literal["csv", "json"] = "csv",
    timeout: float = 300.0,
    http: httpx.Client | None = None,
    batch_uuid: str | None = None,
) -> Any:
    """Fetch ``url`` (no auth headers) and parse it into a pandas DataFrame.

    Raises:
        CargoDownloadError: non-2xx status (e.g. an expired URL), a transfer shorter than
            its ``Content-Length``, or unparseable content. The message names the batch.
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
                    f"({snippet.strip() or 'no body'}). Download URLs expire. Next step: request a fresh "
                    "URL and download it right away.",
                    batch_uuid=batch_uuid,
                )
            expected = response.headers.get("content-length")
            encoded = response.headers.get("content-encoding")
            stream = _CountingStream(response.iter_raw() if not encoded else response.iter_bytes())
            try:
                frame = frame_from_bytes(io.BufferedReader(stream, buffer_size=1 << 20), format)
            except (ValueError, UnicodeDecodeError) as exc:
                raise CargoDownloadError(
                    f"Cargo outputs{what} could not be parsed as {format.upper()}: {exc}. "
                    "Next step: re-download; if it persists, report the batch to Cargo.",
                    batch_uuid=batch_uuid,
                ) from exc
            if expected is not None and not encoded and stream.bytes_read != int(expected):
                raise CargoDownloadError(
                    f"Cargo outputs{what} were truncated: received {stream.bytes_read} of "
                    f"{expected} bytes. Next step: download again with a fresh URL.",
                    batch_uuid=batch_uuid,
                )
            return frame
    except httpx.TransportError as exc:
        raise CargoDownloadError(
            f"Downloading Cargo outputs{what} failed: {type(exc).__name__}. Next step: request a "
            "fresh download URL and retry.",
            batch_uuid=batch_uuid,
        ) from exc
    finally:
        if owns:
            client.close()
