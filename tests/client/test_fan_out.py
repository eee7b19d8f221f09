"""Many batches at once: concurrent creation that stays exactly-once, and polling by list."""

from __future__ import annotations

import pytest
from cargo_gtm import Batch, CargoClient, CargoError, wait_for_batches
from cargo_gtm.inputs.records import records_data
from cargo_gtm_emulator import CargoEmulator

from .test_waiting import FakeClock

TOKEN = "tok-fan-out-1f2e"
CREATE = "/v1/orchestration/batches"


@pytest.fixture
def emu():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as e:
        yield e


def chunk(i: int, n: int = 3) -> dict:
    return records_data([{"domain": f"c{i}-{k}.example", "company_name": f"C{i}"} for k in range(n)])


def workflow(emu: CargoEmulator) -> str:
    return str(emu.store.tool_by_name("Enrich company")["workflowUuid"])


def test_create_batches_makes_one_batch_per_input_in_input_order(emu):
    created = []
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        results = client.create_batches(workflow(emu), [chunk(i) for i in range(6)], max_workers=4,
                                        on_created=lambda i, b: created.append((i, b.uuid)))
    assert all(isinstance(r, Batch) for r in results)
    assert sorted(b.uuid for b in results) == sorted(b.uuid for b in emu.batches())  # 6 batches, no more
    # input order: each batch holds the records of its own chunk
    for i, batch in enumerate(results):
        domains = [r["domain"] for r in next(b for b in emu.batches() if b.uuid == batch.uuid).inputs]
        assert domains == [f"c{i}-{k}.example" for k in range(3)]
    assert sorted(created) == [(i, b.uuid) for i, b in enumerate(results)]
    # the workflow was listed once for all six creates, not once per create
    lists = [e for e in emu.request_log if e["path"] == f"{CREATE}/list"]
    assert len(lists) == 1


def test_creates_that_end_together_are_reported_together(emu):
    """``on_created_many``: a group commit of the batches created while the previous report was being recorded (a
    durable record per batch made a fan-out's ledger cost grow with its square), each batch once, by its index."""
    import time

    calls: list[list[tuple[int, str]]] = []

    def record(pairs: list[tuple[int, Batch]]) -> None:
        if not calls:  # a slow first record: every other create ends meanwhile
            deadline = time.monotonic() + 30
            while len(emu.batches()) < 8 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
        calls.append([(i, b.uuid) for i, b in pairs])

    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        results = client.create_batches(workflow(emu), [chunk(i) for i in range(8)], max_workers=8,
                                        on_created_many=record, on_created=lambda i, b: calls.append([]))
    assert all(isinstance(r, Batch) for r in results)
    reported = sorted(pair for call in calls for pair in call)
    assert reported == [(i, b.uuid) for i, b in enumerate(results)]  # each once, under its own index
    assert len(calls) < 8 and max(len(c) for c in calls) > 1


def test_a_lost_create_response_among_siblings_is_adopted_not_resent(emu):
    emu.faults.next(f"POST {CREATE}", "lost_create_response")
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: emu.advance(5)) as client:
        results = client.create_batches(workflow(emu), [chunk(i) for i in range(4)], max_workers=1)
    assert all(isinstance(r, Batch) for r in results)
    assert sorted(b.uuid for b in results) == sorted(b.uuid for b in emu.batches())
    assert len(emu.batches()) == 4  # the lost one was adopted, never sent twice
    creates = [e for e in emu.request_log if e["method"] == "POST" and e["path"] == CREATE]
    assert len(creates) == 4 and creates[0]["fault"] == "lost_create_response"


def test_failed_creates_are_returned_and_the_others_still_made(emu):
    wrong_kind = {"kind": "segment", "segmentUuid": "00000000-0000-0000-0000-000000000000"}  # not for a tool
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: None) as client:
        results = client.create_batches(workflow(emu), [wrong_kind, chunk(1), chunk(2)], max_workers=2)
    assert isinstance(results[0], CargoError) and all(isinstance(r, Batch) for r in results[1:])
    assert getattr(results[0], "reason", None) == "invalidDataKind"
    assert len(emu.batches()) == 2


@pytest.mark.parametrize("order", ["newest_first", "oldest_first", "unordered"])
def test_listing_a_workflow_reads_every_page_in_any_order(emu, order):
    emu.set_variants(batch_list_order=order)
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        wf = workflow(emu)
        made = {client.create_batch(wf, chunk(i, n=1), reconcile=False).uuid for i in range(205)}
        mark = len(emu.request_log)
        seen = client.list_all_batches(wf)
    assert {b.uuid for b in seen} == made and len(seen) == 205
    assert len([e for e in emu.request_log[mark:] if e["path"] == f"{CREATE}/list"]) == 3  # 100 + 100 + 5


def test_waiting_for_many_batches_polls_them_with_one_list_call_per_round(emu):
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: emu.advance(5)) as client:
        batches = [client.create_batch(workflow(emu), chunk(i), reconcile=False) for i in range(5)]
        mark = len(emu.request_log)
        done = client.wait_for_batches([b.uuid for b in batches], timeout=None,
                                       initial={b.uuid: b for b in batches})
    assert {b.status.value for b in done.values()} == {"success"}
    polls = emu.request_log[mark:]
    gets = [e for e in polls if e["path"].startswith(f"{CREATE}/") and e["path"] != f"{CREATE}/list"]
    lists = [e for e in polls if e["path"] == f"{CREATE}/list"]
    assert gets == [] and len(lists) >= 1
    assert len(polls) == len(lists)


def _batch(uuid: str, status: str) -> Batch:
    return Batch.model_validate({"uuid": uuid, "workflowUuid": "wf", "status": status, "runsCount": 1})


def test_fetch_many_failure_falls_back_to_one_get_each():
    clock, gets = FakeClock(), []

    def get(uuid):
        gets.append(uuid)
        return _batch(uuid, "success")

    def broken(known):
        raise CargoError("list is down")

    initial = {u: _batch(u, "running") for u in "ab"}
    done = wait_for_batches(get, ["a", "b"], timeout=60, sleep=clock.sleep, clock=clock, initial=initial,
                            fetch_many=broken)
    assert set(done) == {"a", "b"} and sorted(gets) == ["a", "b"]
    assert clock.now == 1.0  # known, unfinished batches are first polled after poll_interval, not at once


def test_a_batch_known_to_be_finished_is_not_polled():
    clock = FakeClock()

    def get(uuid):
        raise AssertionError("polled a finished batch")

    done = wait_for_batches(get, ["a"], timeout=60, sleep=clock.sleep, clock=clock,
                            initial={"a": _batch("a", "success")})
    assert done["a"].status.value == "success" and clock.now == 0.0
