"""Exactly once across crashes, at the operator level: the task state store (here its in-memory stand-in)
records the create intent before the request leaves and the batch uuid after; a later try attaches or adopts
by the core's content proof, never pays twice. The real-process version (kill -9) is test_processes.py."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

RECORDS = [{"domain": "acme.com"}, {"domain": "globex.com"}]


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs in that try (the step's own cancel is patched out)."""


def context(store: Any, *, max_tries: int = 1, retries: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(start_date=datetime.now(timezone.utc), run_id="r1", dag_id="d", task_id="t", map_index=-1,
                         max_tries=max_tries, try_number=1)
    return {"ti": ti, "task": SimpleNamespace(retries=retries), "task_state_store": store, "outlet_events": None}


def operator(tmp_path: Any, **kwargs: Any) -> Any:
    from cargo_provider.operators.cargo import CargoRunOperator

    return CargoRunOperator(**{"task_id": "t", "tool": "Enrich company", "records": RECORDS, "deferrable": False,
                               "output_path": f"file://{tmp_path}/out.parquet", **kwargs})


def _kill_at(monkeypatch: Any, where: str) -> None:
    """The first try dies right after Cargo created the batch: before (or just after) its uuid is saved; or
    (``after-intent``) right after it recorded its create intent, before the request left."""
    from cargo_provider.ledger import TaskStateLedger
    from cargo_provider.step import CargoStep

    original = TaskStateLedger.created
    original_intent = TaskStateLedger.intent

    def intent_then_die(self: Any, key: Any, intent: Any) -> None:
        original_intent(self, key, intent)
        raise Killed(where)

    if where == "after-intent":
        monkeypatch.setattr(TaskStateLedger, "intent", intent_then_die)

    def created(self: Any, key: Any, batch: Any) -> None:
        if where == "after-save":
            original(self, key, batch)
        raise Killed(where)

    monkeypatch.setattr(TaskStateLedger, "created", created)
    monkeypatch.setattr(CargoStep, "cancel", lambda self, why: [])  # a killed process cancels nothing


@pytest.mark.parametrize("where", ["before-save", "after-save"])
def test_a_try_killed_around_the_create_is_adopted_by_the_next_one(cargo_conn, store, tmp_path, monkeypatch,
                                                                   where) -> None:
    with monkeypatch.context() as patch:
        _kill_at(patch, where)
        with pytest.raises(Killed):
            operator(tmp_path).execute(context(store))
    assert len(cargo_conn.batches()) == 1
    keys = sorted(k.split(".")[1] for k in store.values)
    assert keys == (["intent", "prior_spent"] if where == "before-save" else
                    ["batch", "batches", "intent", "prior_spent"])
    summary = operator(tmp_path).execute(context(store))
    (batch,) = cargo_conn.batches()
    assert summary["batch_uuids"] == [batch.uuid] and batch.status == "success"
    assert summary["credits_total"] == round(batch.provider_credits + 0.01 * batch.executions, 6)


def test_a_retry_attaches_to_a_running_batch(cargo_conn, store, tmp_path, monkeypatch) -> None:
    from cargo_provider.step import CargoStep

    with monkeypatch.context() as patch:
        patch.setattr(CargoStep, "wait", lambda self: (_ for _ in ()).throw(Killed()))
        patch.setattr(CargoStep, "cancel", lambda self, why: [])
        with pytest.raises(Killed):
            operator(tmp_path).execute(context(store))
    assert cargo_conn.batches()[0].status in ("pending", "running")
    operator(tmp_path).execute(context(store))
    assert [b.status for b in cargo_conn.batches()] == ["success"]


def test_a_cancelled_batch_is_never_reused(cargo_conn, store, tmp_path, monkeypatch) -> None:
    """Someone cancels the batch in Cargo: this try fails naming it; the retry creates a new one."""
    from cargo_gtm import CargoClient
    from cargo_provider.step import CargoStep, CargoStepError
    from conftest import TOKEN

    real_wait = CargoStep.wait

    cancelled: list[str] = []

    def cancel_then_wait(self: Any) -> None:
        if not cancelled:
            cancelled.append(self.uuids[0])
            CargoClient(TOKEN, base_url=cargo_conn.base_url).cancel_batch(self.uuids[0])
        real_wait(self)

    with monkeypatch.context() as patch:
        patch.setattr(CargoStep, "wait", cancel_then_wait)
        with pytest.raises(CargoStepError, match="Cargo batch .* was cancelled after .* Next step: "):
            operator(tmp_path).execute(context(store))
    first = cargo_conn.batches()[0]
    assert first.status == "cancelled"
    summary = operator(tmp_path).execute(context(store))
    batches = cargo_conn.batches()
    assert len(batches) == 2 and summary["batch_uuids"] == [batches[1].uuid] and first.uuid != batches[1].uuid


def test_a_cleared_task_starts_a_fresh_batch(cargo_conn, store, tmp_path) -> None:
    """Clearing keeps the task state store in Airflow 3.3 but raises max_tries: the generation changes."""
    first = operator(tmp_path).execute(context(store, max_tries=1, retries=1))
    again = operator(tmp_path).execute(context(store, max_tries=1, retries=1))  # a retry: same batch
    assert again["batch_uuids"] == first["batch_uuids"] and len(cargo_conn.batches()) == 1
    cleared = operator(tmp_path).execute(context(store, max_tries=3, retries=1))
    assert len(cargo_conn.batches()) == 2 and cleared["batch_uuids"] != first["batch_uuids"]


def test_a_cleared_task_cancels_its_earlier_batch_if_still_running(cargo_conn, store, tmp_path, monkeypatch) -> None:
    from cargo_provider.step import CargoStep

    with monkeypatch.context() as patch:
        patch.setattr(CargoStep, "wait", lambda self: (_ for _ in ()).throw(Killed()))
        patch.setattr(CargoStep, "cancel", lambda self, why: [])
        with pytest.raises(Killed):
            operator(tmp_path).execute(context(store, max_tries=1))
    operator(tmp_path).execute(context(store, max_tries=3))
    old, new = cargo_conn.batches()
    assert old.status in ("cancelling", "cancelled") and new.status == "success"


def test_two_batches_holding_the_input_stop_the_task_naming_them(cargo_conn, store, tmp_path, monkeypatch) -> None:
    """An intent without a uuid and two candidate batches with exactly this input: none is adopted, none is
    created, the task fails naming both (the user decides)."""
    from cargo_gtm import CargoClient, records_data
    from conftest import TOKEN

    with monkeypatch.context() as patch:
        _kill_at(patch, "before-save")
        with pytest.raises(Killed):
            operator(tmp_path).execute(context(store))
    client = CargoClient(TOKEN, base_url=cargo_conn.base_url)
    client.create_batch(client.find_tool("Enrich company").workflow_uuid, records_data(RECORDS))
    cargo_conn.advance(30)
    with pytest.raises(Exception, match="2 batch\\(es\\) created since may hold this input") as info:
        operator(tmp_path).execute(context(store))
    for batch in cargo_conn.batches():
        assert batch.uuid in str(info.value)
    assert len(cargo_conn.batches()) == 2


def test_a_stale_trigger_event_of_an_earlier_try_is_ignored(cargo_conn, store, tmp_path) -> None:
    """A cleared task's old trigger may still fire (SQLite reuses trigger ids): its event names batches this try
    does not own, so it neither fails nor finishes this try, which goes on with its own batch."""
    from cargo_provider.step import CargoStep

    op = operator(tmp_path)  # resumed in the worker: the step waits there for its own batch
    ctx = context(store, max_tries=3)
    step = CargoStep.for_operator(op, ctx)
    step.start()  # this try's batch, recorded; then the worker went away while it was deferred
    step.close()
    summary = op.execute_complete(ctx, event={"status": "timeout", "batch_uuids": ["someone-elses-batch"]})
    (batch,) = cargo_conn.batches()
    assert summary["batch_uuids"] == [batch.uuid] and batch.status == "success"


def test_two_chunks_with_the_same_records_keep_a_batch_each_across_a_retry(cargo_conn, store, tmp_path,
                                                                           monkeypatch) -> None:
    """An input whose chunks hold the same records (a list repeated): each chunk's batch is its own on a retry, none
    is dropped from the summary (and from cancelling) because the other has the same content."""
    import cargo_provider.step as step
    from conftest import billed

    monkeypatch.setattr(step, "MAX_RECORDS_PER_BATCH", 2)
    with monkeypatch.context() as patch:
        patch.setattr(step.CargoStep, "wait", lambda self: (_ for _ in ()).throw(Killed()))
        patch.setattr(step.CargoStep, "cancel", lambda self, why: [])
        with pytest.raises(Killed):
            operator(tmp_path, records=RECORDS + RECORDS).execute(context(store))
    summary = operator(tmp_path, records=RECORDS + RECORDS).execute(context(store))
    batches = cargo_conn.batches()
    assert len(batches) == 2 and sorted(summary["batch_uuids"]) == sorted(b.uuid for b in batches)
    assert summary["records"] == 4 and summary["credits_total"] == billed(cargo_conn)


def test_a_cleared_task_with_another_input_cancels_its_earlier_batch_still_running(cargo_conn, store, tmp_path,
                                                                                 monkeypatch) -> None:
    """After a clear the input may differ (an upstream task ran again): the earlier batch, still running, is
    cancelled all the same, not left running unwatched."""
    from cargo_provider.step import CargoStep

    with monkeypatch.context() as patch:
        patch.setattr(CargoStep, "wait", lambda self: (_ for _ in ()).throw(Killed()))
        patch.setattr(CargoStep, "cancel", lambda self, why: [])
        with pytest.raises(Killed):
            operator(tmp_path).execute(context(store, max_tries=1))
    (old,) = cargo_conn.batches()
    assert old.status in ("pending", "querying", "running")
    summary = operator(tmp_path, records=RECORDS[:1]).execute(context(store, max_tries=3))  # cleared: new input
    statuses = {b.uuid: b.status for b in cargo_conn.batches()}
    assert statuses[old.uuid] in ("cancelling", "cancelled") and summary["batch_uuids"] != [old.uuid]


def test_only_a_part_that_repeats_another_gets_its_place_in_its_key() -> None:
    """Keys of parts with distinct content are what they always were (a task deferred before still attaches)."""
    from cargo_provider.ledger import attempt_key
    from cargo_provider.step import _part_keys

    a, b = {"kind": "records", "records": [RECORDS[0]]}, {"kind": "records", "records": [RECORDS[1]]}
    assert _part_keys("wf", [a, b], None) == [attempt_key("wf", a), attempt_key("wf", b)]
    assert _part_keys("wf", [a, b], "heal1") == [attempt_key("wf", a, "heal1"), attempt_key("wf", b, "heal1")]
    keys = _part_keys("wf", [a, b, a], None)
    assert keys[:2] == [attempt_key("wf", a), attempt_key("wf", b)] and len(set(keys)) == 3


def test_a_retry_whose_intent_made_no_batch_searches_cargo_once(cargo_conn, store, tmp_path, monkeypatch) -> None:
    """The first try recorded its create intent and died before the request left: the retry's checks before
    creating and its start both ask whether that intent made a batch; Cargo is searched (with its settle waits)
    once, then the batch is created once."""
    from cargo_gtm import CargoClient

    with monkeypatch.context() as patch:
        _kill_at(patch, "after-intent")
        with pytest.raises(Killed):
            operator(tmp_path, records=RECORDS[:1], credit_budget=1000).execute(context(store))
    assert cargo_conn.batches() == []
    searches: list[str] = []
    find = CargoClient.find_created_batch
    monkeypatch.setattr(CargoClient, "find_created_batch",
                        lambda self, *a, **k: searches.append("search") or find(self, *a, **k))
    summary = operator(tmp_path, records=RECORDS[:1], credit_budget=1000).execute(context(store))
    (batch,) = cargo_conn.batches()
    assert searches == ["search"] and summary["batch_uuids"] == [batch.uuid]


def test_the_summary_reports_what_earlier_tries_paid_for_batches_never_reused(cargo_conn, store, tmp_path,
                                                                                monkeypatch) -> None:
    """Try 1's batch ran a few runs, then its worker died and the batch was cancelled in Cargo. Try 2 pays for a new
    batch; its summary says what try 1's batch cost too, so the task's figures add up to what Cargo billed."""
    from cargo_gtm import CargoClient
    from cargo_provider.step import CargoStep
    from conftest import TOKEN, billed

    records = [{"domain": f"e{i}.com"} for i in range(6)]
    with monkeypatch.context() as patch:
        patch.setattr(CargoStep, "wait", lambda self: (_ for _ in ()).throw(Killed()))
        patch.setattr(CargoStep, "cancel", lambda self, why: [])
        with pytest.raises(Killed):
            operator(tmp_path, records=records).execute(context(store))
    (first,) = cargo_conn.batches()
    while cargo_conn.batches()[0].executions < 3:
        cargo_conn.advance(1)
    CargoClient(TOKEN, base_url=cargo_conn.base_url).cancel_batch(first.uuid)
    cargo_conn.advance(60)
    earlier = billed(cargo_conn, [first.uuid])
    summary = operator(tmp_path, records=records).execute(context(store))
    assert earlier > 0 and summary["credits_earlier_tries"] == pytest.approx(earlier, abs=1e-6)
    assert summary["credits_total"] + summary["credits_earlier_tries"] == pytest.approx(billed(cargo_conn), abs=1e-6)
