"""CargoSegmentChangeTrigger: one event per new change with records; the watermark lives in the asset state
store and moves only once Airflow confirmed the event stored (ack mode), so a triggerer restart neither misses
nor repeats a change; a duplicate event still enrolls the change once (the consumer dedupes by content)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from cargo_gtm import CargoClient
from conftest import TOKEN

PLAY = "Score inbound companies"


class Accessor:
    """The asset state store accessor's async half (aget/aset), in memory: it survives 'restarts'."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def _play_segment(emu: Any) -> str:
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        return str(client.find_play(PLAY).segment_uuid)


def _new_companies(emu: Any, *names: str) -> None:
    emu.store.upsert_records("companies", [{"name": n, "domain": f"{n}.com", "employee_count": 500,
                                            "created_at": "2026-12-01T00:00:00Z"} for n in names])
    emu.advance(1)


def _kwargs(segment: str, start_from: str = "latest") -> dict[str, Any]:
    return {"segment": segment, "cargo_conn_id": "cargo_default", "change_kinds": ["added", "updated"],
            "poll_interval": 0.01, "start_from": start_from}


async def _started(source: Any, store: Any) -> list[Any]:
    """Run a source until it has stored its first watermark (it started watching), however long the machine takes
    (60 s at most); the events it yielded before that (none for ``start_from="latest"``)."""
    import contextlib

    from cargo_provider.triggers.changes import WATERMARK_KEY

    events: list[Any] = []
    stream = source.stream()
    pending = asyncio.ensure_future(stream.__anext__())
    try:
        async with asyncio.timeout(60):
            while WATERMARK_KEY not in store.values:
                if pending.done():
                    events.append(pending.result())
                    pending = asyncio.ensure_future(stream.__anext__())
                await asyncio.sleep(0.01)
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        await stream.aclose()
    return events


async def _take(source: Any, n: int, timeout: float = 30.0, quiet: float | None = None
                ) -> list[tuple[dict[str, Any], Any]]:
    """The first ``n`` raw events of a source's stream (then the stream is closed, as a stopping triggerer does),
    waiting up to ``timeout`` for the first; with ``quiet``, at most that long for each next one (an event that
    should not come would come with the first: both are in the same listing)."""
    out: list[tuple[dict[str, Any], Any]] = []
    stream = source.stream()
    try:
        while len(out) < n:
            async with asyncio.timeout(quiet if out and quiet is not None else timeout):
                out.append(await stream.__anext__())
    except TimeoutError:
        pass
    finally:
        await stream.aclose()
    return out


def test_serialize_round_trips() -> None:
    from cargo_provider.triggers.changes import CargoSegmentChangeTrigger

    trigger = CargoSegmentChangeTrigger("ICP companies", "my_cargo", change_kinds=["added"], poll_interval=30,
                                        start_from="beginning")
    path, kwargs = trigger.serialize()
    from airflow.sdk._shared.module_loading import import_string

    assert import_string(path)(**kwargs).serialize() == (path, kwargs)


def test_latest_start_fires_nothing_then_each_new_change_once(cargo_conn) -> None:
    from cargo_provider.triggers.changes import WATERMARK_KEY, ChangeSource

    segment = _play_segment(cargo_conn)
    store = Accessor()
    source = ChangeSource(_kwargs(segment), store)
    assert asyncio.run(_started(source, store)) == []  # existing changes are history
    assert store.values[WATERMARK_KEY]["after"] is not None
    _new_companies(cargo_conn, "zeta-corp")
    ((payload, mark),) = asyncio.run(_take(ChangeSource(_kwargs(segment), store), 1))
    assert payload["segment_uuid"] == segment and payload["added"] == 1 and payload["records"] == 1
    assert mark[0] == payload["change_uuid"]


def test_no_miss_and_no_duplicate_across_restarts(cargo_conn) -> None:
    """A triggerer that dies before Airflow stored the event re-emits it; once advanced, never again."""
    from cargo_provider.triggers.changes import ChangeSource

    segment = _play_segment(cargo_conn)
    store = Accessor()
    asyncio.run(_started(ChangeSource(_kwargs(segment), store), store))
    _new_companies(cargo_conn, "alpha-one")
    (first,) = asyncio.run(_take(ChangeSource(_kwargs(segment), store), 1))  # emitted, never acknowledged
    source = ChangeSource(_kwargs(segment), store)  # the triggerer restarted
    (again,) = asyncio.run(_take(source, 1))
    assert again[0]["change_uuid"] == first[0]["change_uuid"]  # no miss
    asyncio.run(source.advance([again[1]]))  # Airflow confirmed the event stored
    _new_companies(cargo_conn, "beta-two")
    events = asyncio.run(_take(ChangeSource(_kwargs(segment), store), 2, quiet=1.0))
    assert [e[0]["change_uuid"] for e in events] != [first[0]["change_uuid"]]
    assert len(events) == 1 and events[0][0]["change_uuid"] != first[0]["change_uuid"]  # no duplicate


def test_an_event_airflow_failed_to_store_is_emitted_again_by_the_same_process(cargo_conn) -> None:
    from cargo_provider.triggers.changes import ChangeSource

    segment = _play_segment(cargo_conn)
    store = Accessor()
    asyncio.run(_started(ChangeSource(_kwargs(segment), store), store))
    _new_companies(cargo_conn, "gamma-three")

    async def scenario() -> list[str]:
        source = ChangeSource(_kwargs(segment), store)
        stream = source.stream()
        seen = []
        async with asyncio.timeout(10):
            payload, mark = await stream.__anext__()
        seen.append(payload["change_uuid"])
        await source.advance([], failed=[mark])  # the persist confirmation never came (ack timeout)
        async with asyncio.timeout(10):
            payload, mark = await stream.__anext__()
        seen.append(payload["change_uuid"])
        await stream.aclose()
        return seen

    first, second = asyncio.run(scenario())
    assert first == second


def test_the_ack_mode_producer_advances_only_stored_events(cargo_conn) -> None:
    from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome
    from cargo_provider.triggers.changes import WATERMARK_KEY, CargoSegmentChangeTrigger, ChangeCursor, ChangeSource

    segment = _play_segment(cargo_conn)
    trigger = CargoSegmentChangeTrigger(segment, poll_interval=0.01)
    store = Accessor()
    asyncio.run(_started(ChangeSource(_kwargs(segment), store), store))  # started watching earlier
    trigger.asset_state_store = store
    trigger.shared_stream_key()  # as the triggerer does before subscribing
    producer = CargoSegmentChangeTrigger.create_shared_stream_producer(trigger.serialize()[1])
    _new_companies(cargo_conn, "delta-four")

    async def scenario() -> tuple[dict[str, Any], Any]:
        stream = producer.open_stream()
        async with asyncio.timeout(10):
            raw, payload = await stream.__anext__()
        before = dict(store.values[WATERMARK_KEY])
        await producer.advance([AdvanceItem(payload, AdvanceOutcome(acked=0, failed=1))])
        assert store.values[WATERMARK_KEY] == before
        await producer.advance([AdvanceItem(payload, AdvanceOutcome(acked=1, failed=0))])
        await stream.aclose()
        return raw, payload

    raw, payload = asyncio.run(scenario())
    cursor = ChangeCursor.from_value(store.values[WATERMARK_KEY])
    assert raw["change_uuid"] in cursor.seen


def test_the_filter_fires_only_changes_with_records() -> None:
    from cargo_provider.triggers.changes import CargoSegmentChangeTrigger

    async def raw() -> Any:
        for payload in ({"change_uuid": "c1", "records": 0}, {"change_uuid": "c2", "records": 3}):
            yield payload

    async def collect() -> list[Any]:
        return [e.payload async for e in CargoSegmentChangeTrigger("s").filter_shared_stream(raw())]

    assert [p["change_uuid"] for p in asyncio.run(collect())] == ["c2"]


def _a_change_event(cargo_conn: Any) -> Any:
    """The asset event of one new segment change (two companies), as a triggering event of a DAG run."""
    from cargo_provider.triggers.changes import ChangeSource

    segment = _play_segment(cargo_conn)
    store = Accessor()
    asyncio.run(_started(ChangeSource(_kwargs(segment), store), store))
    _new_companies(cargo_conn, "omega-five", "omega-six")
    ((payload, _),) = asyncio.run(_take(ChangeSource(_kwargs(segment), store), 1))
    return SimpleNamespace(extra={"from_trigger": True, "payload": payload})


def _change_run(name: str, event: Any, tmp_path: Any) -> tuple[Any, dict[str, Any]]:
    """A DAG run's play task over the change of ``event``: the operator and its context (own task state store)."""
    from cargo_provider.ledger import MemoryStore
    from cargo_provider.operators.cargo import CargoRunOperator
    from cargo_provider.triggers.changes import CHANGE_FROM_EVENT

    ti = SimpleNamespace(start_date=datetime.now(timezone.utc), run_id=name, dag_id="d", task_id="t", map_index=-1,
                         max_tries=0)
    context = {"ti": ti, "task": SimpleNamespace(retries=0), "task_state_store": MemoryStore(),
               "triggering_asset_events": {"segment-asset": [event]}, "outlet_events": None}
    op = CargoRunOperator(task_id="t", play=PLAY, change=CHANGE_FROM_EVENT, deferrable=False,
                          output_path=f"file://{tmp_path}/{name}.parquet")
    return op, context


def test_a_duplicate_event_enrolls_the_change_once(cargo_conn, tmp_path) -> None:
    """Two DAG runs triggered by the same change (a duplicate asset event): one batch, both runs report it."""
    event = _a_change_event(cargo_conn)
    summaries = [op.execute(context) for op, context in (_change_run(run, event, tmp_path) for run in ("r1", "r2"))]
    (batch,) = cargo_conn.batches()
    assert batch.data_kind == "change" and batch.runs_count == 2
    assert summaries[0]["batch_uuids"] == summaries[1]["batch_uuids"] == [batch.uuid]


def test_killing_the_run_that_attached_to_a_change_leaves_the_other_runs_batch_running(cargo_conn, tmp_path) -> None:
    """A duplicate event's run waits on the batch the first run started for that change; killed (in the worker or
    deferred), it leaves that batch running: the first run still owns and waits on it."""
    from cargo_provider.step import CargoStep
    from cargo_provider.triggers.cargo import CargoBatchTrigger

    event = _a_change_event(cargo_conn)
    runs = [_change_run(run, event, tmp_path) for run in ("r1", "r2")]
    first, second = (CargoStep.for_operator(op, context) for op, context in runs)
    first.start()
    second.start()
    (uuid,) = first.uuids
    assert second.uuids == [uuid] and second.ledger.shared() == {uuid}
    second_op = runs[1][0]
    second_op._active = second
    second_op.on_kill()  # in the worker: mark failed, timeout
    asyncio.run(CargoBatchTrigger([uuid], spared_uuids=sorted(second.ledger.shared())).on_kill())  # deferred
    for step in (first, second):
        step.close()
    (batch,) = cargo_conn.batches()
    assert batch.status not in ("cancelling", "cancelled")


def test_change_from_event_without_an_event_names_the_fix(cargo_conn, tmp_path) -> None:
    from cargo_provider.ledger import MemoryStore
    from cargo_provider.operators.cargo import CargoRunOperator
    from cargo_provider.step import CargoStepError
    from cargo_provider.triggers.changes import CHANGE_FROM_EVENT

    ti = SimpleNamespace(start_date=datetime.now(timezone.utc), run_id="r", dag_id="d", task_id="t", map_index=-1,
                         max_tries=0)
    op = CargoRunOperator(task_id="t", play=PLAY, change=CHANGE_FROM_EVENT, deferrable=False)
    with pytest.raises(CargoStepError, match="no triggering asset event names a Cargo segment change"):
        op.execute({"ti": ti, "task_state_store": MemoryStore(), "triggering_asset_events": {}})


def test_a_retry_after_a_crash_around_its_change_batch_owns_it_and_cancels_it_on_kill(cargo_conn, tmp_path,
                                                                                    monkeypatch) -> None:
    """The first try died after its create, before saving the uuid: the batch holding the change is this task's own
    (its intent says so), so the retry attaches to it as its own, not as another run's, and a kill cancels it."""
    from cargo_provider.step import CargoStep
    from test_exactly_once import Killed, _kill_at

    event = _a_change_event(cargo_conn)
    op, context = _change_run("r1", event, tmp_path)
    with monkeypatch.context() as patch:
        _kill_at(patch, "before-save")
        with pytest.raises(Killed):
            op.execute(context)
    (own,) = cargo_conn.batches()
    retry = CargoStep.for_operator(op, context)
    retry.start()
    assert retry.uuids == [own.uuid] and retry.ledger.shared() == set() and own.uuid in retry.ledger.owned()
    op._active = retry
    op.on_kill()
    retry.close()
    assert cargo_conn.batches()[0].status in ("cancelling", "cancelled")


def test_over_budget_while_waiting_on_another_runs_change_batch_leaves_it_running_and_says_so(cargo_conn,
                                                                                           tmp_path) -> None:
    from cargo_provider.step import CargoStep
    from cargo_provider.triggers.cargo import CargoBatchTrigger

    event = _a_change_event(cargo_conn)
    steps = [CargoStep.for_operator(op, context) for op, context in
             (_change_run(run, event, tmp_path) for run in ("r1", "r2"))]
    for step in steps:
        step.start()
    (uuid,) = steps[0].uuids
    trigger = CargoBatchTrigger([uuid], credit_budget=0.001, spared_uuids=[uuid], poll_interval=1)

    async def collect() -> list[Any]:
        return [e.payload async for e in trigger.run()]

    (payload,) = asyncio.run(collect())
    for step in steps:
        step.close()
    assert payload["status"] == "over_budget" and payload["cancelled"] == []
    assert f"{uuid} was left running: another run started it" in payload["message"]
    assert "could not cancel" not in payload["message"]
    assert cargo_conn.batches()[0].status not in ("cancelling", "cancelled")
