"""A credit budget that holds with nothing to estimate from: a tool input runs in ramp rounds (1 record, then up
to 50, then 500), each sized to what is left of the budget (issue "Money and data", item 2).

On the manual-clock emulator, at three speeds (Cargo's time runs 1x, 5x and 50x the waiter's): at layout-v1 a
budget of 100 over 200 records (406 credits in full) ended far above it at the higher speeds, because the one
batch ran past the budget between two polls."""

import dagster as dg
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running import next_round_size
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource

from ..conftest import TOKEN

ROWS = [{"domain": f"ramp{i}.example", "company_name": f"Ramp {i}"} for i in range(200)]


def _asset(rows, budget):
    @dg.asset(name="enriched")
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", rows, credit_budget=budget).materialize_result()

    return enriched


def _run(speed: float, rows, budget: float):
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        clock = ManualClock(on_sleep=lambda s: emu.advance(speed * s))
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url).with_clock(clock)
        with CargoClient(TOKEN, base_url=emu.base_url) as c:
            start = c.get_subscription().credits_remaining
            result = dg.materialize([_asset(rows, budget)], resources={"cargo": cargo}, raise_on_error=False)
            emu.advance(120)  # any cancellation ends
            spent = round(start - c.get_subscription().credits_remaining, 6)
        return result, spent, emu.batches()


@pytest.mark.parametrize("speed", [1.0, 5.0, 50.0])
def test_a_budget_without_estimate_holds_within_ten_percent(speed):
    result, spent, batches = _run(speed, ROWS, 100.0)
    assert not result.success
    assert spent <= 110.0, spent  # within 10% of the budget (406 if every record ran)
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = str(failure.event_specific_data.error)
    assert "budget of 100" in text and "Next step: raise credit_budget" in text, text
    assert len(batches) >= 2 and len(batches[0].uuid) > 0  # a first small round, then rounds sized to the budget


def test_an_input_that_fits_the_budget_runs_whole_in_rounds_in_input_order():
    rows = ROWS[:20]
    result, spent, batches = _run(5.0, rows, 100.0)
    assert result.success and len(batches) == 2  # 1 record, then the 19 others (they fit: 50 would not)
    frame = result.output_for_node("enriched")
    assert frame["domain"].tolist() == [r["domain"] for r in rows] and set(frame["_status"]) == {"success"}
    meta = result.asset_materializations_for_node("enriched")[0].metadata
    assert meta["dagster-cargo/credits_used"].value == pytest.approx(spent) == pytest.approx(20 * 2.03)
    assert meta["dagster-cargo/counts"].value["batch_count"] == 2


def test_round_sizes_follow_cargos_ramp_and_the_budget_left():
    assert next_round_size(total=200, done=0, spent=0.0, budget=100) == 1
    assert next_round_size(total=200, done=1, spent=2.03, budget=100) == 48  # 97.97 left / 2.03
    assert next_round_size(total=200, done=1, spent=0.5, budget=100) == 50  # Cargo's second step
    assert next_round_size(total=2000, done=51, spent=10.0, budget=10_000) == 500
    assert next_round_size(total=200, done=49, spent=99.47, budget=100) == 0  # not one more record fits


def test_a_reexecuted_ramp_attaches_to_every_rounds_batch(monkeypatch):
    """The worker dies after round 2's batch ran; the re-execution sizes the same rounds from the same figures
    and attaches to both batches: nothing is paid twice."""
    rows = ROWS[:20]
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        def cargo() -> CargoResource:
            return CargoResource(api_token=TOKEN, base_url=emu.base_url).with_clock(
                ManualClock(on_sleep=emu.advance))

        real = CargoResource.run_batches
        calls = []

        def dies_after_round_two(self, context, specs, settings=None):
            result = real(self, context, specs, settings)
            calls.append(specs[0].attempt_scope)
            if len(calls) == 2:
                raise RuntimeError("worker lost")
            return result

        with dg.instance_for_test() as instance:
            monkeypatch.setattr(CargoResource, "run_batches", dies_after_round_two)
            first = dg.materialize([_asset(rows, 100.0)], resources={"cargo": cargo()}, instance=instance,
                                   raise_on_error=False)
            assert not first.success and calls == ["ramp0", "ramp1"] and len(emu.batches()) == 2
            monkeypatch.undo()
            paid = {b.uuid for b in emu.batches()}
            retry = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
            second = dg.materialize([_asset(rows, 100.0)], resources={"cargo": cargo()}, instance=instance,
                                    tags=retry)
        assert second.success and {b.uuid for b in emu.batches()} == paid  # no batch paid twice
        assert second.output_for_node("enriched")["domain"].tolist() == [r["domain"] for r in rows]


def test_a_failed_record_in_a_later_round_is_named_by_its_row_in_the_input():
    """Round 1 runs rows 1-19; with failed_rows="fail" the failure names row 3 of the input, not of the round."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        emu.plan_failures({"domain=ramp3.example": "always"})
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url, failed_rows="fail").with_clock(
            ManualClock(on_sleep=emu.advance))
        result = dg.materialize([_asset(ROWS[:20], 100.0)], resources={"cargo": cargo}, raise_on_error=False)
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "domain='ramp3.example', input row 3" in str(failure.event_specific_data.error)


def test_rounds_only_double_until_a_record_runs_through():
    """A first record that fails early costs 0.02 credits, not what a record that runs through costs: the next
    round is 1 record again (then sized from a success), not 50 sized from the failure."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        emu.plan_failures({"domain=ramp0.example": "always"})
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url).with_clock(ManualClock(on_sleep=emu.advance))
        result = dg.materialize([_asset(ROWS[:40], 1000.0)], resources={"cargo": cargo}, raise_on_error=False)
        sizes = [len(b.record_ids) for b in emu.batches()]
    assert result.success and sizes == [1, 1, 38]


def test_after_the_ramp_steps_a_round_is_what_fits_in_batches_run_at_once():
    """600 records, batches of at most 100: rounds of 1, 50, 500 (five batches created together) and the 49 left,
    not a round per 100 records one after another."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url, max_records_per_batch=100).with_clock(
            ManualClock(on_sleep=emu.advance))
        rows = [{"domain": f"wide{i}.example", "company_name": f"Wide {i}"} for i in range(600)]
        result = dg.materialize([_asset(rows, 5000.0)], resources={"cargo": cargo}, instance=instance)
        rounds = [e.user_message for e in instance.all_logs(result.run_id) if "Ramp round" in (e.user_message or "")]
        sizes = sorted(len(b.record_ids) for b in emu.batches())
    assert result.success and len(rounds) == 4, rounds
    assert sizes == [1, 49, 50, 100, 100, 100, 100, 100]
