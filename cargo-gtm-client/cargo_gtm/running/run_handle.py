"""Single runs as a step: one record through a tool as Cargo's *single run* (``POST /orchestration/runs``).

A tool input of a few records can run as Cargo single runs (one per record) instead of a batch.
:class:`RunHandle` gives them the :class:`~cargo_gtm.running.handle.BatchHandle` protocol (``start`` / ``poll``
/ ``cancel`` / ``settle`` / ``fetch_outputs``), so :class:`~cargo_gtm.running.step.StepDriver` drives them with
the batches' loop: the runs are polled concurrently (one schedule, Cargo's 2 s run guidance), a budget cancels
them mid-run, one ``failed_rows`` policy and one metadata builder apply, and the step's
:class:`~cargo_gtm.running.handle.Ledger` records their intents (:class:`~cargo_gtm.running.reconcile.CreateIntent`)
and UUIDs. :func:`run_one_record` is that step for one record, without an orchestrator.

The parts (exactly-once create, reading a run with its context, its one-row DataFrame and its credits) are in
:mod:`.single_run`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..credits import CreditSplit
from ..errors import CargoError, CargoInputError
from ..models import Release, Run, RunStatus
from .handle import CancelReport, Ledger, NoLedger, PolledHandle, StartReport
from .reconcile import CargoAmbiguousCreateError, CreateIntent
from .single_run import (
    STUCK_PENDING_SECONDS,
    RunResult,
    create_run_once,
    get_run_with_context,
    run_credit_split,
    run_dataframe,
    run_guidance,
)
from .step import StepDriver, StepSettings, WaitSettings
from .waiting import BatchPoller, PollingGuidance, StatusSnapshot

if TYPE_CHECKING:
    from ..client import CargoClient

__all__ = ["RunHandle", "RunRequest", "run_one_record"]

logger = logging.getLogger("cargo_gtm")


@dataclass(frozen=True)
class RunRequest:
    """One single run: the tool's workflow, the record, its attempt key, the node its output comes from."""

    workflow_uuid: str
    record: Mapping[str, Any]
    attempt_key: str | None = None
    output_node_slug: str | None = None


class RunHandle(PolledHandle):
    """The single runs of one step (``kind = "run"``); see the module docstring.

    Args:
        client: the :class:`CargoClient` (its clock paces every wait).
        requests: one per record, in order; :attr:`units` keeps that order.
        ledger: where runs and intents are recorded (default: nowhere).
        poll_interval, max_poll_interval: the polling schedule; ``guidance``: request limits per run
            (default: Cargo's 2 s for runs, :func:`~.single_run.run_guidance`).
    """

    kind = "run"

    def __init__(self, client: CargoClient, requests: Sequence[RunRequest], *, ledger: Ledger | None = None,
                 poll_interval: float = 1.0, max_poll_interval: float = 30.0,
                 guidance: PollingGuidance | None = None) -> None:
        self.client = client
        self.requests = list(requests)
        self.ledger: Ledger = ledger if ledger is not None else NoLedger()
        self._schedule: dict[str, Any] = {"poll_interval": poll_interval, "max_poll_interval": max_poll_interval,
                                          "guidance": guidance if guidance is not None else run_guidance(None)}
        self._started: dict[int, str] = {}
        self._latest: dict[str, Run] = {}
        self._results: dict[str, RunResult] = {}
        self._nodes: dict[str, list[Any]] = {}
        self._poller: BatchPoller | None = None
        self._warned: set[str] = set()

    @classmethod
    def for_step(cls, client: CargoClient, requests: Sequence[RunRequest], settings: Any, *,
                 ledger: Ledger | None = None) -> RunHandle:
        """A handle polling as ``settings.wait`` says (its batch guidance scaled to Cargo's run guidance)."""
        wait = settings.wait
        guidance = run_guidance(wait.guidance) if wait.guidance is not None else None
        return cls(client, requests, ledger=ledger, poll_interval=wait.poll_interval,
                   max_poll_interval=wait.max_poll_interval, guidance=guidance)

    @classmethod
    def resume(cls, client: CargoClient, uuids: Sequence[str], requests: Sequence[RunRequest],
               **kwargs: Any) -> RunHandle:
        """The handle of runs started elsewhere (another process), by UUID, with the requests they were made
        for (same order: the record of each is needed to build its row). Each run is read once."""
        handle = cls(client, requests, **kwargs)
        for i, uuid in enumerate(uuids):
            handle._take(i, handle._read(uuid))
        return handle

    # -- start ---------------------------------------------------------------------------
    def start(self) -> StartReport:
        """Attach each request to its earlier run, or create it (exactly once), in order; the first create
        that fails stops the others (its error is in the report, the runs made are in the handle)."""
        if self._started:  # resumed: the runs exist
            return StartReport(attached=self.units)
        keys = [r.attempt_key for r in self.requests]
        reusable = self.ledger.reusable(keys, [r.record for r in self.requests])
        report = StartReport()
        exclusive = getattr(self.ledger, "exclusive", None)  # a ClaimingLedger: twins' creates take turns
        for i, request in enumerate(self.requests):
            earlier = reusable.get(request.attempt_key) if request.attempt_key is not None else None
            if earlier is not None:
                self._take(i, earlier)
                report.attached.append(earlier)
                continue
            try:
                with exclusive([request.attempt_key]) if exclusive is not None else nullcontext():
                    run = self._create(request)
            except CargoError as exc:
                report.errors.append(exc)
                break
            self._take(i, run)
            report.created.setdefault(request.workflow_uuid, []).append(run)
        return report

    def _create(self, request: RunRequest) -> Run:
        """Create one run exactly once. Runs this handle holds and runs other creates recorded under the same
        key (a :class:`~.handle.ClaimingLedger`'s claims: twins) are never adopted after an ambiguous create."""
        key = request.attempt_key
        claimed_by_others = getattr(self.ledger, "claimed", None)

        def on_intent(intent: CreateIntent) -> None:
            self.ledger.intent(key, intent)  # on record before the request leaves

        def claimed() -> set[str]:  # read afresh at each look: a twin may record its run meanwhile
            return set(self._latest) | (claimed_by_others(key) if claimed_by_others is not None else set())

        try:
            run = create_run_once(self.client, request.workflow_uuid, request.record, on_intent=on_intent,
                                  claimed=claimed, attempt_key=key)
        except CargoAmbiguousCreateError as exc:
            if exc.candidates:
                self.ledger.candidates(key, exc.candidates)
            raise
        self.ledger.created(key, run)
        return run

    def _take(self, index: int, run: Run) -> None:
        self._started[index] = run.uuid
        self._latest[run.uuid] = run

    def result_of(self, run: Run) -> RunResult:
        """The run as last read, with its per-node context."""
        return self._results.get(run.uuid) or get_run_with_context(self.client, run.uuid)

    def _read(self, uuid: str) -> Run:
        result = get_run_with_context(self.client, uuid)
        self._results[uuid] = result
        return result.run

    # -- state ---------------------------------------------------------------------------
    @property
    def units(self) -> list[Run]:
        """Every run started (attached or created), latest known state, in request order."""
        return [self._latest[self._started[i]] for i in sorted(self._started)]

    @property
    def runs(self) -> list[Run]:
        return self.units

    @property
    def uuids(self) -> list[str]:
        return [r.uuid for r in self.units]

    # -- poll ----------------------------------------------------------------------------
    def poll(self) -> StatusSnapshot:
        """One polling round (only the runs that are due); never sleeps, never raises for a status."""
        if self._poller is None:
            started = self.units
            initial: dict[str, Any] = {r.uuid: r for r in started}  # a run is polled as a batch of one
            read: Any = self._read
            self._poller = BatchPoller(read, [r.uuid for r in started], now=self.client.clock.monotonic,
                                       initial=initial, **self._schedule)
        snapshot = self._poller.poll()
        self._latest.update(snapshot.batches)  # type: ignore[arg-type]
        for update in snapshot.updates:
            run = update.batch
            if run.status == RunStatus.PENDING and update.elapsed > STUCK_PENDING_SECONDS and run.uuid not in \
                    self._warned:
                self._warned.add(run.uuid)
                logger.warning("Cargo run %s is still pending after %.0fs: Cargo says this means the workflow is "
                               "not enabled or has no deployed release.", run.uuid, update.elapsed)
        return snapshot

    # -- cancel --------------------------------------------------------------------------
    def cancel(self) -> CancelReport:
        """Cancel every run not known to be finished: one ``runs/cancel`` per workflow (REFERENCE 3.5)."""
        report = CancelReport()
        by_workflow: dict[str, list[str]] = {}
        for run in self.units:
            if not run.is_terminal:
                by_workflow.setdefault(run.workflow_uuid, []).append(run.uuid)
        for workflow_uuid, uuids in by_workflow.items():
            try:
                self.client.cancel_runs(workflow_uuid, uuids)
                report.cancelled.extend(uuids)
            except CargoError as exc:  # Cargo unreachable: reported, not masked
                report.failed.update(dict.fromkeys(uuids, exc))
        return report

    def settle(self, timeout: float = 120.0) -> tuple[list[Run], bool]:
        """The runs once a cancellation has ended (for the final spend), and whether it did in ``timeout``."""
        start = self.client.clock.monotonic()
        while True:
            for run in [r for r in self.units if not r.is_terminal]:
                try:
                    self._latest[run.uuid] = self._read(run.uuid)
                except CargoError:  # unreadable: the latest figures known
                    return self.units, False
            if all(r.is_terminal for r in self.units):
                return self.units, True
            if self.client.clock.monotonic() - start >= timeout:
                return self.units, False
            self.client.sleep(1.0)

    # -- credits and outcome ---------------------------------------------------------------
    def spent(self, run: Run) -> float:
        """What ``run`` has cost so far: its executions' provider credits + 0.01 per finished node execution."""
        return run_credit_split(run).total

    def credits(self, runs: Sequence[Run], known: Release | None = None) -> CreditSplit:
        """The runs' credit split, from their executions (no extra request)."""
        total = CreditSplit(0.0, 0)
        for run in runs:
            total = total + run_credit_split(run)
        return total

    def failure(self, runs: Sequence[Run]) -> CargoError | None:
        """None: a run that failed is a failed record (its row says so), not a failed step."""
        return None

    # -- outputs -------------------------------------------------------------------------
    def _release_nodes(self, run: Run) -> list[Any]:
        release = run.release_uuid or ""
        if release and release not in self._nodes:
            self._nodes[release] = list(self.client.get_release(release).nodes)
        return self._nodes.get(release, [])

    def fetch_outputs(self) -> list[Any]:
        """One one-row DataFrame per run, in request order (the row a one-record batch would give)."""
        frames = []
        for i in sorted(self._started):
            uuid = self._started[i]
            result = self._results.get(uuid)
            if result is None or not result.is_terminal:
                result = get_run_with_context(self.client, uuid)
                self._results[uuid] = result
            request = self.requests[i]
            frames.append(run_dataframe(result, request.record, nodes=self._release_nodes(result.run),
                                        output_node_slug=request.output_node_slug))
        return frames

    def close(self) -> None:
        """Nothing to release (no threads)."""

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_one_record(client: CargoClient, workflow_uuid: str, record: Mapping[str, Any], *,
                   output_node_slug: str | None = None, timeout: float | None = 3600.0,
                   guidance: PollingGuidance | None = None) -> tuple[Any, RunResult, CreditSplit]:
    """Create (exactly once), wait for and read one single run, as a step of one record (:class:`StepDriver`
    over a :class:`RunHandle`): ``(frame, run result, credits)``.

    The run is cancelled if waiting is interrupted (``KeyboardInterrupt``) or times out (then
    :class:`~cargo_gtm.errors.CargoStepError` is raised). Raises :class:`CargoInputError` for a record that is not
    an object.
    """
    if not isinstance(record, Mapping):
        raise CargoInputError(f"A single run takes one record (an object), not {type(record).__name__}.")
    settings = StepSettings(workflow_uuid=workflow_uuid, output_node_slug=output_node_slug, credit_breakdown=False,
                            wait=WaitSettings(poll_timeout=timeout, guidance=guidance))
    handle = RunHandle.for_step(client, [RunRequest(workflow_uuid, record, None, output_node_slug)], settings)
    result = StepDriver(handle, settings).run()
    (run,) = handle.units
    return result.frame, handle.result_of(run), handle.credits(handle.units)
