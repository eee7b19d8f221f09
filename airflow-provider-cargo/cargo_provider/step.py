"""One Cargo step of a task instance, on the core's one run path (:class:`cargo_gtm.running.StepDriver`).

The core does the work: exactly-once start (through the ledger), polling within Cargo's guidance, the
credit budget, cancelling, outcome checks, credits (provider + 0.01 per node execution), outputs and the
``failed_rows`` policy. This module only adapts it to Airflow: the task state store as the ledger, Airflow's
stop exceptions, the task log, and heal rounds (``retry_failed``: one driven step per round over the failed
records, each with its own attempt key).

Every batch is created or attached through :class:`cargo_provider.ledger.TaskStateLedger`, so a step
resumed after a deferral, a retry after a crash, or a replay of earlier heal rounds finds its batches by
their attempt keys instead of paying again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.exceptions import AirflowException
from cargo_gtm.errors import CargoError
from cargo_gtm.models import Batch, BatchStatus

from cargo_provider.hooks.cargo import CargoHook
from cargo_provider.inputs import Target, build_data, resolve_target
from cargo_provider.ledger import MemoryStore, TaskStateLedger, attempt_key, clear_generation
from cargo_provider.outputs import parquet_writable, write_parquet
from cargo_provider.ramp import RampPlan

__all__ = ["CargoStep", "CargoStepError", "raise_for_event", "stop_exceptions"]

log = logging.getLogger(__name__)

STATUS = "_status"
ERROR = "_error_message"
MAX_RECORDS_PER_BATCH = 5000
MAX_BATCH_BYTES = 8 * 1024 * 1024
ACTOR = "airflow-provider-cargo"


class CargoStepError(AirflowException):
    """A Cargo step failed. The message says what failed, Cargo's reason, the batch and what to do next."""


def _fail(what: str, next_step: str, *, batch: str | None = None, reason: str | None = None) -> CargoStepError:
    parts = [what.rstrip(".") + "."]
    if reason:
        parts.append(f"Cargo said: {reason}.")
    if batch:
        parts.append(f"Batch: {batch}.")
    parts.append(f"Next step: {next_step}")
    return CargoStepError(" ".join(parts))


#: The next step of a budget failure, in the task's terms.
BUDGET_NEXT_STEP = ("raise the task's credit_budget if this cost is expected, or narrow the input (fewer records, a "
                    "filter or a limit). A retry gets only what is left of the budget; clearing the task starts a "
                    "fresh one.")


def task_budget(part: bool = False) -> Any:
    """The core's budget failures in the task's terms: "over the task's credit_budget", with its next step;
    ``part``: a round or retry given what is left of it ("over what was left of the task's credit_budget")."""
    from cargo_gtm.running import BudgetWording

    name = "what was left of the task's credit_budget" if part else "the task's credit_budget"
    return BudgetWording(name=name, hint=BUDGET_NEXT_STEP)


def _from_core(exc: CargoError) -> CargoStepError:
    """The core's error as the task's failure: its text (what failed, Cargo's reason, next step) and batch."""
    batch = (getattr(exc, "metadata", None) or {}).get("batch_uuid") or getattr(getattr(exc, "batch", None), "uuid",
                                                                                None)
    text = str(exc)
    return CargoStepError(text if not batch or batch in text else f"{text} (batch {batch})")


def stop_exceptions() -> tuple[type[BaseException], ...]:
    """What stops a task in the worker: Airflow's timeout and termination (SIGTERM), Ctrl-C, exit."""
    from airflow.sdk.exceptions import AirflowTaskTerminated, AirflowTaskTimeout

    return (AirflowTaskTimeout, AirflowTaskTerminated, KeyboardInterrupt, SystemExit)


class TaskLog:
    """The core's StepLog (info/warning of one message) on a task's or a trigger's logger."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def info(self, msg: str) -> None:
        self.logger.info("%s", msg)

    def warning(self, msg: str) -> None:
        self.logger.warning("%s", msg)


class _ResumeLedger(TaskStateLedger):
    """Resuming the same try (after a deferral): the recorded batches are this try's own, whatever their status."""

    def reusable(self, keys: list[str | None], datas: list[Mapping[str, Any]]) -> dict[str, Batch]:
        found: dict[str, Batch] = {}
        for key in keys:
            for uuid in self.recorded(key) if key is not None else []:
                found[key] = self.client.get_batch(uuid)  # type: ignore[index]
        return found


class CargoStep:
    """The batches of one operator run (round 0, then one round per heal), their outputs and credits."""

    def __init__(self, client: Any, target: Target, datas: list[dict[str, Any]], *, ledger: TaskStateLedger,
                 settings: Any, poll_interval: float, max_poll_interval: float, output_node_slug: str | None,
                 credit_budget: float | None, failed_rows: str, cancel_on_stop: bool = True,
                 retry_failed: int = 0, logger: Any = None) -> None:
        self.client, self.target, self.ledger = client, target, ledger
        self.datas = datas
        self.data = datas[0] if datas else {"kind": "records", "records": []}
        self.settings = settings
        self.poll_interval, self.max_poll_interval = poll_interval, max_poll_interval
        self.output_node_slug = output_node_slug
        self.credit_budget = credit_budget
        self.failed_rows = failed_rows
        self.cancel_on_stop = cancel_on_stop
        self.retry_failed = retry_failed
        self.log = logger or log
        self.heal_round = 0
        self.driver: Any = None
        self.results: list[Any] = []  # StepResult of each finished round
        self.rows: Any = None  # the core's HealRows over the finished rounds' merged output
        self._heal_positions: list[int] = []
        self._heal_parts: list[Any] = []
        self.prior_spent = 0.0  # credits earlier tries paid for batches never reused
        self.ramp: RampPlan | None = None  # a budget and nothing to estimate from: the records' ramp rounds
        self._round_first_row = 0  # the input row of the current ramp round's first record
        self.try_number = 0

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def for_operator(cls, op: Any, context: Mapping[str, Any], *, resuming: bool = False) -> CargoStep:
        settings = CargoHook(op.cargo_conn_id).settings
        client = settings.client()
        target = resolve_target(client, play=op.play, tool=op.tool, workflow=op.workflow)
        datas = [build_data(target, records=op.records, filter=op.filter, limit=op.limit, segment=op.segment,
                            record_ids=op.record_ids, change=change, change_kinds=op.change_kinds, client=client)
                 for change in _changes(op.change, context)]
        store = context.get("task_state_store")
        if store is None:
            op.log.warning("No task_state_store in the context (Airflow < 3.3?): a retry after a crash cannot "
                           "find this try's batch, so it may pay again.")
            store = MemoryStore()
        ledger_cls = _ResumeLedger if resuming else TaskStateLedger
        ledger = ledger_cls(store, client, generation=clear_generation(context), logger=op.log)
        step = cls(client, target, datas, ledger=ledger, settings=settings,
                   poll_interval=op.poll_interval or settings.poll_interval,
                   max_poll_interval=op.max_poll_interval or settings.max_poll_interval,
                   output_node_slug=op.output_node_slug, credit_budget=op.credit_budget,
                   failed_rows=op.failed_rows, cancel_on_stop=op.cancel_on_kill, retry_failed=op.retry_failed,
                   logger=op.log)
        step.try_number = int(getattr(context.get("ti"), "try_number", 0) or 0)
        return step

    @property
    def resuming(self) -> bool:
        """Resumed after a deferral: this try's batches exist, nothing is checked again before them."""
        return isinstance(self.ledger, _ResumeLedger)

    def close(self) -> None:
        if self.driver is not None:
            self.driver.handle.close()
        self.client.close()

    def step_settings(self, budget: float | None) -> Any:
        """The core's settings of one round. With heal rounds, each round keeps its failed rows (they are what
        the next round re-runs) and the ``failed_rows`` policy is applied once to the merged rows."""
        from cargo_gtm.running import StepSettings, WaitSettings

        return StepSettings(workflow_uuid=self.target.workflow_uuid, workflow_name=self.target.name,
                            workflow_type=self.target.type, output_node_slug=self.output_node_slug,
                            credit_budget=budget, failed_rows="keep" if self.retry_failed else self.failed_rows,
                            budget_wording=task_budget(budget != self.credit_budget),
                            first_row=self._round_first_row,
                            wait=WaitSettings(poll_interval=self.poll_interval,
                                              max_poll_interval=max(self.max_poll_interval, self.poll_interval),
                                              poll_timeout=None, cancel_on_stop=self.cancel_on_stop))

    # -- starting ----------------------------------------------------------------------------------
    def _parts(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        from cargo_gtm.inputs.records import chunk_records

        if data.get("kind") != "records":
            return [dict(data)]
        chunks = chunk_records(data.get("records") or [], max_records=MAX_RECORDS_PER_BATCH, max_bytes=MAX_BATCH_BYTES)
        return [{"kind": "records", "records": list(chunk)} for chunk in chunks if chunk]

    def _requests(self, datas: list[Mapping[str, Any]], scope: str | None) -> list[Any]:
        from cargo_gtm.running import BatchRequest

        parts = [part for data in datas for part in self._parts(data)]
        return [BatchRequest(self.target.workflow_uuid, part, key, self.output_node_slug,
                             part.get("records") if part.get("kind") == "records" else None)
                for part, key in zip(parts, _part_keys(self.target.workflow_uuid, parts, scope))]

    def _begin(self, datas: list[Mapping[str, Any]], scope: str | None) -> None:
        from cargo_gtm.running import BatchHandle, StepDriver

        requests = self._requests(datas, scope)
        for request in requests:
            self._adopt_enrolled_change(request)
        if scope is None and not self.resuming and self._check_before_creating(requests):
            plan = self._ramp_plan()  # a budget and nothing to estimate from: the first ramp round instead
            if plan is not None:
                self.ramp = plan
                self.log.info("No credit estimate for Cargo %s %r and a credit_budget of %g: running its records "
                              "in rounds (1 record, then up to 50, then 500), each sized to what is left of the "
                              "budget.", self.target.type, self.target.name, self.credit_budget)
                requests = self._requests([self._ramp_round_data(0, 1)], RampPlan.scope(0))
        if self.driver is not None:
            self.driver.handle.close()
        settings = self.step_settings(self.budget_left())
        handle = BatchHandle.for_step(self.client, requests, settings, ledger=self.ledger)
        handle.spared = self.ledger.shared()  # another run's change batches: waited on, never cancelled here
        self.driver = StepDriver(handle, settings, log=TaskLog(self.log), link=self._link, stops=stop_exceptions(),
                                 stop_reason="the Airflow task was stopped (timeout, kill, mark failed or clear)",
                                 actor=ACTOR, stop_flag="cancel_on_kill")
        if not requests:
            self.log.info("No input records for %s %r: no batch created, 0 credits spent.", self.target.type,
                          self.target.name)
            return
        try:
            self.driver.start()
        except CargoError as exc:
            raise _from_core(exc) from exc

    def _check_before_creating(self, requests: list[Any]) -> bool:
        """Round 0, before the first create of the batches this try would create (not those it attaches to: an
        earlier try's batch, recorded or made by a recorded intent, is paid for and runs the release it was created
        with): a tool's records must carry its required form fields (a run without them fails and is still
        charged), and with a ``credit_budget`` the estimate (the input's size × the workflow's recent cost per
        record, plus the execution charge; see :mod:`cargo_gtm.estimate`) of all the step's batches, those attached
        to included, must fit in what is left of it (earlier tries' dead batches count). True when there is no
        estimate to check the budget by (the records may then run in ramp rounds)."""
        checks = self.target.type == "tool" or self.credit_budget is not None
        fresh = [r for r in requests if not self.ledger.may_attach(r.attempt_key, r.data)] if checks else []
        if not fresh:
            return False
        if self.target.type == "tool":
            self._check_required_fields(requests, fresh)
        if self.credit_budget is None:
            return False
        return self._refuse_over_estimate(requests, attached=len(requests) - len(fresh)) and len(fresh) == len(requests)

    def _check_required_fields(self, requests: list[Any], fresh: list[Any]) -> None:
        """The records of the ``fresh`` requests (those to create), named by their place in the whole input."""
        from cargo_gtm.inputs.records import check_required_fields

        records, positions, start = [], [], 0
        for request in requests:
            chunk = request.data.get("records") or []
            if any(request is f for f in fresh):
                records.extend(chunk)
                positions.extend(range(start, start + len(chunk)))
            start += len(chunk)
        if records:
            try:
                required = self.client.required_form_fields(self.target.workflow_uuid)
            except CargoError as exc:
                raise _from_core(exc) from exc
            check_required_fields(records, required, what=f"tool {self.target.name!r}", positions=positions)

    def _refuse_over_estimate(self, requests: list[Any], attached: int = 0) -> bool:
        from cargo_gtm.estimate import try_estimate
        from cargo_gtm.running import estimate_error, no_estimate

        what = f"{self.target.type} {self.target.name!r}"
        left = self.budget_left()
        self._refuse_when_spent()
        estimate = try_estimate(self.client, self.target.workflow_uuid, [r.data for r in requests])
        if estimate is None:  # Cargo could not be asked (logged): ramp rounds, or the budget holds while they run
            return True
        self.log.info("Cargo %s: %s.", what, estimate.describe())
        if estimate.credits is None:
            self.log.info("%s", no_estimate(what, left))
            return True
        if estimate.credits > left:  # with attached chunks: an earlier try's batches run on, named
            running = sorted({u for r in requests for u in self.ledger.recorded(r.attempt_key)}) if attached else []
            raise _from_core(estimate_error(what, estimate.describe(), left, {}, task_budget(), running=running,
                                            attached=attached))
        return False

    def _refuse_when_spent(self, kept: Sequence[Batch] = ()) -> None:
        """Nothing is started (nor an earlier try's batches collected) once earlier tries spent the whole budget:
        on batches never reused, and (``kept``) on the ramp rounds a retry would run again as they are."""
        from cargo_gtm.credits import batch_credit_split

        if self.credit_budget is None:
            return
        try:
            spent = round(self.prior_spent + sum(batch_credit_split(self.client, b).total for b in kept), 6)
        except CargoError as exc:
            raise _from_core(exc) from exc
        if spent >= self.credit_budget:
            named = f" (ramp rounds {', '.join(b.uuid for b in kept)} among them)" if kept else ""
            raise _fail(f"Not starting Cargo {self.target.type} {self.target.name!r}: earlier tries of this task "
                        f"already spent {spent:g} credits of its credit_budget of {self.credit_budget:g}{named}; "
                        "no batch was created",
                        "clear the task to start over with a fresh budget, or raise credit_budget.")

    def _kept_rounds(self, plan: RampPlan) -> list[Batch]:
        """The batches of the ramp rounds an earlier try ran that this one attaches to (kept sizes, usable)."""
        found, done = [], 0
        for n, size in enumerate(self.ledger.ramp_sizes()):
            parts = self._parts({"kind": "records", "records": plan.records[done:done + size]})
            for key in _part_keys(self.target.workflow_uuid, parts, RampPlan.scope(n)):
                found += self.ledger.usable_recorded(key)
            done += size
        return found

    def _adopt_enrolled_change(self, request: Any) -> None:
        """A segment change already enrolled in this workflow (a duplicate asset event, another DAG run) is
        attached to, never run twice: the batch whose echoed ``data`` is exactly this change's is recorded as shared
        (waited on, never cancelled here). Not when this task already sent a create for it (an intent on record): the
        batch holding the change since may be its own, which the start's content proof attaches to as its own."""
        from cargo_gtm.running.reconcile import data_matches

        key = request.attempt_key
        if request.data.get("kind") != "change" or self.ledger.recorded(key) or self.ledger.intended(key):
            return
        for batch in self.client.list_all_batches(self.target.workflow_uuid):
            usable = batch.status not in (BatchStatus.ERROR, BatchStatus.CANCELLED, BatchStatus.CANCELLING)
            if usable and isinstance(batch.data, Mapping) and data_matches(batch.data, request.data):
                self.log.warning("Segment change %s was already enrolled in %s %r by Cargo batch %s; attaching to "
                                 "it instead of running the change again.", request.data.get("changeUuid"),
                                 self.target.type, self.target.name, batch.uuid)
                self.ledger.shared_with(request.attempt_key, batch)
                return

    def _link(self, batch: Any) -> str | None:
        return self.settings.batch_url(batch.uuid, getattr(batch, "workflow_uuid", None))

    def start(self) -> None:
        """Round 0: attach to this task's batch(es) or create them exactly once. Batches from before the task was
        cleared that still run are cancelled first. What earlier tries of this task paid for batches that are never
        reused is read at the try's first start and kept (so that a resume after a deferral does not count this
        try's own batches again): it counts against a ``credit_budget``, and the summary reports it."""
        if not self.resuming:
            self.ledger.cancel_earlier_generation()
        remembered = self.ledger.prior_spent(self.try_number) if self.resuming else None
        self.prior_spent = remembered if remembered is not None else self._spent_by_earlier_tries()
        self.ledger.remember_prior_spent(self.try_number, self.prior_spent)
        plan = self._ramp_plan()
        if plan is not None and self._ramp_began(plan):  # ramped before: the same rounds again, attached to
            if self.credit_budget is not None and not self.resuming:
                self._refuse_when_spent(self._kept_rounds(plan))
            self.ramp = plan
            self._begin([self._ramp_round_data(0, 1)], RampPlan.scope(0))
            return
        self._begin(self.datas, None)

    # -- ramp rounds (see cargo_provider.ramp) ------------------------------------------------------
    def _ramp_plan(self) -> RampPlan | None:
        """The ramp of a tool's records under a ``credit_budget`` (more than one record, no heal rounds: those
        re-run records by their place in one round), or None."""
        records = self.data.get("records") if self.target.type == "tool" and self.data.get("kind") == "records" \
            else None
        budget = self.budget_left()
        if budget is None or self.retry_failed or len(self.datas) != 1 or not isinstance(records, list) \
                or len(records) < 2:
            return None
        return RampPlan(records, budget, max_round=len(records))  # after 500: what fits, in batches run at once

    def _ramp_began(self, plan: RampPlan) -> bool:
        """Whether a try of this generation ramped: its round 0 has a batch (recorded, or made by its intent). A
        round 0 whose create never left began nothing: this try estimates like a first one."""
        if not self.ledger.ramp_sizes():
            return False
        (part,) = self._parts({"kind": "records", "records": plan.records[:1]})
        (key,) = _part_keys(self.target.workflow_uuid, [part], RampPlan.scope(0))
        return self.ledger.may_attach(key, part)

    def _ramp_round_data(self, n: int, size: int) -> dict[str, Any]:
        """Round ``n``'s data, its size kept first (a later try runs the same rounds)."""
        assert self.ramp is not None
        self.ledger.remember_ramp_size(n, size)
        self._round_first_row = self.ramp.done
        return self.ramp.take(size)

    def next_round(self, retry_failed: int) -> bool:
        """Start the next round, if any: the next ramp round, else a heal round. A ramp that cannot afford one more
        record fails the task with the figures (the records not run cost nothing)."""
        if self.ramp is None:
            if not self.heal_pending(retry_failed):
                return False
            self.start_heal_round()
            return True
        plan, n = self.ramp, self.ramp.rounds
        if plan.done >= plan.total:
            return False
        spent = self.spent() - self.prior_spent
        fixed = self.ledger.ramp_sizes()
        succeeded = sum(dict(r.statuses).get("success", 0) for r in self.results)
        size = fixed[n] if n < len(fixed) else plan.next_size(spent, succeeded)
        if size <= 0:
            raise _from_core(plan.stopped(f"{self.target.type} {self.target.name!r}", self.all_uuids(), spent,
                                          task_budget()))
        self.log.info("Ramp round %d: %d record(s) of %d (%d done, %g of %g credits spent).", n + 1, size,
                      plan.total, plan.done, spent, plan.budget)
        self._begin([self._ramp_round_data(n, size)], RampPlan.scope(n))
        return True

    def all_uuids(self) -> list[str]:
        """Every batch of the finished rounds, in order."""
        return [b.uuid for r in self.results for b in r.batches]

    def _spent_by_earlier_tries(self) -> float:
        """Credits (provider + execution charge) of this generation's batches that are never reused: a retry after
        an over-budget stop or a failed batch does not get the whole budget again."""
        from cargo_gtm.credits import batch_credit_split

        dead = self.ledger.dead_owned()
        try:
            spent = round(sum(batch_credit_split(self.client, b).total for b in dead), 6)
        except CargoError as exc:
            raise _from_core(exc) from exc
        if spent:
            counted = f"they count against its credit_budget of {self.credit_budget:g}" if self.credit_budget \
                is not None else "the summary reports them as credits_earlier_tries"
            self.log.info("Earlier tries of this task spent %g credits on Cargo batch(es) %s that are not reused; "
                          "%s.", spent, ", ".join(b.uuid for b in dead), counted)
        return spent

    @property
    def batches(self) -> list[Batch]:
        return self.driver.handle.units if self.driver is not None else []

    @property
    def uuids(self) -> list[str]:
        return [b.uuid for b in self.batches]

    def refresh_finished(self) -> bool:
        """Read every batch's status now (before deferring); True when all have ended."""
        states = [self.client.get_batch(u) for u in self.uuids]
        for batch in states:
            self.log.info("Cargo batch %s is %s (%d/%d runs executed).", batch.uuid, batch.status.value,
                          batch.executed_runs_count, batch.runs_count)
        return all(b.is_terminal for b in states)

    # -- waiting (in the worker) -------------------------------------------------------------------
    def spent(self) -> float:
        """Credits this task spent: earlier tries' dead batches (with a budget) and this try's finished rounds."""
        return self.prior_spent + float(sum(r.credits_used for r in self.results))

    def budget_left(self) -> float | None:
        return None if self.credit_budget is None else max(self.credit_budget - self.spent(), 0.0)

    def wait(self) -> None:
        """The core's wait: poll until every batch ends; over budget → cancel and fail; a stop cancels."""
        if not self.batches:
            return
        try:
            self.driver.wait()
        except CargoError as exc:
            raise _from_core(exc) from exc

    def cancel(self, why: str) -> list[str]:
        """Cancel every unfinished batch of the current round; returns the ones cancelled (each logged)."""
        return self.driver.cancel(why) if self.driver is not None else []

    # -- outcome -----------------------------------------------------------------------------------
    def check_outcome(self) -> None:
        """The round's finish (credits, outcome checks, outputs), its rows merged into the step's frame."""
        if not self.batches:
            from cargo_gtm.running import empty_result

            result = empty_result(self.driver.settings) if self.driver is not None else None
        else:
            self.wait()  # finished already: one poll reads their final state
            try:
                result = self.driver.finish()
            except CargoError as exc:
                raise _from_core(exc) from exc
        if result is not None:
            self.results.append(result)
            self._merge(result.frame)

    # -- heal rounds (the core's HealRows: which records to send again, how their rows merge) --------
    def heal_pending(self, retry_failed: int) -> bool:
        """Whether another heal round should run: rounds left, failed rows, and a way to re-run them."""
        if self.heal_round >= retry_failed or self.rows is None:
            return False
        positions = self.rows.pending()
        if not positions:
            return False
        self._heal_parts = self.rows.round_data(positions, max_records=MAX_RECORDS_PER_BATCH,
                                                max_bytes=MAX_BATCH_BYTES)
        return bool(self._heal_parts) and self._affordable(len(positions))

    def _affordable(self, count: int) -> bool:
        from cargo_gtm.running import unaffordable_round

        if self.credit_budget is None:
            return True
        spent = self.spent()
        per_record = (spent - self.prior_spent) / max(1, len(self.rows.frame))  # this try's rounds: its records
        if spent + per_record * count <= self.credit_budget:
            return True
        self.log.warning("%s", unaffordable_round(count, f"{self.target.type} {self.target.name!r}",
                                                  per_record * count, per_record, spent, self.credit_budget))
        return False

    def start_heal_round(self) -> None:
        """Start the round :meth:`heal_pending` planned (its batches' data and the rows they re-run)."""
        parts, self._heal_parts = self._heal_parts, []
        self.heal_round += 1
        self._heal_positions = [p for _, positions in parts for p in positions]
        self.log.info("Healing round %d: re-running the %d records whose run failed, paying only for them.",
                      self.heal_round, len(self._heal_positions))
        self._begin([data for data, _ in parts], f"heal{self.heal_round}")

    def _merge(self, new: Any) -> None:
        from cargo_gtm.running import HealRows

        if self.rows is not None and self.ramp is not None:  # ramp rounds are consecutive slices of the input
            import pandas as pd

            self.rows.frame = pd.concat([self.rows.frame, new], ignore_index=True)
            return
        if self.rows is None:  # without heal rounds, the rows are only kept (dropped failed rows are no concern)
            heals = bool(self.retry_failed)
            records = self.data["records"] if heals and self.data.get("kind") == "records" else None
            self.rows = HealRows(new, records=records, model_uuid=self.target.model_uuid if heals else None,
                                 log=TaskLog(self.log), what=f"{self.target.type} {self.target.name!r}")
            return
        self.rows.merge(new, self._heal_positions)

    @property
    def frame(self) -> Any:
        """The merged output of the finished rounds (failed rows kept), or None before the first."""
        return self.rows.frame if self.rows is not None else None

    # -- outputs -----------------------------------------------------------------------------------
    def finish(self, path: Any) -> dict[str, Any]:
        """The ``failed_rows`` policy on the merged rows, the Parquet output, the summary (XCom, asset extra)."""
        from cargo_gtm.download import restore_caller_columns
        from cargo_gtm.running import StepResult, apply_failed_rows, status_counts, step_metadata

        frame = self.frame.reset_index(drop=True) if self.frame is not None else _empty_frame()
        batches = [b for r in self.results for b in r.batches]
        uuids = [b.uuid for b in batches]
        if not self.retry_failed:  # one round (or ramp rounds): the core applied the policy already
            counts = _summed_statuses(self.results)
            records = sum(r.records_count for r in self.results)
            kept = frame
        else:
            counts, records = status_counts(frame), len(frame)
            try:
                kept = apply_failed_rows(frame, self.failed_rows, f"Cargo batch(es) {', '.join(uuids)}",
                                         TaskLog(self.log), metadata={"batch_uuid": uuids[0] if uuids else None})
            except CargoError as exc:
                raise _from_core(exc) from exc
        if self.target.type == "tool":  # a DataFrame's or Parquet file's columns as given, not their JSON form
            sent = self.data.get("records") or []
            given = list(getattr(getattr(sent, "source", None), "columns", ()))
            kept = parquet_writable(kept, restore_caller_columns(kept, sent), given)
        combined = StepResult(frame=kept, batches=batches, credits=_total_credits(self.results), statuses=counts,
                              records_count=records, settings=self.step_settings(self.credit_budget))
        meta = step_metadata(combined, breakdown=False)
        uri, as_text = write_parquet(kept, path)
        if as_text:
            self.log.warning("Parquet cannot hold the values of column(s) %s in one type (e.g. text and numbers): "
                             "they are written as JSON text, each value as json.dumps gives it (json.loads reads "
                             "them back), and named in the summary's json_text_columns.", ", ".join(as_text))
        summary = {
            "batch_uuids": uuids, "workflow_uuid": self.target.workflow_uuid, "workflow": self.target.name,
            "type": self.target.type, "records": records, "rows": len(kept), "status_counts": counts,
            "credits_total": meta["credits_used"], "credits_provider": meta.get("provider_credits"),
            "execution_charge": meta.get("execution_charge"), "node_executions": meta.get("node_executions"),
            "heal_rounds": self.heal_round, "uri": uri, "json_text_columns": as_text,
            "credits_earlier_tries": self.prior_spent,  # billed too: batches of earlier tries never reused
        }
        self.log.info("Cargo %s %r: %d input records, %d output rows, %g credits; output written to %s",
                      self.target.type, self.target.name, records, len(kept), summary["credits_total"], uri)
        return summary


def _part_keys(workflow_uuid: str, parts: list[dict[str, Any]], scope: str | None) -> list[str]:
    """The attempt keys of a round's batches: each part's content and round; a part whose content repeats an earlier
    part's (a list repeated) also has its place, so that both keep a batch each. Every other key is as it always
    was, so a task deferred or failed before this rule still finds its batches."""
    keys: list[str] = []
    for index, part in enumerate(parts):
        key = attempt_key(workflow_uuid, part, scope)
        keys.append(key if key not in keys else attempt_key(workflow_uuid, part, f"{scope or ''}#{index}"))
    return keys


def raise_for_event(event: Mapping[str, Any]) -> None:
    """Fail the task for a trigger event that is not ``done`` (timeout, over budget, error)."""
    status = event.get("status")
    uuids = ", ".join(event.get("batch_uuids") or []) or "?"
    cancelled = ", ".join(event.get("cancelled") or []) or "none (already ending)"
    if status == "done":
        return
    if status == "timeout":
        raise _fail(f"Cargo batch(es) {uuids} did not finish before the task's execution_timeout; the trigger "
                    f"cancelled {cancelled}", "raise execution_timeout if batches of this size take longer, or "
                    "narrow the input", batch=uuids)
    if status == "over_budget":
        raise _fail(f"{event.get('message')} (the trigger cancelled {cancelled})", BUDGET_NEXT_STEP, batch=uuids)
    raise _fail(f"Waiting for Cargo batch(es) {uuids} failed: {event.get('message')}",
                "check the connection and Cargo's status; a retry attaches to the same batch", batch=uuids)


def _changes(change: Any, context: Mapping[str, Any]) -> list[Any]:
    """The change uuid(s) to run: as given, or those named by the triggering asset events' payloads."""
    from cargo_provider.triggers.changes import CHANGE_FROM_EVENT

    if change != CHANGE_FROM_EVENT:
        return [change]
    found: list[str] = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (getattr(event, "extra", None) or {}).get("payload") or {}
            uuid = payload.get("change_uuid") if isinstance(payload, Mapping) else None
            if uuid and uuid not in found:
                found.append(uuid)
    if not found:
        raise _fail("change=CHANGE_FROM_EVENT, but no triggering asset event names a Cargo segment change",
                    "schedule the DAG on an asset watched by CargoSegmentChangeTrigger, or pass change=<uuid>.")
    return found


def _empty_frame() -> Any:
    import pandas as pd

    return pd.DataFrame(columns=[STATUS, ERROR])


def _summed_statuses(results: list[Any]) -> dict[str, int]:
    """The rounds' rows per ``_status``, added up (in the order of the first)."""
    counts: dict[str, int] = {}
    for result in results:
        for status, n in dict(result.statuses).items():
            counts[status] = counts.get(status, 0) + n
    return counts


def _total_credits(results: list[Any]) -> Any:
    """The rounds' credit splits added up (None when one of them could not be read)."""
    splits = [r.credits for r in results if r.units]
    if not splits or any(s is None for s in splits):
        return None
    total = splits[0]
    for split in splits[1:]:
        total = total + split
    return total
