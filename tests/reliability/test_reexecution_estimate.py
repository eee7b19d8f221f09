"""A re-execution attaches to the batch its earlier attempt paid for, whatever the estimate says now."""

import dagster as dg
from cargo_gtm.estimate import CreditEstimate
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm_emulator import CargoEmulator

import dagster_cargo.running.resource as resource_module
from dagster_cargo import CargoResource

from .test_reexecution_faults import ROWS, TOKEN, first_attempt_dies_while_waiting, reexecute, resource


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
