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

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from cargo_gtm.download.outcomes import STATUS_COLUMN
from cargo_gtm.models import Batch

# NamespacedMetadataSet is not re-exported from the top-level ``dagster`` module in 1.13;
# this is where the official integrations (fivetran, airbyte…) import it from too.
from dagster._core.definitions.metadata.metadata_set import NamespacedMetadataSet

if TYPE_CHECKING:
    from cargo_gtm.credits import CreditSplit
    from cargo_gtm.estimate import CreditEstimate

__all__ = ["CargoMetadataSet", "column_schema_for", "batch_metadata", "table_metadata", "credits_by_node_metadata",
           "first_failure", "record_label", "status_counts", "with_output_node"]


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
    input_records: int | None = None
    failed_rows: int | None = None
    skipped_rows: int | None = None
    filtered_rows: int | None = None
    credits_used: float | None = None
    provider_credits: float | None = None
    execution_charge: float | None = None
    node_executions: int | None = None
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


def status_counts(frame: Any) -> dict[str, int]:
    """Rows per ``_status`` value (success, error, filtered, skipped, cancelled), in that order."""
    if STATUS_COLUMN not in getattr(frame, "columns", ()):
        return {"success": len(frame)} if len(frame) else {}
    counts = frame[STATUS_COLUMN].value_counts(dropna=False)
    order = ["success", "error", "filtered", "skipped", "cancelled"]
    out = {name: int(counts.get(name, 0)) for name in order}
    out.update({str(k): int(v) for k, v in counts.items() if str(k) not in out})
    return out


def batch_metadata(
    batches: Sequence[Batch],
    *,
    workflow_uuid: str,
    workflow_name: str | None,
    workflow_type: str | None,
    output_node_slug: str | None,
    batch_url: str | None,
    row_count: int,
    credits: CreditSplit | None = None,
    statuses: Mapping[str, int] | None = None,
) -> CargoMetadataSet:
    """The :class:`CargoMetadataSet` for finished batches (several when the input was chunked;
    none when there was nothing to run). Counters and credits are summed.

    ``credits`` (from ``runs/metrics``) splits the bill: ``provider_credits``, ``execution_charge``
    (``node_executions`` × 0.01) and their sum ``credits_used``; without it ``credits_used`` is the
    batches' ``creditsUsedCount``. ``statuses`` (rows per ``_status``) gives ``input_records``,
    ``failed_rows``, ``skipped_rows`` and ``filtered_rows``; ``credits_per_record`` is per succeeded record.
    """
    if not batches:
        return CargoMetadataSet(
            workflow_uuid=workflow_uuid, workflow_name=workflow_name, workflow_type=workflow_type,
            output_node_slug=output_node_slug, runs_count=0, executed_runs_count=0,
            failed_runs_count=0, input_records=0, failed_rows=0, skipped_rows=0, filtered_rows=0,
            credits_used=0.0, credits_per_record=0.0,
        )
    total = credits.total if credits is not None else float(sum(b.credits_used_count for b in batches))
    counts = dict(statuses or {})
    succeeded = counts.get("success", row_count if statuses is None else 0)
    return CargoMetadataSet(
        **_batch_fields(batches, batch_url),
        workflow_uuid=workflow_uuid,
        workflow_name=workflow_name,
        workflow_type=workflow_type,
        output_node_slug=output_node_slug,
        **_row_fields(statuses),
        **_credit_fields(credits),
        credits_used=round(total, 6),
        credits_per_record=round(total / succeeded, 6) if succeeded else None,
    )


def _batch_fields(batches: Sequence[Batch], batch_url: str | None) -> dict[str, Any]:
    """Which batches ran (one, or several of a chunked input), their status, counters and duration."""
    first = batches[0]
    several = len(batches) > 1
    durations = [b.duration_seconds for b in batches if b.duration_seconds is not None]
    statuses = {b.status.value for b in batches}
    return {
        "batch_uuid": first.uuid,
        "batch_uuids": ",".join(b.uuid for b in batches) if several else None,
        "batch_count": len(batches) if several else None,
        "batch_status": first.status.value if len(statuses) == 1 else ",".join(sorted(statuses)),
        "batch_url": dg.MetadataValue.url(batch_url) if batch_url else None,
        "runs_count": sum(b.runs_count for b in batches),
        "executed_runs_count": sum(b.executed_runs_count for b in batches),
        "failed_runs_count": sum(b.failed_runs_count for b in batches),
        "cargo_duration_seconds": max(durations) if durations else None,
    }


def _row_fields(statuses: Mapping[str, int] | None) -> dict[str, Any]:
    """Input records and failed/skipped/filtered rows from rows per ``_status`` (all None without them)."""
    if statuses is None:
        return dict.fromkeys(("input_records", "failed_rows", "skipped_rows", "filtered_rows"))
    return {"input_records": sum(statuses.values()), "failed_rows": statuses.get("error", 0),
            "skipped_rows": statuses.get("skipped", 0), "filtered_rows": statuses.get("filtered", 0)}


def _credit_fields(credits: CreditSplit | None) -> dict[str, Any]:
    """The bill split from ``runs/metrics`` (all None without it)."""
    if credits is None:
        return dict.fromkeys(("provider_credits", "execution_charge", "node_executions"))
    return {"provider_credits": round(credits.provider, 6), "execution_charge": credits.execution_charge,
            "node_executions": credits.executions}


def credits_by_node_metadata(provider_by_node: Mapping[str, float]) -> dict[str, Any]:
    """``dagster-cargo/provider_credits/<node slug>``: each node's **provider cost** (connector and agent
    nodes), as plottable floats. Nodes that cost nothing are left out; Cargo's execution charge belongs
    to no node (see ``dagster-cargo/execution_charge``)."""
    return {f"dagster-cargo/provider_credits/{slug}": dg.MetadataValue.float(round(total, 6))
            for slug, total in provider_by_node.items() if total}


def estimate_metadata(estimate: CreditEstimate, actual: float | None = None) -> dict[str, Any]:
    """Materialization metadata: the estimate beside the actual cost (``estimate_ratio`` = actual ÷ estimate)."""
    out: dict[str, Any] = {"dagster-cargo/estimate": dg.MetadataValue.text(estimate.describe())}
    if estimate.credits is not None:
        out["dagster-cargo/estimated_credits"] = dg.MetadataValue.float(estimate.credits)
        if actual is not None and estimate.credits > 0:
            out["dagster-cargo/estimate_ratio"] = dg.MetadataValue.float(round(actual / estimate.credits, 4))
    return out


_LABEL_COLUMNS = ("domain", "email", "linkedin_url", "name", "company_name")


def record_label(frame: Any, position: int) -> str:
    """Row ``position`` of an output frame named by its input, for a log line: a ``domain``/``email``/``name``
    column, else its first input column, else its record title, e.g. ``domain='acme.com'``; never Cargo's
    opaque record id alone."""
    row = frame.iloc[position]
    columns = [c for c in _LABEL_COLUMNS if c in frame.columns]
    columns += [c for c in frame.columns if not str(c).startswith("_") and c not in columns]
    columns += ["_title"] if "_title" in frame.columns else []
    for column in columns:
        value = row[column]
        if isinstance(value, str) and value or isinstance(value, numbers.Real) and value == value:  # not NaN
            name = "title" if column == "_title" else str(column)
            return f"{name}={value.item() if hasattr(value, 'item') else value!r}"
    return f"_id={row['_id']!r}" if "_id" in frame.columns else "a record"


def first_failure(frame: Any, error_column: str) -> str:
    """`` (first: domain='a.com', input row 3: "<Cargo's error>")`` for the first failed row, or nothing."""
    failed = frame.index[frame[STATUS_COLUMN] == "error"]
    if not len(failed):
        return ""
    position = int(frame.index.get_loc(failed[0]))
    error = frame[error_column].iloc[position] if error_column in frame.columns else None
    reason = f': "{error}"' if isinstance(error, str) and error else ""
    return f" (first: {record_label(frame, position)}, input row {position}{reason})"


def with_output_node(meta: CargoMetadataSet, ran_items: Sequence[Any], named: str | None,
                     release: Any, snapshot_slug: str | None, snapshot_release: str | None) -> CargoMetadataSet:
    """``meta`` with ``output_node_slug``: the node named by the caller, else the release's output node (the
    graph's last node: what Cargo's default export, each record's last executed node, reads for every record
    that ran to the end), when the batches (or single runs) in ``ran_items`` all ran that very release (the one
    read before the create, or the workspace snapshot's). Left out when that is not known or nothing ran."""
    if named or meta.output_node_slug:
        return meta if meta.output_node_slug else meta.model_copy(update={"output_node_slug": named})
    ran = {getattr(item, "release_uuid", None) for item in ran_items}
    slug = None
    if not ran_items:
        return meta
    if release is not None and ran == {release.uuid}:
        node = release.output_node()
        slug = node.slug if node is not None else None
    elif snapshot_slug and snapshot_release and ran == {snapshot_release}:
        slug = snapshot_slug
    return meta.model_copy(update={"output_node_slug": slug}) if slug else meta
