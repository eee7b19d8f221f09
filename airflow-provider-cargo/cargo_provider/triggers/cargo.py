"""Triggers: wait for Cargo batches in the triggerer (``CargoBatchTrigger``), and watch a segment's changes
for event-driven scheduling (``CargoSegmentChangeTrigger``, a ``BaseEventTrigger`` for ``AssetWatcher``).

``CargoBatchTrigger`` drives the core's step driver one round at a time
(:meth:`cargo_gtm.running.StepDriver.poll_once`, from a thread): adaptive intervals kept within Cargo's polling
guidance (at most one request per batch per 5 s on average, 10 s for 1,000+ record batches after the first
minute) and the credit budget, as the worker would. It carries the task's deadline (its
``execution_timeout``, anchored on the task's start): past it, it cancels the batches itself and fires a
``timeout`` event, because Airflow's own trigger timeout fails the task without calling ``on_kill``
(apache/airflow #61467). A user's mark-failed, mark-success or clear of the deferred task calls
:meth:`CargoBatchTrigger.on_kill`, which cancels every unfinished batch. A triggerer restart or
redistribution cancels nothing: the trigger resumes from its serialized arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from cargo_provider.hooks.cargo import CargoHook, CargoSettings
from cargo_provider.step import TaskLog, task_budget

__all__ = ["CargoBatchTrigger"]

CLASSPATH = "cargo_provider.triggers.cargo.CargoBatchTrigger"


async def _nap(settings: CargoSettings, client: Any, seconds: float) -> None:
    """Wait ``seconds``: on the event loop, or on the test clock when one is installed (never blocks the loop)."""
    if seconds <= 0:
        return
    if CargoHook.clock_factory(settings.base_url) is None:
        await asyncio.sleep(seconds)
    else:
        await asyncio.to_thread(client.sleep, seconds)


class CargoBatchTrigger(BaseTrigger):
    """Wait in the triggerer until Cargo batches end, the deadline passes or the credit budget is exceeded.

    :param batch_uuids: the batches to wait for (one task may run several).
    :param cargo_conn_id: the Cargo connection (read asynchronously in the triggerer).
    :param deadline: epoch seconds after which the batches are cancelled and a ``timeout`` event fires
        (``None``: no deadline).
    :param poll_interval: first interval between polls of a batch (seconds).
    :param max_poll_interval: the longest interval (seconds).
    :param credit_budget: cancel the batches and fire ``over_budget`` once they used more credits than this.
    :param cancel_on_kill: cancel the batches when a user kills the deferred task (mark failed/success, clear).
    :param spared_uuids: batches among ``batch_uuids`` that another run started (a segment change it enrolled
        first): waited on like the others, never cancelled by this trigger.

    Events (``payload``): ``{"status": "done"|"timeout"|"over_budget"|"error", "batch_uuids": [...],
    "message": str, "cancelled": [...], "credits_used": float}``.
    """

    def __init__(self, batch_uuids: list[str], cargo_conn_id: str = CargoHook.default_conn_name, *,
                 deadline: float | None = None, poll_interval: float = 5.0, max_poll_interval: float = 30.0,
                 credit_budget: float | None = None, cancel_on_kill: bool = True, workflow_name: str | None = None,
                 workflow_type: str | None = None, spared_uuids: list[str] | None = None) -> None:
        super().__init__()
        self.batch_uuids = list(batch_uuids)
        self.cargo_conn_id = cargo_conn_id
        self.deadline = deadline
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max(max_poll_interval, poll_interval))
        self.credit_budget = credit_budget
        self.cancel_on_kill = cancel_on_kill
        self.workflow_name = workflow_name
        self.workflow_type = workflow_type
        self.spared_uuids = list(spared_uuids or [])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {
            "batch_uuids": list(self.batch_uuids), "cargo_conn_id": self.cargo_conn_id, "deadline": self.deadline,
            "poll_interval": self.poll_interval, "max_poll_interval": self.max_poll_interval,
            "credit_budget": self.credit_budget, "cancel_on_kill": self.cancel_on_kill,
            "workflow_name": self.workflow_name, "workflow_type": self.workflow_type,
            "spared_uuids": list(self.spared_uuids),
        }

    # -- the wait ----------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            settings = await CargoHook.aget_settings(self.cargo_conn_id)
        except Exception as exc:
            yield TriggerEvent(self._event("error", f"Could not read the Cargo connection {self.cargo_conn_id!r}: "
                                                    f"{exc}"))
            return
        client = settings.client()
        try:
            event = await self._wait(settings, client)
        finally:
            client.close()
        yield TriggerEvent(event)

    def _driver(self, client: Any) -> Any:
        """The core's step driver on these batches (read once), polling within Cargo's guidance."""
        from cargo_gtm.running import BatchHandle, StepDriver, StepSettings, WaitSettings

        handle = BatchHandle.resume(client, self.batch_uuids, poll_interval=self.poll_interval,
                                    max_poll_interval=self.max_poll_interval)
        handle.spared = set(self.spared_uuids)
        workflow = handle.units[0].workflow_uuid if handle.units else ""
        settings = StepSettings(workflow_uuid=workflow, workflow_name=self.workflow_name,
                                workflow_type=self.workflow_type, credit_budget=self.credit_budget,
                                credit_breakdown=False, budget_wording=task_budget(),
                                wait=WaitSettings(poll_interval=self.poll_interval,
                                                  max_poll_interval=self.max_poll_interval, poll_timeout=None))
        return StepDriver(handle, settings, log=TaskLog(self.log), actor="airflow-provider-cargo")

    async def _wait(self, settings: CargoSettings, client: Any) -> dict[str, Any]:
        from cargo_gtm.errors import CargoError

        try:
            driver = await asyncio.to_thread(self._driver, client)
        except CargoError as exc:
            return self._event("error", f"Reading Cargo batch(es) {', '.join(self.batch_uuids)} failed: {exc}")
        while True:
            try:
                verdict = await asyncio.to_thread(driver.poll_once)
            except CargoError as exc:  # transient errors are retried by the client: this one is not
                return self._event("error", f"Polling Cargo batch(es) {', '.join(self.batch_uuids)} failed: {exc}")
            if verdict.action == "done":
                return self._event("done", "every batch ended")
            if verdict.action == "over_budget":
                error = await asyncio.to_thread(driver.stop, verdict)  # cancels, lets the cancellation settle
                cancelled = [u for u in driver.handle.uuids if u not in self.spared_uuids]
                return self._event("over_budget", error.message, cancelled=cancelled,  # raise_for_event adds the next step
                                   credits_used=verdict.used)
            left = self._left()
            if left is not None and left <= 0:
                cancelled = await asyncio.to_thread(driver.cancel, "the task's execution_timeout passed")
                return self._event("timeout", "the task's execution_timeout passed", cancelled=cancelled)
            await _nap(settings, client, verdict.wake_in if left is None else min(verdict.wake_in, left))

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def _event(self, status: str, message: str, **extra: Any) -> dict[str, Any]:
        return {"status": status, "batch_uuids": list(self.batch_uuids), "message": message,
                "cancelled": [], **extra}

    # -- cancelling --------------------------------------------------------------------------
    async def _cancel(self, client: Any) -> list[str]:
        """Cancel every unfinished batch (the core's cancel); returns the ones Cargo accepted to cancel."""
        from cargo_gtm.running import BatchHandle

        def cancel() -> list[str]:
            driver_log = TaskLog(self.log)
            handle = BatchHandle.resume(client, self.batch_uuids)
            handle.spared = set(self.spared_uuids)
            report = handle.cancel()
            for uuid in report.cancelled:
                driver_log.warning(f"Cancelled Cargo batch {uuid}.")
            for uuid, exc in report.failed.items():
                driver_log.warning(f"Could not cancel Cargo batch {uuid}: {exc}. Cancel it in Cargo if it is still "
                                   "running.")
            return list(report.cancelled)

        return await asyncio.to_thread(cancel)

    async def _cancel_with_own_client(self, why: str) -> None:
        settings = await CargoHook.aget_settings(self.cargo_conn_id)
        client = settings.client()
        try:
            self.log.warning("Cancelling Cargo batch(es) %s because %s.", ", ".join(self.batch_uuids), why)
            await self._cancel(client)
        finally:
            client.close()

    async def on_kill(self) -> None:
        """A user marked the deferred task failed/success or cleared it: cancel its batches."""
        if self.cancel_on_kill:
            await self._cancel_with_own_client("the deferred task was killed by a user action "
                                               "(mark failed, mark success or clear)")

    async def cleanup(self) -> None:
        """Called on every exit; cancels only when Airflow's own trigger timeout fired (no ``on_kill`` then)."""
        timeout_after = getattr(self, "timeout_after", None)
        if timeout_after is None or not self.cancel_on_kill:
            return
        from datetime import datetime, timezone

        if timeout_after.tzinfo is None:
            timeout_after = timeout_after.replace(tzinfo=timezone.utc)
        if timeout_after <= datetime.now(timezone.utc):
            try:
                await self._cancel_with_own_client("Airflow's trigger timeout passed")
            except Exception as exc:  # cleanup must not raise; say what is left running
                self.log.warning("Could not cancel Cargo batch(es) %s after the trigger timeout: %s",
                                 ", ".join(self.batch_uuids), exc)
