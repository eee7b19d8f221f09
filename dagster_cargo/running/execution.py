"""Running Cargo steps from inside a Dagster asset or op: the Dagster adapter of :mod:`cargo_gtm.running.step`.

The step itself (create or attach exactly once → wait in one polling loop with the budget and timeout →
outcome check → outputs → ``failed_rows`` → result and metadata) is the framework-free
:class:`~cargo_gtm.running.step.StepDriver`, for batches and single runs alike. What is Dagster's is here:
the run log as the step's log, Dagster's interrupt as a stop (cancels what the step started), run tags as
the ledger (:class:`~dagster_cargo.running.attempts.RunTagLedger`), :class:`dagster.Failure` for a
:class:`~cargo_gtm.errors.CargoStepError`, and ``MetadataValue`` for the step's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import dagster as dg
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoStepError
from cargo_gtm.models import Batch, Release
from cargo_gtm.running import (
    BatchHandle,
    BatchRequest,
    FailedRows,
    PollingGuidance,
    StepDriver,
    StepHandle,
    StepResult,
    StepSettings,
    WaitSettings,
    credits_remaining_or_none,
    step_metadata,
)
from dagster._core.errors import DagsterExecutionInterruptedError

from ..definitions.checks import CargoCheckConfig, evaluate_cargo_checks
from .attempts import RunTagLedger, attempt_tag_key
from .metadata import CargoMetadataSet, dagster_metadata, table_metadata

__all__ = ["CargoBatchResult", "BatchRunSpec", "FailedRows", "execute_batch", "execute_batches", "execute_step",
           "step_failure", "credits_remaining_or_none"]

#: what stops a step from outside: its units are cancelled (unless cancel_on_termination is off)
STOPS: tuple[type[BaseException], ...] = (DagsterExecutionInterruptedError, KeyboardInterrupt)


@dataclass(frozen=True)
class BatchRunSpec:
    """One batch to run: a workflow (of a play or a tool) and its input.

    The step-level fields (``credit_budget``, ``failed_rows``, ``deployed_release``, ``listed_batches``,
    ``empty_columns``, the workflow's name and type, ``output_node_slug``) are read from the **first** spec only,
    into the step's one :class:`~cargo_gtm.running.step.StepSettings`; pass ``settings=`` to
    :func:`execute_batches` instead of repeating them on every chunk.
    """

    workflow_uuid: str
    data: Mapping[str, Any]
    workflow_name: str | None = None
    workflow_type: str | None = None  # "play" | "tool"
    output_node_slug: str | None = None
    empty_columns: tuple[str, ...] = ()
    credit_budget: float | None = None
    failed_rows: FailedRows = "keep"
    deployed_release: Release | None = None
    listed_batches: tuple[Batch, ...] | None = None
    #: a name within the step for this batch's exactly-once identity and run tags (``<op>.<scope>``), e.g.
    #: ``heal1``: a heal round re-running the same records as another round is still a batch of its own
    attempt_scope: str | None = None

    @property
    def records(self) -> list[Mapping[str, Any]] | None:
        """A tool batch's input records as sent (``records`` data), else None."""
        if self.data.get("kind") == "records" and isinstance(self.data.get("records"), list):
            return list(self.data["records"])
        return None

    def settings(self, wait: WaitSettings, credit_breakdown: bool = True) -> StepSettings:
        """The step settings this spec carries (see the class docstring)."""
        return StepSettings(workflow_uuid=self.workflow_uuid, workflow_name=self.workflow_name,
                            workflow_type=self.workflow_type, output_node_slug=self.output_node_slug,
                            credit_budget=self.credit_budget, failed_rows=self.failed_rows,
                            deployed_release=self.deployed_release, listed_batches=self.listed_batches,
                            empty_columns=self.empty_columns, credit_breakdown=credit_breakdown, wait=wait)


@dataclass
class CargoBatchResult(StepResult):
    """Finished batches (usually one) or single runs: their outputs as one DataFrame and the metadata to record.

    A :class:`~cargo_gtm.running.step.StepResult` (one result type for batches and single runs) with its
    Dagster metadata. Use :meth:`materialize_result` as the return value of an ``@asset``, or :meth:`output`
    inside an op.
    """

    cargo_metadata: CargoMetadataSet = field(default_factory=CargoMetadataSet)
    extra_metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_step(cls, result: StepResult, batch_url: str | None = None) -> CargoBatchResult:
        """The Dagster result of a finished step: its metadata built once (:func:`step_metadata`)."""
        cargo, extra = dagster_metadata(step_metadata(result, batch_url=batch_url))
        return cls(frame=result.frame, batches=result.batches, runs=result.runs, credits=result.credits,
                   statuses=result.statuses, records_count=result.records_count, settings=result.settings,
                   credits_remaining=result.credits_remaining, wall_clock_seconds=result.wall_clock_seconds,
                   cargo_metadata=cargo, extra_metadata=extra)

    @property
    def batch(self) -> Batch | None:
        """The (first) batch, or ``None`` when nothing had to run or it ran as single runs."""
        return self.batches[0] if self.batches else None

    @property
    def batch_uuid(self) -> str | None:
        return self.batch.uuid if self.batch else None

    @property
    def run_uuid(self) -> str | None:
        """The (first) single run, or ``None``."""
        return self.runs[0].uuid if self.runs else None

    @property
    def metadata(self) -> dict[str, Any]:
        """All metadata: ``dagster/row_count``, ``dagster/column_schema``, ``dagster-cargo/*``."""
        return {**table_metadata(self.frame), **dict(self.cargo_metadata), **self.extra_metadata}

    def materialize_result(self, checks: CargoCheckConfig | None = None) -> dg.MaterializeResult:
        """A ``MaterializeResult`` whose value is the DataFrame (stored by the IO manager).

        With ``checks``, the Cargo asset checks are evaluated too (declare them with
        :func:`dagster_cargo.definitions.checks.cargo_check_specs`).
        """
        check_results = evaluate_cargo_checks(self, checks) if checks is not None else None
        return dg.MaterializeResult(value=self.frame, metadata=self.metadata, check_results=check_results)

    def output(self) -> dg.Output:
        """An ``Output`` for ops."""
        return dg.Output(self.frame, metadata=self.metadata)


def step_failure(exc: CargoStepError) -> dg.Failure:
    """The :class:`dagster.Failure` of a stopped step: its text, its figures as ``dagster-cargo/*`` metadata."""
    return dg.Failure(description=str(exc), metadata=_failure_metadata(exc.metadata))


def _failure_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None:
            continue
        out[f"dagster-cargo/{key}"] = dg.MetadataValue.url(value) if key == "batch_url" else value
    return out


def execute_step(context: Any, handle: StepHandle, settings: StepSettings, *, batch_url_for: Any) -> CargoBatchResult:
    """Drive ``handle`` (batches or single runs) through the step (:class:`StepDriver`), logging to the run
    log; a Dagster interrupt cancels what was started (``cancel_on_termination``); a stopped step fails with a
    :class:`dagster.Failure` that carries its figures."""
    def link(unit: Any) -> str | None:
        return batch_url_for(unit) if isinstance(unit, Batch) else None

    driver = StepDriver(handle, settings, log=context.log, link=link, stops=STOPS,
                        stop_reason="the Dagster run was terminated", actor="dagster-cargo",
                        stop_flag="cancel_on_termination")
    try:
        with handle:  # type: ignore[attr-defined]
            result = driver.run()
    except CargoStepError as exc:
        raise step_failure(exc) from exc
    return CargoBatchResult.from_step(result, batch_url_for(result.batches[0]) if result.batches else None)


def execute_batch(context: Any, client: CargoClient, spec: BatchRunSpec, **kwargs: Any) -> CargoBatchResult:
    """Run one batch for ``spec``; see :func:`execute_batches` for the keyword arguments."""
    return execute_batches(context, client, [spec], **kwargs)


def _is_empty(spec: BatchRunSpec) -> bool:
    return spec.data.get("kind") == "records" and len(spec.data.get("records") or []) == 0


def execute_batches(
    context: Any,
    client: CargoClient,
    specs: list[BatchRunSpec],
    *,
    batch_url_for: Any,
    poll_interval: float,
    max_poll_interval: float,
    poll_timeout: float | None,
    cancel_on_termination: bool,
    progress_log_interval: float = 30.0,
    credit_breakdown: bool = True,
    guidance: PollingGuidance | None = None,
    settings: StepSettings | None = None,
) -> CargoBatchResult:
    """Run the batches of ``specs`` (one workflow; e.g. chunks of one input) as one step and one result.

    ``settings``: the step's settings (budget, failed_rows, …) once; by default those of the first spec. The
    budget applies to all the batches together. N batches take about as long as the slowest.
    """
    if not specs:
        raise ValueError("execute_batches needs at least one spec")
    wait = WaitSettings(poll_interval=poll_interval, max_poll_interval=max_poll_interval, poll_timeout=poll_timeout,
                        cancel_on_stop=cancel_on_termination, progress_log_interval=progress_log_interval,
                        guidance=guidance)
    settings = specs[0].settings(wait, credit_breakdown) if settings is None else \
        replace(settings, wait=wait, credit_breakdown=credit_breakdown)
    requests = [BatchRequest(s.workflow_uuid, s.data,
                             attempt_tag_key(context, s.workflow_uuid, s.data, scope=s.attempt_scope),
                             settings.output_node_slug, s.records) for s in specs if not _is_empty(s)]
    handle = BatchHandle.for_step(client, requests, settings, ledger=RunTagLedger(context, client))
    return execute_step(context, handle, settings, batch_url_for=batch_url_for)
