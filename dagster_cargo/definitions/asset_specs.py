"""Load a Cargo workspace's plays and tools as Dagster asset specs, state-backed.

The workspace listing is fetched once when the code location loads and stored in the
definitions' reconstruction metadata: run workers rebuild the same specs without calling
Cargo. An offline snapshot file (``dagster-cargo snapshot -o cargo.json``) can replace the
API entirely at load time.

Example:
    .. code-block:: python

        import dagster as dg
        from dagster_cargo import CargoResource, load_cargo_asset_specs

        cargo = CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"))
        specs = load_cargo_asset_specs(cargo, selector=["Score inbound companies"])
        defs = dg.Definitions(assets=specs, resources={"cargo": cargo})
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
    StateBackedDefinitionsLoader,
)
from dagster._serdes import deserialize_value

from ..running.resource import CargoResource
from ..running.settings import setting_label
from .translator import DagsterCargoTranslator
from .workspace_data import CargoWorkspaceData, WorkflowSelector, fetch_workspace_data

logger = logging.getLogger("dagster_cargo")

__all__ = ["CargoWorkspaceDefsLoader", "load_cargo_asset_specs", "load_cargo_workspace_data"]


class CargoWorkspaceDefsLoader(StateBackedDefinitionsLoader[str]):
    """Fetches the workspace once per code-location load; the state is its JSON snapshot."""

    def __init__(
        self,
        workspace: CargoResource,
        translator: DagsterCargoTranslator | None = None,
        selector: WorkflowSelector | None = None,
        snapshot_path: str | Path | None = None,
        state_path: str | Path | None = None,
    ) -> None:
        self.workspace = workspace
        self.translator = translator or DagsterCargoTranslator()
        self.selector = selector
        self.snapshot_path = Path(snapshot_path) if snapshot_path else None
        self.state_path = Path(state_path) if state_path else None

    @property
    def defs_key(self) -> str:
        # an EnvVar by its name, whether set or not when the resource was built (never its value)
        return f"dagster-cargo/workspace/{setting_label(self.workspace, 'base_url') or ''}/" \
               f"{setting_label(self.workspace, 'workspace_uuid') or 'default'}"

    def get_or_fetch_state(self) -> str:
        """The stored state when reconstructing; else the state this code-location load already
        fetched for the same workspace (several loaders, e.g. one per selector, share one fetch);
        else a fresh fetch (3 API calls, however many plays and tools)."""
        context = DefinitionsLoadContext.get()
        if context.load_type == DefinitionsLoadType.INITIALIZATION:
            pending = context.get_pending_reconstruction_metadata().get(self.defs_key)
            if pending is not None:
                return deserialize_value(pending, str)
        return super().get_or_fetch_state()

    def build_defs(self) -> dg.Definitions:
        """The specs, carrying the state as reconstruction metadata. Dagster marks
        ``Definitions.with_reconstruction_metadata`` as preview; it is what state-backed loaders
        are built on, so its warning is silenced here instead of printed on every load."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return super().build_defs()

    def fetch_state(self) -> str:
        """The snapshot file; else the state file when it exists; else the API (3 calls), written to
        the state file when one is configured, so that later loads make no call."""
        if self.snapshot_path is not None:
            return CargoWorkspaceData.read(self.snapshot_path).to_json()
        if self.state_path is not None and self.state_path.exists():
            return CargoWorkspaceData.read(self.state_path).to_json()
        state = self._fetch()
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
            partial.write_text(state, encoding="utf-8")
            os.replace(partial, self.state_path)  # atomic: a concurrent loader reads old or new, never half
            logger.info("Stored the Cargo workspace listing in %s; later loads read it without calling Cargo. "
                        "Delete it (or rewrite it with `dagster-cargo snapshot -o`) to refresh.", self.state_path)
        return state

    def _fetch(self) -> str:
        # resolve EnvVar fields (the token) the way Dagster does for a run
        with self.workspace.process_config_and_initialize_cm() as workspace:
            return fetch_workspace_data(workspace.get_client()).to_json()

    def defs_from_state(self, state: str) -> dg.Definitions:
        data = CargoWorkspaceData.from_json(state)
        specs = [self.translator.get_asset_spec(props) for props in data.select(self.selector)]
        return dg.Definitions(assets=specs)

    def load_data(self) -> CargoWorkspaceData:
        return CargoWorkspaceData.from_json(self.get_or_fetch_state())


def load_cargo_workspace_data(
    workspace: CargoResource, *, snapshot_path: str | Path | None = None
) -> CargoWorkspaceData:
    """The workspace snapshot, fetched at most once per code-location load."""
    return CargoWorkspaceDefsLoader(workspace, snapshot_path=snapshot_path).load_data()


def load_cargo_asset_specs(
    workspace: CargoResource,
    *,
    translator: DagsterCargoTranslator | None = None,
    selector: WorkflowSelector | None = None,
    snapshot_path: str | Path | None = None,
) -> Sequence[dg.AssetSpec]:
    """One :class:`~dagster.AssetSpec` per play/tool (filtered by ``selector``: names/UUIDs or a
    predicate). Unreadable workflows are skipped with a warning."""
    loader = CargoWorkspaceDefsLoader(workspace, translator, selector, snapshot_path)
    return [spec for spec in loader.build_defs().assets or [] if isinstance(spec, dg.AssetSpec)]
