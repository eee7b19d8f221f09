"""Materialization metadata for Cargo batches.

Two sets of keys:

* Dagster's standard ``dagster/row_count`` and ``dagster/column_schema``;
* :class:`CargoMetadataSet`, namespaced ``dagster-cargo/…``: batch UUID, workflow, counts,
  credits, durations and a link to the batch in Cargo's web app. Numbers are stored as
  numbers so the Dagster UI plots them across materializations; keys that would be constant
  (one batch, a node that costs nothing) are left out so no plot is a flat line. Units are in
  the key names: ``credits``, ``seconds``, ``count``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

# NamespacedMetadataSet is not re-exported from the top-level ``dagster`` module in 1.13;
# this is where the official integrations (fivetran, airbyte…) import it from too.
from dagster._core.definitions.metadata.metadata_set import NamespacedMetadataSet

from .client.models import Batch

__all__ = ["CargoMetadataSet", "column_schema_for", "batch_metadata", "table_metadata", "credits_by_node_metadata"]


class CargoMetadataSet(NamespacedMetadataSet):
    """Cargo metadata attached to every materialization (namespace ``dagster-cargo``).

    Example:
        >>> md = CargoMetadataSet(batch_uuid="b-1", credits_used=12.0, runs_count=3)
        >>> dict(md)["dagster-cargo/credits_used"]
        12.0
    """

    batch_uuid: str | None = None
    batch_uuids: str | None = None
    batch_count: int | None = None
    batch_status: str | None = None
    batch_url: dg.UrlMetadataValue | None = None
    workflow_uuid: str | None = None
    workflow_name: str | None = None
    workflow_type: str | None = None
    output_node_slug: str | None = None
    runs_count: int | None = None
    executed_runs_count: int | None = None
    failed_runs_count: int | None = None
    credits_used: float | None = None
    credits_per_record: float | None = None
    credits_remaining: float | None = None
    cargo_duration_seconds: float | None = None
    wall_clock_seconds: float | None = None

    @classmethod
    def namespace(cls) -> str:
        return "dagster-cargo"


_DTYPE_NAMES = {"b": "boolean", "i": "integer", "u": "integer", "f": "float", "M": "datetime", "m": "timedelta"}


_COLUMN_DESCRIPTIONS = {
    "_id": "Cargo's record id (internal to Cargo; stable across runs of the same record).",
    "_title": "Cargo's record title (internal to Cargo; display name of the record).",
}


def _column_description(name: str) -> str | None:
    if name in _COLUMN_DESCRIPTIONS:
        return _COLUMN_DESCRIPTIONS[name]
    if name.startswith("output."):
        return f"Output field {name[7:]!r}, renamed because an input field has the same name."
    return None


def column_schema_for(frame: Any) -> dg.TableSchema:
    """A :class:`dagster.TableSchema` describing a DataFrame's columns and types (with a
    description for Cargo's internal ``_id``/``_title`` columns and renamed output fields)."""
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = getattr(dtype, "kind", "O")
        type_name = _DTYPE_NAMES.get(kind, "string" if str(dtype) in ("object", "str", "string") else str(dtype))
        columns.append(dg.TableColumn(name=str(name), type=type_name, description=_column_description(str(name))))
    return dg.TableSchema(columns=columns)


def table_metadata(frame: Any) -> dict[str, Any]:
    """``dagster/row_count`` and ``dagster/column_schema`` for a DataFrame."""
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "dagster/column_schema": column_schema_for(frame),
    }


def batch_metadata(
    batches: Sequence[Batch],
    *,
    workflow_uuid: str,
    workflow_name: str | None,
    workflow_type: str | None,
    output_node_slug: str | None,
    batch_url: str | None,
    row_count: int,
) -> CargoMetadataSet:
    """The :class:`CargoMetadataSet` for finished batches (several when the input was chunked;
    none when there was nothing to run). Counters and credits are summed."""
    if not batches:
        return CargoMetadataSet(
            workflow_uuid=workflow_uuid, workflow_name=workflow_name, workflow_type=workflow_type,
            output_node_slug=output_node_slug, runs_count=0, executed_runs_count=0,
            failed_runs_count=0, credits_used=0.0, credits_per_record=0.0,
        )
    first = batches[0]
    credits = float(sum(b.credits_used_count for b in batches))
    durations = [b.duration_seconds for b in batches if b.duration_seconds is not None]
    statuses = {b.status.value for b in batches}
    return CargoMetadataSet(
        batch_uuid=first.uuid,
        batch_uuids=",".join(b.uuid for b in batches) if len(batches) > 1 else None,
        batch_count=len(batches) if len(batches) > 1 else None,  # 1 on nearly every run: no flat plot
        batch_status=first.status.value if len(statuses) == 1 else ",".join(sorted(statuses)),
        batch_url=dg.MetadataValue.url(batch_url) if batch_url else None,
        workflow_uuid=workflow_uuid,
        workflow_name=workflow_name,
        workflow_type=workflow_type,
        output_node_slug=output_node_slug,
        runs_count=sum(b.runs_count for b in batches),
        executed_runs_count=sum(b.executed_runs_count for b in batches),
        failed_runs_count=sum(b.failed_runs_count for b in batches),
        credits_used=credits,
        credits_per_record=round(credits / row_count, 6) if row_count else None,
        cargo_duration_seconds=max(durations) if durations else None,
    )


def credits_by_node_metadata(metrics: Any, slugs_by_uuid: dict[str, str]) -> dict[str, Any]:
    """``dagster-cargo/credits/<node slug>``: credits per workflow node, as plottable floats.

    Metrics of several batches (a fan-out) are summed per node.
    """
    totals: dict[str, float] = {}
    for metric in metrics:
        slug = slugs_by_uuid.get(metric.node_uuid, metric.node_uuid)
        totals[slug] = totals.get(slug, 0.0) + float(metric.credits_used_count)
    # nodes that cost nothing (native nodes) would only add always-zero plots
    return {f"dagster-cargo/credits/{slug}": dg.MetadataValue.float(total) for slug, total in totals.items()
            if total}
