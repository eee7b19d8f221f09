"""Twins take turns (dagster_cargo.running.turns): the run-tag bakery, on one real instance, without Cargo."""

import threading
import time
import uuid
from types import SimpleNamespace

import dagster as dg
import pytest
from cargo_gtm.running.clock import ManualClock
from dagster._core.storage.dagster_run import DagsterRun

from dagster_cargo.running.turns import Turns

KEY = "dagster-cargo/batch.0123456789abcdef"


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    warning = debug = info


class _Client:
    """What Turns needs of a client: a clock to read and to wait on (waits also yield to other threads)."""

    def __init__(self) -> None:
        self.clock = ManualClock()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)
        time.sleep(0.005)


def a_run(instance, status=dg.DagsterRunStatus.STARTED):
    run = DagsterRun(job_name="twins", run_id=str(uuid.uuid4()), status=status)
    instance.add_run(run)
    return SimpleNamespace(instance=instance, run_id=run.run_id, log=_Log())


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def test_a_second_live_run_waits_for_the_first_to_release_its_turn(instance):
    first, second = a_run(instance), a_run(instance)
    order: list[str] = []
    with Turns(first, _Client(), [KEY]):
        waiter = threading.Thread(target=lambda: _take(second, order))
        waiter.start()
        time.sleep(0.3)
        order.append("first done")
    waiter.join(timeout=30)
    assert order == ["first done", "second in"]
    assert any("is creating a Cargo batch for this same step and input" in line for line in second.log.lines)


def test_a_turn_held_by_a_run_that_ended_blocks_nobody(instance):
    dead = a_run(instance)
    Turns(dead, _Client(), [KEY]).__enter__()  # took its turn, then its worker was killed
    instance.report_run_failed(instance.get_run_by_id(dead.run_id), message="killed")
    alive = a_run(instance)
    client = _Client()
    with Turns(alive, client, [KEY]):
        assert client.clock.monotonic() == 0.0  # entered without waiting
    assert alive.log.lines == []


def test_a_live_run_holding_its_turn_too_long_is_waited_out_with_a_warning(instance):
    holder, late = a_run(instance), a_run(instance)
    Turns(holder, _Client(), [KEY]).__enter__()
    client = _Client()
    with Turns(late, client, [KEY], wait_seconds=5.0):
        assert client.clock.monotonic() >= 5.0
    assert any("held their turn" in line for line in late.log.lines)


def _take(context, order):
    with Turns(context, _Client(), [KEY]):
        order.append("second in")


class _CountingInstance:
    """The instance, with its run-tag writes counted."""

    def __init__(self, instance) -> None:
        self._instance = instance
        self.writes: list[dict] = []

    def add_run_tags(self, run_id, tags) -> None:
        self.writes.append(dict(tags))
        self._instance.add_run_tags(run_id, tags)

    def __getattr__(self, name):
        return getattr(self._instance, name)


def test_the_turns_of_a_fan_out_cost_three_writes_whatever_its_number_of_batches(instance):
    """Each run-tag write re-reads and re-stores the run with every tag it has: one write per key (three per key,
    as each turn was taken one by one) made a 200-batch fan-out's ledger cost grow with its square."""
    context = a_run(instance)
    counting = _CountingInstance(instance)
    context.instance = counting
    keys = [f"dagster-cargo/batch.{i:032x}" for i in range(200)]
    with Turns(context, _Client(), keys):
        held = instance.get_run_by_id(context.run_id).tags
        tickets = {v for k, v in held.items() if k.startswith("dagster-cargo/turn.")}
        assert len([k for k in held if k.startswith("dagster-cargo/turn.")]) == 200
        assert tickets == {f"t:1:{context.run_id}"}  # one ticket number under every key
    assert len(counting.writes) == 3  # choosing, ticket, release
    released = instance.get_run_by_id(context.run_id).tags
    assert {v for k, v in released.items() if k.startswith("dagster-cargo/turn.")} == {"done"}


def test_runs_whose_keys_overlap_in_part_take_turns_and_never_wait_for_each_other(instance):
    """One ticket number per run under all its keys: two runs are in the same order under every key they share, so
    the second waits for the first where they overlap, and neither can wait for the other (no deadlock)."""
    k1, k2, k3 = (f"dagster-cargo/batch.{i:032x}" for i in (1, 2, 3))
    first, second, third = a_run(instance), a_run(instance), a_run(instance)
    order: list[str] = []
    with Turns(first, _Client(), [k1, k2]):
        with Turns(third, _Client(), [k3]):  # no key in common with the first: no wait
            order.append("third in")
        waiter = threading.Thread(target=lambda: _take_keys(second, [k3, k2], order))
        waiter.start()
        time.sleep(0.3)
        order.append("first done")
    waiter.join(timeout=30)
    assert order == ["third in", "first done", "second in"]


def _take_keys(context, keys, order):
    with Turns(context, _Client(), keys):
        order.append("second in")
