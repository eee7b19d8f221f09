"""Segmentation and storage models: segments, changes, columns, models, datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from ._base import CargoModel, OpenStrEnum

__all__ = [
    "ChangeKind", "ColumnType", "Column", "SegmentLastChange", "Segment", "Change",
    "SegmentFetchResult", "ModelColumn", "Model", "Dataset",
]


class ChangeKind(OpenStrEnum):
    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"
    UNCHANGED = "unchanged"


class ColumnType(OpenStrEnum):
    STRING = "string"
    NUMBER = "number"
    OBJECT = "object"
    ARRAY = "array"
    DATE = "date"
    BOOLEAN = "boolean"
    VECTOR = "vector"
    ANY = "any"


class Column(CargoModel):
    slug: str
    type: ColumnType
    label: str | None = None
    model_uuid: str | None = None


class SegmentLastChange(CargoModel):
    """A change's identity and record counts, as embedded in a segment (``lastChange``)."""

    uuid: str
    slug: str | None = None
    total_records_count: int = 0
    added_records_count: int = 0
    updated_records_count: int = 0
    removed_records_count: int = 0
    unchanged_records_count: int = 0
    created_at: datetime | None = None


class Segment(CargoModel):
    """A saved filter over a model (REFERENCE §9.11)."""

    uuid: str
    workspace_uuid: str | None = None
    model_uuid: str
    slug: str | None = None
    name: str
    filter: dict[str, Any] = Field(default_factory=dict)
    sort: list[dict[str, Any]] | None = None
    limit: int | None = None
    records_count: int = 0
    from_play: bool = False
    tracking_column_slugs: list[str] | None = None
    column_slugs: list[str] | None = None
    synced_at: datetime | None = None
    last_change: SegmentLastChange | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class Change(SegmentLastChange):
    """A snapshot diff of a segment (REFERENCE §9.11): the embedded fields plus its owners."""

    workspace_uuid: str | None = None
    segment_uuid: str


class SegmentFetchResult(CargoModel):
    records: list[dict[str, Any]]
    count: int
    columns: list[Column] = Field(default_factory=list)
    is_refreshing: bool = False


class ModelColumn(CargoModel):
    slug: str
    type: ColumnType
    label: str | None = None
    kind: str | None = None


class Model(CargoModel):
    """A storage model (a table of records, REFERENCE §9.14)."""

    uuid: str
    workspace_uuid: str | None = None
    slug: str
    name: str
    description: str | None = None
    dataset_uuid: str | None = None
    kind: str | None = None
    columns: list[ModelColumn] = Field(default_factory=list)
    additional_columns: list[ModelColumn] = Field(default_factory=list)
    id_column_slug: str | None = None
    title_column_slug: str | None = None
    time_column_slug: str | None = None
    plays_count: int = 0
    segments_count: int = 0
    is_paused: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Dataset(CargoModel):
    uuid: str
    workspace_uuid: str | None = None
    slug: str
    kind: str | None = None
    created_at: datetime | None = None
