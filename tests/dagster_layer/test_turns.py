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
