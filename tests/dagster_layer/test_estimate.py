"""Estimate before spending: the estimate is logged and recorded beside the actual cost, a batch estimated over
the budget is never created, and ``dagster-cargo estimate`` prints it."""

import json

import dagster as dg
import pytest
from cargo_gtm import CargoClient, filter_data, records_data
from cargo_gtm.estimate import CreditEstimate, estimate_credits

from dagster_cargo import CargoResource, build_cargo_assets_definitions
from dagster_cargo.cli import main

from ..conftest import TOKEN, make_resource, manual_clock


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator

ENRICH_OP = "cargo__enrich_company"
SCORE_OP = "cargo__score_inbound_companies"
QUALIFY_OP = "cargo__qualify_inbound_companies"


def resource(emu, **extra) -> CargoResource:
    return make_resource(emu, **extra)


def records(n: int, start: int = 0) -> list[dict]:
    return [{"domain": f"company{i}.com", "company_name": f"Company {i}"} for i in range(start, start + n)]


def tool_config(rows: list[dict], **extra) -> dict:
    return {"ops": {ENRICH_OP: {"config": {"records": rows, **extra}}}}


def meta(result, op: str) -> dict:
    return {k: getattr(v, "value", v) for k, v in result.asset_materializations_for_node(op)[0].metadata.items()}


def test_the_estimate_formula():
    estimate = CreditEstimate(records=4, records_basis="input size", per_record=2.0, per_record_basis="x", nodes=3)
    assert (estimate.execution_charge, estimate.credits) == (0.12, 8.12)
    assert estimate.describe() == ("about 8.12 credits: 4 records (input size) × 2 provider credits per record (x) "
                                   "+ 0.12 execution charge (3 nodes × 4 records ÷ 100)")
    unknown = CreditEstimate(records=4, records_basis="input size", per_record=None, per_record_basis="none", nodes=3)
    assert unknown.credits is None and unknown.describe().startswith("no estimate: 4 records")


def test_tool_estimate_is_recorded_beside_the_actual_cost_and_comes_close(emulator):
    (asset,) = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company"])
    instance = dg.DagsterInstance.ephemeral()
    first = dg.materialize([asset], instance=instance, resources={"cargo": resource(emulator)},
                           run_config=tool_config(records(4)))
    m1 = meta(first, ENRICH_OP)
    assert "dagster-cargo/estimated_credits" not in m1  # nothing to learn from yet: said so, not guessed
    assert m1["dagster-cargo/estimate"] == ("no estimate: 4 records (input size) × unknown provider credits per record "
                                            "(no earlier materialization or batch to learn from) + 0.12 execution "
                                            "charge (3 nodes × 4 records ÷ 100)")
    second = dg.materialize([asset], instance=instance, resources={"cargo": resource(emulator)},
                            run_config=tool_config(records(10, start=4)))
    m2 = meta(second, ENRICH_OP)
    # Enrich company: 2 provider credits per record, 3 nodes (start, enrich_company, output)
    assert m2["dagster-cargo/estimated_credits"] == pytest.approx(10 * 2 + 0.3)
    assert m2["dagster-cargo/credits_used"] == pytest.approx(20.3)
    assert m2["dagster-cargo/estimate_ratio"] == pytest.approx(1.0)
    assert "1 recent materialization(s) of this asset" in m2["dagster-cargo/estimate"]


def test_play_estimates_on_the_emulator_stay_within_the_stated_bound(emulator):
    """Plays learn credits per record from their last materialization; the count honours ``limit``. Measured on
    the emulator: Score inbound companies (no filter node) 1.0; Qualify inbound companies, whose filter node
    stops companies under 50 employees (they run fewer nodes and pay no provider), stays within 25% on fresh
    records. Records a ``runCreationRule: once`` play already ran are skipped at no cost: the estimate counts
    them (an over-estimate, asserted below)."""
    assets = build_cargo_assets_definitions(resource(emulator),
                                            selector=["Score inbound companies", "Qualify inbound companies"])
    score, qualify = (next(a for a in assets if a.op.name == op) for op in (SCORE_OP, QUALIFY_OP))
    instance = dg.DagsterInstance.ephemeral()

    def run(asset, op, config):
        return meta(dg.materialize([asset], instance=instance, resources={"cargo": resource(emulator)},
                                   run_config={"ops": {op: {"config": config}}}), op)

    run(score, SCORE_OP, {"limit": 20})
    m = run(score, SCORE_OP, {"limit": 40})
    assert "40 records (segment fetch count of the filter, limit 40)" in m["dagster-cargo/estimate"]
    assert m["dagster-cargo/estimate_ratio"] == pytest.approx(1.0)  # every record pays the same

    model = emulator.store.model_by_slug("companies")
    ids = [r["_id"] for r in emulator.store.model_records(model["uuid"])]
    run(qualify, QUALIFY_OP, {"record_ids": ids[:20]})
    fresh = run(qualify, QUALIFY_OP, {"record_ids": ids[20:60]})
    assert "40 records (record ids given)" in fresh["dagster-cargo/estimate"]
    assert 0.75 <= fresh["dagster-cargo/estimate_ratio"] <= 1.25, fresh["dagster-cargo/estimate_ratio"]
    rerun = run(qualify, QUALIFY_OP, {"record_ids": ids[:40]})  # all 40 ran already: skipped, free
    assert rerun["dagster-cargo/estimate_ratio"] < 0.75
    print("estimate ratios (actual / estimate):", m["dagster-cargo/estimate_ratio"],
          fresh["dagster-cargo/estimate_ratio"], rerun["dagster-cargo/estimate_ratio"])


def test_a_batch_estimated_over_the_budget_is_not_created(emulator):
    (asset,) = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company"])
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([asset], instance=instance, resources={"cargo": resource(emulator)},
                          run_config=tool_config(records(2))).success
    before, spent = len(emulator.batches()), emulator.credits_used
    result = dg.materialize([asset], instance=instance, resources={"cargo": resource(emulator)},
                            run_config=tool_config(records(50), credit_budget=60), raise_on_error=False)
    assert not result.success
    assert (len(emulator.batches()), emulator.credits_used) == (before, spent)  # no batch, 0 credits
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    description = data.user_failure_data.description
    assert description.startswith("Not starting Cargo tool 'Enrich company': about 101.5 credits: 50 records "
                                  "(input size) × 2 provider credits per record")
    assert "over the budget of 60 credits. No batch was created: 0 credits spent." in description
    figures = {k: getattr(v, "value", v) for k, v in data.user_failure_data.metadata.items()}
    assert (figures["dagster-cargo/estimated_credits"], figures["dagster-cargo/credit_budget"]) == (101.5, 60.0)


def test_the_resource_budget_refuses_a_play_too(emulator):
    with CargoClient(TOKEN, base_url=emulator.base_url, clock=manual_clock(emulator)) as client:  # a first batch teaches 3 credits per record
        play = client.find_play("Score inbound companies")
        client.wait_for_batch(client.create_batch(play.workflow_uuid, filter_data(play.model_uuid, None, limit=5)).uuid,
                              poll_interval=0.05)
    (asset,) = build_cargo_assets_definitions(resource(emulator), selector=["Score inbound companies"])
    before = len(emulator.batches())
    result = dg.materialize([asset], resources={"cargo": resource(emulator, max_credits_per_batch=100)},
                            raise_on_error=False)  # default limit 100 → ~304 credits
    assert not result.success and len(emulator.batches()) == before
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "1 recent batch(es) of the workflow" in failure.step_failure_data.user_failure_data.description


def test_estimate_credits_for_a_record_ids_play(emulator):
    with CargoClient(TOKEN, base_url=emulator.base_url, clock=manual_clock(emulator)) as client:
        play = client.find_play("Score inbound companies")
        estimate = estimate_credits(client, play.workflow_uuid,
                                    [{"kind": "recordIds", "modelUuid": play.model_uuid, "ids": ["a", "b", "c"]}])
    assert (estimate.records, estimate.nodes, estimate.per_record) == (3, 4, None)


def test_the_estimate_cli_prints_it_for_a_tool_and_a_play(emulator, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
    with CargoClient(TOKEN, base_url=emulator.base_url, clock=manual_clock(emulator)) as client:
        tool = client.find_tool("Enrich company")
        client.wait_for_batch(client.create_batch(tool.workflow_uuid, records_data(records(3))).uuid, poll_interval=0.05)
    path = tmp_path / "signups.json"
    path.write_text(json.dumps(records(7)))
    assert main(["estimate", "--tool", "Enrich company", "--input", str(path), "--base-url", emulator.base_url]) == 0
    out = capsys.readouterr().out
    assert "Cargo tool 'Enrich company': about 14.21 credits: 7 records (input size)" in out
    assert "estimated_credits=14.21" in out
    csv_path = tmp_path / "signups.csv"
    csv_path.write_text("domain,company_name\nacme.com,Acme\nhooli.com,Hooli\n")
    assert main(["estimate", "--tool", "Enrich company", "--input", str(csv_path), "--base-url",
                 emulator.base_url]) == 0
    assert "estimated_credits=4.06" in capsys.readouterr().out
    assert main(["estimate", "--play", "Score inbound companies", "--limit", "25", "--base-url",
                 emulator.base_url]) == 0
    out = capsys.readouterr().out
    assert "25 records (segment fetch count of the filter, limit 25)" in out and "no estimate" in out
    assert len(emulator.batches()) == 1  # estimating created nothing


# ---------------------------------------------------------------------------- the tighter limit wins
def _enriched_asset(credit_budget: float | None):
    import pandas as pd

    @dg.asset(name="enriched", kinds={"cargo"})
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        rows = pd.DataFrame({"domain": [f"company{i}.com" for i in range(10)]})
        return cargo.run_tool(context, "Enrich company", rows, credit_budget=credit_budget).materialize_result()

    return enriched


def test_readme_estimate_before_spending_prints_false_the_resource_cap_wins(emulator):
    """README, "Estimate before spending": a resource cap of 5 under a per-call credit_budget of 50 refuses the
    third materialization before any batch is created (it once spent 20.3 credits under that cap)."""
    enriched = _enriched_asset(50)
    instance = dg.DagsterInstance.ephemeral()
    for _ in range(2):
        result = dg.materialize([enriched], instance=instance, resources={"cargo": resource(emulator)})
    assert meta(result, "enriched")["dagster-cargo/estimated_credits"] == pytest.approx(20.3)
    batches = len(emulator.batches())
    failed = dg.materialize([enriched], instance=instance, resources={"cargo": resource(
        emulator, max_credits_per_batch=5)}, raise_on_error=False)
    assert failed.success is False  # the README prints False
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    text = str(failure.event_specific_data.error)
    assert "Not starting Cargo tool 'Enrich company': about 20.3 credits" in text and "0 credits spent" in text
    assert "over the budget of 5 credits" in text and len(emulator.batches()) == batches  # nothing created


@pytest.mark.parametrize("per_call, cap", [(50, 5), (5, 50)])
def test_the_tighter_of_credit_budget_and_max_credits_per_batch_holds_without_an_estimate(emulator, per_call, cap):
    """No earlier run to estimate from: the input runs in ramp rounds sized to the tighter limit (5), which stop
    after 2 records (4.06 credits); under the looser one (50) all 10 records (20.3 credits) would have run."""
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        start = c.get_subscription().credits_remaining
        failed = dg.materialize([_enriched_asset(per_call)], resources={"cargo": resource(
            emulator, max_credits_per_batch=cap)}, raise_on_error=False)
        spent = round(start - c.get_subscription().credits_remaining, 6)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    text = str(failure.event_specific_data.error)
    assert "ran 2 of 10 records" in text and "over the budget of 5" in text, text
    assert spent == pytest.approx(4.06) and len(emulator.batches()) == 2
