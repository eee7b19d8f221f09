"""Every response the official client received from the emulator, validated as raw JSON
against JSON Schemas generated from the official declarations:

- wire form: the @cargo-ai/types domain types (nulls present, dates as date-time strings);
- client view: the @cargo-ai/api result types, after the client's own null->undefined step.

And every request body the official client sent, against the official payload types (a
self-check of the schemas: the official client's own requests must conform)."""

from __future__ import annotations

import json

import pytest

from . import schemas
from ._helpers import get_call

# (scenario, call) pairs whose responses are checked; calls that end in an error are
# checked by the error tests instead.
CHECKED = {
    "catalog": ["workflows.list", "plays.list", "plays.list.enabled", "plays.list.byModel", "plays.list.bySegment",
                "plays.get", "tools.list", "tools.get", "releases.deployed", "releases.deployed.tool", "releases.get",
                "models.list", "segments.list", "segments.get", "segments.fetch.all", "segments.fetch.filter",
                "changes.list", "billing.usage", "billing.usage.grouped",
                "billing.subscription", "workspace.current", "models.get", "datasets.list", "users.current",
                "users.current.withWorkspace"],
    "start": ["batches.create.playFilter", "batches.create.playSegment", "batches.create.playRecordIds",
              "batches.create.toolRecords", "batches.create.toCancel", "batches.get.toCancel.afterCancel",
              "batches.list.unfinished", "runs.get.cancelling"],
    "finish": ["batches.get.playFilter.finished", "batches.get.playSegment.finished",
               "batches.get.playRecordIds.finished", "batches.get.toolRecords.finished",
               "batches.get.toCancel.finished", "batches.list.finished", "batches.list.success.play",
               "batches.list.all", "batches.download.playFilter", "batches.download.toolRecords",
               "batches.download.playFilter.outputNodeSlug", "runs.list", "runs.list.page", "runs.list.error",
               "runs.count", "runs.metrics", "runs.downloadOutputs.csv", "runs.downloadOutputs.json",
               "runs.get", "runs.get.cancelled", "users.current"],
    "lifecycle": ["batches.get.poll", "batches.download"],
    "credits": ["billing.subscription"],
}
PAIRS = [(s, c) for s, calls in CHECKED.items() for c in calls]


def _exchange(all_runs, scenario, call):
    c = get_call(all_runs[scenario], call)
    assert c["wire"], f"{call}: no exchange captured"
    ex = c["wire"][-1]
    assert 200 <= ex["status"] < 300, f"{call}: HTTP {ex['status']}: {ex['responseText'][:400]}"
    key = schemas.route(ex["method"], ex["url"])
    assert key in schemas.RESPONSE_TYPES, f"no response schema mapped for {key}"
    return key, ex, json.loads(ex["responseText"])


@pytest.mark.parametrize("scenario,call", PAIRS, ids=[f"{s}:{c}" for s, c in PAIRS])
def test_response_wire_form(all_runs, schema_dir, scenario, call):
    key, ex, body = _exchange(all_runs, scenario, call)
    assert (ex.get("responseContentType") or "").startswith("application/json"), ex.get("responseContentType")
    wire_name, _ = schemas.RESPONSE_TYPES[key]
    schemas.validate(wire_name, body, context=f"{call} ({key[0]} {key[1]}) raw body")


@pytest.mark.parametrize("scenario,call", PAIRS, ids=[f"{s}:{c}" for s, c in PAIRS])
def test_response_client_view(all_runs, schema_dir, scenario, call):
    key, _, body = _exchange(all_runs, scenario, call)
    _, result_name = schemas.RESPONSE_TYPES[key]
    schemas.validate_client_view(result_name, body, context=f"{call} ({key[0]} {key[1]}) after nullToUndefined")


def test_official_requests_match_payload_types(all_runs, schema_dir):
    """Self-check: the official client's own outgoing requests validate against the payload
    schemas (if this fails, the schemas - not the emulator - are wrong)."""
    checked, problems = 0, []
    for scenario, doc in all_runs.items():
        for name, c in doc.get("calls", {}).items():
            for ex in c.get("wire") or []:
                key = schemas.route(ex["method"], ex["url"])
                if key not in schemas.PAYLOAD_TYPES and key not in schemas.NO_BODY:
                    continue
                query = ex["url"].split("?", 1)[1] if "?" in ex["url"] else ""
                body = json.loads(ex["requestBody"]) if ex.get("requestBody") else None
                try:
                    schemas.validate_request(ex["method"], ex["url"], body=body, query=query)
                    checked += 1
                except AssertionError as e:
                    problems.append(f"{scenario}:{name}: {e}")
    assert not problems, "\n".join(problems)
    assert checked >= 20, f"only {checked} requests checked"
