"""One asset factory behind build_cargo_assets_definitions and CargoWorkspaceComponent: the same op
names, the same run config (every field, credit_budget included) and the same default spend guard."""

from __future__ import annotations

import warnings

import dagster as dg
import pytest
from cargo_gtm import CargoClient
from dagster.components.core.component_tree import ComponentTree

from dagster_cargo import CargoResource
from dagster_cargo.components import CargoWorkspaceComponent
from dagster_cargo.definitions.asset_defs import DEFAULT_PLAY_LIMIT, build_cargo_assets_definitions
from dagster_cargo.definitions.workspace_data import fetch_workspace_data
from dagster_cargo.running.resource import CargoTokenExposureWarning

from ..conftest import TOKEN, make_resource, manual_clock

SCORE = dg.AssetKey(["cargo", "score_inbound_companies"])
ENRICH = dg.AssetKey(["cargo", "enrich_company"])
BUILDERS = ("function", "component")


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator


def resource(emu) -> CargoResource:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CargoTokenExposureWarning)
        return make_resource(emu)


def build(how: str, emu, tmp_path) -> tuple[list[dg.AssetsDefinition], dict]:
    selection = ["Score inbound companies", "Enrich company"]
    if how == "function":
        return build_cargo_assets_definitions(resource(emu), selector=selection), {"cargo": resource(emu)}
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        fetch_workspace_data(client).write(tmp_path / "state")
    component = CargoWorkspaceComponent.resolve_from_dict({
        "workspace": {"api_token": TOKEN, "base_url": emu.base_url, "poll_interval": 0.05, "max_poll_interval": 0.5},
        "selection": {"by_name": selection}})
    defs = component.build_defs_from_state(ComponentTree.for_test().load_context, tmp_path / "state")
    resources = {key: r.with_clock(manual_clock(emu)) for key, r in defs.resources.items()}  # the component's own
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)], resources


def asset_of(assets: list[dg.AssetsDefinition], key: dg.AssetKey) -> dg.AssetsDefinition:
    return next(a for a in assets if a.key == key)


def model_size(emu) -> int:
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        play = c.find_play("Score inbound companies")
        return len(c.fetch_segment(play.model_uuid, {"conjonction": "and", "groups": []},
                                   fetching_limit=10_000).records)


@pytest.mark.parametrize("how", BUILDERS)
def test_op_names_follow_asset_keys(how, emulator, tmp_path):
    assets, _ = build(how, emulator, tmp_path)
    assert {a.node_def.name for a in assets} == {"cargo__score_inbound_companies", "cargo__enrich_company"}


@pytest.mark.parametrize("how", BUILDERS)
def test_a_default_launch_of_a_play_is_capped_and_shows_its_guard(how, emulator, tmp_path):
    assets, resources = build(how, emulator, tmp_path)
    play = asset_of(assets, SCORE)
    assert model_size(emulator) > DEFAULT_PLAY_LIMIT  # otherwise the cap proves nothing
    # the launchpad's default config shows the guard
    limit_field = play.node_def.config_schema.config_type.fields["limit"]
    assert limit_field.default_value == DEFAULT_PLAY_LIMIT
    assert "At most 100 records" in play.specs_by_key[SCORE].metadata["dagster-cargo/default_run"].value
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([play], resources=resources, instance=instance)  # "Materialize", default config
    (mat,) = result.asset_materializations_for_node(play.node_def.name)
    assert mat.metadata["dagster-cargo/counts"].value["runs_count"] == DEFAULT_PLAY_LIMIT
    expected = mat.metadata["dagster-cargo/expected_credits_at_default_limit"].value
    assert expected == pytest.approx(mat.metadata["dagster-cargo/credits_used"].value, abs=0.01)  # 100 runs
    assert any("limit: null" in entry.user_message for entry in instance.all_logs(result.run_id))


@pytest.mark.parametrize("how", BUILDERS)
def test_limit_null_lifts_the_guard(how, emulator, tmp_path):
    assets, resources = build(how, emulator, tmp_path)
    play = asset_of(assets, SCORE)
    result = dg.materialize([play], resources=resources,
                            run_config={"ops": {play.node_def.name: {"config": {"limit": None}}}})
    (mat,) = result.asset_materializations_for_node(play.node_def.name)
    assert mat.metadata["dagster-cargo/counts"].value["runs_count"] == model_size(emulator)


@pytest.mark.parametrize("how", BUILDERS)
def test_credit_budget_from_run_config_cancels_the_batch(how, emulator, tmp_path):
    assets, resources = build(how, emulator, tmp_path)
    play = asset_of(assets, SCORE)
    result = dg.materialize([play], resources=resources, raise_on_error=False,
                            run_config={"ops": {play.node_def.name: {"config": {"limit": None, "credit_budget": 1}}}})
    assert not result.success
    text = result.failure_data_for_node(play.node_def.name).error.to_string()
    assert "over this asset's budget of 1" in text
    # as on the Python path: the guard cancelled the batch, so it stopped far short of its full cost
    (batch,) = emulator.batches()
    assert f"dagster-cargo cancelled {batch.uuid}" in text
    emulator.advance(3600)
    (batch,) = emulator.batches()
    assert batch.status == "cancelled"
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        final = c.get_batch(batch.uuid)
    # with no estimate the play runs in ramp rounds: the first (1 record of the model's 300) was cancelled
    assert final.executed_runs_count < final.runs_count == 1 < model_size(emulator)


@pytest.mark.parametrize("how", BUILDERS)
def test_every_run_config_field_reaches_the_batch(how, emulator, tmp_path):
    assets, resources = build(how, emulator, tmp_path)
    tool = asset_of(assets, ENRICH)
    assert tool.node_def.config_schema.config_type.fields["limit"].default_value is None  # tools: no cap
    result = dg.materialize([tool], resources=resources, run_config={"ops": {tool.node_def.name: {"config": {
        "records": [{"domain": "acme.com"}, {"domain": "hooli.com"}], "credit_budget": 1000}}}})
    assert len(result.output_for_node(tool.node_def.name)) == 2
    play = asset_of(assets, SCORE)
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        model = c.find_play("Score inbound companies").model_uuid
        ids = [r["_id"] for r in c.fetch_segment(model, {"conjonction": "and", "groups": []},
                                                  fetching_limit=3).records]
    result = dg.materialize([play], resources=resources,
                            run_config={"ops": {play.node_def.name: {"config": {"record_ids": ids}}}})
    assert sorted(result.output_for_node(play.node_def.name)["_id"]) == sorted(ids)
