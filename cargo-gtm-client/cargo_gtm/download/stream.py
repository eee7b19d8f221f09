"""A download's body as it streams in: counted against ``Content-Length``, gunzipped, and turned into a
:class:`~cargo_gtm.errors.CargoDownloadError` that says what went wrong when it is cut short or
unreadable. Presigned URLs are fetched with a plain HTTP client: no Cargo header reaches the storage host.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import CargoDownloadError

__all__ = ["open_download", "retry_pause"]


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

    def next_chunk(self) -> bytes | None:
        """The next chunk as it came (a pending one first), without copying; None at the end."""
        if not self._pending and not self._pull():
            return None
        chunk = self._pending.pop(0)
        self._pending_size -= len(chunk)
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes: whole chunks, joined only when one is smaller than ``size`` (a raw
        read may return fewer bytes than asked); one chunk is sliced only when it alone is bigger."""
        if size is None or size < 0:
            while self._pull():
                pass
            out = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            return out
        while self._pending_size < size and self._pull():
            pass
        if not self._pending:
            return b""
        taken, total = 0, 0
        while taken < len(self._pending) and total + len(self._pending[taken]) <= size:
            total += len(self._pending[taken])
            taken += 1
        if taken == 0:  # the first chunk alone is bigger than asked
            first = self._pending[0]
            out, self._pending[0] = first[:size], first[size:]
        else:
            out = self._pending[0] if taken == 1 else b"".join(self._pending[:taken])
            del self._pending[:taken]
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
