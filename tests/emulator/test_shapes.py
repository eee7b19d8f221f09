"""Entity shapes: every key of the official @cargo-ai/types entity present, nullables as JSON null."""

from __future__ import annotations

import re

import httpx

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

PLAY_KEYS = {"uuid", "workspaceUuid", "workflowUuid", "userUuid", "modelUuid", "segmentUuid", "changeKinds",
             "runCreationRule", "name", "description", "schedule", "isEnabled", "healthThreshold",
             "healthAlertActions", "folderUuid", "createdAt", "updatedAt", "deletedAt"}
TOOL_KEYS = {"uuid", "icon", "workspaceUuid", "workflowUuid", "userUuid", "name", "folderUuid", "creditsCost",
             "description", "isReadOnly", "triggers", "publicForm", "createdAt", "updatedAt", "deletedAt"}
WORKFLOW_KEYS = {"uuid", "workspaceUuid", "nodes", "createdAt", "updatedAt", "deletedAt", "playUuid", "toolUuid",
                 "folderUuid", "template", "lastBatch", "deployedRelease"}
RELEASE_KEYS = {"uuid", "parentUuid", "workspaceUuid", "userUuid", "workflowUuid", "description", "version",
                "status", "templateSlug", "nodes", "formFields", "testRecords", "deployedAt", "createdAt",
                "updatedAt", "deletedAt"}
SEGMENT_KEYS = {"uuid", "workspaceUuid", "userUuid", "modelUuid", "slug", "name", "filter", "sort", "limit",
                "recordsCount", "fromPlay", "trackingColumnSlugs", "columnSlugs", "syncedAt", "createdAt",
                "updatedAt", "deletedAt", "lastChange"}
CHANGE_KEYS = {"uuid", "workspaceUuid", "segmentUuid", "slug", "totalRecordsCount", "updatedRecordsCount",
               "removedRecordsCount", "addedRecordsCount", "unchangedRecordsCount", "createdAt"}
MODEL_KEYS = {"uuid", "workspaceUuid", "slug", "name", "description", "datasetUuid", "extractorSlug", "position",
              "config", "schedule", "meta", "columns", "additionalColumns", "idColumnSlug", "unification",
              "titleColumnSlug", "timeColumnSlug", "folderUuid", "playsCount", "segmentsCount", "isPaused",
              "lastEmittedAt", "createdAt", "updatedAt", "deletedAt", "lastRun", "kind"}
WORKSPACE_KEYS = {"uuid", "name", "allowedEmailDomains", "syncs", "temporalNamespace", "temporalTaskQueuePrefix",
                  "maxConcurrentRuns", "openAiVectorStoreId", "createdAt", "updatedAt", "logoUrl", "metadata",
                  "chromeExtensionMasterAgentUuid", "chromeExtensionAvailableAgentUuids", "defaultRoleUuid",
                  "allowedLoginProviders", "ssoIdentifier", "quotaBuckets"}
USER_KEYS = {"uuid", "email", "firstName", "lastName", "picture", "lastSignInAt", "createdAt", "updatedAt",
             "webExtensionData"}
SUBSCRIPTION_KEYS = {"uuid", "workspaceUuid", "provider", "customerOrbId", "customerStripeId",
                     "subscriptionStatus", "subscriptionStripeId", "subscriptionAvailableCreditsCount",
                     "subscriptionCreditsUsedCount", "additionalAvailableCreditsCount", "creditsOverageBehaviors",
                     "creditsConsumptionBehaviors", "createdAt", "updatedAt", "plan", "cadence", "fixedPrice",
                     "conversionRate", "startAt", "resetAt", "endAt", "hasPendingChange", "hasCredits",
                     "futureChange", "topup"}


def test_plays_and_filters(emu, api: httpx.Client) -> None:
    plays = api.get("/orchestration/plays/list").json()["plays"]
    assert {p["name"] for p in plays} >= {"Score inbound companies", "Find decision makers"}
    for p in plays:
        assert set(p) == PLAY_KEYS
        assert ISO.match(p["createdAt"]) and p["deletedAt"] is None and p["folderUuid"] is None
        seg = api.get(f"/segmentation/segments/{p['segmentUuid']}").json()["segment"]
        assert seg["fromPlay"] is True and seg["modelUuid"] == p["modelUuid"]
        wf = next(w for w in api.get("/orchestration/workflows/list").json()["workflows"]
                  if w["uuid"] == p["workflowUuid"])
        assert wf["playUuid"] == p["uuid"] and wf["toolUuid"] is None
    enabled = api.get("/orchestration/plays/list?isEnabled=true").json()["plays"]
    assert enabled and all(p["isEnabled"] for p in enabled)
    companies = emu.store.model_by_slug("companies")["uuid"]
    by_model = api.get(f"/orchestration/plays/list?modelUuid={companies}").json()["plays"]
    assert [p["name"] for p in by_model] == [
        "Score inbound companies", "Qualify inbound companies", "Classify inbound companies"]
    cron = api.get("/orchestration/plays/list?scheduleType=cron").json()["plays"]
    assert all(p["schedule"]["type"] == "cron" for p in cron) and cron


def test_tools_workflows_releases(emu, api: httpx.Client) -> None:
    tools = api.get("/orchestration/tools/list").json()["tools"]
    assert {t["name"] for t in tools} >= {"Enrich company", "Find work email"}
    for t in tools:
        assert set(t) == TOOL_KEYS and t["publicForm"] is None
    tool = emu.store.tool_by_name("Enrich company")
    assert api.get(f"/orchestration/tools/{tool['uuid']}").json()["tool"]["name"] == "Enrich company"
    workflows = api.get("/orchestration/workflows/list").json()["workflows"]
    assert len(workflows) == 7  # 4 plays (the agent play included) + 3 tools
    for wf in workflows:
        assert set(wf) == WORKFLOW_KEYS
        assert wf["lastBatch"] is None and wf["template"] is None
        dep = wf["deployedRelease"]
        assert dep["nodes"][0]["slug"] == "start" and dep["nodes"][-1]["slug"] in ("output", "end")
        assert wf["nodes"][0]["slug"] == "start" and wf["nodes"][0]["nodes"][0]["isArchived"] is False
    wf_uuid = tool["workflowUuid"]
    rel = api.get(f"/orchestration/releases/deployed?workflowUuid={wf_uuid}").json()["release"]
    assert set(rel) == RELEASE_KEYS and rel["status"] == "deployed"
    assert [f["slug"] for f in rel["formFields"]] == ["domain", "company_name"]
    assert [n["slug"] for n in rel["nodes"]] == ["start", "enrich_company", "output"]
    assert rel["nodes"][1]["kind"] == "connector" and rel["nodes"][1]["integrationSlug"] == "clearbit"
    assert api.get(f"/orchestration/releases/{rel['uuid']}").json()["release"] == rel
    listed = api.get(f"/orchestration/releases/list?workflowUuid={wf_uuid}&statuses%5B%5D=deployed").json()
    assert [r["uuid"] for r in listed["releases"]] == [rel["uuid"]]
    play = emu.store.play_by_name("Score inbound companies")
    prel = api.get(f"/orchestration/releases/deployed?workflowUuid={play['workflowUuid']}").json()["release"]
    assert prel["formFields"] is None
    assert [n["slug"] for n in prel["nodes"]] == ["start", "enrich_company", "score", "output"]


def test_models_datasets(api: httpx.Client) -> None:
    models = api.get("/storage/models/list").json()["models"]
    assert {m["slug"]: m["name"] for m in models} == {"companies": "Companies", "contacts": "Contacts"}
    for m in models:
        assert set(m) == MODEL_KEYS and m["kind"] == "native"
        assert api.get(f"/storage/models/{m['uuid']}").json()["model"]["uuid"] == m["uuid"]
    companies = next(m for m in models if m["slug"] == "companies")
    types = {c["slug"]: c["type"] for c in companies["columns"]}
    assert types["employee_count"] == "number" and types["created_at"] == "date" and types["domain"] == "string"
    assert all(c["kind"] == "original" for c in companies["columns"])
    assert api.get("/storage/models/nope").json()["reason"] == "modelNotFound"
    datasets = api.get("/storage/datasets/list").json()["datasets"]
    assert datasets[0]["kind"] == "native" and datasets[0]["deletedAt"] is None


def test_segments_and_changes(api: httpx.Client) -> None:
    segments = api.get("/segmentation/segments/list").json()["segments"]
    assert len(segments) >= 4
    for s in segments:
        assert set(s) == SEGMENT_KEYS and s["sort"] is None
        changes = api.get(f"/segmentation/changes/list?segmentUuid={s['uuid']}").json()["changes"]
        assert len(changes) == 1 and set(changes[0]) == CHANGE_KEYS
        assert changes[0]["totalRecordsCount"] == s["lastChange"]["addedRecordsCount"] > 0
        assert api.get(f"/segmentation/changes/{changes[0]['uuid']}").json()["change"] == changes[0]
        if s["fromPlay"]:  # CARGO-DOCS 8.3: one GENERATED_PLAY_SEGMENT per play, count never populated
            assert s["name"] == "GENERATED_PLAY_SEGMENT" and s["recordsCount"] == 0
            assert s["trackingColumnSlugs"]
        else:
            assert s["recordsCount"] == changes[0]["totalRecordsCount"] and s["trackingColumnSlugs"] is None
    assert {s["name"] for s in segments if not s["fromPlay"]} >= {"ICP companies", "EU contacts"}
    # changes/list requires segmentUuid: a zod issue with its path (CARGO-DOCS 8.2, 10.2)
    bad = api.get("/segmentation/changes/list")
    assert bad.status_code == 400 and bad.json()["issues"][0]["path"] == ["segmentUuid"]


def test_workspace_users_subscription(emu, api: httpx.Client) -> None:
    ws = api.get("/workspaceManagement/workspaces/current").json()["workspace"]
    assert set(ws) == WORKSPACE_KEYS and ws["uuid"] == emu.workspace_uuid
    user = api.get("/userManagement/users/current").json()["user"]
    assert set(user) == USER_KEYS
    wuser = api.get("/workspaceManagement/users/current").json()["user"]
    assert set(wuser) == USER_KEYS | {"workspaceUuid", "permissions", "role"}
    assert wuser["role"]["slug"] == "admin"
    sub = api.get("/billing/subscriptions").json()["subscription"]
    assert set(sub) == SUBSCRIPTION_KEYS
    assert sub["subscriptionAvailableCreditsCount"] == 100_000 and sub["subscriptionCreditsUsedCount"] == 0
    assert sub["hasCredits"] is True and sub["endAt"] is None and sub["topup"] is None


def test_datetime_format_everywhere(api: httpx.Client) -> None:
    body = api.get("/orchestration/workflows/list").text + api.get("/segmentation/segments/list").text
    stamps = re.findall(r'"(?:createdAt|updatedAt|deployedAt|syncedAt)":"([^"]+)"', body)
    assert stamps and all(ISO.match(s) for s in stamps)
