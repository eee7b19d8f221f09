"""Fidelity items from the 2026-12-06 pass over Cargo's docs (issue 19, item 7), as the emulator serves them:
executedRunsCount = success + error (CARGO-DOCS 4.4), node retry / fallbackOnFailure (4.5), release node fields
(15.4), the variants the docs leave open, and the concurrency limit from the CLI and the control plane."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.seed import SEEDED_PLAYS, SEEDED_TOOLS
from cargo_gtm_emulator.workflows import agent_play_spec

from .conftest import TOKEN, run_to_completion


@pytest.fixture()
def agent_emu() -> Iterator[CargoEmulator]:
    """The default seeded workspace (the agent play included), without random run failures."""
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.0, clock="manual") as e:
        yield e


@pytest.fixture()
def agent_api(agent_emu: CargoEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent_emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def _play_batch(emu: CargoEmulator, api: httpx.Client, name: str, ids: list[str]) -> dict[str, Any]:
    play = emu.store.play_by_name(name)
    body = {"workflowUuid": play["workflowUuid"], "data": {"kind": "recordIds", "modelUuid": play["modelUuid"],
                                                           "ids": ids}}
    created = api.post("/orchestration/batches", json=body)
    assert created.status_code == 200, created.text
    return run_to_completion(emu, api, created.json()["batch"]["uuid"])


# ------------------------------------------------------------------ 4.4 executedRunsCount
def test_executed_runs_count_leaves_skipped_runs_out_with_a_variant_that_counts_them(
        emu: CargoEmulator, api: httpx.Client) -> None:
    emu.set_concurrency_limit(None)
    first = _play_batch(emu, api, "Qualify inbound companies", [f"cmp_{i:04d}" for i in range(1, 11)])
    second = _play_batch(emu, api, "Qualify inbound companies", [f"cmp_{i:04d}" for i in range(6, 16)])
    runs = api.post("/orchestration/runs/list", json={"batchUuid": second["uuid"], "limit": 100}).json()["runs"]
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert by_status.get("skipped") == 5 and second["runsCount"] == 10 and second["status"] == "success"
    assert second["executedRunsCount"] == by_status.get("success", 0) + by_status.get("error", 0) == 5
    assert first["executedRunsCount"] == 10
    emu.set_variants(executed_runs_count="with_skipped")
    again = api.get(f"/orchestration/batches/{second['uuid']}").json()["batch"]
    assert again["executedRunsCount"] == 10 and again["failedRunsCount"] == second["failedRunsCount"]


# ------------------------------------------------------------------ 15.4 release node fields
def test_seeded_agent_play_release_shows_the_live_release_fields(agent_emu: CargoEmulator) -> None:
    play = agent_emu.store.play_by_name("Classify inbound companies")
    nodes = agent_emu.store.release_for(play["workflowUuid"])["nodes"]
    assert [(n["slug"], n["kind"]) for n in nodes] == [
        ("start", "native"), ("classify", "agent"), ("classify", "native"), ("end", "native")]
    agent = nodes[1]
    assert "actionSlug" not in agent and isinstance(agent["agentUuid"], str) and agent["agentUuid"]
    assert agent["fallbackOnFailure"] is True and agent["fallbackChildUuid"] == nodes[2]["uuid"]
    assert agent["retry"] == {"maximumAttempts": 3, "initialInterval": 1000, "backoffCoefficient": 2}
    assert nodes[2]["actionSlug"] == "variables" and "fallbackChildUuid" not in nodes[2]
    tree = agent_emu.store.workflows[play["workflowUuid"]]["nodes"][0]["nodes"][0]
    assert tree["kind"] == "agent" and "actionSlug" not in tree and tree["agentUuid"] == agent["agentUuid"]


def test_the_agent_play_is_seeded_by_default_and_leaving_it_out_keeps_the_other_uuids(
        agent_emu: CargoEmulator) -> None:
    names = {p["name"] for p in agent_emu.store.plays.values()}
    assert names == set(SEEDED_PLAYS) and "Classify inbound companies" in names and len(names) == 4
    assert {t["name"] for t in agent_emu.store.tools.values()} == set(SEEDED_TOOLS) and len(SEEDED_TOOLS) == 3
    with CargoEmulator(token=TOKEN, seed=0, clock="manual", agent_play=False) as plain:
        assert len(plain.store.plays) == 3 and len(agent_emu.store.plays) == 4
        assert set(plain.store.workflows) < set(agent_emu.store.workflows)  # same uuids, one more
        assert plain.store.subscription_uuid == agent_emu.store.subscription_uuid
        assert all(not n["fallbackOnFailure"] for r in plain.store.releases.values() for n in r["nodes"])
        # the runtime sequence is the same too: a batch gets the same uuid (so the same simulated durations),
        # also after a record edit that snapshots every segment of the model, the agent play's included
        made = []
        for emu in (plain, agent_emu):
            changes = emu.store.upsert_records("companies", [{"_id": "cmp_0001", "name": "Renamed Co"}])
            assert len(changes) == (3 if emu is plain else 4)  # ICP, Score's, Qualify's (+ Classify's)
            with httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
                batch = _play_batch(emu, api, "Score inbound companies", ["cmp_0001", "cmp_0002"])
                runs = api.post("/orchestration/runs/list", json={"batchUuid": batch["uuid"]}).json()["runs"]
            made.append((batch["uuid"], sorted(r["uuid"] for r in runs)))
        assert made[0] == made[1]
    companies = agent_emu.store.model_by_slug("companies")
    assert companies["playsCount"] == 3  # Score, Qualify, Classify


def test_serve_seeds_the_agent_play_unless_told_not_to() -> None:
    for extra, expected in (([], 4), (["--no-agent-play"], 3)):
        port = _free_port()
        argv = [sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", str(port), *extra]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "CARGO_EMULATOR_TOKEN": TOKEN})
        try:
            assert proc.stdout is not None and proc.stdout.readline().startswith("Cargo emulator ready")
            plays = httpx.get(f"http://127.0.0.1:{port}/v1/orchestration/plays/list",
                              headers={"authorization": f"Bearer {TOKEN}"}).json()["plays"]
            assert len(plays) == expected, extra
            assert ("Classify inbound companies" in {p["name"] for p in plays}) is (expected == 4)
        finally:
            proc.terminate()
            proc.communicate(timeout=10)


# ------------------------------------------------------------------ 4.5 retry / fallbackOnFailure
def test_a_failed_agent_with_fallback_still_ends_the_run_success(agent_emu: CargoEmulator,
                                                                 agent_api: httpx.Client) -> None:
    agent_emu.plan_failures({"cmp_0002": "always"})
    batch = _play_batch(agent_emu, agent_api, "Classify inbound companies", ["cmp_0001", "cmp_0002"])
    assert batch["status"] == "success" and batch["failedRunsCount"] == 0 and batch["executedRunsCount"] == 2
    runs = {r["recordId"]: r for r in agent_api.post("/orchestration/runs/list", json={
        "batchUuid": batch["uuid"]}).json()["runs"]}
    failed = runs["cmp_0002"]
    assert failed["status"] == "success" and failed["errorMessage"] is None
    kinds = [(e["nodeSlug"], e["nodeKind"], e["status"]) for e in failed["executions"]]
    assert kinds == [("start", "native", "success"), ("classify", "agent", "error"),
                     ("classify", "native", "success"), ("end", "native", "success")]
    agent_ex = failed["executions"][1]
    assert "Provider returned an invalid payload" in agent_ex["errorMessage"]
    assert agent_ex["creditsUsedCount"] == 0 and "nodeActionSlug" not in agent_ex and agent_ex["nodeAgentUuid"]
    assert agent_ex["nextNodeUuid"] == failed["executions"][2]["nodeUuid"]  # the fallback child
    context = agent_api.get(f"/orchestration/runs/{failed['uuid']}").json()["runContext"]
    assert context["end"]["segment"] == "unclassified" and context["end"]["classified_by"] == "fallback"
    ok = agent_api.get(f"/orchestration/runs/{runs['cmp_0001']['uuid']}").json()["runContext"]
    assert ok["end"]["classified_by"] == "agent" and ok["end"]["segment"] != "unclassified"
    # the failing run billed its four executions and no provider credit
    assert sum(e["creditsUsedCount"] for e in failed["executions"]) == 0
    assert sum(e["creditsUsedCount"] for e in runs["cmp_0001"]["executions"]) == 1


def test_usage_of_two_nodes_sharing_a_slug_is_billed_to_each_node_s_own_connector(
        agent_emu: CargoEmulator, agent_api: httpx.Client) -> None:
    """The agent node and the variables node are both slugged ``classify``: the agent's executions and credits go
    to the openai connector under its own slug, the variables node's executions to no connector."""
    batch = _play_batch(agent_emu, agent_api, "Classify inbound companies", ["cmp_0001", "cmp_0002", "cmp_0003"])
    assert batch["status"] == "success" and batch["executedRunsCount"] == 3
    openai = next(c["uuid"] for c in agent_emu.store.connectors.values() if c["integrationSlug"] == "openai")

    def usage(unit: str) -> dict[Any, float]:
        metrics = agent_api.get(f"/billing/usage/metrics?from=2025-01-15&to=2025-01-15&groupBy=connector_uuid"
                                f"&unit={unit}").json()["metrics"]
        out: dict[Any, float] = {}
        for item in metrics[0]["items"]:
            out[(item["groupBy"], item["slug"])] = out.get((item["groupBy"], item["slug"]), 0) + item["count"]
        return out

    # 3 runs x 4 executions (start, agent, variables, end): the agent's 3 on openai, the other 9 on none
    assert usage("orchestration.executions") == {(openai, "success"): 3, (None, "success"): 9}
    assert usage("billing.credits") == {(openai, "integration.openai.chat"): 3}


def test_a_redeploy_keeps_each_node_of_a_slug_repeated_across_kinds(agent_emu: CargoEmulator,
                                                                   agent_api: httpx.Client) -> None:
    agent_emu.redeploy("Classify inbound companies", configs={"classify": {"tone": "short"}})
    spec = agent_emu.store.spec_for(agent_emu.store.play_by_name("Classify inbound companies")["workflowUuid"])
    assert [(n.slug, n.kind, n.fallback_on_failure) for n in spec.nodes] == [
        ("start", "native", False), ("classify", "agent", True), ("classify", "native", False),
        ("end", "native", False)]
    assert [n.name for n in spec.nodes] == [n.name for n in agent_play_spec().nodes]  # each kept its own node


# ------------------------------------------------------------------ variants the docs leave open
def _tool_batch(emu: CargoEmulator, api: httpx.Client, name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    wf = emu.store.tool_by_name(name)["workflowUuid"]
    created = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records",
                                                                                    "records": records}})
    assert created.status_code == 200, created.text
    return run_to_completion(emu, api, created.json()["batch"]["uuid"])


def _download_json(emu: CargoEmulator, api: httpx.Client, uuid: str) -> list[dict[str, Any]]:
    emu.set_variants(batch_download_format="json")
    url = api.post(f"/orchestration/batches/{uuid}/download", json={}).json()["url"]
    return httpx.get(url).json()


def test_default_output_node_variants(emu: CargoEmulator, api: httpx.Client) -> None:
    batch = _tool_batch(emu, api, "Normalize domain", [{"domain": "acme.io"}, {"domain": "gmail.com"}])
    exit_rows = _download_json(emu, api, batch["uuid"])
    assert exit_rows[0]["label"] == "acme" and "result" not in exit_rows[1]  # exit node: nothing for a stop
    emu.set_variants(default_output_node="last_executed")
    last_rows = _download_json(emu, api, batch["uuid"])
    assert last_rows[0]["label"] == "acme"  # a completed run's last execution is the exit node
    assert last_rows[1]["result"] is False  # the filter that stopped the run
    explicit = api.post(f"/orchestration/batches/{batch['uuid']}/download", json={"outputNodeSlug": "output"})
    assert "result" not in httpx.get(explicit.json()["url"]).json()[1]  # an explicit slug is the same in both


def test_invalid_statuses_match_nothing_or_are_a_zod_400(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    _tool_batch(emu, api, "Enrich company", [{"domain": "acme.io"}])
    body = {"workflowUuid": wf, "statuses": ["finished"]}
    assert api.post("/orchestration/runs/count", json=body).json() == {"count": 0}
    assert api.get("/orchestration/batches/list?statuses[]=done").json()["batches"] == []
    emu.set_variants(invalid_statuses="zod_400")
    r = api.post("/orchestration/runs/count", json=body)
    assert r.status_code == 400 and r.json()["reason"] == "invalid_enum_value"
    assert r.json()["issues"][0]["path"] == ["statuses"] and "skipped" in r.json()["issues"][0]["options"]
    b = api.get("/orchestration/batches/list?statuses[]=done")
    assert b.status_code == 400 and b.json()["reason"] == "invalid_enum_value"
    assert api.post("/orchestration/runs/count", json={"workflowUuid": wf, "statuses": ["success"]}).json()[
        "count"] == 1


def test_unknown_keys_inside_batch_data_are_stripped_or_rejected(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    body = {"workflowUuid": wf, "data": {"kind": "records", "records": [{"domain": "a.io"}], "priority": "high"}}
    created = api.post("/orchestration/batches", json=body)
    assert created.status_code == 200 and "priority" not in created.json()["batch"]["data"]
    emu.set_variants(batch_data_unknown_keys="rejected")
    before = len(emu.batches())
    r = api.post("/orchestration/batches", json=body)
    assert r.status_code == 400 and r.json()["reason"] == "unrecognized_keys"
    assert r.json()["issues"][0] == {**r.json()["issues"][0], "keys": ["priority"], "path": ["data"]}
    assert len(emu.batches()) == before  # nothing created


def test_is_finished_on_the_output_exports_per_variant(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    _tool_batch(emu, api, "Enrich company", [{"domain": "acme.io"}])
    for path in ("/orchestration/runs/download-outputs", "/orchestration/records/download-outputs"):
        r = api.post(path, json={"workflowUuid": wf, "isFinished": True})
        assert r.status_code == 400 and r.json()["issues"][0]["keys"] == ["isFinished"], path
    emu.set_variants(is_finished_exports="accepted")
    for path in ("/orchestration/runs/download-outputs", "/orchestration/records/download-outputs"):
        assert api.post(path, json={"workflowUuid": wf, "isFinished": True}).status_code == 200, path
        assert api.post(path, json={"workflowUuid": wf, "isFinished": False}).status_code == 404  # none unfinished


# ------------------------------------------------------------------ concurrency limit from outside Python
def test_concurrency_limit_from_the_control_plane(emu: CargoEmulator, api: httpx.Client) -> None:
    headers = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(emu.base_url + "/_emulator/concurrency", headers=headers).json() == {"concurrencyLimit": None}
    r = httpx.post(emu.base_url + "/_emulator/concurrency", json={"limit": 1}, headers=headers)
    assert r.json() == {"concurrencyLimit": 1} and emu.concurrency_limit == 1
    assert httpx.get(emu.base_url + "/_emulator/state", headers=headers).json()["concurrencyLimit"] == 1
    wf = emu.store.tool_by_name("Enrich company")["workflowUuid"]
    body = {"workflowUuid": wf, "data": {"kind": "records", "records": [{"domain": "a.io"}]}}
    assert api.post("/orchestration/batches", json=body).status_code == 200
    refused = api.post("/orchestration/batches", json=body)
    assert refused.status_code == 400 and refused.json()["reason"] == "concurrencyLimitReached"
    bad = httpx.post(emu.base_url + "/_emulator/concurrency", json={"limit": 0}, headers=headers)
    assert bad.status_code == 400 and emu.concurrency_limit == 1
    httpx.post(emu.base_url + "/_emulator/concurrency", json={"limit": None}, headers=headers)
    assert api.post("/orchestration/batches", json=body).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrency_limit_from_the_cli_serve_and_ctl() -> None:
    port = _free_port()
    env = {**os.environ, "CARGO_EMULATOR_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "cargo_gtm_emulator.cli", "serve", "--port", str(port),
                             "--concurrency-limit", "1", "--speed", "0.001"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("Cargo emulator ready")
        base = f"http://127.0.0.1:{port}"
        headers = {"authorization": f"Bearer {TOKEN}"}
        wf = next(t for t in httpx.get(base + "/v1/orchestration/tools/list", headers=headers).json()["tools"]
                  if t["name"] == "Enrich company")["workflowUuid"]
        body = {"workflowUuid": wf, "data": {"kind": "records", "records": [{"domain": "a.io"}]}}
        assert httpx.post(base + "/v1/orchestration/batches", json=body, headers=headers).status_code == 200
        refused = httpx.post(base + "/v1/orchestration/batches", json=body, headers=headers)
        assert refused.json()["reason"] == "concurrencyLimitReached"
        ctl = [sys.executable, "-m", "cargo_gtm_emulator.cli", "ctl", "--url", base, "concurrency"]
        shown = subprocess.run(ctl, capture_output=True, text=True, env=env, timeout=60)
        assert shown.returncode == 0 and '"concurrencyLimit": 1' in shown.stdout.replace('":1', '": 1')
        lifted = subprocess.run([*ctl, "none"], capture_output=True, text=True, env=env, timeout=60)
        assert lifted.returncode == 0, lifted.stderr
        assert httpx.post(base + "/v1/orchestration/batches", json=body, headers=headers).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_node_inserted_after_a_fallback_node_becomes_its_fallback_child(agent_emu: CargoEmulator) -> None:
    release = agent_emu.redeploy("Classify inbound companies", position=2,
                                 add_nodes=[{"slug": "note", "kind": "native", "actionSlug": "note"}])
    agent, note = release["nodes"][1], release["nodes"][2]
    assert note["slug"] == "note" and agent["childrenUuids"] == [note["uuid"]] == [agent["fallbackChildUuid"]]
