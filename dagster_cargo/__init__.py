"""dagster-cargo: run Cargo plays and tools from Dagster.

Layers (each importable on its own):

* ``cargo_gtm`` — plain Python Cargo API client (httpx + pydantic, no Dagster).
* ``cargo_gtm_emulator`` — a local HTTP emulator of Cargo's API, independent of the client.
* the Dagster layer, exported here: :class:`CargoResource`, metadata, batch execution.

The Dagster layer is imported lazily, so ``import cargo_gtm`` never imports
Dagster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .components import CargoWorkspaceComponent
    from .definitions.asset_defs import (
        CARGO_POOL,
        CargoPartitionedIOManager,
        CargoRunConfig,
        build_cargo_asset,
        build_cargo_assets_definitions,
        cargo_partitioned_io_manager,
        partition_window_filter,
    )
    from .definitions.asset_specs import load_cargo_asset_specs, load_cargo_workspace_data
    from .definitions.checks import CargoCheckConfig, cargo_check_specs
    from .definitions.heal_job import CargoHealConfig, build_cargo_heal_job, cargo_heal_op
    from .definitions.ops import CargoBatchOpConfig, cargo_batch_op
    from .definitions.sensors import (
        build_cargo_change_sensor,
        build_cargo_observation_sensor,
        build_cargo_unreported_spend_sensor,
    )
    from .definitions.translator import DagsterCargoTranslator, cargo_workflow_metadata
    from .definitions.workspace_data import CargoWorkflowProps, CargoWorkspaceData
    from .running.execution import BatchRunSpec, CargoBatchResult
    from .running.metadata import CargoMetadataSet
    from .running.resource import CargoResource

_LAZY = {
    "CargoResource": ".running.resource",
    "CargoMetadataSet": ".running.metadata",
    "CargoBatchResult": ".running.execution",
    "BatchRunSpec": ".running.execution",
    "CargoCheckConfig": ".definitions.checks",
    "cargo_check_specs": ".definitions.checks",
    "DagsterCargoTranslator": ".definitions.translator",
    "cargo_workflow_metadata": ".definitions.translator",
    "CargoWorkflowProps": ".definitions.workspace_data",
    "CargoWorkspaceData": ".definitions.workspace_data",
    "load_cargo_asset_specs": ".definitions.asset_specs",
    "load_cargo_workspace_data": ".definitions.asset_specs",
    "build_cargo_assets_definitions": ".definitions.asset_defs",
    "CargoRunConfig": ".definitions.asset_defs",
    "CARGO_POOL": ".definitions.asset_defs",
    "build_cargo_asset": ".definitions.asset_defs",
    "partition_window_filter": ".definitions.asset_defs",
    "CargoPartitionedIOManager": ".definitions.asset_defs",
    "cargo_partitioned_io_manager": ".definitions.asset_defs",
    "cargo_batch_op": ".definitions.ops",
    "build_cargo_change_sensor": ".definitions.sensors",
    "build_cargo_observation_sensor": ".definitions.sensors",
    "build_cargo_unreported_spend_sensor": ".definitions.sensors",
    "CargoBatchOpConfig": ".definitions.ops",
    "CargoWorkspaceComponent": ".components",
    "build_cargo_heal_job": ".definitions.heal_job",
    "cargo_heal_op": ".definitions.heal_job",
    "CargoHealConfig": ".definitions.heal_job",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'dagster_cargo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
