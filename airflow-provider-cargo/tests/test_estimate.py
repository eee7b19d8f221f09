"""``credit_budget`` before the first credit: the operator estimates the batches (input size × the workflow's recent
cost per record + the execution charge, the core's :mod:`cargo_gtm.estimate`, as dagster-cargo does) and refuses
them before any is created when the estimate is over the budget. A try that finds an earlier try's create attaches
to it instead: that money is spent, and the budget holds while it runs. What earlier tries paid for batches that
are never reused counts against the budget of a retry."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_exactly_once import RECORDS, Killed, _kill_at, context, operator

MANY = [{"domain": f"d{i}.com"} for i in range(40)]


def _learned(cargo_conn: Any, store: Any, tmp_path: Any) -> float:
    """One finished batch of the tool to learn from; the provider credits per record it cost."""
    operator(tmp_path).execute(context(store))
    (batch,) = cargo_conn.batches()
    assert batch.status == "success" and batch.provider_credits > 0
    return batch.provider_credits / len(RECORDS)


def test_an_estimate_over_the_budget_is_refused_before_any_batch(cargo_conn, store, tmp_path) -> None:
    from cargo_provider.ledger import MemoryStore
    from cargo_provider.step import CargoStepError

    per_record = _learned(cargo_conn, store, tmp_path)
    expected = len(MANY) * per_record  # + the execution charge (nodes × records ÷ 100)
    budget = round(expected / 2, 2)
    with pytest.raises(CargoStepError) as raised:
        operator(tmp_path, records=MANY, credit_budget=budget).execute(context(MemoryStore()))
    text = str(raised.value)
    assert "Not starting Cargo tool 'Enrich company': about " in text
    assert f"{len(MANY)} records (input size)" in text and f"over the budget of {budget:g} credits" in text
    assert "No batch was created: 0 credits spent" in text
    estimate = float(re.search(r"about ([\d.]+) credits", text).group(1))
    assert expected < estimate <= expected + len(MANY) * 0.01 * 10  # at most 10 nodes' execution charge
    assert len(cargo_conn.batches()) == 1  # only the one learned from


def test_an_estimate_within_the_budget_runs(cargo_conn, store, tmp_path) -> None:
    from cargo_provider.ledger import MemoryStore

    per_record = _learned(cargo_conn, store, tmp_path)
    summary = operator(tmp_path, records=MANY, credit_budget=round(len(MANY) * per_record * 3 + 5, 2)).execute(
        context(MemoryStore()))
    assert summary["records"] == len(MANY) and len(cargo_conn.batches()) == 2
    assert {k: v for k, v in summary["status_counts"].items() if v} == {"success": len(MANY)}


def test_a_retry_after_a_crash_around_the_create_attaches_without_estimating(cargo_conn, store, tmp_path,
                                                                              monkeypatch) -> None:
    """The first try sent the create and died before saving the batch's uuid; the estimate would now refuse (it is
    made to), but the retry finds the batch holding its input and attaches: it never refuses what was paid for."""
    import cargo_gtm.estimate

    with monkeypatch.context() as patch:
        _kill_at(patch, "before-save")
        with pytest.raises(Killed):
            operator(tmp_path, credit_budget=1000).execute(context(store))
    asked: list[str] = []
    monkeypatch.setattr(cargo_gtm.estimate, "try_estimate", lambda *a, **k: asked.append("estimate"))
    summary = operator(tmp_path, credit_budget=1000).execute(context(store))
    first, second = cargo_conn.batches()  # no estimate to begin with: ramp rounds of 1, then 1 record
    assert asked == [] and summary["batch_uuids"] == [first.uuid, second.uuid]
    assert len(first.record_ids) == len(second.record_ids) == 1 and first.status == second.status == "success"


def test_a_retry_after_an_over_budget_stop_gets_what_is_left_of_the_budget_not_all_of_it(cargo_conn, store,
                                                                                          tmp_path, no_ramp) -> None:
    """The budget holds over the task, retries included: the first try's cancelled batch counts against it."""
    from cargo_provider.step import CargoStepError
    from conftest import billed

    with pytest.raises(CargoStepError, match=r"over the task's credit_budget of 2 .*Next step: raise the task's "
                                             r"credit_budget"):
        operator(tmp_path, records=MANY, credit_budget=2).execute(context(store))
    (first,) = cargo_conn.batches()
    spent = billed(cargo_conn)
    assert first.status in ("cancelled", "cancelling") and spent > 2
    with pytest.raises(CargoStepError, match=rf"earlier tries of this task already spent {spent:g} credits of its "
                                             r"credit_budget of 2; no batch was created.*Next step: clear the task"):
        operator(tmp_path, records=MANY, credit_budget=2).execute(context(store))
    assert len(cargo_conn.batches()) == 1 and billed(cargo_conn) == spent


def test_a_retry_whose_earlier_create_never_left_is_estimated(cargo_conn, store, tmp_path, monkeypatch) -> None:
    """Try 1 recorded its intent and died before the create was sent (no batch in Cargo); meanwhile the tool's
    cost per record became known. Try 2 is about to create: the estimate applies to it like to any first try."""
    from cargo_provider.ledger import MemoryStore
    from cargo_provider.step import CargoStepError

    with monkeypatch.context() as patch:
        _kill_at(patch, "after-intent")
        with pytest.raises(Killed):
            operator(tmp_path, records=MANY, credit_budget=3).execute(context(store))
    assert cargo_conn.batches() == []
    per_record = _learned(cargo_conn, MemoryStore(), tmp_path)
    assert len(MANY) * per_record > 3
    with pytest.raises(CargoStepError, match="No batch was created: 0 credits spent"):
        operator(tmp_path, records=MANY, credit_budget=3).execute(context(store))
    assert len(cargo_conn.batches()) == 1  # only the one learned from


def test_a_retry_that_attaches_to_some_chunks_estimates_before_creating_the_rest(cargo_conn, store, tmp_path,
                                                                                 monkeypatch) -> None:
    """Two chunks; the first try created the first and died. The retry attaches to it and would create the
    second: the estimate of both must fit the budget, or the second is never created (the first runs on)."""
    import cargo_provider.step
    from cargo_provider.step import CargoStepError

    per_record = _learned(cargo_conn, store, tmp_path)
    monkeypatch.setattr(cargo_provider.step, "MAX_RECORDS_PER_BATCH", len(MANY) // 2)
    with monkeypatch.context() as patch:  # the chunks' creates are concurrent: a try that sent only the first
        _kill_at(patch, "after-save")  # stands for one whose second create never left
        with pytest.raises(Killed):
            operator(tmp_path, records=MANY[:len(MANY) // 2]).execute(context(store))
    learned, first = cargo_conn.batches()
    assert len(first.record_ids) == len(MANY) // 2
    budget = round(len(MANY) * per_record * 0.75, 2)  # either chunk fits; both do not
    with pytest.raises(CargoStepError) as raised:
        operator(tmp_path, records=MANY, credit_budget=budget).execute(context(store))
    text = str(raised.value)
    assert "Not starting the rest of Cargo tool 'Enrich company': about " in text
    assert f"counting the 1 batch(es) an earlier attempt created, which run on ({first.uuid})" in text
    assert "No other batch was created" in text
    assert len(cargo_conn.batches()) == 2  # the second chunk was never created


def test_a_retry_that_attaches_to_some_chunks_checks_the_rest_for_required_fields(cargo_conn, store, tmp_path,
                                                                                 monkeypatch) -> None:
    """The chunk still to create is checked for the tool's required form fields before it is sent; the record is
    named by its place in the whole input."""
    import cargo_provider.step
    from cargo_gtm.errors import CargoInputError

    records = [{"domain": "acme.com"}, {"company_name": "No Domain Inc"}]
    monkeypatch.setattr(cargo_provider.step, "MAX_RECORDS_PER_BATCH", 1)
    with monkeypatch.context() as patch:  # a try that sent only the first chunk's create (see above)
        _kill_at(patch, "after-save")
        with pytest.raises(Killed):
            operator(tmp_path, records=records[:1]).execute(context(store))
    assert len(cargo_conn.batches()) == 1
    with pytest.raises(CargoInputError, match=r"Input record 1 has no value for the required form field 'domain'"):
        operator(tmp_path, records=records).execute(context(store))
    assert len(cargo_conn.batches()) == 1
