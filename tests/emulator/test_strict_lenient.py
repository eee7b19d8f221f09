"""Strict request bodies (CARGO-DOCS 10.1), lenient filter JSON (CARGO-DOCS 9), segments and changes (8)."""

from __future__ import annotations

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator

from .conftest import TOKEN


@pytest.mark.parametrize("path,body", [
    ("/orchestration/runs/list", {"workflowUuid": "x", "pageSize": 10}),
    ("/orchestration/runs/download-outputs", {"workflowUuid": "x", "isFinished": True}),  # CARGO-DOCS 2.6
    ("/orchestration/batches", {"workflowUuid": "x", "data": {"kind": "records", "records": []},
                                "idempotencyKey": "k"}),
    ("/segmentation/segments/fetch", {"modelUuid": "m", "filter": None, "conjonction": "and"}),
])
def test_unknown_body_key_is_unrecognized_keys(api: httpx.Client, path: str, body: dict) -> None:
    r = api.post(path, json=body)
    assert r.status_code == 400
    out = r.json()
    assert out["reason"] == "unrecognized_keys" and out["errorMessage"].startswith("RequestError: ")
    extra = [k for k in body if k in ("pageSize", "isFinished", "idempotencyKey", "conjonction")]
    assert out["issues"] == [{"code": "unrecognized_keys", "keys": extra, "path": [],
                              "message": f"Unrecognized key(s) in object: '{extra[0]}'"}]


def test_strict_false_is_a_debugging_aid() -> None:
    with CargoEmulator(token=TOKEN, clock="manual", strict=False) as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
        r = api.post("/orchestration/runs/list", json={"workflowUuid": wf, "pageSize": 10})
        assert r.status_code == 200


def _count(api: httpx.Client, model: str, flt: dict) -> int:
    r = api.post("/segmentation/segments/fetch", json={"modelUuid": model, "filter": flt})
    assert r.status_code == 200, r.text
    return int(r.json()["count"])


def test_filter_json_is_lenient_and_degrades(emu: CargoEmulator, api: httpx.Client) -> None:
    model = emu.store.model_by_slug("companies")["uuid"]
    big = {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 200}
    n_big = sum(r["employee_count"] > 200 for r in emu.store.model_records(model))
    assert 0 < n_big < 300
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [big]}]}) == n_big
    # misspelled conjonction: dropped, the filter degenerates to an empty 200 (CARGO-DOCS 9.1)
    assert _count(api, model, {"conjunction": "and", "groups": [{"conjonction": "and", "conditions": [big]}]}) == 0
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjunction": "and", "conditions": [big]}]}) == 0
    # top-level conditions beside groups are ignored: the whole model (CARGO-DOCS 9.2)
    assert _count(api, model, {"conjonction": "and", "groups": [], "conditions": [big]}) == 300
    # value where values is expected: the condition is dropped (CARGO-DOCS 9.3)
    wrong = {"kind": "string", "columnSlug": "country", "operator": "is", "value": "US"}
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjonction": "and",
                                                                "conditions": [wrong, big]}]}) == n_big
    # a nested group or a group keyed "condition" loses its keys and matches everything
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjonction": "and", "groups": [
        {"conjonction": "and", "conditions": [big]}]}]}) == 300
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjonction": "and", "condition": [big]}]}) == 300
    # kind/type mismatch and unknown columns match nothing
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "number", "columnSlug": "country", "operator": "isNotNull"}]}]}) == 0
    assert _count(api, model, {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "string", "columnSlug": "nope", "operator": "isNot", "values": ["x"]}]}]}) == 0


def test_updated_only_for_tracked_columns_and_change_rows(emu: CargoEmulator, api: httpx.Client) -> None:
    icp = emu.store.segment_by_name("ICP companies")  # no trackingColumnSlugs
    play = emu.store.play_by_name("Score inbound companies")  # its segment tracks some columns
    rec = next(r for r in emu.store.model_records(icp["modelUuid"]) if r["employee_count"] > 200)
    changes = emu.store.upsert_records("companies", [{"_id": rec["_id"], "industry": "Changed"}])
    by_seg = {c["segmentUuid"]: c for c in changes}
    assert by_seg[icp["uuid"]]["updatedRecordsCount"] == 0  # CARGO-DOCS 8.1
    assert by_seg[play["segmentUuid"]]["updatedRecordsCount"] == 1
    change = by_seg[play["segmentUuid"]]
    out = api.post(f"/segmentation/changes/{change['uuid']}/fetch", json={"kinds": ["updated"]}).json()
    assert list(out["records"][0])[:4] == ["_kind", "_id", "_title", "_time"]  # CARGO-DOCS 8.2
    assert out["records"][0]["_kind"] == "updated" and out["records"][0]["industry"] == "Changed"
    assert [c["slug"] for c in out["columns"]][:4] == ["_kind", "_id", "_title", "_time"]
    bad = api.post(f"/segmentation/changes/{change['uuid']}/fetch", json={})
    assert bad.status_code == 400 and bad.json()["issues"][0]["path"] == ["kinds"]


def test_record_fetch_and_play_segments(emu: CargoEmulator, api: httpx.Client) -> None:
    model = emu.store.model_by_slug("companies")["uuid"]
    got = api.post("/segmentation/records/fetch", json={"modelUuid": model, "ids": ["cmp_0002", "nope"]}).json()
    assert [r["_id"] for r in got["records"]] == ["cmp_0002"]  # an unknown id is absent, not an error (8.5)
    assert api.post("/segmentation/records/fetch", json={"modelUuid": model, "ids": ["nope"]}).json() == {
        "records": []}
    play = emu.store.play_by_name("Score inbound companies")
    seg = api.get(f"/segmentation/segments/{play['segmentUuid']}").json()["segment"]
    # a play's own segment: count never populated and no syncedAt, i.e. "unknown" (8.3, 8.4)
    assert seg["fromPlay"] and seg["recordsCount"] == 0 and seg["syncedAt"] is None
    r = api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "segment", "segmentUuid": seg["uuid"]}})
    assert r.status_code == 400 and r.json()["dataError"] == {"reason": "segmentLinkedToPlay"}
