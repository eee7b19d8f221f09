"""``CargoRunOperator``: run a Cargo play, tool or workflow as batches, exactly once, and keep the outputs.

One task instance: resolve the workflow → build the input (checked before anything is spent) → attach to
the batch an earlier try made or create it exactly once (:class:`~cargo_provider.ledger.TaskStateLedger`
over Airflow 3.3's task state store) → read its status → wait (deferred to the triggerer by default, or
polling in the worker) → outputs: a DataFrame with one row per input record and its ``_status``, written
as Parquet to an ``ObjectStoragePath``; a small summary in XCom and as the extra of every ``Asset`` outlet.

The batches are cancelled when the task times out (``execution_timeout``, deferred or not), is killed
(``on_kill``: mark failed, clear, SIGTERM) or goes over its ``credit_budget``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.exceptions import AirflowException
from airflow.sdk import BaseOperator

from cargo_provider.hooks.cargo import CargoHook

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CargoRunOperator"]


def _default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class CargoRunOperator(BaseOperator):
    """Run a Cargo play, tool or workflow over records and keep its outputs.

    :param play: a play's name or UUID (runs over ``filter``/``segment``/``record_ids``/``change``).
    :param tool: a tool's name or UUID (runs over ``records``).
    :param workflow: a workflow UUID (a play's or a tool's).
    :param records: a tool's input: a list of dicts or a DataFrame (e.g. ``upstream.output`` from XCom), or an
        ``ObjectStoragePath`` / path string of a Parquet, CSV, JSON or JSON Lines file (read as the file holds
        it: a CSV's cells as text). Templated: strings inside inline records are rendered by Jinja; wrap them in
        ``airflow.sdk.literal(...)`` to send them as written.
    :param filter: a play's filter, Cargo's shape ``{"conjonction": "and", "groups": [...]}``.
    :param limit: at most this many records of the filter.
    :param segment: a segment's name or UUID (play input).
    :param record_ids: record ids of the play's model.
    :param change: a segment change UUID (its records of ``change_kinds``).
    :param output_path: where the Parquet output goes (``ObjectStoragePath`` or URI; templated). Default:
        ``file://$AIRFLOW_HOME/cargo_outputs/<dag_id>/<run_id>/<task_id>.parquet``.
    :param credit_budget: cancel and fail once the batches cost more than this many credits (execution
        charge included), as ``credit_budget`` in dagster-cargo; and fail before creating any batch when the
        estimate (input size × the workflow's recent credits per record + the execution charge) is over it.
    :param retry_failed: re-run the records whose run failed, up to this many rounds, paying only for them.
    :param failed_rows: ``keep`` (flagged ``_status='error'``), ``drop`` or ``fail``.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poll_interval: first seconds between polls (default: the connection's, else 5).
    :param max_poll_interval: longest seconds between polls (default: the connection's, else 30).
    :param cancel_on_kill: cancel the batches when the task is killed or times out (default True).
    :param cargo_conn_id: the Cargo connection (default ``cargo_default``).
    """

    template_fields: Sequence[str] = ("play", "tool", "workflow", "records", "filter", "segment", "record_ids",
                                      "change", "output_path")
    template_fields_renderers = {"filter": "json", "records": "json"}
    ui_color = "#f0e4ff"

    def __init__(self, *, play: str | None = None, tool: str | None = None, workflow: str | None = None,
                 records: Any = None, filter: Mapping[str, Any] | None = None, limit: int | None = None,
                 segment: str | None = None, record_ids: Sequence[str] | None = None, change: str | None = None,
                 change_kinds: Sequence[str] = ("added", "updated"), output_node_slug: str | None = None,
                 output_path: Any = None, credit_budget: float | None = None, retry_failed: int = 0,
                 failed_rows: str = "keep", deferrable: bool | None = None, poll_interval: float | None = None,
                 max_poll_interval: float | None = None, cancel_on_kill: bool = True,
                 cargo_conn_id: str = CargoHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if failed_rows not in ("keep", "drop", "fail"):
            raise ValueError(f"failed_rows must be 'keep', 'drop' or 'fail', not {failed_rows!r}. Next step: pick one "
                             "of the three in the task's arguments.")
        if retry_failed < 0:
            raise ValueError(f"retry_failed must be 0 or more (heal rounds), not {retry_failed}. Next step: pass "
                             "the number of heal rounds, e.g. retry_failed=1.")
        self.play, self.tool, self.workflow = play, tool, workflow
        self.records, self.filter, self.limit = records, filter, limit
        self.segment, self.record_ids, self.change = segment, record_ids, change
        self.change_kinds = tuple(change_kinds)
        self.output_node_slug = output_node_slug
        self.output_path = output_path
        self.credit_budget = credit_budget
        self.retry_failed = retry_failed
        self.failed_rows = failed_rows
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.cancel_on_kill = cancel_on_kill
        self.cargo_conn_id = cargo_conn_id
        self._active: Any = None  # the running step, for on_kill
        self._last_summary: dict[str, Any] | None = None
        self._cargo_base_url: str | None = None

    # -- Airflow entry points ---------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        from cargo_provider.step import CargoStep

        step = CargoStep.for_operator(self, context)
        self._active = step
        try:
            step.start()
            return self._complete(context, step)
        finally:
            self._active = None
            step.close()

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Resumed from :class:`~cargo_provider.triggers.cargo.CargoBatchTrigger` with its event.

        The step is replayed through the ledger: every batch this try recorded (round 0, then each heal
        round) is attached to as it is, so nothing is created twice and earlier rounds' outputs are merged
        again."""
        from cargo_provider.step import CargoStep, raise_for_event

        event = dict(event or {})
        step = CargoStep.for_operator(self, context, resuming=True)
        self._active = step
        try:
            uuids = set(event.get("batch_uuids") or [])
            if uuids and not uuids <= step.ledger.owned() | step.ledger.shared():
                # a trigger of an earlier try (cleared) fired: its batches are not this try's; the replay below
                # re-reads this try's own batches and defers again if they are still running
                self.log.warning("Ignoring a trigger event about Cargo batch(es) %s: they belong to an earlier try "
                                 "of this task, not to this one.", ", ".join(sorted(uuids)))
            else:
                raise_for_event(event)
            step.start()
            return self._complete(context, step)
        finally:
            self._active = None
            step.close()

    def on_kill(self) -> None:
        """The task is killed (SIGTERM: mark failed, clear) or timed out while polling: cancel its batches."""
        step = self._active
        if step is not None and self.cancel_on_kill:
            step.cancel("the Airflow task was killed or timed out")

    # -- helpers ------------------------------------------------------------------------------------
    def _deadline(self, context: Context) -> float | None:
        """Epoch seconds when ``execution_timeout`` runs out, anchored on the task's start (kept across deferrals)."""
        if self.execution_timeout is None:
            return None
        ti = context.get("ti")
        start = getattr(ti, "start_date", None)
        base = start.timestamp() if start is not None else time.time()
        return base + self.execution_timeout.total_seconds()

    def _defer(self, context: Context, step: Any) -> None:
        from cargo_provider.triggers.cargo import CargoBatchTrigger

        self.log.info("Deferring: Cargo batch(es) %s wait in the triggerer.", ", ".join(step.uuids))
        trigger = CargoBatchTrigger(step.uuids, self.cargo_conn_id, deadline=self._deadline(context),
                                    poll_interval=step.poll_interval, max_poll_interval=step.max_poll_interval,
                                    credit_budget=step.budget_left(), cancel_on_kill=self.cancel_on_kill,
                                    spared_uuids=sorted(step.ledger.shared() & set(step.uuids)),
                                    workflow_name=step.target.name, workflow_type=step.target.type)
        self.defer(trigger=trigger, method_name="execute_complete")

    def _complete(self, context: Context, step: Any) -> dict[str, Any]:
        """Each round: read its batches' status (deferring while they run, or waiting in the worker), outcome
        checks; then ramp or heal rounds; then outputs and the XCom summary (also each Asset outlet's extra)."""
        while True:
            if step.batches and self.deferrable and not step.refresh_finished():
                self._defer(context, step)
            step.check_outcome()  # not deferred: the core's driver waits here
            if not step.next_round(self.retry_failed):  # a ramp round, else a heal round
                break
        summary = step.finish(self._output_path(context))
        self._last_summary, self._cargo_base_url = summary, step.settings.base_url
        self._emit_outlets(context, summary)
        return summary

    def _output_path(self, context: Context) -> Any:
        from airflow.sdk import ObjectStoragePath

        if self.output_path:
            return ObjectStoragePath(str(self.output_path))
        import os

        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        ti = context["ti"]
        safe_run = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(ti.run_id))
        index = f"_{ti.map_index}" if getattr(ti, "map_index", -1) not in (-1, None) else ""
        return ObjectStoragePath(f"file://{home}/cargo_outputs/{ti.dag_id}/{safe_run}/{ti.task_id}{index}.parquet")

    def _emit_outlets(self, context: Context, summary: Mapping[str, Any]) -> None:
        from airflow.sdk import Asset

        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                events[outlet].extra.update(dict(summary))

    # -- lineage (apache-airflow-providers-openlineage, optional) --------------------------------------
    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from cargo_provider.lineage import facets_on_complete

        return facets_on_complete(self, task_instance)


class AirflowCargoError(AirflowException):
    """A Cargo step failed; the message names the batch, Cargo's reason and what to do next."""
