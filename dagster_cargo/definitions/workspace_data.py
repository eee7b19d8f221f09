"""A snapshot of a Cargo workspace's plays and tools, fetched once per code-location load.

Three API calls build it (plays, tools, workflows: each workflow carries its deployed
release, so output node slugs need no per-workflow call). It round-trips through JSON so
it can be stored as Dagster reconstruction metadata (run workers make no API call) or in
an offline snapshot file written by ``dagster-cargo snapshot``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from cargo_gtm import CargoClient
from cargo_gtm.models import Play, Release, Tool, Workflow
from pydantic import BaseModel, Field, ValidationError

__all__ = ["CargoWorkflowProps", "CargoWorkspaceData", "fetch_workspace_data", "props_from", "WorkflowSelector"]

logger = logging.getLogger("dagster_cargo")

WorkflowType = Literal["play", "tool"]


class CargoWorkflowProps(BaseModel):
    """What the translator knows about one play or tool."""

    type: WorkflowType
    uuid: str
    name: str
    workflow_uuid: str
    description: str | None = None
    model_uuid: str | None = None
    segment_uuid: str | None = None
    output_node_slug: str | None = None
    node_slugs: list[str] = Field(default_factory=list)
    form_field_slugs: list[str] = Field(default_factory=list)
    schedule_type: str | None = None
    is_enabled: bool | None = None
    folder_uuid: str | None = None
    # input checks before any credit is spent (None: not in this snapshot, fetched once at run time)
    required_form_field_slugs: list[str] | None = None
    model_columns: dict[str, str] | None = None
    release_uuid: str | None = None
    release_version: str | None = None

    @property
    def code_version(self) -> str | None:
        """The asset's code version: the workflow's deployed release (``v<version>:<release uuid>``),
        so a redeploy in Cargo shows as "code version changed" once the state is refreshed. None
        when the workflow has no deployed release."""
        if not self.release_uuid:
            return None
        return f"v{self.release_version}:{self.release_uuid}" if self.release_version else self.release_uuid

    @property
    def selector_keys(self) -> set[str]:
        return {self.name, self.uuid, self.workflow_uuid}


class CargoWorkspaceData(BaseModel):
    """Plays and tools of one workspace, with the data needed to build and run assets."""

    base_url: str
    workspace_uuid: str | None = None
    fetched_at: datetime
    workflows: list[CargoWorkflowProps] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)

    def select(self, selector: WorkflowSelector | None) -> list[CargoWorkflowProps]:
        return [w for w in self.workflows if _matches(w, selector)]

    def get(self, name_or_uuid: str) -> CargoWorkflowProps:
        for workflow in self.workflows:
            if name_or_uuid in workflow.selector_keys:
                return workflow
        raise KeyError(name_or_uuid)

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> CargoWorkspaceData:
        return cls.model_validate_json(text)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, path: str | Path) -> CargoWorkspaceData:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


WorkflowSelector = Callable[[CargoWorkflowProps], bool] | Sequence[str]


def _matches(workflow: CargoWorkflowProps, selector: WorkflowSelector | None) -> bool:
    if selector is None:
        return True
    if callable(selector):
        return bool(selector(workflow))
    return bool(workflow.selector_keys & set(selector))


def _release_facts(release: Any) -> tuple[str | None, list[str]]:
    if release is None:
        return None, []
    parsed = Release.model_validate({"uuid": release.uuid, "workflowUuid": "", "status": "deployed",
                                     "nodes": [n.model_dump(by_alias=True) for n in release.nodes]})
    node = parsed.output_node()
    return (node.slug if node else None), [n.slug for n in parsed.nodes]


def props_from(item: Play | Tool, workflow: Workflow | None = None) -> CargoWorkflowProps:
    """The one Play/Tool → :class:`CargoWorkflowProps` converter (workspace snapshots and the resource).

    ``workflow`` (with its deployed release) adds the output node, node slugs, form fields and release;
    without it those stay unknown (``required_form_field_slugs=None``: fetched once at run time).
    """
    release = workflow.deployed_release if workflow else None
    output_slug, slugs = _release_facts(release)
    form_fields = (release.form_fields or []) if release else []
    common: dict[str, Any] = dict(
        uuid=item.uuid, name=item.name, workflow_uuid=item.workflow_uuid, description=item.description,
        output_node_slug=output_slug, node_slugs=slugs, folder_uuid=item.folder_uuid,
        release_uuid=release.uuid if release else None, release_version=release.version if release else None)
    if isinstance(item, Play):
        return CargoWorkflowProps(
            type="play", model_uuid=item.model_uuid, segment_uuid=item.segment_uuid,
            schedule_type=item.schedule.type if item.schedule else None, is_enabled=item.is_enabled, **common)
    return CargoWorkflowProps(
        type="tool", form_field_slugs=[f.slug for f in form_fields],
        required_form_field_slugs=[f.slug for f in form_fields if f.is_required] if workflow else None, **common)


def _parse_each(raw: Iterable[dict[str, Any]], model: type[Any], what: str, skipped: list[str]) -> list[Any]:
    parsed = []
    for item in raw:
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as exc:
            label = item.get("name") or item.get("uuid") or "?"
            message = f"Skipping unreadable Cargo {what} {label!r}: {exc.error_count()} validation error(s)"
            logger.warning(message)
            skipped.append(message)
    return parsed


def fetch_workspace_data(client: CargoClient) -> CargoWorkspaceData:
    """Fetch plays, tools and workflows (3 calls). One unreadable item is skipped with a
    warning instead of failing the whole code location."""
    skipped: list[str] = []
    # raw JSON, so one bad item cannot fail the whole list
    plays = _parse_each(client.raw_json("GET", "/orchestration/plays/list")["plays"], Play, "play", skipped)
    tools = _parse_each(client.raw_json("GET", "/orchestration/tools/list")["tools"], Tool, "tool", skipped)
    workflows = _parse_each(client.raw_json("GET", "/orchestration/workflows/list")["workflows"],
                            Workflow, "workflow", skipped)
    by_uuid = {w.uuid: w for w in workflows}
    props: list[CargoWorkflowProps] = []
    for item in [*plays, *tools]:
        try:
            props.append(props_from(item, by_uuid.get(item.workflow_uuid)))
        except (ValidationError, ValueError, KeyError) as exc:
            message = f"Skipping Cargo {type(item).__name__.lower()} {item.name!r}: {exc}"
            logger.warning(message)
            skipped.append(message)
    return CargoWorkspaceData(
        base_url=client.base_url, workspace_uuid=client.workspace_uuid,
        fetched_at=datetime.now(timezone.utc), workflows=props, skipped=skipped,
    )
