"""A ``credit_budget`` and nothing to estimate from (the tool never ran): the records run in ramp rounds (1 record,
then up to 50, then 500, each sized to what is left of the budget), as dagster-cargo runs them; a resume or retry
runs the same rounds and attaches to their batches."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import billed
from test_exactly_once import Killed, context, operator
from test_resume import _deferred, _event

MANY = [{"domain": f"d{i}.com"} for i in range(40)]


def _sizes(cargo_conn: Any) -> list[int]:
    return [len(b.record_ids) for b in cargo_conn.batches()]


def test_rounds_of_1_then_the_rest_when_the_budget_pays_for_all(cargo_conn, store, tmp_path) -> None:
    import pandas as pd

    summary = operator(tmp_path, records=MANY, credit_budget=1000).execute(context(store))
    assert _sizes(cargo_conn) == [1, 39]
    assert summary["batch_uuids"] == [b.uuid for b in cargo_conn.batches()]
    assert (summary["records"], summary["rows"], summary["status_counts"]["success"]) == (40, 40, 40)
    assert summary["credits_total"] == pytest.approx(billed(cargo_conn), abs=1e-6)
    out = pd.read_parquet(summary["uri"].removeprefix("file://"))
    assert list(out["domain"]) == [r["domain"] for r in MANY]


def test_the_rounds_stop_before_the_record_that_would_pass_the_budget(cargo_conn, store, tmp_path) -> None:
    """2.03 credits per record: a budget of 30 pays for 14 records; the other 26 are never sent."""
    from cargo_provider.step import CargoStepError

    with pytest.raises(CargoStepError) as raised:
        operator(tmp_path, records=MANY, credit_budget=30).execute(context(store))
    text = str(raised.value)
    assert _sizes(cargo_conn) == [1, 13]
    assert "ran 14 of 40 records in 2 round(s)" in text and "the other 26 records were not run" in text
    assert all(b.uuid in text for b in cargo_conn.batches())
    assert billed(cargo_conn) <= 30


def test_deferred_rounds_resume_into_the_next_round_without_paying_twice(cargo_conn, store, tmp_path) -> None:
    ctx = context(store)
    trigger = _deferred(tmp_path, ctx, records=MANY, credit_budget=1000)
    (first,) = trigger.batch_uuids
    assert _sizes(cargo_conn) == [1]
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as again:  # round 0 done: the resume starts round 1 and defers on it
        operator(tmp_path, deferrable=True, records=MANY, credit_budget=1000).execute_complete(ctx, _event(trigger))
    (second,) = again.value.trigger.batch_uuids
    assert _sizes(cargo_conn) == [1, 39] and second != first
    summary = operator(tmp_path, deferrable=True, records=MANY, credit_budget=1000).execute_complete(
        ctx, _event(again.value.trigger))
    assert summary["batch_uuids"] == [first, second] and summary["rows"] == 40
    assert _sizes(cargo_conn) == [1, 39]


@pytest.mark.parametrize("where", ["before-save", "after-save"])
def test_a_retry_after_a_crash_in_a_later_round_attaches_to_every_round(cargo_conn, store, tmp_path, monkeypatch,
                                                                        where) -> None:
    """The try dies right after Cargo created round 1's batch: the retry runs the same rounds (sizes kept in the
    task state store, not sized again from what is left) and attaches to both batches."""
    from cargo_provider.ledger import TaskStateLedger
    from cargo_provider.step import CargoStep

    original = TaskStateLedger.created
    seen: list[str] = []

    def created(self: Any, key: Any, batch: Any) -> None:
        seen.append(batch.uuid)
        if len(seen) < 2 or where == "after-save":
            original(self, key, batch)
        if len(seen) == 2:
            raise Killed(where)

    with monkeypatch.context() as patch:
        patch.setattr(TaskStateLedger, "created", created)
        patch.setattr(CargoStep, "cancel", lambda self, why: [])
        with pytest.raises(Killed):
            operator(tmp_path, records=MANY, credit_budget=1000).execute(context(store))
    assert _sizes(cargo_conn) == [1, 39]
    summary = operator(tmp_path, records=MANY, credit_budget=1000).execute(context(store))
    assert _sizes(cargo_conn) == [1, 39] and summary["batch_uuids"] == seen and summary["rows"] == 40
    assert summary["credits_total"] == pytest.approx(billed(cargo_conn), abs=1e-6) == 40 * 2.03  # each record once


def test_one_record_or_heal_rounds_do_not_ramp(cargo_conn, store, tmp_path) -> None:
    """One record is its own first round; heal rounds (retry_failed) re-run records by their place in one round."""
    operator(tmp_path, records=MANY[:1], credit_budget=1000).execute(context(store))
    operator(tmp_path, records=MANY[1:5], credit_budget=1000, retry_failed=1, task_id="heals").execute(context(store))
    assert _sizes(cargo_conn) == [1, 4]


def _retry_context(store: Any) -> dict[str, Any]:
    ctx = context(store)
    ctx["ti"].try_number = 2
    return ctx


def test_a_retry_after_a_later_round_stopped_attaches_to_the_finished_rounds(cargo_conn, store, tmp_path) -> None:
    """Round 0 (d0) and round 1 (d1-d50, failing cheaply: 0.02 credits each) finish; round 2 (49 records) is
    cancelled half way (as a timeout does). The retry runs rounds 0 and 1 as kept, attached to their batches, and
    pays only for records not run yet: none of round 1's 50 records is sent again."""
    from airflow.sdk.exceptions import TaskDeferred
    from cargo_gtm import CargoClient
    from cargo_provider.step import CargoStepError
    from conftest import TOKEN

    records = [{"domain": f"d{i}.com"} for i in range(100)]
    cargo_conn.plan_failures({f"domain=d{i}.com": "always" for i in range(1, 51)})
    ctx = context(store)
    trigger = _deferred(tmp_path, ctx, records=records, credit_budget=120)
    for _ in range(2):
        with pytest.raises(TaskDeferred) as again:
            operator(tmp_path, deferrable=True, records=records, credit_budget=120).execute_complete(
                ctx, _event(trigger))
        trigger = again.value.trigger
    round0, round1, round2 = cargo_conn.batches()
    assert _sizes(cargo_conn) == [1, 50, 49]
    for _ in range(12):
        cargo_conn.advance(1)
    CargoClient(TOKEN, base_url=cargo_conn.base_url).cancel_batch(round2.uuid)
    with pytest.raises(CargoStepError):
        operator(tmp_path, deferrable=True, records=records, credit_budget=120).execute_complete(ctx, _event(trigger))
    try:
        operator(tmp_path, records=records, credit_budget=120).execute(_retry_context(store))
    except CargoStepError:
        pass  # over what is left, or stopped by it: not the point here
    later = cargo_conn.batches()[3:]
    sent_again = {r for b in later for r in b.record_ids} & (set(round0.record_ids) | set(round1.record_ids))
    assert not sent_again and later, [len(b.record_ids) for b in later]


def test_a_retry_after_the_budget_was_spent_refuses_naming_the_rounds(cargo_conn, store, tmp_path) -> None:
    """Round 1's records fail cheaply, so round 2 (149 records) is sized from 0.06 credits per record and the
    in-flight guard cancels it over the budget. Earlier tries spent the budget: the retry creates nothing and says
    so, counting the rounds it would run again as they are."""
    from cargo_provider.step import CargoStepError

    records = [{"domain": f"d{i}.com"} for i in range(200)]
    cargo_conn.plan_failures({f"domain=d{i}.com": "always" for i in range(1, 51)})
    with pytest.raises(CargoStepError):
        operator(tmp_path, records=records, credit_budget=120).execute(context(store))
    round0, round1, round2 = cargo_conn.batches()
    assert _sizes(cargo_conn)[:2] == [1, 50] and round2.status in ("cancelled", "cancelling")
    with pytest.raises(CargoStepError) as retry:
        operator(tmp_path, records=records, credit_budget=120).execute(_retry_context(store))
    text = str(retry.value)
    assert "earlier tries of this task already spent" in text and "no batch was created" in text
    assert round0.uuid in text and round1.uuid in text and len(cargo_conn.batches()) == 3


def test_a_failed_record_is_named_by_its_row_in_the_tasks_input(cargo_conn, store, tmp_path) -> None:
    from cargo_provider.step import CargoStepError

    cargo_conn.plan_failures({"domain=d3.com": "always"})
    with pytest.raises(CargoStepError) as raised:
        operator(tmp_path, records=MANY, credit_budget=1000, failed_rows="fail").execute(context(store))
    assert "domain='d3.com', input row 3" in str(raised.value)


def test_the_ramp_stop_gives_the_tasks_next_step(cargo_conn, store, tmp_path) -> None:
    from cargo_provider.step import BUDGET_NEXT_STEP, CargoStepError

    with pytest.raises(CargoStepError) as raised:
        operator(tmp_path, records=MANY, credit_budget=30).execute(context(store))
    assert str(raised.value).endswith(f"Next step: {BUDGET_NEXT_STEP}") and "run config" not in str(raised.value)


def test_rounds_only_double_until_a_record_runs_through(cargo_conn, store, tmp_path) -> None:
    """The first record fails early (0.02 credits): that is not what a record costs. The next round is 1 record
    again, not 50 sized from 0.02; once one succeeds the rounds are sized from what they cost."""
    cargo_conn.plan_failures({"domain=d0.com": "always"})
    summary = operator(tmp_path, records=MANY, credit_budget=1000).execute(context(store))
    assert _sizes(cargo_conn) == [1, 1, 38] and summary["rows"] == 40


def test_after_the_ramp_steps_a_round_is_what_fits_in_batches_run_at_once(cargo_conn, store, tmp_path,
                                                                          monkeypatch) -> None:
    """With batches of at most 10 records, the second round is the 39 records left (four batches created together),
    not four rounds one after another."""
    import cargo_provider.step

    monkeypatch.setattr(cargo_provider.step, "MAX_RECORDS_PER_BATCH", 10)
    summary = operator(tmp_path, records=MANY, credit_budget=1000).execute(context(store))
    assert store.values["cargo.ramp_sizes"]["value"] == [1, 39]
    assert sorted(_sizes(cargo_conn)) == [1, 9, 10, 10, 10] and summary["rows"] == 40
