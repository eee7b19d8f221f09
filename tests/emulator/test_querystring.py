"""qs-style query parsing (REFERENCE §2.4)."""

from __future__ import annotations

import httpx
from cargo_gtm_emulator.querystring import parse_qs


def test_bracket_arrays_and_scalars() -> None:
    q = ("workflowUuids%5B%5D=a&workflowUuids%5B%5D=b&statuses%5B%5D=running&statuses%5B%5D=success"
         "&hasRuns=true&limit=20&offset=0")
    assert parse_qs(q) == {"workflowUuids": ["a", "b"], "statuses": ["running", "success"], "hasRuns": True,
                           "limit": 20, "offset": 0}


def test_nested_objects_plus_and_encoded_plus() -> None:
    q = ("filter%5Bconjonction%5D=and&filter%5Bgroups%5D%5B0%5D%5Bconjonction%5D=or"
         "&filter%5Bgroups%5D%5B0%5D%5Bconditions%5D%5B0%5D%5Bkind%5D=string"
         "&filter%5Bgroups%5D%5B0%5D%5Bconditions%5D%5B0%5D%5Bvalues%5D%5B0%5D=a+b"
         "&filter%5Bgroups%5D%5B0%5D%5Bconditions%5D%5B0%5D%5Bvalues%5D%5B1%5D=c%2Bd")
    assert parse_qs(q) == {"filter": {"conjonction": "and", "groups": [
        {"conjonction": "or", "conditions": [{"kind": "string", "values": ["a b", "c+d"]}]}]}}


def test_unencoded_brackets_colons_and_false() -> None:
    q = "statuses[]=error&from=2025-01-01T00:00:00Z&isFinished=false&x=1.5&name=007a"
    assert parse_qs(q) == {"statuses": ["error"], "from": "2025-01-01T00:00:00Z", "isFinished": False,
                           "x": 1.5, "name": "007a"}


def test_list_batches_uses_bracket_arrays(emu, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    tool = emu.store.tool_by_name("Enrich company")
    api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0001"]}})
    api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "records", "records": [{"domain": "acme.com"}]}})
    raw = f"workflowUuids%5B%5D={tool['workflowUuid']}&statuses%5B%5D=pending&limit=20&offset=0"
    batches = api.get(f"/orchestration/batches/list?{raw}").json()["batches"]
    assert [b["workflowUuid"] for b in batches] == [tool["workflowUuid"]]
    both = api.get("/orchestration/batches/list?workflowUuids%5B%5D=" + play["workflowUuid"]
                   + "&workflowUuids%5B%5D=" + tool["workflowUuid"]).json()["batches"]
    assert len(both) == 2
    assert both[0]["workflowUuid"] == tool["workflowUuid"]  # newest first
