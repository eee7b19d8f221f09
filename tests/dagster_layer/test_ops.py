"""The job-based op: typed config, play and tool runs, metadata on the output."""

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm_emulator.enrichment import enrich_company

from dagster_cargo.definitions.ops import cargo_batch_op

from ..conftest import make_resource


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator


def resource(emu):
    return make_resource(emu)


def test_op_runs_a_play_from_config(emulator):
    @dg.job(resource_defs={"cargo": resource(emulator)})
    def score():
        cargo_batch_op()

    result = score.execute_in_process(run_config={"ops": {"cargo_batch_op": {"config": {
        "workflow": "Score inbound companies", "limit": 7}}}})
    frame = result.output_for_node("cargo_batch_op")
    assert len(frame) == 7 and "score" in frame.columns
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = event.event_specific_data.metadata
    assert metadata["dagster-cargo/counts"].value["runs_count"] == 7
    assert metadata["dagster/row_count"].value == 7
    assert metadata["dagster-cargo/credits_used"].value > 0


def test_op_runs_a_tool_on_upstream_records(emulator):
    @dg.op
    def signups() -> pd.DataFrame:
        return pd.DataFrame({"domain": ["acme.com", "hooli.com"], "company_name": ["Acme", "Hooli"]})

    @dg.job(resource_defs={"cargo": resource(emulator)})
    def enrich():
        cargo_batch_op(signups())

    result = enrich.execute_in_process(run_config={"ops": {"cargo_batch_op": {"config": {"workflow": "Enrich company"}}}})
    frame = result.output_for_node("cargo_batch_op")
    assert sorted(frame["domain"]) == ["acme.com", "hooli.com"]
    assert frame.set_index("domain").loc["acme.com", "industry"] == enrich_company("acme.com")["industry"]
