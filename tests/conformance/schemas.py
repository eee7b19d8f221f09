"""JSON Schemas generated from Cargo's official TypeScript declarations, and helpers to
validate against them with readable failures.

    from tests.conformance.schemas import load_schema, validate, PAYLOAD_TYPES
    validate("Batch", batch_json)                      # raises AssertionError, readable
    validate_request("POST", "/v1/orchestration/batches", body)   # via PAYLOAD_TYPES

Schema names (see node/schema-entry.ts for the full list):
- domain types, wire form (nulls kept, dates = date-time strings): Batch, Run, RunMetric,
  Play, Tool, Workflow, Release, Segment, Change, Model, Dataset, UsageMetric,
  EnrichedSubscription, Workspace, User, BatchData, Filter, SegmentationColumn;
- wire response envelopes: ``<Result name minus "Result">Response`` e.g. GetBatchResponse;
- official API result types (client view, after the client's null->undefined):
  e.g. GetBatchResult - use :func:`validate_client_view` for raw bodies;
- official payload types: e.g. CreateBatchPayload, ListRunsPayload, DownloadBatchBody.

Schemas are generated on first use (needs Node.js + npm; see _toolchain.py) into the
git-ignored ``tests/conformance/.schema-cache``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

try:  # works both as ``tests.conformance.schemas`` and as a top-level module
    from . import _toolchain
except ImportError:  # pragma: no cover
    import _toolchain  # type: ignore[no-redef]

# ---------------------------------------------------------------- endpoint tables
# Paths are relative to the API root ".../v1" (REFERENCE.md convention); {uuid} = any segment.

#: Request payload type of each in-scope endpoint (official @cargo-ai/api type names).
#: POST/PUT: the JSON body. GET: the query string, decoded with :func:`parse_query`.
#: DownloadBatchBody = DownloadBatchPayload without `uuid` (the client moves it to the path).
PAYLOAD_TYPES: dict[tuple[str, str], str] = {
    ("POST", "/orchestration/batches"): "CreateBatchPayload",
    ("POST", "/orchestration/batches/{uuid}/download"): "DownloadBatchBody",
    ("POST", "/orchestration/runs/list"): "ListRunsPayload",
    ("POST", "/orchestration/runs/count"): "CountRunsPayload",
    ("POST", "/orchestration/runs/metrics"): "GetRunMetricsPayload",
    ("POST", "/orchestration/runs/download-outputs"): "DownloadRunOutputsPayload",
    ("POST", "/segmentation/segments/fetch"): "FetchSegmentPayload",
    ("GET", "/orchestration/plays/list"): "ListPlaysPayload",
    ("GET", "/orchestration/batches/list"): "ListBatchesPayload",
    ("GET", "/orchestration/releases/deployed"): "GetDeployedReleasePayload",
    ("GET", "/segmentation/changes/list"): "ListChangesPayload",
    ("GET", "/billing/usage/metrics"): "UsageMetricsPayload",
}

#: Endpoints whose request must carry no body at all (REFERENCE.md 2.3).
NO_BODY: set[tuple[str, str]] = {
    ("POST", "/orchestration/batches/{uuid}/cancel"),
}

#: (wire response schema, official client-view result schema) per endpoint.
RESPONSE_TYPES: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/orchestration/workflows/list"): ("ListWorkflowsResponse", "ListWorkflowsResult"),
    ("GET", "/orchestration/plays/list"): ("ListPlaysResponse", "ListPlaysResult"),
    ("GET", "/orchestration/plays/{uuid}"): ("GetPlayResponse", "GetPlayResult"),
    ("GET", "/orchestration/tools/list"): ("ListToolsResponse", "ListToolsResult"),
    ("GET", "/orchestration/tools/{uuid}"): ("GetToolResponse", "GetToolResult"),
    ("GET", "/orchestration/releases/deployed"): ("GetDeployedReleaseResponse", "GetDeployedReleaseResult"),
    ("GET", "/orchestration/releases/{uuid}"): ("GetReleaseResponse", "GetReleaseResult"),
    ("POST", "/orchestration/batches"): ("CreateBatchResponse", "CreateBatchResult"),
    ("GET", "/orchestration/batches/list"): ("ListBatchesResponse", "ListBatchesResult"),
    ("GET", "/orchestration/batches/{uuid}"): ("GetBatchResponse", "GetBatchResult"),
    ("POST", "/orchestration/batches/{uuid}/download"): ("DownloadBatchResponse", "DownloadBatchResult"),
    ("POST", "/orchestration/runs/list"): ("ListRunsResponse", "ListRunsResult"),
    ("POST", "/orchestration/runs/count"): ("CountRunsResponse", "CountRunsResult"),
    ("POST", "/orchestration/runs/metrics"): ("GetRunMetricsResponse", "GetRunMetricsResult"),
    ("POST", "/orchestration/runs/download-outputs"): ("DownloadRunOutputsResponse", "DownloadRunOutputsResult"),
    ("GET", "/orchestration/runs/{uuid}"): ("GetRunResponse", "GetRunResult"),
    ("GET", "/segmentation/segments/list"): ("AllSegmentsResponse", "AllSegmentsResult"),
    ("POST", "/segmentation/segments/fetch"): ("FetchSegmentResponse", "FetchSegmentResult"),
    ("GET", "/segmentation/segments/{uuid}"): ("GetSegmentResponse", "GetSegmentResult"),
    ("GET", "/segmentation/changes/list"): ("ListChangesResponse", "ListChangesResult"),
    ("GET", "/storage/models/list"): ("AllModelResponse", "AllModelResult"),
    ("GET", "/storage/models/{uuid}"): ("GetModelResponse", "GetModelResult"),
    ("GET", "/storage/datasets/list"): ("AllDatasetResponse", "AllDatasetResult"),
    ("GET", "/billing/usage/metrics"): ("UsageMetricsResponse", "UsageMetricsResult"),
    ("GET", "/billing/subscriptions"): ("GetSubscriptionResponse", "GetSubscriptionResult"),
    ("GET", "/workspaceManagement/workspaces/current"): ("GetCurrentWorkspaceResponse", "GetCurrentWorkspaceResult"),
    ("GET", "/userManagement/users/current"): ("GetCurrentUserResponse", "GetCurrentUserResult"),
}

#: Top-level keys of a result the official client keeps raw, nulls included (REFERENCE.md 2.5):
#: ``getRun`` spreads ``nullToUndefined(result)`` and then puts these two back untouched.
KEEP_RAW: dict[str, tuple[str, ...]] = {
    "GetRunResult": ("runContext", "runComputedConfigs"),
}

#: Calls the official client flags "without workspace": never a ``selected-workspace-uuid``
#: header, even when the client was built with a workspace UUID (REFERENCE.md 2.2).
WITHOUT_WORKSPACE: set[tuple[str, str]] = {
    ("GET", "/userManagement/users/current"),
    ("PUT", "/userManagement/users/current"),
}

_LITERAL_SEGMENTS = {"list", "deployed", "fetch", "download", "cancel", "count", "metrics",
                     "download-outputs", "current", "draft"}


def route(method: str, path: str) -> tuple[str, str]:
    """Map a concrete request to its table key: strip scheme/host, query and the ``/v1``
    prefix, and replace id segments by ``{uuid}``. ``("get", "/v1/orchestration/plays/ab12")``
    -> ``("GET", "/orchestration/plays/{uuid}")``."""
    path = re.sub(r"^[a-z]+://[^/]+", "", path).split("?", 1)[0]
    if path.startswith("/v1/"):
        path = path[3:]
    if not path.startswith("/"):
        path = "/" + path
    parts = path.rstrip("/").split("/")
    # /domain/group/<x>[/<y>]: the third segment is an id unless it is a literal action
    if len(parts) >= 4 and parts[3] not in _LITERAL_SEGMENTS:
        parts[3] = "{uuid}"
    return method.upper(), "/".join(parts)


# ---------------------------------------------------------------- loading

@functools.cache
def _schema_dir():
    return _toolchain.ensure_schemas()


@functools.cache
def load_schema(name: str) -> dict:
    """The generated JSON Schema (draft-07, self-contained) for an official type."""
    path = _schema_dir() / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in _schema_dir().glob("*.json") if not p.stem.startswith("_"))
        raise KeyError(f"no schema named {name!r}; known: {', '.join(known)}")
    return json.loads(path.read_text())


def schema_names() -> list[str]:
    return json.loads((_schema_dir() / "_manifest.json").read_text())["names"]


# RFC 3339 date-time (what ts-json-schema-generator's `format: date-time` means). jsonschema
# only checks it when the optional rfc3339-validator is installed, so check it ourselves.
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_format_checker = FormatChecker()


@_format_checker.checks("date-time", raises=())
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@functools.cache
def _validator(name: str) -> Draft7Validator:
    return Draft7Validator(load_schema(name), format_checker=_format_checker)


# ---------------------------------------------------------------- readable errors

def _json_path(path) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if re.match(r"^[A-Za-z_]\w*$", str(p)) else f"[{p!r}]")
    return out


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


_DISCRIMINATORS = {"kind", "type", "outcome", "from", "status", "source"}


def _branch_errors(error: ValidationError) -> list[ValidationError]:
    """For anyOf/oneOf failures, the errors of the most plausible branch: the one whose
    discriminator (``kind``/``type``/``status``/...) matched, else the one with fewest errors."""
    if not error.context:
        return [error]
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else None, []).append(sub)

    def discriminator_failed(errs: list[ValidationError]) -> bool:
        return any(e.validator in ("const", "enum") and len(e.relative_path) == 1
                   and str(e.relative_path[0]) in _DISCRIMINATORS for e in errs)

    branches = list(by_branch.values())
    plausible = [b for b in branches if not discriminator_failed(b)] or branches
    # a branch failing only on "is not of type 'null'" is the null alternative: ignore it
    non_null = [b for b in plausible if not all(e.validator == "type" and e.validator_value == "null" for e in b)]
    best = min(non_null or plausible, key=len)
    out: list[ValidationError] = []
    for e in best:
        out.extend(_branch_errors(e) if e.context else [e])
    return out


def describe_errors(name: str, instance: Any, max_errors: int = 12) -> list[str]:
    lines = []
    for err in sorted(_validator(name).iter_errors(instance), key=lambda e: list(map(str, e.path))):
        for leaf in _branch_errors(err):
            where = _json_path(leaf.absolute_path)
            if leaf.validator == "additionalProperties":
                lines.append(f"{where}: {leaf.message} (not declared in the official type)")
            elif leaf.validator == "required":
                lines.append(f"{where}: {leaf.message} (declared required by the official type)")
            else:
                lines.append(f"{where}: {leaf.message}; actual value: {_short(leaf.instance)}")
    seen, unique = set(), []
    for line in lines:
        if line not in seen:
            seen.add(line)
            unique.append(line)
    if len(unique) > max_errors:
        unique = unique[:max_errors] + [f"... and {len(unique) - max_errors} more"]
    return unique


def validate(name: str, instance: Any, *, context: str = "") -> None:
    """Validate ``instance`` against the official type ``name``; AssertionError lists every
    offending field as a JSON path with the expected constraint and the actual value."""
    problems = describe_errors(name, instance)
    if problems:
        head = f"{context}: " if context else ""
        raise AssertionError(
            f"{head}does not conform to official type {name} "
            f"(@cargo-ai/types 1.0.56 / @cargo-ai/api 1.0.57):\n  - " + "\n  - ".join(problems)
        )


def null_to_undefined(value: Any) -> Any:
    """What the official client does to every success body (@cargo-ai/utils nullToUndefined):
    object keys holding null disappear (undefined); null array items stay (as undefined)."""
    if isinstance(value, dict):
        return {k: null_to_undefined(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [null_to_undefined(v) for v in value]
    return value


def client_view(name: str, wire_body: Any) -> Any:
    """What the official client returns for ``wire_body``: null->undefined everywhere except
    the sub-trees it keeps raw for that result type (:data:`KEEP_RAW`)."""
    view = null_to_undefined(wire_body)
    if isinstance(wire_body, dict) and isinstance(view, dict):
        for key in KEEP_RAW.get(name, ()):
            if key in wire_body:
                view[key] = wire_body[key]
    return view


def validate_client_view(name: str, wire_body: Any, *, context: str = "") -> None:
    """Validate a raw response body against an official API *result* type, i.e. after the
    same null->undefined conversion the official client applies."""
    validate(name, client_view(name, wire_body), context=context)


# ---------------------------------------------------------------- requests

def parse_query(query: str | dict | list | None, schema_name: str | None = None) -> dict:
    """Decode an Axios/qs-style query string (``statuses%5B%5D=a&limit=2``) into the payload
    object the client started from. Values are coerced back to booleans/numbers where the
    payload schema says so (the wire only carries strings). Top-level scalars and top-level
    ``key[]`` arrays only: that is all the in-scope GET endpoints use (REFERENCE.md 2.4)."""
    if query is None:
        return {}
    if isinstance(query, dict):
        pairs = []
        for k, v in query.items():
            for item in (v if isinstance(v, list) else [v]):
                pairs.append((k, item))
    elif isinstance(query, list):
        pairs = list(query)
    else:
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    props: dict = {}
    if schema_name is not None:
        schema = load_schema(schema_name)
        root = schema
        seen = 0
        while "$ref" in root and seen < 10:
            root = schema["definitions"][root["$ref"].split("/")[-1].replace("%3C", "<").replace("%3E", ">")]
            seen += 1
        props = root.get("properties", {})
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            out.setdefault(key[:-2], []).append(value)
        else:
            out[key] = _coerce(value, props.get(key, {}))
    return out


def _coerce(value: Any, prop: dict) -> Any:
    if not isinstance(value, str):
        return value
    types = prop.get("type")
    types = types if isinstance(types, list) else [types]
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if "number" in types or "integer" in types:
        try:
            return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
        except ValueError:
            return value
    return value


def validate_request(method: str, path: str, body: Any = None, query: Any = None) -> None:
    """Validate an outgoing request (e.g. an ``emu.request_log`` entry) against the official
    payload type of its endpoint. Unknown endpoints raise KeyError."""
    key = route(method, path)
    if key in NO_BODY:
        assert body in (None, b"", ""), f"{key}: the official client sends no body here, got {_short(body)}"
        return
    name = PAYLOAD_TYPES[key]
    if key[0] == "GET":
        validate(name, parse_query(query, name), context=f"{key[0]} {key[1]} query")
    else:
        validate(name, body if body is not None else {}, context=f"{key[0]} {key[1]} body")


__all__ = [
    "KEEP_RAW",
    "NO_BODY",
    "PAYLOAD_TYPES",
    "RESPONSE_TYPES",
    "WITHOUT_WORKSPACE",
    "client_view",
    "describe_errors",
    "jsonschema",
    "load_schema",
    "null_to_undefined",
    "parse_query",
    "route",
    "schema_names",
    "validate",
    "validate_client_view",
    "validate_request",
]
