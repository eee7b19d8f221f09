"""Waiting for batches: one polling loop for one or many batches, adaptive intervals.

The interval adapts per batch: it starts at ``poll_interval``; once runs are completing,
the next poll is scheduled at about half the estimated time left (so a batch that is
nearly done is seen quickly); with no progress it backs off by x1.5 up to
``max_poll_interval``. An unknown status is never taken as success: it is reported
through ``on_progress`` (``BatchProgress.unknown_status``) and polling goes on until the
status becomes known or the timeout expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import CargoBatchCancelledError, CargoBatchFailedError, CargoError, CargoWaitTimeoutError
from .models import Batch, BatchStatus

__all__ = ["BatchProgress", "PollingGuidance", "UNLIMITED", "wait_for_batches", "raise_for_batch"]

logger = logging.getLogger("dagster_cargo.client")


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot reported to ``on_progress`` after each poll of a batch."""

    batch: Batch
    elapsed: float
    polls: int

    @property
    def unknown_status(self) -> bool:
        return not self.batch.status.is_known

    @property
    def fraction(self) -> float | None:
        if not self.batch.runs_count:
            return None
        return self.batch.executed_runs_count / self.batch.runs_count

    def describe(self) -> str:
        b = self.batch
        status = b.status.value if b.status.is_known else f"{b.status.value} (unknown status)"
        return (
            f"batch {b.uuid}: {status}, {b.executed_runs_count}/{b.runs_count} runs executed, "
            f"{b.failed_runs_count} failed, {b.credits_used_count:g} credits, {self.elapsed:.0f}s elapsed"
        )


#: Cargo's guidance (CARGO-DOCS 6.1): poll batches every 5 s; for 1,000+ records, 10-15 s after the first minute.
GUIDED_INTERVAL = 5.0
LARGE_BATCH_RECORDS = 1000
LARGE_BATCH_INTERVAL = 10.0
LARGE_BATCH_AFTER = 60.0


@dataclass(frozen=True)
class PollingGuidance:
    """Request limits per batch that the adaptive schedule stays within (Cargo's polling guidance by default).

    Attributes:
        average_interval: at most one request per this many seconds **on average** since the wait began
            (the (n+1)-th poll of a batch waits until ``start + n × average_interval``): never more requests
            per batch-minute than fixed polling at this interval, while the schedule may spend what it saved
            early on polls near the expected end. ``0`` disables.
        large_batch_records: batches with at least this many runs are *large*...
        large_batch_after: ...and, this many seconds after the wait began,
        large_batch_interval: are polled at most once per this many seconds.
    """

    average_interval: float = GUIDED_INTERVAL
    large_batch_records: int = LARGE_BATCH_RECORDS
    large_batch_after: float = LARGE_BATCH_AFTER
    large_batch_interval: float = LARGE_BATCH_INTERVAL

    def earliest(self, tracker: _Tracker, start: float, now: float) -> float:
        """The earliest time the tracker's next poll may be sent (a list call that read ``k`` batches
        counts ``1/k`` of a request for each)."""
        earliest = start + tracker.requests * self.average_interval if self.average_interval > 0 else now
        b = tracker.batch
        if (b is not None and b.runs_count >= self.large_batch_records and now - start >= self.large_batch_after
                and self.large_batch_interval > 0):
            earliest = max(earliest, now + self.large_batch_interval)
        return earliest


#: No limit beyond ``poll_interval``/``max_poll_interval`` (benchmarks of the bare schedule, tests).
UNLIMITED = PollingGuidance(average_interval=0.0, large_batch_interval=0.0)


@dataclass
class _Tracker:
    uuid: str
    next_poll: float
    interval: float
    polls: int = 0
    requests: float = 0.0  # requests spent on this batch (a shared list call counts its share)
    last_executed: int = -1
    first_seen: tuple[float, int] | None = None
    batch: Batch | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)

    def schedule(self, now: float, min_interval: float, max_interval: float,
                 backoff_cap: float | None = None) -> None:
        assert self.batch is not None
        b = self.batch
        if b.status == BatchStatus.RUNNING and self.first_seen and b.runs_count:
            t0, e0 = self.first_seen
            done = b.executed_runs_count - e0
            if done > 0 and now > t0:
                rate = done / (now - t0)
                eta = (b.runs_count - b.executed_runs_count) / rate
                self.interval = min(max(eta / 2, min_interval), max_interval)
                self.next_poll = now + self.interval
                return
        if b.status == BatchStatus.RUNNING and b.executed_runs_count != self.last_executed:
            # runs are completing but there is no rate yet: keep the current pace
            self.interval = min(max(self.interval, min_interval), max_interval)
        elif self.polls <= 1:
            self.interval = min(max(self.interval, min_interval), max_interval)
        else:  # pending/querying, unknown, or running without progress: back off
            self.interval = min(self.interval * 1.5, backoff_cap if backoff_cap is not None else max_interval)
        self.next_poll = now + self.interval


def raise_for_batch(batch: Batch) -> None:
    """Raise the matching error if ``batch`` ended ``error`` or ``cancelled``."""
    if batch.status == BatchStatus.ERROR:
        raise CargoBatchFailedError(
            f"Cargo batch {batch.uuid} (workflow {batch.workflow_uuid}) failed: "
            f"{batch.error_message or 'no errorMessage given'}. "
            f"{batch.executed_runs_count}/{batch.runs_count} runs executed, "
            f"{batch.failed_runs_count} failed, {batch.credits_used_count:g} credits used. "
            "Next step: open the batch in Cargo to see the failing node, fix the input or "
            "workflow, then re-run.",
            batch=batch,
        )
    if batch.status == BatchStatus.CANCELLED:
        raise CargoBatchCancelledError(
            f"Cargo batch {batch.uuid} (workflow {batch.workflow_uuid}) was cancelled after "
            f"{batch.executed_runs_count}/{batch.runs_count} runs ({batch.credits_used_count:g} credits). "
            "Next step: re-run if the cancellation was not intended.",
            batch=batch,
        )


def wait_for_batches(
    get_batch: Callable[[str], Batch],
    uuids: Sequence[str],
    *,
    timeout: float | None,
    poll_interval: float = 1.0,
    max_poll_interval: float = 30.0,
    on_progress: Callable[[BatchProgress], None] | None = None,
    raise_on_failure: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    initial: Mapping[str, Batch] | None = None,
    fetch_many: Callable[[Sequence[Batch]], Mapping[str, Batch]] | None = None,
    guidance: PollingGuidance | None = None,
) -> dict[str, Batch]:
    """Poll ``uuids`` until every batch is terminal; return them by UUID.

    ``guidance`` (default: Cargo's, :class:`PollingGuidance`) caps each batch's requests: on average no
    more than one per 5 s since the wait began, and for a batch of 1,000+ runs at most one per 10 s after
    the first minute. Pass :data:`UNLIMITED` (or your own) to choose otherwise.

    ``initial`` holds batches already read (e.g. just created): an unfinished one is first
    polled after ``poll_interval`` rather than at once, a finished one is not polled at all.

    ``fetch_many(batches)``, given the last known state of the unfinished batches, may return
    fresh states of many of them in one request (e.g. one list call per workflow); whenever a
    poll is due it is tried first, and every batch it returns counts as polled. Batches it
    leaves out, or all of them if it raises a :class:`CargoError`, are read with ``get_batch``.
    A fan-out of 50 batches then costs one request per polling round instead of 50.

    Raises:
        CargoWaitTimeoutError: a batch is still not terminal after ``timeout`` seconds
            (the error names the first such batch and its last status).
        CargoBatchFailedError / CargoBatchCancelledError: when ``raise_on_failure`` and a
            batch ended ``error``/``cancelled`` (raised after all batches are terminal).
    """
    if poll_interval <= 0 or max_poll_interval < poll_interval:
        raise ValueError("need 0 < poll_interval <= max_poll_interval")
    start = clock()
    rules = guidance if guidance is not None else PollingGuidance()
    pending = {u: _Tracker(uuid=u, next_poll=start, interval=poll_interval) for u in dict.fromkeys(uuids)}
    done: dict[str, Batch] = {}
    for uuid, known in (initial or {}).items():
        if uuid not in pending or not known.status.is_known:
            continue
        if known.is_terminal:
            done[uuid] = known
            del pending[uuid]
        else:
            pending[uuid].next_poll = start + poll_interval
            pending[uuid].batch = known
    while pending:
        now = clock()
        due = [t for t in pending.values() if t.next_poll <= now]
        listed: Mapping[str, Batch] = {}
        if due and fetch_many is not None and len(pending) > 1:
            last_seen = [t.batch for t in pending.values() if t.batch is not None]
            try:
                listed = fetch_many(last_seen) if len(last_seen) > 1 else {}
            except CargoError as exc:  # a list call is an optimisation: fall back to one GET each
                logger.debug("Listing %d batches at once failed (%s); polling them one by one.", len(last_seen), exc)
            # a batch whose fresh state came with the list is handled now even if it was not due yet
            due_uuids = {t.uuid for t in due}
            due += [t for t in pending.values() if t.uuid in listed and t.uuid not in due_uuids]
        for tracker in due:
            shared = listed.get(tracker.uuid)
            batch = shared or get_batch(tracker.uuid)
            tracker.polls += 1
            tracker.requests += 1.0 / max(len(listed), 1) if shared is not None else 1.0
            now = clock()
            tracker.batch = batch
            if batch.status == BatchStatus.RUNNING and tracker.first_seen is None:
                tracker.first_seen = (now, batch.executed_runs_count)
            if not batch.status.is_known:
                logger.warning(
                    "Cargo batch %s reports status %r, which this client does not know; "
                    "treating it as not finished.", batch.uuid, batch.status.value,
                )
            if on_progress is not None:
                on_progress(BatchProgress(batch=batch, elapsed=now - start, polls=tracker.polls))
            if batch.is_terminal:
                done[tracker.uuid] = batch
                del pending[tracker.uuid]
                continue
            # with a request budget, waiting longer than its interval without news only wastes it
            tracker.schedule(now, poll_interval, max_poll_interval,
                             min(max_poll_interval, max(rules.average_interval, poll_interval))
                             if rules.average_interval > 0 else None)
            tracker.next_poll = max(tracker.next_poll, rules.earliest(tracker, start, now))
            tracker.last_executed = batch.executed_runs_count
        if not pending:
            break
        now = clock()
        if timeout is not None and now - start >= timeout:
            late = next(iter(pending.values()))
            status = late.batch.status.value if late.batch else None
            raise CargoWaitTimeoutError(
                f"Cargo batch {late.uuid} was not finished after {timeout:g}s (last status: {status}; "
                f"{len(pending)} batch(es) still running). Next step: raise the poll timeout, or "
                "cancel the batch in Cargo if it is stuck.",
                batch_uuid=late.uuid,
                last_status=status,
            )
        wake = min(t.next_poll for t in pending.values())
        if timeout is not None:
            wake = min(wake, start + timeout)
        sleep(max(wake - now, 0.0))
    if raise_on_failure:
        for batch in done.values():
            raise_for_batch(batch)
    return {u: done[u] for u in dict.fromkeys(uuids)}
