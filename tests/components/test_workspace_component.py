"""CargoWorkspaceComponent: scaffolded and loaded like `dg` does it, run against the emulator over loopback."""

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import tomllib
import yaml
from cargo_gtm import CargoClient
from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.enrichment import enrich_company, score_company
from dagster.components.component_scaffolding import scaffold_object
from dagster.components.core.component_tree import ComponentTree
from dagster.components.core.package_entry import get_package_objects_in_module
from dagster.components.testing import (
    DefsFolderSandbox,
    copy_code_to_file,
    create_defs_folder_sandbox,
)
from dagster.components.testing.test_cases import TestTranslation
from dagster.components.utils.project_paths import get_local_state_path

from dagster_cargo.components import CargoWorkspaceComponent
from dagster_cargo.definitions.workspace_data import CargoWorkspaceData, fetch_workspace_data

from ..conftest import TOKEN, manual_clock, on_manual_clock

TYPE = "dagster_cargo.CargoWorkspaceComponent"  # what users write in defs.yaml / pass to `dg scaffold defs`
ROOT = Path(__file__).resolve().parents[2]
SCORE, ENRICH = ["cargo", "score_inbound_companies"], ["cargo", "enrich_company"]
CATALOG = {f"/v1/orchestration/{what}/list" for what in ("plays", "tools", "workflows")}
ALL_WORKFLOWS = {"Score inbound companies", "Find decision makers", "Qualify inbound companies",
                 "Classify inbound companies", "Enrich company", "Find work email", "Normalize domain"}


def api_calls(emu: CargoEmulator) -> list[str]:
    return [r["path"] for r in emu.request_log if r["path"].startswith("/v1/")]


def workspace(emu: CargoEmulator, **extra) -> dict:
    return {"api_token": "{{ env.CARGO_API_TOKEN }}", "base_url": emu.base_url,
            "poll_interval": 0.05, "max_poll_interval": 0.5, **extra}


@pytest.fixture(autouse=True)
def cargo_token_env(monkeypatch):
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)


def refresh_state(sandbox: DefsFolderSandbox, defs_path: Path) -> None:
    """What `dg utils refresh-defs-state` does for one component."""
    with sandbox.build_component_tree() as tree:
        component = tree.load_component(defs_path)
        asyncio.run(component.refresh_state(sandbox.project_root))


@contextmanager
def cargo_project(emu: CargoEmulator, refresh: bool = True, **attributes) -> Iterator[tuple[DefsFolderSandbox, Path]]:
    """A dg project whose defs/my_cargo/defs.yaml configures the component with ``attributes``."""
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.defs_folder_path / "my_cargo"
        defs_path.mkdir()
        body = {"type": TYPE, "attributes": {"workspace": workspace(emu), **attributes}}
        (defs_path / "defs.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
        if refresh:
            refresh_state(sandbox, defs_path)
        yield sandbox, defs_path


@contextmanager
def cargo_defs(emu: CargoEmulator, refresh: bool = True, **attributes) -> Iterator[dg.Definitions]:
    """The definitions of :func:`cargo_project`, loaded once."""
    with cargo_project(emu, refresh, **attributes) as (sandbox, defs_path), \
            sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
        on_manual_clock(defs.resources, emu)
        yield defs


def op_name(defs: dg.Definitions, key: list[str]) -> str:
    return defs.resolve_assets_def(dg.AssetKey(key)).node_def.name


# -- scaffolding and registration ---------------------------------------------------------------
def test_scaffold_writes_a_loadable_defs_yaml_with_an_env_token(emulator):
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.defs_folder_path / "my_cargo"
        scaffold_object(defs_path, TYPE, json.dumps({"base_url": emulator.base_url}), "yaml", sandbox.project_root)
        written = yaml.safe_load((defs_path / "defs.yaml").read_text())
        assert written == {"type": TYPE, "attributes": {"workspace": {
            "api_token": "{{ env.CARGO_API_TOKEN }}", "base_url": emulator.base_url}}}
        assert TOKEN not in (defs_path / "defs.yaml").read_text()

        refresh_state(sandbox, defs_path)
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert isinstance(component, CargoWorkspaceComponent)
            # the token stays an env var reference: the UI shows its name, never its value
            assert isinstance(component.workspace.api_token, dg.EnvVar)
            assert component.workspace.api_token.env_var_name == "CARGO_API_TOKEN"
            names = {a.metadata_by_key[a.key]["dagster-cargo/workflow_name"] for a in defs.assets}
            assert names == ALL_WORKFLOWS
            assert isinstance(defs.resources["cargo"], dg.ConfigurableResource)


def test_scaffold_params_name_the_env_vars():
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.defs_folder_path / "eu"
        params = {"api_token_env_var": "CARGO_EU_TOKEN", "workspace_uuid_env_var": "CARGO_EU_WORKSPACE",
                  "base_url_env_var": "CARGO_EU_URL"}
        scaffold_object(defs_path, TYPE, json.dumps(params), "yaml", sandbox.project_root)
        assert yaml.safe_load((defs_path / "defs.yaml").read_text())["attributes"] == {"workspace": {
            "api_token": "{{ env.CARGO_EU_TOKEN }}", "workspace_uuid": "{{ env.CARGO_EU_WORKSPACE }}",
            "base_url": "{{ env.CARGO_EU_URL }}"}}


def test_registry_entry_point_exposes_the_component():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module_name = pyproject["project"]["entry-points"]["dagster_dg_cli.registry_modules"]["dagster_cargo"]
    module = __import__(module_name, fromlist=["_"])
    assert dict(get_package_objects_in_module(module)) == {"CargoWorkspaceComponent": CargoWorkspaceComponent}
    import dagster_cargo
    assert dagster_cargo.CargoWorkspaceComponent is CargoWorkspaceComponent


# -- loading -------------------------------------------------------------------------------------
def test_selection_and_translation_shape_one_asset_per_selected_workflow(emulator):
    translation = {
        "key": "gtm/{{ props.type }}/{{ spec.key.path[-1] }}",
        "group_name": "gtm_{{ props.type }}s",
        "description": "{{ props.name }} (Cargo)",
        "owners": ["team:gtm"],
        "tags": {"cargo_workflow": "{{ props.workflow_uuid }}"},
        "kinds": ["cargo", "hubspot"],
    }
    with cargo_defs(emulator, selection={"by_name": ["Score inbound companies", "Enrich company"]},
                    translation=translation) as defs:
        specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert sorted(specs) == ["gtm/play/score_inbound_companies", "gtm/tool/enrich_company"]
    play, tool = specs["gtm/play/score_inbound_companies"], specs["gtm/tool/enrich_company"]
    assert (play.group_name, tool.group_name) == ("gtm_plays", "gtm_tools")
    assert play.description == "Score inbound companies (Cargo)"
    assert play.owners == ["team:gtm"] and play.kinds == {"cargo", "hubspot"}
    workflow_uuid = emulator.store.play_by_name("Score inbound companies")["workflowUuid"]
    assert play.tags["cargo_workflow"] == workflow_uuid
    # translation merges: the integration's own metadata and tags survive
    assert play.metadata["dagster-cargo/workflow_uuid"] == workflow_uuid
    assert tool.tags["dagster-cargo/workflow_type"] == "tool"


def test_selection_by_uuid_and_by_template_predicate(emulator, tmp_path):
    state = tmp_path / "state"
    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        fetch_workspace_data(client).write(state)
        tool = client.find_tool("Find work email")
        play = client.find_play("Find decision makers")
    context = ComponentTree.for_test().load_context

    by_uuid = CargoWorkspaceComponent.resolve_from_dict({
        "workspace": workspace(emulator), "selection": {"by_uuid": [tool.uuid, play.workflow_uuid]}})
    keys = sorted(k.to_user_string() for k in by_uuid.build_defs_from_state(context, state).resolve_all_asset_keys())
    assert keys == ["cargo/find_decision_makers", "cargo/find_work_email"]

    only_plays = CargoWorkspaceComponent.resolve_from_yaml(
        yaml.safe_dump({"workspace": workspace(emulator), "selection": "{{ only_plays }}"}),
        scope={"only_plays": lambda props: props.type == "play"})
    keys = sorted(k.to_user_string() for k in only_plays.build_defs_from_state(context, state).resolve_all_asset_keys())
    assert keys == ["cargo/classify_inbound_companies", "cargo/find_decision_makers",
                    "cargo/qualify_inbound_companies", "cargo/score_inbound_companies"]


def test_state_is_fetched_once_then_loads_make_no_api_call(emulator):
    with cargo_project(emulator) as (sandbox, defs_path):
        assert sorted(api_calls(emulator)) == sorted(CATALOG)
        emulator.request_log.clear()
        for _ in range(2):  # code server, then a run worker: both read the stored snapshot
            with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
                assert len(list(defs.resolve_all_asset_keys())) == len(ALL_WORKFLOWS) == 7
        with sandbox.build_component_tree():
            path = get_local_state_path(component.defs_state_config.key, sandbox.project_root)
            data = CargoWorkspaceData.read(path)  # the state is the plain workspace snapshot
        assert {w.name for w in data.workflows} == ALL_WORKFLOWS
        assert data.base_url == emulator.base_url
        assert api_calls(emulator) == []


def test_no_state_yet_loads_no_asset_and_says_how_to_fetch_it(emulator, caplog):
    with caplog.at_level(logging.WARNING, logger="dagster_cargo"), cargo_defs(emulator, refresh=False) as defs:
        assert list(defs.resolve_all_asset_keys()) == []
        assert "cargo" in defs.resources
    assert "dg utils refresh-defs-state" in caplog.text
    assert api_calls(emulator) == []


def test_unknown_names_in_options_are_reported(emulator, caplog):
    with caplog.at_level(logging.WARNING, logger="dagster_cargo"), cargo_defs(
            emulator, selection={"by_name": ["Enrich company", "Enrich compnay"]},
            tool_inputs={"Find work email": "contacts"}) as defs:
        assert [k.to_user_string() for k in defs.resolve_all_asset_keys()] == ["cargo/enrich_company"]
    assert "'Enrich compnay'" in caplog.text and "'Find work email' is not a selected tool" in caplog.text


@pytest.mark.parametrize("written, expected", [
    ("{{ env.CARGO_API_TOKEN }}", dg.EnvVar("CARGO_API_TOKEN")),
    ("{{ env('CARGO_API_TOKEN') }}", dg.EnvVar("CARGO_API_TOKEN")),
    ("literal-token", "literal-token"),
    ("x{{ env.CARGO_API_TOKEN }}", f"x{TOKEN}"),  # not a bare env reference: rendered as a template
])
def test_api_token_templating(written, expected):
    token = CargoWorkspaceComponent.resolve_from_dict({"workspace": {"api_token": written}}).workspace.api_token
    assert isinstance(token, dg.EnvVar) == isinstance(expected, dg.EnvVar)
    assert (token.env_var_name if isinstance(token, dg.EnvVar) else token) == (
        expected.env_var_name if isinstance(expected, dg.EnvVar) else expected)


def test_workspace_block_takes_any_resource_field():
    component = CargoWorkspaceComponent.resolve_from_dict({"workspace": {
        "api_token": "t", "workspace_uuid": "ws-1", "poll_timeout": 60, "cancel_on_termination": False}})
    assert component.workspace.workspace_uuid == "ws-1" and component.workspace.poll_timeout == 60.0
    assert component.workspace.cancel_on_termination is False
    assert component.workspace.max_retries == 4  # unset fields keep the resource's defaults
    with pytest.raises(Exception, match="poll_timout"):
        CargoWorkspaceComponent.resolve_from_dict({"workspace": {"api_token": "t", "poll_timout": 60}})


# -- materializing ---------------------------------------------------------------------------------
def _signups_module() -> None:
    import dagster as dg
    import pandas as pd

    @dg.asset(key=["raw", "signups"])
    def signups() -> pd.DataFrame:
        return pd.DataFrame({"domain": ["acme.com", "hooli.com", "initech.io"], "company_name": ["A", "H", "I"]})


def test_tool_asset_runs_over_its_upstream_dataframe_with_credits_and_checks(emulator):
    with cargo_project(emulator, selection={"by_name": ["Enrich company"]},
                       tool_inputs={"Enrich company": "raw/signups"},
                       checks={"failed_ratio_warn": 0.1, "failed_ratio_error": 0.5, "max_credits_per_record": 5},
                       ) as (sandbox, _):
        copy_code_to_file(_signups_module, sandbox.defs_folder_path / "signups.py")
        with sandbox.build_all_defs() as defs:
            on_manual_clock(defs.resources, emulator)
            enrich = defs.resolve_assets_def(dg.AssetKey(ENRICH))
            assert enrich.keys_by_input_name["upstream_records"] == dg.AssetKey(["raw", "signups"])
            result = dg.materialize([defs.resolve_assets_def(dg.AssetKey(["raw", "signups"])), enrich])
    assert result.success
    frame = result.output_for_node("cargo__enrich_company")
    assert sorted(frame["domain"]) == ["acme.com", "hooli.com", "initech.io"]
    assert all(row["industry"] == enrich_company(row["domain"])["industry"] for _, row in frame.iterrows())

    (materialization,) = result.asset_materializations_for_node("cargo__enrich_company")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == 3
    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        batch = client.get_batch(metadata["dagster-cargo/batch_uuid"].value)
    assert batch.credits_used_count > 0
    # the bill: provider credits + 0.01 per node execution (3 records x 3 nodes)
    billed = float(batch.credits_used_count) + 0.09
    assert metadata["dagster-cargo/credits_used"].value == pytest.approx(billed)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"cargo_failed_run_ratio", "cargo_output_completeness", "cargo_skipped_run_ratio",
                           "cargo_credits_per_record"}
    assert all(c.passed for c in checks.values())
    assert checks["cargo_credits_per_record"].metadata["credits_per_record"].value == pytest.approx(billed / 3)


def test_play_asset_takes_run_config_and_makes_no_catalog_call(emulator):
    with cargo_project(emulator, selection={"by_name": ["Score inbound companies"]}) as (sandbox, defs_path):
        emulator.request_log.clear()
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            on_manual_clock(defs.resources, emulator)
            name = op_name(defs, SCORE)
            result = dg.materialize([defs.resolve_assets_def(dg.AssetKey(SCORE))],
                                    run_config={"ops": {name: {"config": {"limit": 4}}}})
    frame = result.output_for_node(name)
    assert len(frame) == 4
    assert all(row["score"] == score_company(row["domain"])["score"] for _, row in frame.iterrows())
    assert CATALOG.isdisjoint(api_calls(emulator))  # the snapshot had everything
    assert "/v1/orchestration/batches" in api_calls(emulator)


def test_execute_and_get_asset_spec_are_overridable(emulator, tmp_path):
    calls = []

    class Custom(CargoWorkspaceComponent):
        def get_asset_spec(self, props):
            return super().get_asset_spec(props).replace_attributes(key=["custom", props.type])

        def execute(self, context, cargo, props, config, records=None):
            calls.append((props.name, config.limit))
            return super().execute(context, cargo, props, config, records)

    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        fetch_workspace_data(client).write(tmp_path / "state")
    component = Custom.resolve_from_dict({
        "workspace": workspace(emulator), "selection": {"by_name": ["Score inbound companies"]},
        "translation": {"group_name": "custom"}})
    defs = component.build_defs_from_state(ComponentTree.for_test().load_context, tmp_path / "state")
    (asset,) = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    assert asset.key == dg.AssetKey(["custom", "play"])
    assert asset.specs_by_key[asset.key].group_name == "custom"  # translation applies on top of the override
    result = dg.materialize([asset], resources=on_manual_clock(defs.resources, emulator),
                            run_config={"ops": {asset.node_def.name: {"config": {"limit": 2}}}})
    assert calls == [("Score inbound companies", 2)]
    assert len(result.output_for_node(asset.node_def.name)) == 2


def test_resource_key_lets_two_workspaces_live_side_by_side(snapshot_path):
    context = ComponentTree.for_test().load_context
    defs = [CargoWorkspaceComponent.resolve_from_dict({
        "workspace": {"api_token": "t", "workspace_uuid": ws}, "resource_key": key,
        "translation": {"key_prefix": key}, "observation_sensor": True,
    }).build_defs_from_state(context, snapshot_path) for key, ws in (("cargo", "ws-us"), ("cargo_eu", "ws-eu"))]
    merged = dg.Definitions.merge(*defs)
    assert {k: r.workspace_uuid for k, r in merged.resources.items()} == {"cargo": "ws-us", "cargo_eu": "ws-eu"}
    eu = merged.resolve_assets_def(dg.AssetKey(["cargo_eu", *ENRICH]))
    assert "cargo_eu" in eu.required_resource_keys and "cargo" not in eu.required_resource_keys
    assert eu.node_def.name == "cargo_eu__cargo__enrich_company"  # op names stay unique across workspaces
    merged.resolve_implicit_global_asset_job_def()
    assert {s.name for s in merged.sensors} == {"cargo_observation_sensor", "cargo_eu_observation_sensor"}


def test_daily_partitions_from_translation_filter_on_the_date_column(emulator):
    with CargoClient(TOKEN, base_url=emulator.base_url) as client:
        play = client.find_play("Score inbound companies")
        records = client.fetch_segment(play.model_uuid, {"conjonction": "and", "groups": []},
                                       fetching_limit=1000).records
    day = max({str(r["created_at"])[:10] for r in records},
              key=lambda d: sum(str(r["created_at"]).startswith(d) for r in records))
    in_day = {r["_id"] for r in records if str(r["created_at"]).startswith(day)}
    with cargo_defs(emulator, selection={"by_name": ["Score inbound companies"]},
                    translation={"partitions_def": {"type": "daily", "start_date": "2020-01-01"}},
                    partition_date_columns={"Score inbound companies": "created_at"}) as defs:
        asset = defs.resolve_assets_def(dg.AssetKey(SCORE))
        result = dg.materialize([asset], partition_key=day)
    frame = result.output_for_node(asset.node_def.name)
    assert set(frame["_id"]) == in_day and len(in_day) > 0


# -- Dagster's translation test matrix -------------------------------------------------------------
@pytest.fixture(scope="module")
def snapshot_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cargo") / "state"
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0) as emu, \
            CargoClient(TOKEN, base_url=emu.base_url) as client:
        fetch_workspace_data(client).write(path)
    return path


class TestCargoTranslation(TestTranslation):
    def test_translation(self, snapshot_path, attributes, assertion, key_modifier) -> None:
        component = CargoWorkspaceComponent.resolve_from_dict({
            "workspace": {"api_token": "unused"}, "selection": {"by_name": ["Enrich company"]},
            "translation": attributes})
        defs = component.build_defs_from_state(ComponentTree.for_test().load_context, snapshot_path)
        expected_key = dg.AssetKey(ENRICH)
        if key_modifier:
            expected_key = key_modifier(expected_key)
        spec = next(iter(defs.resolve_all_asset_specs()))
        assert spec.key == expected_key
        assert assertion(spec)


# -- sensors -----------------------------------------------------------------------------------------
def new_company(i: int) -> dict:
    return {"_id": f"cmp_component_{i}", "_title": f"C {i}", "domain": f"c{i}.example", "name": f"C {i}",
            "industry": "Software", "employee_count": 5000 + i, "country": "US", "founded_year": 2021,
            "created_at": "2025-03-01T00:00:00.000Z"}


def test_sensors_are_built_from_yaml_and_drive_the_component_assets(emulator):
    sensors_yaml = {
        "change_sensors": [{"segment": "ICP companies", "play": "Score inbound companies",
                            "default_status": "running", "minimum_interval_seconds": 300}],
        "observation_sensor": True,
    }
    with cargo_defs(emulator, selection={"by_name": ["Score inbound companies", "Enrich company"]},
                    translation={"key_prefix": "gtm"}, **sensors_yaml) as defs:
        sensors = {s.name: s for s in defs.sensors}
        play = defs.resolve_assets_def(dg.AssetKey(["gtm", *SCORE]))
        cargo = defs.resources["cargo"]
        assert set(sensors) == {"cargo_score_inbound_companies_on_icp_companies", "cargo_observation_sensor"}
        change = sensors["cargo_score_inbound_companies_on_icp_companies"]
        assert change.default_status == dg.DefaultSensorStatus.RUNNING
        assert change.minimum_interval_seconds == 300
        assert sensors["cargo_observation_sensor"].default_status == dg.DefaultSensorStatus.STOPPED

        def tick(sensor, cursor=None, instance=None):
            with dg.build_sensor_context(cursor=cursor, resources={"cargo": cargo}, instance=instance) as ctx:
                return sensor(ctx)

        # a change of the segment → one run of the component's play asset over exactly its records
        cursor = tick(change).cursor
        emulator.store.upsert_records("companies", [new_company(1), new_company(2)])
        (request,) = tick(change, cursor).run_requests
        assert request.asset_selection == [play.key]
        result = dg.materialize([play], run_config=request.run_config)
        assert sorted(result.output_for_node(play.node_def.name)["_id"]) == ["cmp_component_1", "cmp_component_2"]

        # a batch Cargo ran on its own → a materialization of the (translated) component asset
        with dg.DagsterInstance.ephemeral() as instance:
            first = tick(sensors["cargo_observation_sensor"], instance=instance)
            scheduled = emulator.run_play_schedule("Score inbound companies")
            with CargoClient(TOKEN, base_url=emulator.base_url, clock=manual_clock(emulator)) as client:
                client.wait_for_batch(scheduled, timeout=60, poll_interval=0.05, max_poll_interval=0.2)
            observed = tick(sensors["cargo_observation_sensor"], first.cursor, instance)
        (event,) = observed.asset_events
        assert event.asset_key == play.key
        assert event.metadata["dagster-cargo/batch_uuid"].value == scheduled


def test_change_sensor_on_an_unselected_play_is_skipped_with_a_warning(emulator, caplog):
    with caplog.at_level(logging.WARNING, logger="dagster_cargo"), cargo_defs(
            emulator, selection={"by_name": ["Enrich company"]},
            change_sensors=[{"segment": "ICP companies", "play": "Score inbound companies"}]) as defs:
        assert list(defs.sensors) == []
    assert "'Score inbound companies' is not a selected play" in caplog.text


def test_the_documented_defs_yaml_loads(emulator):
    """The defs.yaml of docs/dagster/workspace-and-components.md, as written."""
    page = (ROOT / "docs" / "dagster" / "workspace-and-components.md").read_text()
    body = yaml.safe_load(page.split("```yaml", 1)[1].split("```", 1)[0])
    assert body["type"] == TYPE
    attributes = body["attributes"]
    attributes["workspace"]["base_url"] = emulator.base_url  # the one line a real workspace does not need
    with cargo_defs(emulator, **attributes) as defs:
        assert sorted(k.to_user_string() for k in defs.resolve_all_asset_keys()) == [
            "gtm/play/score_inbound_companies", "gtm/tool/enrich_company"]
        assert {s.name for s in defs.sensors} == {"cargo_observation_sensor"}
        assert len(list(defs.resolve_asset_graph().asset_check_keys)) == 8  # 4 checks x 2 assets
