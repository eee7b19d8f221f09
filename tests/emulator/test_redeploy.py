"""Redeploys: the draft release endpoints (REFERENCE §3.8) and ``emu.redeploy``. A new release changes the
workflow's ``deployedRelease``; batches keep the release they were created with (CARGO-DOCS 14.2)."""

from __future__ import annotations

import httpx
from cargo_gtm_emulator import CargoEmulator

from .conftest import run_to_completion

TOOL = "Enrich company"


def _workflow(api: httpx.Client, wf_uuid: str) -> dict:
    return next(w for w in api.get("/orchestration/workflows/list").json()["workflows"] if w["uuid"] == wf_uuid)


def _batch(api: httpx.Client, wf_uuid: str, domains: list[str]) -> dict:
    r = api.post("/orchestration/batches", json={"workflowUuid": wf_uuid, "data": {
        "kind": "records", "records": [{"domain": d} for d in domains]}})
    assert r.status_code == 200, r.text
    return r.json()["batch"]


def test_draft_update_and_deploy_over_http(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name(TOOL)["workflowUuid"]
    before = _workflow(api, wf)["deployedRelease"]
    draft = api.get("/orchestration/releases/draft", params={"workflowUuid": wf}).json()["release"]
    assert draft["status"] == "draft" and draft["parentUuid"] == before["uuid"] and draft["uuid"] != before["uuid"]
    assert api.get("/orchestration/releases/draft", params={"workflowUuid": wf}).json()["release"] == draft
    nodes = draft["nodes"]
    nodes[1]["config"] = {"reveal": "full"}
    updated = api.post("/orchestration/releases/draft/update", json={"workflowUuid": wf, "nodes": nodes})
    assert updated.status_code == 200, updated.text
    assert updated.json()["release"]["nodes"][1]["config"] == {"reveal": "full"}
    assert updated.json()["release"]["status"] == "draft"
    assert _workflow(api, wf)["deployedRelease"] == before  # an update deploys nothing
    deployed = api.post("/orchestration/releases/draft/deploy", json={
        "workflowUuid": wf, "nodes": nodes, "formFields": draft["formFields"], "version": "99",
        "description": "reveal everything"})
    assert deployed.status_code == 200, deployed.text
    rel = deployed.json()["release"]
    # the platform assigns the version (REFERENCE §3.8 [skills]: a given version is a no-op)
    assert rel["status"] == "deployed" and rel["version"] == "2" and rel["description"] == "reveal everything"
    after = _workflow(api, wf)["deployedRelease"]
    assert after["uuid"] == rel["uuid"] and after["nodes"][1]["config"] == {"reveal": "full"}
    got = api.get("/orchestration/releases/deployed", params={"workflowUuid": wf}).json()["release"]
    assert got["uuid"] == rel["uuid"]
    old = api.get(f"/orchestration/releases/{before['uuid']}").json()["release"]
    assert old["status"] == "archived"
    listed = api.get("/orchestration/releases/list", params={"workflowUuid": wf}).json()["releases"]
    assert {r["uuid"]: r["status"] for r in listed} == {before["uuid"]: "archived", rel["uuid"]: "deployed"}


def test_draft_errors(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name(TOOL)["workflowUuid"]
    missing = api.get("/orchestration/releases/draft", params={"workflowUuid": "nope"})
    assert missing.status_code == 404 and missing.json() == {
        "errorMessage": "Workflow not found.", "reason": "workflowNotFound"}
    bad_nodes = api.post("/orchestration/releases/draft/deploy", json={
        "workflowUuid": wf, "nodes": [{"name": "no slug"}], "formFields": None})
    assert bad_nodes.status_code == 400 and bad_nodes.json() == {
        "errorMessage": "The nodes are invalid.", "reason": "draftReleaseNodesAreInvalid"}
    release = emu.store.release_for(wf)
    no_form = api.post("/orchestration/releases/draft/deploy", json={
        "workflowUuid": wf, "nodes": release["nodes"], "formFields": None})
    assert no_form.status_code == 400 and no_form.json()["reason"] == "toolReleaseRequiresFormFields"
    parent = api.post("/orchestration/releases/draft/update", json={"workflowUuid": wf, "parentUuid": "x"})
    assert parent.status_code == 400 and parent.json()["reason"] == "invalidParent"
    unknown = api.post("/orchestration/releases/draft/deploy", json={
        "workflowUuid": wf, "nodes": release["nodes"], "formFields": release["formFields"], "extra": 1})
    assert unknown.status_code == 400 and unknown.json()["reason"] == "unrecognized_keys"
    assert emu.store.release_for(wf) == release  # nothing was deployed


def test_batches_keep_their_release_across_a_redeploy(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name(TOOL)["workflowUuid"]
    first = _batch(api, wf, ["stripe.com", "notion.so"])
    old_release = first["releaseUuid"]
    rel = emu.redeploy(TOOL, add_nodes=[{"slug": "tag", "kind": "native", "actionSlug": "setCampaign",
                                         "config": {"campaign": "q3"}}], position=-1)
    assert rel["version"] == "2" and [n["slug"] for n in rel["nodes"]][-2:] == ["tag", "output"]
    assert _workflow(api, wf)["deployedRelease"]["uuid"] == rel["uuid"] != old_release
    second = _batch(api, wf, ["stripe.com"])
    assert second["releaseUuid"] == rel["uuid"]
    done_first = run_to_completion(emu, api, first["uuid"])
    done_second = run_to_completion(emu, api, second["uuid"])
    assert done_first["releaseUuid"] == old_release and done_first["status"] == "success"
    assert done_second["status"] == "success"
    runs_first = emu.runs(first["uuid"])
    runs_second = emu.runs(second["uuid"])
    assert all("tag" not in r.outputs for r in runs_first)  # ran the old release: no new node
    assert [r.outputs["tag"] for r in runs_second] == [{"campaign": "q3"}]
    assert [s for s, _ in runs_second[0].node_statuses][-2:] == ["tag", "output"]
    assert {b.uuid: b.release_uuid for b in emu.batches(TOOL)} == {
        first["uuid"]: old_release, second["uuid"]: rel["uuid"]}


def test_redeploy_a_config_change_and_a_play(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    before = _workflow(api, play["workflowUuid"])["deployedRelease"]
    slug = before["nodes"][1]["slug"]
    rel = emu.redeploy(play["name"], configs={slug: {"threshold": 70}}, description="stricter")
    after = _workflow(api, play["workflowUuid"])["deployedRelease"]
    assert after["uuid"] == rel["uuid"] != before["uuid"] and after["version"] == "2"
    assert after["nodes"][1]["config"] == {**before["nodes"][1]["config"], "threshold": 70}
    assert [n["slug"] for n in after["nodes"]] == [n["slug"] for n in before["nodes"]]
    again = emu.redeploy(play["workflowUuid"])  # by workflow uuid: a plain redeploy bumps the version
    assert again["version"] == "3"


def test_run_metrics_after_a_redeploy_count_old_runs_by_node(emu: CargoEmulator, api: httpx.Client) -> None:
    wf = emu.store.tool_by_name(TOOL)["workflowUuid"]
    done = run_to_completion(emu, api, _batch(api, wf, ["stripe.com"])["uuid"])
    emu.redeploy(TOOL, add_nodes=[{"slug": "tag", "kind": "native", "actionSlug": "setCampaign"}], position=-1)
    metrics = api.post("/orchestration/runs/metrics", json={"workflowUuid": wf}).json()["runMetrics"]
    nodes = emu.store.release_for(wf)["nodes"]
    assert [m["nodeUuid"] for m in metrics] == [n["uuid"] for n in nodes]
    by_slug = {n["slug"]: m for n, m in zip(nodes, metrics)}
    assert by_slug["tag"]["totalExecutionsCount"] == 0  # the old run never executed the new node
    assert by_slug["output"]["successExecutionsCount"] == 1 and done["status"] == "success"
