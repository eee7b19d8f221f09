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
