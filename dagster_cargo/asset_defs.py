"""Executable assets for a workspace's plays and tools: one asset per workflow.

* A **play** asset runs over its model's records; run config narrows it (``filter``,
  ``limit``, ``record_ids``, ``segment_uuid`` or ``change_uuid``). When the asset is
  partitioned by time and ``partition_date_column`` is set, each partition runs over the
  records whose date column falls in the partition's window (backfills included).
* A **tool** asset takes the rows of an upstream DataFrame asset as records
  (``tool_inputs={"Enrich company": "signups"}``), or ``records`` from run config.

Definitions load from the state-backed workspace snapshot: run workers make no API call
to build them, and executing an asset makes no catalog call either (the snapshot carries
workflow UUIDs, models and output node slugs).

Example:
    .. code-block:: python

        import dagster as dg
        from dagster_cargo import CargoResource, build_cargo_assets_definitions

        cargo = CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"))
        defs = dg.Definitions(
            assets=[signups, *build_cargo_assets_definitions(cargo, tool_inputs={"Enrich company": "signups"})],
            resources={"cargo": cargo},
        )
"""

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from .asset_specs import CargoWorkspaceDefsLoader
from .checks import CargoCheckConfig, cargo_check_specs
from .client.inputs import change_data, date_window_filter, filter_data, record_ids_data, segment_data
from .resource import CargoResource
from .translator import DagsterCargoTranslator, clean_name
from .workspace_data import CargoWorkflowProps, WorkflowSelector

__all__ = ["CargoRunConfig", "build_cargo_assets_definitions", "play_input_for", "partition_window",
           "partition_window_filter"]


class CargoRunConfig(dg.Config):
    """Run-time input of a Cargo workspace asset (every field optional)."""

    filter: dict[str, Any] | None = Field(
        default=None, description="Plays: a Cargo Filter ({'conjonction': 'and', 'groups': [...]}) over the model."
    )
    limit: int | None = Field(default=None, description="Plays: at most this many records.")
    record_ids: list[str] | None = Field(default=None, description="Plays: run over these record ids only.")
    segment_uuid: str | None = Field(default=None, description="Plays: run over this (non play-owned) segment.")
    change_uuid: str | None = Field(default=None, description="Plays: run over the records of this segment change.")
    change_kinds: list[str] = Field(default=["added", "updated"], description="Plays: change kinds to enrol.")
    records: list[dict[str, Any]] | None = Field(
        default=None, description="Tools without an upstream asset: the records to run over."
    )
    output_node_slug: str | None = Field(default=None, description="Download this node's outputs instead.")
    credit_budget: float | None = Field(
        default=None, description="Cancel the batch and fail if it uses more credits than this."
    )


def play_input_for(
    props: CargoWorkflowProps,
    config: CargoRunConfig,
    *,
    window: tuple[Any, Any] | None = None,
    date_column: str | None = None,
) -> dict[str, Any]:
    """The batch ``data`` for a play asset, from its run config and partition window."""
    assert props.model_uuid, f"play {props.name!r} has no model"
    if config.change_uuid:
        return change_data(config.change_uuid, config.change_kinds)
    if config.segment_uuid:
        return segment_data(config.segment_uuid)
    if config.record_ids:
        return record_ids_data(props.model_uuid, config.record_ids)
    flt = config.filter
    if window is not None and date_column:
        flt = date_window_filter(date_column, window[0], window[1], flt)
    return filter_data(props.model_uuid, flt, limit=config.limit)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def partition_window(time_window: Any) -> tuple[str, str]:
    """A partition's [start, end) as an inclusive Cargo ``between`` (end minus 1 ms)."""
    return _utc_text(time_window.start), _utc_text(time_window.end - timedelta(milliseconds=1))


def partition_window_filter(
    context: dg.AssetExecutionContext, column_slug: str, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A Cargo filter selecting records whose ``column_slug`` falls in the current time
    partition ([start, end)), AND-ed with ``base``. For hand-written partitioned play assets.
    """
    start, end = partition_window(context.partition_time_window)
    return date_window_filter(column_slug, start, end, base)


@functools.cache
def _run_config_fields() -> dict[str, Any]:
    """:class:`CargoRunConfig`'s config schema, inferred once.

    Dagster infers a ``Config`` parameter's schema again for every op; for a workspace of
    1,000 plays and tools that was most of the definitions' build time.
    """
    return CargoRunConfig.to_fields_dict()


def _build_one(
    props: CargoWorkflowProps,
    spec: dg.AssetSpec,
    *,
    resource_key: str,
    upstream: dg.AssetKey | None,
    checks: CargoCheckConfig | None,
    date_column: str | None,
) -> dg.AssetsDefinition:
    ins = {"upstream_records": dg.AssetIn(key=upstream)} if upstream is not None else {}
    # AssetOut.from_spec refuses specs with deps: pass them to the multi_asset instead
    deps = [d for d in spec.deps if d.asset_key != upstream]
    spec = spec.replace_attributes(deps=[])
    check_specs = cargo_check_specs(spec.key, checks) if checks else None

    @dg.multi_asset(
        name=f"cargo_{props.type}_{clean_name(props.name)}",
        outs={"result": dg.AssetOut.from_spec(spec, dagster_type=Any)},
        ins=ins,
        deps=deps,
        check_specs=check_specs,
        required_resource_keys={resource_key},
        config_schema=_run_config_fields(),
    )
    def _cargo_asset(context: dg.AssetExecutionContext, **inputs):
        config = CargoRunConfig(**(context.op_execution_context.op_config or {}))
        cargo: CargoResource = getattr(context.resources, resource_key)
        if props.type == "play":
            window = None
            if context.has_partition_key and date_column:
                window = partition_window(context.partition_time_window)
            data = play_input_for(props, config, window=window, date_column=date_column)
            result = cargo.run_workflow(context, props, data, output_node_slug=config.output_node_slug,
                                        credit_budget=config.credit_budget)
        else:
            records = inputs.get("upstream_records")
            if records is None:
                records = config.records or []
            result = cargo.run_tool(context, props, records, output_node_slug=config.output_node_slug,
                                    credit_budget=config.credit_budget)
        return result.materialize_result(checks=checks)

    return _cargo_asset


def build_cargo_assets_definitions(
    workspace: CargoResource,
    *,
    translator: DagsterCargoTranslator | None = None,
    selector: WorkflowSelector | None = None,
    snapshot_path: str | Path | None = None,
    tool_inputs: Mapping[str, dg.AssetKey | str | Sequence[str]] | None = None,
    checks: CargoCheckConfig | None = None,
    partition_date_columns: Mapping[str, str] | None = None,
    resource_key: str = "cargo",
) -> list[dg.AssetsDefinition]:
    """One executable asset per selected play/tool of the workspace.

    Args:
        workspace: the resource used to list the workspace (once per code-location load).
        translator: customizes keys, groups, descriptions, tags, owners, kinds, partitions.
        selector: play/tool names or UUIDs, or a predicate on :class:`CargoWorkflowProps`.
        snapshot_path: load the workspace from a ``dagster-cargo snapshot`` file instead.
        tool_inputs: tool name/UUID → upstream asset whose DataFrame rows become the records.
        checks: evaluate the Cargo asset checks on every materialization.
        partition_date_columns: play name/UUID → date column to filter on per time partition.
        resource_key: the key under which the ``CargoResource`` is provided at run time.
    """
    loader = CargoWorkspaceDefsLoader(workspace, translator, selector, snapshot_path)
    data = loader.load_data()
    translator = loader.translator
    tool_inputs = dict(tool_inputs or {})
    date_columns = dict(partition_date_columns or {})
    assets = []
    for props in data.select(selector):
        spec = translator.get_asset_spec(props)
        upstream = next((dg.AssetKey.from_coercible(v) for k, v in tool_inputs.items()
                         if k in props.selector_keys), None) if props.type == "tool" else None
        date_column = next((v for k, v in date_columns.items() if k in props.selector_keys), None)
        assets.append(_build_one(props, spec, resource_key=resource_key, upstream=upstream,
                                 checks=checks, date_column=date_column))
    return assets
