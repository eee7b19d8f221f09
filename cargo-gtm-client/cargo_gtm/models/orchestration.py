"""Orchestration models: batches, runs, metrics, workflows, releases, nodes, plays, tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from ._base import CargoModel, OpenStrEnum

__all__ = [
    "BatchStatus", "RunStatus", "ExecutionStatus", "BatchRunsStatus", "ReleaseStatus",
    "TERMINAL_BATCH_STATUSES", "TERMINAL_RUN_STATUSES", "Batch", "Execution", "Run", "RunMetric", "RunList",
    "Node", "Release", "ReleaseFormField", "WorkflowLastBatch", "DeployedRelease", "Workflow",
    "PlaySchedule", "Play", "Tool",
]


class BatchStatus(OpenStrEnum):
    """Batch states (REFERENCE §9.1, §10.1). Unknown values parse with ``is_known=False``."""

    PENDING = "pending"
    SYNCING = "syncing"
    SKIPPED = "skipped"
    QUERYING = "querying"
    RUNNING = "running"
    SUCCESS = "success"
    CANCELLING = "cancelling"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Known terminal state. An unknown status is never terminal (and never success)."""
        return self in TERMINAL_BATCH_STATUSES


TERMINAL_BATCH_STATUSES = frozenset(
    {BatchStatus.SUCCESS, BatchStatus.ERROR, BatchStatus.CANCELLED, BatchStatus.SKIPPED}
)


class BatchRunsStatus(OpenStrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class RunStatus(OpenStrEnum):
    IDLE = "idle"
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


TERMINAL_RUN_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.SKIPPED})


class ExecutionStatus(OpenStrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    ERROR = "error"


class ReleaseStatus(OpenStrEnum):
    DRAFT = "draft"
    DEPLOYED = "deployed"
    ARCHIVED = "archived"


class Batch(CargoModel):
    """A batch: one workflow run over many records (REFERENCE §9.1)."""

    uuid: str
    workspace_uuid: str | None = None
    workflow_uuid: str
    user_uuid: str | None = None
    release_uuid: str | None = None
    nodes: list[dict[str, Any]] | None = None
    temporal_workflow_id: str | None = None
    trace_uuid: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    error_message: str | None = None
    status: BatchStatus
    runs_status: BatchRunsStatus | None = None
    runs_count: int = 0
    executed_runs_count: int = 0
    failed_runs_count: int = 0
    credits_used_count: float = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def data_kind(self) -> str | None:
        """The batch input kind (``segment``, ``filter``, ``records``…)."""
        kind = self.data.get("kind")
        return kind if isinstance(kind, str) else None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def succeeded_runs_count(self) -> int:
        return max(self.executed_runs_count - self.failed_runs_count, 0)

    @property
    def duration_seconds(self) -> float | None:
        if self.created_at and self.finished_at:
            return (self.finished_at - self.created_at).total_seconds()
        return None


class Execution(CargoModel):
    """One node's execution inside a run (REFERENCE §9.2)."""

    node_uuid: str
    node_slug: str
    node_kind: str | None = None
    status: ExecutionStatus
    error_message: str | None = None
    title: str | None = None
    credits_used_count: float = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    next_node_uuid: str | None = None


class Run(CargoModel):
    """One workflow execution for one input record (REFERENCE §9.2)."""

    uuid: str
    workflow_uuid: str
    batch_uuid: str | None = None
    release_uuid: str | None = None
    record_id: str | None = None
    record_title: str | None = None
    status: RunStatus
    error_message: str | None = None
    executions: list[Execution] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def credits_used_count(self) -> float:
        return sum(e.credits_used_count for e in self.executions)

    # A run read as a batch of one, so that one polling loop, progress log and budget serve both
    # (:mod:`cargo_gtm.running.step`). ``executedRunsCount`` counts ``success`` and ``error`` only (CARGO-DOCS 4.4).
    @property
    def is_terminal(self) -> bool:
        """Known terminal state (an unknown status is never terminal)."""
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def runs_count(self) -> int:
        return 1

    @property
    def executed_runs_count(self) -> int:
        return 1 if self.status in (RunStatus.SUCCESS, RunStatus.ERROR) else 0

    @property
    def failed_runs_count(self) -> int:
        return 1 if self.status == RunStatus.ERROR else 0

    @property
    def succeeded_runs_count(self) -> int:
        return 1 if self.status == RunStatus.SUCCESS else 0

    @property
    def duration_seconds(self) -> float | None:
        if self.created_at and self.finished_at:
            return (self.finished_at - self.created_at).total_seconds()
        return None


class RunList(CargoModel):
    runs: list[Run]
    count: int


class RunMetric(CargoModel):
    """Per-node execution counts and credits (REFERENCE §9.3)."""

    node_uuid: str
    total_executions_count: int = 0
    idle_executions_count: int = 0
    pending_executions_count: int = 0
    running_executions_count: int = 0
    success_executions_count: int = 0
    error_executions_count: int = 0
    cancelling_executions_count: int = 0
    cancelled_executions_count: int = 0
    skipped_executions_count: int = 0
    credits_used_count: float = 0


class Node(CargoModel):
    """A workflow step (REFERENCE §9.5). ``slug`` is what ``outputNodeSlug`` refers to."""

    uuid: str
    slug: str
    kind: str
    name: str | None = None
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    children_uuids: list[str | None] = Field(default_factory=list)
    fallback_on_failure: bool = False
    action_slug: str | None = None
    integration_slug: str | None = None


class ReleaseFormField(CargoModel):
    slug: str
    name: str | None = None
    kind: str | None = None
    description: str | None = None
    is_required: bool | None = None


class Release(CargoModel):
    """A workflow version (REFERENCE §9.7)."""

    uuid: str
    workflow_uuid: str
    parent_uuid: str | None = None
    description: str | None = None
    version: str | None = None
    status: ReleaseStatus
    nodes: list[Node] = Field(default_factory=list)
    form_fields: list[ReleaseFormField] | None = None
    test_records: list[dict[str, Any]] = Field(default_factory=list)
    deployed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def output_node(self) -> Node | None:
        """The node whose data a batch download returns: the last leaf of the graph.

        The graph is a tree rooted at the node no other node points to; the output node is
        the leaf reached by following the first child from the root.
        """
        if not self.nodes:
            return None
        by_uuid = {n.uuid: n for n in self.nodes}
        children = {c for n in self.nodes for c in n.children_uuids if c}
        roots = [n for n in self.nodes if n.uuid not in children]
        node = roots[0] if roots else self.nodes[0]
        seen: set[str] = set()
        while node.uuid not in seen:
            seen.add(node.uuid)
            nxt = next((by_uuid[c] for c in node.children_uuids if c and c in by_uuid), None)
            if nxt is None:
                return node
            node = nxt
        return node


class WorkflowLastBatch(CargoModel):
    uuid: str
    status: BatchStatus
    runs_status: BatchRunsStatus | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


class DeployedRelease(CargoModel):
    uuid: str
    version: str | None = None
    description: str | None = None
    nodes: list[Node] = Field(default_factory=list)
    form_fields: list[ReleaseFormField] | None = None
    deployed_at: datetime | None = None
    created_at: datetime | None = None


class Workflow(CargoModel):
    """A workflow; it belongs to a play (``play_uuid``) or a tool (``tool_uuid``)."""

    uuid: str
    workspace_uuid: str | None = None
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    play_uuid: str | None = None
    tool_uuid: str | None = None
    folder_uuid: str | None = None
    last_batch: WorkflowLastBatch | None = None
    deployed_release: DeployedRelease | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class PlaySchedule(CargoModel):
    type: str
    cron: str | None = None


class Play(CargoModel):
    """A model-bound, segment-driven workflow (REFERENCE §9.8)."""

    uuid: str
    workspace_uuid: str | None = None
    workflow_uuid: str
    model_uuid: str
    segment_uuid: str
    name: str
    description: str | None = None
    change_kinds: list[str] = Field(default_factory=list)
    run_creation_rule: str | None = None
    schedule: PlaySchedule | None = None
    is_enabled: bool = False
    health_threshold: float | None = None
    folder_uuid: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class Tool(CargoModel):
    """An on-demand workflow taking form-shaped records (REFERENCE §9.9)."""

    uuid: str
    workspace_uuid: str | None = None
    workflow_uuid: str
    name: str
    description: str | None = None
    icon: dict[str, Any] | None = None
    credits_cost: dict[str, Any] | None = None
    is_read_only: bool = False
    folder_uuid: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
