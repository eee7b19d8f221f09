"""A re-execution attaches to the batch its earlier attempt paid for, whatever the estimate says now."""

import dagster as dg
from cargo_gtm import CargoClient
from cargo_gtm.estimate import CreditEstimate
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm_emulator import CargoEmulator

import dagster_cargo.running.resource as resource_module
from dagster_cargo import CargoResource

from .test_reexecution_faults import ROWS, TOKEN, enriched, first_attempt_dies_while_waiting, reexecute, resource


def test_a_reexecution_is_not_refused_by_an_estimate_over_the_budget_when_its_batch_exists(monkeypatch):
    """The first attempt's estimate fit its budget; it created its batch and its worker died. The re-execution's
    estimate is now over the budget (the workflow's recent cost per record went up): the batch is paid for, so it
    attaches and reports it; only new batches are refused."""
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        (earlier,) = [b.uuid for b in emu.batches()]
        emu.advance(3600)
        monkeypatch.setattr(resource_module, "try_estimate", lambda *a, **k: CreditEstimate(
            records=4, records_basis="input size", per_record=125.0, per_record_basis="recent batches (test)", nodes=2))
        second = reexecute(emu, instance, first, max_credits_per_batch=100.0)
        assert second.success, second.all_events[-1].message if not second.success else ""
        assert [b.uuid for b in emu.batches()] == [earlier]


@dg.asset(name="enriched")
def enriched_first_half(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", ROWS.iloc[:2]).materialize_result()


def test_a_reexecution_with_only_some_of_its_batches_created_refuses_the_rest_naming_those(monkeypatch):
    """Two chunks; the earlier attempt created only the first (it stands for one whose second create never left).
    Over the budget, the re-execution creates nothing more and names the batch that runs on."""
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        monkeypatch.setattr(BatchHandle, "poll", lambda self: (_ for _ in ()).throw(RuntimeError("run worker lost")))
        first = dg.materialize([enriched_first_half], resources={"cargo": resource(emu)}, instance=instance,
                               raise_on_error=False)
        monkeypatch.undo()
        (earlier,) = [b.uuid for b in emu.batches()]
        monkeypatch.setattr(resource_module, "try_estimate", lambda *a, **k: CreditEstimate(
            records=4, records_basis="input size", per_record=125.0, per_record_basis="recent batches (test)", nodes=2))
        second = reexecute(emu, instance, first, max_credits_per_batch=100.0, max_records_per_batch=2)
        assert not second.success
        text = second.failure_data_for_node("enriched").error.to_string()
        assert "Not starting the rest of Cargo tool 'Enrich company'" in text
        assert f"counting the 1 batch(es) an earlier attempt created, which run on ({earlier})" in text
        assert [b.uuid for b in emu.batches()] == [earlier]


def test_a_reexecution_whose_earlier_batch_was_cancelled_is_refused_by_the_estimate(monkeypatch):
    """The earlier attempt's batch was cancelled: the step would create a new one, so an estimate over the budget
    refuses it before it is created, as for a first attempt."""
    from cargo_gtm import CargoClient

    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        (earlier,) = [b.uuid for b in emu.batches()]
        CargoClient(TOKEN, base_url=emu.base_url).cancel_batch(earlier)
        emu.advance(60)
        monkeypatch.setattr(resource_module, "try_estimate", lambda *a, **k: CreditEstimate(
            records=4, records_basis="input size", per_record=125.0, per_record_basis="recent batches (test)", nodes=2))
        second = reexecute(emu, instance, first, max_credits_per_batch=100.0)
        assert not second.success
        assert "No batch was created: 0 credits spent" in second.failure_data_for_node("enriched").error.to_string()
        assert [b.uuid for b in emu.batches()] == [earlier]


def test_a_reexecution_attaches_to_a_batch_its_earlier_attempt_created_but_never_recorded(monkeypatch):
    """The earlier create reached Cargo (the batch runs, paid) and the worker died before the batch's run tag was
    written: only its intent is on record. Over the estimate, the intent is resolved by content and the batch
    attached to and reported; nothing is refused as if nothing had been created."""
    from dagster_cargo.running.attempts import RunTagLedger

    def lost(self, *args, **kwargs):
        raise RuntimeError("worker lost after the create")

    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        monkeypatch.setattr(RunTagLedger, "created", lost)
        monkeypatch.setattr(RunTagLedger, "created_many", lost)
        first = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance,
                               raise_on_error=False)
        monkeypatch.undo()
        assert not any(k.startswith("dagster-cargo/batch.") for k in instance.get_run_by_id(first.run_id).tags)
        (earlier,) = [b.uuid for b in emu.batches()]
        monkeypatch.setattr(resource_module, "try_estimate", lambda *a, **k: CreditEstimate(
            records=4, records_basis="input size", per_record=125.0, per_record_basis="recent batches (test)", nodes=2))
        second = reexecute(emu, instance, first, max_credits_per_batch=100.0)
        assert second.success and [b.uuid for b in emu.batches()] == [earlier]


RAMP_ROWS = [{"domain": f"rx{i}.example", "company_name": f"Rx {i}"} for i in range(20)]


@dg.asset(name="enriched")
def enriched_in_rounds(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", RAMP_ROWS, credit_budget=100.0).materialize_result()


def test_a_ramp_reexecution_over_the_estimate_is_refused_not_run_again(monkeypatch):
    """Round 0 (1 record) succeeded, round 1 (19 records) was created and cancelled after the worker died. The
    re-execution's estimate (learned from those rounds) is over the budget: it is refused, as a first attempt is;
    round 1 is not paid for again (an earlier attempt's cancelled spend is not counted in dagster-cargo)."""
    original = BatchHandle.poll

    def die_in_round_1(self):
        if any(len(r.data.get("records") or []) > 1 for r in self.requests):
            raise RuntimeError("worker lost")
        return original(self)

    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        monkeypatch.setattr(BatchHandle, "poll", die_in_round_1)
        first = dg.materialize([enriched_in_rounds], resources={"cargo": resource(emu)}, instance=instance,
                               raise_on_error=False)
        monkeypatch.undo()
        assert not first.success and sorted(len(b.record_ids) for b in emu.batches()) == [1, 19]
        (round1,) = [b.uuid for b in emu.batches() if len(b.record_ids) == 19]
        CargoClient(TOKEN, base_url=emu.base_url).cancel_batch(round1)
        emu.advance(3600)
        monkeypatch.setattr(resource_module, "try_estimate", lambda *a, **k: CreditEstimate(
            records=20, records_basis="input size", per_record=125.0, per_record_basis="recent batches (test)",
            nodes=2))
        tags = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
        second = dg.materialize([enriched_in_rounds], resources={"cargo": resource(emu)}, instance=instance,
                                tags=tags, raise_on_error=False)
        assert not second.success and len(emu.batches()) == 2
