"""dagster-cargo: run Cargo plays and tools from Dagster.

Layers (each importable on its own):

* ``dagster_cargo.client`` — plain Python Cargo API client (httpx + pydantic, no Dagster).
* ``dagster_cargo.emulator`` — a local HTTP emulator of Cargo's API, independent of the client.
* the Dagster layer, exported here: :class:`CargoResource`, metadata, batch execution.

The Dagster layer is imported lazily, so ``import dagster_cargo.client`` never imports
Dagster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .asset_defs import (
        CARGO_POOL,
        CargoRunConfig,
        build_cargo_asset,
        build_cargo_assets_definitions,
        partition_window_filter,
    )
    from .asset_specs import load_cargo_asset_specs, load_cargo_workspace_data
    from .checks import CargoCheckConfig, cargo_check_specs
    from .components import CargoWorkspaceComponent
    from .execution import BatchRunSpec, CargoBatchResult
    from .heal_job import CargoHealConfig, build_cargo_heal_job, cargo_heal_op
    from .metadata import CargoMetadataSet
    from .ops import CargoBatchOpConfig, cargo_batch_op
    from .resource import CargoResource
    from .sensors import build_cargo_change_sensor, build_cargo_observation_sensor
    from .translator import DagsterCargoTranslator, cargo_workflow_metadata
    from .workspace_data import CargoWorkflowProps, CargoWorkspaceData

_LAZY = {
    "CargoResource": ".resource",
    "CargoMetadataSet": ".metadata",
    "CargoBatchResult": ".execution",
    "BatchRunSpec": ".execution",
    "CargoCheckConfig": ".checks",
    "cargo_check_specs": ".checks",
    "DagsterCargoTranslator": ".translator",
    "cargo_workflow_metadata": ".translator",
    "CargoWorkflowProps": ".workspace_data",
    "CargoWorkspaceData": ".workspace_data",
    "load_cargo_asset_specs": ".asset_specs",
    "load_cargo_workspace_data": ".asset_specs",
    "build_cargo_assets_definitions": ".asset_defs",
    "CargoRunConfig": ".asset_defs",
    "CARGO_POOL": ".asset_defs",
    "build_cargo_asset": ".asset_defs",
    "partition_window_filter": ".asset_defs",
    "cargo_batch_op": ".ops",
    "build_cargo_change_sensor": ".sensors",
    "build_cargo_observation_sensor": ".sensors",
    "CargoBatchOpConfig": ".ops",
    "CargoWorkspaceComponent": ".components",
    "build_cargo_heal_job": ".heal_job",
    "cargo_heal_op": ".heal_job",
    "CargoHealConfig": ".heal_job",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'dagster_cargo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
