"""The seeded agent play (default workspace; CARGO-DOCS 4.5, 15.4: an ``agent`` node with ``agentUuid`` at top level and no
``actionSlug``, ``retry``, ``fallbackOnFailure`` / ``fallbackChildUuid``, a slug repeated across node kinds)
keeps every wire shape inside Cargo's official types: its release, its workflow, and the run whose agent
failed and fell back (an ``agent`` execution, ``nodeAgentUuid``, no ``nodeActionSlug``)."""

from __future__ import annotations

import httpx
from cargo_gtm_emulator import CargoEmulator

from .schemas import validate

TOKEN = "conformance-token"


def test_agent_play_release_workflow_and_fallback_run_match_the_official_types(schema_dir) -> None:
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, httpx.Client(
            base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        play = emu.store.play_by_name("Classify inbound companies")
        wf = play["workflowUuid"]
        release = api.get(f"/orchestration/releases/deployed?workflowUuid={wf}").json()["release"]
        validate("Release", release, context="agent play release")
        assert any(n["kind"] == "agent" and "actionSlug" not in n for n in release["nodes"])
        workflow = next(w for w in api.get("/orchestration/workflows/list").json()["workflows"] if w["uuid"] == wf)
        validate("Workflow", workflow, context="agent play workflow")
        emu.plan_failures({"cmp_0001": "always"})
        batch = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {
            "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0001"]}}).json()["batch"]
        emu.advance(120)
        run = api.post("/orchestration/runs/list", json={"batchUuid": batch["uuid"]}).json()["runs"][0]
        assert run["status"] == "success" and run["executions"][1]["status"] == "error"
        validate("Run", run, context="fallback run")
        validate("Batch", api.get(f"/orchestration/batches/{batch['uuid']}").json()["batch"], context="batch")
