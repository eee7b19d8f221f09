"""Small helpers shared by the conformance tests (reading driver output, error checks)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any


def get_call(doc: dict, name: str) -> dict:
    calls = doc.get("calls", {})
    if name not in calls:
        fatal = doc.get("fatal")
        hint = f"\ndriver crashed: {fatal['stack'] or fatal['message']}" if fatal else ""
        raise AssertionError(f"driver made no call {name!r} in scenario {doc.get('scenario')!r}{hint}")
    return calls[name]


def ok_result(doc: dict, name: str) -> Any:
    c = get_call(doc, name)
    if not c.get("ok"):
        e = c.get("error", {})
        last = (c.get("wire") or [{}])[-1]
        raise AssertionError(
            f"{name}: official client raised {e.get('type')} status={e.get('status')} "
            f"reason={e.get('reason')!r} message={e.get('message')!r}\n"
            f"request: {last.get('method')} {last.get('url')} body={last.get('requestBody')}\n"
            f"response body: {str(last.get('responseText'))[:600]}"
        )
    return c["result"]


def wire_body(doc: dict, name: str, index: int = -1) -> Any:
    wire = get_call(doc, name).get("wire") or []
    assert wire, f"{name}: no HTTP exchange captured"
    text = wire[index].get("responseText") or ""
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError as e:
        raise AssertionError(f"{name}: response body is not JSON: {text[:300]!r}") from e


def assert_error(doc: dict, name: str, *, type_: str, reason: str | None, message: str | None = None,
                 status_range: tuple[int, int] | None = None, status: int | None = None,
                 data_error_reason: str | None = None) -> dict:
    """Assert the official client surfaced the documented error, and that the raw error body
    has the documented shape ({errorMessage?, reason?, dataError?: {reason}})."""
    c = get_call(doc, name)
    assert c.get("ok") is False, f"{name}: expected {type_}/{reason}, but the call succeeded: {json.dumps(c.get('result'))[:400]}"
    wire = c.get("wire") or []
    assert wire, f"{name}: no HTTP exchange captured"
    last = wire[-1]
    http_status = last.get("status")
    raw = last.get("responseText") or ""
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise AssertionError(f"{name}: error body is not JSON: {raw[:300]!r}")
    problems = []
    if status is not None and http_status != status:
        problems.append(f"HTTP status {http_status}, expected {status}")
    if status_range is not None and not (status_range[0] <= http_status < status_range[1]):
        problems.append(f"HTTP status {http_status}, expected {status_range[0]}..{status_range[1] - 1}")
    if not isinstance(body, dict):
        problems.append(f"error body is {type(body).__name__}, expected a JSON object")
        body = {}
    if reason is not None and body.get("reason") != reason:
        problems.append(f"body.reason={body.get('reason')!r}, expected {reason!r}")
    if "errorMessage" in body and not (isinstance(body["errorMessage"], str) and body["errorMessage"]):
        problems.append(f"body.errorMessage must be a non-empty string when present, got {body['errorMessage']!r}")
    if data_error_reason is not None:
        de = body.get("dataError")
        if not isinstance(de, dict) or de.get("reason") != data_error_reason:
            problems.append(f"body.dataError={de!r}, expected {{'reason': {data_error_reason!r}}}")
    err = c.get("error") or {}
    if err.get("thrown") == "error-object" and err.get("type") != type_:
        problems.append(f"official client error type {err.get('type')}, expected {type_}")
    if message is not None and not body.get("errorMessage") and err.get("message") != message:
        problems.append(f"client message {err.get('message')!r}, expected canned {message!r}")
    assert not problems, f"{name}: " + "; ".join(problems) + f"\nraw error body: {raw[:500]}"
    return body


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
