"""Cost that does not grow with a workflow's history: a create's watermark and its reconciliation read only
the newest page(s) of the batch list when Cargo serves it newest first, and stay exactly-once in every order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cargo_gtm import Batch, CargoClient
from cargo_gtm.inputs.records import records_data
from cargo_gtm.paging import read_newest
from cargo_gtm_emulator import CargoEmulator

from .history import seed_history

TOKEN = "tok-history-5b7d"
CREATE = "/v1/orchestration/batches"
SAME = records_data([{"domain": "same.example", "company_name": "Same"}])


@pytest.fixture
def emu():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, credits=10**9) as e:
        yield e


def workflow(emu: CargoEmulator) -> str:
    return str(emu.store.tool_by_name("Enrich company")["workflowUuid"])


def list_calls(emu: CargoEmulator, since: int) -> int:
    return len([e for e in emu.request_log[since:] if e["path"] == f"{CREATE}/list"])


@pytest.mark.parametrize("order", ["newest_first", "oldest_first", "unordered"])
def test_10000_earlier_batches_of_the_same_input_and_a_lost_create_response_adopt_only_the_new_batch(emu, order):
    emu.set_variants(batch_list_order=order)
    wf = workflow(emu)
    earlier = seed_history(emu, wf, 10_000, SAME)  # every one holds exactly what is sent next: content alone
    emu.faults.next(f"POST {CREATE}", "lost_create_response")  # can't tell them apart, only the watermark can
    mark = len(emu.request_log)
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: emu.advance(max(s, 1))) as client:
        got = client.create_batch(wf, SAME)
    new = [b.uuid for b in emu.batches(wf) if b.uuid not in earlier]
    assert new == [got.uuid]  # adopted the batch the lost create made; sent once; no earlier batch adopted
    creates = [e for e in emu.request_log[mark:] if e["method"] == "POST" and e["path"] == CREATE]
    assert len(creates) == 1 and creates[0]["fault"] == "lost_create_response"
    if order == "newest_first":  # the watermark (1 page) and each look back to it (1 page; up to 4 looks while
        assert list_calls(emu, mark) <= 5  # the new batch's runs are not readable yet): whatever the history
    else:  # no order to rely on: every page (101 of them), for the watermark and for each look
        assert list_calls(emu, mark) >= 2 * 101


def test_list_calls_per_create_stay_flat_from_100_to_10000_earlier_batches(emu):
    wf = workflow(emu)
    seen = []
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: emu.advance(max(s, 1))) as client:
        for total in (100, 1_000, 10_000):
            seed_history(emu, wf, total - len(emu.batches(wf)), records_data([{"domain": "old.example"}]))
            assert len(emu.batches(wf)) == total
            mark = len(emu.request_log)
            client.create_batch(wf, records_data([{"domain": f"new{total}.example"}]))
            seen.append(list_calls(emu, mark))
            emu.advance(600)
    assert seen == [1, 1, 1]  # the watermark's one page


T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _batch(i: int, seconds: float) -> Batch:
    return Batch.model_validate({"uuid": f"b{i}", "workflowUuid": "wf", "status": "success",
                                 "createdAt": (T0 + timedelta(seconds=seconds)).isoformat(), "data": {"kind": "records"}})


def _pages(items: list[Batch], fetched: list[int]):
    def page(offset: int) -> list[Batch]:
        fetched.append(offset)
        return items[offset:offset + 10]
    return page


def _read(items: list[Batch], since: datetime | None = None) -> tuple[set[str], list[int]]:
    fetched: list[int] = []
    got = read_newest(_pages(items, fetched), page_size=10, key=lambda b: b.uuid, created=lambda b: b.created_at,
                      since=since)
    return {b.uuid for b in got}, fetched


def test_read_newest_reads_one_page_newest_first_and_everything_in_any_other_order():
    history = [_batch(i, i) for i in range(95)]
    newest_first = list(reversed(history))
    got, fetched = _read(newest_first)
    assert "b94" in got and fetched == [0]  # the newest instant is on the first page
    got, fetched = _read(newest_first, since=T0 + timedelta(seconds=73))
    assert {f"b{i}" for i in range(73, 95)} <= got and fetched == [0, 10, 20]
    for order in (history, sorted(history, key=lambda b: hash(b.uuid) % 7)):  # oldest first; shuffled
        got, fetched = _read(order)
        assert got == {b.uuid for b in history} and fetched[-1] == 90  # read to the end
    ties = [_batch(i, 50 if i < 25 else i) for i in range(95)]  # 25 batches at the newest-first page's edge
    got, fetched = _read(sorted(ties, key=lambda b: (b.created_at, b.uuid), reverse=True), since=T0 + timedelta(seconds=50))
    assert {f"b{i}" for i in range(25)} <= got


def test_read_newest_falls_back_when_a_later_page_breaks_the_order():
    items = [_batch(i, 100 - i) for i in range(10)] + [_batch(99, 500)] + [_batch(i, 100 - i) for i in range(10, 30)]
    got, fetched = _read(items, since=T0 + timedelta(seconds=85))
    assert "b99" in got and fetched[-1] == 30  # page 2 starts newer than page 1 ended: not newest first
