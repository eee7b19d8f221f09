"""What the operator runs: the workflow by name or UUID, and its input checked before anything is spent."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoInputError
from conftest import TOKEN


@pytest.fixture
def client(cargo_conn):
    with CargoClient(TOKEN, base_url=cargo_conn.base_url) as c:
        yield c


def test_a_workflow_uuid_resolves_to_its_play_or_tool(client) -> None:
    from cargo_provider.inputs import resolve_target

    tool = client.find_tool("Enrich company")
    play = client.find_play("Score inbound companies")
    assert resolve_target(client, workflow=tool.workflow_uuid).type == "tool"
    target = resolve_target(client, workflow=play.workflow_uuid)
    assert (target.type, target.name, target.model_uuid) == ("play", play.name, play.model_uuid)
    with pytest.raises(CargoInputError, match="No Cargo play or tool has workflow UUID 'nope'.*Next step"):
        resolve_target(client, workflow="nope")
    with pytest.raises(CargoInputError, match="exactly one of play=, tool= or workflow="):
        resolve_target(client, play="a", tool="b")


def test_inputs_that_do_not_fit_the_workflow_are_refused_before_any_request(client, cargo_conn) -> None:
    from cargo_provider.inputs import build_data, resolve_target

    tool = resolve_target(client, tool="Enrich company")
    play = resolve_target(client, play="Score inbound companies")
    with pytest.raises(CargoInputError, match="takes records only.*Next step"):
        build_data(tool, filter={"conjonction": "and", "groups": []})
    with pytest.raises(CargoInputError, match="records= is None.*Next step: .*records=\\[\\] runs nothing"):
        build_data(tool)
    with pytest.raises(CargoInputError, match="give filter=, segment=, record_ids= or change=.*Next step"):
        build_data(play, records=[{"domain": "a.com"}])
    with pytest.raises(CargoInputError, match="No Cargo segment named or with UUID 'Nope'.*Next step"):
        build_data(play, segment="Nope", client=client)
    assert cargo_conn.batches() == []


def test_records_from_a_json_xcom_string_and_from_files(tmp_path) -> None:
    from cargo_provider.inputs import load_records

    assert load_records(json.dumps([{"domain": "a.com"}])) == [{"domain": "a.com"}]
    pd.DataFrame([{"domain": "b.com", "n": 1}]).to_parquet(tmp_path / "r.parquet")
    (tmp_path / "r.jsonl").write_text('{"domain": "c.com"}\n{"domain": "d.com"}\n')
    assert load_records(f"file://{tmp_path}/r.parquet") == [{"domain": "b.com", "n": 1}]
    assert load_records(str(tmp_path / "r.jsonl")) == [{"domain": "c.com"}, {"domain": "d.com"}]
    (tmp_path / "r.xml").write_text("<x/>")
    with pytest.raises(CargoInputError, match="unknown suffix '.xml'.*Next step"):
        load_records(str(tmp_path / "r.xml"))


def test_a_file_s_values_are_sent_as_the_file_holds_them(tmp_path) -> None:
    """No type guessing: a CSV's cells are their text (leading zeros, "NA"), JSON values are JSON's (a numeric-looking
    string stays a string, a ``*_at`` column is no date), pandas' default JSON (columns) gives its records, and a
    Parquet int64 with nulls stays exact."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from cargo_provider.inputs import load_records

    (tmp_path / "r.csv").write_text("domain,zip,phone,country,employees\nacme.com,02134,0612345678,NA,\n")
    assert load_records(str(tmp_path / "r.csv")) == [
        {"domain": "acme.com", "zip": "02134", "phone": "0612345678", "country": "NA", "employees": ""}]
    (tmp_path / "r.jsonl").write_text('{"zip": "02134", "created_at": "1700000000"}\n\n{"zip": 501}\n')
    assert load_records(str(tmp_path / "r.jsonl")) == [{"zip": "02134", "created_at": "1700000000"}, {"zip": 501}]
    pd.DataFrame({"domain": ["a.com", "b.com"], "zip": ["02134", "501"]}).to_json(tmp_path / "c.json")
    assert load_records(str(tmp_path / "c.json")) == [{"domain": "a.com", "zip": "02134"},
                                                       {"domain": "b.com", "zip": "501"}]
    pq.write_table(pa.table({"crm_id": pa.array([9007199254740993, None], pa.int64())}), tmp_path / "r.parquet")
    assert load_records(str(tmp_path / "r.parquet")) == [{"crm_id": 9007199254740993}, {"crm_id": None}]
    frame = pd.DataFrame({"domain": ["a.com", "b.com", "c.com", "d.com"], "employees": [5, 0, 7, 1]})
    frame[frame.employees > 0].to_parquet(tmp_path / "filtered.parquet")  # index [0, 2, 3]: a column of the file
    assert load_records(str(tmp_path / "filtered.parquet")) == [{"domain": "a.com", "employees": 5},
                                                                {"domain": "c.com", "employees": 7},
                                                                {"domain": "d.com", "employees": 1}]


@pytest.mark.parametrize(("value", "fragment"), [
    ("", "records= is an empty string"),
    ("[{'domain': 'a.com'}]", "is text that is not JSON"),
    ("None", "unknown suffix ''"),
    ("/nowhere/records.csv", "No file at /nowhere/records.csv"),
    ({"domain": ["a.com", "b.com"]}, "not a single dict"),
], ids=["empty", "python-repr", "none-text", "missing-file", "columns-dict"])
def test_text_and_shapes_that_are_not_records_are_refused_with_a_next_step(value, fragment) -> None:
    from cargo_provider.inputs import load_records

    with pytest.raises(CargoInputError, match=f"{fragment}.*Next step"):
        load_records(value)


def test_records_missing_a_required_field_are_refused_before_any_batch(cargo_conn, store, tmp_path) -> None:
    from test_exactly_once import context, operator

    records = [{"domain": "acme.com"}, {"company_name": "Globex"}, {"domain": ""}]
    with pytest.raises(CargoInputError, match=r"Input record 1 has no value for the required form field 'domain' of "
                                              r"the tool 'Enrich company' \(2 of 3 records.*Next step"):
        operator(tmp_path, records=records).execute(context(store))
    assert cargo_conn.batches() == []
