"""HTTP layer: a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) routing ``/v1/*`` to handlers and
``/_files/*`` to presigned downloads."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from .errors import ApiError
from .faults import Fault, FaultInjector
from .querystring import parse_qs

if TYPE_CHECKING:
    from .store import Store


@dataclass
class Request:
    """What a handler gets: path params, parsed query, parsed JSON body, the store and current sim time."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, Any]
    body: Any
    headers: dict[str, str]
    store: Store
    now: float
    base_url: str

    def json_obj(self) -> dict[str, Any]:
        """The body as an object (``{}`` when absent); 400 if it is not an object."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError(None, "Request body must be a JSON object.", status=400)
        return self.body


Handler = Callable[[Request], Any]


class Router:
    """Method + path-pattern routing table (``{name}`` segments become path params)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` and ``pattern`` (relative to ``/v1``)."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self._routes.append((method, re.compile(regex), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """Find the handler for a request (literal routes are registered before parameterised ones)."""
        for m, rx, h in self._routes:
            if m == method:
                found = rx.match(path)
                if found:
                    return h, found.groupdict()
        return None


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CargoEmulator/1.0"
    # Headers and body are separate writes: with Nagle on, delayed ACKs add ~40 ms to every response.
    disable_nagle_algorithm = True
    emulator: Any = None  # set on the subclass created per server

    def log_message(self, format: str, *args: Any) -> None:
        return

    # -------------------------------------------------------------- plumbing
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

    def _send_bytes(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._send_bytes(status, (("Content-Type", "application/json; charset=utf-8"),), body)

    def _send_stream(self, status: int, content_type: str, chunks: Iterator[bytes],
                     extra: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            if chunk:
                self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _send_file(self, content_type: str, path: str, fraction: float | None = None) -> None:
        """A file from disk with its ``Content-Length`` (as S3 serves objects), sent with ``sendfile``
        and never read into memory. With ``fraction``: only that share of it, then a close (truncation)."""
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        count = size if fraction is None else min(max(1, int(size * fraction)), max(size - 1, 0))
        with open(path, "rb") as f:
            if count:
                self.connection.sendfile(f, 0, count)
        if fraction is not None:
            self.close_connection = True

    def _send_truncated(self, content_type: str, chunks: Iterator[bytes], fraction: float,
                        extra: Sequence[tuple[str, str]] = ()) -> None:
        """A correct ``Content-Length`` for the whole body, then only part of it and a (graceful) close."""
        body = b"".join(chunks)
        cut = min(max(1, int(len(body) * fraction)), max(len(body) - 1, 0))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut])
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

    def _handle(self) -> None:
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away (e.g. timed out on a slow response)

    def _apply_request_fault(self, fault: Fault | None) -> bool:
        """Act on a request-stage fault; True when the response is already settled."""
        if fault is None or fault.kind == "slow_response":
            return False
        if fault.kind == "connection_reset":
            self._abort()
        else:
            self._send_bytes(fault.status, fault.headers, fault.body)
        return True

    @staticmethod
    def _delay(fault: Fault | None) -> None:
        if fault is not None and fault.kind == "slow_response":
            time.sleep(fault.delay)

    def _serve_file(self, emu: Any, path: str, query: str, entry: dict[str, Any]) -> None:
        faults: FaultInjector = emu.faults
        fault = faults.on_request(self.command, path, "files")
        if fault is not None:
            entry["fault"] = fault.kind
        if self._apply_request_fault(fault):
            return
        downloads = emu.store.downloads
        key = path[len("/_files/"):]
        status, ctype, chunks = downloads.open(key, dict(parse_qsl(query)))
        if status == 200 and fault is None:
            fault = faults.on_download(self.command, path, downloads.fetch_count(key) == 1)
            if fault is not None and fault.kind == "expired_download_url":
                downloads.expire(key)
                status, ctype, chunks = downloads.open(key, dict(parse_qsl(query)))
        if fault is not None:
            entry["fault"] = fault.kind
        self._delay(fault)
        truncate = fault is not None and fault.kind == "truncated_download"
        on_disk = downloads.file_path(key) if status == 200 else None
        extra = downloads.headers(key) if status == 200 else []
        if on_disk is not None:
            self._send_file(ctype, on_disk, fault.fraction if truncate and fault is not None else None)
        elif truncate and fault is not None:
            self._send_truncated(ctype, chunks, fault.fraction, extra)
        else:
            self._send_stream(status, ctype, chunks, extra)

    def _dispatch(self) -> None:
        emu = self.emulator
        split = urlsplit(self.path)
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed: Any = None
        bad_json = False
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                bad_json = True
        entry = emu._log_request(self.command, split.path, split.query, headers, parsed)
        if split.path.startswith("/_files/"):
            self._serve_file(emu, split.path, split.query, entry)
            return
        if not split.path.startswith("/v1/") and split.path != "/v1":
            self._send_json(404, {"errorMessage": f"Not found: {self.command} {split.path}"})
            return
        auth = headers.get("authorization", "")
        if auth != f"Bearer {emu.token}":
            self._send_json(401, {"errorMessage": "Unauthorized", "reason": "unauthorized"})
            return
        faults: FaultInjector = emu.faults
        fault = faults.on_request(self.command, split.path, "api")
        if fault is not None:
            entry["fault"] = fault.kind
        if self._apply_request_fault(fault):
            return
        status, payload = self._route(emu, split, headers, parsed, bad_json)
        if status == 200 and fault is None:
            fault = faults.on_response(self.command, split.path, payload)
            if fault is not None:
                entry["fault"] = fault.kind
                if fault.kind == "lost_create_response":
                    self._abort()  # the batch is committed; the client never learns its uuid
                    return
        self._delay(fault)
        self._send_json(status, payload)

    def _route(self, emu: Any, split: SplitResult, headers: dict[str, str], parsed: Any,
               bad_json: bool) -> tuple[int, Any]:
        """Run the request through workspace check, JSON check, routing and the handler."""
        path = split.path[3:] or "/"
        ws = headers.get("selected-workspace-uuid")
        if ws and ws != emu.store.workspace_uuid and not path.startswith("/userManagement/"):
            return 403, {"errorMessage": "You do not have access to this workspace.",
                         "reason": "workspaceNotFound"}
        if bad_json:
            return 400, {"errorMessage": "Invalid JSON body.", "reason": "invalidData"}
        found = emu.router.match(self.command, path)
        if found is None:
            return 404, {"errorMessage": f"Route not found: {self.command} /v1{path}", "reason": "routeNotFound"}
        handler, params = found
        store = emu.store
        try:
            with store.lock:
                now = store.sync()
                req = Request(self.command, path, params, parse_qs(split.query), parsed, headers, store, now,
                              emu.base_url)
                result = handler(req)
            return 200, result if result is not None else {}
        except ApiError as err:
            return err.status, err.body()
        except Exception as exc:  # noqa: BLE001 - any bug must still yield a JSON 500
            return 500, {"errorMessage": f"Internal emulator error: {exc!r}"}

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server with daemon request threads."""

    daemon_threads = True
    allow_reuse_address = True


def make_server(emulator: Any, host: str, port: int) -> tuple[EmulatorHTTPServer, threading.Thread]:
    """Bind the server (port 0 = any free port) and return it with an unstarted serving thread."""
    handler_cls = type("CargoEmulatorHandler", (_RequestHandler,), {"emulator": emulator})
    httpd = EmulatorHTTPServer((host, port), handler_cls)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                              name="cargo-emulator", daemon=True)
    return httpd, thread
