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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
from cargo_gtm.inputs import date_window_filter, play_input
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from pydantic import Field

from ..running.metadata import COUNTS_KEY, count_of
from ..running.resource import CargoResource
from .asset_specs import CargoWorkspaceDefsLoader
from .checks import CargoCheckConfig, cargo_check_specs
from .translator import DagsterCargoTranslator
from .workspace_data import CargoWorkflowProps, WorkflowSelector

__all__ = ["CARGO_POOL", "CargoRunConfig", "DEFAULT_PLAY_LIMIT", "build_cargo_asset", "build_cargo_assets_definitions",
           "play_input_for", "partition_window", "partition_window_filter", "run_cargo_workflow_asset"]


DEFAULT_PLAY_LIMIT_VALUE = 100

CARGO_POOL = "cargo"
"""The Dagster pool every Cargo asset's op belongs to by default: cap it to the number of Cargo batches
you want running at once (``dagster instance concurrency set cargo 4``) so Dagster never starts more than
Cargo's workspace accepts (see the README, "Cargo's concurrency as a Dagster pool")."""


class CargoRunConfig(dg.Config):
    """Run-time input of a Cargo workspace asset (every field optional)."""

    filter: dict[str, Any] | None = Field(
        default=None, description="Plays: a Cargo Filter ({'conjonction': 'and', 'groups': [...]}) over the model."
    )
    limit: int | None = Field(
        default=DEFAULT_PLAY_LIMIT_VALUE,
        description="Plays over their model (filter input): at most this many records. Default 100 on an "
        "unpartitioned play, a guard on spend; null runs over every matching record.",
    )
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
    retry_failed: int = Field(
        default=0, description="Re-run the records whose run failed, up to this many rounds, paying only for them."
    )
    resume_unreported: bool | None = Field(
        default=None,
        description="A batch of this same step and input that earlier failed runs paid for and no materialization "
        "reported (still running or succeeded): true adopts it instead of paying again, false pays for a new one. "
        "Unset: the run tag dagster-cargo/resume_unreported, else the resource's resume_unreported, decides.",
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
    flt = config.filter
    if window is not None and date_column and not (config.change_uuid or config.segment_uuid or config.record_ids):
        flt = date_window_filter(date_column, window[0], window[1], flt)
    return play_input(props.model_uuid, change_uuid=config.change_uuid, change_kinds=config.change_kinds,
                      segment_uuid=config.segment_uuid, record_ids=config.record_ids, filter=flt,
                      limit=config.limit, play_name=props.name)


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


DEFAULT_PLAY_LIMIT = DEFAULT_PLAY_LIMIT_VALUE
"""Run-config ``limit`` of an unpartitioned workspace play asset: the guard on spend of a default
launch (one "Materialize" click runs over at most this many records). ``limit: null`` lifts it."""

ExecuteFn = Callable[[dg.AssetExecutionContext, CargoResource, CargoWorkflowProps, CargoRunConfig, Any],
                     dg.MaterializeResult]


@functools.cache
def run_config_fields(default_limit: int | None = DEFAULT_PLAY_LIMIT) -> dict[str, Any]:
    """:class:`CargoRunConfig`'s config schema with ``limit`` defaulting to ``default_limit``,
    inferred once per default.

    Dagster infers a ``Config`` parameter's schema again for every op; for a workspace of
    1,000 plays and tools that was most of the definitions' build time.
    """
    fields = dict(CargoRunConfig.to_fields_dict())
    limit = fields["limit"]
    fields["limit"] = dg.Field(limit.config_type, default_value=default_limit, is_required=False,
                               description=limit.description)
    return fields


def default_limit_for(props: CargoWorkflowProps, *, partitioned_by_date: bool) -> int | None:
    """The default ``limit`` of an asset: :data:`DEFAULT_PLAY_LIMIT` for a play, none for a tool
    (its input is the upstream rows) or a play partitioned by a date column (the window bounds it)."""
    return DEFAULT_PLAY_LIMIT if props.type == "play" and not partitioned_by_date else None


def _credits_per_run(metadata: Mapping[str, Any]) -> float | None:
    def number(key: str) -> float | None:
        value = metadata.get(key)
        value = getattr(value, "value", value)
        return float(value) if isinstance(value, (int, float)) else None

    credits, runs = number("dagster-cargo/credits_used"), count_of(metadata, "runs_count")
    return credits / runs if credits is not None and runs else None


def _expected_cost(context: dg.AssetExecutionContext, key: dg.AssetKey, current: Mapping[str, Any],
                   limit: int) -> dict[str, Any]:
    """``dagster-cargo/expected_credits_at_default_limit``: mean credits per run (record) over this and
    up to 4 earlier materializations, times the default limit. Nothing when no run had a record."""
    samples = [v for v in [_credits_per_run(current)] if v is not None]
    try:
        records = context.instance.fetch_materializations(key, limit=4).records
    except Exception:  # reporting only: never fail the asset over it
        records = []
    for record in records:
        mat = record.asset_materialization
        value = _credits_per_run(mat.metadata) if mat else None
        if value is not None:
            samples.append(value)
    if not samples:
        return {}
    expected = round(sum(samples) / len(samples) * limit, 2)
    return {"dagster-cargo/expected_credits_at_default_limit": dg.MetadataValue.float(expected)}


def run_cargo_workflow_asset(
    context: dg.AssetExecutionContext,
    cargo: CargoResource,
    props: CargoWorkflowProps,
    config: CargoRunConfig,
    records: Any = None,
    *,
    checks: CargoCheckConfig | None = None,
    date_column: str | None = None,
) -> dg.MaterializeResult:
    """What a workspace play/tool asset does: one Cargo batch (or several chunks) and its result.

    Plays run over the records chosen by run ``config`` (filter, limit, record ids, segment,
    change), narrowed to the partition's window when ``date_column`` is set; tools run over
    ``records`` (the upstream DataFrame) or ``config.records``. Every run-config field applies,
    ``credit_budget``, ``output_node_slug`` and ``resume_unreported`` included.
    """
    if props.type == "play" and date_column and _is_range_run(context):
        return _run_partition_range(context, cargo, props, config, checks=checks, date_column=date_column)
    if props.type == "play":
        result = _run_play(context, cargo, props, config, date_column)
    else:
        if records is None:
            records = config.records or []
        result = cargo.run_tool(context, props, records, output_node_slug=config.output_node_slug,
                                credit_budget=config.credit_budget, retry_failed=config.retry_failed,
                                resume_unreported=config.resume_unreported)
    materialization = result.materialize_result(checks=checks)
    if props.type == "play" and not (context.has_partition_key and date_column):
        extra = _expected_cost(context, context.asset_key, dict(result.cargo_metadata), DEFAULT_PLAY_LIMIT)
        if extra:
            materialization = materialization._replace(metadata={**(materialization.metadata or {}), **extra})
    return materialization


def _run_play(context: dg.AssetExecutionContext, cargo: CargoResource, props: CargoWorkflowProps,
              config: CargoRunConfig, date_column: str | None) -> Any:
    """One play batch over the run config's input, narrowed to the partition's window when date-partitioned."""
    window = None
    if context.has_partition_key and date_column:
        window = partition_window(context.partition_time_window)
    data = play_input_for(props, config, window=window, date_column=date_column)
    result = cargo.run_workflow(context, props, data, output_node_slug=config.output_node_slug,
                                credit_budget=config.credit_budget, retry_failed=config.retry_failed,
                                resume_unreported=config.resume_unreported)
    limited = data.get("kind") == "filter" and config.limit is not None
    if limited and config.limit is not None and result.runs_count >= config.limit:
        context.log.warning(
            f"The play ran over {result.runs_count} records, its run-config limit: more records may match. "
            f"To run over all of them, launch with run config limit: null (or a larger limit)."
        )
    return result


def _is_range_run(context: dg.AssetExecutionContext) -> bool:
    """Whether the step covers several partitions at once (a single-run backfill: the CLI's
    ``--partition-range`` or the daemon's backfill of an asset whose policy is single-run)."""
    try:
        return not context.has_partition_key and context.has_partition_key_range
    except Exception:
        return False


def _run_partition_range(context: dg.AssetExecutionContext, cargo: CargoResource, props: CargoWorkflowProps,
                         config: CargoRunConfig, *, checks: CargoCheckConfig | None,
                         date_column: str) -> dg.MaterializeResult:
    """A step over a partition range: one batch per partition (each over its own window, exactly as that
    partition's own materialization would run it, each exactly once on re-execution), the outputs returned as
    ``{partition key: DataFrame}`` so the IO manager stores each partition; metadata sums them up."""
    partitions_def = context.assets_def.partitions_def
    keys = list(context.partition_keys)
    frames: dict[str, Any] = {}
    runs = credits = 0.0
    batches: list[str] = []
    for key in keys:
        window = partition_window(partitions_def.time_window_for_partition_key(key))  # type: ignore[union-attr]
        data = play_input_for(props, config, window=window, date_column=date_column)
        result = cargo.run_workflow(context, props, data, output_node_slug=config.output_node_slug,
                                    credit_budget=config.credit_budget, retry_failed=config.retry_failed,
                                    resume_unreported=config.resume_unreported)
        if checks is not None:
            result.materialize_result(checks=checks)  # each partition's checks: a failing one fails the step
        frames[key] = result.frame
        runs += result.runs_count
        meta = dict(result.cargo_metadata)
        credits += float(getattr(meta.get("dagster-cargo/credits_used"), "value", meta.get("dagster-cargo/credits_used"))
                         or 0.0)
        batches += [b.uuid for b in result.batches]
        context.log.info(f"Partition {key}: {len(result.frame)} rows, {len(result.batches)} batch(es).")
    return dg.MaterializeResult(value=frames, metadata={
        COUNTS_KEY: dg.MetadataValue.json({"runs_count": int(runs), "partitions": len(keys)}),
        "dagster-cargo/batch_uuids": ",".join(batches), "dagster-cargo/credits_used": round(credits, 6),
        "dagster/row_count": sum(len(f) for f in frames.values())})


class CargoPartitionedIOManager(PickledObjectFilesystemIOManager):
    """The filesystem pickle IO manager (Dagster's default), able to store one step's output over several
    partitions: a ``{partition key: value}`` dict (what a single-run backfill of a date-partitioned Cargo play
    returns) is written one file per partition, where a per-partition run would have written it.

    ``base_dir`` defaults to the instance's storage directory, like Dagster's default IO manager.
    """

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if context.has_asset_partitions and isinstance(obj, dict):
            paths = self._get_paths_for_partitions(context)
            if len(paths) > 1 and set(obj) == set(paths):
                for key, path in paths.items():
                    self.make_directory(path.parent)
                    self.dump_to_path(context=context, obj=obj[key], path=path)
                return
        super().handle_output(context, obj)


@dg.io_manager(config_schema={"base_dir": dg.Field(str, is_required=False)})
def cargo_partitioned_io_manager(init_context: dg.InitResourceContext) -> CargoPartitionedIOManager:
    """:class:`CargoPartitionedIOManager` as a resource (``io_manager``), e.g. for ``dagster asset materialize
    --partition-range`` over date-partitioned Cargo plays built with ``single_run_backfill=True``."""
    base = (init_context.resource_config or {}).get("base_dir")
    if not base and init_context.instance is not None:
        base = init_context.instance.storage_directory()
    return CargoPartitionedIOManager(base_dir=base)


def build_cargo_asset(
    props: CargoWorkflowProps,
    spec: dg.AssetSpec,
    *,
    resource_key: str = "cargo",
    upstream: dg.AssetKey | None = None,
    checks: CargoCheckConfig | None = None,
    date_column: str | None = None,
    execute: ExecuteFn | None = None,
    pool: str | None = CARGO_POOL,
    single_run_backfill: bool = False,
) -> dg.AssetsDefinition:
    """The executable asset of one play or tool: the one factory behind
    :func:`build_cargo_assets_definitions` and :class:`~dagster_cargo.CargoWorkspaceComponent`.

    Its op is named after the asset key (``cargo/find_work_email`` → ``cargo__find_work_email``)
    and takes :class:`CargoRunConfig` as run config, with ``limit`` defaulting to
    :data:`DEFAULT_PLAY_LIMIT` on unpartitioned plays. Its code version is the workflow's deployed
    release (:attr:`CargoWorkflowProps.code_version`) unless ``spec`` has one. ``execute`` replaces what a materialization
    does (default: :func:`run_cargo_workflow_asset`). The op belongs to the Dagster ``pool``
    (default :data:`CARGO_POOL`; ``None``: no pool), whose limit caps how many Cargo batches run at once.
    """
    ins = {"upstream_records": dg.AssetIn(key=upstream)} if upstream is not None else {}
    # AssetOut.from_spec refuses specs with deps: pass them to the multi_asset instead
    deps = [d for d in spec.deps if d.asset_key != upstream]
    partitioned_by_date = bool(date_column) and spec.partitions_def is not None
    default_limit = default_limit_for(props, partitioned_by_date=partitioned_by_date)
    # the deployed release is the code version, unless the translator chose one
    spec = spec.replace_attributes(deps=[], code_version=spec.code_version or props.code_version)
    spec = spec.merge_attributes(metadata=_guard_metadata(default_limit))
    check_specs = cargo_check_specs(spec.key, checks) if checks else None
    run = execute or functools.partial(run_cargo_workflow_asset, checks=checks, date_column=date_column)

    @dg.multi_asset(
        name=spec.key.to_python_identifier(),
        outs={"result": dg.AssetOut.from_spec(spec, dagster_type=Any)},
        ins=ins,
        deps=deps,
        check_specs=check_specs,
        required_resource_keys={resource_key},
        config_schema=run_config_fields(default_limit),
        pool=pool,
        # single_run_backfill: a date-partitioned play backfills in one run (one batch per partition inside
        # it), as the CLI's --partition-range requires; its IO manager must store several partitions at once
        # (CargoPartitionedIOManager does)
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned_by_date and single_run_backfill else None,
    )
    def _cargo_asset(context: dg.AssetExecutionContext, **inputs: Any) -> dg.MaterializeResult:
        config = CargoRunConfig(**(context.op_execution_context.op_config or {}))
        cargo: CargoResource = getattr(context.resources, resource_key)
        return run(context, cargo, props, config, inputs.get("upstream_records"))

    return _cargo_asset


def _guard_metadata(default_limit: int | None) -> dict[str, Any]:
    """Definition metadata saying what a default launch runs over (shown on the asset page)."""
    if default_limit is None:
        return {}
    return {"dagster-cargo/default_run": dg.MetadataValue.text(
        f"At most {default_limit} records (run config `limit`; `limit: null` runs over every matching record). "
        "The latest materialization's dagster-cargo/expected_credits_at_default_limit estimates its cost "
        "from recent runs.")}


def build_cargo_assets_definitions(
    workspace: CargoResource,
    *,
    translator: DagsterCargoTranslator | None = None,
    selector: WorkflowSelector | None = None,
    snapshot_path: str | Path | None = None,
    state_path: str | Path | None = None,
    tool_inputs: Mapping[str, dg.AssetKey | str | Sequence[str]] | None = None,
    checks: CargoCheckConfig | None = None,
    partition_date_columns: Mapping[str, str] | None = None,
    resource_key: str = "cargo",
    pool: str | None = CARGO_POOL,
    single_run_backfill: bool = False,
) -> list[dg.AssetsDefinition]:
    """One executable asset per selected play/tool of the workspace.

    Args:
        workspace: the resource used to list the workspace (once per code-location load).
        translator: customizes keys, groups, descriptions, tags, owners, kinds, partitions.
        selector: play/tool names or UUIDs, or a predicate on :class:`CargoWorkflowProps`.
        snapshot_path: load the workspace from a ``dagster-cargo snapshot`` file instead (it must exist).
        state_path: keep the workspace listing in this file: read it when it exists (no API call in
            any process, ``dg``/``dagster`` CLI commands included), fetch and write it when it does not.
            Delete the file, or rewrite it with ``dagster-cargo snapshot -o``, to refresh.
        tool_inputs: tool name/UUID → upstream asset whose DataFrame rows become the records.
        checks: evaluate the Cargo asset checks on every materialization.
        partition_date_columns: play name/UUID → date column to filter on per time partition.
        resource_key: the key under which the ``CargoResource`` is provided at run time.
        single_run_backfill: date-partitioned plays backfill a partition range in one run (one batch per
            partition), as ``dagster asset materialize --partition-range`` requires; pair it with
            :class:`~dagster_cargo.CargoPartitionedIOManager` (or another IO manager that stores a
            ``{partition: value}`` output). Off: one run per partition (the UI's default backfill).
        pool: the Dagster pool of every asset's op (default ``"cargo"``; one per workspace when several
            workspaces have separate limits; ``None``: no pool). Size it with ``dagster instance concurrency set``.
    """
    loader = CargoWorkspaceDefsLoader(workspace, translator, selector, snapshot_path, state_path)
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
        assets.append(build_cargo_asset(props, spec, resource_key=resource_key, upstream=upstream,
                                        checks=checks, date_column=date_column, pool=pool,
                                        single_run_backfill=single_run_backfill))
    return assets
