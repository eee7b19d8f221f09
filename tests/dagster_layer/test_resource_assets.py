"""CargoResource inside real Dagster materializations, against the emulator over loopback."""


import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm_emulator.enrichment import enrich_company, score_company

from dagster_cargo import CargoResource

from ..conftest import TOKEN, make_resource, manual_clock

SIGNUPS = pd.DataFrame(
    {
        "domain": ["acme.com", "globex.com", "initech.io", "umbrella.co", "hooli.com", "piedpiper.com"],
        "company_name": ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Pied Piper"],
    }
)
ICP = {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
    {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 200}]}]}


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator


@pytest.fixture
def flaky_emulator():
    from cargo_gtm_emulator import CargoEmulator

    with CargoEmulator(token=TOKEN, clock="manual", seed=2, run_failure_rate=0.25, credits=1_000_000) as emu:
        yield emu


def resource(emu, **overrides) -> CargoResource:
    return make_resource(emu, **overrides)


def client(emu) -> CargoClient:
    return CargoClient(TOKEN, base_url=emu.base_url, clock=manual_clock(emu))


def materialize_one(asset_fn, emu, **resource_overrides):
    @dg.asset
    def signups() -> pd.DataFrame:
        return SIGNUPS

    result = dg.materialize([signups, asset_fn], resources={"cargo": resource(emu, **resource_overrides)},
                            raise_on_error=False)
    return result


def error_text(result, node) -> str:
    """The whole failure text of a step (Dagster wraps the cause)."""
    return result.failure_data_for_node(node).error.to_string()


def metadata_of(result, key):
    mats = [m for m in result.asset_materializations_for_node(key)]
    assert len(mats) == 1
    return {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}


@dg.asset(kinds={"cargo"})
def enriched(context: dg.AssetExecutionContext, cargo: CargoResource, signups: pd.DataFrame) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", signups).materialize_result()


def test_tool_asset_returns_enriched_dataframe_and_credit_metadata(emulator):
    result = materialize_one(enriched, emulator)
    assert result.success
    frame = result.output_for_node("enriched")
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["domain"]) == sorted(SIGNUPS["domain"])
    for _, row in frame.iterrows():
        expected = enrich_company(row["domain"])
        assert row["industry"] == expected["industry"]
        assert row["employee_range"] == expected["employee_range"]
        assert row["linkedin_url"] == expected["linkedin_url"]

    meta = metadata_of(result, "enriched")
    with client(emulator) as c:
        batch = c.get_batch(meta["dagster-cargo/batch_uuid"])
        runs = c.list_runs(batch_uuid=batch.uuid, workflow_uuid=batch.workflow_uuid, limit=100)
    assert batch.status.value == "success"
    assert meta["dagster/row_count"] == len(SIGNUPS) == batch.runs_count
    # provider credits (the batch's and its runs' creditsUsedCount) + 0.01 per node execution = the bill
    assert meta["dagster-cargo/provider_credits"] == batch.credits_used_count > 0
    assert meta["dagster-cargo/provider_credits"] == sum(r.credits_used_count for r in runs.runs)
    executions = sum(len(r.executions) for r in runs.runs)
    assert meta["dagster-cargo/counts"]["node_executions"] == executions == 18
    assert meta["dagster-cargo/execution_charge"] == pytest.approx(0.18)
    assert meta["dagster-cargo/credits_used"] == pytest.approx(batch.credits_used_count + 0.18)
    assert meta["dagster-cargo/counts"]["runs_count"] == 6 and meta["dagster-cargo/counts"]["failed_runs_count"] == 0
    assert meta["dagster-cargo/counts"]["failed_rows"] == 0 and meta["dagster-cargo/counts"]["input_records"] == 6
    assert meta["dagster-cargo/credits_per_record"] == pytest.approx((batch.credits_used_count + 0.18) / 6)
    assert meta["dagster-cargo/workflow_type"] == "tool"
    assert meta["dagster-cargo/workflow_name"] == "Enrich company"
    assert "dagster-cargo/batch_url" not in meta  # the emulator has no web app to link to
    per_node = {k.split("/")[-1]: v for k, v in meta.items() if k.startswith("dagster-cargo/provider_credits/")}
    assert per_node == {"enrich_company": 2 * 6}  # the enrich node costs 2 credits a record; free nodes left out
    with client(emulator) as c:
        assert meta["dagster-cargo/credits_remaining"] == c.get_subscription().credits_remaining
    schema_cols = {c.name for c in meta["dagster/column_schema"].columns}
    assert {"domain", "industry", "employee_range"} <= schema_cols


def test_failed_runs_keep_their_rows_flagged_with_the_error(flaky_emulator):
    result = materialize_one(enriched, flaky_emulator)
    assert result.success
    meta = metadata_of(result, "enriched")
    frame = result.output_for_node("enriched")
    assert meta["dagster-cargo/counts"]["runs_count"] == 6
    assert meta["dagster-cargo/counts"]["executed_runs_count"] == 6
    failed = meta["dagster-cargo/counts"]["failed_runs_count"]
    assert failed > 0 and meta["dagster-cargo/counts"]["failed_rows"] == failed
    assert len(frame) == 6 == meta["dagster/row_count"]  # one row per input record, failed ones included
    assert list(frame["domain"]) == list(SIGNUPS["domain"])  # in input order
    errors = frame[frame["_status"] == "error"]
    assert len(errors) == failed and errors["_error_message"].str.contains("failed for record").all()
    assert errors["industry"].isna().all() and frame.loc[frame["_status"] == "success", "industry"].notna().all()


@dg.asset(kinds={"cargo"})
def scored(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_play(context, "Score inbound companies", filter=ICP, limit=40).materialize_result()


def test_play_asset_runs_over_filtered_model_records(emulator):
    result = materialize_one(scored, emulator)
    assert result.success
    frame = result.output_for_node("scored")
    with client(emulator) as c:
        play = c.find_play("Score inbound companies")
        matching = c.fetch_segment(play.model_uuid, ICP, fetching_limit=1000)
    expected = min(40, matching.count)
    assert expected > 0
    assert len(frame) == expected
    domains = {r["domain"] for r in matching.records}
    assert set(frame["domain"]) <= domains
    for _, row in frame.iterrows():
        assert row["score"] == score_company(row["domain"])["score"]
    meta = metadata_of(result, "scored")
    assert meta["dagster-cargo/workflow_type"] == "play"
    assert meta["dagster-cargo/credits_used"] > 0


def test_empty_input_creates_no_batch_and_spends_nothing(emulator):
    @dg.asset
    def nothing(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", SIGNUPS.iloc[0:0]).materialize_result()

    result = dg.materialize([nothing], resources={"cargo": resource(emulator)})
    frame = result.output_for_node("nothing")
    assert list(frame.columns) == ["domain", "company_name"] and len(frame) == 0
    meta = metadata_of(result, "nothing")
    assert meta["dagster-cargo/credits_used"] == 0
    with client(emulator) as c:
        assert c.list_batches() == []


def test_unknown_tool_name_suggests_and_creates_nothing(emulator):
    @dg.asset
    def typo(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich compnay", SIGNUPS).materialize_result()

    result = dg.materialize([typo], resources={"cargo": resource(emulator)}, raise_on_error=False)
    assert not result.success
    assert "Did you mean: 'Enrich company'" in error_text(result, "typo")
    with client(emulator) as c:
        assert c.list_batches() == []


def test_poll_timeout_cancels_the_batch_and_names_it():
    with slow_emulator() as slow:
        result = materialize_one(enriched, slow, poll_timeout=0.3)
        assert not result.success
        message = error_text(result, "enriched")
        with client(slow) as c:
            (batch,) = c.list_batches()
        assert batch.uuid in message
        assert batch.status.value in ("cancelling", "cancelled")


def test_terminated_run_cancels_the_batch(monkeypatch):
    from dagster._core.errors import DagsterExecutionInterruptedError

    def interrupted(self):
        raise DagsterExecutionInterruptedError()

    monkeypatch.setattr(BatchHandle, "poll", interrupted)
    with slow_emulator() as slow:
        result = materialize_one(enriched, slow)
        assert not result.success
        with client(slow) as c:
            (batch,) = c.list_batches()
        assert batch.status.value in ("cancelling", "cancelled")


def test_termination_leaves_the_batch_running_when_toggle_is_off(monkeypatch):
    from dagster._core.errors import DagsterExecutionInterruptedError

    def interrupted(self):
        raise DagsterExecutionInterruptedError()

    monkeypatch.setattr(BatchHandle, "poll", interrupted)
    with slow_emulator() as slow:
        result = materialize_one(enriched, slow, cancel_on_termination=False)
        assert not result.success
        with client(slow) as c:
            (batch,) = c.list_batches()
        assert batch.status.value not in ("cancelling", "cancelled")


def test_token_never_appears_in_events_or_metadata(emulator):
    result = materialize_one(enriched, emulator)
    assert result.success
    for event in result.all_events:
        assert TOKEN not in str(event)


def slow_emulator():
    from cargo_gtm_emulator import CargoEmulator

    return CargoEmulator(token=TOKEN, clock="manual", seed=3, run_failure_rate=0.0)


def test_credit_usage_summary_groups_credits_by_play_and_tool(emulator):
    import datetime as dt
    from urllib.parse import parse_qs

    result = materialize_one(enriched, emulator)
    spent = metadata_of(result, "enriched")["dagster-cargo/credits_used"]
    today = dt.datetime.fromtimestamp(emulator.clock.now(), dt.timezone.utc).date()  # the emulator's day
    summary = resource(emulator).credit_usage_summary(today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    assert list(summary.columns) == ["date", "group", "name", "slug", "credits", "executions", "execution_credits",
                                     "storage_records"]
    tool = summary[summary["name"] == "Enrich company"]
    # units are asked for one by one and never added together: credits + execution charge = the bill
    assert tool["credits"].sum() + tool["execution_credits"].sum() == pytest.approx(spent)
    assert tool["executions"].sum() == 18 and set(tool.loc[tool["executions"] > 0, "slug"]) <= {"success", "error"}
    units = [parse_qs(e["query"]).get("unit") for e in emulator.request_log
             if e["path"] == "/v1/billing/usage/metrics"]
    assert sorted(u[0] for u in units[-3:] if u) == ["billing.credits", "orchestration.executions", "storage.records"]


def test_filter_matching_no_record_is_an_empty_result_not_a_failure(emulator):
    nobody = {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 10**9}]}]}

    @dg.asset
    def none_match(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_play(context, "Score inbound companies", filter=nobody).materialize_result()

    result = dg.materialize([none_match], resources={"cargo": resource(emulator)})
    assert len(result.output_for_node("none_match")) == 0
    assert metadata_of(result, "none_match")["dagster-cargo/credits_used"] == 0
    with client(emulator) as c:
        assert c.list_batches() == []
