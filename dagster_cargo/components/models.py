"""The YAML shapes of :class:`~dagster_cargo.components.CargoWorkspaceComponent` and how they
resolve to Python objects (``CargoResource``, a workflow selector, ``CargoCheckConfig``, sensors).
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg
import pydantic
from dagster.components.resolved.base import resolve_fields
from dagster_shared import check

from ..definitions.checks import CargoCheckConfig
from ..definitions.workspace_data import CargoWorkflowProps
from ..running.resource import CargoResource

__all__ = [
    "CargoChangeSensorArgs",
    "CargoChecksArgs",
    "CargoObservationSensorArgs",
    "CargoSelectByName",
    "CargoSelectByUuid",
    "CargoWorkflowSelection",
    "CargoWorkspaceArgs",
    "resolve_checks",
    "resolve_observation_sensor",
    "resolve_selection",
    "resolve_workspace",
]


def _workspace_args_fields() -> dict[str, Any]:
    """One optional YAML field per ``CargoResource`` field (same name, type and description), so
    the YAML schema follows the resource as it grows. ``api_token`` stays required."""
    fields: dict[str, Any] = {}
    for name, info in CargoResource.model_fields.items():
        annotation: Any = info.annotation
        default = ... if info.is_required() else None  # unset → the resource's own default
        if not info.is_required():
            annotation = annotation | None
        fields[name] = (annotation, pydantic.Field(default=default, description=info.description))
    return fields


_BASES: Any = (dg.Resolvable, dg.Model)
CargoWorkspaceArgs: Any = pydantic.create_model(
    "CargoWorkspaceArgs",
    __base__=_BASES,
    __doc__="The ``workspace:`` block: the fields of :class:`~dagster_cargo.CargoResource`.",
    **_workspace_args_fields(),
)

# "{{ env.NAME }}" or "{{ env('NAME') }}", and nothing else in the string
_ENV_TEMPLATE = re.compile(r"""^\s*\{\{\s*env(?:\.(\w+)|\(\s*['"](\w+)['"]\s*\))\s*\}\}\s*$""")


def _token(raw: Any, context: dg.ResolutionContext) -> Any:
    """A token written as a bare env template becomes ``dg.EnvVar``: the secret is read where it
    is used and the Dagster UI shows the variable's name, never the token itself."""
    match = _ENV_TEMPLATE.match(raw) if isinstance(raw, str) else None
    if match:
        return dg.EnvVar(match.group(1) or match.group(2))
    return context.resolve_value(raw, as_type=str)


#: string fields written as a bare ``"{{ env.NAME }}"`` that become ``dg.EnvVar``: read where they are used (an
#: unset variable then means the field's default, see dagster_cargo.running.settings), shown by name in the UI
_ENV_FIELDS = ("api_token", "base_url", "workspace_uuid", "batch_url_template")


def resolve_workspace(context: dg.ResolutionContext, model: Any) -> CargoResource:
    kwargs = {k: v for k, v in resolve_fields(model, CargoWorkspaceArgs, context).items() if v is not None}
    for name in _ENV_FIELDS:
        raw = getattr(model, name, None)
        if raw is not None:
            kwargs[name] = _token(raw, context.at_path(name))
    return CargoResource(**kwargs)


class CargoSelectByName(dg.Resolvable, dg.Model):
    by_name: Sequence[str] = pydantic.Field(description="Names of the plays and tools to load.")


class CargoSelectByUuid(dg.Resolvable, dg.Model):
    by_uuid: Sequence[str] = pydantic.Field(
        description="UUIDs of the plays and tools to load (play/tool UUID or their workflow UUID)."
    )


@dataclass(frozen=True)
class CargoWorkflowSelection:
    """A list of names or UUIDs; remembers which were asked for so typos can be reported."""

    wanted: tuple[str, ...]
    by: Literal["name", "uuid"]

    def __call__(self, props: CargoWorkflowProps) -> bool:
        keys = {props.name} if self.by == "name" else {props.uuid, props.workflow_uuid}
        return bool(keys & set(self.wanted))

    def unmatched(self, workflows: Sequence[CargoWorkflowProps]) -> list[str]:
        found = {k for w in workflows if self(w) for k in (w.name, w.uuid, w.workflow_uuid)}
        return [w for w in self.wanted if w not in found]


def resolve_selection(context: dg.ResolutionContext, model: Any) -> Callable[[CargoWorkflowProps], bool] | None:
    if model is None:
        return None
    if isinstance(model, str):  # "{{ my_predicate }}" from template vars: a callable on props
        predicate = context.resolve_value(model)
        if not callable(predicate):
            raise TypeError(f"selection: {model!r} must resolve to a callable on CargoWorkflowProps")
        return predicate
    if isinstance(model, CargoSelectByName.model()):
        names = resolve_fields(model, CargoSelectByName, context)["by_name"]
        return CargoWorkflowSelection(tuple(names), "name")
    if isinstance(model, CargoSelectByUuid.model()):
        uuids = resolve_fields(model, CargoSelectByUuid, context)["by_uuid"]
        return CargoWorkflowSelection(tuple(uuids), "uuid")
    check.failed(f"Unknown selection: {model!r}")


class CargoChecksArgs(dg.Resolvable, dg.Model):
    """Thresholds of the Cargo asset checks (see :class:`~dagster_cargo.CargoCheckConfig`)."""

    failed_ratio_warn: float = pydantic.Field(default=0.05, description="Failed/executed runs at or above → WARN.")
    failed_ratio_error: float = pydantic.Field(default=0.25, description="Failed/executed runs at or above → ERROR.")
    max_credits_per_record: float | None = pydantic.Field(
        default=None, description="Credits per output row above this → ERROR (unset: no cost check)."
    )


def resolve_checks(context: dg.ResolutionContext, model: Any) -> CargoCheckConfig | None:
    if model is None or model is False:
        return None
    if model is True:
        return CargoCheckConfig()
    return CargoCheckConfig(**resolve_fields(model, CargoChecksArgs, context))


SensorStatus = Literal["running", "stopped"]


class CargoChangeSensorArgs(dg.Resolvable, dg.Model):
    """Run a play over each new change of a segment (see ``build_cargo_change_sensor``)."""

    segment: str = pydantic.Field(description="Segment to watch: its name or UUID.")
    play: str = pydantic.Field(description="Play to run over the changed records: its name or UUID (must be selected).")
    name: str | None = pydantic.Field(default=None, description="Sensor name (default: <resource_key>_<play>_on_<segment>, e.g. cargo_score_inbound_companies_on_icp_companies).")
    change_kinds: list[str] = pydantic.Field(default=["added", "updated"], description="Change kinds to enrol.")
    start_from: Literal["latest", "beginning"] = pydantic.Field(
        default="latest", description="'latest': start with the next change; 'beginning': enrol existing changes too."
    )
    minimum_interval_seconds: int = pydantic.Field(default=60, description="Seconds between ticks.")
    max_runs_per_tick: int = pydantic.Field(default=25, description="At most this many runs per tick.")
    default_status: SensorStatus = pydantic.Field(default="stopped", description="Initial sensor status.")


class CargoObservationSensorArgs(dg.Resolvable, dg.Model):
    """Record batches that Cargo ran on its own as materializations (see ``build_cargo_observation_sensor``)."""

    name: str | None = pydantic.Field(default=None, description="Sensor name (default: <resource_key>_observation_sensor).")
    minimum_interval_seconds: int = pydantic.Field(default=120, description="Seconds between ticks.")
    start_from: Literal["latest", "beginning"] = pydantic.Field(
        default="latest", description="'latest': only batches after the first tick; 'beginning': all batches."
    )
    default_status: SensorStatus = pydantic.Field(default="stopped", description="Initial sensor status.")


def resolve_observation_sensor(context: dg.ResolutionContext, model: Any) -> "CargoObservationSensorArgs | None":
    if model is None or model is False:
        return None
    if model is True:
        return CargoObservationSensorArgs()
    return CargoObservationSensorArgs(**resolve_fields(model, CargoObservationSensorArgs, context))


def sensor_status(value: SensorStatus) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if value == "running" else dg.DefaultSensorStatus.STOPPED
