"""B5 definitions at scale: a workspace of 1,000 plays and tools, loaded as Dagster definitions.

Ours: ``build_cargo_assets_definitions`` (one executable asset per play/tool) inside a code-location
load, then ``Definitions(...).get_repository_def()`` (what a code server resolves).

* **First load** (``INITIALIZATION``): the workspace is listed with 3 API calls (plays, tools and
  workflows lists; each workflow carries its deployed release, so output node slugs need no
  per-workflow call) and stored as reconstruction metadata.
* **Reload from stored state** (``RECONSTRUCTION``, what every run worker and step process does):
  the same definitions from the stored snapshot, 0 API calls.

Baseline, measured in the same run: the best a competent user writes without the package's loader, a
**cached loader** (implemented here, not in the package): list plays and tools, then one
``GET /orchestration/releases/deployed`` per workflow for its output node slug (N + 2 calls), and store the
result in a local file; every later load (a run worker, a code-server restart) reads that file (0 calls).
It feeds the same asset builder, so the difference is the fetch alone. Every wall time is the median of the
runs with its [min–max] spread.

The emulator runs in its own process (:class:`benchmarks.b6_emulator.EmulatorProcess`), like a
remote service; API calls are counted from its request log. Loopback round trips are ~0.2 ms: over
a real network each call costs a round trip more, which the note converts for a 50 ms RTT.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from typing import Any
from unittest import mock

from ._report import Row, fmt, median, spread
from ._token import env_token
from .b6_emulator import TOKEN, EmulatorProcess

SEEDED = 7  # the emulator's own 4 plays (the agent play included) + 3 tools
RTT = 0.050  # seconds, for the "over a real network" estimate in the notes


def naive_fetch(client: Any) -> Any:
    """The naive workspace listing: plays, tools, then one deployed-release call per workflow."""
    from dagster_cargo.definitions.workspace_data import CargoWorkflowProps, CargoWorkspaceData

    props = []
    for item in [*client.list_plays(), *client.list_tools()]:
        release = client.get_deployed_release(item.workflow_uuid)
        node = release.output_node()
        common: dict[str, Any] = {
            "uuid": item.uuid, "name": item.name, "workflow_uuid": item.workflow_uuid,
            "description": item.description, "folder_uuid": item.folder_uuid,
            "output_node_slug": node.slug if node else None, "node_slugs": [n.slug for n in release.nodes],
            "release_uuid": release.uuid, "release_version": release.version,
        }
        if hasattr(item, "segment_uuid"):
            props.append(CargoWorkflowProps(
                type="play", model_uuid=item.model_uuid, segment_uuid=item.segment_uuid,
                schedule_type=item.schedule.type if item.schedule else None, is_enabled=item.is_enabled, **common))
        else:
            props.append(CargoWorkflowProps(
                type="tool", form_field_slugs=[f.slug for f in release.form_fields or []],
                required_form_field_slugs=[f.slug for f in release.form_fields or [] if f.is_required], **common))
    return CargoWorkspaceData(base_url=client.base_url, workspace_uuid=client.workspace_uuid,
                              fetched_at=datetime.now(timezone.utc), workflows=props)


def load_definitions(resource: Any, context: Any, fetch: Callable[[Any], Any] | None = None) -> int:
    """Build the workspace's assets and resolve the repository inside ``context``; the asset count.

    ``fetch`` replaces the package's workspace fetch (the naive baseline).
    """
    import dagster as dg
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext

    from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions

    patch: AbstractContextManager[Any] = (
        mock.patch("dagster_cargo.definitions.asset_specs.fetch_workspace_data", fetch) if fetch else nullcontext())
    with DefinitionsLoadContext.scoped(context), patch:
        assets = build_cargo_assets_definitions(resource)
        dg.Definitions(assets=assets, resources={"cargo": resource}).get_repository_def()
    return len(assets)


def _initialization() -> Any:
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType

    return DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)


def _reconstruction(stored: dict[str, Any]) -> Any:
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
    from dagster._core.definitions.repository_definition.repository_definition import RepositoryLoadData

    return DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION, repository_load_data=RepositoryLoadData(
        cacheable_asset_data={}, reconstruction_metadata=stored))


def _timed(emu: EmulatorProcess, repeats: int, loads: dict[str, Callable[[], int]]) -> dict[str, dict[str, Any]]:
    """Run every load ``repeats`` times, interleaved (a noisy spell of the shared machine hits all of
    them alike): each one's median wall time and walls, with the API calls and the count of its last run."""
    walls: dict[str, list[float]] = {name: [] for name in loads}
    out: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for name, load in loads.items():
            emu.clear_log()
            started = time.perf_counter()
            count = load()
            walls[name].append(time.perf_counter() - started)
            out[name] = {"wall": median(walls[name]), "walls": list(walls[name]), "calls": float(emu.api_calls()),
                         "count": float(count)}
    return out


class CachedLoader:
    """The baseline: the naive listing stored in a local file at the first load, read back at every later one."""

    def __init__(self, path: str) -> None:
        self.path = path

    def first(self, client: Any) -> Any:
        data = naive_fetch(client)
        with open(self.path, "w") as f:
            f.write(data.model_dump_json())
        return data

    def reload(self, client: Any) -> Any:  # noqa: ARG002 - no call: the stored listing
        from dagster_cargo.definitions.workspace_data import CargoWorkspaceData

        with open(self.path) as f:
            return CargoWorkspaceData.model_validate_json(f.read())


def measure(n_workflows: int, repeats: int) -> dict[str, dict[str, float]]:
    """First load, reload and fetch-only figures for ours and the naive loader."""
    from cargo_gtm import CargoClient

    from dagster_cargo import CargoResource
    from dagster_cargo.definitions.workspace_data import fetch_workspace_data

    with EmulatorProcess(extra_workflows=n_workflows - SEEDED) as emu:
        resource = CargoResource(api_token=env_token(TOKEN), base_url=emu.base_url)
        load_definitions(resource, _initialization())  # warm-up: imports, pydantic/Dagster caches
        stored: dict[str, Any] = {}

        def ours_first() -> int:
            context = _initialization()
            count = load_definitions(resource, context)
            stored.clear()
            stored.update(context.get_pending_reconstruction_metadata())
            return count

        def ours_reload() -> int:
            assert stored, "the first load stores the state"
            return load_definitions(resource, _reconstruction(stored))

        cached = CachedLoader(os.path.join(tempfile.mkdtemp(prefix="b5-"), "workspace.json"))
        out = _timed(emu, repeats, {
            "ours_first": ours_first, "ours_reload": ours_reload,
            "naive_load": lambda: load_definitions(resource, _initialization(), cached.first),
            "cached_reload": lambda: load_definitions(resource, _initialization(), cached.reload),
        })
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            out.update(_timed(emu, repeats, {
                "ours_fetch": lambda: len(fetch_workspace_data(client).workflows),
                "naive_fetch": lambda: len(naive_fetch(client).workflows),
            }))
            same = ([w.model_dump() for w in fetch_workspace_data(client).workflows]
                    == [w.model_dump() for w in naive_fetch(client).workflows])
    assert same, "the naive loader must describe the same workspace"
    counts = {out[k]["count"] for k in out}
    assert counts == {n_workflows}, counts
    return out


def run(quick: bool) -> list[Row]:
    """B5 rows: calls and wall time of the first load and the reload, ours next to the naive loader."""
    n, repeats = (100, 2) if quick else (1000, 5)
    m = measure(n, repeats)
    first, reload_, naive, cached = m["ours_first"], m["ours_reload"], m["naive_load"], m["cached_reload"]
    build = reload_["wall"]  # reload = building the same definitions with no fetch at all
    return [
        Row("B5", f"first load: API calls ({n:,} plays+tools)", f"{first['calls']:.0f}", f"{naive['calls']:,.0f}",
            f"{naive['calls'] / max(first['calls'], 1):,.0f}× fewer",
            note=(f"over a {RTT * 1e3:.0f} ms RTT network the calls alone cost ~{first['calls'] * RTT:.2f} s "
                  f"(ours) vs ~{naive['calls'] * RTT:.0f} s (naive, sequential)")),
        Row("B5", "first load: wall time", fmt(first["wall"], "s"), fmt(naive["wall"], "s") + " (cached loader, first)",
            spread([b / a for a, b in zip(first["walls"], naive["walls"], strict=True)]),
            note=(f"{first['count']:,.0f} executable assets built + repository resolved; median [min–max] of {repeats} "
                  f"pairs (ratio = baseline ÷ ours); building them alone (no fetch) takes {build:.2f} s")),
        Row("B5", "workspace fetch alone", fmt(m["ours_fetch"]["wall"], "s"), fmt(m["naive_fetch"]["wall"], "s"),
            spread([b / a for a, b in zip(m["ours_fetch"]["walls"], m["naive_fetch"]["walls"], strict=True)]),
            note="CargoClient over loopback: 3 list calls vs plays + tools + one deployed release per workflow"),
        Row("B5", "reload from stored state: API calls", f"{reload_['calls']:.0f}", f"{cached['calls']:,.0f}",
            "0 calls" if reload_["calls"] == 0 else f"{reload_['calls']:.0f} calls", "0 calls",
            reload_["calls"] == 0, note="run workers rebuild from reconstruction metadata; the cached loader reads "
                                       "its file"),
        Row("B5", "reload from stored state: wall time", fmt(reload_["wall"], "s"),
            fmt(cached["wall"], "s") + " (cached loader)",
            spread([b / a for a, b in zip(reload_["walls"], cached["walls"], strict=True)]),
            note=f"{reload_['count']:,.0f} assets; median [min–max] of {repeats} pairs (ratio = baseline ÷ ours)"),
    ]


if __name__ == "__main__":
    import sys

    from ._report import render

    print(render(run(quick="--quick" in sys.argv)))
