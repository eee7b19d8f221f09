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
from dagster._core.errors import DagsterExecutionInterruptedError

from .attempts import attempt_tag_key, find_reusable_batches, remember_batch, remember_candidates, remember_intent
from .batch_monitor import BatchMonitor, CreditBudgetExceeded
from .checks import CargoCheckConfig, evaluate_cargo_checks
from .client import CargoClient
from .client.errors import CargoBatchError, CargoError, CargoRequestError, CargoWaitTimeoutError
from .client.models import Batch, BatchStatus
from .client.outcomes import ERROR_COLUMN, STATUS_COLUMN
from .client.reconcile import CargoAmbiguousCreateError, CreateIntent
from .client.waiting import PollingGuidance, raise_for_batch
from .credits import CreditSplit, credit_split
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
        :mod:`dagster_cargo.credits`), else the batches' ``creditsUsedCount``."""
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
        :func:`dagster_cargo.checks.cargo_check_specs`).
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


def _no_records(exc: object) -> bool:
    return isinstance(exc, CargoRequestError) and exc.data_error_reason == "noRecords"


def _start_all(context: Any, client: CargoClient, specs: list[BatchRunSpec], batch_url_for: Any,
               started: list[tuple[int, BatchRunSpec, Batch]]) -> None:
    """Attach to each spec's earlier batch or create one, appending to ``started`` as it goes.

    ``started`` is filled in place (index into ``specs``, spec, batch) so that, if this is
    interrupted, the caller still knows every batch that exists and can cancel it. The creates
    of one workflow run concurrently (:meth:`CargoClient.create_batches`); each batch
    is recorded on the run the moment it is created. A ``noRecords`` answer means nothing to
    run for that spec: no batch, no credit.
    """
    log = context.log
    keys = [attempt_tag_key(context, s.workflow_uuid, s.data) for s in specs]
    reusable = find_reusable_batches(context, client, keys, [s.data for s in specs])
    pending: dict[str, list[int]] = {}
    for i, (spec, key) in enumerate(zip(specs, keys)):
        batch = reusable.get(key) if key is not None else None
        if batch is not None:
            log.info(f"Attaching to Cargo batch {batch.uuid} ({batch.status.value}) for {_what(spec)}, created by "
                     f"an earlier attempt of this step, instead of starting a new one{_link(batch_url_for, batch)}")
            started.append((i, spec, batch))
        else:
            pending.setdefault(spec.workflow_uuid, []).append(i)

    for workflow_uuid, indexes in pending.items():
        def on_created(n: int, batch: Batch, indexes: list[int] = indexes) -> None:
            i = indexes[n]
            remember_batch(context, keys[i], batch)
            started.append((i, specs[i], batch))

        def on_intent(n: int, intent: CreateIntent, indexes: list[int] = indexes) -> None:
            remember_intent(context, keys[indexes[n]], intent)  # on the run before the request leaves

        results = client.create_batches(workflow_uuid, [specs[i].data for i in indexes], on_created=on_created,
                                        on_intent=on_intent, attempt_keys=[keys[i] for i in indexes])
        for n, exc in enumerate(results):
            if isinstance(exc, CargoAmbiguousCreateError):
                remember_candidates(context, keys[indexes[n]], exc.candidates)
        made = [r for r in results if isinstance(r, Batch)]
        errors = [r for r in results if isinstance(r, CargoError) and not _no_records(r)]
        what = _what(specs[indexes[0]])
        for exc in results:
            if _no_records(exc):
                log.info(f"Cargo found no records for {what} ({getattr(exc, 'cargo_message', exc)}): no batch "
                         "created, 0 credits spent.")
        if len(made) == 1:
            log.info(f"Created Cargo batch {made[0].uuid} for {what}{_link(batch_url_for, made[0])}")
        elif made:
            log.info(f"Created {len(made)} Cargo batches for {what}: {', '.join(b.uuid for b in made)} "
                     f"{_link(batch_url_for, made[0])}")
        if errors:
            raise errors[0]


def _link(batch_url_for: Any, batch: Batch) -> str:
    """`` (<link to the batch>)`` for a log line, or nothing when there is no web app to link to."""
    url = batch_url_for(batch)
    return f" ({url})" if url else ""


def _cancel_all(client: CargoClient, batches: list[Batch], log: Any, why: str) -> list[str]:
    """Cancel every unfinished batch; returns the UUIDs actually cancelled."""
    cancelled: list[str] = []
    for batch in batches:
        if batch.is_terminal:
            continue
        try:
            client.cancel_batch(batch.uuid)
            cancelled.append(batch.uuid)
            log.warning(f"Cancelled Cargo batch {batch.uuid} because {why}.")
        except CargoError as exc:  # already finished, or Cargo unreachable: say so, don't mask
            if getattr(exc, "reason", None) == "batchAlreadyFinished":
                log.info(f"Cargo batch {batch.uuid} had already finished; nothing to cancel.")
            else:
                log.warning(f"Could not cancel Cargo batch {batch.uuid} after {why}: {exc}")
    return cancelled


def _cancel_outcome(cancelled: list[str], uuids: list[str]) -> str:
    """What the package did about the batches, for a failure message."""
    if cancelled:
        return f"dagster-cargo cancelled {', '.join(cancelled)}, so no more credits are spent on it"
    return (f"dagster-cargo could not cancel {', '.join(uuids)} (see the warning above): cancel it in Cargo "
            "if it is still running")


def execute_batch(context: Any, client: CargoClient, spec: BatchRunSpec, **kwargs: Any) -> CargoBatchResult:
    """Run one batch for ``spec``; see :func:`execute_batches` for the keyword arguments."""
    return execute_batches(context, client, [spec], **kwargs)


def _after_cancel(client: CargoClient, batches: list[Batch], poll_interval: float, max_poll_interval: float,
                  timeout: float = 120.0) -> tuple[list[Batch], bool]:
    """The batches once their cancellation has ended (for the final spend), and whether it did."""
    try:
        finals = client.wait_for_batches([b.uuid for b in batches], timeout=timeout, poll_interval=poll_interval,
                                         max_poll_interval=max_poll_interval, raise_on_failure=False)
        return [finals[b.uuid] for b in batches], True
    except CargoError:  # still cancelling, or unreadable: report the latest figures known
        latest = []
        for batch in batches:
            try:
                latest.append(client.get_batch(batch.uuid))
            except CargoError:
                latest.append(batch)
        return latest, False


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
) -> CargoBatchResult:
    """Run the batches of ``specs`` (one workflow; e.g. chunks of one input) as one result.

    Every batch is created (or attached) first, then all are waited for in one polling
    loop, so N batches take about as long as the slowest. The credit budget of the first
    spec applies to all of them together.
    """

    if not specs:
        raise ValueError("execute_batches needs at least one spec")
    head = specs[0]
    log = context.log
    runnable = [s for s in specs if not _is_empty(s)]
    if not runnable:
        log.info(f"No input records for Cargo {head.workflow_type or 'workflow'} {head.workflow_name!r}: "
                 "no batch created, 0 credits spent.")
        return _empty_result(head)

    begun: list[tuple[int, BatchRunSpec, Batch]] = []
    try:
        _start_all(context, client, runnable, batch_url_for, begun)
    except (DagsterExecutionInterruptedError, KeyboardInterrupt, CargoError):
        _cancel_all(client, [b for _, _, b in begun], log, "the step stopped before all batches were created")
        raise
    if not begun:
        return _empty_result(head)
    started = [(spec, batch) for _, spec, batch in sorted(begun, key=lambda item: item[0])]

    uuids = [b.uuid for _, b in started]
    spent = (lambda batch: credit_split(client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid)).total) \
        if head.credit_budget is not None else None
    monitor = BatchMonitor(log, progress_log_interval, budget=head.credit_budget, total=len(started), spent=spent)
    downloads = _Downloads(client, {b.uuid: spec for spec, b in started},
                           metrics=credit_breakdown or head.credit_budget is not None)
    try:
        try:
            finals = client.wait_for_batches(uuids, timeout=poll_timeout, poll_interval=poll_interval,
                                             max_poll_interval=max_poll_interval,
                                             on_progress=downloads.watching(monitor), raise_on_failure=False,
                                             initial={b.uuid: b for _, b in started}, guidance=guidance)
        except (DagsterExecutionInterruptedError, KeyboardInterrupt):
            if cancel_on_termination:
                _cancel_all(client, [monitor.latest.get(b.uuid, b) for _, b in started], log,
                            "the Dagster run was terminated")
            else:
                log.warning(f"Dagster run terminated; Cargo batch(es) {', '.join(uuids)} keep running "
                            "(cancel_on_termination=False).")
            raise
        except CargoWaitTimeoutError as exc:
            cancelled = _cancel_all(client, [monitor.latest.get(b.uuid, b) for _, b in started], log,
                                    f"it did not finish within {poll_timeout:g}s")
            url = batch_url_for(started[0][1])
            raise dg.Failure(description=(
                f"Cargo batch {exc.batch_uuid} was not finished after {poll_timeout:g}s (last status: "
                f"{exc.last_status}); {_cancel_outcome(cancelled, uuids)}. Next step: raise the resource's "
                "poll_timeout if batches of this size take longer, or narrow the input."), metadata={
                "dagster-cargo/batch_uuid": exc.batch_uuid,
                **({"dagster-cargo/batch_url": dg.MetadataValue.url(url)} if url else {}),
            }) from exc
        except CreditBudgetExceeded as exc:
            cancelled = _cancel_all(client, exc.batches, log, "the credit budget was exceeded")
            final, settled = _after_cancel(client, exc.batches, poll_interval, max_poll_interval)
            executed = sum(b.executed_runs_count for b in final)
            runs = sum(b.runs_count for b in final)
            split = _credits(client, final, log, downloads)
            final_spend = split.total if split is not None else float(sum(b.credits_used_count for b in final))
            state = "cancelled" if settled else "cancel requested, still stopping when last read"
            raise _budget_failure(uuids, final_spend, exc.budget,
                                  f" after {executed}/{runs} runs ({state}; the guard fired at "
                                  f"{exc.credits_used:g} credits, {final_spend - exc.budget:g} over the budget in the "
                                  f"end); {_cancel_outcome(cancelled, uuids)}") from None

        batches = [finals[u] for u in uuids]
        credits = _credits(client, batches, log, downloads) if downloads.with_metrics else None
        used = credits.total if credits is not None else float(sum(b.credits_used_count for b in batches))
        if head.credit_budget is not None and used > head.credit_budget:
            raise _budget_failure(uuids, used, head.credit_budget,
                                  "; the batch finished before the budget check could cancel it, so its output "
                                  "is not returned")
        for batch in batches:
            if batch.status in (BatchStatus.ERROR, BatchStatus.CANCELLED):
                _cancel_all(client, batches, log, f"batch {batch.uuid} ended {batch.status.value}")
                try:
                    raise_for_batch(batch)
                except CargoBatchError as exc:
                    raise dg.Failure(description=str(exc), metadata=dict(
                        _metadata(batches, head, batch_url_for(batch), row_count=0))) from exc
        frames = downloads.frames(batches)
    except BaseException:
        downloads.close()
        raise
    try:
        return _finish(context, client, head, batches, frames, credits, batch_url_for, credit_breakdown)
    finally:
        downloads.close()


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
    failed = counts.get("error", 0)
    uuids = ", ".join(b.uuid for b in batches)
    if failed:
        first = frame.loc[frame[STATUS_COLUMN] == "error", ERROR_COLUMN].dropna()
        example = f' (first error: "{first.iloc[0]}")' if len(first) else ""
        if head.failed_rows == "fail":
            raise dg.Failure(
                description=f"Cargo batch(es) {uuids}: {failed} of {records} input records failed{example}. "
                "The step fails because failed_rows='fail'. Next step: fix the input or the workflow and re-run, "
                "or use failed_rows='keep' to get them flagged in the output.",
                metadata={"dagster-cargo/batch_uuid": batches[0].uuid, "dagster-cargo/failed_rows": failed})
        if head.failed_rows == "drop":
            frame = frame.loc[frame[STATUS_COLUMN] != "error"].reset_index(drop=True)
            log.warning(f"Cargo batch(es) {uuids}: {failed} of {records} input records failed{example}; their rows "
                        "were dropped (failed_rows='drop').")
        else:
            log.warning(f"Cargo batch(es) {uuids}: {failed} of {records} input records failed{example}; their rows "
                        f"are kept with {STATUS_COLUMN}='error' and the reason in {ERROR_COLUMN}.")
    meta = _metadata(batches, head, batch_url_for(batches[0]), row_count=len(frame), credits=credits,
                     statuses=counts)
    extra: dict[str, Any] = {}
    if credit_breakdown:
        if credits is not None:
            extra = credits_by_node_metadata(credits.provider_by_node)
        meta = meta.model_copy(update={"credits_remaining": _remaining(client, log)})
    used = credits.total if credits is not None else float(sum(b.credits_used_count for b in batches))
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    split = (f" ({credits.provider:g} provider + {credits.execution_charge:.2f} execution charge for "
             f"{credits.executions} node executions)" if credits is not None else "")
    log.info(f"Cargo batch(es) {uuids}: {records} input records ({summary or 'none'}), {len(frame)} output rows, "
             f"{used:g} credits{split}.")
    return CargoBatchResult(frame=frame, batches=batches, cargo_metadata=meta, extra_metadata=extra,
                            credits=credits, statuses=counts, records_count=records)


class _Downloads:
    """Downloads each batch's outputs (and its per-node credits) as soon as the polling loop sees it end.

    A fan-out of many batches then overlaps downloading with waiting for the slowest batch,
    so only the last one's download is left when the wait ends. Downloads run on a few
    threads; results are taken in batch order.
    """

    def __init__(self, client: CargoClient, spec_of: dict[str, BatchRunSpec], max_workers: int = 4,
                 metrics: bool = False) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.client = client
        self.spec_of = spec_of
        self.with_metrics = metrics
        self.futures: dict[str, Any] = {}
        self.metric_futures: dict[str, Any] = {}
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(spec_of))),
                                       thread_name_prefix="cargo-download")

    def _submit(self, batch: Batch) -> None:
        if self.with_metrics and batch.is_terminal and batch.uuid not in self.metric_futures:
            # per-node credits (runs/metrics takes one batch per call): fetched alongside, not after
            self.metric_futures[batch.uuid] = self.pool.submit(
                self.client.get_run_metrics, batch.workflow_uuid, batch_uuid=batch.uuid)
        if batch.uuid in self.futures or batch.status != BatchStatus.SUCCESS or batch.runs_count <= 0:
            return
        spec = self.spec_of[batch.uuid]
        self.futures[batch.uuid] = self.pool.submit(
            self.client.download_batch_dataframe, batch.uuid, spec.output_node_slug, records=spec.records,
            batch=batch)

    def watching(self, monitor: Any) -> Any:
        """An ``on_progress`` callback: ``monitor``, then start the download of a finished batch."""

        def on_progress(progress: Any) -> None:
            monitor(progress)
            self._submit(progress.batch)

        return on_progress

    def frames(self, batches: list[Batch]) -> list[pd.DataFrame]:
        """The outputs of ``batches`` (in order) that have any; raises a download's error."""
        out = []
        for batch in batches:
            self._submit(batch)
            if batch.uuid in self.futures:
                out.append(self.futures[batch.uuid].result())
        return out

    def metrics(self, batch: Batch) -> list[Any]:
        """The runs/metrics of a finished batch (fetched while others ran, or now)."""
        future = self.metric_futures.get(batch.uuid)
        if future is None or future.cancelled():
            return list(self.client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid))
        return list(future.result())

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _credits(client: CargoClient, batches: list[Batch], log: Any, downloads: _Downloads) -> CreditSplit | None:
    """The batches' credit split from ``runs/metrics`` (provider credits per node, node executions), per-node
    slugs from each batch's own release. None (logged) when Cargo won't say: the batches' ``creditsUsedCount``
    is then all that is known."""
    try:
        metrics = [m for b in batches for m in downloads.metrics(b)]
        slugs: dict[str, str] = {}
        for release_uuid in {b.release_uuid for b in batches if b.release_uuid}:
            slugs.update({n.uuid: n.slug for n in client.get_release(release_uuid).nodes})
        return credit_split(metrics, slugs)
    except CargoError as exc:
        log.warning(f"Could not read the node executions and per-node credits of Cargo batch(es) "
                    f"{', '.join(b.uuid for b in batches)} (runs/metrics): {exc}. Reporting the batches' "
                    "creditsUsedCount, which leaves out Cargo's execution charge (0.01 per node execution).")
        return None


def _remaining(client: CargoClient, log: Any) -> float | None:
    """Credits left in the subscription (billing needs an admin token: None, logged, without one)."""
    try:
        return client.get_subscription().credits_remaining
    except CargoError as exc:
        log.warning(f"Could not read the Cargo credit balance (billing needs an admin token): {exc}")
        return None
