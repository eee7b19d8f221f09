"""``CargoWorkspaceComponent``: a Cargo workspace's plays and tools as Dagster assets, from YAML."""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import dagster as dg
from cargo_gtm.errors import CargoError
from dagster._annotations import public
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext
from dagster._core.storage.defs_state.base import DefsStateStorage
from dagster.components.utils.defs_state import (
    DefsStateConfig,
    DefsStateConfigArgs,
    ResolvedDefsStateConfig,
)
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from ..definitions.asset_defs import CARGO_POOL, CargoRunConfig, build_cargo_asset, run_cargo_workflow_asset
from ..definitions.checks import CargoCheckConfig
from ..definitions.sensors import build_cargo_change_sensor, build_cargo_observation_sensor
from ..definitions.translator import DagsterCargoTranslator, clean_name
from ..definitions.workspace_data import CargoWorkflowProps, CargoWorkspaceData, fetch_workspace_data
from ..running.resource import CargoResource
from ..running.settings import setting_label
from .loading import refreshes_on_load
from .models import (
    CargoChangeSensorArgs,
    CargoChecksArgs,
    CargoObservationSensorArgs,
    CargoSelectByName,
    CargoSelectByUuid,
    CargoWorkflowSelection,
    CargoWorkspaceArgs,
    resolve_checks,
    resolve_observation_sensor,
    resolve_selection,
    resolve_workspace,
    sensor_status,
)
from .scaffolder import CargoWorkspaceComponentScaffolder

__all__ = ["CargoWorkspaceComponent"]

logger = logging.getLogger("dagster_cargo")

def _lookup(mapping: Mapping[str, Any], props: CargoWorkflowProps) -> Any:
    return next((v for k, v in mapping.items() if k in props.selector_keys), None)


@public
@dg.scaffold_with(CargoWorkspaceComponentScaffolder)
@dataclass
class CargoWorkspaceComponent(dg.StateBackedComponent, dg.Resolvable):
    """A Cargo workspace's plays and tools as executable Dagster assets (one per workflow).

    State: the workspace snapshot (:class:`~dagster_cargo.CargoWorkspaceData` JSON, 3 API calls:
    plays, tools, workflows) is written by ``dg utils refresh-defs-state`` (or
    automatically under ``dg dev``) and stored on the local filesystem by default. Loading
    definitions reads the snapshot and makes **no** API call, in the code server and in run
    workers alike. Materializing a play/tool asset runs one Cargo batch and returns its output
    as a pandas DataFrame, with row count, column schema and credit metadata.

    Example:
        .. code-block:: yaml

            # defs.yaml
            type: dagster_cargo.CargoWorkspaceComponent
            attributes:
              workspace:                          # any CargoResource field
                api_token: "{{ env.CARGO_API_TOKEN }}"   # kept as dg.EnvVar: never shown in the UI
                workspace_uuid: "{{ env.CARGO_WORKSPACE_UUID }}"
              selection:                          # or by_uuid: [...], or "{{ predicate }}"
                by_name: ["Score inbound companies", "Enrich company"]
              translation:                        # AssetSpec attributes; templates see `props`, `spec`
                key: "gtm/{{ props.type }}/{{ spec.key.path[-1] }}"
                group_name: gtm
                owners: ["team:gtm"]
              tool_inputs:                        # tool → upstream asset whose DataFrame rows it runs over
                Enrich company: raw/signups
              checks:                             # or `checks: true` for the defaults
                failed_ratio_warn: 0.05
                failed_ratio_error: 0.2
                max_credits_per_record: 5
              partition_date_columns:             # play → date column filtered per time partition
                Score inbound companies: created_at
              change_sensors:
                - segment: ICP companies
                  play: Score inbound companies
                  minimum_interval_seconds: 300
              observation_sensor: true            # or {minimum_interval_seconds: 600, ...}
              resource_key: cargo                 # a second workspace needs its own key
              pool: cargo                         # Dagster pool of every asset (null: none)
              defs_state:                         # default: LOCAL_FILESYSTEM
                management_type: LOCAL_FILESYSTEM

    Customize in Python by subclassing and overriding :meth:`get_asset_spec` (the spec before
    ``translation:`` is applied) or :meth:`execute` (what a materialization does).
    """

    workspace: Annotated[
        CargoResource,
        dg.Resolver(
            resolve_workspace,
            model_field_type=CargoWorkspaceArgs.model(),
            description="Connection to the Cargo workspace: the fields of CargoResource. "
            'Write the token as "{{ env.CARGO_API_TOKEN }}".',
        ),
    ]
    selection: Annotated[
        Callable[[CargoWorkflowProps], bool] | None,
        dg.Resolver(
            resolve_selection,
            model_field_type=str | CargoSelectByName.model() | CargoSelectByUuid.model(),
            description="Which plays and tools to load (default: all).",
        ),
    ] = None
    translation: (
        Annotated[
            TranslationFn[CargoWorkflowProps],
            TranslationFnResolver[CargoWorkflowProps](template_vars_for_translation_fn=lambda props: {"props": props}),
        ]
        | None
    ) = None
    tool_inputs: Annotated[
        dict[str, str],
        dg.Resolver.default(
            description="Tool name/UUID → upstream asset key ('a/b'): the upstream DataFrame's rows are the records.",
        ),
    ] = field(default_factory=dict)
    checks: Annotated[
        CargoCheckConfig | None,
        dg.Resolver(
            resolve_checks,
            model_field_type=bool | CargoChecksArgs.model(),
            description="Evaluate the Cargo asset checks (failed-run ratio, completeness, cost) on every materialization.",
        ),
    ] = None
    partition_date_columns: Annotated[
        dict[str, str],
        dg.Resolver.default(
            description="Play name/UUID → date column: a time-partitioned play runs over its partition's window.",
        ),
    ] = field(default_factory=dict)
    change_sensors: Annotated[
        Sequence[CargoChangeSensorArgs],
        dg.Resolver.default(description="Sensors running a play over each new change of a segment."),
    ] = ()
    observation_sensor: Annotated[
        CargoObservationSensorArgs | None,
        dg.Resolver(
            resolve_observation_sensor,
            model_field_type=bool | CargoObservationSensorArgs.model(),
            description="Record batches Cargo ran on its own (schedules, UI) as materializations.",
        ),
    ] = None
    resource_key: Annotated[
        str,
        dg.Resolver.default(
            description="Key of the CargoResource in the definitions; give each workspace its own key "
            "(and its own asset key prefix: op names follow asset keys).",
        ),
    ] = "cargo"
    pool: Annotated[
        str | None,
        dg.Resolver.default(
            description="Dagster pool of every Cargo asset (default 'cargo'; null: none). Cap it to the number of "
            "Cargo batches to run at once: `dagster instance concurrency set cargo 4`.",
        ),
    ] = CARGO_POOL
    defs_state: ResolvedDefsStateConfig = field(default_factory=DefsStateConfigArgs.local_filesystem)

    # -- state ------------------------------------------------------------------------------
    @property
    def defs_state_config(self) -> DefsStateConfig:
        url = setting_label(self.workspace, "base_url") or ""
        host = url if url.startswith("env:") else (urlsplit(url).netloc or url)
        scope = setting_label(self.workspace, "workspace_uuid") or "default"
        config = DefsStateConfig.from_args(self.defs_state, default_key=f"{type(self).__name__}[{host}.{scope}]")
        if config.refresh_if_dev and not refreshes_on_load():  # `dg check defs`, `dg list defs`: stored state only
            config = DefsStateConfig(key=config.key, management_type=config.management_type, refresh_if_dev=False)
        return config

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """Dagster's load (refreshing the snapshot first under `dg dev` / `dagster dev`); when that refresh
        cannot reach Cargo, the stored snapshot is loaded instead (with a warning) rather than no code location."""
        try:
            return super().build_defs(context)
        except CargoError as exc:
            if not self.defs_state_config.refresh_if_dev:
                raise
            logger.warning("Could not refresh the Cargo workspace snapshot %s (%s); loading the stored one. Run "
                           "`dg utils refresh-defs-state` once Cargo is reachable.", self.defs_state_config.key, exc)
            config = DefsStateConfig(key=self.defs_state_config.key,
                                     management_type=self.defs_state_config.management_type, refresh_if_dev=False)
            with DefinitionsLoadContext.get().state_path(config, DefsStateStorage.get(), context.project_root) as path:
                return self.build_defs_from_state(context, state_path=path)

    def write_state_to_path(self, state_path: Path) -> None:
        """Fetch the workspace snapshot (3 API calls) into ``state_path``."""
        cargo = self.workspace  # its dg.EnvVar fields are read now, even those unset when it was built
        try:
            data = fetch_workspace_data(cargo.get_client())
        finally:
            cargo.close()
        data.write(state_path)

    # -- overridable hooks ------------------------------------------------------------------
    @public
    def get_asset_spec(self, props: CargoWorkflowProps) -> dg.AssetSpec:
        """The asset spec of one play or tool, before ``translation:`` is applied.

        Default: key ``cargo/<clean name>``, group ``cargo``, kinds ``cargo``/``pandas`` and
        ``dagster-cargo/*`` metadata (see :class:`~dagster_cargo.DagsterCargoTranslator`).

        Example:
            .. code-block:: python

                class GtmCargo(CargoWorkspaceComponent):
                    def get_asset_spec(self, props):
                        spec = super().get_asset_spec(props)
                        return spec.replace_attributes(key=["gtm", props.type, spec.key.path[-1]])
        """
        return DagsterCargoTranslator().get_asset_spec(props)

    @public
    def execute(
        self,
        context: dg.AssetExecutionContext,
        cargo: CargoResource,
        props: CargoWorkflowProps,
        config: CargoRunConfig,
        records: Any = None,
    ) -> dg.MaterializeResult:
        """Run one Cargo batch for ``props`` and return its output DataFrame and metadata.

        Plays run over the records chosen by run ``config`` (filter, limit, record ids, segment,
        change), narrowed to the partition's window when ``partition_date_columns`` names a date
        column; tools run over ``records`` (the upstream DataFrame) or ``config.records``.

        Example:
            .. code-block:: python

                class LoggedCargo(CargoWorkspaceComponent):
                    def execute(self, context, cargo, props, config, records=None):
                        context.log.info(f"{cargo.credits_remaining()} credits left")
                        return super().execute(context, cargo, props, config, records)
        """
        return run_cargo_workflow_asset(context, cargo, props, config, records, checks=self.checks,
                                        date_column=_lookup(self.partition_date_columns, props))

    # -- definitions ------------------------------------------------------------------------
    def build_defs_from_state(self, context: dg.ComponentLoadContext, state_path: Path | None) -> dg.Definitions:
        resources = {self.resource_key: self.workspace}
        if state_path is None:
            logger.warning(
                "No Cargo workspace state for %s yet: run `dg utils refresh-defs-state` "
                "(or `dg dev`) to fetch it. Loading no Cargo assets.", self.defs_state_config.key,
            )
            return dg.Definitions(resources=resources)
        data = CargoWorkspaceData.read(state_path)
        selected = [p for p in data.workflows if self.selection is None or self.selection(p)]
        self._warn_unmatched(data, selected)
        assets = [(p, self._build_asset(p, self._translated_spec(p))) for p in selected]
        sensors = self._build_sensors(assets)
        return dg.Definitions(assets=[a for _, a in assets], sensors=sensors, resources=resources)

    def _translated_spec(self, props: CargoWorkflowProps) -> dg.AssetSpec:
        spec = self.get_asset_spec(props)
        return self.translation(spec, props) if self.translation else spec

    def _build_asset(self, props: CargoWorkflowProps, spec: dg.AssetSpec) -> dg.AssetsDefinition:
        upstream_key = _lookup(self.tool_inputs, props) if props.type == "tool" else None
        return build_cargo_asset(
            props, spec, resource_key=self.resource_key,
            upstream=dg.AssetKey.from_user_string(upstream_key) if upstream_key else None,
            checks=self.checks, date_column=_lookup(self.partition_date_columns, props),
            execute=self.execute,  # a subclass's override runs; the default is run_cargo_workflow_asset
            pool=self.pool,
        )

    def _build_sensors(
        self, assets: Sequence[tuple[CargoWorkflowProps, dg.AssetsDefinition]]
    ) -> list[dg.SensorDefinition]:
        sensors = []
        for args in self.change_sensors:
            found = next(((p, a) for p, a in assets if p.type == "play" and args.play in p.selector_keys), None)
            if found is None:
                logger.warning("Cargo change sensor: %r is not a selected play; sensor not created.", args.play)
                continue
            props, play = found
            sensors.append(build_cargo_change_sensor(
                play, args.segment,
                name=args.name or f"{self.resource_key}_{clean_name(props.name)}_on_{clean_name(args.segment)}",
                change_kinds=args.change_kinds, start_from=args.start_from,
                minimum_interval_seconds=args.minimum_interval_seconds, max_runs_per_tick=args.max_runs_per_tick,
                default_status=sensor_status(args.default_status), resource_key=self.resource_key,
            ))
        obs = self.observation_sensor
        if obs is not None and assets:
            sensors.append(build_cargo_observation_sensor(
                [a for _, a in assets], name=obs.name or f"{self.resource_key}_observation_sensor",
                minimum_interval_seconds=obs.minimum_interval_seconds, start_from=obs.start_from,
                default_status=sensor_status(obs.default_status), resource_key=self.resource_key,
            ))
        return sensors

    def _warn_unmatched(self, data: CargoWorkspaceData, selected: Sequence[CargoWorkflowProps]) -> None:
        if isinstance(self.selection, CargoWorkflowSelection):
            for missing in self.selection.unmatched(data.workflows):
                logger.warning("Cargo selection: no play or tool %r in the workspace snapshot.", missing)
        tools = [p for p in selected if p.type == "tool"]
        plays = [p for p in selected if p.type == "play"]
        for option, mapping, candidates in (("tool_inputs", self.tool_inputs, tools),
                                            ("partition_date_columns", self.partition_date_columns, plays)):
            for key in mapping:
                if not any(key in p.selector_keys for p in candidates):
                    logger.warning("Cargo %s: %r is not a selected %s; ignored.", option, key,
                                   "tool" if option == "tool_inputs" else "play")
