"""Typed pydantic models of Cargo's API objects.

Parsing is tolerant by design: unknown fields are kept (``model_extra``) and unknown
enum values become pseudo-members with ``is_known == False``.
"""

from ._base import CargoModel, OpenStrEnum
from .billing import Subscription, UsageItem, UsageMetric, UsageUnit, User, Workspace
from .orchestration import (
    TERMINAL_BATCH_STATUSES,
    TERMINAL_RUN_STATUSES,
    Batch,
    BatchRunsStatus,
    BatchStatus,
    DeployedRelease,
    Execution,
    ExecutionStatus,
    Node,
    Play,
    PlaySchedule,
    Release,
    ReleaseFormField,
    ReleaseStatus,
    Run,
    RunList,
    RunMetric,
    RunStatus,
    Tool,
    Workflow,
    WorkflowLastBatch,
)
from .segmentation import (
    Change,
    ChangeKind,
    Column,
    ColumnType,
    Dataset,
    Model,
    ModelColumn,
    Segment,
    SegmentFetchResult,
    SegmentLastChange,
)

__all__ = [
    "CargoModel", "OpenStrEnum",
    "Subscription", "UsageItem", "UsageMetric", "UsageUnit", "User", "Workspace",
    "TERMINAL_BATCH_STATUSES", "TERMINAL_RUN_STATUSES", "Batch", "BatchRunsStatus", "BatchStatus", "DeployedRelease",
    "Execution", "ExecutionStatus", "Node", "Play", "PlaySchedule", "Release", "ReleaseFormField",
    "ReleaseStatus", "Run", "RunList", "RunMetric", "RunStatus", "Tool", "Workflow", "WorkflowLastBatch",
    "Change", "ChangeKind", "Column", "ColumnType", "Dataset", "Model", "ModelColumn", "Segment",
    "SegmentFetchResult", "SegmentLastChange",
]
