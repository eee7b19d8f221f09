"""Estimate a batch's credits before creating it, and refuse it when the estimate exceeds the budget.

estimate = records × provider credits per record + execution charge (nodes × records ÷ 100), where

* **records**: the input size for tools (``records`` data); for plays, what Cargo's segment fetch counts for
  the batch's filter (``limit`` honoured), the segment's own filter for ``segment`` input, the number of ids
  for ``recordIds`` (an upper bound: ids missing from the model do not run), and the change's added/updated
  counts for ``change`` input. Cargo's ``batches/preview`` would say the same for plays; the segment fetch is
  used because it also counts without returning records (``fetchingLimit=1``).
* **provider credits per record**: from the asset's recent materializations (provider credits ÷ runs), else
  the workflow's recent finished batches (``creditsUsedCount`` ÷ ``runsCount``: provider credits, CARGO-DOCS
  5.4), else unknown: then there is no estimate and a budget is enforced only while the batch runs.
* **nodes**: the deployed release's node count. Every node execution costs 0.01 credit (CARGO-DOCS 5.2); a run
  stopped by a filter node or an error executes fewer, so this part is an upper bound.

Nothing here creates anything; the calls are reads (segment fetch, batch list, deployed release).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import CargoClient
from .errors import CargoError
from .inputs.records import EMPTY_FILTER
from .models import Batch

__all__ = ["CreditEstimate", "count_records", "estimate_credits", "history_per_record", "recent_materializations"]

logger = logging.getLogger("cargo_gtm")

EXECUTION_CHARGE = 0.01  # credit per node execution


@dataclass(frozen=True)
class CreditEstimate:
    """What a batch (or the chunks of one input) is expected to cost, and on what basis."""

    records: int | None
    records_basis: str
    per_record: float | None  # provider credits per record
    per_record_basis: str
    nodes: int

    @property
    def execution_charge(self) -> float | None:
        """nodes × records ÷ 100 (an upper bound: filtered or errored runs execute fewer nodes)."""
        return None if self.records is None else round(self.nodes * self.records * EXECUTION_CHARGE, 6)

    @property
    def credits(self) -> float | None:
        """The estimate, or None when the record count or the credits per record are unknown."""
        if self.records is None or self.per_record is None or self.execution_charge is None:
            return None
        return round(self.records * self.per_record + self.execution_charge, 4)

    def describe(self) -> str:
        """The figures, e.g. ``"about 8.12 credits: 4 records (input size) × 2 provider credits per record (...)
        + 0.12 execution charge (3 nodes × 4 records ÷ 100)"``."""
        records = "an unknown number of records" if self.records is None else f"{self.records} records"
        per = "unknown provider credits per record" if self.per_record is None \
            else f"{self.per_record:g} provider credits per record"
        head = "no estimate" if self.credits is None else f"about {self.credits:g} credits"
        charge = "" if self.execution_charge is None else \
            f" + {self.execution_charge:g} execution charge ({self.nodes} nodes × {self.records} records ÷ 100)"
        return f"{head}: {records} ({self.records_basis}) × {per} ({self.per_record_basis}){charge}"


def count_records(client: CargoClient, data: Mapping[str, Any]) -> tuple[int | None, str]:
    """How many records a batch of ``data`` would run over, and how that was found (None: unknown)."""
    kind = data.get("kind")
    if kind == "records":
        return len(data.get("records") or []), "input size"
    if kind == "recordIds":
        return len(data.get("ids") or []), "record ids given"
    if kind == "filter":
        limit = data.get("limit")
        fetched = client.fetch_segment(str(data["modelUuid"]), data.get("filter") or EMPTY_FILTER,
                                       limit=limit, fetching_limit=1)
        capped = f", limit {limit}" if limit is not None else ""
        return fetched.count, f"segment fetch count of the filter{capped}"
    if kind == "segment":
        segment = client.get_segment(str(data["segmentUuid"]))
        fetched = client.fetch_segment(segment.model_uuid, segment.filter or EMPTY_FILTER, sort=segment.sort,
                                       limit=segment.limit, fetching_limit=1)
        return fetched.count, f"segment fetch count of segment {segment.name!r}"
    if kind == "change":
        # the change itself (GET /segmentation/changes/{uuid}): changes/list needs the segment's uuid, which a
        # change batch's data does not carry
        kinds = set(data.get("changeKinds") or ["added", "updated"])
        change = client.get_change(str(data["changeUuid"]))
        count = (change.added_records_count * ("added" in kinds)
                 + change.updated_records_count * ("updated" in kinds)
                 + change.removed_records_count * ("removed" in kinds)
                 + change.unchanged_records_count * ("unchanged" in kinds))
        return count, f"the change's {'/'.join(sorted(kinds))} counts"
    return None, f"{kind} input is not counted"


def history_per_record(metadatas: Iterable[Mapping[str, Any]]) -> tuple[float | None, int]:
    """Provider credits per record over materializations' metadata (provider credits ÷ runs), and how many
    materializations had both figures."""
    credits = runs = 0.0
    used = 0
    for metadata in metadatas:
        provider, count = _number(metadata, "dagster-cargo/provider_credits"), _runs(metadata)
        if provider is not None and count:
            credits, runs, used = credits + provider, runs + count, used + 1
    return (credits / runs if runs else None), used


def batches_per_record(client: CargoClient, workflow_uuid: str, limit: int = 20,
                       listed: Sequence[Batch] | None = None) -> tuple[float | None, int]:
    """Provider credits per record over the workflow's ``limit`` most recent successful batches, and how many
    were used. ``listed``: the workflow's batches, already listed in full (else the latest page is read)."""
    if listed is not None:
        recent = sorted(listed, key=lambda b: b.created_at.timestamp() if b.created_at else 0.0, reverse=True)[:limit]
    else:
        recent = client.list_batches(workflow_uuids=[workflow_uuid], limit=limit)
    batches = [b for b in recent if b.status.value == "success" and b.runs_count > 0]
    runs = sum(b.runs_count for b in batches)
    return (sum(b.credits_used_count for b in batches) / runs if runs else None), len(batches)


def estimate_credits(
    client: CargoClient,
    workflow_uuid: str,
    datas: Sequence[Mapping[str, Any]],
    *,
    history: Sequence[Mapping[str, Any]] = (),
    nodes: int | None = None,
    listed: Sequence[Batch] | None = None,
) -> CreditEstimate:
    """The estimate for the batches of ``datas`` (one workflow; e.g. the chunks of one input).

    ``history``: metadata of the asset's recent materializations (preferred over the workflow's batches);
    ``nodes``: the deployed release's node count when already known (else read from Cargo);
    ``listed``: the workflow's batches when already listed in full (else its latest page is read).
    """
    counts = [count_records(client, d) for d in datas]
    records = None if any(c is None for c, _ in counts) else sum(c or 0 for c, _ in counts)
    records_basis = counts[0][1] if counts else "no input"
    per_record, used = history_per_record(history)
    basis = f"{used} recent materialization(s) of this asset"
    if per_record is None:
        per_record, used = batches_per_record(client, workflow_uuid, listed=listed)
        basis = f"{used} recent batch(es) of the workflow" if per_record is not None \
            else "no earlier materialization or batch to learn from"
    if nodes is None:
        nodes = len(client.get_deployed_release(workflow_uuid).nodes)
    return CreditEstimate(records=records, records_basis=records_basis, per_record=per_record,
                          per_record_basis=basis, nodes=nodes)


def recent_materializations(context: Any, limit: int = 5) -> list[Mapping[str, Any]]:
    """Metadata of the current asset's latest materializations (none outside an asset, or on any error)."""
    try:
        key = context.asset_key
        records = context.instance.fetch_materializations(key, limit=limit).records
    except Exception:  # reporting aid only: an op, several assets, or no instance
        return []
    return [r.asset_materialization.metadata for r in records if r.asset_materialization is not None]


def try_estimate(client: CargoClient, workflow_uuid: str, datas: Sequence[Mapping[str, Any]], *,
                 history: Sequence[Mapping[str, Any]] = (), nodes: int | None = None,
                 listed: Sequence[Batch] | None = None) -> CreditEstimate | None:
    """:func:`estimate_credits`, or None (logged) when Cargo could not be asked."""
    try:
        return estimate_credits(client, workflow_uuid, datas, history=history, nodes=nodes, listed=listed)
    except CargoError as exc:
        logger.warning("Could not estimate the credits of a batch of workflow %s: %s", workflow_uuid, exc)
        return None


def _runs(metadata: Mapping[str, Any]) -> float | None:
    """A materialization's runs: in its ``dagster-cargo/counts`` (one JSON entry), else its own key (before)."""
    counts = metadata.get("dagster-cargo/counts")
    counts = getattr(counts, "value", counts)
    if isinstance(counts, Mapping):
        return _number(counts, "runs_count")
    return _number(metadata, "dagster-cargo/runs_count")


def _number(metadata: Mapping[str, Any], key: str) -> float | None:
    value = metadata.get(key)
    value = getattr(value, "value", value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
