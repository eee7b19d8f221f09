"""One Cargo step of a task instance, on the core's batch handle: start (exactly once), wait, heal, outputs.

The operator drives it; nothing here knows whether the wait happens in the worker or the triggerer.
Every batch is created or attached through :class:`cargo_provider.ledger.TaskStateLedger`, so a step
resumed after a deferral, a retry after a crash, or a replay of earlier heal rounds finds its batches by
their attempt keys instead of paying again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.exceptions import AirflowException

from cargo_gtm.errors import CargoBatchError, CargoError
from cargo_gtm.models import Batch, BatchStatus
from cargo_provider.hooks.cargo import CargoHook
from cargo_provider.inputs import Target, build_data, resolve_target
from cargo_provider.ledger import MemoryStore, TaskStateLedger, attempt_key, clear_generation

__all__ = ["CargoStep", "CargoStepError", "raise_for_event"]

log = logging.getLogger(__name__)

STATUS = "_status"
ERROR = "_error_message"
MAX_RECORDS_PER_BATCH = 5000
MAX_BATCH_BYTES = 8 * 1024 * 1024


class CargoStepError(AirflowException):
    """A Cargo step failed. The message says what failed, Cargo's reason, the batch and what to do next."""


def _fail(what: str, next_step: str, *, batch: str | None = None, reason: str | None = None) -> CargoStepError:
    parts = [what]
    if reason:
        parts.append(f"Cargo said: {reason}.")
    if batch:
        parts.append(f"Batch: {batch}.")
    parts.append(f"Next step: {next_step}")
    return CargoStepError(" ".join(parts))


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
                 credit_budget: float | None, failed_rows: str, logger: Any = None) -> None:
        self.client, self.target, self.ledger = client, target, ledger
        self.datas = datas
        self.data = datas[0] if datas else {"kind": "records", "records": []}
        self.settings = settings
        self.poll_interval, self.max_poll_interval = poll_interval, max_poll_interval
        self.output_node_slug = output_node_slug
        self.credit_budget = credit_budget
        self.failed_rows = failed_rows
        self.log = logger or log
        self.heal_round = 0
        self.handle: Any = None
        self.rounds: list[list[Batch]] = []  # finished rounds' batches
        self.frame: Any = None  # merged output of the finished rounds
        self.credits: Any = None  # CreditSplit of the finished rounds (None: runs/metrics unreadable)
        self.spent = 0.0
        self._heal_positions: list[int] = []
        self._first_failed: list[int] = []

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def for_operator(cls, op: Any, context: Mapping[str, Any], *, resuming: bool = False) -> CargoStep:
        hook = CargoHook(op.cargo_conn_id)
        settings = hook.settings
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
        return cls(client, target, datas, ledger=ledger, settings=settings,
                   poll_interval=op.poll_interval or settings.poll_interval,
                   max_poll_interval=op.max_poll_interval or settings.max_poll_interval,
                   output_node_slug=op.output_node_slug, credit_budget=op.credit_budget,
                   failed_rows=op.failed_rows, logger=op.log)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.client.close()

    # -- starting ----------------------------------------------------------------------------------
    def _parts(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        from cargo_gtm.inputs.records import chunk_records

        if data.get("kind") != "records" or not data.get("records"):
            return [dict(data)]
        chunks = chunk_records(data["records"], max_records=MAX_RECORDS_PER_BATCH, max_bytes=MAX_BATCH_BYTES)
        return [{"kind": "records", "records": list(chunk)} for chunk in chunks]

    def _begin(self, datas: list[Mapping[str, Any]], scope: str | None) -> None:
        from cargo_gtm.running.handle import BatchHandle, BatchRequest
        from cargo_gtm.running.waiting import PollingGuidance

        parts = [part for data in datas for part in self._parts(data)
                 if not (part.get("kind") == "records" and not part.get("records"))]
        if not parts:
            self.handle = None
            self.log.info("No input records for %s %r: no batch created, 0 credits spent.", self.target.type,
                          self.target.name)
            return
        requests = [BatchRequest(self.target.workflow_uuid, part, attempt_key(self.target.workflow_uuid, part, scope),
                                 self.output_node_slug, part.get("records") if part.get("kind") == "records" else None)
                    for part in parts]
        for request in requests:
            self._adopt_enrolled_change(request)
        if self.handle is not None:
            self.handle.close()
        self.handle = BatchHandle(self.client, requests, ledger=self.ledger, poll_interval=self.poll_interval,
                                  max_poll_interval=self.max_poll_interval, guidance=PollingGuidance(),
                                  fetch_metrics=True)
        try:
            report = self.handle.start()
        except BaseException:
            self.cancel("the task stopped before all batches were created")
            raise
        self._report(report)

    def _adopt_enrolled_change(self, request: Any) -> None:
        """A segment change already enrolled in this workflow (a duplicate asset event, another DAG run) is
        attached to, never run twice: the batch whose echoed ``data`` is exactly this change's is recorded."""
        from cargo_gtm.running.reconcile import data_matches

        if request.data.get("kind") != "change" or self.ledger.recorded(request.attempt_key):
            return
        for batch in self.client.list_all_batches(self.target.workflow_uuid):
            usable = batch.status not in (BatchStatus.ERROR, BatchStatus.CANCELLED, BatchStatus.CANCELLING)
            if usable and isinstance(batch.data, Mapping) and data_matches(batch.data, request.data):
                self.log.warning("Segment change %s was already enrolled in %s %r by Cargo batch %s; attaching to "
                                 "it instead of running the change again.", request.data.get("changeUuid"),
                                 self.target.type, self.target.name, batch.uuid)
                self.ledger.created(request.attempt_key, batch)
                return

    def _report(self, report: Any) -> None:
        what = f"{self.target.type} {self.target.name!r}"
        for batch in report.created.get(self.target.workflow_uuid, []):
            self.log.info("Created Cargo batch %s for %s%s", batch.uuid, what, self._link(batch))
        for exc in report.no_records:
            self.log.info("Cargo found no records for %s (%s): no batch created, 0 credits spent.", what,
                          getattr(exc, "cargo_message", exc))
        if report.errors:
            self.cancel("the task stopped before all batches were created")
            exc = report.errors[0]
            raise _fail(f"Creating a Cargo batch for {what} failed: {exc}",
                        getattr(exc, "hint", None) or "fix the input or the connection, then clear the task.",
                        reason=getattr(exc, "reason", None)) from exc

    def _link(self, batch: Batch) -> str:
        url = self.settings.batch_url(batch.uuid, batch.workflow_uuid)
        return f" ({url})" if url else ""

    def start(self) -> None:
        """Round 0: attach to this task's batch(es) or create them exactly once."""
        self._begin(self.datas, None)

    @property
    def batches(self) -> list[Batch]:
        return self.handle.batches if self.handle is not None else []

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

    # -- waiting -----------------------------------------------------------------------------------
    def budget_left(self) -> float | None:
        return None if self.credit_budget is None else max(self.credit_budget - self.spent, 0.0)

    def wait(self, cancel_on_stop: bool = True) -> None:
        """Poll (on the client's clock) until every batch of the round ends; cancel on any interruption."""
        if self.handle is None:
            return
        budget = self._budget()
        try:
            while True:
                snapshot = self.handle.poll()
                for update in snapshot.updates:
                    self.log.info("Cargo %s", update.describe())
                if snapshot.finished:
                    return
                used = budget.overrun(snapshot) if budget is not None else None
                if used is not None:
                    raise self._over_budget(used)
                self.handle.sleep(snapshot.wake_in)
        except BaseException as exc:  # AirflowTaskTimeout, SIGTERM, KeyboardInterrupt...
            if cancel_on_stop and not isinstance(exc, CargoStepError):
                self.cancel(f"the task stopped while waiting ({type(exc).__name__})")
            raise

    def _budget(self) -> Any:
        left = self.budget_left()
        if left is None:
            return None
        from cargo_provider.budget import Budget

        return Budget(self.client, left)

    def _over_budget(self, used: float) -> CargoStepError:
        cancelled = self.cancel("the credit budget was exceeded")
        return _fail(f"Cargo batch(es) {', '.join(self.uuids)} of {self.target.type} {self.target.name!r} used "
                     f"{used:g} credits, over the budget of {self.credit_budget:g}; cancelled: "
                     f"{', '.join(cancelled) or 'none (already finished)'}.",
                     "raise credit_budget if this cost is expected, or narrow the input.", batch=self.uuids[0])

    def cancel(self, why: str) -> list[str]:
        """Cancel every unfinished batch of the current round; returns the ones cancelled (each logged)."""
        if self.handle is None:
            return []
        report = self.handle.cancel()
        for uuid in report.cancelled:
            self.log.warning("Cancelled Cargo batch %s because %s.", uuid, why)
        for uuid, exc in report.failed.items():
            self.log.warning("Could not cancel Cargo batch %s after %s: %s. Next step: cancel it in Cargo if it "
                             "is still running.", uuid, why, exc)
        return list(report.cancelled)

    # -- outcome -----------------------------------------------------------------------------------
    def check_outcome(self) -> None:
        """The round's final states: a failed or cancelled batch fails the step; its credits and outputs are
        taken; the budget is checked on the final spend."""
        if self.handle is None:
            self.rounds.append([])
            return
        self.wait()  # the batches are finished: one poll reads their final state
        batches = self.handle.batches
        split = self._credit_split(batches)
        self.credits = split if self.credits is None or split is None else self.credits + split
        self.spent += split.total if split is not None else float(sum(b.credits_used_count for b in batches))
        failed = next((b for b in batches if b.status in (BatchStatus.ERROR, BatchStatus.CANCELLED)), None)
        if failed is not None:
            self.cancel(f"batch {failed.uuid} ended {failed.status.value}")
            self._raise_for_batch(failed)
        if self.credit_budget is not None and self.spent > self.credit_budget:
            raise _fail(f"Cargo batch(es) {', '.join(self.uuids)} cost {self.spent:g} credits in the end, over the "
                        f"budget of {self.credit_budget:g}; they finished before the budget check could cancel "
                        "them, so the output is not kept.", "raise credit_budget, or narrow the input.",
                        batch=self.uuids[0])
        self.rounds.append(batches)
        self._merge(self.handle.fetch_outputs())

    def _raise_for_batch(self, batch: Batch) -> None:
        from cargo_gtm.running.waiting import raise_for_batch

        try:
            raise_for_batch(batch)
        except CargoBatchError as exc:
            raise _fail(exc.message, exc.hint or "open the batch in Cargo, fix the input, then clear the task.",
                        batch=batch.uuid, reason=batch.error_message) from exc

    def _credit_split(self, batches: list[Batch]) -> Any:
        from cargo_gtm.credits import credit_split

        try:
            metrics = [m for b in batches for m in self.handle.metrics(b)]
            slugs: dict[str, str] = {}
            for release_uuid in {b.release_uuid for b in batches if b.release_uuid}:
                slugs.update({n.uuid: n.slug for n in self.client.get_release(release_uuid).nodes})
            return credit_split(metrics, slugs)
        except CargoError as exc:
            self.log.warning("Could not read runs/metrics of Cargo batch(es) %s: %s. Reporting creditsUsedCount, "
                             "which leaves out Cargo's execution charge.", ", ".join(b.uuid for b in batches), exc)
            return None

    # -- heal rounds -------------------------------------------------------------------------------
    def _errors(self) -> list[int]:
        if self.frame is None or STATUS not in self.frame.columns:
            return []
        return [int(i) for i in self.frame.index[self.frame[STATUS] == "error"]]

    def heal_pending(self, retry_failed: int) -> bool:
        """Whether another heal round should run: rounds left, failed rows, and a way to re-run them."""
        if self.heal_round >= retry_failed:
            return False
        positions = self._errors()
        if not positions or self._heal_data(positions) is None:
            return False
        if not self._first_failed:
            self._first_failed = list(positions)
        return self._affordable(len(positions))

    def _heal_data(self, positions: list[int]) -> dict[str, Any] | None:
        if self.data.get("kind") == "records":
            records = self.data["records"]
            if len(records) != len(self.frame):
                return None
            return {"kind": "records", "records": [records[p] for p in positions]}
        if self.target.model_uuid is None or "_id" not in self.frame.columns:
            return None
        ids = list(dict.fromkeys(str(self.frame["_id"].iat[p]) for p in positions))
        return {"kind": "recordIds", "modelUuid": self.target.model_uuid, "ids": ids}

    def _affordable(self, count: int) -> bool:
        if self.credit_budget is None:
            return True
        rows = max(1, len(self.frame))
        estimate = self.spent / rows * count
        if self.spent + estimate <= self.credit_budget:
            return True
        self.log.warning("Not re-running the %d failed records: about %g credits would take the spend of %g over "
                         "the budget of %g. They stay flagged _status='error'.", count, estimate, self.spent,
                         self.credit_budget)
        return False

    def start_heal_round(self) -> None:
        positions = self._errors()
        data = self._heal_data(positions)
        self.heal_round += 1
        self._heal_positions = positions
        self.log.info("Healing round %d: re-running the %d records whose run failed.", self.heal_round, len(positions))
        self._begin([data] if data else [], f"heal{self.heal_round}")

    # -- outputs -----------------------------------------------------------------------------------
    def _merge(self, frames: list[Any]) -> None:
        import pandas as pd

        new = frames[0] if len(frames) == 1 else (pd.concat(frames, ignore_index=True) if frames else None)
        if self.frame is None:
            self.frame = new if new is not None else pd.DataFrame(columns=[STATUS, ERROR])
            return
        if new is None:
            return
        self.frame = _merge_round(self.frame, new.reset_index(drop=True), self._heal_positions,
                                  by_id=self.data.get("kind") != "records")

    def finish(self, path: Any) -> dict[str, Any]:
        """Apply ``failed_rows``, write the Parquet output, return the summary."""
        frame = self.frame.reset_index(drop=True) if self.frame is not None else None
        if frame is None:
            import pandas as pd

            frame = pd.DataFrame(columns=[STATUS, ERROR])
        counts = _status_counts(frame)
        records = len(frame)
        frame = self._apply_failed_rows(frame, counts)
        uri = _write_parquet(frame, path)
        batches = [b for r in self.rounds for b in r]
        summary = {
            "batch_uuids": [b.uuid for b in batches],
            "workflow_uuid": self.target.workflow_uuid, "workflow": self.target.name, "type": self.target.type,
            "records": records, "rows": len(frame), "status_counts": counts,
            "credits_total": round(self.credits.total if self.credits is not None else self.spent, 6),
            "credits_provider": round(self.credits.provider if self.credits is not None
                                      else float(sum(b.credits_used_count for b in batches)), 6),
            "node_executions": int(self.credits.executions) if self.credits is not None else None,
            "heal_rounds": self.heal_round, "uri": uri,
        }
        self.log.info("Cargo %s %r: %d input records (%s), %d output rows, %g credits; output %s", self.target.type,
                      self.target.name, records, ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none",
                      len(frame), summary["credits_total"], uri)
        return summary

    def _apply_failed_rows(self, frame: Any, counts: Mapping[str, int]) -> Any:
        failed = counts.get("error", 0)
        if not failed:
            return frame
        uuids = ", ".join(b.uuid for r in self.rounds for b in r)
        first = frame.loc[frame[STATUS] == "error", ERROR].dropna() if ERROR in frame.columns else []
        example = f' (first error: "{first.iloc[0]}")' if len(first) else ""
        if self.failed_rows == "fail":
            raise _fail(f"Cargo batch(es) {uuids}: {failed} of {len(frame)} input records failed{example}; the task "
                        "fails because failed_rows='fail'.", "fix the input or the workflow and clear the task, or "
                        "use failed_rows='keep' to get them flagged in the output.", batch=uuids.split(",")[0])
        if self.failed_rows == "drop":
            self.log.warning("%d of %d input records failed%s; their rows were dropped (failed_rows='drop').", failed,
                             len(frame), example)
            return frame.loc[frame[STATUS] != "error"].reset_index(drop=True)
        self.log.warning("%d of %d input records failed%s; their rows are kept with _status='error'.", failed,
                         len(frame), example)
        return frame


def raise_for_event(event: Mapping[str, Any]) -> None:
    """Fail the task for a trigger event that is not ``done`` (timeout, over budget, error)."""
    status = event.get("status")
    uuids = ", ".join(event.get("batch_uuids") or []) or "?"
    if status == "done":
        return
    if status == "timeout":
        raise _fail(f"Cargo batch(es) {uuids} did not finish before the task's execution_timeout; the "
                    f"trigger cancelled {', '.join(event.get('cancelled') or []) or 'none (already ending)'}.",
                    "raise execution_timeout if batches of this size take longer, or narrow the input.",
                    batch=uuids)
    if status == "over_budget":
        raise _fail(f"Cargo batch(es) {uuids} went over the credit budget ({event.get('message')}); the "
                    f"trigger cancelled {', '.join(event.get('cancelled') or []) or 'none'}.",
                    "raise credit_budget if this cost is expected, or narrow the input.", batch=uuids)
    raise _fail(f"Waiting for Cargo batch(es) {uuids} failed: {event.get('message')}.",
                "check the connection and Cargo's status; a retry attaches to the same batch.", batch=uuids)


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
        raise _fail("change=CHANGE_FROM_EVENT, but no triggering asset event names a Cargo segment change.",
                    "schedule the DAG on an asset watched by CargoSegmentChangeTrigger, or pass change=<uuid>.")
    return found


def _status_counts(frame: Any) -> dict[str, int]:
    if STATUS not in getattr(frame, "columns", ()):
        return {"success": len(frame)} if len(frame) else {}
    counts = frame[STATUS].value_counts(dropna=False)
    out = {name: int(counts.get(name, 0)) for name in ("success", "error", "filtered", "skipped", "cancelled")}
    out.update({str(k): int(v) for k, v in counts.items() if str(k) not in out})
    return out


def _merge_round(frame: Any, retry: Any, positions: list[int], *, by_id: bool) -> Any:
    """Put a heal round's rows in place of the failed ones (a record Cargo skipped keeps its error row)."""
    import pandas as pd

    if by_id:
        where = {str(rid): j for j, rid in enumerate(retry["_id"].astype(str))} if "_id" in retry.columns else {}
        pairs = [(p, where[str(frame["_id"].iat[p])]) for p in positions if str(frame["_id"].iat[p]) in where]
    else:
        pairs = list(zip(positions, range(len(retry)))) if len(retry) == len(positions) else []
    statuses = retry[STATUS] if STATUS in retry.columns else pd.Series("success", index=retry.index)
    pairs = [(p, j) for p, j in pairs if statuses.iat[j] != "skipped"]
    if not pairs:
        return frame
    rows = retry.iloc[[j for _, j in pairs]].copy()
    rows.index = pd.Index([p for p, _ in pairs])
    kept = frame.drop(index=rows.index)
    return pd.concat([kept, rows]).sort_index()


def _write_parquet(frame: Any, path: Any) -> str:
    """Write ``frame`` as Parquet to an ``ObjectStoragePath`` (parents made for local paths); its URI."""
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (NotImplementedError, OSError, AttributeError):  # object stores have no directories
        pass
    with path.open("wb") as handle:
        handle.write(buffer.getvalue())
    return str(path)
