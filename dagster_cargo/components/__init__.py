"""Dagster Components (``dg``) integration: :class:`CargoWorkspaceComponent`.

Registered as a ``dagster_dg_cli.registry_modules`` entry point, so ``dg list components``
shows it and ``dg scaffold defs dagster_cargo.CargoWorkspaceComponent my_cargo`` writes a
``defs.yaml`` for it.
"""

from .scaffolder import CargoWorkspaceComponentScaffolder
from .workspace_component import CargoWorkspaceComponent

__all__ = ["CargoWorkspaceComponent", "CargoWorkspaceComponentScaffolder"]
