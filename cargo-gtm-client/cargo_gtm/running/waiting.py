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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import CargoBatchCancelledError, CargoBatchFailedError, CargoError, CargoWaitTimeoutError
from ..models import Batch, BatchStatus
from .clock import SYSTEM_CLOCK

__all__ = ["BatchPoller", "BatchProgress", "PollingGuidance", "StatusSnapshot", "UNLIMITED", "timeout_error",
           "wait_for_batches", "raise_for_batch"]

logger = logging.getLogger("cargo_gtm")


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
        noun = "batch" if isinstance(b, Batch) else "run"
        return (
            f"{noun} {b.uuid}: {status}, {b.executed_runs_count}/{b.runs_count} runs executed, "
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
            f"{batch.failed_runs_count} failed, {batch.credits_used_count:g} credits used.",
            hint="open the batch in Cargo to see the failing node, fix the input or workflow, then re-run.",
            batch=batch,
        )
    if batch.status == BatchStatus.CANCELLED:
        raise CargoBatchCancelledError(
            f"Cargo batch {batch.uuid} (workflow {batch.workflow_uuid}) was cancelled after "
            f"{batch.executed_runs_count}/{batch.runs_count} runs ({batch.credits_used_count:g} credits).",
            hint="re-run if the cancellation was not intended.",
            batch=batch,
        )


@dataclass(frozen=True)
class StatusSnapshot:
    """What one polling round knows: every batch's latest state, the polls it made, what is left.

    Attributes:
        batches: the latest known state of every batch (unpolled ones as first given), in wait order.
        updates: the batches polled in this round, as :class:`BatchProgress` (in poll order).
        elapsed: seconds since the wait began (the poller's clock).
        pending: UUIDs of the batches not terminal yet.
        wake_in: seconds from now until the next poll is due (``0`` when done).
    """

    batches: dict[str, Batch]
    updates: tuple[BatchProgress, ...]
    elapsed: float
    pending: tuple[str, ...]
    wake_in: float

    @property
    def finished(self) -> bool:
        """Whether every batch is terminal."""
        return not self.pending


class BatchPoller:
    """The polling schedule of one or many batches; each :meth:`poll` is one round.

    A round sends the polls that are due (one list call per workflow for many batches when
    ``fetch_many`` is given, one GET each otherwise) and returns a :class:`StatusSnapshot`.
    The poller never sleeps and never raises for a batch's status: the caller decides what a
    snapshot means (wait, log, cancel, give up).

    ``initial`` holds batches already read (e.g. just created): an unfinished one is first
    polled after ``poll_interval`` rather than at once, a finished one is not polled at all.
    ``fetch_many(batches)``, given the last known state of the unfinished batches, may return
    fresh states of many of them in one request; batches it leaves out, or all of them if it
    raises a :class:`CargoError`, are read with ``get_batch``.
    """

    def __init__(self, get_batch: Callable[[str], Batch], uuids: Sequence[str], *, now: Callable[[], float],
                 poll_interval: float = 1.0, max_poll_interval: float = 30.0,
                 initial: Mapping[str, Batch] | None = None,
                 fetch_many: Callable[[Sequence[Batch]], Mapping[str, Batch]] | None = None,
                 guidance: PollingGuidance | None = None) -> None:
        if poll_interval <= 0 or max_poll_interval < poll_interval:
            raise ValueError("need 0 < poll_interval <= max_poll_interval")
        self._get = get_batch
        self._fetch_many = fetch_many
        self._now = now
        self.start = now()
        self.uuids = list(dict.fromkeys(uuids))
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.rules = guidance if guidance is not None else PollingGuidance()
        self.pending = {u: _Tracker(uuid=u, next_poll=self.start, interval=poll_interval) for u in self.uuids}
        self.latest: dict[str, Batch] = {}
        for uuid, known in (initial or {}).items():
            if uuid in self.pending and known.status.is_known:
                self._take_initial(uuid, known)

    def _take_initial(self, uuid: str, known: Batch) -> None:
        self.latest[uuid] = known
        if known.is_terminal:
            del self.pending[uuid]
        else:
            self.pending[uuid].next_poll = self.start + self.poll_interval
            self.pending[uuid].batch = known

    def elapsed(self) -> float:
        """Seconds since the wait began."""
        return self._now() - self.start

    def poll(self) -> StatusSnapshot:
        """One round: poll every batch that is due, then report what is known."""
        now = self._now()
        due = [t for t in self.pending.values() if t.next_poll <= now]
        listed = self._list(due) if due else {}
        due_uuids = {t.uuid for t in due}
        due += [t for t in self.pending.values() if t.uuid in listed and t.uuid not in due_uuids]  # fresh: take it
        updates = tuple(self._read(tracker, listed) for tracker in due)
        return self.snapshot(updates)

    def hurry(self) -> float:
        """Bring every pending poll forward to the earliest time the guidance allows (and ``poll_interval``
        from now): e.g. when the spend nears a budget. Returns the seconds until the next poll is due."""
        now = self._now()
        for tracker in self.pending.values():
            soonest = max(now + self.poll_interval, self.rules.earliest(tracker, self.start, now))
            tracker.next_poll = min(tracker.next_poll, soonest)
        return self.snapshot().wake_in

    def snapshot(self, updates: tuple[BatchProgress, ...] = ()) -> StatusSnapshot:
        """The current state, without polling."""
        now = self._now()
        wake = min((t.next_poll for t in self.pending.values()), default=now)
        return StatusSnapshot(batches={u: self.latest[u] for u in self.uuids if u in self.latest}, updates=updates,
                              elapsed=now - self.start, pending=tuple(self.pending), wake_in=max(wake - now, 0.0))

    def _list(self, due: list[_Tracker]) -> Mapping[str, Batch]:
        """Fresh states of many batches in one request per workflow (an optimisation: {} when it fails)."""
        last_seen = [t.batch for t in self.pending.values() if t.batch is not None]
        if self._fetch_many is None or len(self.pending) < 2 or len(last_seen) < 2:
            return {}
        try:
            return self._fetch_many(last_seen)
        except CargoError as exc:  # fall back to one GET each
            logger.debug("Listing %d batches at once failed (%s); polling them one by one.", len(last_seen), exc)
            return {}

    def _read(self, tracker: _Tracker, listed: Mapping[str, Batch]) -> BatchProgress:
        """Take one batch's fresh state (from the list call, or a GET) and schedule its next poll."""
        shared = listed.get(tracker.uuid)
        batch = shared or self._get(tracker.uuid)
        tracker.polls += 1
        tracker.requests += 1.0 / max(len(listed), 1) if shared is not None else 1.0
        now = self._now()
        tracker.batch = self.latest[tracker.uuid] = batch
        if batch.status == BatchStatus.RUNNING and tracker.first_seen is None:
            tracker.first_seen = (now, batch.executed_runs_count)
        if not batch.status.is_known:
            logger.warning("Cargo batch %s reports status %r, which this client does not know; "
                           "treating it as not finished.", batch.uuid, batch.status.value)
        if batch.is_terminal:
            del self.pending[tracker.uuid]
        else:
            self._schedule(tracker, now)
        return BatchProgress(batch=batch, elapsed=now - self.start, polls=tracker.polls)

    def _schedule(self, tracker: _Tracker, now: float) -> None:
        rules = self.rules
        # with a request budget, waiting longer than its interval without news only wastes it
        cap = min(self.max_poll_interval, max(rules.average_interval, self.poll_interval)) \
            if rules.average_interval > 0 else None
        tracker.schedule(now, self.poll_interval, self.max_poll_interval, cap)
        tracker.next_poll = max(tracker.next_poll, rules.earliest(tracker, self.start, now))
        assert tracker.batch is not None
        tracker.last_executed = tracker.batch.executed_runs_count


def timeout_error(snapshot: StatusSnapshot, timeout: float) -> CargoWaitTimeoutError:
    """The error for a wait that ran out of time, naming the first unfinished batch."""
    late = snapshot.pending[0]
    batch = snapshot.batches.get(late)
    status = batch.status.value if batch is not None else None
    noun = "run" if batch is not None and not isinstance(batch, Batch) else "batch"
    return CargoWaitTimeoutError(
        f"Cargo {noun} {late} was not finished after {timeout:g}s (last status: {status}; "
        f"{len(snapshot.pending)} {noun}(s) still running).",
        hint=f"raise the poll timeout, or cancel the {noun} in Cargo if it is stuck.",
        batch_uuid=late,
        last_status=status,
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
    sleep: Callable[[float], None] = SYSTEM_CLOCK.sleep,
    clock: Callable[[], float] = SYSTEM_CLOCK.monotonic,
    initial: Mapping[str, Batch] | None = None,
    fetch_many: Callable[[Sequence[Batch]], Mapping[str, Batch]] | None = None,
    guidance: PollingGuidance | None = None,
) -> dict[str, Batch]:
    """Poll ``uuids`` until every batch is terminal; return them by UUID.

    A loop over :class:`BatchPoller` rounds (see it for ``initial`` and ``fetch_many``): a fan-out of
    50 batches costs one request per polling round instead of 50.

    ``guidance`` (default: Cargo's, :class:`PollingGuidance`) caps each batch's requests: on average no
    more than one per 5 s since the wait began, and for a batch of 1,000+ runs at most one per 10 s after
    the first minute. Pass :data:`UNLIMITED` (or your own) to choose otherwise.

    Raises:
        CargoWaitTimeoutError: a batch is still not terminal after ``timeout`` seconds
            (the error names the first such batch and its last status).
        CargoBatchFailedError / CargoBatchCancelledError: when ``raise_on_failure`` and a
            batch ended ``error``/``cancelled`` (raised after all batches are terminal).
    """
    poller = BatchPoller(get_batch, uuids, now=clock, poll_interval=poll_interval,
                         max_poll_interval=max_poll_interval, initial=initial, fetch_many=fetch_many,
                         guidance=guidance)
    snapshot = poller.poll()
    while True:
        for update in snapshot.updates if on_progress is not None else ():
            on_progress(update)  # type: ignore[misc]
        if snapshot.finished:
            break
        elapsed = poller.elapsed()
        if timeout is not None and elapsed >= timeout:
            raise timeout_error(snapshot, timeout)
        sleep(snapshot.wake_in if timeout is None else min(snapshot.wake_in, max(timeout - elapsed, 0.0)))
        snapshot = poller.poll()
    if raise_on_failure:
        for batch in snapshot.batches.values():
            raise_for_batch(batch)
    return dict(snapshot.batches)
