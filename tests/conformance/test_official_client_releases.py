"""Redeploys through the official client (the `releases` scenario, REFERENCE §3.8): draft get, update and
deploy; the new release becomes the workflow's deployedRelease; a batch created before keeps its release
(CARGO-DOCS 14.2); the documented error reasons."""

from __future__ import annotations

from ._helpers import assert_error, ok_result, wire_body
from .schemas import validate


def test_draft_update_deploy(releases_run):
    doc = releases_run
    assert doc.get("fatal") is None, doc["fatal"]["stack"]
    ctx = doc["context"]
    draft = ok_result(doc, "draft.get")["release"]
    assert draft["status"] == "draft" and draft["parentUuid"] == ctx["beforeUuid"]
    updated = ok_result(doc, "draft.update")["release"]
    assert updated["uuid"] == draft["uuid"] and updated["nodes"][1]["config"]["reveal"] == "full"
    deployed = ok_result(doc, "draft.deploy")["release"]
    assert deployed["status"] == "deployed" and deployed["version"] == "2"
    assert deployed["description"] == "conformance redeploy"
    for name in ("draft.get", "draft.update", "draft.deploy", "releases.deployed.after"):
        validate("Release", wire_body(doc, name)["release"], context=name)
    after = ok_result(doc, "releases.deployed.after")["release"]
    assert after["uuid"] == ctx["deployedUuid"] != ctx["beforeUuid"]
    workflow = next(w for w in ok_result(doc, "workflows.list.after")["workflows"] if w["uuid"] == ctx["workflowUuid"])
    assert workflow["deployedRelease"]["uuid"] == ctx["deployedUuid"]
    assert ok_result(doc, "batches.get.beforeDeploy")["batch"]["releaseUuid"] == ctx["beforeUuid"]
    assert ctx["lateBatchRelease"] == ctx["deployedUuid"]


def test_draft_errors(releases_run):
    assert_error(releases_run, "draft.get.missing", type_="RequestError", reason="workflowNotFound",
                 message="Workflow not found.", status_range=(400, 499))
    assert_error(releases_run, "draft.deploy.invalidNodes", type_="RequestError",
                 reason="draftReleaseNodesAreInvalid", message="The nodes are invalid.", status_range=(400, 499))
    assert_error(releases_run, "draft.deploy.noFormFields", type_="RequestError",
                 reason="toolReleaseRequiresFormFields", message="A tool release requires form fields.",
                 status_range=(400, 499))
