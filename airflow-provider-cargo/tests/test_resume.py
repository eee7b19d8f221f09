"""The resume after a deferral (``execute_complete``) collects what this try started: nothing it checked before the
create is checked again, and its own batches are not counted as earlier tries' spend."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from cargo_gtm import CargoClient
from conftest import TOKEN, billed
from test_exactly_once import context, operator

SIX = [{"domain": f"d{i}.com"} for i in range(6)]


def _deferred(tmp_path: Any, ctx: dict[str, Any], **kwargs: Any) -> Any:
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator(tmp_path, deferrable=True, **kwargs).execute(ctx)
    return deferred.value.trigger


def _event(trigger: Any) -> dict[str, Any]:
    async def collect() -> list[Any]:
        return [e.payload async for e in trigger.run()]

    (event,) = asyncio.run(collect())
    return event


def test_a_batch_cancelled_in_cargo_while_deferred_fails_as_cancelled_not_over_budget(cargo_conn, store,
                                                                                      tmp_path, no_ramp) -> None:
    from cargo_provider.step import CargoStepError

    ctx = context(store)
    trigger = _deferred(tmp_path, ctx, records=SIX, credit_budget=3.0)
    (uuid,) = trigger.batch_uuids
    while cargo_conn.batches()[0].executions < 2:  # a few runs are billed, then someone cancels it in Cargo
        cargo_conn.advance(1)
    CargoClient(TOKEN, base_url=cargo_conn.base_url).cancel_batch(uuid)
    event = _event(trigger)
    assert billed(cargo_conn) < 3.0 < 2 * billed(cargo_conn)  # counted twice, it would be over the budget
    with pytest.raises(CargoStepError) as raised:
        operator(tmp_path, deferrable=True, records=SIX, credit_budget=3.0).execute_complete(ctx, event)
    assert "was cancelled" in str(raised.value) and "budget" not in str(raised.value).split("Next step")[0]


def test_the_resume_collects_the_batch_after_a_field_became_required_meanwhile(cargo_conn, store, tmp_path) -> None:
    """The batch runs the release it was created with; a required field added since does not stop collecting it."""
    from cargo_gtm_emulator import inspection
    from cargo_gtm_emulator.backend import releases

    records = [{"domain": "acme.com"}, {"domain": "globex.com"}]
    ctx = context(store)
    trigger = _deferred(tmp_path, ctx, records=records)
    (uuid,) = trigger.batch_uuids
    with cargo_conn.store.lock:  # a new release makes every form field required
        now = cargo_conn.store.sync()
        workflow = inspection.workflow_uuid(cargo_conn.store, "Enrich company")
        old = cargo_conn.store.release_for(workflow)
        fields = copy.deepcopy(old["formFields"])
        for field in fields:
            field["isRequired"] = True
        releases.deploy(cargo_conn.store, workflow, copy.deepcopy(old["nodes"]), fields, None, now)
    event = _event(trigger)
    summary = operator(tmp_path, deferrable=True, records=records).execute_complete(ctx, event)
    assert summary["batch_uuids"] == [uuid] and summary["rows"] == 2 and len(cargo_conn.batches()) == 1
