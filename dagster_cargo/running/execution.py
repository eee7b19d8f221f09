"""Running Cargo batches from inside a Dagster asset or op.

create (or attach to an earlier attempt's batch) → wait in one polling loop (progress in the
run log, credit budget enforced) → download with integrity checks → metadata. Batches are
cancelled if the Dagster run is terminated, the wait times out or the budget is exceeded.
One asset usually runs one batch; a large tool input is split into several (chunks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from cargo_gtm import CargoClient
from cargo_gtm.credits import CreditSplit, credit_split
from cargo_gtm.download.outcomes import ERROR_COLUMN, STATUS_COLUMN
from cargo_gtm.errors import CargoBatchError, CargoError
from cargo_gtm.models import Batch, BatchStatus, Release
from cargo_gtm.running.handle import BatchHandle, BatchRequest, StatusSnapshot
from cargo_gtm.running.waiting import PollingGuidance, raise_for_batch, timeout_error
from dagster._core.errors import DagsterExecutionInterruptedError

from ..definitions.checks import CargoCheckConfig, evaluate_cargo_checks
from .attempts import RunTagLedger, attempt_tag_key
from .batch_monitor import CreditBudget, ProgressLog
from .metadata import CargoMetadataSet, batch_metadata, credits_by_node_metadata, status_counts, table_metadata

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CargoBatchResult", "BatchRunSpec", "FailedRows", "execute_batch", "execute_batches"]

#: What to do with rows of records whose run failed (``_status == "error"``): keep them, flagged (the
#: default: every input record stays accounted for), drop them from the DataFrame, or fail the step.
FailedRows = Literal["keep", "drop", "fail"]


@dataclass(frozen=True)
class BatchRunSpec:
    """What to run: a workflow (of a play or a tool), its input, and where outputs come from."""

    workflow_uuid: str
    data: Mapping[str, Any]
    workflow_name: str | None = None
    workflow_type: str | None = None  # "play" | "tool"
    output_node_slug: str | None = None
    empty_columns: tuple[str, ...] = ()
    credit_budget: float | None = None
    failed_rows: FailedRows = "keep"
    #: the workflow's deployed release, when it was read just before (input checks, estimate): its node
    #: slugs name the per-node credits of a batch that ran it, without reading it again
    deployed_release: Release | None = None
    #: the workflow's batches, when they were listed in full just before (estimate): the create's watermark
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


@dataclass
class CargoBatchResult:
    """Finished batches (usually one): their outputs as one DataFrame and the metadata to record.

    Use :meth:`materialize_result` as the return value of an ``@asset``, or
    :meth:`output` inside an op.
    """

    frame: pd.DataFrame
    batches: list[Batch]
    cargo_metadata: CargoMetadataSet
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    credits: CreditSplit | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    records_count: int = 0

    @property
    def batch(self) -> Batch | None:
        """The (first) batch, or ``None`` when nothing had to run."""
        return self.batches[0] if self.batches else None

    @property
    def batch_uuid(self) -> str | None:
        return self.batch.uuid if self.batch else None

    @property
    def credits_used(self) -> float:
        """Credits billed: provider credits + execution charge when ``runs/metrics`` was read (see
        :mod:`cargo_gtm.credits`), else the batches' ``creditsUsedCount``."""
        if self.credits is not None:
            return self.credits.total
        return float(sum(b.credits_used_count for b in self.batches))

    @property
    def failed_rows(self) -> int:
        """Input records whose run failed (``_status == "error"``), dropped or not."""
        return self.statuses.get("error", 0)

    @property
    def skipped_rows(self) -> int:
        """Input records Cargo skipped (``skipped``) or a filter node stopped (``filtered``)."""
        return self.statuses.get("skipped", 0) + self.statuses.get("filtered", 0)

    @property
    def succeeded_rows(self) -> int:
        return self.statuses.get("success", 0)

    @property
    def runs_count(self) -> int:
        return sum(b.runs_count for b in self.batches)

    @property
    def executed_runs_count(self) -> int:
        return sum(b.executed_runs_count for b in self.batches)

    @property
    def failed_runs_count(self) -> int:
        return sum(b.failed_runs_count for b in self.batches)

    @property
    def succeeded_runs_count(self) -> int:
        return sum(b.succeeded_runs_count for b in self.batches)

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




def _empty_result(spec: BatchRunSpec) -> CargoBatchResult:
    import pandas as pd

    frame = pd.DataFrame(columns=list(spec.empty_columns))
    return CargoBatchResult(frame=frame, batches=[], cargo_metadata=_metadata([], spec, None, row_count=0))


def _metadata(batches: list[Batch], spec: BatchRunSpec, url: str | None, row_count: int,
              credits: CreditSplit | None = None, statuses: Mapping[str, int] | None = None) -> CargoMetadataSet:
    return batch_metadata(batches, workflow_uuid=spec.workflow_uuid, workflow_name=spec.workflow_name,
                          workflow_type=spec.workflow_type, output_node_slug=spec.output_node_slug,
                          batch_url=url, row_count=row_count, credits=credits, statuses=statuses)


def _is_empty(spec: BatchRunSpec) -> bool:
    return spec.data.get("kind") == "records" and len(spec.data.get("records") or []) == 0


def _what(spec: BatchRunSpec) -> str:
    return f"{spec.workflow_type or 'workflow'} {spec.workflow_name or spec.workflow_uuid!r}"


def _link(batch_url_for: Any, batch: Batch) -> str:
    """`` (<link to the batch>)`` for a log line, or nothing when there is no web app to link to."""
    url = batch_url_for(batch)
    return f" ({url})" if url else ""


@dataclass(frozen=True)
class WaitSettings:
    """How :func:`execute_batches` waits: the resource's polling, timeout, termination and logging settings."""

    poll_interval: float
    max_poll_interval: float
    poll_timeout: float | None
    cancel_on_termination: bool
    progress_log_interval: float = 30.0
    guidance: PollingGuidance | None = None


def execute_batch(context: Any, client: CargoClient, spec: BatchRunSpec, **kwargs: Any) -> CargoBatchResult:
    """Run one batch for ``spec``; see :func:`execute_batches` for the keyword arguments."""
    return execute_batches(context, client, [spec], **kwargs)


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
    resume_unreported: bool = False,
) -> CargoBatchResult:
    """Run the batches of ``specs`` (one workflow; e.g. chunks of one input) as one result.

    start (create or attach, exactly once) → poll until every batch ends (progress in the run log,
    budget and timeout checked after each round, batches cancelled when the run is terminated) →
    outcome checks → outputs → metadata. N batches take about as long as the slowest. The credit
    budget of the first spec applies to all of them together.
    """
    if not specs:
        raise ValueError("execute_batches needs at least one spec")
    head, log = specs[0], context.log
    runnable = [s for s in specs if not _is_empty(s)]
    if not runnable:
        log.info(f"No input records for Cargo {head.workflow_type or 'workflow'} {head.workflow_name!r}: "
                 "no batch created, 0 credits spent.")
        return _empty_result(head)
    settings = WaitSettings(poll_interval, max_poll_interval, poll_timeout, cancel_on_termination,
                            progress_log_interval, guidance)
    requests = [BatchRequest(s.workflow_uuid, s.data, attempt_tag_key(context, s.workflow_uuid, s.data, scope=s.attempt_scope),
                             s.output_node_slug, s.records) for s in runnable]
    with BatchHandle(client, requests, ledger=RunTagLedger(context, client, resume_unreported=resume_unreported), poll_interval=poll_interval,
                     max_poll_interval=max_poll_interval, guidance=guidance,
                     fetch_metrics=credit_breakdown or head.credit_budget is not None,
                     listed={head.workflow_uuid: head.listed_batches} if head.listed_batches is not None else None,
                     ) as handle:
        _start(handle, log, runnable, batch_url_for)
        if not handle.batches:
            return _empty_result(head)
        batches = _wait(handle, log, head, settings, batch_url_for)
        credits = _credits(client, batches, log, handle, head.deployed_release) if handle.fetch_metrics else None
        _check_outcome(handle, log, head, batches, credits, batch_url_for)
        frames = handle.fetch_outputs()
    return _finish(context, client, head, batches, frames, credits, batch_url_for, credit_breakdown)


def _start(handle: BatchHandle, log: Any, specs: list[BatchRunSpec], batch_url_for: Any) -> None:
    """Attach or create every batch, and say so in the run log; if the step stops half-way, or a
    create fails, the batches that exist are cancelled."""
    try:
        report = handle.start()
    except (DagsterExecutionInterruptedError, KeyboardInterrupt, CargoError):
        _cancel(handle, log, "the step stopped before all batches were created")
        raise
    what = _what(specs[0])
    for batch in report.attached:
        log.info(f"Attaching to Cargo batch {batch.uuid} ({batch.status.value}) for {what}, created by "
                 f"an earlier attempt of this step, instead of starting a new one{_link(batch_url_for, batch)}")
    for exc in report.no_records:
        log.info(f"Cargo found no records for {what} ({getattr(exc, 'cargo_message', exc)}): no batch "
                 "created, 0 credits spent.")
    for made in report.created.values():
        if len(made) == 1:
            log.info(f"Created Cargo batch {made[0].uuid} for {what}{_link(batch_url_for, made[0])}")
        else:
            log.info(f"Created {len(made)} Cargo batches for {what}: {', '.join(b.uuid for b in made)} "
                     f"{_link(batch_url_for, made[0])}")
    if report.errors:
        _cancel(handle, log, "the step stopped before all batches were created")
        raise report.errors[0]


def _wait(handle: BatchHandle, log: Any, head: BatchRunSpec, settings: WaitSettings,
          batch_url_for: Any) -> list[Batch]:
    """Poll until every batch has ended; returns them (in request order).

    After each round: progress logged, the budget checked (over it: cancel, fail), the timeout checked
    (past it: cancel, fail). A terminated run cancels the batches (unless ``cancel_on_termination`` is off).
    """
    progress = ProgressLog(log, settings.progress_log_interval, total=len(handle.batches))
    budget = _budget(handle, head)
    try:
        while True:
            snapshot = handle.poll()
            progress(snapshot)
            if snapshot.finished:
                return handle.batches
            used = budget.overrun(snapshot) if budget is not None else None
            if budget is not None and used is not None:
                raise _over_budget(handle, log, head, budget.limit, used)
            elapsed = handle.elapsed()
            if settings.poll_timeout is not None and elapsed >= settings.poll_timeout:
                raise _timed_out(handle, log, snapshot, settings.poll_timeout, batch_url_for)
            left = settings.poll_timeout - elapsed if settings.poll_timeout is not None else snapshot.wake_in
            handle.sleep(min(snapshot.wake_in, left))
    except (DagsterExecutionInterruptedError, KeyboardInterrupt):
        if settings.cancel_on_termination:
            _cancel(handle, log, "the Dagster run was terminated")
        else:
            log.warning(f"Dagster run terminated; Cargo batch(es) {', '.join(handle.uuids)} keep running "
                        "(cancel_on_termination=False).")
        raise


def _budget(handle: BatchHandle, head: BatchRunSpec) -> CreditBudget | None:
    """The step's credit budget: the batches' spend, execution charge included (``runs/metrics``)."""
    if head.credit_budget is None:
        return None
    client = handle.client

    def spent(batch: Batch) -> float:
        return credit_split(client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid)).total

    return CreditBudget(head.credit_budget, spent)


def _cancel(handle: BatchHandle, log: Any, why: str) -> list[str]:
    """Cancel every unfinished batch, each outcome in the run log; returns the UUIDs actually cancelled."""
    report = handle.cancel()
    for uuid in report.cancelled:
        log.warning(f"Cancelled Cargo batch {uuid} because {why}.")
    for uuid in report.already_finished:
        log.info(f"Cargo batch {uuid} had already finished; nothing to cancel.")
    for uuid, exc in report.failed.items():  # Cargo unreachable: say so, don't mask
        log.warning(f"Could not cancel Cargo batch {uuid} after {why}: {exc}")
    return report.cancelled


def _cancel_outcome(cancelled: list[str], uuids: list[str]) -> str:
    """What the package did about the batches, for a failure message."""
    if cancelled:
        return f"dagster-cargo cancelled {', '.join(cancelled)}, so no more credits are spent on it"
    return (f"dagster-cargo could not cancel {', '.join(uuids)} (see the warning above): cancel it in Cargo "
            "if it is still running")


def _timed_out(handle: BatchHandle, log: Any, snapshot: StatusSnapshot, timeout: float,
               batch_url_for: Any) -> dg.Failure:
    """Cancel the batches of a wait past ``poll_timeout``; the failure to raise."""
    cancelled = _cancel(handle, log, f"it did not finish within {timeout:g}s")
    late = timeout_error(snapshot, timeout)
    url = batch_url_for(handle.batches[0])
    return dg.Failure(description=(
        f"Cargo batch {late.batch_uuid} was not finished after {timeout:g}s (last status: "
        f"{late.last_status}); {_cancel_outcome(cancelled, handle.uuids)}. Next step: raise the resource's "
        "poll_timeout if batches of this size take longer, or narrow the input."), metadata={
        "dagster-cargo/batch_uuid": late.batch_uuid,
        **({"dagster-cargo/batch_url": dg.MetadataValue.url(url)} if url else {}),
    })


def _over_budget(handle: BatchHandle, log: Any, head: BatchRunSpec, budget: float, guard: float) -> dg.Failure:
    """Cancel the batches that passed the budget, wait for the cancellation to end; the failure to raise."""
    cancelled = _cancel(handle, log, "the credit budget was exceeded")
    final, settled = handle.settle()
    executed = sum(b.executed_runs_count for b in final)
    runs = sum(b.runs_count for b in final)
    split = _credits(handle.client, final, log, handle, head.deployed_release)
    final_spend = split.total if split is not None else float(sum(b.credits_used_count for b in final))
    state = "cancelled" if settled else "cancel requested, still stopping when last read"
    return _budget_failure(handle.uuids, final_spend, budget,
                           f" after {executed}/{runs} runs ({state}; the guard fired at {guard:g} credits, "
                           f"{final_spend - budget:g} over the budget in the end); "
                           f"{_cancel_outcome(cancelled, handle.uuids)}")


def _budget_failure(uuids: list[str], used: float, budget: float, detail: str) -> dg.Failure:
    return dg.Failure(
        description=(
            f"Cargo batch(es) {', '.join(uuids)} used {used:g} credits in the end, over this asset's budget of "
            f"{budget:g}{detail}. Next step: raise credit_budget (run config, credit_budget= or the resource's "
            "max_credits_per_batch) if this cost is expected, or narrow the input."
        ),
        metadata={"dagster-cargo/batch_uuid": uuids[0], "dagster-cargo/credits_used": float(used),
                  "dagster-cargo/credit_budget": float(budget)},
    )


def _check_outcome(handle: BatchHandle, log: Any, head: BatchRunSpec, batches: list[Batch],
                   credits: CreditSplit | None, batch_url_for: Any) -> None:
    """Fail when the finished batches cost more than the budget, or one ended ``error``/``cancelled``."""
    used = credits.total if credits is not None else float(sum(b.credits_used_count for b in batches))
    if head.credit_budget is not None and used > head.credit_budget:
        raise _budget_failure(handle.uuids, used, head.credit_budget,
                              "; the batch finished before the budget check could cancel it, so its output "
                              "is not returned")
    failed = next((b for b in batches if b.status in (BatchStatus.ERROR, BatchStatus.CANCELLED)), None)
    if failed is None:
        return
    _cancel(handle, log, f"batch {failed.uuid} ended {failed.status.value}")
    try:
        raise_for_batch(failed)
    except CargoBatchError as exc:
        raise dg.Failure(description=str(exc), metadata=dict(
            _metadata(batches, head, batch_url_for(failed), row_count=0))) from exc


def _finish(context: Any, client: CargoClient, head: BatchRunSpec, batches: list[Batch], frames: list[Any],
            credits: CreditSplit | None, batch_url_for: Any, credit_breakdown: bool) -> CargoBatchResult:
    """One result from the finished batches' outputs: the frame (one row per input record, each with its
    ``_status``), the failed-rows policy applied, metadata with the credit split."""
    import pandas as pd

    log = context.log
    if not frames:
        frame = pd.DataFrame(columns=[*head.empty_columns, STATUS_COLUMN, ERROR_COLUMN])
    else:
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    counts = status_counts(frame)
    records = len(frame)
    frame = _apply_failed_rows(frame, counts, head, batches, log)
    meta = _metadata(batches, head, batch_url_for(batches[0]), row_count=len(frame), credits=credits,
                     statuses=counts)
    extra: dict[str, Any] = {}
    if credit_breakdown:
        if credits is not None:
            extra = credits_by_node_metadata(credits.provider_by_node)
        meta = meta.model_copy(update={"credits_remaining": credits_remaining_or_none(client, log)})
    used = credits.total if credits is not None else float(sum(b.credits_used_count for b in batches))
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    split = (f" ({credits.provider:g} provider + {credits.execution_charge:.2f} execution charge for "
             f"{credits.executions} node executions)" if credits is not None else "")
    log.info(f"Cargo batch(es) {', '.join(b.uuid for b in batches)}: {records} input records "
             f"({summary or 'none'}), {len(frame)} output rows, {used:g} credits{split}.")
    return CargoBatchResult(frame=frame, batches=batches, cargo_metadata=meta, extra_metadata=extra,
                            credits=credits, statuses=counts, records_count=records)


def _apply_failed_rows(frame: Any, counts: Mapping[str, int], head: BatchRunSpec, batches: list[Batch],
                       log: Any) -> Any:
    """The ``failed_rows`` policy: keep the rows of failed records (flagged, logged), drop them, or fail."""
    failed = counts.get("error", 0)
    if not failed:
        return frame
    records = len(frame)
    uuids = ", ".join(b.uuid for b in batches)
    first = frame.loc[frame[STATUS_COLUMN] == "error", ERROR_COLUMN].dropna()
    example = f' (first error: "{first.iloc[0]}")' if len(first) else ""
    if head.failed_rows == "fail":
        raise dg.Failure(
            description=f"Cargo batch(es) {uuids}: {failed} of {records} input records failed{example}. "
            "The step fails because failed_rows='fail'. Next step: fix the input or the workflow and re-run, "
            "or use failed_rows='keep' to get them flagged in the output.",
            metadata={"dagster-cargo/batch_uuid": batches[0].uuid, "dagster-cargo/failed_rows": failed})
    if head.failed_rows == "drop":
        log.warning(f"Cargo batch(es) {uuids}: {failed} of {records} input records failed{example}; their rows "
                    "were dropped (failed_rows='drop').")
        return frame.loc[frame[STATUS_COLUMN] != "error"].reset_index(drop=True)
    log.warning(f"Cargo batch(es) {uuids}: {failed} of {records} input records failed{example}; their rows "
                f"are kept with {STATUS_COLUMN}='error' and the reason in {ERROR_COLUMN}.")
    return frame


def _credits(client: CargoClient, batches: list[Batch], log: Any, handle: BatchHandle,
             known: Release | None = None) -> CreditSplit | None:
    """The batches' credit split from ``runs/metrics`` (provider credits per node, node executions), per-node
    slugs from each batch's own release. None (logged) when Cargo won't say: the batches' ``creditsUsedCount``
    is then all that is known."""
    try:
        metrics = [m for b in batches for m in handle.metrics(b)]
        slugs: dict[str, str] = {}
        for release_uuid in {b.release_uuid for b in batches if b.release_uuid}:
            release = known if known is not None and known.uuid == release_uuid else client.get_release(release_uuid)
            slugs.update({n.uuid: n.slug for n in release.nodes})
        return credit_split(metrics, slugs)
    except CargoError as exc:
        log.warning(f"Could not read the node executions and per-node credits of Cargo batch(es) "
                    f"{', '.join(b.uuid for b in batches)} (runs/metrics): {exc}. Reporting the batches' "
                    "creditsUsedCount, which leaves out Cargo's execution charge (0.01 per node execution).")
        return None


def credits_remaining_or_none(client: CargoClient, log: Any) -> float | None:
    """Credits left in the subscription (billing needs an admin token: None, logged, without one)."""
    try:
        return client.get_subscription().credits_remaining
    except CargoError as exc:
        log.warning(f"Could not read the Cargo credit balance (billing needs an admin token): {exc}")
        return None
