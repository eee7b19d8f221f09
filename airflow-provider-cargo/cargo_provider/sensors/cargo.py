"""``CargoBatchSensor``: wait for a Cargo batch that something else started (a play's schedule, the UI,
another DAG) to end. It never cancels that batch: it does not own it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.exceptions import AirflowException
from airflow.sdk import BaseSensorOperator

from cargo_provider.hooks.cargo import CargoHook

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CargoBatchSensor"]


class CargoBatchSensor(BaseSensorOperator):
    """Succeed when a Cargo batch has succeeded; fail when it ended ``error`` or ``cancelled``.

    :param batch_uuid: the batch to watch (templated, e.g. from an upstream task's XCom).
    :param cargo_conn_id: the Cargo connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("batch_uuid",)

    def __init__(self, *, batch_uuid: str, cargo_conn_id: str = CargoHook.default_conn_name,
                 deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_uuid = batch_uuid
        self.cargo_conn_id = cargo_conn_id
        self.deferrable = conf.getboolean("operators", "default_deferrable", fallback=False) \
            if deferrable is None else deferrable

    def _check(self, batch: Any) -> bool:
        if batch.status.value in ("error", "cancelled"):
            raise AirflowException(  # Next step: in the text
                f"Cargo batch {batch.uuid} ended {batch.status.value}"
                f"{': ' + batch.error_message if batch.error_message else ''} after {batch.executed_runs_count}/"
                f"{batch.runs_count} runs. Next step: open the batch in Cargo to see why, then re-run it there.")
        return batch.status.value == "success"

    def poke(self, context: Context) -> bool:
        hook = CargoHook(self.cargo_conn_id)
        try:
            batch = hook.get_conn().get_batch(self.batch_uuid)
        finally:
            hook.close()
        self.log.info("Cargo batch %s is %s (%d/%d runs executed).", batch.uuid, batch.status.value,
                      batch.executed_runs_count, batch.runs_count)
        return self._check(batch)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        from cargo_provider.triggers.cargo import CargoBatchTrigger

        deadline = None
        if self.timeout:
            start = getattr(context.get("ti"), "start_date", None)
            if start is not None:
                deadline = start.timestamp() + float(self.timeout)
        self.defer(trigger=CargoBatchTrigger([self.batch_uuid], self.cargo_conn_id, deadline=deadline,
                                             poll_interval=max(float(self.poke_interval), 5.0),
                                             cancel_on_kill=False),
                   method_name="execute_complete",
                   timeout=timedelta(seconds=float(self.timeout)) if self.timeout else None)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> None:
        event = dict(event or {})
        if event.get("status") != "done":
            raise AirflowException(f"Waiting for Cargo batch {self.batch_uuid} stopped: {event.get('message')}. "
                                   "Next step: check the batch in Cargo; the sensor never cancels it.")
        hook = CargoHook(self.cargo_conn_id)
        try:
            if not self._check(hook.get_conn().get_batch(self.batch_uuid)):
                raise AirflowException(f"Cargo batch {self.batch_uuid} ended in an unknown state. Next step: "
                                       "check it in Cargo.")
        finally:
            hook.close()
