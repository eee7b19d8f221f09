"""How Cargo plays and tools become Dagster asset specs.

Subclass :class:`DagsterCargoTranslator` and override :meth:`get_asset_spec` (call
``super()`` and use ``replace_attributes``/``merge_attributes``) to change keys, groups,
descriptions, tags, owners or kinds.

Example:
    >>> from dagster_cargo.definitions.workspace_data import CargoWorkflowProps
    >>> props = CargoWorkflowProps(type="tool", uuid="t1", name="Enrich company", workflow_uuid="w1")
    >>> DagsterCargoTranslator().get_asset_spec(props).key.path
    ['cargo', 'enrich_company']
"""

from __future__ import annotations

import re
from typing import Any

import dagster as dg

from ..running.metadata import CargoMetadataSet
from .workspace_data import CargoWorkflowProps

__all__ = ["DagsterCargoTranslator", "cargo_workflow_metadata", "clean_name"]


def cargo_workflow_metadata(
    name: str,
    workflow_type: str,
    *,
    workflow_uuid: str | None = None,
    output_node_slug: str | None = None,
) -> dict[str, Any]:
    """Definition metadata naming the Cargo play or tool an asset runs, the same keys workspace
    assets carry, for hand-written assets: ``@dg.asset(metadata=cargo_workflow_metadata(
    "Enrich company", "tool"))``. The asset page then shows which workflow it runs before any
    materialization; each materialization adds the workflow UUID and the batch."""
    return dict(CargoMetadataSet(workflow_name=name, workflow_type=workflow_type, workflow_uuid=workflow_uuid,
                                 output_node_slug=output_node_slug))


def clean_name(name: str) -> str:
    """A Dagster-safe identifier from a Cargo name: ``"Score Inbound-Companies"`` → ``"score_inbound_companies"``."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if not cleaned or cleaned[0].isdigit():
        cleaned = f"cargo_{cleaned}"
    return cleaned


class DagsterCargoTranslator:
    """Default translation: key ``["cargo", <clean name>]``, group ``cargo``, kinds ``cargo``, code version
    from the workflow's deployed release (:attr:`CargoWorkflowProps.code_version`)."""

    def get_asset_spec(self, props: CargoWorkflowProps) -> dg.AssetSpec:
        description = props.description or f"Outputs of the Cargo {props.type} {props.name!r}."
        metadata = CargoMetadataSet(
            workflow_uuid=props.workflow_uuid,
            workflow_name=props.name,
            workflow_type=props.type,
            output_node_slug=props.output_node_slug,
        )
        tags = {"dagster-cargo/workflow_type": props.type}
        return dg.AssetSpec(
            key=dg.AssetKey(["cargo", clean_name(props.name)]),
            description=description,
            group_name="cargo",
            kinds={"cargo", "pandas"},
            tags=tags,
            code_version=props.code_version,
            metadata={
                **dict(metadata),
                "dagster-cargo/uuid": props.uuid,
                **({"dagster-cargo/model_uuid": props.model_uuid} if props.model_uuid else {}),
            },
        )
