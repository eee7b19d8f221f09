"""Credits as Cargo bills them: provider cost per node, plus an execution charge per node execution.

Cargo bills two things (CARGO-DOCS 5.1-5.4):

* **provider credits**: what connector and agent nodes cost (``creditsUsedCount`` of each execution and of
  each node in ``runs/metrics``; 0 on native nodes);
* the **execution charge**: 0.01 credit for *every* node execution, of every kind (``start``, ``filter``,
  ``end`` included) and errored executions too. It belongs to no node, and a batch's ``creditsUsedCount``
  leaves it out (implied by Cargo's cost runbook).

So a batch's cost is ``provider credits + 0.01 × node executions``, both read from ``runs/metrics`` (per node:
``creditsUsedCount`` and its success + error executions). That total is what the subscription loses, what the
metadata reports as ``credits_used`` and what a credit budget enforces.

Usage metrics (``GET /billing/usage/metrics``) count three different units; :func:`usage_summary` asks for
each unit explicitly and keeps them in separate columns, never adding counts of different units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import CargoClient
    from .models import Batch, RunMetric

__all__ = ["EXECUTION_CHARGE", "USAGE_UNITS", "CreditSplit", "credit_split", "every_run_succeeded", "node_executions",
           "usage_summary",
           "batch_credit_split"]

#: Credits billed per node execution (CARGO-DOCS 5.2: "Every node execution bills 0.01 credits").
EXECUTION_CHARGE = 0.01
#: The usage units Cargo accepts, and the summary column each goes to (CARGO-DOCS 5.5, 5.6).
USAGE_UNITS = {"billing.credits": "credits", "orchestration.executions": "executions",
               "storage.records": "storage_records"}


def node_executions(metric: RunMetric) -> int:
    """Billed executions of one node: the finished ones, succeeded or errored (CARGO-DOCS 5.2)."""
    return int(metric.success_executions_count) + int(metric.error_executions_count)


@dataclass(frozen=True)
class CreditSplit:
    """A batch's (or several batches') credits, split as Cargo bills them.

    Attributes:
        provider: provider credits (sum of the nodes' ``creditsUsedCount``).
        executions: node executions billed (succeeded + errored).
        provider_by_node: provider credits per node slug (only nodes that cost something).
    """

    provider: float
    executions: int
    provider_by_node: dict[str, float] = field(default_factory=dict)

    @property
    def execution_charge(self) -> float:
        """``executions × 0.01``, rounded to the cent."""
        return round(self.executions * EXECUTION_CHARGE, 2)

    @property
    def total(self) -> float:
        """Provider credits + execution charge: what the subscription is billed."""
        return round(self.provider + self.execution_charge, 6)

    def __add__(self, other: CreditSplit) -> CreditSplit:
        by_node = dict(self.provider_by_node)
        for slug, value in other.provider_by_node.items():
            by_node[slug] = by_node.get(slug, 0.0) + value
        return CreditSplit(self.provider + other.provider, self.executions + other.executions, by_node)


def credit_split(metrics: Iterable[RunMetric], slugs_by_uuid: Mapping[str, str] | None = None) -> CreditSplit:
    """The :class:`CreditSplit` of ``runs/metrics`` entries (one or several batches; summed per node slug).

    >>> from cargo_gtm.models import RunMetric
    >>> m = [RunMetric(node_uuid="n1", success_executions_count=3, credits_used_count=0),
    ...      RunMetric(node_uuid="n2", success_executions_count=2, error_executions_count=1, credits_used_count=4)]
    >>> s = credit_split(m, {"n2": "enrich"})
    >>> (s.provider, s.executions, s.execution_charge, s.total, s.provider_by_node)
    (4.0, 6, 0.06, 4.06, {'enrich': 4.0})
    """
    slugs = slugs_by_uuid or {}
    provider = 0.0
    executions = 0
    by_node: dict[str, float] = {}
    for metric in metrics:
        credits = float(metric.credits_used_count)
        provider += credits
        executions += node_executions(metric)
        if credits:
            slug = slugs.get(metric.node_uuid, metric.node_uuid)
            by_node[slug] = by_node.get(slug, 0.0) + credits
    return CreditSplit(provider, executions, by_node)


def every_run_succeeded(batch: Batch, metrics: Sequence[RunMetric]) -> bool:
    """Whether ``runs/metrics`` prove that every run of the finished ``batch`` succeeded through every node:
    the batch succeeded with no failed run and every run executed, and each node reports exactly
    ``runsCount`` successful executions and nothing else. Then no run is errored, skipped, cancelled or
    stopped by a filter, and ``_status`` needs no ``runs/count``. Conservative: a branch, a filter that stopped
    a run, a retried node or an unknown figure gives False (the runs are then counted).

    >>> from cargo_gtm.models import Batch, RunMetric
    >>> b = Batch.model_validate({"uuid": "b", "workflowUuid": "w", "status": "success", "runsCount": 2,
    ...                          "executedRunsCount": 2, "failedRunsCount": 0})
    >>> every_run_succeeded(b, [RunMetric(node_uuid="n", total_executions_count=2, success_executions_count=2)])
    True
    >>> every_run_succeeded(b, [RunMetric(node_uuid="n", total_executions_count=2, success_executions_count=1,
    ...                                   skipped_executions_count=1)])
    False
    """
    runs = batch.runs_count
    if batch.status.value != "success" or runs <= 0 or batch.failed_runs_count or batch.executed_runs_count != runs:
        return False
    others = ("error", "skipped", "cancelled", "cancelling", "idle", "pending", "running")
    return bool(metrics) and all(
        m.success_executions_count == runs and m.total_executions_count in (0, runs)
        and not any(getattr(m, f"{kind}_executions_count") for kind in others) for m in metrics)


def batch_credit_split(client: CargoClient, batch: Batch, slugs_by_uuid: Mapping[str, str] | None = None
                       ) -> CreditSplit:
    """The :class:`CreditSplit` of one batch (one ``runs/metrics`` call)."""
    return credit_split(client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid), slugs_by_uuid)


def usage_summary(client: CargoClient, start: str | date | datetime, end: str | date | datetime, *,
                  group_by: str | None = "workflow_uuid", names: Mapping[str, str] | None = None,
                  units: Sequence[str] = tuple(USAGE_UNITS)) -> Any:
    """Billing usage as a DataFrame, one request per unit, units never mixed.

    Columns: ``date``, ``group`` (the ``group_by`` value, e.g. a workflow UUID), ``name`` (from ``names``),
    ``slug`` (Cargo's usage slug: ``integration.<x>.action.<y>``, ``native.<y>`` for credits; ``success`` /
    ``error`` for executions; ``insert`` for storage), then ``credits`` (provider credits), ``executions``
    (node executions), ``execution_credits`` (``executions × 0.01``, the execution charge) and
    ``storage_records``. A row holds the figures of one (date, group, slug); columns of other units are 0.
    """
    import pandas as pd

    unknown = [u for u in units if u not in USAGE_UNITS]
    if unknown:
        raise ValueError(f"unknown usage unit(s) {unknown}; Cargo accepts {list(USAGE_UNITS)}")
    figures = list(dict.fromkeys(USAGE_UNITS[u] for u in units))
    rows: dict[tuple[Any, Any, str], dict[str, Any]] = {}
    for unit in units:
        column = USAGE_UNITS[unit]
        for metric in client.get_usage_metrics(start, end, group_by=group_by, unit=unit):
            for item in metric.items:
                key = (metric.date, item.group_by, item.slug)
                row = rows.setdefault(key, {"date": metric.date, "group": item.group_by,
                                            "name": (names or {}).get(item.group_by or ""), "slug": item.slug,
                                            **dict.fromkeys(figures, 0.0)})
                row[column] += float(item.count)
    columns = ["date", "group", "name", "slug", *figures]
    if "executions" in figures:
        columns.insert(columns.index("executions") + 1, "execution_credits")
    frame = pd.DataFrame(list(rows.values()), columns=[c for c in columns if c != "execution_credits"])
    if "executions" in figures:
        frame.insert(columns.index("execution_credits"), "execution_credits",
                     (frame["executions"] * EXECUTION_CHARGE).round(2))
        frame["executions"] = frame["executions"].astype("int64")
    if "storage_records" in figures:
        frame["storage_records"] = frame["storage_records"].astype("int64")
    return frame.sort_values(["date", "group", "slug"], na_position="first", kind="stable").reset_index(drop=True)
