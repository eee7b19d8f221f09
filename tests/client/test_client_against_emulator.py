"""Every CargoClient method against the emulator over real loopback HTTP."""

from datetime import datetime, timedelta, timezone

import pytest
from cargo_gtm import (
    CargoAuthError,
    CargoClient,
    CargoCreditsError,
    CargoNotFoundError,
    CargoRequestError,
    filter_data,
    record_ids_data,
    records_data,
    segment_data,
)
from cargo_gtm.credits import batch_credit_split
from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.enrichment import enrich_company

from ..conftest import TOKEN, manual_clock


@pytest.fixture
def cargo(emulator):
    with CargoClient(TOKEN, base_url=emulator.base_url, workspace_uuid=emulator.workspace_uuid,
                     clock=manual_clock(emulator)) as client:
        yield client


def run(cargo, workflow_uuid, data):
    batch = cargo.create_batch(workflow_uuid, data)
    assert batch.status.value == "pending"
    return cargo.wait_for_batch(batch.uuid, timeout=120, poll_interval=0.05, max_poll_interval=0.5)


def test_catalog_calls(cargo, emulator):
    plays = {p.name: p for p in cargo.list_plays()}
    tools = {t.name: t for t in cargo.list_tools()}
    assert set(plays) == {"Score inbound companies", "Find decision makers", "Qualify inbound companies",
                          "Classify inbound companies"}
    assert set(tools) == {"Enrich company", "Find work email", "Normalize domain"}
    play = plays["Score inbound companies"]
    assert cargo.get_play(play.uuid) == play
    assert cargo.get_tool(tools["Enrich company"].uuid).name == "Enrich company"
    workflows = {w.uuid: w for w in cargo.list_workflows()}
    assert workflows[play.workflow_uuid].play_uuid == play.uuid
    release = cargo.get_deployed_release(play.workflow_uuid)
    assert release.status.value == "deployed" and cargo.get_release(release.uuid).uuid == release.uuid
    assert release.output_node() is not None
    assert sorted(p.name for p in cargo.list_plays(model_uuid=play.model_uuid)) == [
        "Classify inbound companies", "Qualify inbound companies", "Score inbound companies"]
    models = {m.slug: m for m in cargo.list_models()}
    assert set(models) >= {"companies", "contacts"} and play.model_uuid == models["companies"].uuid
    assert cargo.get_model(play.model_uuid).slug == "companies"
    assert cargo.get_current_workspace().uuid == emulator.workspace_uuid
    segments = cargo.list_segments()
    assert any(s.from_play for s in segments) and any(not s.from_play for s in segments)
    own = next(s for s in segments if s.uuid == play.segment_uuid)
    assert cargo.get_segment(own.uuid).records_count == own.records_count  # a play segment: never populated (8.3)
    assert cargo.list_changes(segment_uuid=own.uuid)[0].segment_uuid == own.uuid


def test_not_found_and_auth_errors(emulator, cargo):
    with pytest.raises(CargoNotFoundError) as info:
        cargo.get_play("00000000-0000-4000-8000-000000000000")
    assert info.value.reason == "playNotFound" and "Play not found." in str(info.value)
    with CargoClient("wrong-token", base_url=emulator.base_url) as bad:
        with pytest.raises(CargoAuthError) as info:
            bad.list_plays()
    assert info.value.status == 401 and "wrong-token" not in str(info.value)


def test_tool_batch_lifecycle_download_runs_and_metrics(cargo):
    tool = cargo.find_tool("Enrich company")
    domains = ["acme.com", "globex.com", "initech.io", "hooli.com"]
    batch = run(cargo, tool.workflow_uuid, records_data([{"domain": d, "company_name": d} for d in domains]))
    assert batch.status.value == "success" and batch.runs_count == 4 and batch.finished_at is not None

    frame = cargo.download_batch_dataframe(batch.uuid)
    assert sorted(frame["domain"]) == sorted(domains)
    for _, row in frame.iterrows():
        assert row["industry"] == enrich_company(row["domain"])["industry"]

    runs = cargo.list_runs(workflow_uuid=tool.workflow_uuid, batch_uuid=batch.uuid, limit=10)
    assert runs.count == 4 and len(runs.runs) == 4
    assert sum(r.credits_used_count for r in runs.runs) == batch.credits_used_count
    assert cargo.count_runs(workflow_uuid=tool.workflow_uuid, batch_uuid=batch.uuid, statuses=["success"]) == 4
    assert cargo.get_run(runs.runs[0].uuid).uuid == runs.runs[0].uuid
    metrics = cargo.get_run_metrics(tool.workflow_uuid, batch_uuid=batch.uuid)
    assert sum(m.credits_used_count for m in metrics) == batch.credits_used_count
    assert max(m.total_executions_count for m in metrics) == 4

    as_json = cargo.download_run_outputs_dataframe(tool.workflow_uuid, batch_uuid=batch.uuid, format="json")
    as_csv = cargo.download_run_outputs_dataframe(tool.workflow_uuid, batch_uuid=batch.uuid, format="csv")
    assert sorted(as_json["domain"]) == sorted(as_csv["domain"]) == sorted(domains)

    listed = cargo.list_batches(workflow_uuids=[tool.workflow_uuid], statuses=["success"])
    assert [b.uuid for b in listed] == [batch.uuid]
    assert cargo.list_batches(workflow_uuids=[tool.workflow_uuid], statuses=["running"]) == []


def test_play_inputs_filter_record_ids_and_segment_rules(cargo):
    play = cargo.find_play("Score inbound companies")
    fetched = cargo.fetch_segment(play.model_uuid, {"conjonction": "and", "groups": []}, fetching_limit=3)
    assert len(fetched.records) == 3 and fetched.count > 3
    ids = [r["_id"] for r in fetched.records]
    batch = run(cargo, play.workflow_uuid, record_ids_data(play.model_uuid, ids))
    assert batch.runs_count == 3
    batch = run(cargo, play.workflow_uuid, filter_data(play.model_uuid, limit=5))
    assert batch.runs_count == 5

    with pytest.raises(CargoRequestError) as info:  # a play's own segment cannot be enrolled
        cargo.create_batch(play.workflow_uuid, segment_data(play.segment_uuid))
    assert info.value.data_error_reason == "segmentLinkedToPlay"
    with pytest.raises(CargoRequestError) as info:  # records do not fit a play
        cargo.create_batch(play.workflow_uuid, records_data([{"domain": "x.com"}]))
    assert info.value.reason == "invalidDataKind"


def test_cancel_a_running_batch():
    with CargoEmulator(token=TOKEN, clock="manual", seed=5, run_failure_rate=0.0) as slow:  # time stands still
        with CargoClient(TOKEN, base_url=slow.base_url) as cargo:
            tool = cargo.find_tool("Enrich company")
            batch = cargo.create_batch(tool.workflow_uuid, records_data([{"domain": f"d{i}.com"} for i in range(50)]))
            cargo.cancel_batch(batch.uuid)
            assert cargo.get_batch(batch.uuid).status.value in ("cancelling", "cancelled")
            with pytest.raises(CargoRequestError) as info:
                cargo.get_batch_download_url(batch.uuid)
            assert info.value.reason == "batchNotFinished"


def test_not_enough_credits():
    with CargoEmulator(token=TOKEN, clock="manual", credits=0) as broke:
        with CargoClient(TOKEN, base_url=broke.base_url) as cargo:
            tool = cargo.find_tool("Enrich company")
            with pytest.raises(CargoCreditsError) as info:
                cargo.create_batch(tool.workflow_uuid, records_data([{"domain": "acme.com"}]))
            assert info.value.reason == "notEnoughCredits"
            assert cargo.list_batches() == []


def test_billing_usage_and_subscription(cargo, emulator):
    before = cargo.get_subscription()
    tool = cargo.find_tool("Enrich company")
    batch = run(cargo, tool.workflow_uuid, records_data([{"domain": "acme.com"}, {"domain": "hooli.com"}]))
    after = cargo.get_subscription()
    # Cargo bills provider credits (the batch's creditsUsedCount) plus 0.01 per node execution (CARGO-DOCS 5.2)
    split = batch_credit_split(cargo, batch)
    assert split.provider == batch.credits_used_count and split.executions == 6  # start, enrich, output × 2
    lost = after.subscription_credits_used_count - before.subscription_credits_used_count
    assert lost == pytest.approx(split.total, abs=0.005) and split.total == pytest.approx(batch.credits_used_count + 0.06)
    assert after.credits_remaining == pytest.approx(before.credits_remaining - split.total, abs=0.005)
    today = datetime.fromtimestamp(emulator.clock.now(), tz=timezone.utc).date()  # the emulator's day
    metrics = cargo.get_usage_metrics(today - timedelta(days=1), today + timedelta(days=1),
                                      group_by="workflow_uuid", unit="billing.credits")
    by_workflow = {}
    for metric in metrics:
        for item in metric.items:
            by_workflow[item.group_by] = by_workflow.get(item.group_by, 0) + item.count
    assert by_workflow.get(tool.workflow_uuid) == batch.credits_used_count
