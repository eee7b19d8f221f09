"""Materialization metadata for Cargo batches.

Two sets of keys:

* Dagster's standard ``dagster/row_count`` and ``dagster/column_schema``;
* :class:`CargoMetadataSet`, namespaced ``dagster-cargo/…``: batch UUID, workflow, counts,
  credits, durations and a link to the batch in Cargo's web app. Units are in the key names:
  ``credits``, ``seconds``, ``count``.

What the asset page plots: Dagster 1.13 draws one plot per ``IntMetadataValue``/``FloatMetadataValue`` key of
an asset's materializations (the webserver's asset Plots tab keeps the entries whose type is
``IntMetadataEntry`` or ``FloatMetadataEntry``); text, JSON, URL and bool values are shown, never plotted. So
the figures that carry signal from run to run are numbers: the credits (``credits_used``, its split,
``credits_per_record``, per node), ``failed_ratio`` and the seconds (``wall_clock_seconds``: time to result).
The counts (input records, runs, rows per status, node executions, batches: :data:`COUNT_FIELDS`) restate the
input's size, flat for a play run at a fixed limit, and ``dagster/row_count`` plots that size already: they are
recorded together in one JSON entry, ``dagster-cargo/counts`` (:data:`COUNTS_KEY`), as integers. Keys that
would be constant (one batch, a node that costs nothing) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from cargo_gtm.models import Batch
from cargo_gtm.running import status_counts, step_metadata

# NamespacedMetadataSet is not re-exported from the top-level ``dagster`` module in 1.13;
# this is where the official integrations (fivetran, airbyte…) import it from too.
from dagster._core.definitions.metadata.metadata_set import NamespacedMetadataSet

if TYPE_CHECKING:
    from cargo_gtm.credits import CreditSplit
    from cargo_gtm.estimate import CreditEstimate

__all__ = ["COUNTS_KEY", "COUNT_FIELDS", "CargoMetadataSet", "column_schema_for", "batch_metadata", "count_of",
           "table_metadata", "credits_by_node_metadata", "dagster_metadata", "status_counts", "with_output_node"]

#: The one JSON entry holding a materialization's counts (shown on the asset page, not plotted).
COUNTS_KEY = "dagster-cargo/counts"
#: The :class:`CargoMetadataSet` fields recorded in :data:`COUNTS_KEY` rather than as plotted numbers of their own.
COUNT_FIELDS = ("input_records", "runs_count", "executed_runs_count", "failed_runs_count", "failed_rows",
                "skipped_rows", "filtered_rows", "node_executions", "batch_count")


class CargoMetadataSet(NamespacedMetadataSet):
    """Cargo metadata attached to every materialization (namespace ``dagster-cargo``).

    The fields in :data:`COUNT_FIELDS` are attributes like the others, but go into the materialization as one JSON
    entry, ``dagster-cargo/counts``, so that the asset page plots no flat line of them; :meth:`extract` reads
    them back (from materializations recorded before, as numbers of their own, too).

    Example:
        >>> md = CargoMetadataSet(batch_uuid="b-1", credits_used=12.0, runs_count=3, input_records=3)
        >>> meta = dict(md)
        >>> meta["dagster-cargo/credits_used"], meta["dagster-cargo/counts"].value
        (12.0, {'input_records': 3, 'runs_count': 3})
        >>> CargoMetadataSet.extract(meta).runs_count
        3
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
    #: failed rows ÷ input records, plotted on the asset page (``failed_rows`` alone moves with the input's size)
    failed_ratio: float | None = None
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

    @property
    def counts(self) -> dict[str, int]:
        """The counts that are set, in :data:`COUNT_FIELDS` order (the value of ``dagster-cargo/counts``)."""
        return {name: getattr(self, name) for name in COUNT_FIELDS if getattr(self, name) is not None}

    def keys(self) -> list[str]:  # type: ignore[override]
        """The metadata keys: the set fields, the counts as one ``dagster-cargo/counts`` where the first was."""
        out: list[str] = []
        for key in super().keys():
            if key.split("/", 1)[1] not in COUNT_FIELDS:
                out.append(key)
            elif COUNTS_KEY not in out:
                out.append(COUNTS_KEY)
        return out

    def __getitem__(self, key: str) -> Any:
        if key == COUNTS_KEY:
            return dg.MetadataValue.json(self.counts)
        return super().__getitem__(key)

    @classmethod
    def extract(cls, values: Mapping[str, Any]) -> CargoMetadataSet:
        """The set recorded in a materialization's metadata, counts included (from ``dagster-cargo/counts``, or
        from keys of their own in materializations recorded before)."""
        counts = values.get(COUNTS_KEY)
        counts = getattr(counts, "value", counts)
        flat = {f"dagster-cargo/{k}": v for k, v in (counts or {}).items() if k in COUNT_FIELDS}
        return super().extract({**flat, **{k: v for k, v in values.items() if k != COUNTS_KEY}})


def count_of(metadata: Mapping[str, Any], name: str) -> int | None:
    """One of the :data:`COUNT_FIELDS` from a materialization's metadata: from ``dagster-cargo/counts``, else from
    its own key (materializations recorded before the counts were grouped)."""
    counts = metadata.get(COUNTS_KEY)
    counts = getattr(counts, "value", counts)
    value = counts.get(name) if isinstance(counts, Mapping) else None
    if value is None:
        value = metadata.get(f"dagster-cargo/{name}")
        value = getattr(value, "value", value)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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


def dagster_metadata(meta: Mapping[str, Any]) -> tuple[CargoMetadataSet, dict[str, Any]]:
    """The step's framework-free metadata (:func:`cargo_gtm.running.step_metadata`) as Dagster metadata: the
    :class:`CargoMetadataSet` fields, and the other keys (``run_uuid``, ``mode``, ``provider_credits/<slug>``)
    as ``dagster-cargo/<key>`` metadata values."""
    fields = CargoMetadataSet.model_fields
    known = {k: v for k, v in meta.items() if k in fields}
    if known.get("batch_url"):
        known["batch_url"] = dg.MetadataValue.url(known["batch_url"])
    extra: dict[str, Any] = {}
    for key, value in meta.items():
        if key in fields or value is None:
            continue
        if key.startswith("provider_credits/"):
            extra[f"dagster-cargo/{key}"] = dg.MetadataValue.float(float(value))
        else:
            extra[f"dagster-cargo/{key}"] = value
    return CargoMetadataSet(**known), extra


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
    """The :class:`CargoMetadataSet` for finished batches, built by the one metadata builder
    (:func:`cargo_gtm.running.step_metadata`); without ``statuses`` every row counts as a success."""
    from cargo_gtm.running import StepResult, StepSettings

    settings = StepSettings(workflow_uuid=workflow_uuid, workflow_name=workflow_name, workflow_type=workflow_type,
                            output_node_slug=output_node_slug)
    counts = dict(statuses) if statuses is not None else ({"success": row_count} if row_count else {})
    result = StepResult(frame=None, batches=list(batches), credits=credits, statuses=counts, records_count=row_count,
                        settings=settings)
    cargo, _ = dagster_metadata(step_metadata(result, batch_url=batch_url, breakdown=False))
    return cargo


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
