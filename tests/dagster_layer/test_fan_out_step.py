"""A fan-out step (one input split into many batches): what it costs Dagster's run storage, and what it returns."""

import dagster as dg
import pandas as pd

from dagster_cargo import CargoResource

TOOL = "Enrich company"
BATCHES, PER_BATCH = 20, 5


def test_a_fan_out_records_its_batches_in_a_handful_of_run_tag_writes(manual_emulator, cargo_resource, monkeypatch):
    """Every run-tag write re-reads and re-stores the run with every tag it has so far, so the step's ledger (intents,
    turns, batches) writes in bulk: 1 write for the intents, 3 for the turns, at most one per batch for the batches
    (creates that end together are recorded together). One write per tag per batch made 200 batches cost seconds."""
    writes: list[dict] = []
    original = dg.DagsterInstance.add_run_tags

    def counting(self, run_id, new_tags):
        writes.append(dict(new_tags))
        return original(self, run_id, new_tags)

    monkeypatch.setattr(dg.DagsterInstance, "add_run_tags", counting)
    rows = pd.DataFrame({"domain": [f"fan{i}.example" for i in range(BATCHES * PER_BATCH)]})

    @dg.asset
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, TOOL, rows).materialize_result()

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([enriched], resources={"cargo": cargo_resource(max_records_per_batch=PER_BATCH)},
                                instance=instance)
        assert result.success
        tags = instance.get_run_by_id(result.run_id).tags
    made = {b.uuid for b in manual_emulator.batches()}
    recorded = {v for k, v in tags.items() if k.startswith("dagster-cargo/batch.")}
    assert len(made) == BATCHES and recorded == made  # every batch on record, under its own key
    ledger = [w for w in writes if any(k.startswith("dagster-cargo/") for k in w)]
    kinds = [{k.split(".")[0] for k in w} for w in ledger]
    assert kinds.count({"dagster-cargo/intent"}) == 1
    assert kinds.count({"dagster-cargo/turn"}) == 3
    assert kinds.count({"dagster-cargo/batch"}) <= BATCHES
    assert len(ledger) <= 4 + BATCHES, kinds  # one write per tag per batch: 1 + 3 x 20 + 20
    frame = result.output_for_node("enriched")
    assert list(frame["domain"]) == list(rows["domain"])  # one row per input record, in input order
    assert set(frame["_status"]) == {"success"}
