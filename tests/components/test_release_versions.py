"""CargoWorkspaceComponent: a redeploy in Cargo changes the asset's code version once the state is refreshed."""

import dagster as dg
import pytest
from cargo_gtm_emulator import CargoEmulator

from ..conftest import TOKEN
from .test_workspace_component import ENRICH, cargo_project, refresh_state


@pytest.fixture(autouse=True)
def cargo_token_env(monkeypatch):
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)


def code_version(sandbox, defs_path) -> str | None:
    with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
        return defs.resolve_asset_graph().get(dg.AssetKey(ENRICH)).code_version


def test_component_code_version_follows_the_deployed_release(emulator: CargoEmulator):
    workflow_uuid = emulator.store.tool_by_name("Enrich company")["workflowUuid"]
    first = emulator.store.release_for(workflow_uuid)["uuid"]
    with cargo_project(emulator, selection={"by_name": ["Enrich company"]}) as (sandbox, defs_path):
        assert code_version(sandbox, defs_path) == f"v1:{first}"
        emulator.redeploy("Enrich company", configs={"enrich_company": {"reveal": "full"}})
        second = emulator.store.release_for(workflow_uuid)["uuid"]
        assert second != first
        assert code_version(sandbox, defs_path) == f"v1:{first}"  # the stored state, until refreshed
        refresh_state(sandbox, defs_path)
        assert code_version(sandbox, defs_path) == f"v2:{second}"


def pools(sandbox, defs_path) -> set:
    with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
        return {a.op.pool for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)}


def test_component_assets_carry_the_cargo_pool_by_default_and_yaml_changes_it(emulator: CargoEmulator):
    with cargo_project(emulator, selection={"by_name": ["Enrich company", "Score inbound companies"]}) as project:
        assert pools(*project) == {"cargo"}
    with cargo_project(emulator, selection={"by_name": ["Enrich company"]}, pool="gtm-cargo") as project:
        assert pools(*project) == {"gtm-cargo"}
    with cargo_project(emulator, selection={"by_name": ["Enrich company"]}, pool=None) as project:
        assert pools(*project) == {None}
