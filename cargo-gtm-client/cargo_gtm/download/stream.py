"""A download's body as it streams in: counted against ``Content-Length``, gunzipped, and turned into a
:class:`~cargo_gtm.errors.CargoDownloadError` that says what went wrong when it is cut short or
unreadable. Presigned URLs are fetched with a plain HTTP client: no Cargo header reaches the storage host.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import CargoDownloadError
from ..transport import tls_context

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
        self._readinto = getattr(chunks, "readinto", None)  # a source that can fill a buffer itself
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

    @property
    def drained(self) -> bool:
        """Whether every byte of the body has been read (the iterator ended and nothing is pending)."""
        return self._done and not self._pending

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

    def fill(self, target: memoryview) -> int:
        """Fill ``target`` from the body (what is pending first) and return the bytes written: fewer than
        ``len(target)`` only at the end. A socket source (:class:`_SocketBody`) writes straight into
        ``target``, with no copy; other chunks are copied in."""
        done = 0
        while done < len(target):
            if self._pending:
                chunk = self._pending[0]
                take = min(len(chunk), len(target) - done)
                target[done:done + take] = chunk[:take] if take < len(chunk) else chunk
                done += take
                if take < len(chunk):
                    self._pending[0] = chunk[take:]
                else:
                    self._pending.pop(0)
                self._pending_size -= take
            elif self._done:
                break
            elif self._readinto is None:
                self._pull()
            else:
                got = self._guarded(self._readinto, target[done:])
                self._done = not got
                self.bytes_read += got
                done += got
        return done

    def _guarded(self, read: Any, target: memoryview) -> int:
        try:
            return int(read(target))
        except Exception as exc:  # noqa: BLE001 - kept and re-raised, as in _pull
            self.error = exc
            self._done = True
            raise

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
    client = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True,
                                  verify=tls_context())
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


#: Bodies at least this big (``Content-Length``) are read from the connection's socket directly
#: (:class:`_SocketBody`); smaller ones through httpx, whose connection can then serve the next download.
RAW_RECEIVE_MIN = 1 << 22
#: Bytes asked of the socket per chunk when a reader wants chunks rather than a buffer filled (gzip, peeks).
SOCKET_CHUNK = 1 << 18


class _SocketBody:
    """The rest of a ``Content-Length`` body read straight from the connection's socket.

    httpx (h11) parses HTTP in Python: 64 KiB per read, each copied twice into and out of its buffer, about
    0.3 s of CPU per 320 MB on loopback. Here the status line, headers, redirects, proxy and TLS set-up stay
    httpx's; only the body's bytes are taken from the socket, with ``recv_into`` into the parser's own block
    (no copy, the GIL released while waiting). ``head`` is what httpx had already received past the
    headers (its first body chunk hands over all of it). Never more than ``Content-Length`` is read; a body
    that ends early just ends (the caller's ``Content-Length`` check names the shortfall); a timeout or
    socket error is raised as httpx's own ``ReadTimeout``/``ReadError``. The connection is not reused:
    httpx closes it when the response closes, since its parser never saw the body end.
    """

    def __init__(self, sock: socket.socket, head: bytes, remaining: int, timeout: float | None,
                 request: httpx.Request, keep: Any) -> None:
        self._sock = sock
        self._head = head
        self._remaining = remaining
        self._request = request
        self._keep = keep  # httpx's body iterator: dropping it would close the connection under us
        sock.settimeout(timeout)

    def __iter__(self) -> _SocketBody:
        return self

    def __next__(self) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        if self._remaining <= 0:
            raise StopIteration
        data: bytes = self._io(self._sock.recv, min(SOCKET_CHUNK, self._remaining))
        if not data:
            self._remaining = 0
            raise StopIteration
        self._remaining -= len(data)
        return data

    def readinto(self, target: memoryview) -> int:
        """Bytes written into ``target`` (one socket read); 0 at the end of the body."""
        if self._head:
            take = min(len(self._head), len(target))
            target[:take] = self._head[:take]
            self._head = self._head[take:]
            return take
        if self._remaining <= 0 or not len(target):
            return 0
        got: int = self._io(self._sock.recv_into, target, min(len(target), self._remaining))
        self._remaining = self._remaining - got if got else 0
        return got

    def _io(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=self._request) from exc


def _plain_socket(response: httpx.Response) -> socket.socket | None:
    """The socket an HTTP/1.1 response's body arrives on, when reading it directly is safe: a plain TCP
    socket, or a TLS one (``ssl.SSLSocket`` decrypts in ``recv_into``); None otherwise (HTTP/2, a test
    transport, TLS inside a proxy's TLS tunnel)."""
    if response.http_version != "HTTP/1.1":
        return None
    stream = response.extensions.get("network_stream")
    get = getattr(stream, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    if not isinstance(sock, socket.socket):
        return None
    if not isinstance(sock, ssl.SSLSocket) and get("ssl_object") is not None:  # type: ignore[misc]
        return None
    return sock


def _wire_chunks(response: httpx.Response, expected: int | None) -> Iterator[bytes]:
    """The body's bytes as they arrive: from the socket (:class:`_SocketBody`) for a big enough
    ``Content-Length`` body, else httpx's raw chunks."""
    chunks = response.iter_raw()
    sock = _plain_socket(response) if expected is not None and expected >= RAW_RECEIVE_MIN else None
    if sock is None or expected is None:
        return chunks
    head = next(chunks, b"")  # h11 hands over everything it holds past the headers as one chunk
    timeout = (response.request.extensions.get("timeout") or {}).get("read")
    return _SocketBody(sock, head, expected - len(head), timeout, response.request, keep=chunks)


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
    expected = int(length) if length is not None else None
    raw = _CountingStream(_wire_chunks(response, expected))
    if encoding in ("gzip", "x-gzip") or raw.peek_prefix(2)[:2] == GZIP_MAGIC:
        return _Body(_CountingStream(_gunzip(raw)), expected, what, batch_uuid, raw=raw, gzipped=True)
    return _Body(raw, expected, what, batch_uuid)
