"""A credit budget that holds for a play with nothing to estimate from (issue 19 item 2, plays): the play's
selection is read once (a snapshot of record ids, in Cargo's order) and run in ramp rounds of ``recordIds``
batches (1 record, then up to 50, then 500), each sized to what is left of the budget.

On the manual-clock emulator, at three speeds (Cargo's time runs 1x, 5x and 50x the waiter's). At main ffb1988 a
play kept the in-flight guard only: one filter batch over the 300 companies (912 credits in full) ended at 166
credits for a budget of 100 at speed 1 and 212.80 at speeds 5 and 50."""

import dagster as dg
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running import selection_ids
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource

from ..conftest import TOKEN

PLAY = "Score inbound companies"  # 300 companies, 3 provider credits + 4 node executions = 3.04 credits each
PER_RECORD = 3.04


def _asset(budget, **kwargs):
    @dg.asset(name="scored")
    def scored(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_play(context, PLAY, credit_budget=budget, **kwargs).materialize_result()

    return scored


def _cargo(emu, speed=1.0) -> CargoResource:
    return CargoResource(api_token=TOKEN, base_url=emu.base_url).with_clock(
        ManualClock(on_sleep=lambda s: emu.advance(speed * s)))


def _model_order(emu) -> list[str]:
    model = emu.store.model_by_slug("companies")["uuid"]
    return list(emu.store.records[model])


def _spent(emu, c, start) -> float:
    emu.advance(120)  # any cancellation ends
    return round(start - c.get_subscription().credits_remaining, 6)


def _round_ids(batches) -> list[str]:
    return [i for b in batches for i in b.record_ids]


#: budget -> round sizes: the table of docs/dagster/credits-budgets-estimates.md (9.12, 27.36, 97.28, 297.92)
ROUNDS = {10.0: [1, 2], 30.0: [1, 8], 100.0: [1, 31], 300.0: [1, 50, 47]}


@pytest.mark.parametrize("budget", sorted(ROUNDS))
@pytest.mark.parametrize("speed", [1.0, 5.0, 50.0])
def test_a_play_budget_without_estimate_holds_within_ten_percent(speed, budget):
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        order = _model_order(emu)
        with CargoClient(TOKEN, base_url=emu.base_url) as c:
            start = c.get_subscription().credits_remaining
            result = dg.materialize([_asset(budget)], resources={"cargo": _cargo(emu, speed)}, raise_on_error=False)
            spent = _spent(emu, c, start)
        batches = emu.batches()
    assert not result.success
    assert spent <= budget * 1.10, spent  # within 10% of the budget (912 if every record ran)
    ran = sum(ROUNDS[budget])
    assert spent == pytest.approx(ran * PER_RECORD)  # 1 record, then as many as fit in what is left
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = str(failure.event_specific_data.error)
    assert f"ran {ran} of 300 records" in text and f"budget of {budget:g}" in text, text
    assert "Next step: raise credit_budget" in text
    assert {b.data_kind for b in batches} == {"recordIds"} and [b.runs_count for b in batches] == ROUNDS[budget]
    ids = _round_ids(batches)
    assert len(ids) == len(set(ids)) and ids == order[:ran]  # no id in two rounds; the snapshot's order


def test_a_selection_that_fits_runs_whole_in_rounds_one_row_per_record_in_cargos_order():
    sort = [{"columnSlug": "name", "kind": "asc"}]
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        model = emu.store.model_by_slug("companies")["uuid"]
        data = {"kind": "filter", "modelUuid": model, "sort": sort, "limit": 20}
        with CargoClient(TOKEN, base_url=emu.base_url) as c:
            selected = [r["_id"] for r in c.fetch_segment(model, {"conjonction": "and", "groups": []}, sort=sort,
                                                          limit=20, fetching_limit=100).records]
            start = c.get_subscription().credits_remaining
            result = dg.materialize([_asset(100.0, data=data)], resources={"cargo": _cargo(emu, 5.0)})
            spent = _spent(emu, c, start)
        batches = emu.batches()
    assert len(selected) == 20 and selected != _model_order(emu)[:20]  # the sort matters
    assert [b.runs_count for b in batches] == [1, 19] and _round_ids(batches) == selected
    frame = result.output_for_node("scored")
    assert frame["_id"].tolist() == selected and set(frame["_status"]) == {"success"}
    meta = result.asset_materializations_for_node("scored")[0].metadata
    assert meta["dagster-cargo/credits_used"].value == pytest.approx(spent) == pytest.approx(20 * PER_RECORD)
    assert meta["dagster-cargo/counts"].value["batch_count"] == 2


def _reexecuted(monkeypatch, die_after: int, between=None):
    """Run the 20-record play, the worker dying after round ``die_after``'s batch ran; ``between(emu)`` changes
    the workspace; then re-execute. Returns (first batches, all batches, re-execution result, calls)."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        model = emu.store.model_by_slug("companies")["uuid"]
        data = {"kind": "filter", "modelUuid": model, "sort": [{"columnSlug": "name", "kind": "asc"}], "limit": 20}
        real = CargoResource.run_batches
        calls = []

        def dies(self, context, specs, settings=None):
            result = real(self, context, specs, settings)
            calls.append(specs[0].attempt_scope)
            if len(calls) == die_after:
                raise RuntimeError("worker lost")
            return result

        with dg.instance_for_test() as instance:
            monkeypatch.setattr(CargoResource, "run_batches", dies)
            first = dg.materialize([_asset(100.0, data=data)], resources={"cargo": _cargo(emu)}, instance=instance,
                                   raise_on_error=False)
            assert not first.success
            monkeypatch.undo()
            paid = emu.batches()
            if between is not None:
                between(emu)
            retry = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
            second = dg.materialize([_asset(100.0, data=data)], resources={"cargo": _cargo(emu)}, instance=instance,
                                    tags=retry)
        return paid, emu.batches(), second, calls


def test_a_reexecuted_play_ramp_creates_no_new_batch(monkeypatch):
    paid, after, second, calls = _reexecuted(monkeypatch, die_after=2)
    assert calls == ["ramp0", "ramp1"] and [b.runs_count for b in paid] == [1, 19]
    assert second.success and [b.uuid for b in after] == [b.uuid for b in paid]  # nothing paid twice
    assert second.output_for_node("scored")["_id"].tolist() == _round_ids(paid)


def test_a_record_entering_the_selection_between_attempts_runs_no_record_twice(monkeypatch):
    """Round 1 ran; a company that sorts first enters the filter; the re-execution runs round 1 again as it was
    (attaching to its batch) and the newcomer in a later round: no record twice, none of the rounds' records
    missed."""
    def newcomer(emu):
        emu.store.upsert_records("companies", [{
            "_id": "cmp_first", "_title": "AAA First", "domain": "aaa.example", "name": "AAA First",
            "industry": "Software", "employee_count": 10, "country": "US", "founded_year": 2020,
            "created_at": "2025-03-01T00:00:00Z"}])

    paid, after, second, calls = _reexecuted(monkeypatch, die_after=1, between=newcomer)
    assert calls == ["ramp0"] and len(paid) == 1
    assert second.success and after[0].uuid == paid[0].uuid and len(after) == 2  # round 1 attached to
    ids = _round_ids(after)
    assert len(ids) == len(set(ids)) == 20 and "cmp_first" in ids and ids[0] == paid[0].record_ids[0]
    assert second.output_for_node("scored")["_id"].tolist() == ids


def test_the_snapshot_of_each_play_input_is_what_its_batch_would_run():
    with CargoEmulator(token=TOKEN, clock="manual", seed=1) as emu, CargoClient(TOKEN, base_url=emu.base_url) as c:
        companies = emu.store.model_by_slug("companies")["uuid"]
        contacts = emu.store.model_by_slug("contacts")["uuid"]
        icp = next(s for s in c.list_segments() if s.name == "ICP companies")
        own = next(s for s in c.list_segments() if s.from_play and s.model_uuid == companies)
        every = {"conjonction": "and", "groups": []}
        expected = [r["_id"] for r in c.fetch_segment(companies, icp.filter, fetching_limit=1000).records]
        assert 0 < len(expected) < 300
        assert selection_ids(c, {"kind": "segment", "segmentUuid": icp.uuid}, model_uuid=companies) == expected
        assert selection_ids(c, {"kind": "segment", "segmentUuid": own.uuid}, model_uuid=companies) is None
        assert selection_ids(c, {"kind": "segment", "segmentUuid": icp.uuid}, model_uuid=contacts) is None
        # paged: 300 records in pages of 7, every id once, in Cargo's order
        assert selection_ids(c, {"kind": "filter", "modelUuid": companies}, page=7) == _model_order(emu)
        assert selection_ids(c, {"kind": "filter", "modelUuid": companies, "filter": every, "limit": 5},
                             model_uuid=companies) == _model_order(emu)[:5]
        assert selection_ids(c, {"kind": "filter", "modelUuid": contacts}, model_uuid=companies) is None
        ids = {"kind": "recordIds", "modelUuid": companies, "ids": ["cmp_0009", "nope", "cmp_0002", "cmp_0009"]}
        assert selection_ids(c, ids, model_uuid=companies) == ["cmp_0009", "cmp_0002"]  # Cargo drops "nope"
        assert selection_ids(c, {"kind": "change", "changeUuid": "x", "changeKinds": ["added"]}) is None


def test_record_ids_input_runs_in_rounds_in_the_order_given():
    ids = ["cmp_0042", "cmp_0007", "cmp_0100", "cmp_0001", "cmp_0250"]
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        model = emu.store.model_by_slug("companies")["uuid"]
        data = {"kind": "recordIds", "modelUuid": model, "ids": ids}
        result = dg.materialize([_asset(100.0, data=data)], resources={"cargo": _cargo(emu, 50.0)})
        batches = emu.batches()
    assert [b.runs_count for b in batches] == [1, 4] and _round_ids(batches) == ids
    assert result.output_for_node("scored")["_id"].tolist() == ids


def test_a_rounds_ids_are_kept_in_tags_of_at_most_1000_ids_and_a_missing_part_stops_the_step():
    from dagster_cargo.running.ramp_rounds import _read_round, round_tags

    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(2500)]
    tags = round_tags("dagster-cargo/ramp_ids.k", ids)
    assert sorted(tags) == ["dagster-cargo/ramp_ids.k", "dagster-cargo/ramp_ids.k.1", "dagster-cargo/ramp_ids.k.2"]
    assert max(len(v) for v in tags.values()) < 64_000  # MySQL's TEXT
    assert _read_round("dagster-cargo/ramp_ids.k", tags) == ids
    del tags["dagster-cargo/ramp_ids.k.2"]
    with pytest.raises(dg.Failure, match="fixed a ramp round of 2500 records, but its run tags"):
        _read_round("dagster-cargo/ramp_ids.k", tags)


def test_a_reexecution_with_a_raised_budget_goes_on_from_the_rounds_already_run():
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=10_000) as emu:
        with dg.instance_for_test() as instance, CargoClient(TOKEN, base_url=emu.base_url) as c:
            start = c.get_subscription().credits_remaining
            first = dg.materialize([_asset(30.0)], resources={"cargo": _cargo(emu, 5.0)}, instance=instance,
                                   raise_on_error=False)
            assert not first.success and [b.runs_count for b in emu.batches()] == [1, 8]
            paid = [b.uuid for b in emu.batches()]
            retry = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
            second = dg.materialize([_asset(1000.0)], resources={"cargo": _cargo(emu, 5.0)}, instance=instance,
                                    tags=retry)
            spent = _spent(emu, c, start)
        batches = emu.batches()
    assert second.success and [b.uuid for b in batches[:2]] == paid  # the first two rounds attached to
    ids = _round_ids(batches)
    assert len(ids) == len(set(ids)) and ids == _model_order(emu)  # every record once, in the snapshot's order
    assert spent == pytest.approx(300 * PER_RECORD)  # nothing paid twice
    assert second.output_for_node("scored")["_id"].tolist() == ids
