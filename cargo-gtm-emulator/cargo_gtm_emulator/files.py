"""Presigned, token-less download URLs served by the emulator itself (S3 look-alike).

``create()`` snapshots the rows to export and returns a path + query string
``/_files/exports/<key>.<ext>?X-Amz-Algorithm=…&X-Amz-Date=…&X-Amz-Expires=3600&X-Amz-Signature=…``.
The signature is an HMAC over key + date + expiry with a per-emulator secret. Unknown key, bad signature →
403 ``AccessDenied``; expired → 403 ``AccessDenied`` / "Request has expired" (S3 XML bodies).
Bodies are rendered lazily, row by row, and streamed with chunked transfer encoding.

A batch can also be given a pre-generated file on disk as its output (:meth:`DownloadRegistry.attach`,
``CargoEmulator.attach_output_file``): a benchmark and test facility for outputs of millions of rows. Such a
file is served from disk with a ``Content-Length`` header, as S3 serves objects, never loaded into memory.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .clock import Clock

DEFAULT_EXPIRY_SECONDS = 3600
CHUNK_ROWS = 500


@dataclass
class Export:
    """A registered export: column order, row snapshot and format."""

    key: str
    columns: list[str]
    rows: list[dict[str, Any]]
    fmt: str  # csv | json
    created: float
    expires_in: int
    fetches: int = 0  # successful (200) opens, for fault injection's "first fetch"
    path: str | None = None  # a file on disk served as is (attached outputs), instead of ``rows``
    gzip: str = "off"  # off | file (gzip bytes, no Content-Encoding) | transport (Content-Encoding: gzip)
    json_shape: str = "array"  # array | ndjson


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return v


def render_csv(columns: list[str], rows: list[dict[str, Any]]) -> Iterator[bytes]:
    """Yield CSV bytes (header first) in chunks of CHUNK_ROWS rows. ``None`` → empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i, row in enumerate(rows, 1):
        writer.writerow([_cell(row.get(c)) for c in columns])
        if i % CHUNK_ROWS == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.getvalue():
        yield buf.getvalue().encode("utf-8")


def render_ndjson(columns: list[str], rows: list[dict[str, Any]]) -> Iterator[bytes]:
    """Yield one JSON object per line (keys in column order) in chunks."""
    parts: list[str] = []
    for row in rows:
        parts.append(json.dumps({c: row.get(c) for c in columns}, separators=(",", ":")) + "\n")
        if len(parts) >= CHUNK_ROWS:
            yield "".join(parts).encode("utf-8")
            parts = []
    if parts:
        yield "".join(parts).encode("utf-8")


def gzip_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Gzip-compress a byte stream on the fly."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()


def render_json(columns: list[str], rows: list[dict[str, Any]]) -> Iterator[bytes]:
    """Yield a JSON array of objects (keys in column order) in chunks."""
    yield b"["
    parts: list[str] = []
    for i, row in enumerate(rows):
        parts.append(("," if i else "") + json.dumps({c: row.get(c) for c in columns}, separators=(",", ":")))
        if len(parts) >= CHUNK_ROWS:
            yield "".join(parts).encode("utf-8")
            parts = []
    if parts:
        yield "".join(parts).encode("utf-8")
    yield b"]"


FILE_CHUNK_BYTES = 1 << 20


def file_chunks(path: str, limit: int | None = None) -> Iterator[bytes]:
    """Yield the bytes of ``path`` (the first ``limit`` of them, if given) in 1 MiB reads."""
    left = os.path.getsize(path) if limit is None else limit
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(FILE_CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def s3_error(code: str, message: str) -> bytes:
    """An S3-style XML error document."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>").encode()


class DownloadRegistry:
    """Registered exports keyed by random key."""

    def __init__(self, clock: Clock, expires_in: int = DEFAULT_EXPIRY_SECONDS) -> None:
        self.clock = clock
        self.expires_in = expires_in
        self._secret = secrets.token_bytes(32)
        self._exports: dict[str, Export] = {}
        self._attached: dict[str, tuple[str, str]] = {}  # batch uuid → (file path, fmt)
        self._lock = threading.Lock()

    def _sign(self, key: str, amz_date: str, expires: int) -> str:
        msg = f"GET\n/{key}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def create(self, columns: list[str], rows: list[dict[str, Any]], fmt: str = "csv",
               prefix: str = "exports", gzip: str = "off", json_shape: str = "array") -> str:
        """Register an export and return its presigned path+query (relative to the emulator base URL).

        ``gzip``: ``off``; ``file`` (the object is a ``.gz`` file, no ``Content-Encoding``); ``transport``
        (``Content-Encoding: gzip`` on the response). ``json_shape``: ``array`` or ``ndjson``.
        """
        return self._register(columns, rows, fmt, prefix, None, gzip, json_shape)

    def create_from_file(self, path: str, fmt: str = "csv", prefix: str = "exports") -> str:
        """Register ``path`` (a file on disk, served as is) and return its presigned path+query."""
        return self._register([], [], fmt, prefix, path)

    def attach(self, batch_uuid: str, path: str, fmt: str = "csv") -> None:
        """Make ``path`` the output every later download of ``batch_uuid`` serves (see module doc)."""
        if fmt not in ("csv", "json"):
            raise ValueError("fmt must be 'csv' or 'json'")
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        with self._lock:
            self._attached[batch_uuid] = (path, fmt)

    def attached(self, batch_uuid: str) -> tuple[str, str] | None:
        """The ``(path, fmt)`` attached to ``batch_uuid``, if any."""
        with self._lock:
            return self._attached.get(batch_uuid)

    def file_path(self, key: str) -> str | None:
        """The file behind a file-backed export (None for rendered exports and unknown keys)."""
        with self._lock:
            export = self._exports.get(key)
            return export.path if export is not None else None

    def _register(self, columns: list[str], rows: list[dict[str, Any]], fmt: str, prefix: str,
                  path: str | None, gzip: str = "off", json_shape: str = "array") -> str:
        ext = "json" if fmt == "json" else "csv"
        key = f"{prefix}/{secrets.token_hex(16)}.{ext}" + (".gz" if gzip == "file" else "")
        created = self.clock.wall()
        amz_date = datetime.fromtimestamp(created, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        with self._lock:
            self._exports[key] = Export(key, columns, rows, ext, created, self.expires_in, path=path, gzip=gzip,
                                        json_shape=json_shape)
        sig = self._sign(key, amz_date, self.expires_in)
        return (f"/_files/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={amz_date}"
                f"&X-Amz-Expires={self.expires_in}&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}")

    def expire_all(self) -> None:
        """Make every issued URL expired (testing helper)."""
        with self._lock:
            for e in self._exports.values():
                e.expires_in = -1

    def expire(self, key: str) -> None:
        """Make one issued URL expired (used by the ``expired_download_url`` fault)."""
        with self._lock:
            if key in self._exports:
                self._exports[key].expires_in = -1

    def headers(self, key: str) -> list[tuple[str, str]]:
        """Extra response headers of a rendered export (``Content-Encoding: gzip`` in transport mode)."""
        with self._lock:
            export = self._exports.get(key)
        if export is not None and export.path is None and export.gzip == "transport":
            return [("Content-Encoding", "gzip")]
        return []

    def fetch_count(self, key: str) -> int:
        """How many times ``key`` has been served successfully (0 when unknown)."""
        with self._lock:
            export = self._exports.get(key)
            return export.fetches if export is not None else 0

    def open(self, key: str, params: dict[str, str]) -> tuple[int, str, Iterator[bytes]]:
        """Validate a presigned request; return ``(status, content_type, body_chunks)``."""
        with self._lock:
            export = self._exports.get(key)
        if export is None:
            return 403, "application/xml", iter([s3_error("AccessDenied", "Access Denied")])
        amz_date = params.get("X-Amz-Date", "")
        try:
            expires = int(params.get("X-Amz-Expires", ""))
        except ValueError:
            expires = -1
        expected = self._sign(key, amz_date, expires)
        if expires != export.expires_in and export.expires_in >= 0 or not hmac.compare_digest(
                expected, params.get("X-Amz-Signature", "")):
            return 403, "application/xml", iter([s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.")])
        if export.expires_in < 0 or self.clock.wall() > export.created + export.expires_in:
            return 403, "application/xml", iter([s3_error("AccessDenied", "Request has expired")])
        with self._lock:
            export.fetches += 1
        if export.path is not None:
            ctype = "application/json" if export.fmt == "json" else "text/csv; charset=utf-8"
            return 200, ctype, file_chunks(export.path)
        if export.fmt == "json":
            shape = render_ndjson if export.json_shape == "ndjson" else render_json
            ctype = "application/x-ndjson" if export.json_shape == "ndjson" else "application/json"
            chunks = shape(export.columns, export.rows)
        else:
            ctype, chunks = "text/csv; charset=utf-8", render_csv(export.columns, export.rows)
        if export.gzip == "off":
            return 200, ctype, chunks
        if export.gzip == "file":
            return 200, "application/gzip", gzip_chunks(chunks)
        return 200, ctype, gzip_chunks(chunks)
