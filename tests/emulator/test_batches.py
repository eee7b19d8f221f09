"""Batch lifecycle over simulated time (manual clock): states, counters, credits, outputs, errors."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator, enrichment
from cargo_gtm_emulator.engine import planned_failure

from .conftest import TOKEN, run_to_completion


def _expected_credits(emu: CargoEmulator, workflow_uuid: str, record_ids: list[str]) -> tuple[int, int]:
    """(credits, failed runs) predicted from the pure failure plan and per-node costs."""
    spec = emu.store.spec_for(workflow_uuid)
    credits = failed = 0
    for rid in record_ids:
        plan = planned_failure(emu.store.seed, emu.store.run_failure_rate, workflow_uuid, rid, spec)
        last = plan[0] if plan else len(spec.nodes)
        credits += sum(n.cost for n in spec.nodes[:last])
        failed += plan is not None
    return credits, failed


def test_play_batch_full_lifecycle(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    wf = play["workflowUuid"]
    ids = [f"cmp_{i:04d}" for i in range(1, 61)]
    r = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {
        "kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ids}})
    assert r.status_code == 200
    batch = r.json()["batch"]
    assert batch["status"] == "pending" and batch["finishedAt"] is None and batch["runsStatus"] is None
    assert batch["data"] == {"kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ids}
    assert batch["releaseUuid"] == emu.store.release_for(wf)["uuid"]
    uuid = batch["uuid"]
    seen = []
    for _ in range(200):
        b = api.get(f"/orchestration/batches/{uuid}").json()["batch"]
        seen.append(b["status"])
        assert 0 <= b["executedRunsCount"] <= max(b["runsCount"], 0)
        if b["status"] == "success":
            break
        emu.advance(0.5)
    assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == [
        "pending", "querying", "running", "success"]
    expected_credits, expected_failed = _expected_credits(emu, wf, ids)
    assert expected_failed > 0  # run_failure_rate=0.1 over 60 records
    assert b["runsCount"] == 60 and b["executedRunsCount"] == 60
    assert b["failedRunsCount"] == expected_failed
    assert b["creditsUsedCount"] == expected_credits
    assert b["finishedAt"] is not None and b["runsStatus"] == "healthy"

    # runs: list/count/statuses, errors carry their own message
    runs = api.post("/orchestration/runs/list", json={"batchUuid": uuid, "limit": 1000}).json()
    assert runs["count"] == 60 and len(runs["runs"]) == 60
    assert sum(ex["creditsUsedCount"] for run in runs["runs"] for ex in run["executions"]) == expected_credits
    failed = [run for run in runs["runs"] if run["status"] == "error"]
    assert len(failed) == expected_failed
    for run in failed:
        assert run["errorMessage"] and run["recordId"] in run["errorMessage"]
        assert run["executions"][-1]["status"] == "error"
        assert run["executions"][-1]["errorMessage"] == run["errorMessage"]
        assert run["executions"][-1]["creditsUsedCount"] == 0
    assert api.post("/orchestration/runs/count", json={"batchUuid": uuid, "statuses": ["error"]}).json() == {
        "count": expected_failed}

    # one run in detail: outputs are pure functions of the record
    ok = next(run for run in runs["runs"] if run["status"] == "success")
    detail = api.get(f"/orchestration/runs/{ok['uuid']}").json()
    rec = emu.store.records[play["modelUuid"]][ok["recordId"]]
    assert detail["runContext"]["enrich_company"] == enrichment.enrich_company(rec["domain"])
    assert detail["runContext"]["score"] == enrichment.score_company(rec["domain"])
    assert detail["runComputedConfigs"]["enrich_company"] == {"domain": rec["domain"]}
    assert [e["nodeSlug"] for e in detail["run"]["executions"]] == ["start", "enrich_company", "score", "output"]
    assert [e["creditsUsedCount"] for e in detail["run"]["executions"]] == [0, 2, 1, 0]
    ex = detail["run"]["executions"][1]
    assert ex["nodeKind"] == "connector" and ex["nodeIntegrationSlug"] == "clearbit"
    assert ex["nodeConnectorUuid"] and ex["finishedAt"]

    # metrics per node add up
    metrics = api.post("/orchestration/runs/metrics", json={"workflowUuid": wf, "batchUuid": uuid}).json()
    assert len(metrics["runMetrics"]) == 4
    assert sum(m["creditsUsedCount"] for m in metrics["runMetrics"]) == expected_credits
    assert metrics["runMetrics"][0]["successExecutionsCount"] == 60

    # download: one row per batch record (CARGO-DOCS 1.2), in the order sent; errored runs keep their
    # input fields with an empty output
    url = api.post(f"/orchestration/batches/{uuid}/download", json={}).json()["url"]
    assert url.startswith(emu.base_url)
    resp = httpx.get(url)  # no token: presigned
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["_id"] for r in rows] == ids
    header = list(rows[0])
    assert header[:9] == ["_id", "_title", "domain", "name", "industry", "employee_count", "country",
                          "founded_year", "created_at"]
    assert header[9:11] == ["output.domain", "output.name"]  # output keys equal to input fields
    failed_ids = {r["recordId"] for r in runs["runs"] if r["status"] == "error"}
    for row in rows:
        rec = emu.store.records[play["modelUuid"]][row["_id"]]
        assert row["_title"] == rec["_title"] and row["domain"] == rec["domain"]
        assert row["industry"] == rec["industry"]  # the input field, never overwritten
        if row["_id"] in failed_ids:
            assert row["score"] == row["output.domain"] == row["hq_country"] == ""
        else:
            assert row["hq_country"] == enrichment.enrich_company(rec["domain"])["hq_country"]
            assert int(row["score"]) == enrichment.score_company(rec["domain"])["score"]
            assert row["output.domain"] == rec["domain"]
    # an intermediate node can be exported too
    url2 = api.post(f"/orchestration/batches/{uuid}/download", json={"outputNodeSlug": "enrich_company"}).json()
    rows2 = list(csv.DictReader(io.StringIO(httpx.get(url2["url"]).text)))
    assert len(rows2) == 60
    assert set(rows2[0]) - set(header[:9]) == {"output.industry", "employee_range", "revenue_band",
                                               "linkedin_url", "hq_country"}
    # a wrong slug: "node not found" (CARGO-DOCS 1.4)
    bad = api.post(f"/orchestration/batches/{uuid}/download", json={"outputNodeSlug": "nope"})
    assert bad.status_code == 404 and bad.json()["reason"] == "nodeNotFound"
    assert "node not found" in bad.json()["errorMessage"].lower()

    # credits: provider cost on nodes and batch; the subscription also pays 0.01 per node execution
    executions = sum(len(r["executions"]) for r in runs["runs"])
    sub = api.get("/billing/subscriptions").json()["subscription"]
    assert sub["subscriptionCreditsUsedCount"] == pytest.approx(expected_credits + executions / 100)
    assert emu.credits_used == pytest.approx(expected_credits + executions / 100)
    usage = api.get("/billing/usage/metrics?from=2025-01-15&to=2025-01-15&groupBy=workflow_uuid"
                    "&unit=billing.credits").json()
    items = usage["metrics"][0]["items"]
    assert sum(i["count"] for i in items) == expected_credits
    assert {i["groupBy"] for i in items} == {wf}
    assert {i["slug"] for i in items} == {"integration.clearbit.action.enrichCompany",
                                          "integration.openai.action.instructStructured"}
    ex_items = api.get("/billing/usage/metrics?from=2025-01-15&to=2025-01-15"
                       "&unit=orchestration.executions").json()["metrics"][0]["items"]
    assert {i["slug"]: i["count"] for i in ex_items} == {"success": executions - expected_failed,
                                                          "error": expected_failed}
    # workflow.lastBatch reflects it
    wfl = next(w for w in api.get("/orchestration/workflows/list").json()["workflows"] if w["uuid"] == wf)
    assert wfl["lastBatch"]["uuid"] == uuid and wfl["lastBatch"]["status"] == "success"


def test_tool_records_batch_outputs_json(emu: CargoEmulator, api: httpx.Client) -> None:
    tool = emu.store.tool_by_name("Find work email")
    wf = tool["workflowUuid"]
    records = [{"first_name": "Ada", "last_name": "Lovelace", "domain": "analytical.io"},
               {"first_name": "Alan", "last_name": "Turing", "domain": "bletchley.co.uk"},
               {"first_name": "Grace", "domain": "navy.mil"}]  # missing last_name → run fails at find_email
    b = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {"kind": "records",
                                                                            "records": records}}).json()["batch"]
    assert b["data"]["kind"] == "records" and b["data"]["s3Filename"]
    b = run_to_completion(emu, api, b["uuid"])
    assert b["status"] == "success" and b["runsCount"] == 3 and b["executedRunsCount"] == 3
    assert b["failedRunsCount"] >= 1
    runs = api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"]}).json()["runs"]
    grace = next(r for r in runs if r["recordTitle"] == "Grace")
    assert grace["status"] == "error" and grace["errorMessage"] == "Missing required input: last_name"
    url = api.post("/orchestration/runs/download-outputs", json={
        "workflowUuid": wf, "batchUuid": b["uuid"], "outputNodeSlug": "output", "format": "json"}).json()["url"]
    rows = httpx.get(url).json()
    # one row per run: the nine "_" columns + input (first node's resolved config) + output (CARGO-DOCS 2.2)
    assert len(rows) == 3
    assert list(rows[0]) == ["_uuid", "_workspace_uuid", "_workflow_uuid", "_record_id", "_record_title",
                             "_created_at", "_finished_at", "_status", "_error_message", "input", "output"]
    assert [row["input"] for row in rows] == records  # oldest run first = the order sent
    for row, src in zip(rows, records):
        if row["_status"] == "error":
            assert row["output"] is None and row["_error_message"]
            continue
        assert row["_status"] == "success" and row["_error_message"] is None
        assert row["output"]["email"] == enrichment.find_work_email(
            src["first_name"], src["last_name"], src["domain"])["email"]
        assert set(row["output"]) >= {"email", "email_status", "confidence"}
    # the batch download: one row per record, errored ones with input fields and empty output
    url = api.post(f"/orchestration/batches/{b['uuid']}/download", json={}).json()["url"]
    brows = list(csv.DictReader(io.StringIO(httpx.get(url).text)))
    assert [(r["first_name"], r["last_name"], r["domain"]) for r in brows] == [
        (r["first_name"], r.get("last_name", ""), r["domain"]) for r in records]
    assert brows[2]["email"] == "" and brows[2]["output.first_name"] == ""


def test_tool_file_batch(emu: CargoEmulator, api: httpx.Client) -> None:
    tool = emu.store.tool_by_name("Enrich company")
    s3 = emu.store.put_file([{"Website": "stripe.com", "Company": "Stripe"}, {"Website": "figma.com",
                                                                                "Company": "Figma"}])
    b = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "file", "s3Filename": s3, "mappings": {"domain": "Website", "company_name": "Company"}}}).json()
    b = run_to_completion(emu, api, b["batch"]["uuid"])
    assert b["runsCount"] == 2 and b["data"] == {"kind": "file", "s3Filename": s3, "mappings": {
        "domain": "Website", "company_name": "Company"}}
    runs = api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"]}).json()["runs"]
    assert sorted(r["recordTitle"] for r in runs) == ["figma.com", "stripe.com"]


def test_cancel(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Find decision makers")
    b = api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "filter", "modelUuid": play["modelUuid"]}}).json()["batch"]
    emu.advance(10)
    running = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
    assert running["status"] == "running" and running["executedRunsCount"] < running["runsCount"]
    r = api.post(f"/orchestration/batches/{b['uuid']}/cancel")  # no body, no content-type
    assert r.status_code == 200 and r.json() == {}
    assert api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]["status"] == "cancelling"
    again = api.post(f"/orchestration/batches/{b['uuid']}/cancel")
    assert again.status_code == 409 and again.json()["reason"] == "batchAlreadyFinished"
    emu.advance(5)
    done = api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"]
    assert done["status"] == "cancelled" and done["finishedAt"] is not None
    emu.advance(600)
    assert api.get(f"/orchestration/batches/{b['uuid']}").json()["batch"] == done  # nothing moves after cancel
    counts = api.post("/orchestration/runs/count", json={"batchUuid": b["uuid"], "statuses": ["cancelled"]}).json()
    assert counts["count"] == done["runsCount"] - done["executedRunsCount"] > 0
    r = api.post(f"/orchestration/batches/{b['uuid']}/cancel")
    assert r.json() == {"errorMessage": "Batch already finished.", "reason": "batchAlreadyFinished"}


def test_batch_errors(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    tool = emu.store.tool_by_name("Enrich company")

    def create(body: dict) -> httpx.Response:
        return api.post("/orchestration/batches", json=body)

    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "records", "records": [{"a": 1}]}})
    assert r.status_code == 400
    assert r.json() == {"errorMessage": "Invalid data kind for workflow type.", "reason": "invalidDataKind"}
    r = create({"workflowUuid": tool["workflowUuid"], "data": {"kind": "segment", "segmentUuid": play[
        "segmentUuid"]}})
    assert r.json()["reason"] == "invalidDataKind"
    r = create({"workflowUuid": "nope", "data": {"kind": "records", "records": []}})
    assert r.status_code == 404 and r.json()["reason"] == "workflowNotFound"
    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "segment",
                                                               "segmentUuid": play["segmentUuid"]}})
    assert r.status_code == 400 and r.json()["reason"] == "dataError"
    assert r.json()["dataError"] == {"reason": "segmentLinkedToPlay"}
    assert r.json()["errorMessage"].startswith("This segment belongs to a play")
    icp = emu.store.segment_by_name("ICP companies")
    ok = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "segment", "segmentUuid": icp["uuid"]}})
    assert ok.status_code == 200
    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "recordIds", "modelUuid": play[
        "modelUuid"], "ids": ["does-not-exist"]}})
    assert r.json()["dataError"] == {"reason": "noRecords"} and r.json()["errorMessage"] == "No records."
    r = create({"workflowUuid": tool["workflowUuid"], "data": {"kind": "records", "records": []}})
    assert r.json()["dataError"] == {"reason": "noRecords"}
    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "change", "changeUuid": "x",
                                                               "changeKinds": ["added"]}})
    assert r.json()["dataError"] == {"reason": "invalidChange"}
    change = emu.store.changes_for(play["segmentUuid"])[0].wire
    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "change", "changeUuid": change["uuid"],
                                                               "changeKinds": ["moved"]}})
    assert r.json()["dataError"] == {"reason": "invalidChangeKinds"}
    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "segment", "segmentUuid": "nope"}})
    assert r.json()["dataError"] == {"reason": "failedToGetSegment"}
    r = create({"workflowUuid": play["workflowUuid"], "data": {"kind": "filter", "modelUuid": play["modelUuid"],
                                                               "filter": {"conjonction": "xor", "groups": []}}})
    assert r.json()["dataError"] == {"reason": "invalidData"}
    r = api.post(f"/orchestration/batches/{ok.json()['batch']['uuid']}/download", json={})
    assert r.status_code == 409 and r.json() == {"errorMessage": "Batch not finished.",
                                                 "reason": "batchNotFinished"}


def test_not_enough_credits_and_mid_batch_exhaustion() -> None:
    with CargoEmulator(token=TOKEN, credits=20, run_failure_rate=0.0, clock="manual") as emu, \
            httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}) as api:
        tool = emu.store.tool_by_name("Enrich company")
        records = [{"domain": f"company{i}.com"} for i in range(15)]  # 15 x 2 credits > 20
        b = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
            "kind": "records", "records": records}}).json()["batch"]
        b = run_to_completion(emu, api, b["uuid"])
        assert b["status"] == "success" and b["executedRunsCount"] == 15
        # the execution charge (0.01 per node execution) eats into the balance too, so only 9 enrichments
        # (18 credits) fit; the charge is metered after the fact and may take the balance below zero
        assert b["creditsUsedCount"] == 18 and b["failedRunsCount"] == 6
        errs = api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"], "statuses": ["error"]}).json()
        assert {r["errorMessage"] for r in errs["runs"]} == {"Not enough credits."}
        executions = 9 * 3 + 6 * 2  # start, enrich, output / start, enrich (errored)
        sub = api.get("/billing/subscriptions").json()["subscription"]
        assert sub["subscriptionCreditsUsedCount"] == pytest.approx(18 + executions / 100)
        assert sub["hasCredits"] is True  # 1.61 left, less than one enrichment
        emu.store.credits_available = 18  # now the balance is below zero
        assert api.get("/billing/subscriptions").json()["subscription"]["hasCredits"] is False
        r = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
            "kind": "records", "records": records[:1]}})
        assert r.status_code == 402
        assert r.json() == {"errorMessage": "Not enough credits.", "reason": "notEnoughCredits"}


def test_download_url_expiry_and_tampering(emu: CargoEmulator, api: httpx.Client) -> None:
    tool = emu.store.tool_by_name("Enrich company")
    b = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "records", "records": [{"domain": "acme.com"}]}}).json()["batch"]
    run_to_completion(emu, api, b["uuid"])
    url = api.post(f"/orchestration/batches/{b['uuid']}/download", json={}).json()["url"]
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    assert httpx.get(url).status_code == 200
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    bad = httpx.get(tampered)
    assert bad.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in bad.text
    unknown = httpx.get(emu.base_url + "/_files/exports/nope.csv?X-Amz-Signature=x")
    assert unknown.status_code == 403 and "AccessDenied" in unknown.text
    emu.advance(3601)
    expired = httpx.get(url)
    assert expired.status_code == 403 and "Request has expired" in expired.text


def test_runs_download_outputs_errors(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    r = api.post("/orchestration/runs/download-outputs", json={"workflowUuid": play["workflowUuid"]})
    assert r.status_code == 404 and r.json() == {"errorMessage": "No runs found matching the given filters.",
                                                 "reason": "noRunsFound"}


def test_change_batch_after_record_updates(emu: CargoEmulator, api: httpx.Client) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    model = play["modelUuid"]
    existing = emu.store.model_records(model)[0]
    changes = emu.store.upsert_records("companies", [
        {"_id": existing["_id"], "employee_count": existing["employee_count"] + 1},
        {"_id": "cmp_new_1", "name": "Newco", "domain": "newco.io", "employee_count": 500, "country": "FR",
         "industry": "Software", "founded_year": 2024, "created_at": "2025-01-15T09:00:00.000Z"},
    ])
    play_change = next(c for c in changes if c["segmentUuid"] == play["segmentUuid"])
    assert play_change["addedRecordsCount"] == 1 and play_change["updatedRecordsCount"] == 1
    listed = api.get(f"/segmentation/changes/list?segmentUuid={play['segmentUuid']}&notEmpty=true").json()
    assert listed["changes"][0]["uuid"] == play_change["uuid"]  # newest first
    fetched = api.post(f"/segmentation/changes/{play_change['uuid']}/fetch", json={"kinds": ["added"]}).json()
    assert fetched["count"] == 1 and fetched["records"][0]["_id"] == "cmp_new_1"
    b = api.post("/orchestration/batches", json={"workflowUuid": play["workflowUuid"], "data": {
        "kind": "change", "changeUuid": play_change["uuid"], "changeKinds": ["added", "updated"]}}).json()["batch"]
    assert b["data"]["segmentUuid"] == play["segmentUuid"]
    b = run_to_completion(emu, api, b["uuid"])
    assert b["runsCount"] == 2
    ids = {r["recordId"] for r in api.post("/orchestration/runs/list", json={"batchUuid": b["uuid"]}).json()["runs"]}
    assert ids == {existing["_id"], "cmp_new_1"}


@pytest.mark.parametrize("flag,expected", [("true", 1), ("false", 1)])
def test_list_batches_is_finished(emu: CargoEmulator, api: httpx.Client, flag: str, expected: int) -> None:
    tool = emu.store.tool_by_name("Enrich company")
    first = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "records", "records": [{"domain": "a.com"}]}}).json()["batch"]
    run_to_completion(emu, api, first["uuid"])
    second = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "records", "records": [{"domain": "b.com"}]}}).json()["batch"]
    got = api.get(f"/orchestration/batches/list?isFinished={flag}").json()["batches"]
    assert len(got) == expected
    assert got[0]["uuid"] == (first["uuid"] if flag == "true" else second["uuid"])
    assert api.get(f"/orchestration/batches/list?uuids%5B%5D={first['uuid']}").json()["batches"][0][
        "uuid"] == first["uuid"]
    assert len(api.get("/orchestration/batches/list?limit=1&offset=1").json()["batches"]) == 1
    assert api.get("/orchestration/batches/list?hasRuns=true").json()["batches"][0]["uuid"] == first["uuid"]
