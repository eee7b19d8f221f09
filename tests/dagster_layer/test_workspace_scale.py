"""Workspace loading at scale: API calls per load are constant in the number of plays and tools.

Counts, never timings: 300 extra workflows take 3 calls on the first load and 0 when the
definitions are rebuilt from the stored state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from cargo_gtm_emulator import CargoEmulator
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
from dagster._core.definitions.repository_definition.repository_definition import RepositoryLoadData

from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.asset_specs import load_cargo_asset_specs

from ..conftest import TOKEN, manual_clock

EXTRA = 300
CATALOG = ["/v1/orchestration/plays/list", "/v1/orchestration/tools/list", "/v1/orchestration/workflows/list"]


def api_paths(emu: CargoEmulator) -> list[str]:
    return [r["path"] for r in emu.request_log if r["path"].startswith("/v1/")]


@pytest.fixture(scope="module")
def big_emulator() -> Iterator[CargoEmulator]:
    """The 7 seeded workflows (4 plays, 3 tools) and 300 synthetic ones (150 plays, 150 tools)."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=3, run_failure_rate=0.0, credits=1_000_000,
                       extra_workflows=EXTRA) as emu:
        yield emu


def initialization() -> DefinitionsLoadContext:
    return DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)


def reconstruction(stored: dict[str, Any]) -> DefinitionsLoadContext:
    return DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION, repository_load_data=RepositoryLoadData(
        cacheable_asset_data={}, reconstruction_metadata=stored))


def test_synthetic_workflows_are_deterministic_and_complete(big_emulator):
    store = big_emulator.store
    assert (len(store.plays), len(store.tools)) == (154, 153)
    names = {p["name"] for p in store.plays.values()} | {t["name"] for t in store.tools.values()}
    assert len(names) == 307 and "Score inbound companies #0001" in names and "Find work email #0150" in names
    for wf_uuid in store.workflows:
        release = store.release_for(wf_uuid)
        assert release["status"] == "deployed" and [n["slug"] for n in release["nodes"]][-1] in ("output", "end")
    again = CargoEmulator(token=TOKEN, seed=3, extra_workflows=EXTRA, clock="manual")
    assert set(again.store.workflows) == set(store.workflows)
    assert set(again.store.plays) == set(store.plays)


def test_default_workspace_is_unchanged_by_the_option():
    plain, extended = CargoEmulator(seed=5, clock="manual"), CargoEmulator(seed=5, clock="manual", extra_workflows=6)
    assert set(plain.store.workflows) <= set(extended.store.workflows)
    assert {u: p["segmentUuid"] for u, p in plain.store.plays.items()} == {
        u: extended.store.plays[u]["segmentUuid"] for u in plain.store.plays}
    assert len(extended.store.plays) == 7 and len(extended.store.tools) == 6  # 4 + 3 seeded, 3 extra of each


def test_first_load_makes_three_calls_and_reload_none(big_emulator):
    res = CargoResource(api_token=TOKEN, base_url=big_emulator.base_url)
    big_emulator.request_log.clear()
    init = initialization()
    with DefinitionsLoadContext.scoped(init):
        first = build_cargo_assets_definitions(res)
        dg.Definitions(assets=first, resources={"cargo": res}).get_repository_def()
        stored = dict(init.get_pending_reconstruction_metadata())
    assert len(first) == EXTRA + 7
    assert sorted(api_paths(big_emulator)) == sorted(CATALOG)

    big_emulator.request_log.clear()
    with DefinitionsLoadContext.scoped(reconstruction(stored)):
        again = build_cargo_assets_definitions(res)
        dg.Definitions(assets=again, resources={"cargo": res}).get_repository_def()
    assert api_paths(big_emulator) == []
    assert [a.key for a in again] == [a.key for a in first]


def test_loaders_of_one_code_location_share_one_fetch(big_emulator):
    res = CargoResource(api_token=TOKEN, base_url=big_emulator.base_url)
    big_emulator.request_log.clear()
    with DefinitionsLoadContext.scoped(initialization()):
        plays = build_cargo_assets_definitions(res, selector=lambda p: p.type == "play")
        tools = build_cargo_assets_definitions(res, selector=lambda p: p.type == "tool")
        specs = load_cargo_asset_specs(res)
    assert (len(plays), len(tools), len(specs)) == (154, 153, 307)
    assert sorted(api_paths(big_emulator)) == sorted(CATALOG)

    big_emulator.request_log.clear()
    with DefinitionsLoadContext.scoped(initialization()):  # a new code-location load fetches again
        load_cargo_asset_specs(res)
    assert len(api_paths(big_emulator)) == 3


def test_synthetic_tool_runs_like_a_seeded_one(big_emulator):
    from cargo_gtm import CargoClient

    with CargoClient(TOKEN, base_url=big_emulator.base_url, clock=manual_clock(big_emulator)) as client:
        tool = client.find_tool("Enrich company #0007")
        batch = client.create_batch(tool.workflow_uuid, {"kind": "records", "records": [{"domain": "acme.com"}]})
        batch = client.wait_for_batch(batch.uuid, timeout=60, poll_interval=0.02, max_poll_interval=0.2)
        frame = client.download_batch_dataframe(batch.uuid)
    assert batch.status.value == "success" and frame["domain"].tolist() == ["acme.com"]
