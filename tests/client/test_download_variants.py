"""The same answers whatever layout Cargo serves, for every value of every variant (``VARIANTS``, the emulator's
open points in Cargo's docs), one run with every layout variant off its default at once, and one with every
variant off its default:

* a tool batch with failed runs, whose input holds text that looks missing, gives one row per input record, in
  input order, input columns equal to the caller's, statuses and errors visible, NA-looking text kept as text;
* a play whose filter node stops runs on purpose gives one row per record with ``filtered`` rows;
* the credits reported (provider + execution charge) equal what the emulator's subscription lost, to 0.01.

Each case runs at the client level (``download_batch_dataframe`` over a real batch, the layer every variant
reaches); two cases run end to end as Dagster assets, where metadata counts and checks must also agree with the
frame. The emulator runs on its manual clock: time moves as far as the client waits, never in real time.

The emulator rejects request keys the API does not declare (400 ``unrecognized_keys``), so every request the
client sends here is also checked against the API's declared bodies.
"""


import gc
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient, filter_data, records_data
from cargo_gtm.credits import batch_credit_split
from cargo_gtm.running import UNLIMITED
from cargo_gtm_emulator import VARIANTS, CargoEmulator

from dagster_cargo import CargoResource
from dagster_cargo.definitions.checks import CargoCheckConfig, cargo_check_specs
from dagster_cargo.running.execution import BatchRunSpec, execute_batch

from ..conftest import TOKEN, make_resource, manual_clock

NA_LOOKING = ["None", "NA", "null", "N/A", "nan", "NaN", "#N/A", "n/a", "NULL", "-nan", "<NA>", ""]
SIGNUPS = pd.DataFrame({
    "domain": [f"shop{i}.example.com" for i in range(24)],
    "company_name": [NA_LOOKING[i % len(NA_LOOKING)] or f"Shop {i}" for i in range(24)],
    "zip": [f"0{2100 + i}" for i in range(24)],  # leading zeros: text to the caller, must stay text
})
LAYOUT = {"download_gzip": "file", "batch_download_format": "json", "json_shape": "ndjson",
          "batch_download_output": "json", "stopped_rows": "omitted", "filter_stop_status": "skipped",
          "batch_credits": "with_execution_charge"}
#: every variant off its default at once (the batch listing too: order, user and data echo)
EVERY_VARIANT = {**LAYOUT, "batch_list_order": "unordered", "batch_user_uuid": "absent", "batch_data_echo": "absent"}
#: the end-to-end (Dagster) cases
END_TO_END = [pytest.param(EVERY_VARIANT, id="every-variant-off-default"),
              pytest.param({**LAYOUT, "download_gzip": "transport", "batch_download_format": "csv"},
                           id="csv-transport-gzip-omitted")]
#: the client-level cases: each value of each variant, every layout variant at once, and the end-to-end cases
CASES = [pytest.param({name: value}, id=f"{name}={value}") for name, values in VARIANTS.items() for value in values]
CASES.append(pytest.param(LAYOUT, id="all-layout-variants"))
CASES += END_TO_END
CHECKS = CargoCheckConfig(failed_ratio_warn=0.9, failed_ratio_error=1.0, skipped_ratio_warn=0.95,
                          max_credits_per_record=100)


def _meta(result: Any, node: str) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


@pytest.fixture
def variant_emulator(request: pytest.FixtureRequest) -> Any:
    with CargoEmulator(token=TOKEN, clock="manual", seed=5, run_failure_rate=0.25, credits=1_000_000,
                       variants=request.param) as emu:
        yield emu


def _check_tool_frame(frame: pd.DataFrame, failed_runs: int) -> int:
    """One row per input record, in input order, input columns as the caller sent them, failed runs flagged,
    NA-looking text kept as text. Returns the number of failed rows."""
    assert len(frame) == len(SIGNUPS)
    for column in SIGNUPS.columns:
        assert frame[column].tolist() == SIGNUPS[column].tolist(), column
    assert frame["zip"].tolist()[0] == "02100"
    statuses = frame["_status"].value_counts().to_dict()
    failed = statuses.get("error", 0)
    assert failed > 0 and failed == failed_runs
    assert set(statuses) <= {"success", "error"}
    errors = frame[frame["_status"] == "error"]
    assert errors["_error_message"].str.contains("Enrich company failed").all() and errors["industry"].isna().all()
    ok = frame[frame["_status"] == "success"]
    assert ok["industry"].notna().all() and ok["_error_message"].isna().all()
    # NA-looking text comes back as text, in the input and in the output node's echo of it
    echoed = ok["output.company_name"] if "output.company_name" in ok else ok["company_name"]
    assert echoed.tolist() == ok["company_name"].tolist()
    assert set(NA_LOOKING[:-1]) <= set(frame["company_name"])
    return failed


def _check_play_frame(played: pd.DataFrame) -> int:
    """Every record accounted for, the filter's stops flagged (whatever status Cargo gives them). Returns the
    number of filtered rows."""
    assert len(played) == 20
    pstatuses = played["_status"].value_counts().to_dict()
    assert pstatuses.get("filtered", 0) > 0
    assert (played.loc[played["_status"] == "filtered", "employee_count"] < 50).all()
    assert (played.loc[played["_status"] == "success", "employee_count"] >= 50).all()
    return pstatuses["filtered"]


@pytest.mark.parametrize("variant_emulator", CASES, indirect=True)
def test_client_frames_account_for_every_record_and_every_credit(variant_emulator: CargoEmulator) -> None:
    emu = variant_emulator
    records = SIGNUPS.to_dict("records")
    spent_before = emu.credits_used
    with CargoClient(TOKEN, base_url=emu.base_url, clock=manual_clock(emu)) as client:
        tool = client.find_tool("Enrich company")
        batch = client.create_batch(tool.workflow_uuid, records_data(records))
        batch = client.wait_for_batch(batch.uuid, poll_interval=0.05, max_poll_interval=0.5)
        frame = client.download_batch_dataframe(batch.uuid, records=records, batch=batch)
        _check_tool_frame(frame, batch.failed_runs_count)

        play = client.find_play("Qualify inbound companies")
        pbatch = client.create_batch(play.workflow_uuid, filter_data(play.model_uuid, limit=20))
        pbatch = client.wait_for_batch(pbatch.uuid, poll_interval=0.05, max_poll_interval=0.5)
        _check_play_frame(client.download_batch_dataframe(pbatch.uuid, batch=pbatch))

        # credits: provider + execution charge = what the subscription lost
        splits = [batch_credit_split(client, b) for b in (batch, pbatch)]
    assert sum(split.total for split in splits) == pytest.approx(emu.credits_used - spent_before, abs=0.01)
    for split in splits:
        assert split.total == pytest.approx(split.provider + split.executions * 0.01, abs=1e-9)


@pytest.mark.parametrize("variant_emulator", END_TO_END, indirect=True)
def test_tool_and_filtered_play_account_for_every_record(variant_emulator: CargoEmulator) -> None:
    emu = variant_emulator

    @dg.asset(check_specs=cargo_check_specs("enriched", CHECKS))
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource):
        return cargo.run_tool(context, "Enrich company", SIGNUPS).materialize_result(checks=CHECKS)

    @dg.asset(check_specs=cargo_check_specs("qualified", CHECKS))
    def qualified(context: dg.AssetExecutionContext, cargo: CargoResource):
        return cargo.run_play(context, "Qualify inbound companies", limit=20).materialize_result(checks=CHECKS)

    resource = make_resource(emu)
    spent_before = emu.credits_used
    result = dg.materialize([enriched, qualified], resources={"cargo": resource})
    assert result.success
    spent = emu.credits_used - spent_before

    # -- the tool: one row per input record, in input order, input columns as the caller sent them
    frame = result.output_for_node("enriched")
    meta = _meta(result, "enriched")
    assert len(frame) == len(SIGNUPS) == meta["dagster/row_count"] == meta["dagster-cargo/counts"]["input_records"]
    for column in SIGNUPS.columns:
        assert frame[column].tolist() == SIGNUPS[column].tolist(), column
    assert frame["zip"].tolist()[0] == "02100"
    statuses = frame["_status"].value_counts().to_dict()
    failed = statuses.get("error", 0)
    assert failed > 0 and failed == meta["dagster-cargo/counts"]["failed_rows"] == meta["dagster-cargo/counts"]["failed_runs_count"]
    assert set(statuses) <= {"success", "error"}
    errors = frame[frame["_status"] == "error"]
    assert errors["_error_message"].str.contains("Enrich company failed").all() and errors["industry"].isna().all()
    ok = frame[frame["_status"] == "success"]
    assert ok["industry"].notna().all() and ok["_error_message"].isna().all()
    # NA-looking text comes back as text, in the input and in the output node's echo of it
    echoed = ok["output.company_name"] if "output.company_name" in ok else ok["company_name"]
    assert echoed.tolist() == ok["company_name"].tolist()
    assert set(NA_LOOKING[:-1]) <= set(frame["company_name"])

    # -- the play: every record accounted for, the filter's stops flagged (whatever status Cargo gives them)
    played = result.output_for_node("qualified")
    pmeta = _meta(result, "qualified")
    assert len(played) == 20 == pmeta["dagster-cargo/counts"]["input_records"]
    pstatuses = played["_status"].value_counts().to_dict()
    assert pstatuses.get("filtered", 0) > 0 and pmeta["dagster-cargo/counts"]["filtered_rows"] == pstatuses["filtered"]
    assert (played.loc[played["_status"] == "filtered", "employee_count"] < 50).all()
    assert (played.loc[played["_status"] == "success", "employee_count"] >= 50).all()

    # -- checks agree
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    for asset in ("enriched", "qualified"):
        assert checks[(asset, "cargo_output_completeness")].passed
    assert checks[("enriched", "cargo_failed_run_ratio")].metadata["failed_rows"].value == failed

    # -- credits: provider + execution charge = what the subscription lost
    billed = meta["dagster-cargo/credits_used"] + pmeta["dagster-cargo/credits_used"]
    assert billed == pytest.approx(spent, abs=0.01)
    for m in (meta, pmeta):
        assert m["dagster-cargo/credits_used"] == pytest.approx(
            m["dagster-cargo/provider_credits"] + m["dagster-cargo/execution_charge"], abs=1e-9)
        assert m["dagster-cargo/execution_charge"] == pytest.approx(m["dagster-cargo/counts"]["node_executions"] * 0.01)


@pytest.mark.parametrize("batch_credits", VARIANTS["batch_credits"])
def test_a_budget_between_provider_cost_and_the_bill_stops_the_batch(batch_credits: str) -> None:
    """A free tool (native nodes only): provider cost 0, bill 0.05 a record. A budget of 1 credit, far below
    the bill of 200 records (10 credits), stops the batch though its provider cost never passes the budget.

    Two ways, both counting the bill: the running batch's guard (a batch already running cancels), and, with
    nothing to estimate from, the ramp rounds through ``run_tool`` (rounds sized to the bill per record)."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=1_000_000,
                       variants={"batch_credits": batch_credits}) as emu:
        domains = pd.DataFrame({"domain": [f"https://www.acme{i}.com/about" for i in range(200)]})
        with CargoClient(TOKEN, base_url=emu.base_url, clock=manual_clock(emu)) as client:
            tool = client.find_tool("Normalize domain")
            spec = BatchRunSpec(workflow_uuid=tool.workflow_uuid, workflow_type="tool", workflow_name=tool.name,
                                data=records_data(domains.to_dict("records")), credit_budget=1.0)
            with pytest.raises(dg.Failure) as info:  # Cargo's time moves as far as the client waits
                execute_batch(dg.build_asset_context(), client, spec, batch_url_for=lambda b: None,
                              poll_interval=0.05, max_poll_interval=0.1, poll_timeout=3600,
                              cancel_on_termination=True, guidance=UNLIMITED)
            assert "budget of 1" in info.value.description
            del info  # its traceback holds the step's frames: freed now, not by a later collection
            (batch,) = client.list_batches()
            assert batch.credits_used_count == 0 or batch_credits == "with_execution_charge"
            assert batch.status.value in ("cancelling", "cancelled")
            assert batch.executed_runs_count < batch.runs_count

        @dg.asset
        def normalized(context: dg.AssetExecutionContext, cargo: CargoResource):
            return cargo.run_tool(context, "Normalize domain", domains, credit_budget=1.0).materialize_result()

        # Cargo's time moves as far as the resource waits: short polls see the batch mid-way
        resource = make_resource(emu, poll_interval=0.05, max_poll_interval=0.1, poll_average_interval=0)
        result = dg.materialize([normalized], resources={"cargo": resource}, raise_on_error=False)
        assert not result.success
        error = result.failure_data_for_node("normalized").error.to_string()
        assert "budget of 1" in error and "ran 20 of 200 records" in error  # 1, then 19: 20 x 0.05 = 1 credit
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            rounds = [b for b in client.list_batches() if b.uuid != batch.uuid]
            assert sum(b.runs_count for b in rounds) == 20 and all(b.status.value == "success" for b in rounds)
            assert all(b.credits_used_count == 0 for b in rounds) or batch_credits == "with_execution_charge"
    gc.collect()  # the failed steps' reference cycles go now: collected inside a later test's ast.parse, their
    # finalizers trip CPython 3.11's "AST constructor recursion depth mismatch" (tests/test_architecture.py)
