"""An in-process httpx transport: requests go straight to the emulator's :class:`~.app.App`, no socket.

``httpx.Client(transport=emu.transport(), base_url=emu.in_process_url + "/v1")`` behaves like a client of
the served emulator, faults included: a reset or a lost response raises ``httpx.RemoteProtocolError``
(as a dropped connection does), a truncated body raises it while reading, and a slow response longer than
the request's read timeout raises ``httpx.ReadTimeout`` at once (no wall-clock wait). Presigned download
URLs point at the host the request used, so they are fetched through the same transport.

httpx is imported here only; the rest of the emulator stays standard-library only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import httpx

from .app import App, Response, cut_length

IN_PROCESS_URL = "http://cargo-emulator.local"


class _Stream(httpx.SyncByteStream):
    """A response body that may end early with a protocol error (truncation)."""

    def __init__(self, chunks: Iterator[bytes], request: httpx.Request, short_by: int | None = None) -> None:
        self._chunks = chunks
        self._request = request
        self._short_by = short_by

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        if self._short_by is not None:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body ({self._short_by} bytes missing)",
                request=self._request)


def _file_chunks(path: str, count: int, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        left = count
        while left > 0:
            block = f.read(min(size, left))
            if not block:
                return
            left -= len(block)
            yield block


class InProcessTransport(httpx.BaseTransport):
    """Dispatch httpx requests to an emulator :class:`App` in the calling thread.

    Args:
        app: the emulator's app (``emu.app``).
        sleep: how a slow response within the read timeout waits (default ``time.sleep``; inject a no-op
            to skip the wait).
    """

    def __init__(self, app: App, sleep: Callable[[float], None] = time.sleep) -> None:
        self.app = app
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Serve ``request`` without a socket."""
        raw = request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        target = request.url.raw_path.decode("ascii")
        base_url = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        resp = self.app.handle(request.method, target, headers, raw, base_url)
        self._wait(resp, request)
        if resp.abort:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return self._response(resp, request)

    def _wait(self, resp: Response, request: httpx.Request) -> None:
        if not resp.delay:
            return
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout is not None and resp.delay > timeout:
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        self._sleep(resp.delay)

    @staticmethod
    def _response(resp: Response, request: httpx.Request) -> httpx.Response:
        head = request.method == "HEAD"
        headers = list(resp.headers)
        if resp.file_path is not None:
            size = os.path.getsize(resp.file_path)
            count = size if resp.truncate is None else cut_length(size, resp.truncate)
            headers.append(("Content-Length", str(size)))
            chunks = iter(()) if head else _file_chunks(resp.file_path, count)
            short = None if resp.truncate is None or head else size - count
            return httpx.Response(resp.status, headers=headers, stream=_Stream(chunks, request, short))
        if resp.truncate is not None:
            cut = cut_length(len(resp.body), resp.truncate)
            headers.append(("Content-Length", str(len(resp.body))))
            stream = _Stream(iter([resp.body[:cut]]), request, len(resp.body) - cut)
            return httpx.Response(resp.status, headers=headers, stream=stream)
        if resp.chunks is not None:
            headers.append(("Transfer-Encoding", "chunked"))
            return httpx.Response(resp.status, headers=headers, stream=_Stream(resp.chunks, request))
        body = b"" if head else resp.body
        headers.append(("Content-Length", str(len(resp.body))))
        return httpx.Response(resp.status, headers=headers, stream=_Stream(iter([body]), request))
