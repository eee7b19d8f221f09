"""File upload for ``kind: "file"`` batches (REFERENCE §7.5, CARGO-DOCS 12.1): ``POST
/workspaceManagement/files/upload`` (multipart, one part named ``file``) and ``GET
/workspaceManagement/files/listColumns``."""

from __future__ import annotations

import csv
import io
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from ..errors import ApiError
from ..routing import Request, Router


def _file_part(req: Request) -> tuple[str, str, bytes] | None:
    """``(filename, content type, bytes)`` of the multipart part named ``file``, if any."""
    ctype = req.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        return None
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.raw)
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            return (part.get_filename() or "upload.csv", part.get_content_type(), data)
    return None


def upload_file(req: Request) -> dict[str, Any]:
    """Store an uploaded CSV; its data rows become the records of a later ``kind: "file"`` batch (one record
    per row, CARGO-DOCS 12.1). Returns ``{s3Filename, contentType, name}`` (flat, as in the docs' example)."""
    part = _file_part(req)
    if part is None:
        raise ApiError("noFile", "No file provided", status=400)
    name, ctype, data = part
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError("invalidData", "The file is not UTF-8 text.", status=400) from None
    rows = [dict(r) for r in csv.DictReader(io.StringIO(text))]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "upload.csv"
    store = req.store
    s3 = f"{store.ids.hex(6)}-{safe}"
    store.put_file(rows, s3, columns=next(csv.reader(io.StringIO(text)), []))
    return {"s3Filename": s3, "contentType": ctype if ctype != "text/plain" else "text/csv", "name": name}


def list_columns(req: Request) -> dict[str, Any]:
    """``{columns: [{type: "string", name}]}`` of an uploaded file; ``noColumnsFound`` otherwise."""
    s3 = req.query.get("s3Filename")
    columns = req.store.file_columns.get(str(s3)) if s3 else None
    if not columns:
        raise ApiError("noColumnsFound", status=400)
    return {"columns": [{"type": "string", "name": c} for c in columns]}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("POST", "/workspaceManagement/files/upload", upload_file)
    router.add("GET", "/workspaceManagement/files/listColumns", list_columns)
