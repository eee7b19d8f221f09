"""Single-record runs (``POST /orchestration/runs``) against the emulator on loopback, manual clock.

The one-row DataFrame and the credits equal those of a one-record batch of the same record; an
ambiguous create never leaves a second run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from cargo_gtm import CargoClient, records_data
from cargo_gtm.errors import CargoRequestError, CargoWaitTimeoutError
from cargo_gtm.running import run_one_record
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.reconcile import CargoAmbiguousCreateError
from cargo_gtm.running.single_run import (
    RunIntent,
    cancel_run,
    create_run_once,
    find_created_run,
    get_run_with_context,
    run_guidance,
    run_intent,
    wait_for_run,
)
from cargo_gtm.running.waiting import PollingGuidance
from cargo_gtm_emulator import CargoEmulator, FaultProfile

TOKEN = "tok-single-run-3f9a"
RUNS = "/v1/orchestration/runs"
RECORDS = {
    "Enrich company": {"domain": "acme.example", "company_name": "Acme"},
    "Find work email": {"first_name": "Ann", "last_name": "Lee", "domain": "acme.example"},
    "Normalize domain": {"domain": "WWW.Acme.example"},
}


def emulator(rate: float = 0.0) -> CargoEmulator:
    profile = FaultProfile(retry_after_seconds=1.0, retry_after_http_date_rate=0.0)
    return CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=rate, credits=1000, faults=profile)


@pytest.fixture
def emu() -> Iterator[CargoEmulator]:
    with emulator() as e:
        yield e


def client_for(emu: CargoEmulator, **kw) -> CargoClient:
    return CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock(on_sleep=emu.advance), **kw)


def workflow(emu: CargoEmulator, tool: str = "Enrich company") -> str:
    return str(emu.store.tool_by_name(tool)["workflowUuid"])


def standalone_runs(emu: CargoEmulator) -> list:
    return [r for r in emu.runs() if r.batch_uuid is None]


def batch_frame_and_cost(client: CargoClient, wf: str, record: dict) -> tuple[pd.DataFrame, float]:
    before = client.get_subscription().credits_remaining
    batch = client.wait_for_batch(client.create_batch(wf, records_data([record])).uuid, raise_on_failure=False)
    frame = client.download_batch_dataframe(batch.uuid, records=[record])
    return frame, round(before - client.get_subscription().credits_remaining, 6)


def single_frame_and_cost(client: CargoClient, wf: str, record: dict):
    before = client.get_subscription().credits_remaining
    frame, result, credits = run_one_record(client, wf, record)
    return frame, result, credits, round(before - client.get_subscription().credits_remaining, 6)


@pytest.mark.parametrize("rate", [0.0, 1.0], ids=["succeeds", "fails"])
@pytest.mark.parametrize("tool", sorted(RECORDS))
def test_one_row_and_credits_equal_a_one_record_batch(tool, rate):
    with emulator(rate) as emu, client_for(emu) as client:
        wf, record = workflow(emu, tool), RECORDS[tool]
        batch_frame, batch_cost = batch_frame_and_cost(client, wf, record)
        frame, result, credits, cost = single_frame_and_cost(client, wf, record)
    pd.testing.assert_frame_equal(frame, batch_frame)
    assert credits.total == cost == batch_cost  # provider + execution charge = what the subscription lost
    assert result.run.batch_uuid is None and len(standalone_runs(emu)) == 1


def test_a_failing_record_carries_cargos_message():
    with emulator(1.0) as emu, client_for(emu) as client:
        frame, result, credits, cost = single_frame_and_cost(client, workflow(emu), RECORDS["Enrich company"])
    row = frame.to_dict("records")[0]
    assert row["_status"] == "error" and result.run.status.value == "error"
    assert row["_error_message"] == result.run.error_message
    assert row["_error_message"].startswith("Enrich company failed for record ")
    assert credits.execution_charge > 0 and cost == credits.total


def test_a_filter_stop_is_filtered_like_in_a_batch(emu):
    record = {"domain": "gmail.com"}  # free-mail: the tool's filter stops it on purpose
    with client_for(emu) as client:
        wf = workflow(emu, "Normalize domain")
        batch_frame, _ = batch_frame_and_cost(client, wf, record)
        frame, _, _, _ = single_frame_and_cost(client, wf, record)
    assert frame["_status"].tolist() == ["filtered"]
    pd.testing.assert_frame_equal(frame, batch_frame)


def test_run_context_is_kept_and_keyed_by_node_slug(emu):
    with client_for(emu) as client:
        run = client.create_run(workflow(emu), RECORDS["Enrich company"])
        result = wait_for_run(client, run.uuid)
    assert set(result.context) == {"start", "enrich_company", "output"}
    assert result.context["start"]["domain"] == "acme.example" and result.is_terminal


def test_plays_are_refused_by_cargo(emu):
    play = emu.store.play_by_name("Score inbound companies") if hasattr(emu.store, "play_by_name") else None
    with client_for(emu) as client:
        wf = play["workflowUuid"] if play else client.find_play("Score inbound companies").workflow_uuid
        with pytest.raises(CargoRequestError) as info:
            create_run_once(client, wf, {"domain": "acme.example"})
    assert info.value.reason == "playNotCompatible" and not emu.runs()


# ---------------------------------------------------------------------------- polling
def test_polls_follow_cargos_run_guidance(emu):
    with client_for(emu) as client:
        run = client.create_run(workflow(emu), RECORDS["Enrich company"])
        seen: list[float] = []
        result = wait_for_run(client, run.uuid, on_poll=lambda r, elapsed: seen.append(elapsed))
    assert result.run.status.value == "success"
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    assert seen[0] == 0.0 and all(g >= 1.0 for g in gaps)
    assert all(seen[n] >= n * 2.0 for n in range(len(seen)))  # never more than one request per 2 s on average
    assert run_guidance(PollingGuidance(average_interval=10.0)).average_interval == 4.0
    assert run_guidance(PollingGuidance(average_interval=0.0)).average_interval == 0.0


def test_wait_times_out_without_spinning(emu):
    with client_for(emu) as client:
        run = client.create_run(workflow(emu), RECORDS["Enrich company"])
        with pytest.raises(CargoWaitTimeoutError) as info:
            wait_for_run(client, run.uuid, timeout=2.0)
    assert info.value.batch_uuid == run.uuid and info.value.last_status in ("pending", "running")


# ---------------------------------------------------------------------------- exactly once
def lose_the_next_run_create_response(emu: CargoEmulator) -> None:
    """The emulator commits the run, then drops the connection: the client cannot know the run exists."""
    emu.faults.next(f"POST {RUNS}", "lost_create_response")


def test_lost_create_response_adopts_the_one_committed_run(emu):
    lose_the_next_run_create_response(emu)
    with client_for(emu) as client:
        run = create_run_once(client, workflow(emu), RECORDS["Enrich company"])
    assert [r.uuid for r in standalone_runs(emu)] == [run.uuid]
    assert [e.get("fault") for e in emu.requests("POST", RUNS)] == ["lost_create_response"]  # adopted, never resent
    assert emu.requests("GET", "/v1/userManagement/users/current")  # the user is looked up only now


def test_5xx_before_commit_is_reconciled_then_sent_once_more(emu):
    emu.faults.next(f"POST {RUNS}", "server_error", status=502)  # handler not run: nothing committed
    with client_for(emu) as client:
        run = create_run_once(client, workflow(emu), RECORDS["Enrich company"])
    assert [r.uuid for r in standalone_runs(emu)] == [run.uuid]
    assert [e.get("fault") for e in emu.requests("POST", RUNS)] == ["server_error", None]


def test_connection_reset_is_reconciled_then_sent_once_more(emu):
    emu.faults.next(f"POST {RUNS}", "connection_reset")
    with client_for(emu) as client:
        run = create_run_once(client, workflow(emu), RECORDS["Enrich company"])
    assert [r.uuid for r in standalone_runs(emu)] == [run.uuid]


def test_happy_path_never_looks_up_the_user(emu):
    with client_for(emu) as client:
        create_run_once(client, workflow(emu), RECORDS["Enrich company"])
    assert not emu.requests("GET", "/v1/userManagement/users/current")
    assert len(emu.requests("POST", RUNS)) == 1


def test_an_earlier_run_of_the_same_record_is_never_adopted(emu):
    with client_for(emu) as client:
        wf = workflow(emu)
        earlier = client.create_run(wf, RECORDS["Enrich company"])
        emu.advance(30)
        intent = run_intent(client, wf)
        assert earlier.uuid in intent.known
        assert find_created_run(client, RECORDS["Enrich company"], intent, settle_delays=()) is None


def test_two_runs_holding_the_record_stop_without_creating(emu):
    with client_for(emu) as client:
        wf = workflow(emu)
        intent = RunIntent(workflow_uuid=wf, sent_at="2025-01-15T10:00:00Z", watermark=None)
        twins = [client.create_run(wf, RECORDS["Enrich company"]).uuid for _ in range(2)]
        emu.advance(30)
        with pytest.raises(CargoAmbiguousCreateError) as info:
            find_created_run(client, RECORDS["Enrich company"], intent, settle_delays=())
    assert sorted(info.value.candidates) == sorted(twins) and len(standalone_runs(emu)) == 2
    assert wf in str(info.value) and "Next step" in str(info.value)


def test_a_candidate_still_pending_is_never_adopted_nor_duplicated(emu):
    with client_for(emu) as client:
        wf = workflow(emu)
        intent = run_intent(client, wf)
        pending = client.create_run(wf, RECORDS["Enrich company"])  # nothing executed: content unreadable
    with CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock()) as frozen:  # Cargo's time stands still
        with pytest.raises(CargoAmbiguousCreateError) as info:
            find_created_run(frozen, RECORDS["Enrich company"], intent, settle_delays=(1.0,))
    assert info.value.candidates == [pending.uuid]


def test_a_batch_run_of_the_same_record_is_not_a_candidate(emu):
    with client_for(emu) as client:
        wf = workflow(emu)
        intent = run_intent(client, wf)
        client.wait_for_batch(client.create_batch(wf, records_data([RECORDS["Enrich company"]])).uuid)
        assert find_created_run(client, RECORDS["Enrich company"], intent, settle_delays=()) is None


def test_intent_round_trips(emu):
    with client_for(emu) as client:
        intent = run_intent(client, workflow(emu), attempt_key="k")
    assert RunIntent.from_json(intent.to_json()) == intent
    assert get_run_with_context  # re-exported helper exists


def test_lost_response_is_adopted_when_the_workflow_has_more_runs_than_a_page(emu):
    records = [{"domain": f"d{i}.example", "company_name": f"D{i}"} for i in range(130)]
    with client_for(emu) as client:
        wf = workflow(emu)
        client.wait_for_batch(client.create_batch(wf, records_data(records)).uuid)
    lose_the_next_run_create_response(emu)
    with client_for(emu) as client:
        intent = run_intent(client, wf)
        assert intent.watermark is not None and len(emu.runs()) == 130
        run = create_run_once(client, wf, records[0], intent=intent)  # same record as a batch run: not adopted
    assert [r.uuid for r in standalone_runs(emu)] == [run.uuid] and len(emu.requests("POST", RUNS)) == 1
    assert emu.faults.counts["lost_create_response"] == 1


# ---------------------------------------------------------------------------- cancel
def test_a_cancelled_single_run_ends_cancelled_and_spends_nothing_more(emu):
    with client_for(emu) as client:
        run = create_run_once(client, workflow(emu), RECORDS["Enrich company"])
        cancel_run(client, run)  # still pending: no node has started
        assert [(r.uuid, r.status) for r in standalone_runs(emu)] == [(run.uuid, "cancelling")]
        result = wait_for_run(client, run.uuid)
        credits_left = client.get_subscription().credits_remaining
    assert result.run.status.value == "cancelled" and result.is_terminal and result.run.finished_at is not None
    assert [(r.uuid, r.status, r.node_statuses) for r in standalone_runs(emu)] == [(run.uuid, "cancelled", ())]
    assert emu.requests("POST", "/v1/orchestration/runs/cancel")[0]["json"] == {
        "workflowUuid": run.workflow_uuid, "uuids": [run.uuid]}
    assert emu.credits_used == 0 and credits_left == 1000


# ---------------------------------------------------------------------------- a claiming ledger (twins)
class TwinLedger:
    """A :class:`~cargo_gtm.running.handle.ClaimingLedger` whose twin creates the same record right after this
    handle's watermark (before its request leaves), then the handle's create response is lost: two runs hold the
    record, and only the claim tells them apart."""

    def __init__(self, emu: CargoEmulator, client: CargoClient, *, claims: bool) -> None:
        self.emu, self.client, self.claims = emu, client, claims
        self.twin: str | None = None
        self.turns: list[list] = []
        self.recorded: dict = {}

    def reusable(self, keys, datas):
        return {}

    def intent(self, key, intent):
        self.twin = self.client.create_run(intent.workflow_uuid, RECORDS["Enrich company"]).uuid
        lose_the_next_run_create_response(self.emu)

    def created(self, key, unit):
        self.recorded[key] = unit.uuid

    def candidates(self, key, uuids):
        return None

    def claimed(self, key):
        return {self.twin} if self.claims and self.twin else set()

    def exclusive(self, keys):
        from contextlib import nullcontext

        self.turns.append(list(keys))
        return nullcontext()


@pytest.mark.parametrize("claims", [True, False], ids=["claimed", "unclaimed"])
def test_a_run_handle_never_adopts_a_run_its_ledger_says_another_run_claimed(emu, claims):
    from cargo_gtm.running import RunHandle, RunRequest

    with client_for(emu) as client:
        ledger = TwinLedger(emu, client, claims=claims)
        handle = RunHandle(client, [RunRequest(workflow(emu), RECORDS["Enrich company"], "key-0")], ledger=ledger)
        report = handle.start()
    assert ledger.turns == [["key-0"]]  # the create took its turn
    assert len(standalone_runs(emu)) == 2  # the twin's run and this handle's (its response lost)
    if claims:  # the twin's run is claimed: this handle's own run is the one proven candidate left
        (own,) = handle.uuids
        assert own != ledger.twin and ledger.recorded == {"key-0": own} and not report.errors
    else:  # content alone cannot tell the two apart: nothing adopted, nothing created again
        assert handle.uuids == [] and isinstance(report.errors[0], CargoAmbiguousCreateError)
        assert sorted(report.errors[0].candidates) == sorted(r.uuid for r in standalone_runs(emu))
