"""CargoBatchTrigger: serialize round trip, polls within Cargo's guidance, deadline, budget, on_kill."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from cargo_gtm import CargoClient, records_data
from conftest import TOKEN


def _batch(emu: Any, n: int = 3) -> str:
    client = CargoClient(TOKEN, base_url=emu.base_url)
    tool = client.find_tool("Enrich company")
    batch = client.create_batch(tool.workflow_uuid, records_data([{"domain": f"d{i}.com"} for i in range(n)]))
    client.close()
    return batch.uuid


def _events(trigger: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_serialize_round_trips() -> None:
    from cargo_provider.triggers.cargo import CargoBatchTrigger

    trigger = CargoBatchTrigger(["b1", "b2"], "my_cargo", deadline=1234.5, poll_interval=3, max_poll_interval=20,
                                credit_budget=10.0, cancel_on_kill=False)
    path, kwargs = trigger.serialize()
    assert path == "cargo_provider.triggers.cargo.CargoBatchTrigger"
    from airflow.sdk._shared.module_loading import import_string

    again = import_string(path)(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert kwargs == {"batch_uuids": ["b1", "b2"], "cargo_conn_id": "my_cargo", "deadline": 1234.5,
                      "poll_interval": 3.0, "max_poll_interval": 20.0, "credit_budget": 10.0, "cancel_on_kill": False,
                      "workflow_name": None, "workflow_type": None, "spared_uuids": []}


def test_fires_done_when_the_batches_end_within_the_polling_guidance(cargo_conn) -> None:
    from cargo_provider.triggers.cargo import CargoBatchTrigger

    uuid = _batch(cargo_conn)
    start = len(cargo_conn.requests("GET", f"/v1/orchestration/batches/{uuid}")) + \
        len(cargo_conn.requests("GET", "/v1/orchestration/batches"))
    (event,) = _events(CargoBatchTrigger([uuid], poll_interval=1, max_poll_interval=2))
    assert event["status"] == "done" and event["batch_uuids"] == [uuid]
    assert [b.status for b in cargo_conn.batches()] == ["success"]
    polls = len(cargo_conn.requests("GET", f"/v1/orchestration/batches/{uuid}")) + \
        len(cargo_conn.requests("GET", "/v1/orchestration/batches")) - start
    elapsed = cargo_conn.clock.now() - cargo_conn.batches()[0].created_at
    # one read when the trigger (re)starts, then Cargo's guidance: one request per batch per 5 s on average
    assert 2 <= polls <= 2 + elapsed / 5.0, (polls, elapsed)


def test_deadline_cancels_the_batches_and_fires_timeout(emulator, monkeypatch) -> None:
    """The emulator's time stands still (no manual clock installed): the batch never ends; the deadline does."""
    import json

    from cargo_provider.triggers.cargo import CargoBatchTrigger

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_DEFAULT", json.dumps(
        {"conn_type": "cargo", "password": TOKEN, "host": emulator.base_url}))
    uuid = _batch(emulator)
    (event,) = _events(CargoBatchTrigger([uuid], deadline=time.time() + 1.5, poll_interval=1, max_poll_interval=1))
    assert event["status"] == "timeout" and event["cancelled"] == [uuid]
    assert emulator.batches()[0].status in ("cancelling", "cancelled")


def test_budget_cancels_the_batches_and_fires_over_budget(cargo_conn) -> None:
    from cargo_provider.triggers.cargo import CargoBatchTrigger

    uuid = _batch(cargo_conn, n=40)
    (event,) = _events(CargoBatchTrigger([uuid], credit_budget=3.0, poll_interval=1, max_poll_interval=2))
    assert event["status"] == "over_budget" and event["cancelled"] == [uuid] and event["credits_used"] > 3.0
    assert "over the task's credit_budget of 3" in event["message"] and "Next step" not in event["message"]
    batch = cargo_conn.batches()[0]
    assert batch.status in ("cancelling", "cancelled") and batch.provider_credits < 80


def test_on_kill_cancels_unfinished_batches_and_leaves_finished_ones(emulator, monkeypatch) -> None:
    import json

    from cargo_provider.triggers.cargo import CargoBatchTrigger

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_DEFAULT", json.dumps(
        {"conn_type": "cargo", "password": TOKEN, "host": emulator.base_url}))
    done = _batch(emulator, n=1)
    emulator.advance(60)
    running = _batch(emulator, n=3)
    asyncio.run(CargoBatchTrigger([done, running]).on_kill())
    states = {b.uuid: b.status for b in emulator.batches()}
    assert states[done] == "success" and states[running] in ("cancelling", "cancelled")
    asyncio.run(CargoBatchTrigger([running], cancel_on_kill=False).on_kill())  # nothing to do, nothing raised


def test_cleanup_cancels_only_after_airflows_own_trigger_timeout(emulator, monkeypatch) -> None:
    """Airflow's trigger timeout cancels the trigger without on_kill (apache/airflow #61467): cleanup() then
    cancels; any other exit (triggerer restart, an event fired) leaves the batch running."""
    import json
    from datetime import datetime, timedelta, timezone

    from cargo_provider.triggers.cargo import CargoBatchTrigger

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_DEFAULT", json.dumps(
        {"conn_type": "cargo", "password": TOKEN, "host": emulator.base_url}))
    uuid = _batch(emulator)
    restarting = CargoBatchTrigger([uuid])
    restarting.timeout_after = datetime.now(timezone.utc) + timedelta(hours=1)
    asyncio.run(restarting.cleanup())
    assert emulator.batches()[0].status == "pending"
    timed_out = CargoBatchTrigger([uuid])
    timed_out.timeout_after = datetime.now(timezone.utc) - timedelta(seconds=1)
    asyncio.run(timed_out.cleanup())
    assert emulator.batches()[0].status in ("cancelling", "cancelled")


def test_a_bad_connection_fires_an_error_event(monkeypatch) -> None:
    from cargo_provider.triggers.cargo import CargoBatchTrigger

    monkeypatch.delenv("AIRFLOW_CONN_CARGO_DEFAULT", raising=False)
    (event,) = _events(CargoBatchTrigger(["b1"], "no_such_conn"))
    assert event["status"] == "error" and "no_such_conn" in event["message"]


def test_an_over_budget_event_fails_the_task_with_one_next_step_in_its_own_terms() -> None:
    from cargo_provider.step import CargoStepError, raise_for_event

    event = {"status": "over_budget", "batch_uuids": ["b-1"], "cancelled": ["b-1"],
             "message": "Cargo batch(s) b-1 used 4 credits in the end, over the task's credit_budget of 3"}
    with pytest.raises(CargoStepError) as raised:
        raise_for_event(event)
    text = str(raised.value)
    assert text.count("Next step:") == 1 and "asset" not in text and "max_credits_per_batch" not in text
    assert "the trigger cancelled b-1" in text and "Batch: b-1" in text
