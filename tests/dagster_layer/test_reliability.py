"""Retried runs attach to their batch; budgets cancel; partial downloads never succeed."""

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient, CargoDownloadError, records_data
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm.running.waiting import UNLIMITED
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource
from dagster_cargo.running.execution import BatchRunSpec, execute_batch

from ..conftest import TOKEN, make_resource

ROWS = pd.DataFrame({"domain": [f"site{i}.com" for i in range(30)], "company_name": [f"S{i}" for i in range(30)]})


@dg.asset
def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", ROWS).materialize_result()


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator


def resource(emu, **kw):
    return make_resource(emu, **{"poll_interval": 0.01, "max_poll_interval": 0.05, **kw})


def test_reexecution_attaches_to_the_earlier_attempts_batch(monkeypatch):
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, dg.instance_for_test() as instance:
        def worker_dies(self):
            raise RuntimeError("run worker lost")

        monkeypatch.setattr(BatchHandle, "poll", worker_dies)
        first = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance, raise_on_error=False)
        assert not first.success
        monkeypatch.undo()
        emu.advance(3600)  # the batch goes on in Cargo and finishes

        retry_tags = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
        second = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance, tags=retry_tags)
        with CargoClient(TOKEN, base_url=emu.base_url) as c:
            (batch,) = c.list_batches()  # exactly one batch: no second payment
        mat = second.asset_materializations_for_node("enriched")[0]
        assert mat.metadata["dagster-cargo/batch_uuid"].value == batch.uuid
        assert len(second.output_for_node("enriched")) == 30


def test_a_failed_earlier_batch_is_not_reused(monkeypatch):
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, dg.instance_for_test() as instance:
        monkeypatch.setattr(BatchHandle, "poll", lambda self: (_ for _ in ()).throw(RuntimeError("x")))
        first = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance, raise_on_error=False)
        monkeypatch.undo()
        with CargoClient(TOKEN, base_url=emu.base_url) as c:
            (old,) = c.list_batches()
            c.cancel_batch(old.uuid)
            emu.advance(3600)
            # the retry must start a new batch; simulated time is frozen, so let it time out quickly
            second = dg.materialize([enriched], resources={"cargo": resource(emu, poll_timeout=0.5)},
                                    instance=instance, tags={"dagster/root_run_id": first.run_id},
                                    raise_on_error=False)
            assert not second.success
            batches = c.list_batches()
        assert len(batches) == 2 and old.uuid in {b.uuid for b in batches}


def test_step_in_a_fresh_run_creates_its_own_batch(emulator):
    with dg.instance_for_test() as instance:
        for _ in range(2):
            dg.materialize([enriched], resources={"cargo": resource(emulator)}, instance=instance)
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        assert len(c.list_batches()) == 2  # a new run is new work, not a retry


def test_credit_budget_cancels_the_batch_and_fails_with_figures():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu:
        # Cargo's time runs 20x the waiter's: each wait advances the emulator 20 times as far
        client = CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock(on_sleep=lambda s: emu.advance(20 * s)))
        tool = client.find_tool("Enrich company")
        spec = BatchRunSpec(workflow_uuid=tool.workflow_uuid, workflow_type="tool", workflow_name=tool.name,
                            data=records_data(ROWS.to_dict("records")), credit_budget=10)
        with pytest.raises(dg.Failure) as info:
            execute_batch(dg.build_asset_context(), client, spec, batch_url_for=lambda b: "u", poll_interval=0.05,
                          max_poll_interval=0.05, poll_timeout=3600, cancel_on_termination=True,
                          credit_breakdown=False, guidance=UNLIMITED)  # Cargo time runs 20x here
        (batch,) = client.list_batches()
        assert batch.uuid in info.value.description and "budget of 10" in info.value.description
        # says what the package did and what is left to the user
        assert f"dagster-cargo cancelled {batch.uuid}" in info.value.description
        assert "Next step: raise credit_budget" in info.value.description
        assert info.value.metadata["dagster-cargo/credits_used"].value > 10
        emu.advance(60)
        final = client.get_batch(batch.uuid)
        assert final.status.value == "cancelled" and final.credits_used_count < 60  # 30 records × 2 if run fully


def test_partial_download_is_retried_then_refused(emulator, monkeypatch):
    clock = ManualClock(on_sleep=emulator.advance)  # records the pauses between download attempts
    pauses = clock.sleeps

    with CargoClient(TOKEN, base_url=emulator.base_url, clock=clock) as c:
        tool = c.find_tool("Enrich company")
        batch = c.create_batch(tool.workflow_uuid, records_data([{"domain": f"d{i}.com"} for i in range(5)]))
        batch = c.wait_for_batch(batch.uuid, poll_interval=0.05, max_poll_interval=0.2)
        urls = []
        real = c.get_batch_download_url

        def counting(uuid, slug=None):
            urls.append(real(uuid, slug))
            return urls[-1]

        monkeypatch.setattr(c, "get_batch_download_url", counting)
        assert len(c.download_batch_dataframe(batch.uuid, expected_rows=5)) == 5
        with pytest.raises(CargoDownloadError, match="partial") as info:
            c.download_batch_dataframe(batch.uuid, expected_rows=6)  # as if a row were missing
        assert info.value.batch_uuid == batch.uuid
        assert len(set(urls)) == 6  # 1 good + 5 attempts, each with a freshly requested URL
        assert pauses[-4:] == [0.5, 1.0, 2.0, 4.0]  # a growing pause before each new attempt


def test_large_tool_input_is_split_into_batches_run_together(emulator):
    @dg.asset
    def big(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", ROWS.head(10)).materialize_result()

    result = dg.materialize([big], resources={"cargo": resource(emulator, max_records_per_batch=4)})
    frame = result.output_for_node("big")
    assert sorted(frame["domain"]) == sorted(ROWS.head(10)["domain"])
    meta = {k: getattr(v, "value", v) for k, v in result.asset_materializations_for_node("big")[0].metadata.items()}
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        batches = c.list_batches()
    assert sorted(b.runs_count for b in batches) == [2, 4, 4]
    assert meta["dagster-cargo/counts"]["batch_count"] == 3
    assert set(meta["dagster-cargo/batch_uuids"].split(",")) == {b.uuid for b in batches}
    # provider credits (2 per record) + the execution charge (3 node executions per record × 0.01)
    assert sum(b.credits_used_count for b in batches) == meta["dagster-cargo/provider_credits"] == 20
    assert meta["dagster-cargo/counts"]["node_executions"] == 30 and meta["dagster-cargo/execution_charge"] == 0.3
    assert meta["dagster-cargo/credits_used"] == pytest.approx(20.3)
    assert meta["dagster-cargo/counts"]["runs_count"] == 10 and meta["dagster/row_count"] == 10


@pytest.mark.parametrize(
    "overrides, frame, message",
    [
        ({"max_batch_payload_bytes": 200}, pd.DataFrame({"domain": ["x.com"], "notes": ["y" * 500]}), "over the 200-byte"),
        ({"max_input_records": 5}, ROWS.head(6), "exceed the limit of 5"),
    ],
)
def test_oversize_input_is_refused_before_any_credit_is_spent(emulator, overrides, frame, message):
    @dg.asset
    def oversize(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", frame).materialize_result()

    result = dg.materialize([oversize], resources={"cargo": resource(emulator, **overrides)}, raise_on_error=False)
    assert not result.success
    assert message in result.failure_data_for_node("oversize").error.to_string()
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        assert c.list_batches() == []
        assert c.get_subscription().subscription_credits_used_count == 0


def test_fan_out_keeps_input_order_and_logs_a_summary_not_a_line_per_poll(emulator):
    @dg.asset
    def fan(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", ROWS).materialize_result()

    with dg.instance_for_test() as instance:
        result = dg.materialize([fan], resources={"cargo": resource(emulator, max_records_per_batch=3)},
                                instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    frame = result.output_for_node("fan")
    # 10 batches created concurrently, yet the frame follows the input order chunk by chunk
    assert list(frame["domain"]) == list(ROWS["domain"])
    meta = {k: getattr(v, "value", v) for k, v in result.asset_materializations_for_node("fan")[0].metadata.items()}
    # per-node credits add up over all 10 batches (30 records x 2 credits), one runs/metrics call per batch
    assert meta["dagster-cargo/provider_credits/enrich_company"] == meta["dagster-cargo/provider_credits"] == 60
    assert meta["dagster-cargo/credits_used"] == pytest.approx(60 + 30 * 3 * 0.01)
    assert "dagster-cargo/provider_credits/start" not in meta  # nodes that cost nothing are left out
    assert len([e for e in emulator.request_log if e["path"] == "/v1/orchestration/runs/metrics"]) == 10
    per_batch = [m for m in messages if m and m.startswith("Cargo batch ") and "runs executed" in m]
    summaries = [m for m in messages if m and m.startswith("Cargo: ") and "batches finished" in m]
    assert per_batch == [] and summaries and "10/10 batches finished" in summaries[-1]


def test_reexecuted_fan_out_attaches_to_every_batch_of_the_first_attempt(monkeypatch):
    @dg.asset
    def fan(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", ROWS.head(12)).materialize_result()

    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, dg.instance_for_test() as instance:
        monkeypatch.setattr(BatchHandle, "poll", lambda self: (_ for _ in ()).throw(RuntimeError("run worker lost")))
        first = dg.materialize([fan], resources={"cargo": resource(emu, max_records_per_batch=3)},
                               instance=instance, raise_on_error=False)
        monkeypatch.undo()
        assert not first.success
        created = {b.uuid for b in emu.batches()}
        assert len(created) == 4
        emu.advance(3600)
        tags = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
        second = dg.materialize([fan], resources={"cargo": resource(emu, max_records_per_batch=3)},
                                instance=instance, tags=tags)
        assert second.success
        assert {b.uuid for b in emu.batches()} == created  # no batch paid for twice
        assert list(second.output_for_node("fan")["domain"]) == list(ROWS.head(12)["domain"])


def test_poll_timeout_says_the_batch_was_cancelled_not_to_cancel_it():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu:
        client = CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock())  # waits move no simulated time
        tool = client.find_tool("Enrich company")
        spec = BatchRunSpec(workflow_uuid=tool.workflow_uuid, workflow_type="tool", workflow_name=tool.name,
                            data=records_data(ROWS.to_dict("records")))
        with pytest.raises(dg.Failure) as info:  # simulated time is frozen: the batch never finishes
            execute_batch(dg.build_asset_context(), client, spec, batch_url_for=lambda b: None, poll_interval=0.05,
                          max_poll_interval=0.05, poll_timeout=0.2, cancel_on_termination=True,
                          credit_breakdown=False)
        (batch,) = client.list_batches()
        text = info.value.description
        emu.advance(60)  # let the emulator finish cancelling
        assert client.get_batch(batch.uuid).status.value == "cancelled"
        assert f"dagster-cargo cancelled {batch.uuid}" in text and "poll_timeout" in text
        assert "cancel the batch in Cargo" not in text
