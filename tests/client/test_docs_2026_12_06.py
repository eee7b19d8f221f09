"""The client against the fidelity items of the 2026-12-06 docs pass (issue 19, item 7), on every variant the
emulator serves where the docs leave a behaviour open: executedRunsCount with or without skipped runs (CARGO-DOCS
4.4), the default download node read as the exit node or as each run's last execution (1.2), invalid
``statuses`` values (2.7), unknown keys inside batch ``data``, ``isFinished`` on the output exports (2.6), and
runs that succeed after a ``fallbackOnFailure`` node failed (4.5) on a release with the live node fields (15.4).
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient, CargoInputError
from cargo_gtm.download.outcomes import check_output_slug, default_output_slug
from cargo_gtm.models import Batch, Release
from cargo_gtm.running.waiting import BatchProgress
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource
from dagster_cargo.definitions.checks import CargoCheckConfig, cargo_check_specs

from ..conftest import TOKEN, make_resource, manual_clock


@pytest.fixture
def emulator(manual_emulator: CargoEmulator) -> CargoEmulator:
    return manual_emulator


@pytest.fixture
def agent_emulator() -> Iterator[CargoEmulator]:
    """The default seeded workspace, whose play "Classify inbound companies" carries the live release fields."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=1_000_000) as emu:
        yield emu


def _client(emu: CargoEmulator) -> CargoClient:
    return CargoClient(TOKEN, base_url=emu.base_url, clock=manual_clock(emu))


def _run(client: CargoClient, emu: CargoEmulator, workflow_uuid: str, data: dict[str, Any]) -> Batch:
    batch = client.create_batch(workflow_uuid, data)
    return client.wait_for_batch(batch.uuid, poll_interval=1.0, max_poll_interval=5.0)


DOMAINS = [{"domain": "acme.io"}, {"domain": "gmail.com"}, {"domain": "https://www.globex.com/x"}]


@pytest.mark.parametrize("default_node", ["exit_node", "last_executed"])
def test_the_dataframe_is_the_same_whichever_node_cargo_calls_the_last_executed(
        emulator: CargoEmulator, default_node: str) -> None:
    emulator.set_variants(default_output_node=default_node)
    with _client(emulator) as client:
        wf = emulator.store.tool_by_name("Normalize domain")["workflowUuid"]
        batch = _run(client, emulator, wf, {"kind": "records", "records": DOMAINS})
        frame = client.download_batch_dataframe(batch.uuid, records=DOMAINS)
    assert list(frame["_status"]) == ["success", "filtered", "success"]
    assert "result" not in frame.columns  # a filter's {result: false} is not the workflow's output
    assert frame["label"].isna().tolist() == [False, True, False]
    assert (frame.loc[0, "label"], frame.loc[2, "label"]) == ("acme", "globex")
    downloads = emulator.requests("POST", "/v1/orchestration/batches/*/download")
    assert downloads and all(r["json"] == {"outputNodeSlug": "output"} for r in downloads)


@pytest.mark.parametrize("variants", [
    {"invalid_statuses": "zod_400"}, {"invalid_statuses": "match_nothing"},
    {"batch_data_unknown_keys": "rejected"}, {"is_finished_exports": "accepted"},
])
def test_the_client_is_right_on_every_strictness_variant(emulator: CargoEmulator, variants: dict[str, str]) -> None:
    emulator.set_variants(**variants)
    with _client(emulator) as client:
        play = client.get_play(emulator.store.play_by_name("Qualify inbound companies")["uuid"])
        ids = [f"cmp_{i:04d}" for i in range(1, 9)]
        data = {"kind": "recordIds", "modelUuid": play.model_uuid, "ids": ids}
        batch = _run(client, emulator, play.workflow_uuid, data)
        frame = client.download_batch_dataframe(batch.uuid)
    assert len(frame) == 8 and set(frame["_status"]) <= {"success", "filtered"}
    for r in emulator.requests("POST", "/v1/orchestration/runs/*"):
        assert "isFinished" not in (r["json"] or {})
        assert set((r["json"] or {}).get("statuses") or []) <= {
            "idle", "pending", "running", "success", "error", "cancelling", "cancelled", "skipped"}
    for r in emulator.requests("POST", "/v1/orchestration/batches"):
        assert set(r["json"]["data"]) <= {"kind", "modelUuid", "ids"}


@pytest.mark.parametrize("counting", ["success_error", "with_skipped"])
def test_progress_and_succeeded_counts_with_or_without_skipped_runs(emulator: CargoEmulator, counting: str) -> None:
    emulator.set_variants(executed_runs_count=counting)
    with _client(emulator) as client:
        play = client.get_play(emulator.store.play_by_name("Qualify inbound companies")["uuid"])
        ids = [f"cmp_{i:04d}" for i in range(1, 11)]
        _run(client, emulator, play.workflow_uuid, {"kind": "recordIds", "modelUuid": play.model_uuid,
                                                    "ids": ids[:5]})
        second = _run(client, emulator, play.workflow_uuid, {"kind": "recordIds", "modelUuid": play.model_uuid,
                                                             "ids": ids})
        frame = client.download_batch_dataframe(second.uuid)
        succeeded = client.count_runs(workflow_uuid=play.workflow_uuid, batch_uuid=second.uuid, statuses=["success"])
    assert (frame["_status"] == "skipped").sum() == 5 and second.runs_count == 10
    assert second.executed_runs_count == (5 if counting == "success_error" else 10)
    assert BatchProgress(batch=second, elapsed=1.0, polls=1).fraction == 1.0  # finished: all runs reached an end
    # the counters cannot tell skipped runs from succeeded ones: the bound is exact only without skipped runs
    assert second.succeeded_runs_count >= succeeded == 5
    assert (second.succeeded_runs_count == succeeded) == (counting == "success_error")


def test_release_node_fields_parse_and_resolve(agent_emulator: CargoEmulator) -> None:
    with _client(agent_emulator) as client:
        play = client.get_play(agent_emulator.store.play_by_name("Classify inbound companies")["uuid"])
        release: Release = client.get_release(agent_emulator.store.release_for(play.workflow_uuid)["uuid"])
    agent = release.nodes[1]
    assert (agent.kind, agent.action_slug, agent.fallback_on_failure) == ("agent", None, True)
    assert agent.agent_uuid and agent.fallback_child_uuid == release.nodes[2].uuid
    assert agent.retry == {"maximumAttempts": 3, "initialInterval": 1000, "backoffCoefficient": 2}
    out = release.output_node()
    assert out is not None and out.slug == "end" and default_output_slug(release.nodes) == "end"
    check_output_slug(release.nodes, "end", release.uuid, "b")
    with pytest.raises(CargoInputError) as err:
        check_output_slug(release.nodes, "classify", release.uuid, "b")
    assert "(agent)" in err.value.message and "(native variables)" in err.value.message
    # a node reached only as a fallback child (listed first) is not mistaken for the graph's root
    start, agent_node, _, end = release.nodes
    notify = end.model_copy(update={"uuid": "n-notify", "slug": "notify", "children_uuids": []})
    agent_node = agent_node.model_copy(update={"children_uuids": [end.uuid], "fallback_child_uuid": "n-notify"})
    start = start.model_copy(update={"children_uuids": [agent_node.uuid]})
    graph = release.model_copy(update={"nodes": [notify, start, agent_node, end]})
    found = graph.output_node()
    assert found is not None and found.slug == "end"
    assert default_output_slug(graph.nodes) is None  # two leaves: Cargo's own default is kept


def test_a_record_whose_agent_failed_and_fell_back_in_the_dataframe_and_the_checks(
        agent_emulator: CargoEmulator) -> None:
    agent_emulator.plan_failures({"cmp_0002": "always"})
    play_uuid = agent_emulator.store.play_by_name("Classify inbound companies")["uuid"]
    model_uuid = agent_emulator.store.play_by_name("Classify inbound companies")["modelUuid"]
    ids = ["cmp_0001", "cmp_0002", "cmp_0003", "cmp_0004"]
    config = CargoCheckConfig(failed_ratio_warn=0.01, failed_ratio_error=0.5, max_credits_per_record=5)
    frames: list[pd.DataFrame] = []

    @dg.asset(check_specs=cargo_check_specs("classified", config))
    def classified(context: dg.AssetExecutionContext, cargo: CargoResource):  # noqa: ANN202
        result = cargo.run_play(context, play_uuid, data={"kind": "recordIds", "modelUuid": model_uuid,
                                                         "ids": ids})
        frames.append(result.frame)
        return result.materialize_result(checks=config)

    result = dg.materialize([classified], resources={"cargo": make_resource(agent_emulator)})
    assert result.success
    frame = frames[0].set_index("_id")
    fell_back = frame.loc["cmp_0002"]
    # Cargo reports the run success: so does _status; _error_message says which node failed and why
    assert fell_back["_status"] == "success" and fell_back["segment"] == "unclassified"
    assert fell_back["classified_by"] == "fallback"
    assert "classify (agent)" in fell_back["_error_message"] and "fallbackOnFailure" in fell_back["_error_message"]
    assert "Provider returned an invalid payload" in fell_back["_error_message"]
    others = frame.drop(index="cmp_0002")
    assert set(others["_status"]) == {"success"} and others["_error_message"].isna().all()
    assert (others["classified_by"] == "agent").all()
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # the run succeeded, so no check fails on it: the failed-run ratio counts runs Cargo reports failed
    assert checks["cargo_failed_run_ratio"].passed and checks["cargo_failed_run_ratio"].metadata[
        "failed_rows"].value == 0
    assert checks["cargo_output_completeness"].passed
    assert checks["cargo_credits_per_record"].metadata["succeeded_records"].value == 4


def test_observed_batches_count_succeeded_runs_exactly_whatever_executed_counts(emulator: CargoEmulator) -> None:
    from dagster_cargo.definitions.sensors import _succeeded_runs

    emulator.set_variants(executed_runs_count="with_skipped")
    with _client(emulator) as client:
        play = client.get_play(emulator.store.play_by_name("Qualify inbound companies")["uuid"])
        ids = [f"cmp_{i:04d}" for i in range(1, 11)]
        data = {"kind": "recordIds", "modelUuid": play.model_uuid, "ids": ids}
        _run(client, emulator, play.workflow_uuid, {**data, "ids": ids[:5]})
        second = _run(client, emulator, play.workflow_uuid, data)
        assert second.executed_runs_count == 10 and second.succeeded_runs_count == 10  # skipped counted
        assert _succeeded_runs(client, second) == 5  # what credits per succeeded record divide by


@pytest.mark.parametrize("answer", ["match_nothing", "zod_400"])
def test_a_status_that_is_none_is_refused_before_any_request_on_both_answers(emulator: CargoEmulator,
                                                                            answer: str) -> None:
    emulator.set_variants(invalid_statuses=answer)
    wf = emulator.store.tool_by_name("Enrich company")["workflowUuid"]
    with _client(emulator) as client:
        before = len(emulator.requests())
        for call in (lambda: client.count_runs(workflow_uuid=wf, statuses=["finished"]),
                     lambda: client.list_runs(workflow_uuid=wf, statuses=["failed"]),
                     lambda: client.get_run_outputs_download_url(wf, statuses=["done"]),
                     lambda: client.list_batches(statuses=["finished"])):
            with pytest.raises(CargoInputError) as err:
                call()
            assert "not a Cargo" in err.value.message and "success, error" in str(err.value)
        assert len(emulator.requests()) == before  # nothing sent
        assert client.count_runs(workflow_uuid=wf, statuses=["success", "skipped"]) == 0


def test_a_single_run_that_fell_back_names_the_failed_node(emulator: CargoEmulator) -> None:
    import httpx
    from cargo_gtm.running import run_one_record

    wf = emulator.store.tool_by_name("Enrich company")["workflowUuid"]
    release = emulator.store.release_for(wf)
    nodes = [{**n, "fallbackOnFailure": n["slug"] == "enrich_company"} for n in release["nodes"]]
    deployed = httpx.post(emulator.api_url + "/orchestration/releases/draft/deploy", headers={
        "authorization": f"Bearer {TOKEN}"}, json={"workflowUuid": wf, "nodes": nodes,
                                                   "formFields": release["formFields"]})
    assert deployed.status_code == 200, deployed.text
    emulator.plan_failures({"domain=acme.io": "always"})
    with _client(emulator) as client:
        frame, result, _ = run_one_record(client, wf, {"domain": "acme.io", "company_name": "Acme"})
        ok_frame, _, _ = run_one_record(client, wf, {"domain": "globex.com", "company_name": "Globex"})
    assert result.run.status.value == "success"
    row = frame.iloc[0]
    assert row["_status"] == "success" and "enrich_company (connector)" in row["_error_message"]
    assert row["domain"] == "acme.io" and ("industry" not in frame.columns or pd.isna(row["industry"]))
    assert ok_frame.iloc[0]["_status"] == "success" and pd.isna(ok_frame.iloc[0]["_error_message"])
    assert isinstance(ok_frame.iloc[0]["industry"], str)


@pytest.mark.parametrize("default_node", ["exit_node", "last_executed"])
def test_the_parquet_export_is_the_same_whichever_node_cargo_calls_the_last_executed(
        emulator: CargoEmulator, default_node: str, tmp_path: Any) -> None:
    import pyarrow.parquet as pq

    emulator.set_variants(default_output_node=default_node)
    with _client(emulator) as client:
        wf = emulator.store.tool_by_name("Normalize domain")["workflowUuid"]
        batch = _run(client, emulator, wf, {"kind": "records", "records": DOMAINS})
        client.download_batch_to_parquet(batch.uuid, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert "result" not in table.column_names and table.num_rows == 3
    assert table.column("label").to_pylist() == ["acme", None, "globex"]
