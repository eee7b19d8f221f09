"""The request pipeline, independent of any socket: logging, auth, faults, the control plane and routing.

:meth:`App.handle` takes one request (method, target, headers, raw body) and returns a :class:`Response`
that describes what goes on the wire, including the misbehaviours a fault asks for (drop the connection,
truncate the body, answer late). :mod:`.server` writes it to a socket; :mod:`.transport` hands it to httpx
in-process. Both therefore serve exactly the same behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from . import control
from .errors import ApiError, unrecognized_keys
from .faults import Fault
from .querystring import parse_qs
from .routing import Handler, Request

if TYPE_CHECKING:
    from .host import EmulatorHost

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Response:
    """What to send back. Exactly one body form applies, checked in this order: ``abort``, ``file_path``,
    ``body`` + ``truncate``, ``chunks`` (chunked transfer), ``body``."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)  # without Content-Length/Transfer-Encoding
    body: bytes = b""
    chunks: Iterator[bytes] | None = None
    file_path: str | None = None  # streamed from disk with its Content-Length
    truncate: float | None = None  # announce the whole length, send only this share, then close
    abort: bool = False  # drop the connection without any response (the peer sees a reset)
    delay: float = 0.0  # seconds to wait before answering (``slow_response``)


def json_response(status: int, payload: Any) -> Response:
    """A JSON response (compact, UTF-8)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, [("Content-Type", JSON_TYPE)], body)


def parse_body(headers: dict[str, str], raw: bytes) -> tuple[Any, bool]:
    """``(parsed JSON or None, whether the body was invalid JSON)``; multipart bodies are left raw."""
    if not raw.strip() or headers.get("content-type", "").lower().startswith("multipart/"):
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _slow(fault: Fault | None) -> float:
    return fault.delay if fault is not None and fault.kind == "slow_response" else 0.0


def _request_fault(fault: Fault | None) -> Response | None:
    """The response a request-stage fault settles the request with (``None``: carry on)."""
    if fault is None or fault.kind == "slow_response":
        return None
    if fault.kind == "connection_reset":
        return Response(0, abort=True)
    return Response(fault.status, list(fault.headers), fault.body)


class App:
    """The emulator's HTTP semantics over one :class:`~cargo_gtm_emulator.CargoEmulator` (seen through
    :class:`~.host.EmulatorHost`)."""

    def __init__(self, emulator: EmulatorHost) -> None:
        self.emu = emulator

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes, base_url: str) -> Response:
        """Serve one request. ``target`` = path + query; ``headers`` lower-cased; ``base_url`` = how the
        client reached us (``http://host:port``), used for presigned download URLs."""
        split = urlsplit(target)
        parsed, bad_json = parse_body(headers, raw)
        entry = self.emu._log_request(method, split.path, split.query, headers, parsed)
        if split.path.startswith("/_files/"):
            return self._files(method, split, entry)
        is_control = split.path == control.PREFIX or split.path.startswith(control.PREFIX + "/")
        if not is_control and not (split.path.startswith("/v1/") or split.path == "/v1"):
            return json_response(404, {"errorMessage": f"Not found: {method} {split.path}"})
        if headers.get("authorization", "") != f"Bearer {self.emu.token}":
            return json_response(401, {"errorMessage": "Unauthorized", "reason": "unauthorized"})
        if is_control:  # the control plane: token-protected, never faulted (see control.py)
            if bad_json:
                return json_response(400, {"errorMessage": "Invalid JSON body.", "reason": "invalidData"})
            if parsed is None and split.query:
                parsed = dict(parse_qsl(split.query))
            return json_response(*control.handle(self.emu, method, split.path, parsed))
        return self._api(method, split, headers, (parsed, bad_json, raw), base_url, entry)

    # ------------------------------------------------------------------ /v1
    def _api(self, method: str, split: SplitResult, headers: dict[str, str], body: tuple[Any, bool, bytes],
             base_url: str, entry: dict[str, Any]) -> Response:
        faults = self.emu.faults
        fault = faults.on_request(method, split.path, "api")
        if fault is not None:
            entry["fault"] = fault.kind
        settled = _request_fault(fault)
        if settled is not None:
            return settled
        status, payload = self._route(method, split, headers, body, base_url)
        if status == 200 and fault is None:
            fault = faults.on_response(method, split.path, payload)
            if fault is not None:
                entry["fault"] = fault.kind
                if fault.kind == "lost_create_response":
                    return Response(0, abort=True)  # the batch / run is committed; the client never learns its uuid
        response = json_response(status, payload)
        response.delay = _slow(fault)
        return response

    def _route(self, method: str, split: SplitResult, headers: dict[str, str], body: tuple[Any, bool, bytes],
               base_url: str) -> tuple[int, Any]:
        """Workspace check, JSON check, routing, strict body keys and the handler (under the store lock)."""
        parsed, bad_json, raw = body
        emu = self.emu
        path = split.path[3:] or "/"
        ws = headers.get("selected-workspace-uuid")
        if ws and ws != emu.store.workspace_uuid and not path.startswith("/userManagement/"):
            return 403, {"errorMessage": "You do not have access to this workspace.",
                         "reason": "workspaceNotFound"}
        if bad_json:
            return 400, {"errorMessage": "Invalid JSON body.", "reason": "invalidData"}
        found = emu.router.match(method, path)
        if found is None:
            return 404, {"errorMessage": f"Route not found: {method} /v1{path}", "reason": "routeNotFound"}
        handler, params = found
        store = emu.store
        try:
            self._check_body_keys(handler, parsed)
            with store.lock:
                now = store.sync()
                req = Request(method, path, params, parse_qs(split.query), parsed, headers, store, now, base_url,
                              raw)
                result = handler(req)
            return 200, result if result is not None else {}
        except ApiError as err:
            return err.status, err.body()
        except Exception as exc:  # noqa: BLE001 - any bug must still yield a JSON 500
            return 500, {"errorMessage": f"Internal emulator error: {exc!r}"}

    def _check_body_keys(self, handler: Handler, parsed: Any) -> None:
        """Strict request schemas (CARGO-DOCS 10.1): a top-level key the endpoint does not declare is a 400
        ``unrecognized_keys`` (unless the emulator was built with ``strict=False``)."""
        allowed = self.emu.router.body_keys.get(handler)
        if allowed is not None and self.emu.strict and isinstance(parsed, dict):
            unknown = [k for k in parsed if k not in allowed]
            if unknown:
                raise unrecognized_keys(unknown)

    # ------------------------------------------------------------------ /_files (presigned downloads)
    def _files(self, method: str, split: SplitResult, entry: dict[str, Any]) -> Response:
        faults = self.emu.faults
        fault = faults.on_request(method, split.path, "files")
        if fault is not None:
            entry["fault"] = fault.kind
        settled = _request_fault(fault)
        if settled is not None:
            return settled
        downloads = self.emu.store.downloads
        key = split.path[len("/_files/"):]
        params = dict(parse_qsl(split.query))
        status, ctype, chunks = downloads.open(key, params)
        if status == 200 and fault is None:
            fault = faults.on_download(method, split.path, downloads.fetch_count(key) == 1)
            if fault is not None and fault.kind == "expired_download_url":
                downloads.expire(key)
                status, ctype, chunks = downloads.open(key, params)
        if fault is not None:
            entry["fault"] = fault.kind
        truncate = fault.fraction if fault is not None and fault.kind == "truncated_download" else None
        on_disk = downloads.file_path(key) if status == 200 else None
        if on_disk is not None:
            return Response(200, [("Content-Type", ctype)], file_path=on_disk, truncate=truncate, delay=_slow(fault))
        headers = [("Content-Type", ctype), *(downloads.headers(key) if status == 200 else [])]
        if truncate is not None:
            return Response(200, headers, b"".join(chunks), truncate=truncate, delay=_slow(fault))
        return Response(status, headers, chunks=chunks, delay=_slow(fault))


def cut_length(size: int, fraction: float) -> int:
    """How many bytes a truncated body keeps: at least 1, never all of it."""
    return min(max(1, int(size * fraction)), max(size - 1, 0))
