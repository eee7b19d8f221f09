"""Every input Cargo would silently misread is refused before a credit is spent: the error says what to change,
and no batch exists afterwards (no create request was even sent)."""

import datetime as dt
import logging
from decimal import Decimal

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.inputs.records import date_window_filter
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource
from dagster_cargo.definitions.ops import cargo_batch_op

from ..conftest import make_resource

TOKEN = "tok-input-guards-6a1c"
PLAY = "Score inbound companies"
TOOL = "Enrich company"
CREATE = "/v1/orchestration/batches"


@pytest.fixture(scope="module")
def emu():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as e:
        yield e


def cargo(emu: CargoEmulator) -> CargoResource:
    return make_resource(emu, api_token=TOKEN, poll_interval=0.02, max_poll_interval=0.2, credit_breakdown=False,
                         single_run_threshold=0)  # batches: these tests count batch creates


def run(emu, body):
    @dg.asset
    def subject(context: dg.AssetExecutionContext, cargo: CargoResource):
        return body(context, cargo).materialize_result()

    return dg.materialize([subject], resources={"cargo": cargo(emu)}, raise_on_error=False)


def creates(emu) -> int:
    return len([r for r in emu.request_log if r["method"] == "POST" and r["path"] == CREATE])


def refused(emu, body, *fragments):
    before_creates = creates(emu)
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        before = {b.uuid for b in c.list_batches(limit=100)}
    result = run(emu, body)
    assert not result.success
    text = result.failure_data_for_node("subject").error.to_string()
    for fragment in fragments:
        assert fragment in text, text
    assert creates(emu) == before_creates, "a create request was sent"
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        assert {b.uuid for b in c.list_batches(limit=100)} == before, "a batch was created"
    return text


def group(*conditions, conj="and"):
    return {"conjonction": "and", "groups": [{"conjonction": conj, "conditions": list(conditions)}]}


COND = {"kind": "string", "columnSlug": "country", "operator": "is", "values": ["FR"]}

FILTER_CASES = {
    "nested-group": ({"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"conjonction": "or", "conditions": [COND]}]}]}, ["group nested inside a group"]),
    "groups-in-group": ({"conjonction": "and", "groups": [{"conjonction": "and", "groups": []}]},
                        ["nests 'groups' inside a group"]),
    "group-keyed-condition": ({"conjonction": "and", "groups": [{"conjonction": "and", "condition": [COND]}]},
                              ["unknown key 'condition'", "did you mean 'conditions'"]),
    "unknown-key-top": ({"conjonction": "and", "groups": [], "sort": []}, ["unknown key 'sort'"]),
    "unknown-key-condition": (group({**COND, "value": "FR"}), ["unknown key 'value'"]),
    "missing-conjonction-top": ({"groups": [{"conjonction": "and", "conditions": [COND]}]},
                                ["has no 'conjonction'", "Cargo's default is 'or'"]),
    "missing-conjonction-group": ({"conjonction": "and", "groups": [{"conditions": [COND]}]},
                                  ["filter.groups[0] has no 'conjonction'"]),
    "misspelled-conjonction": ({"conjunction": "and", "groups": []}, ["Cargo spells it 'conjonction'"]),
    "bad-conjonction-value": ({"conjonction": "AND", "groups": []}, ["use 'and' or 'or'"]),
    "operator-misfit": (group({"kind": "string", "columnSlug": "country", "operator": "greaterThan", "value": 1}),
                        ["operator 'greaterThan'", "does not fit a 'string' condition"]),
    "boolean-operator-on-number": (group({"kind": "number", "columnSlug": "employee_count", "operator": "isTrue"}),
                                   ["does not fit a 'number' condition"]),
    "isNot-unknown-column": (group({"kind": "string", "columnSlug": "contry", "operator": "isNot",
                                    "values": ["FR"]}), ["column 'contry'", "Did you mean: 'country'"]),
    "kind-misfits-column": (group({"kind": "string", "columnSlug": "employee_count", "operator": "is",
                                   "values": ["5"]}), ["column 'employee_count' of type 'number'"]),
    "top-level-conditions": ({"conjonction": "and", "groups": [], "conditions": [COND]},
                             ["top-level 'conditions'", "matches the whole model"]),
    "missing-values": (group({"kind": "string", "columnSlug": "country", "operator": "is"}), ["needs values"]),
    "unknown-kind": (group({"kind": "text", "columnSlug": "country", "operator": "is", "values": ["x"]}),
                     ["kind 'text'"]),
}


@pytest.mark.parametrize("name", list(FILTER_CASES))
def test_bad_filters_are_refused_before_any_batch(emu, name):
    flt, fragments = FILTER_CASES[name]
    refused(emu, lambda ctx, c: c.run_play(ctx, PLAY, filter=flt), *fragments)


RECORD_CASES = {
    "bytes": ([{"domain": "a.com", "logo": b"\x89PNG"}], ["column 'logo'", "bytes"]),
    "complex": ([{"domain": "a.com", "z": 1 + 2j}], ["column 'z'", "complex"]),
    "object": ([{"domain": "a.com", "thing": object()}], ["column 'thing'", "JSON cannot represent"]),
    "decimal-precision": ([{"domain": "a.com", "price": Decimal("12345678901234567890.123")}],
                          ["column 'price'", "more precision than a JSON number carries"]),
    "infinity": ([{"domain": "a.com", "ratio": float("inf")}], ["column 'ratio'", "inf"]),
    "timedelta": ([{"domain": "a.com", "age": pd.Timedelta(days=1)}], ["column 'age'", "Timedelta"]),
    "non-mapping-record": ([("domain", "a.com")], ["Input record 0 is a tuple", "not a mapping"]),
    "single-dict": ({"domain": "a.com"}, ["not a single dict", "wrap it in a list"]),
    "required-field-missing": ([{"company_name": "Acme"}], ["required form field 'domain'"]),
    "required-field-empty": ([{"domain": "a.com"}, {"domain": ""}], ["Input record 1", "required form field"]),
}


@pytest.mark.parametrize("name", list(RECORD_CASES))
def test_records_json_cannot_carry_exactly_are_refused(emu, name):
    records, fragments = RECORD_CASES[name]
    refused(emu, lambda ctx, c: c.run_tool(ctx, TOOL, records), *fragments)


def test_duplicate_column_names_are_refused(emu):
    frame = pd.DataFrame([["a.com", "b.com"]], columns=["domain", "domain"])
    refused(emu, lambda ctx, c: c.run_tool(ctx, TOOL, frame), "duplicate column names ['domain']")


@pytest.mark.parametrize("limit", [0, -3, 2.5, "10", True])
def test_limit_must_be_a_positive_int(emu, limit):
    refused(emu, lambda ctx, c: c.run_play(ctx, PLAY, limit=limit), "limit must be a positive whole number")


def test_a_case_only_name_match_is_used_only_when_unique_and_logged(emu, caplog):
    with caplog.at_level(logging.WARNING, logger="cargo_gtm"):
        with CargoClient(TOKEN, base_url=emu.base_url) as c:
            assert c.find_tool("enrich COMPANY").name == TOOL
    assert "differs only in case" in caplog.text


def test_several_case_only_matches_are_refused(emu):
    from cargo_gtm.client import _find_by_name
    from cargo_gtm.errors import CargoInputError

    class Item:
        def __init__(self, name, uuid):
            self.name, self.uuid = name, uuid

    items = [Item("Enrich", "u1"), Item("ENRICH", "u2")]
    assert _find_by_name(items, "ENRICH", "tool").uuid == "u2"  # exact first
    with pytest.raises(CargoInputError, match="differ from it only in case"):
        _find_by_name(items, "enrich", "tool")


def test_the_op_resolves_names_like_run_play_and_run_tool(emu):
    @dg.job(resource_defs={"cargo": cargo(emu)})
    def one():
        cargo_batch_op()

    before = creates(emu)
    result = one.execute_in_process(raise_on_error=False, run_config={"ops": {"cargo_batch_op": {"config": {
        "workflow": "score INBOUND companies", "limit": 0}}}})
    assert not result.success and creates(emu) == before
    text = result.failure_data_for_node("cargo_batch_op").error.to_string()
    assert "limit must be a positive whole number" in text  # resolved as the play, then the input refused


def test_datetime64_is_sent_as_iso_text_on_every_path(emu):
    stamp = np.datetime64("2025-03-04T05:06:07")
    frame = pd.DataFrame({"domain": ["dt64.example"], "seen": pd.Series([stamp], dtype=object)})
    before = creates(emu)
    result = run(emu, lambda ctx, c: c.run_tool(ctx, TOOL, frame))
    assert result.success
    sent = [r for r in emu.request_log if r["method"] == "POST" and r["path"] == CREATE][before:]
    assert sent[0]["json"]["data"]["records"][0]["seen"] == "2025-03-04T05:06:07"
    rows = run(emu, lambda ctx, c: c.run_tool(ctx, TOOL, [{"domain": "dt64b.example", "seen": stamp}]))
    assert rows.success
    sent = [r for r in emu.request_log if r["method"] == "POST" and r["path"] == CREATE]
    assert sent[-1]["json"]["data"]["records"][0]["seen"] == "2025-03-04T05:06:07"


def test_every_filter_the_package_builds_states_its_conjonction():
    def walk(obj):
        if isinstance(obj, dict):
            if "groups" in obj or "conditions" in obj:
                assert obj.get("conjonction") in ("and", "or"), obj
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(date_window_filter("created_at", dt.date(2025, 1, 1), dt.date(2025, 1, 2)))
    base = {"conjonction": "or", "groups": [{"conjonction": "and", "conditions": [COND]},
                                             {"conjonction": "and", "conditions": [COND]}]}
    walk(date_window_filter("created_at", "2025-01-01", "2025-01-02", base))
    walk(date_window_filter("created_at", "2025-01-01", "2025-01-02", group(COND)))


def test_a_partition_window_runs_every_record_of_its_window(emu):
    # Cargo's default conjonction is "or": a window filter that left it out dropped most records
    from dagster_cargo.definitions.asset_defs import partition_window_filter

    parts = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    seen = {}

    @dg.asset(partitions_def=parts)
    def windowed(context: dg.AssetExecutionContext, cargo: CargoResource):
        flt = partition_window_filter(context, "created_at")
        seen["filter"] = flt
        return cargo.run_play(context, PLAY, filter=flt).materialize_result()

    store = emu.store
    model = store.play_by_name(PLAY)["modelUuid"]
    day = sorted(str(r["created_at"])[:10] for r in store.model_records(model))[len(store.model_records(model)) // 2]
    result = dg.materialize([windowed], partition_key=day, resources={"cargo": cargo(emu)}, raise_on_error=False)
    assert result.success
    want = sorted(r["_id"] for r in store.model_records(model) if str(r["created_at"])[:10] == day)
    got = result.output_for_node("windowed")
    assert len(got) == len(want) > 0
    assert seen["filter"]["conjonction"] == "and" and seen["filter"]["groups"][0]["conjonction"] == "and"
