"""The framework-free step driver (``cargo_gtm.running.step``): one loop for batches and single runs.

Against the emulator on a manual clock: no Dagster here, which is the point (the Airflow provider drives the
same API). Each phase can be resumed from UUIDs in a fresh handle, as a deferrable task does.
"""

from __future__ import annotations

import logging

import pytest
from cargo_gtm import CargoClient, records_data
from cargo_gtm.errors import CargoStepError
from cargo_gtm.running import (
    BatchHandle,
    BatchRequest,
    RunHandle,
    RunRequest,
    StepDriver,
    StepSettings,
    WaitSettings,
    step_metadata,
    tighter_budget,
)
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

from ..conftest import TOKEN

TOOL = "Enrich company"
RECORDS = [{"domain": f"d{i}.example", "company_name": f"D{i}"} for i in range(5)]


@pytest.fixture
def emu():
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=1000) as e:
        yield e


def client_for(emu: CargoEmulator, factor: float = 1.0) -> CargoClient:
    return CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock(on_sleep=lambda s: emu.advance(factor * s)))


def settings(client: CargoClient, **kw) -> StepSettings:
    tool = client.find_tool(TOOL)
    wait = kw.pop("wait", WaitSettings(poll_interval=0.5, max_poll_interval=2.0))
    return StepSettings(workflow_uuid=tool.workflow_uuid, workflow_name=tool.name, workflow_type="tool",
                        wait=wait, **kw)


def standalone_runs(emu):
    return [r for r in emu.runs() if r.batch_uuid is None]


def test_single_runs_and_a_batch_give_the_same_rows_and_figures_through_one_driver(emu):
    with client_for(emu) as client:
        s = settings(client)
        runs = StepDriver(RunHandle.for_step(client, [RunRequest(s.workflow_uuid, r) for r in RECORDS], s), s).run()
        batch = StepDriver(BatchHandle.for_step(client, [BatchRequest(s.workflow_uuid, records_data(RECORDS),
                                                                      records=RECORDS)], s), s).run()
    assert len(standalone_runs(emu)) == 5 and len(emu.batches()) == 1
    assert runs.mode == "single_run" and batch.mode == "batch"
    assert runs.frame["domain"].tolist() == batch.frame["domain"].tolist() == [r["domain"] for r in RECORDS]
    assert runs.frame["_status"].tolist() == ["success"] * 5
    assert runs.credits_used == pytest.approx(batch.credits_used) == pytest.approx(5 * 2.03)
    one, other = step_metadata(runs), step_metadata(batch)
    assert one["run_uuid"] == ",".join(r.uuid for r in runs.runs) and one["mode"] == "single_run"
    assert "batch_uuid" not in one and other["batch_uuid"] == batch.batches[0].uuid
    for key in ("credits_used", "provider_credits", "execution_charge", "node_executions", "runs_count",
                "executed_runs_count", "input_records", "provider_credits/enrich_company"):
        assert one[key] == other[key], key


def test_single_runs_are_polled_concurrently(emu):
    """Five runs are polled in the same rounds (not one run waited for after another): every round that polls
    reads all the runs still going."""
    with client_for(emu) as client:
        s = settings(client)
        handle = RunHandle.for_step(client, [RunRequest(s.workflow_uuid, r) for r in RECORDS], s)
        rounds: list[tuple[int, int]] = []  # (runs polled, runs unfinished before the round)
        real_poll = handle.poll

        def poll():
            unfinished = sum(not r.is_terminal for r in handle.units)
            snapshot = real_poll()
            if snapshot.updates:
                rounds.append((len(snapshot.updates), unfinished))
            return snapshot

        handle.poll = poll  # type: ignore[method-assign]
        result = StepDriver(handle, s).run()
        waited = client.clock.monotonic()
    assert rounds[0] == (5, 5) and all(polled == unfinished for polled, unfinished in rounds), rounds
    durations = [r.duration_seconds for r in result.runs]
    assert waited < max(durations) + 5, (waited, durations)  # the slowest run plus at most one poll interval


def test_a_budget_below_the_cost_of_single_runs_cancels_them_mid_run(emu):
    with client_for(emu) as client:
        start = client.get_subscription().credits_remaining
        s = settings(client, credit_budget=3.0)
        handle = RunHandle.for_step(client, [RunRequest(s.workflow_uuid, r) for r in RECORDS], s)
        with pytest.raises(CargoStepError) as info:
            StepDriver(handle, s, actor="test").run()
        emu.advance(30)
        spent = round(start - client.get_subscription().credits_remaining, 6)
    assert "budget of 3" in str(info.value) and "Next step: raise credit_budget" in str(info.value)
    assert info.value.metadata["credit_budget"] == 3.0 and info.value.metadata["credits_used"] > 3.0
    statuses = sorted(r.status for r in standalone_runs(emu))
    assert "cancelled" in statuses, statuses
    assert spent < 5 * 2.03, spent  # short of the full cost
    assert spent == pytest.approx(info.value.metadata["credits_used"], abs=0.011)


def test_the_phases_resume_from_uuids_in_fresh_handles(emu):
    """A deferrable task: start in one process, poll in another (a trigger), finish in a third."""
    with client_for(emu) as client:
        s = settings(client)
        requests = [BatchRequest(s.workflow_uuid, records_data(RECORDS), records=RECORDS)]
        started = BatchHandle.for_step(client, requests, s)
        StepDriver(started, s).start()
        uuids = list(started.uuids)  # the serialisable state
        poller = StepDriver(BatchHandle.resume(client, uuids, requests), s)
        verdict = poller.poll_once()
        while verdict.action == "wait":
            client.sleep(verdict.wake_in)
            verdict = poller.poll_once()
        assert verdict.action == "done"
        result = StepDriver(BatchHandle.resume(client, uuids, requests), s).finish()
        runs = RunHandle.for_step(client, [RunRequest(s.workflow_uuid, RECORDS[0])], s)
        StepDriver(runs, s).start()
        client.sleep(30)
        finished = StepDriver(RunHandle.resume(client, runs.uuids, runs.requests), s).finish()
    assert len(emu.batches()) == 1 and result.batches[0].uuid == uuids[0]
    assert result.frame["domain"].tolist() == [r["domain"] for r in RECORDS]
    assert finished.frame["domain"].tolist() == [RECORDS[0]["domain"]] and len(standalone_runs(emu)) == 1


def test_failed_rows_policy_is_one_for_both(emu, caplog):
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=1.0, credits=1000) as failing:
        with client_for(failing) as client:
            for make in ("run", "batch"):
                s = settings(client, failed_rows="fail")
                handle = (RunHandle.for_step(client, [RunRequest(s.workflow_uuid, RECORDS[0])], s) if make == "run"
                          else BatchHandle.for_step(client, [BatchRequest(s.workflow_uuid, records_data(RECORDS[:1]),
                                                                          records=RECORDS[:1])], s))
                with pytest.raises(CargoStepError) as info:
                    StepDriver(handle, s).run()
                assert "1 of 1 input records failed" in str(info.value) and "failed_rows='fail'" in str(info.value)
                assert info.value.metadata["failed_rows"] == 1
            s = settings(client, failed_rows="drop")
            with caplog.at_level(logging.WARNING, logger="cargo_gtm"):
                dropped = StepDriver(RunHandle.for_step(client, [RunRequest(s.workflow_uuid, RECORDS[0])], s), s).run()
    assert len(dropped.frame) == 0 and dropped.statuses["error"] == 1
    assert any("dropped (failed_rows='drop')" in r.getMessage() for r in caplog.records)


def test_the_tighter_limit_wins():
    assert tighter_budget(None, None) is None
    assert tighter_budget(20.0, None) == 20.0 and tighter_budget(None, 5.0) == 5.0
    assert tighter_budget(20.0, 5.0) == 5.0 and tighter_budget(5.0, 20.0) == 5.0


def test_hurry_polls_sooner_but_never_faster_than_the_guidance():
    from cargo_gtm.models import Batch
    from cargo_gtm.running import BatchPoller, PollingGuidance

    clock = ManualClock()
    polls: list[float] = []

    def get(uuid: str) -> Batch:  # a long batch: 1 run of 100 more per poll, so the schedule plans long waits
        polls.append(clock.monotonic())
        return Batch.model_validate({"uuid": uuid, "workflowUuid": "w", "status": "running", "runsCount": 100,
                                     "executedRunsCount": len(polls)})

    poller = BatchPoller(get, ["b1"], now=clock.monotonic, poll_interval=1.0, max_poll_interval=30.0,
                         guidance=PollingGuidance(average_interval=5.0))
    for _ in range(3):
        snapshot = poller.poll()
        clock.sleep(snapshot.wake_in)
    snapshot = poller.poll()
    assert snapshot.wake_in == 30.0  # far from the end: the schedule waits long
    sooner = poller.hurry()
    assert sooner < snapshot.wake_in
    assert clock.monotonic() + sooner >= poller.start + len(polls) * 5.0  # Cargo's average guidance still holds
