"""The step driver: one loop for anything Cargo runs (batches, single runs, heal rounds), framework-free.

A *step* is what one orchestrator task asks of Cargo: one workflow over one input, run as one or several
batches (:class:`~cargo_gtm.running.handle.BatchHandle`) or as single runs
(:class:`~cargo_gtm.running.run_handle.RunHandle`). Both handles speak one protocol (:class:`StepHandle`:
``start`` / ``poll`` / ``cancel`` / ``settle`` / ``fetch_outputs``), and :class:`StepDriver` drives either:

1. **start** (:meth:`StepDriver.start`): attach to what earlier attempts made (the handle's ledger) or create,
   exactly once; a create that fails, or a stop, cancels what exists.
2. **wait** (:meth:`StepDriver.wait`): rounds of :meth:`StepDriver.poll_once` (one poll, progress logged, then
   :meth:`StepDriver.evaluate`: done, wait, over budget or timed out), sleeping on the client's clock. Over the
   budget or past the timeout: cancel, let the cancellation settle, raise :class:`~cargo_gtm.errors.CargoStepError`.
   A stop (``stops``, e.g. the orchestrator's interrupt) cancels unless ``cancel_on_stop`` is off.
3. **finish** (:meth:`StepDriver.finish`): credits (provider + execution charge), outcome check (a batch that
   ended ``error``/``cancelled``, a spend over the budget), outputs, the ``failed_rows`` policy, one
   :class:`StepResult` whose :func:`step_metadata` is the one metadata builder.

The phases can run in different processes (a deferrable orchestrator task: start in a worker, poll in an
async trigger, finish in a worker): re-create the handle from the unit UUIDs with
:meth:`BatchHandle.resume <cargo_gtm.running.handle.BatchHandle.resume>` /
:meth:`RunHandle.resume <cargo_gtm.running.run_handle.RunHandle.resume>`, and drive it with a new
:class:`StepDriver` of the same :class:`StepSettings` (a trigger calls ``poll_once`` from a thread).

Everything the step knows of the user's intent is one :class:`StepSettings` (budget, ``failed_rows``, the
deployed release, the listed batches, the empty frame's columns, waiting); no chunk carries its own copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..credits import CreditSplit
from ..download.outcomes import ERROR_COLUMN, STATUS_COLUMN, first_failure
from ..errors import CargoError, CargoStepError
from ..models import Batch, Release, Run
from .budget import ASSET_BUDGET, BudgetWording, CreditBudget, over_budget_cancelled, over_budget_finished
from .handle import CancelReport, StartReport
from .waiting import PollingGuidance, StatusSnapshot, timeout_error

if TYPE_CHECKING:
    from ..client import CargoClient

__all__ = ["FailedRows", "WaitSettings", "StepSettings", "StepHandle", "StepLog", "Verdict", "StepDriver",
           "StepResult", "step_metadata", "status_counts", "apply_failed_rows", "credits_remaining_or_none", "empty_result",
           "ProgressLog"]

logger = logging.getLogger("cargo_gtm")

#: What to do with rows of records whose run failed (``_status == "error"``): keep them, flagged (the
#: default: every input record stays accounted for), drop them from the DataFrame, or fail the step.
FailedRows = Literal["keep", "drop", "fail"]
_POLICIES = ("keep", "drop", "fail")


@dataclass(frozen=True)
class WaitSettings:
    """How a step waits: polling schedule, timeout, what a stop does, log cadence."""

    poll_interval: float = 1.0
    max_poll_interval: float = 30.0
    poll_timeout: float | None = 3600.0
    #: cancel what the step started when it is stopped (the orchestrator's interrupt, ``KeyboardInterrupt``)
    cancel_on_stop: bool = True
    progress_log_interval: float = 30.0
    #: request limits per unit (default: Cargo's, :class:`PollingGuidance`)
    guidance: PollingGuidance | None = None
    #: how long to wait for a cancellation to end (for the final spend)
    settle_timeout: float = 120.0


@dataclass(frozen=True)
class StepSettings:
    """Everything about a step that is not one batch's input: set once per step, read once.

    ``credit_budget``: the step's budget over all its batches or runs (give the tighter of several limits,
    :func:`~cargo_gtm.running.budget.tighter_budget`). ``deployed_release``: the workflow's release read just
    before (input checks, estimate), to name per-node credits without reading it again. ``listed_batches``:
    the workflow's newest batches (``CargoClient.list_newest_batches``) listed just before (estimate), the creates'
    exactly-once watermark.
    ``empty_columns``: the columns of the frame when nothing ran. ``credit_breakdown``: read per-node credits
    (``runs/metrics``) and the credits left. ``budget_wording``: how budget failures name the budget and what they
    advise (an orchestrator's own terms).
    """

    workflow_uuid: str
    workflow_name: str | None = None
    workflow_type: str | None = None  # "play" | "tool"
    output_node_slug: str | None = None
    credit_budget: float | None = None
    failed_rows: FailedRows = "keep"
    deployed_release: Release | None = None
    listed_batches: tuple[Batch, ...] | None = None
    empty_columns: tuple[str, ...] = ()
    credit_breakdown: bool = True
    wait: WaitSettings = field(default_factory=WaitSettings)
    budget_wording: BudgetWording = ASSET_BUDGET
    first_row: int = 0  # the input row of the step's first record (a ramp round runs a slice of the input)

    def __post_init__(self) -> None:
        if self.failed_rows not in _POLICIES:
            from ..errors import CargoInputError

            raise CargoInputError(f"failed_rows must be 'keep', 'drop' or 'fail', not {self.failed_rows!r}.")

    @property
    def what(self) -> str:
        """``tool 'Enrich company'`` (for messages)."""
        return f"{self.workflow_type or 'workflow'} {self.workflow_name or self.workflow_uuid!r}"


class StepLog(Protocol):
    """Where the driver reports (a :class:`logging.Logger`, an orchestrator's task log)."""

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


class StepHandle(Protocol):
    """The units (batches or single runs) of one step: the protocol :class:`StepDriver` drives.

    ``kind`` is ``"batch"`` or ``"run"``; ``units`` are the units started, latest known state, in request
    order (each has ``uuid``, ``status``, ``is_terminal``, ``runs_count``, ``executed_runs_count``,
    ``failed_runs_count``, ``credits_used_count``).
    """

    kind: str
    client: CargoClient
    requests: list[Any]

    @property
    def units(self) -> list[Any]: ...

    @property
    def uuids(self) -> list[str]: ...

    def start(self) -> StartReport: ...

    def poll(self) -> StatusSnapshot: ...

    def elapsed(self) -> float: ...

    def hurry(self) -> float | None: ...

    def sleep(self, seconds: float) -> None: ...

    def cancel(self) -> CancelReport: ...

    def settle(self, timeout: float = 120.0) -> tuple[list[Any], bool]: ...

    def spent(self, unit: Any) -> float: ...

    def credits(self, units: Sequence[Any], known: Release | None = None) -> CreditSplit: ...

    def failure(self, units: Sequence[Any]) -> CargoError | None: ...

    def fetch_outputs(self) -> list[Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """What a polling round means (:meth:`StepDriver.evaluate`): ``done``; ``wait`` ``wake_in`` seconds;
    ``over_budget`` (``used`` credits); ``timed_out``."""

    action: Literal["done", "wait", "over_budget", "timed_out"]
    snapshot: StatusSnapshot
    wake_in: float = 0.0
    used: float | None = None


def _plural(kind: str) -> str:
    return f"{kind}(es)" if kind == "batch" else f"{kind}(s)"


def _many(kind: str) -> str:
    return "batches" if kind == "batch" else f"{kind}s"


def _uuid_meta(kind: str, uuids: Sequence[str]) -> dict[str, Any]:
    return {"run_uuid": ",".join(uuids)} if kind == "run" else {"batch_uuid": uuids[0] if uuids else None}


class StepDriver:
    """Drives one :class:`StepHandle` through start → wait → finish (see the module docstring).

    Args:
        handle: the step's batches or runs.
        settings: the step's :class:`StepSettings`.
        log: where progress and decisions are written (default: the ``cargo_gtm`` logger).
        link: ``link(unit)`` → a URL to show beside a unit (Cargo's web app), or None.
        stops: exceptions that mean "the step was stopped" (the orchestrator's interrupt): what was started
            is cancelled (``cancel_on_stop``) and the exception goes on.
        stop_reason: how a stop is named in the log (``"the Dagster run was terminated"``).
        actor: who cancels, in messages (``"dagster-cargo"``).
    """

    def __init__(self, handle: StepHandle, settings: StepSettings, *, log: StepLog | None = None,
                 link: Any = None, stops: tuple[type[BaseException], ...] = (KeyboardInterrupt,),
                 stop_reason: str = "the step was stopped", actor: str = "cargo-gtm",
                 stop_flag: str = "cancel_on_stop") -> None:
        self.handle = handle
        self.settings = settings
        self.log: StepLog = log if log is not None else logger
        self.link = link or (lambda unit: None)
        self.stops = stops
        self.stop_reason = stop_reason
        self.actor = actor
        self.stop_flag = stop_flag
        budget = settings.credit_budget
        self.budget = CreditBudget(budget, handle.spent) if budget is not None else None
        self._progress: ProgressLog | None = None

    @property
    def noun(self) -> str:
        return self.handle.kind

    # -- the whole step ------------------------------------------------------------------
    def run(self) -> StepResult:
        """start → wait → finish; an empty input creates nothing and returns the empty result."""
        if not self.handle.requests:
            self.log.info(f"No input records for Cargo {self.settings.what}: no {self.noun} created, "
                          "0 credits spent.")
            return empty_result(self.settings)
        started = self.handle.client.clock.monotonic()
        self.start()
        if not self.handle.units:
            return empty_result(self.settings)
        self.wait()
        result = self.finish()
        result.wall_clock_seconds = round(self.handle.client.clock.monotonic() - started, 3)
        return result

    # -- start ---------------------------------------------------------------------------
    def start(self) -> StartReport:
        """Attach or create every unit, and say so; if the step stops half-way, or a create fails, the units
        that exist are cancelled and the error goes on."""
        stops: tuple[type[BaseException], ...] = (*self.stops, CargoError)
        try:
            report = self.handle.start()
        except stops:
            self.cancel(f"the step stopped before all {_many(self.noun)} were created")
            raise
        self._report_start(report)
        if report.errors:
            self.cancel(f"the step stopped before all {_many(self.noun)} were created")
            raise report.errors[0]
        return report

    def _report_start(self, report: StartReport) -> None:
        what, noun = self.settings.what, self.noun
        for unit in report.attached:
            self.log.info(f"Attaching to Cargo {noun} {unit.uuid} ({unit.status.value}) for {what}, created by "
                          f"an earlier attempt of this step, instead of starting a new one{self._link(unit)}")
        for exc in report.no_records:
            self.log.info(f"Cargo found no records for {what} ({getattr(exc, 'cargo_message', exc)}): no {noun} "
                          "created, 0 credits spent.")
        for made in report.created.values():
            if len(made) == 1:
                self.log.info(f"Created Cargo {noun} {made[0].uuid} for {what}{self._link(made[0])}")
            else:
                self.log.info(f"Created {len(made)} Cargo {_many(noun)} for {what}: "
                              f"{', '.join(u.uuid for u in made)} {self._link(made[0])}")

    def _link(self, unit: Any) -> str:
        url = self.link(unit)
        return f" ({url})" if url else ""

    # -- wait ----------------------------------------------------------------------------
    def poll_once(self) -> Verdict:
        """One polling round (only the units that are due), its progress logged, and what it means."""
        snapshot = self.handle.poll()
        if self._progress is None:
            self._progress = ProgressLog(self.log, self.settings.wait.progress_log_interval,
                                         total=len(self.handle.units), noun=self.noun)
        self._progress(snapshot)
        verdict = self.evaluate(snapshot, self.handle.elapsed())
        if verdict.action == "wait" and self.budget is not None and self.budget.near():
            sooner = self.handle.hurry()  # the spend nears the budget: poll as soon as the guidance allows
            if sooner is not None and sooner < verdict.wake_in:
                verdict = Verdict("wait", snapshot, wake_in=sooner)
        return verdict

    def evaluate(self, snapshot: StatusSnapshot, elapsed: float) -> Verdict:
        """What ``snapshot`` means ``elapsed`` seconds into the wait: a pure decision but for the budget,
        which may read the running units' spend (``handle.spent``, asked again only when they move)."""
        if snapshot.finished:
            return Verdict("done", snapshot)
        used = self.budget.overrun(snapshot) if self.budget is not None else None
        if used is not None:
            return Verdict("over_budget", snapshot, used=used)
        timeout = self.settings.wait.poll_timeout
        if timeout is not None and elapsed >= timeout:
            return Verdict("timed_out", snapshot)
        left = timeout - elapsed if timeout is not None else snapshot.wake_in
        return Verdict("wait", snapshot, wake_in=min(snapshot.wake_in, left))

    def wait(self) -> list[Any]:
        """Poll until every unit has ended; returns them. Over the budget or past the timeout: cancel and
        raise :class:`CargoStepError`. A stop cancels (unless ``cancel_on_stop`` is off) and goes on."""
        try:
            while True:
                verdict = self.poll_once()
                if verdict.action == "done":
                    return self.handle.units
                if verdict.action != "wait":
                    raise self.stop(verdict)
                self.handle.sleep(verdict.wake_in)
        except self.stops:
            if self.settings.wait.cancel_on_stop:
                self.cancel(self.stop_reason)
            else:
                self.log.warning(f"Step stopped; Cargo {_plural(self.noun)} {', '.join(self.handle.uuids)} keep "
                                 f"running ({self.stop_flag}=False).")
            raise

    def stop(self, verdict: Verdict) -> CargoStepError:
        """Cancel for an ``over_budget`` or ``timed_out`` verdict; the error to raise."""
        if verdict.action == "over_budget":
            assert verdict.used is not None and self.settings.credit_budget is not None
            return self._over_budget(self.settings.credit_budget, verdict.used)
        return self._timed_out(verdict.snapshot)

    def cancel(self, why: str) -> list[str]:
        """Cancel every unfinished unit, each outcome logged; the UUIDs actually cancelled."""
        report = self.handle.cancel()
        noun = self.noun
        for uuid in report.cancelled:
            self.log.warning(f"Cancelled Cargo {noun} {uuid} because {why}.")
        for uuid in report.already_finished:
            self.log.info(f"Cargo {noun} {uuid} had already finished; nothing to cancel.")
        for uuid in report.spared:
            self.log.info(f"Left Cargo {noun} {uuid} running although {why}: another run started it, this one only "
                          "waited on it.")
        for uuid, exc in report.failed.items():  # Cargo unreachable: say so, don't mask
            self.log.warning(f"Could not cancel Cargo {noun} {uuid} after {why}: {exc}. Cancel it in Cargo if it "
                             "is still running.")
        return report.cancelled

    def _cancel_outcome(self, cancelled: list[str]) -> str:
        spared = [u for u in self.handle.uuids if u in getattr(self.handle, "spared", ())]
        said = [f"{self.actor} cancelled {', '.join(cancelled)}, so no more credits are spent on it"] if cancelled \
            else []
        if spared:
            said.append(f"{', '.join(spared)} was left running: another run started it and waits on it")
        left = [u for u in self.handle.uuids if u not in spared]
        if not cancelled and left:
            said.append(f"{self.actor} could not cancel {', '.join(left)} (see the warning above): cancel it in Cargo "
                        "if it is still running")
        return "; ".join(said)

    def _timed_out(self, snapshot: StatusSnapshot) -> CargoStepError:
        timeout = self.settings.wait.poll_timeout or 0.0
        cancelled = self.cancel(f"it did not finish within {timeout:g}s")
        late = timeout_error(snapshot, timeout)
        unit = next((u for u in self.handle.units if u.uuid == late.batch_uuid), None)
        url = self.link(unit) if unit is not None else None
        return CargoStepError(
            f"Cargo {self.noun} {late.batch_uuid} was not finished after {timeout:g}s (last status: "
            f"{late.last_status}); {self._cancel_outcome(cancelled)}.",
            hint=f"raise the resource's poll_timeout if {_many(self.noun)} of this size take longer, or narrow the "
            "input.",
            metadata={f"{self.noun}_uuid": late.batch_uuid, **({"batch_url": url} if url else {})})

    def _over_budget(self, budget: float, guard: float) -> CargoStepError:
        """Cancel the units that passed the budget, wait for the cancellation to end; the error to raise."""
        cancelled = self.cancel("the credit budget was exceeded")
        final, settled = self.handle.settle(self.settings.wait.settle_timeout)
        executed = sum(u.executed_runs_count for u in final)
        runs = sum(u.runs_count for u in final)
        split = self.credits(final)
        spend = split.total if split is not None else float(sum(u.credits_used_count for u in final))
        return over_budget_cancelled(self.noun, self.handle.uuids, spend, budget, guard=guard, executed=executed,
                                     runs=runs, settled=settled, outcome=self._cancel_outcome(cancelled),
                                     wording=self.settings.budget_wording)

    # -- finish --------------------------------------------------------------------------
    def credits(self, units: Sequence[Any]) -> CreditSplit | None:
        """The units' credit split (provider per node, node executions); None (logged) when Cargo won't say."""
        try:
            return self.handle.credits(units, self.settings.deployed_release)
        except CargoError as exc:
            self.log.warning(f"Could not read the node executions and per-node credits of Cargo "
                             f"{_plural(self.noun)} {', '.join(u.uuid for u in units)} (runs/metrics): {exc}. "
                             "Reporting their creditsUsedCount, which leaves out Cargo's execution charge (0.01 per "
                             "node execution).")
            return None

    def finish(self) -> StepResult:
        """Outcome checks, outputs, the ``failed_rows`` policy and the result of finished units."""
        units = self.handle.units
        wanted = self.settings.credit_breakdown or self.settings.credit_budget is not None
        credits = self.credits(units) if wanted else None
        self._check_outcome(units, credits)
        frames = self.handle.fetch_outputs()
        return self._result(units, frames, credits)

    def _check_outcome(self, units: list[Any], credits: CreditSplit | None) -> None:
        """Fail when the finished units cost more than the budget, or a batch ended ``error``/``cancelled``."""
        used = credits.total if credits is not None else float(sum(u.credits_used_count for u in units))
        budget = self.settings.credit_budget
        if budget is not None and used > budget:
            raise over_budget_finished(self.noun, self.handle.uuids, used, budget, self.settings.budget_wording)
        failure = self.handle.failure(units)
        if failure is None:
            return
        failed = getattr(failure, "batch", None)
        self.cancel(f"{self.noun} {failed.uuid if failed else '?'} ended "
                    f"{failed.status.value if failed else 'badly'}")
        batches, runs = _split_units(units)
        partial = StepResult(frame=_empty_frame(self.settings), batches=batches, runs=runs, settings=self.settings)
        meta = step_metadata(partial, batch_url=self.link(failed) if failed is not None else None)
        raise CargoStepError(failure.message, hint=failure.hint, metadata=meta) from failure

    def _result(self, units: list[Any], frames: list[Any], credits: CreditSplit | None) -> StepResult:
        import pandas as pd

        if not frames:
            frame = pd.DataFrame(columns=[*self.settings.empty_columns, STATUS_COLUMN, ERROR_COLUMN])
        else:
            frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        counts = status_counts(frame)
        records = len(frame)
        uuids = [u.uuid for u in units]
        lead = f"Cargo {_plural(self.noun)} {', '.join(uuids)}"
        frame = apply_failed_rows(frame, self.settings.failed_rows, lead, self.log,
                                  metadata=_uuid_meta(self.noun, uuids), first_row=self.settings.first_row)
        remaining = credits_remaining_or_none(self.handle.client, self.log) if self.settings.credit_breakdown \
            else None
        batches, runs = _split_units(units)
        result = StepResult(frame=frame, batches=batches, runs=runs, settings=self.settings, credits=credits,
                            statuses=counts, records_count=records, credits_remaining=remaining)
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        split = (f" ({credits.provider:g} provider + {credits.execution_charge:.2f} execution charge for "
                 f"{credits.executions} node executions)" if credits is not None
                 else " (provider credits only: the execution charge could not be read)")  # never an unlabelled part
        self.log.info(f"{lead}: {records} input records ({summary or 'none'}), {len(frame)} output rows, "
                      f"{result.credits_used:g} credits{split}.")
        return result


def _split_units(units: Sequence[Any]) -> tuple[list[Batch], list[Run]]:
    """The batches and the runs among ``units``."""
    return [u for u in units if isinstance(u, Batch)], [u for u in units if isinstance(u, Run)]


def _empty_frame(settings: StepSettings) -> Any:
    import pandas as pd

    return pd.DataFrame(columns=list(settings.empty_columns))


def empty_result(settings: StepSettings) -> StepResult:
    """The result of a step with nothing to run: no unit, no credit, the input's columns."""
    return StepResult(frame=_empty_frame(settings), settings=settings)


# -- the result and its metadata -------------------------------------------------------------
@dataclass
class StepResult:
    """Finished units (batches or single runs) of a step: their outputs as one DataFrame and the figures.

    ``frame``: one row per input record, with ``_status``/``_error_message`` (after the ``failed_rows``
    policy); ``statuses``: rows per ``_status`` before it; ``credits``: the bill (provider + execution
    charge) when it was read, else the units' ``creditsUsedCount`` is all that is known.
    """

    frame: Any
    batches: list[Batch] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    credits: CreditSplit | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    records_count: int = 0
    settings: StepSettings | None = None
    credits_remaining: float | None = None
    wall_clock_seconds: float | None = None

    @property
    def units(self) -> list[Any]:
        """The batches, or the single runs, that ran."""
        return [*self.batches, *self.runs]

    @property
    def mode(self) -> str:
        """``"single_run"``, ``"batch"``, or ``"none"`` when nothing had to run."""
        return "single_run" if self.runs else ("batch" if self.batches else "none")

    @property
    def credits_used(self) -> float:
        """Credits billed: provider credits + execution charge when they were read (see
        :mod:`cargo_gtm.credits`), else the units' ``creditsUsedCount``."""
        if self.credits is not None:
            return self.credits.total
        return float(sum(u.credits_used_count for u in self.units))

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
        return sum(u.runs_count for u in self.units)

    @property
    def executed_runs_count(self) -> int:
        return sum(u.executed_runs_count for u in self.units)

    @property
    def failed_runs_count(self) -> int:
        return sum(u.failed_runs_count for u in self.units)

    @property
    def succeeded_runs_count(self) -> int:
        """Runs that ended ``success``: the rows marked so when statuses were read, else the counters' figure
        (executed - failed, an upper bound: it also counts skipped runs if Cargo counts those as executed,
        CARGO-DOCS 4.4)."""
        if self.statuses:
            return self.statuses.get("success", 0)
        return sum(u.succeeded_runs_count for u in self.units)


def status_counts(frame: Any) -> dict[str, int]:
    """Rows per ``_status`` value (success, error, filtered, skipped, cancelled), in that order."""
    if STATUS_COLUMN not in getattr(frame, "columns", ()):
        return {"success": len(frame)} if len(frame) else {}
    counts = frame[STATUS_COLUMN].value_counts(dropna=False)
    order = ["success", "error", "filtered", "skipped", "cancelled"]
    out = {name: int(counts.get(name, 0)) for name in order}
    out.update({str(k): int(v) for k, v in counts.items() if str(k) not in out})
    return out


def apply_failed_rows(frame: Any, policy: str, lead: str, log: StepLog, *,
                      metadata: Mapping[str, Any] | None = None, suffix: str = "", first_row: int = 0) -> Any:
    """The ``failed_rows`` policy: keep the rows of failed records (flagged, logged), drop them, or raise
    :class:`CargoStepError`. ``lead`` names what ran (``"Cargo batch(es) b-1"``)."""
    if STATUS_COLUMN not in getattr(frame, "columns", ()):
        return frame
    failed = int((frame[STATUS_COLUMN] == "error").sum())
    if not failed:
        return frame
    example = first_failure(frame, ERROR_COLUMN, first_row)  # named by its input (domain, title), not Cargo's record id
    what = f"{lead}: {failed} of {len(frame)} input records failed{suffix}{example}"
    if policy == "fail":
        raise CargoStepError(f"{what}. The step fails because failed_rows='fail'.",
                             hint="fix the input or the workflow and re-run, or use failed_rows='keep' to get them "
                             "flagged in the output.", metadata={**(metadata or {}), "failed_rows": failed})
    if policy == "drop":
        log.warning(f"{what}; their rows were dropped (failed_rows='drop').")
        return frame.loc[frame[STATUS_COLUMN] != "error"].reset_index(drop=True)
    log.warning(f"{what}; their rows are kept with {STATUS_COLUMN}='error' and the reason in {ERROR_COLUMN}.")
    return frame


def credits_remaining_or_none(client: CargoClient, log: StepLog) -> float | None:
    """Credits left in the subscription (billing needs an admin token: None, logged, without one)."""
    try:
        return client.get_subscription().credits_remaining
    except CargoError as exc:
        log.warning(f"Could not read the Cargo credit balance (billing needs an admin token): {exc}")
        return None


def step_metadata(result: StepResult, *, batch_url: str | None = None,
                  breakdown: bool | None = None) -> dict[str, Any]:
    """The one metadata builder, framework-free: plain values keyed without a namespace.

    Keys: ``batch_uuid`` (``batch_uuids``/``batch_count`` for several), ``batch_status``, ``batch_url``,
    ``run_uuid`` and ``mode`` (single runs), ``workflow_*``, ``output_node_slug``, run counters,
    ``input_records``/``failed_rows``/``skipped_rows``/``filtered_rows``, the bill (``credits_used`` =
    ``provider_credits`` + ``execution_charge`` for ``node_executions``), ``credits_per_record`` (per succeeded
    record), ``credits_remaining``, ``cargo_duration_seconds``, ``wall_clock_seconds`` and, with ``breakdown``,
    ``provider_credits/<node slug>``. Counters and credits are summed over the units; keys that would be
    constant are left out (None).
    """
    s = result.settings
    out: dict[str, Any] = {"workflow_uuid": s.workflow_uuid if s else None,
                           "workflow_name": s.workflow_name if s else None,
                           "workflow_type": s.workflow_type if s else None,
                           "output_node_slug": s.output_node_slug if s else None}
    units = result.units
    if not units:
        out.update(runs_count=0, executed_runs_count=0, failed_runs_count=0, input_records=0, failed_rows=0,
                   skipped_rows=0, filtered_rows=0, credits_used=0.0, credits_per_record=0.0)
        return out
    out.update(_unit_fields(result, batch_url))
    out.update(_row_fields(result.statuses))
    out.update(_credit_fields(result.credits))
    total = result.credits_used
    succeeded = result.statuses.get("success", 0)
    out.update(credits_used=round(total, 6), credits_per_record=round(total / succeeded, 6) if succeeded else None,
               credits_remaining=result.credits_remaining, wall_clock_seconds=result.wall_clock_seconds)
    if (breakdown if breakdown is not None else (s is not None and s.credit_breakdown)) and result.credits:
        out.update({f"provider_credits/{slug}": round(v, 6) for slug, v in result.credits.provider_by_node.items()
                    if v})
    return out


def _unit_fields(result: StepResult, batch_url: str | None) -> dict[str, Any]:
    """Which units ran (one, or several of a chunked input), their status, counters and duration."""
    units = result.units
    first = units[0]
    durations = [u.duration_seconds for u in units if u.duration_seconds is not None]
    statuses = {u.status.value for u in units}
    out: dict[str, Any] = {
        "batch_status": first.status.value if len(statuses) == 1 else ",".join(sorted(statuses)),
        "runs_count": result.runs_count, "executed_runs_count": result.executed_runs_count,
        "failed_runs_count": result.failed_runs_count,
        "cargo_duration_seconds": max(durations) if durations else None,
    }
    if result.runs:
        out.update(run_uuid=",".join(r.uuid for r in result.runs), mode="single_run")
        return out
    several = len(units) > 1
    out.update(batch_uuid=first.uuid, batch_uuids=",".join(u.uuid for u in units) if several else None,
               batch_count=len(units) if several else None, batch_url=batch_url)
    return out


def _row_fields(statuses: Mapping[str, int] | None) -> dict[str, Any]:
    """Input records, failed/skipped/filtered rows and the failed ratio from rows per ``_status``."""
    counts = dict(statuses or {})
    records, failed = sum(counts.values()), counts.get("error", 0)
    return {"input_records": records, "failed_rows": failed, "failed_ratio": round(failed / records, 6) if records else None,
            "skipped_rows": counts.get("skipped", 0), "filtered_rows": counts.get("filtered", 0)}


def _credit_fields(credits: CreditSplit | None) -> dict[str, Any]:
    """The bill split from ``runs/metrics`` (all None without it)."""
    if credits is None:
        return dict.fromkeys(("provider_credits", "execution_charge", "node_executions"))
    return {"provider_credits": round(credits.provider, 6), "execution_charge": credits.execution_charge,
            "node_executions": credits.executions}


# -- progress ----------------------------------------------------------------------------------
class ProgressLog:
    """Logs each unit's progress at a sensible cadence: every ``every_seconds``, on each status change, and at
    the end. With more than ``detail_limit`` units (a fan-out), per-unit lines are kept for what needs
    attention (unknown status, ``error``/``cancelled``, failed runs at the end) and the rest is summed up in
    one line every ``every_seconds`` and when the last unit ends. Time is the snapshot's ``elapsed``."""

    def __init__(self, log: Any, every_seconds: float, total: int = 1, detail_limit: int = 5,
                 noun: str = "batch") -> None:
        self.log = log
        self.every = every_seconds
        self.total = total
        self.noun = noun
        self.detailed = total <= detail_limit
        self._last_logged: dict[str, float] = {}
        self._last_key: dict[str, tuple[Any, ...]] = {}
        self._last_summary = 0.0

    def __call__(self, snapshot: StatusSnapshot) -> None:
        """Log what the round's polls found."""
        for progress in snapshot.updates:
            if self.detailed:
                self._log_unit(progress)
            else:
                self._log_attention(progress)
        if not self.detailed and snapshot.updates:
            self._summary(snapshot)

    def _log_unit(self, progress: Any) -> None:
        b = progress.batch
        key = (b.status.value, b.failed_runs_count > 0)
        now = progress.elapsed
        due = now - self._last_logged.get(b.uuid, float("-inf")) >= self.every
        if key == self._last_key.get(b.uuid) and not due and not b.is_terminal:
            return
        if progress.unknown_status:
            self.log.warning(f"Cargo {progress.describe()}; waiting for a known status.")
        else:
            self.log.info(f"Cargo {progress.describe()}")
        self._last_logged[b.uuid] = now
        self._last_key[b.uuid] = key

    def _log_attention(self, progress: Any) -> None:
        b = progress.batch
        if progress.unknown_status and self._last_key.get(b.uuid) != ("unknown",):
            self.log.warning(f"Cargo {progress.describe()}; waiting for a known status.")
            self._last_key[b.uuid] = ("unknown",)
        elif b.is_terminal and (b.status.value in ("error", "cancelled") or b.failed_runs_count):
            self.log.warning(f"Cargo {progress.describe()}")

    def _summary(self, snapshot: StatusSnapshot) -> None:
        units = list(snapshot.batches.values())
        finished = sum(x.is_terminal for x in units)
        final = finished == self.total and any(u.batch.is_terminal for u in snapshot.updates)
        if snapshot.elapsed - self._last_summary < self.every and not final:
            return
        self._last_summary = snapshot.elapsed
        self.log.info(
            f"Cargo: {finished}/{self.total} {_many(self.noun)} finished, "
            f"{sum(x.executed_runs_count for x in units)}/{sum(x.runs_count for x in units)} runs "
            f"executed, {sum(x.failed_runs_count for x in units)} failed, "
            f"{sum(x.credits_used_count for x in units):g} provider credits so far, {snapshot.elapsed:.0f}s elapsed"
        )
