"""Release-aware code versions: a workspace asset's code version is its workflow's deployed release, so a
redeploy in Cargo shows in Dagster (stale status, ``code_version_changed``) once the state is refreshed."""

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleCauseCategory, StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.translator import DagsterCargoTranslator

from ..conftest import make_resource


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator

KEY = dg.AssetKey(["cargo", "enrich_company"])
RUN_CONFIG = {"ops": {"cargo__enrich_company": {"config": {"records": [{"domain": "acme.com"}]}}}}


def resource(emu) -> CargoResource:
    return make_resource(emu)


class OnRedeploy(DagsterCargoTranslator):
    """Re-materialize when the workflow's code version changes."""

    def get_asset_spec(self, props):
        return super().get_asset_spec(props).replace_attributes(
            automation_condition=dg.AutomationCondition.code_version_changed())


def load(emu, state: Path) -> dg.AssetsDefinition:
    (asset,) = build_cargo_assets_definitions(resource(emu), selector=["Enrich company"], state_path=state,
                                              translator=OnRedeploy())
    return asset


def defs(emu, asset: dg.AssetsDefinition) -> dg.Definitions:
    return dg.Definitions(assets=[asset], resources={"cargo": resource(emu)})


def deployed(emu) -> tuple[str, str]:
    workflow_uuid = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    release = emu.store.release_for(workflow_uuid)
    return release["uuid"], release["version"]


def test_a_redeploy_changes_the_code_version_after_a_state_refresh(emulator, tmp_path):
    state = tmp_path / "cargo.json"
    instance = dg.DagsterInstance.ephemeral()
    first = load(emulator, state)
    uuid1, version1 = deployed(emulator)
    assert version1 == "1"
    assert first.code_versions_by_key[KEY] == f"v1:{uuid1}"
    assert first.specs_by_key[KEY].code_version == f"v1:{uuid1}"
    assert dg.materialize([first], instance=instance, resources={"cargo": resource(emulator)},
                          run_config=RUN_CONFIG).success
    assert get_stale_status_resolver(instance, [first]) \
        .get_status(KEY) == StaleStatus.FRESH
    tick1 = dg.evaluate_automation_conditions(defs=defs(emulator, first), instance=instance)
    assert tick1.get_num_requested(KEY) == 0

    emulator.redeploy("Enrich company", configs={"enrich_company": {"reveal": "full"}})
    uuid2, version2 = deployed(emulator)
    assert (version2, uuid2 != uuid1) == ("2", True)
    # the state file is not refreshed behind the user's back: same code version until it is
    assert load(emulator, state).code_versions_by_key[KEY] == f"v1:{uuid1}"
    state.unlink()  # refresh
    second = load(emulator, state)
    assert second.code_versions_by_key[KEY] == f"v2:{uuid2}"

    resolver = get_stale_status_resolver(instance, [second])
    assert resolver.get_status(KEY) == StaleStatus.STALE
    (cause,) = resolver.get_stale_root_causes(KEY)
    assert (cause.category, cause.reason) == (StaleCauseCategory.CODE, "has a new code version")
    tick2 = dg.evaluate_automation_conditions(defs=defs(emulator, second), instance=instance, cursor=tick1.cursor)
    assert tick2.get_num_requested(KEY) == 1
    tick3 = dg.evaluate_automation_conditions(defs=defs(emulator, second), instance=instance, cursor=tick2.cursor)
    assert tick3.get_num_requested(KEY) == 0  # changed once, acted on once


def test_a_translator_code_version_wins(emulator, tmp_path):
    class Pinned(DagsterCargoTranslator):
        def get_asset_spec(self, props):
            return super().get_asset_spec(props).replace_attributes(code_version="pinned")

    (asset,) = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company"], translator=Pinned())
    assert asset.code_versions_by_key[KEY] == "pinned"
