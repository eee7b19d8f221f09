"""Workspace as asset specs: state-backed loading, offline snapshots, translator, selection."""



import dagster as dg
from cargo_gtm import CargoClient
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
from dagster._core.definitions.repository_definition.repository_definition import RepositoryLoadData

from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_specs import load_cargo_asset_specs, load_cargo_workspace_data
from dagster_cargo.definitions.translator import DagsterCargoTranslator
from dagster_cargo.definitions.workspace_data import CargoWorkspaceData, fetch_workspace_data

from ..conftest import TOKEN, manual_clock

API_CALLS = lambda emu: [r for r in emu.request_log if r["path"].startswith("/v1/")]  # noqa: E731


def resource(emu) -> CargoResource:
    return CargoResource(api_token=TOKEN, base_url=emu.base_url)


def test_workspace_snapshot_has_plays_tools_and_output_slugs(emulator):
    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        data = fetch_workspace_data(client)
        assert client.request_count == 3
        play = client.find_play("Score inbound companies")
    by_name = {w.name: w for w in data.workflows}
    assert set(by_name) == {"Score inbound companies", "Find decision makers", "Qualify inbound companies",
                            "Classify inbound companies", "Enrich company", "Find work email", "Normalize domain"}
    # the agent play: a slug repeated across node kinds, and an agent whose fallback child is the next node
    classify = by_name["Classify inbound companies"]
    assert classify.node_slugs == ["start", "classify", "classify", "end"] and classify.output_node_slug == "end"
    scoring = by_name["Score inbound companies"]
    assert scoring.type == "play" and scoring.model_uuid == play.model_uuid
    assert scoring.output_node_slug == scoring.node_slugs[-1]
    assert by_name["Enrich company"].form_field_slugs == ["domain", "company_name"]
    assert CargoWorkspaceData.from_json(data.to_json()) == data


def test_specs_use_translator_and_selection(emulator):
    specs = load_cargo_asset_specs(resource(emulator), selector=["Enrich company", "Score inbound companies"])
    keys = sorted(s.key.to_user_string() for s in specs)
    assert keys == ["cargo/enrich_company", "cargo/score_inbound_companies"]
    spec = next(s for s in specs if s.key.path[-1] == "enrich_company")
    assert spec.kinds == {"cargo", "pandas"} and spec.group_name == "cargo"
    assert spec.metadata["dagster-cargo/workflow_type"] == "tool"

    class Custom(DagsterCargoTranslator):
        def get_asset_spec(self, props):
            return super().get_asset_spec(props).replace_attributes(
                key=["gtm", props.type, props.name.lower().replace(" ", "-")], owners=["team:gtm"])

    custom = load_cargo_asset_specs(resource(emulator), translator=Custom(), selector=lambda p: p.type == "play")
    assert sorted(s.key.to_user_string() for s in custom) == [
        "gtm/play/classify-inbound-companies", "gtm/play/find-decision-makers", "gtm/play/qualify-inbound-companies",
        "gtm/play/score-inbound-companies"]
    assert all(s.owners == ["team:gtm"] for s in custom)


def test_run_worker_reconstruction_makes_no_api_calls(emulator):
    res = resource(emulator)
    init = DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)
    with DefinitionsLoadContext.scoped(init):
        first = load_cargo_asset_specs(res)
        pending = dict(init.get_pending_reconstruction_metadata())
    assert len(API_CALLS(emulator)) == 3
    emulator.request_log.clear()

    worker = DefinitionsLoadContext(
        load_type=DefinitionsLoadType.RECONSTRUCTION,
        repository_load_data=RepositoryLoadData(cacheable_asset_data={}, reconstruction_metadata=pending),
    )
    with DefinitionsLoadContext.scoped(worker):
        again = load_cargo_asset_specs(res)
    assert [s.key for s in again] == [s.key for s in first]
    assert API_CALLS(emulator) == []


def test_offline_snapshot_replaces_the_api(emulator, tmp_path):
    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        fetch_workspace_data(client).write(tmp_path / "cargo.json")
    emulator.request_log.clear()
    unreachable = CargoResource(api_token=TOKEN, base_url="http://127.0.0.1:9")
    specs = load_cargo_asset_specs(unreachable, snapshot_path=tmp_path / "cargo.json")
    assert len(specs) == 7 and API_CALLS(emulator) == []  # 4 plays + 3 tools
    data = load_cargo_workspace_data(unreachable, snapshot_path=tmp_path / "cargo.json")
    assert data.get("Enrich company").type == "tool"


def test_one_unreadable_workflow_is_skipped_with_a_warning(emulator, caplog):
    play = emulator.store.play_by_name("Find decision makers")
    play["workflowUuid"] = None  # corrupt one play as a broken server record would be
    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        data = fetch_workspace_data(client)
    assert "Find decision makers" not in {w.name for w in data.workflows}
    assert len(data.workflows) == 6  # the 7 seeded, less the broken one
    assert any("Find decision makers" in m for m in data.skipped)
    assert any("Skipping unreadable Cargo play" in r.message for r in caplog.records)


def test_snapshot_cli_writes_a_loadable_file(emulator, tmp_path, monkeypatch, capsys):
    from dagster_cargo.cli import main

    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
    out = tmp_path / "cargo_workspace.json"
    assert main(["snapshot", "-o", str(out), "--base-url", emulator.base_url]) == 0
    assert "4 plays, 3 tools" in capsys.readouterr().out
    specs = load_cargo_asset_specs(CargoResource(api_token="unused", base_url="http://127.0.0.1:9"),
                                   snapshot_path=out)
    assert {s.key.path[-1] for s in specs} == {"score_inbound_companies", "find_decision_makers",
                                               "qualify_inbound_companies", "classify_inbound_companies",
                                               "enrich_company", "find_work_email", "normalize_domain"}
    monkeypatch.setenv("CARGO_API_TOKEN", "wrong")
    assert main(["snapshot", "-o", str(out), "--base-url", emulator.base_url]) == 1
    assert "wrong" not in capsys.readouterr().err


def test_envvar_token_works_for_listing_and_runs(emulator, monkeypatch):
    monkeypatch.setenv("CARGO_TEST_TOKEN", TOKEN)
    cargo = CargoResource(api_token=dg.EnvVar("CARGO_TEST_TOKEN"), base_url=emulator.base_url,
                          poll_interval=0.05, max_poll_interval=0.5).with_clock(manual_clock(emulator))
    from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions

    assert len(load_cargo_asset_specs(cargo)) == 7
    (tool_asset,) = build_cargo_assets_definitions(cargo, selector=["Enrich company"])
    result = dg.materialize([tool_asset], resources={"cargo": cargo}, run_config={"ops": {
        tool_asset.node_def.name: {"config": {"records": [{"domain": "acme.com"}]}}}})
    assert len(result.output_for_node(tool_asset.node_def.name)) == 1
    assert all(TOKEN not in str(event) for event in result.all_events)


def test_loading_specs_prints_no_preview_warning(emulator):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", dg.PreviewWarning)
        assert load_cargo_asset_specs(resource(emulator), selector=["Enrich company"])
