"""A handle on the batches one step runs: create exactly once (or attach), poll, cancel, fetch outputs.

:class:`BatchHandle` is the client-side half of running batches, with no Dagster in it:

* :meth:`BatchHandle.start` attaches each request to the batch an earlier attempt made (as the
  :class:`Ledger` says) or creates it, exactly once (:meth:`CargoClient.create_batches`); the
  ledger records each intent before its request leaves and each batch the moment it exists.
* :meth:`BatchHandle.poll` is one polling round and returns a :class:`StatusSnapshot`; it never
  sleeps and never raises for a batch's status. The caller decides what a snapshot means.
* :meth:`BatchHandle.cancel` cancels every unfinished batch; :meth:`BatchHandle.settle` waits
  for a cancellation to end (for the final spend).
* :meth:`BatchHandle.fetch_outputs` returns the outputs; downloads start as soon as a poll sees a
  batch succeed, so a fan-out overlaps downloading with waiting for the slowest batch.

Every batch the handle started is in :attr:`BatchHandle.batches`, even when ``start`` was
interrupted half-way, so the caller can always cancel what exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..credits import CreditSplit, credit_split, every_run_succeeded
from ..errors import CargoBatchError, CargoError, CargoRequestError
from ..models import Batch, BatchStatus, Release
from .reconcile import CargoAmbiguousCreateError, CreateIntent
from .waiting import BatchPoller, PollingGuidance, StatusSnapshot, raise_for_batch

if TYPE_CHECKING:
    import pandas as pd

    from ..client import CargoClient

__all__ = ["BatchHandle", "BatchRequest", "CancelReport", "ClaimingLedger", "Ledger", "StartReport", "StatusSnapshot"]


@dataclass(frozen=True)
class BatchRequest:
    """One batch to run: the workflow, its input, where its outputs come from, its attempt key."""

    workflow_uuid: str
    data: Mapping[str, Any]
    attempt_key: str | None = None
    output_node_slug: str | None = None
    records: list[Mapping[str, Any]] | None = None


class Ledger(Protocol):
    """Where a step's units (batches or single runs) are recorded durably, so a later attempt attaches instead
    of paying twice. One ledger serves both handles: a unit's attempt key says which it is."""

    def reusable(self, keys: list[str | None], datas: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Units earlier attempts made (a :class:`Batch` or a :class:`~cargo_gtm.models.Run`), by attempt key;
        ``datas``: what each key sends (a batch's data, a single run's record)."""

    def intent(self, key: str | None, intent: CreateIntent) -> None:
        """Record a create about to be sent. (A ledger may also offer ``intents(pairs)``: several intents, the
        creates of one fan-out, in one write; the batch handle then uses it.)"""

    def created(self, key: str | None, unit: Any) -> None:
        """Record a created batch or run. (A ledger may also offer ``created_many(pairs)``: the batches of several
        creates that ended together, in one write; the batch handle then uses it.)"""

    def candidates(self, key: str | None, uuids: list[str]) -> None:
        """Record the units an ambiguous create could not be told apart from."""


class ClaimingLedger(Ledger, Protocol):
    """A :class:`Ledger` shared by every run of a deployment, so identical inputs sent at the same moment by
    different runs ("twins") never share a unit (a batch, or a single run). Content cannot tell twins apart;
    claims can:

    * :meth:`claimed`: the units other runs have recorded (created or adopted) for this attempt key: never
      candidates for adoption after an ambiguous create, whatever their content;
    * :meth:`exclusive`: a context in which no other live run sends a create with the same attempt keys, so
      a unit created since this create's watermark with exactly this input and claimed by nobody is this
      create's own.

    :class:`BatchHandle` and :class:`~cargo_gtm.running.run_handle.RunHandle` use both the same way (a batch
    handle takes the turn of all its creates of one workflow at once, a run handle one record's at a time).
    Both are optional: a ledger without them gets the plain behaviour (content and this handle's own creates
    only). The Dagster layer keeps them in run tags; another orchestrator supplies its own store.
    """

    def claimed(self, key: str | None) -> set[str]:
        """Units recorded under ``key`` by runs other than this one (and its earlier attempts)."""

    def exclusive(self, keys: list[str | None]) -> AbstractContextManager[object]:
        """Hold off other live runs' creates under ``keys`` until the context exits."""


class NoLedger:
    """Records nothing; nothing to attach to."""

    def reusable(self, keys: list[str | None], datas: list[Mapping[str, Any]]) -> dict[str, Any]:
        return {}

    def intent(self, key: str | None, intent: CreateIntent) -> None:
        return None

    def created(self, key: str | None, unit: Any) -> None:
        return None

    def candidates(self, key: str | None, uuids: list[str]) -> None:
        return None


@dataclass
class StartReport:
    """What :meth:`BatchHandle.start` did: batches attached and created (per workflow), and what failed.

    ``no_records``: creates Cargo refused with ``noRecords`` (nothing to run: no batch, no credit).
    ``errors``: every other create that failed (the batches of the others exist and are in the handle).
    """

    attached: list[Any] = field(default_factory=list)
    created: dict[str, list[Any]] = field(default_factory=dict)
    no_records: list[CargoError] = field(default_factory=list)
    errors: list[CargoError] = field(default_factory=list)


@dataclass
class CancelReport:
    """What :meth:`BatchHandle.cancel` did to each unfinished batch."""

    cancelled: list[str] = field(default_factory=list)
    already_finished: list[str] = field(default_factory=list)
    failed: dict[str, CargoError] = field(default_factory=dict)
    spared: list[str] = field(default_factory=list)  # running, but started by someone else: left running


def _no_records(result: object) -> bool:
    return isinstance(result, CargoRequestError) and result.data_error_reason == "noRecords"


class PolledHandle:
    """What every handle (:class:`BatchHandle`, :class:`~cargo_gtm.running.run_handle.RunHandle`) does the same
    way around its poller: the pace, the time polled and waiting on the client's clock."""

    client: CargoClient
    _poller: BatchPoller | None

    def hurry(self) -> float | None:
        """Poll every unfinished unit as soon as the guidance allows; seconds until then (None: not polling)."""
        return self._poller.hurry() if self._poller is not None else None

    def elapsed(self) -> float:
        """Seconds since polling began (0 before the first poll)."""
        return self._poller.elapsed() if self._poller is not None else 0.0

    def sleep(self, seconds: float) -> None:
        """Wait on the client's clock."""
        self.client.sleep(seconds)


class BatchHandle(PolledHandle):
    """The batches of one step (one or many requests of one workflow); see the module docstring.

    A :class:`~cargo_gtm.running.step.StepHandle` (``kind = "batch"``) driven by
    :class:`~cargo_gtm.running.step.StepDriver`; :meth:`resume` re-creates it in another process from the
    batch UUIDs (a deferrable task's trigger, then its finishing worker).

    Args:
        client: the :class:`CargoClient` (its clock paces every wait).
        requests: what to run, in order; :attr:`batches` keeps that order.
        ledger: where batches and intents are recorded (default: nowhere).
        poll_interval, max_poll_interval, guidance: the polling schedule (:class:`BatchPoller`).
        fetch_metrics: also read each finished batch's ``runs/metrics`` as soon as it ends.
        max_workers: download threads.
        listed: per workflow, its batches listed in full a moment ago (e.g. for an estimate): the creates'
            watermark is taken from them instead of listing them again (see :meth:`CargoClient.create_intent`).
    """

    kind = "batch"

    def __init__(self, client: CargoClient, requests: Sequence[BatchRequest], *, ledger: Ledger | None = None,
                 poll_interval: float = 1.0, max_poll_interval: float = 30.0,
                 guidance: PollingGuidance | None = None, fetch_metrics: bool = False, max_workers: int = 8,
                 listed: Mapping[str, Sequence[Batch]] | None = None) -> None:
        self.client = client
        self.requests = list(requests)
        self.ledger: Ledger = ledger if ledger is not None else NoLedger()
        self.fetch_metrics = fetch_metrics
        self.listed = dict(listed or {})
        self._schedule = {"poll_interval": poll_interval, "max_poll_interval": max_poll_interval,
                          "guidance": guidance}
        self._started: dict[int, Batch] = {}
        self._latest: dict[str, Batch] = {}
        self._poller: BatchPoller | None = None
        #: batches this step waits on but did not start (attached from another run): never cancelled by it
        self.spared: set[str] = set()
        self._downloads: dict[str, Future[Any]] = {}
        self._metrics: dict[str, Future[Any]] = {}
        self._tasks: dict[str, Future[Any]] = {}  # per batch: the pool task that reads its metrics (and outputs)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(self.requests))),
                                        thread_name_prefix="cargo-download")

    @classmethod
    def for_step(cls, client: CargoClient, requests: Sequence[BatchRequest], settings: Any, *,
                 ledger: Ledger | None = None, max_workers: int = 8) -> BatchHandle:
        """A handle polling as ``settings.wait`` says, reading ``runs/metrics`` when the step needs the
        credit split (breakdown or budget), creating with the step's listed batches as watermark."""
        wait = settings.wait
        listed = {settings.workflow_uuid: settings.listed_batches} if settings.listed_batches is not None else None
        return cls(client, requests, ledger=ledger, poll_interval=wait.poll_interval,
                   max_poll_interval=wait.max_poll_interval, guidance=wait.guidance,
                   fetch_metrics=settings.credit_breakdown or settings.credit_budget is not None,
                   max_workers=max_workers, listed=listed)

    @classmethod
    def resume(cls, client: CargoClient, uuids: Sequence[str], requests: Sequence[BatchRequest] | None = None,
               **kwargs: Any) -> BatchHandle:
        """The handle of batches started elsewhere (another process), by UUID: each is read once, in order.

        ``requests`` (same order) give each batch's output node and records as sent (a tool's rows are then
        aligned with them); without them, outputs come as Cargo's file has them. Nothing is created:
        :meth:`start` attaches to these batches.
        """
        batches = [client.get_batch(u) for u in uuids]
        reqs = list(requests) if requests is not None else [
            BatchRequest(b.workflow_uuid, b.data) for b in batches]
        handle = cls(client, reqs, **kwargs)
        for i, batch in enumerate(batches):
            handle._take(i, batch)
        return handle

    # -- start ---------------------------------------------------------------------------
    def start(self) -> StartReport:
        """Attach each request to its earlier batch, or create it (exactly once); see :class:`StartReport`."""
        if self._started:  # resumed: the batches exist
            return StartReport(attached=self.batches)
        keys = [r.attempt_key for r in self.requests]
        reusable = self.ledger.reusable(keys, [r.data for r in self.requests])
        report = StartReport()
        pending: dict[str, list[int]] = {}
        for i, request in enumerate(self.requests):
            batch = reusable.get(request.attempt_key) if request.attempt_key is not None else None
            if batch is not None:
                self._take(i, batch)
                report.attached.append(batch)
            else:
                pending.setdefault(request.workflow_uuid, []).append(i)
        for workflow_uuid, indexes in pending.items():
            self._create(workflow_uuid, indexes, report)
        return report

    def _create(self, workflow_uuid: str, indexes: list[int], report: StartReport) -> None:
        """Create the batches of one workflow concurrently; each is recorded the moment it exists."""
        keys = [self.requests[i].attempt_key for i in indexes]

        def on_created(n: int, batch: Batch) -> None:
            self._take(indexes[n], batch)
            self.ledger.created(keys[n], batch)

        def on_intent(n: int, intent: CreateIntent) -> None:
            self.ledger.intent(keys[n], intent)  # on record before the request leaves

        claimed_by_others = getattr(self.ledger, "claimed", None)
        exclusive = getattr(self.ledger, "exclusive", None)
        bulk = getattr(self.ledger, "intents", None)  # a ledger that records many intents in one write
        created_many = getattr(self.ledger, "created_many", None)  # ... and many created batches in one write

        def claimed() -> set[str]:  # read afresh at each look: a twin may record its batch meanwhile
            return set().union(*(claimed_by_others(k) for k in keys)) if claimed_by_others else set()

        def on_intents(pairs: list[tuple[int, CreateIntent]]) -> None:
            assert bulk is not None
            bulk([(keys[n], intent) for n, intent in pairs])

        def on_created_many(pairs: list[tuple[int, Batch]]) -> None:
            assert created_many is not None
            for n, batch in pairs:
                self._take(indexes[n], batch)
            created_many([(keys[n], batch) for n, batch in pairs])

        with exclusive(keys) if exclusive is not None else nullcontext():
            results = self.client.create_batches(workflow_uuid, [self.requests[i].data for i in indexes],
                                                 on_created=on_created, on_intent=None if bulk else on_intent,
                                                 on_intents=on_intents if bulk else None, attempt_keys=keys,
                                                 on_created_many=on_created_many if created_many else None,
                                                 listed=self.listed.get(workflow_uuid), claimed=claimed)
        for n, result in enumerate(results):
            if isinstance(result, CargoAmbiguousCreateError):
                self.ledger.candidates(keys[n], result.candidates)
            if isinstance(result, Batch):
                report.created.setdefault(workflow_uuid, []).append(result)
            elif _no_records(result):
                report.no_records.append(result)
            else:
                report.errors.append(result)

    def _take(self, index: int, batch: Batch) -> None:
        self._started[index] = batch
        self._latest[batch.uuid] = batch

    # -- state ---------------------------------------------------------------------------
    @property
    def batches(self) -> list[Batch]:
        """Every batch started (attached or created), latest known state, in request order."""
        return [self._latest[self._started[i].uuid] for i in sorted(self._started)]

    @property
    def units(self) -> list[Batch]:
        """:attr:`batches` (the step protocol's name)."""
        return self.batches

    @property
    def uuids(self) -> list[str]:
        return [b.uuid for b in self.batches]

    def request_of(self, batch: Batch) -> BatchRequest:
        """The request ``batch`` was started for."""
        return next(self.requests[i] for i, b in self._started.items() if b.uuid == batch.uuid)

    # -- poll ----------------------------------------------------------------------------
    def poll(self) -> StatusSnapshot:
        """One polling round (only the batches that are due); downloads of batches that just ended start."""
        if self._poller is None:
            started = self.batches
            self._poller = BatchPoller(self.client.get_batch, [b.uuid for b in started],
                                       now=self.client.clock.monotonic, initial={b.uuid: b for b in started},
                                       fetch_many=self.client.fresh_states, **self._schedule)  # type: ignore[arg-type]
        snapshot = self._poller.poll()
        self._latest.update(snapshot.batches)
        for batch in snapshot.batches.values():
            self._submit(batch)
        return snapshot

    # -- cancel --------------------------------------------------------------------------
    def cancel(self) -> CancelReport:
        """Cancel every batch not known to be finished, except the :attr:`spared` ones (another run's)."""
        report = CancelReport()
        for batch in self.batches:
            if batch.is_terminal:
                continue
            if batch.uuid in self.spared:
                report.spared.append(batch.uuid)
                continue
            try:
                self.client.cancel_batch(batch.uuid)
                report.cancelled.append(batch.uuid)
            except CargoError as exc:  # already finished, or Cargo unreachable: reported, not masked
                if getattr(exc, "reason", None) == "batchAlreadyFinished":
                    report.already_finished.append(batch.uuid)
                else:
                    report.failed[batch.uuid] = exc
        return report

    def settle(self, timeout: float = 120.0) -> tuple[list[Batch], bool]:
        """The batches once a cancellation has ended (for the final spend), and whether it did in ``timeout``."""
        uuids = self.uuids
        try:
            finals = self.client.wait_for_batches(uuids, timeout=timeout, raise_on_failure=False,
                                                  poll_interval=self._schedule["poll_interval"],  # type: ignore[arg-type]
                                                  max_poll_interval=self._schedule["max_poll_interval"])  # type: ignore[arg-type]
            self._latest.update(finals)
            return [finals[u] for u in uuids], True
        except CargoError:  # still cancelling, or unreadable: the latest figures known
            latest = [self._reread(b) for b in self.batches]
            self._latest.update({b.uuid: b for b in latest})
            return latest, False

    def _reread(self, batch: Batch) -> Batch:
        try:
            return self.client.get_batch(batch.uuid)
        except CargoError:
            return batch

    # -- credits and outcome ---------------------------------------------------------------
    def spent(self, batch: Batch) -> float:
        """What ``batch`` has cost so far, execution charge included (``runs/metrics``)."""
        return credit_split(self.client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid)).total

    def credits(self, batches: Sequence[Batch], known: Release | None = None) -> CreditSplit:
        """The batches' credit split from ``runs/metrics`` (provider credits per node, node executions), node
        slugs from each batch's own release (``known``: one already read). Raises :class:`CargoError`."""
        metrics = [m for b in batches for m in self.metrics(b)]
        slugs: dict[str, str] = {}
        for release_uuid in {b.release_uuid for b in batches if b.release_uuid}:
            release = known if known is not None and known.uuid == release_uuid else \
                self.client.get_release(release_uuid)
            slugs.update({n.uuid: n.slug for n in release.nodes})
        return credit_split(metrics, slugs)

    def failure(self, batches: Sequence[Batch]) -> CargoBatchError | None:
        """The error of the first batch that ended ``error`` or ``cancelled`` (the step failed), else None."""
        for batch in batches:
            try:
                raise_for_batch(batch)
            except CargoBatchError as exc:
                return exc
        return None

    # -- outputs -------------------------------------------------------------------------
    def _submit(self, batch: Batch) -> None:
        """Start fetching a finished batch's metrics and (if it succeeded with runs) its outputs: one task, the
        metrics first, so that metrics proving every run succeeded spare the download its ``runs/count``."""
        if not batch.is_terminal:
            return
        downloads = batch.uuid not in self._downloads and batch.status == BatchStatus.SUCCESS and batch.runs_count > 0
        if self.fetch_metrics and batch.uuid not in self._metrics:
            metrics: Future[Any] = Future()
            self._metrics[batch.uuid] = metrics
            if not downloads:
                self._tasks[batch.uuid] = self._pool.submit(self._fetch_metrics, batch, metrics)
                return
        else:
            metrics = self._metrics.get(batch.uuid) if self.fetch_metrics else None  # type: ignore[assignment]
        if not downloads:
            return
        task = self._pool.submit(self._download, batch, self.request_of(batch), metrics)
        self._downloads[batch.uuid] = self._tasks[batch.uuid] = task

    def _fetch_metrics(self, batch: Batch, into: Future[Any]) -> Any:
        """``runs/metrics`` of ``batch`` into the future ``into`` (its error too); the metrics."""
        if into.done():
            return into.result()
        try:
            metrics = self.client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid)
        except BaseException as exc:
            into.set_exception(exc)
            raise
        into.set_result(metrics)
        return metrics

    def _download(self, batch: Batch, request: BatchRequest, metrics: Future[Any] | None) -> Any:
        """The batch's outputs; its metrics first, when they are wanted (a metrics error is left to credits)."""
        succeeded = False
        if metrics is not None:
            try:
                succeeded = every_run_succeeded(batch, list(self._fetch_metrics(batch, metrics)))
            except CargoError:
                succeeded = False
        return self.client.download_batch_dataframe(batch.uuid, request.output_node_slug, records=request.records,
                                                    batch=batch, all_succeeded=succeeded)

    def fetch_outputs(self) -> list[pd.DataFrame]:
        """The outputs of the batches that have any, in request order; raises a download's error."""
        out = []
        for batch in self.batches:
            self._submit(batch)
            if batch.uuid in self._downloads:
                out.append(self._downloads[batch.uuid].result())
        return out

    def metrics(self, batch: Batch) -> list[Any]:
        """The ``runs/metrics`` of a finished batch (fetched while others ran, or now)."""
        future = self._metrics.get(batch.uuid)
        task = self._tasks.get(batch.uuid)
        if future is not None and not future.done() and task is not None and not task.cancelled():
            try:
                task.result()  # the task reads the metrics first
            except BaseException:  # noqa: BLE001 - a download's error is fetch_outputs' to raise
                pass
        if future is None or not future.done():
            return list(self.client.get_run_metrics(batch.workflow_uuid, batch_uuid=batch.uuid))
        return list(future.result())

    def close(self) -> None:
        """Stop the download threads (downloads not started are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> BatchHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
