"""End to end through the Dagster UI's own API: the example project, served by the real
``dagster-webserver`` against an in-process Cargo emulator, materializes
``inbound_signups`` → ``enriched_signups`` and ``scored_icp_companies`` when launched the way
the UI's "Materialize" button does (``launchPipelineExecution`` on the implicit asset job with
an asset selection), and what the UI then shows is right:

* the run succeeds (status polled through GraphQL);
* the latest materialization of each Cargo asset is the one from that run and carries the
  credit metadata, and ``dagster-cargo/credits_used`` is exactly what Cargo (the emulator)
  bills for that batch (its ``creditsUsedCount`` plus 0.01 credit per node execution) — the number a user sees in the UI is the
  number Cargo bills;
* the asset checks declared on the selected assets were evaluated in that run.

Nothing is executed in this process except the emulator: the code location, the run worker
and the GraphQL layer are Dagster's own processes, exactly as a user runs them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from ._stack import EMULATOR_TOKEN

CARGO_ASSETS = ("enriched_signups", "scored_icp_companies")
SELECTED = ("inbound_signups", *CARGO_ASSETS)
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
RUN_TIMEOUT = 240.0

ASSET_NODES_QUERY = """
query AssetNodes($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    jobNames
    isPartitioned
    repository { name location { name } }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name } }
    }
  }
}
"""

LAUNCH_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
    ... on PythonError { message stack }
  }
}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status jobName
      assetSelection { path }
      assetCheckSelection { assetKey { path } name }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

RUN_LOGS_QUERY = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message stack } }
        ... on RunFailureEvent { pipelineFailureError: error { message stack } }
      }
    }
  }
}
"""

MATERIALIZATIONS_QUERY = """
query Materializations($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    assetMaterializations(limit: 1) {
      runId
      timestamp
      metadataEntries {
        __typename
        label
        ... on FloatMetadataEntry { floatValue }
        ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text }
        ... on UrlMetadataEntry { url }
        ... on JsonMetadataEntry { jsonString }
        ... on TableSchemaMetadataEntry { schema { columns { name type } } }
      }
    }
  }
}
"""

CHECK_EXECUTIONS_QUERY = """
query CheckExecutions($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 10) {
    runId
    status
    evaluation {
      success
      severity
      description
      metadataEntries {
        label
        ... on FloatMetadataEntry { floatValue }
        ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text }
      }
    }
  }
}
"""


def _key(name: str) -> dict[str, list[str]]:
    return {"path": [name]}


def _run_logs(server, run_id: str) -> str:
    try:
        data = server.graphql(RUN_LOGS_QUERY, runId=run_id)["logsForRun"]
    except AssertionError as e:
        return f"<run logs unavailable: {e}>"
    lines = []
    for event in data.get("events", []):
        if event.get("level") in ("ERROR", "CRITICAL") or event["__typename"] in (
                "ExecutionStepFailureEvent", "RunFailureEvent"):
            error = event.get("error") or event.get("pipelineFailureError") or {}
            lines.append(f"[{event['__typename']} {event.get('stepKey')}] {event.get('message')}\n"
                         f"{error.get('message', '')}{''.join(error.get('stack') or [])}")
    return "\n".join(lines) or "<no error events>"


def _metadata(materialization: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["label"]: entry for entry in materialization["metadataEntries"]}


@pytest.fixture(scope="module")
def asset_nodes(dagster_webserver) -> dict[str, dict[str, Any]]:
    nodes = dagster_webserver.graphql(ASSET_NODES_QUERY, assetKeys=[_key(n) for n in SELECTED])["assetNodes"]
    by_name = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    missing = set(SELECTED) - set(by_name)
    assert not missing, f"assets not served by the webserver: {missing}"
    return by_name


@pytest.fixture(scope="module")
def declared_checks(asset_nodes) -> dict[str, list[str]]:
    """Check names declared on each selected asset (as the UI reads them)."""
    checks = {}
    for name, node in asset_nodes.items():
        result = node["assetChecksOrError"]
        assert result["__typename"] == "AssetChecks", f"asset checks of {name} unavailable: {result}"
        checks[name] = sorted(check["name"] for check in result["checks"])
    return checks


@pytest.fixture(scope="module")
def materialization_run(dagster_webserver, asset_nodes, declared_checks) -> dict[str, Any]:
    """Launch the three assets (and their checks) like the UI's Materialize button; wait."""
    server = dagster_webserver
    repositories = {(n["repository"]["location"]["name"], n["repository"]["name"]) for n in asset_nodes.values()}
    assert len(repositories) == 1, f"the selected assets come from several code locations: {repositories}"
    ((location_name, repository_name),) = repositories
    assert not any(n["isPartitioned"] for n in asset_nodes.values())
    # the implicit asset job(s) shared by all selected assets ("__ASSET_JOB" in 1.13)
    shared_jobs = set.intersection(*(set(n["jobNames"]) for n in asset_nodes.values()))
    asset_jobs = sorted(j for j in shared_jobs if j.startswith("__ASSET_JOB"))
    assert asset_jobs, f"no implicit asset job holds {SELECTED}: {[n['jobNames'] for n in asset_nodes.values()]}"

    execution_params = {
        "selector": {
            "repositoryLocationName": location_name,
            "repositoryName": repository_name,
            "pipelineName": asset_jobs[0],
            "assetSelection": [_key(n) for n in SELECTED],
            "assetCheckSelection": [{"assetKey": _key(asset), "name": check}
                                    for asset, names in declared_checks.items() for check in names],
        },
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "e2e", "value": "ui-materialization"}]},
    }
    launched = server.graphql(LAUNCH_MUTATION, executionParams=execution_params)["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", f"launch failed: {launched}\n{server.diagnostics()}"
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = server.graphql(RUN_QUERY, runId=run_id)["runOrError"]
        assert run["__typename"] == "Run", f"run {run_id} not found: {run}"
        if run["status"] in TERMINAL:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"run {run_id} still {run.get('status')} after {RUN_TIMEOUT}s\n"
                    f"{_run_logs(server, run_id)}\n{server.diagnostics()}")
    return run


def test_materialization_run_succeeds(dagster_webserver, materialization_run, declared_checks):
    run = materialization_run
    assert run["status"] == "SUCCESS", (
        f"run {run['runId']} ended {run['status']}\n{_run_logs(dagster_webserver, run['runId'])}\n{dagster_webserver.diagnostics()}")
    assert sorted("/".join(k["path"]) for k in run["assetSelection"]) == sorted(SELECTED)
    selected_checks = {("/".join(c["assetKey"]["path"]), c["name"]) for c in run["assetCheckSelection"] or []}
    assert selected_checks == {(a, c) for a, names in declared_checks.items() for c in names}


@pytest.mark.parametrize("asset", CARGO_ASSETS)
def test_latest_materialization_carries_the_batch_credits(dagster_webserver, cargo_emulator,
                                                          materialization_run, asset):
    assert materialization_run["status"] == "SUCCESS", "see test_materialization_run_succeeds"
    (node,) = dagster_webserver.graphql(MATERIALIZATIONS_QUERY, assetKeys=[_key(asset)])["assetNodes"]
    assert node["assetMaterializations"], f"{asset} has no materialization"
    (latest,) = node["assetMaterializations"]
    assert latest["runId"] == materialization_run["runId"], "the latest materialization is not from our run"
    metadata = _metadata(latest)

    required = {"dagster/row_count", "dagster/column_schema", "dagster-cargo/credits_used",
                "dagster-cargo/batch_uuid", "dagster-cargo/counts", "dagster-cargo/credits_per_record",
                "dagster-cargo/failed_ratio", "dagster-cargo/wall_clock_seconds",
                "dagster-cargo/cargo_duration_seconds"}
    assert required <= set(metadata), f"{asset}: missing metadata {sorted(required - set(metadata))}"

    credits = metadata["dagster-cargo/credits_used"]
    assert credits["__typename"] == "FloatMetadataEntry", credits
    assert credits["floatValue"] > 0, credits
    rows = metadata["dagster/row_count"]
    assert rows["__typename"] == "IntMetadataEntry" and rows["intValue"] > 0, rows
    assert metadata["dagster/column_schema"]["schema"]["columns"], "empty column schema"
    batch_uuid = metadata["dagster-cargo/batch_uuid"]
    assert batch_uuid["__typename"] == "TextMetadataEntry" and batch_uuid["text"], batch_uuid
    # the counts are one JSON entry: shown, not plotted (the asset page plots Int/Float entries only)
    assert metadata["dagster-cargo/counts"]["__typename"] == "JsonMetadataEntry", metadata["dagster-cargo/counts"]
    counts = json.loads(metadata["dagster-cargo/counts"]["jsonString"])
    assert counts["executed_runs_count"] > 0 and counts["runs_count"] >= counts["executed_runs_count"]
    assert not {"dagster-cargo/runs_count", "dagster-cargo/executed_runs_count"} & set(metadata)

    response = httpx.get(f"{cargo_emulator.base_url}/v1/orchestration/batches/{batch_uuid['text']}",
                         headers={"authorization": f"Bearer {EMULATOR_TOKEN}"}, timeout=10.0)
    assert response.status_code == 200, response.text
    batch = response.json()["batch"]
    # what the UI shows is the bill: Cargo's provider credits (the batch's creditsUsedCount) plus the
    # execution charge of 0.01 credit per node execution, which creditsUsedCount leaves out
    provider = metadata["dagster-cargo/provider_credits"]["floatValue"]
    executions = counts["node_executions"]
    charge = metadata["dagster-cargo/execution_charge"]["floatValue"]
    assert provider == pytest.approx(float(batch["creditsUsedCount"]), abs=1e-9), (
        f"{asset}: UI shows {provider} provider credits, Cargo reports {batch['creditsUsedCount']} "
        f"for batch {batch_uuid['text']}")
    assert executions > 0 and charge == pytest.approx(executions * 0.01, abs=1e-9)
    assert credits["floatValue"] == pytest.approx(provider + charge, abs=1e-6), credits
    assert "dagster-cargo/batch_url" not in metadata  # the emulator has no web app to link to
    assert "dagster-cargo/batch_count" not in metadata  # one batch: no always-1 plot


def test_asset_checks_ran_in_the_run(dagster_webserver, materialization_run, declared_checks, record_property):
    declared = [(asset, check) for asset, names in declared_checks.items() for check in names]
    if not declared_checks["enriched_signups"]:
        pytest.skip("enriched_signups declares no asset checks in this version of the example")
    statuses = []
    for asset, check in declared:
        executions = dagster_webserver.graphql(CHECK_EXECUTIONS_QUERY, assetKey=_key(asset),
                                               checkName=check)["assetCheckExecutions"]
        ours = [e for e in executions if e["runId"] == materialization_run["runId"]]
        assert ours, f"check {asset}:{check} has no execution in run {materialization_run['runId']}: {executions}"
        execution = ours[0]
        evaluation = execution["evaluation"] or {}
        values = {m["label"]: m.get("floatValue", m.get("intValue", m.get("text")))
                  for m in evaluation.get("metadataEntries", [])}
        statuses.append(f"{asset}:{check} {execution['status']} "
                        f"(severity {evaluation.get('severity')}, {values})")
        # evaluated (passed or failed on the data) — not skipped, crashed or still running
        assert execution["status"] in ("SUCCEEDED", "FAILED"), statuses[-1]
        assert execution["evaluation"] is not None, statuses[-1]
        assert execution["evaluation"]["success"] == (execution["status"] == "SUCCEEDED"), statuses[-1]
    print("asset checks:\n  " + "\n  ".join(statuses))  # shown with -s / -rP
    record_property("asset_checks", "; ".join(statuses))
    assert {"cargo_failed_run_ratio", "cargo_output_completeness"} <= set(declared_checks["enriched_signups"])
