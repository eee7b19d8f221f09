"""The socket layer: a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) that reads each request, hands it to
:class:`~cargo_gtm_emulator.app.App` and writes the :class:`~cargo_gtm_emulator.app.Response` back,
misbehaviours included (reset, truncation, delay). Auth, faults and routing live in :mod:`.app`."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .app import App, Response, cut_length


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CargoEmulator/1.0"
    # Headers and body are separate writes: with Nagle on, delayed ACKs add ~40 ms to every response.
    disable_nagle_algorithm = True
    app: App | None = None  # set on the subclass created per server
    base_url: Any = None  # () -> "http://host:port"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return bytes(data)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            assert self.app is not None
            raw = self._read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._write(self.app.handle(self.command, self.path, headers, raw, self.base_url()))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away (e.g. timed out on a slow response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    # -------------------------------------------------------------- writing a Response
    def _write(self, resp: Response) -> None:
        if resp.delay:
            time.sleep(resp.delay)
        if resp.abort:
            self._abort()
        elif resp.file_path is not None:
            self._send_file(resp.headers, resp.file_path, resp.truncate)
        elif resp.truncate is not None:
            self._send_truncated(resp.headers, resp.body, resp.truncate)
        elif resp.chunks is not None:
            self._send_stream(resp.status, resp.headers, resp.chunks)
        else:
            self._send_bytes(resp.status, resp.headers, resp.body)

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)

    def _send_bytes(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self._head(status, headers)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_stream(self, status: int, headers: Sequence[tuple[str, str]], chunks: Iterator[bytes]) -> None:
        self._head(status, headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            if chunk:
                self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _send_file(self, headers: Sequence[tuple[str, str]], path: str, fraction: float | None) -> None:
        """A file from disk with its ``Content-Length`` (as S3 serves objects), sent with ``sendfile``
        and never read into memory. With ``fraction``: only that share of it, then a close (truncation)."""
        size = os.path.getsize(path)
        self._head(200, headers)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        count = size if fraction is None else cut_length(size, fraction)
        with open(path, "rb") as f:
            if count:
                self.connection.sendfile(f, 0, count)
        if fraction is not None:
            self.close_connection = True

    def _send_truncated(self, headers: Sequence[tuple[str, str]], body: bytes, fraction: float) -> None:
        """A correct ``Content-Length`` for the whole body, then only part of it and a (graceful) close."""
        self._head(200, headers)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut_length(len(body), fraction)])
        self.close_connection = True

    def _abort(self) -> None:
        """Drop the connection without a response: abortive close (SO_LINGER 0 → the peer gets a RST)."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()  # the fd really closes when rfile/wfile are released in finish()
        except OSError:
            pass
        self.close_connection = True


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server with daemon request threads."""

    daemon_threads = True
    allow_reuse_address = True


def make_server(app: App, host: str, port: int) -> tuple[EmulatorHTTPServer, threading.Thread]:
    """Bind the server (port 0 = any free port) and return it with an unstarted serving thread."""
    handler_cls: type[_RequestHandler] = type("CargoEmulatorHandler", (_RequestHandler,), {"app": app})
    httpd = EmulatorHTTPServer((host, port), handler_cls)
    bound = f"http://{host}:{httpd.server_address[1]}"
    handler_cls.base_url = staticmethod(lambda: bound)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                              name="cargo-emulator", daemon=True)
    return httpd, thread
