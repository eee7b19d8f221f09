"""Executable workspace assets: plays via run config and partitions, tools from upstream DataFrames."""

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm_emulator.enrichment import enrich_company, score_company

from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.translator import DagsterCargoTranslator

from ..conftest import TOKEN, make_resource


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator


def resource(emu) -> CargoResource:
    return make_resource(emu)


@dg.asset
def signups() -> pd.DataFrame:
    return pd.DataFrame({"domain": ["acme.com", "hooli.com", "initech.io"], "company_name": ["A", "H", "I"]})


def test_tool_asset_reads_upstream_dataframe(emulator):
    assets = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company"],
                                            tool_inputs={"Enrich company": "signups"})
    assert [a.key.to_user_string() for a in assets] == ["cargo/enrich_company"]
    result = dg.materialize([signups, *assets], resources={"cargo": resource(emulator)})
    frame = result.output_for_node("cargo__enrich_company")
    assert sorted(frame["domain"]) == ["acme.com", "hooli.com", "initech.io"]
    assert all(r["industry"] == enrich_company(r["domain"])["industry"] for _, r in frame.iterrows())


def test_play_asset_run_config_record_ids(emulator):
    (play_asset,) = build_cargo_assets_definitions(resource(emulator), selector=["Score inbound companies"])
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        play = c.find_play("Score inbound companies")
        ids = [r["_id"] for r in c.fetch_segment(play.model_uuid, {"conjonction": "and", "groups": []},
                                                  fetching_limit=4).records]
    result = dg.materialize([play_asset], resources={"cargo": resource(emulator)},
                            run_config={"ops": {"cargo__score_inbound_companies": {"config": {"record_ids": ids}}}})
    frame = result.output_for_node("cargo__score_inbound_companies")
    assert sorted(frame["_id"]) == sorted(ids)
    assert all(r["score"] == score_company(r["domain"])["score"] for _, r in frame.iterrows())


def test_daily_partitioned_play_runs_over_its_date_window(emulator):
    daily = dg.DailyPartitionsDefinition(start_date="2020-01-01")

    class Daily(DagsterCargoTranslator):
        def get_asset_spec(self, props):
            return super().get_asset_spec(props).replace_attributes(partitions_def=daily)

    (play_asset,) = build_cargo_assets_definitions(
        resource(emulator), translator=Daily(), selector=["Score inbound companies"],
        partition_date_columns={"Score inbound companies": "created_at"})
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        play = c.find_play("Score inbound companies")
        everything = c.fetch_segment(play.model_uuid, {"conjonction": "and", "groups": []}, fetching_limit=10_000)
    by_day = pd.Series([str(r["created_at"])[:10] for r in everything.records]).value_counts()
    day = by_day.index[0]  # the busiest day: at least one record
    in_window = [r for r in everything.records if str(r["created_at"])[:10] == day]
    result = dg.materialize([play_asset], partition_key=day, resources={"cargo": resource(emulator)})
    frame = result.output_for_node("cargo__score_inbound_companies")
    assert len(frame) == len(in_window) > 0
    assert set(frame["_id"]) == {r["_id"] for r in in_window}
