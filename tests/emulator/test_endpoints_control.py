"""Single runs, file upload + file batch, batches/list uuids[], record download-outputs, segment download and
the control plane (HTTP and CLI)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import httpx
from cargo_gtm_emulator import CargoEmulator, enrichment

from .conftest import TOKEN, run_to_completion


def test_single_run_of_a_tool_until_terminal(emu: CargoEmulator, api: httpx.Client) -> None:
    tool = emu.store.tool_by_name("Enrich company")
    r = api.post("/orchestration/runs", json={"workflowUuid": tool["workflowUuid"], "data": {"domain": "stripe.com"}})
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    # CARGO-DOCS 11.1: async, pending, no batch, the release set; 11.2: releaseUuid or nodes, never both
    assert run["status"] == "pending" and run["batchUuid"] is None and run["nodes"] is None
    assert run["releaseUuid"] == emu.store.release_for(tool["workflowUuid"])["uuid"]
    for _ in range(100):
        got = api.get(f"/orchestration/runs/{run['uuid']}").json()
        if got["run"]["status"] in ("success", "error", "cancelled"):
            break
        emu.advance(1)
    assert got["run"]["status"] == "success"
    assert got["runContext"]["output"]["industry"] == enrichment.enrich_company("stripe.com")["industry"]
    assert got["runComputedConfigs"]["start"] == {"domain": "stripe.com"}
    assert api.get("/orchestration/batches/list").json()["batches"] == []  # no batch shows up
    play = emu.store.play_by_name("Score inbound companies")
    bad = api.post("/orchestration/runs", json={"workflowUuid": play["workflowUuid"], "data": {"_id": "cmp_0001"}})
    assert bad.status_code == 400 and bad.json() == {
        "errorMessage": "Play workflows are not compatible with run creation.", "reason": "playNotCompatible"}


def test_upload_file_then_file_batch(emu: CargoEmulator, api: httpx.Client) -> None:
    content = "Website,Company\nstripe.com,Stripe\nfigma.com,Figma\n,Nameless\n"
    r = api.post("/workspaceManagement/files/upload",
                 files={"file": ("my-companies.csv", content.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    up = r.json()
    assert set(up) == {"s3Filename", "contentType", "name"} and up["name"] == "my-companies.csv"
    assert up["s3Filename"].endswith("-my-companies.csv") and up["contentType"] == "text/csv"
    cols = api.get("/workspaceManagement/files/listColumns", params={"s3Filename": up["s3Filename"]}).json()
    assert cols == {"columns": [{"type": "string", "name": "Website"}, {"type": "string", "name": "Company"}]}
    missing = api.get("/workspaceManagement/files/listColumns", params={"s3Filename": "nope.csv"})
    assert missing.status_code == 400 and missing.json()["reason"] == "noColumnsFound"
    tool = emu.store.tool_by_name("Enrich company")
    b = api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "file", "s3Filename": up["s3Filename"], "mappings": {"domain": "Website",
                                                                     "company_name": "Company"}}}).json()["batch"]
    b = run_to_completion(emu, api, b["uuid"])
    assert b["runsCount"] == 3 and b["failedRunsCount"] == 1  # one run per data row; the empty domain fails
    url = api.post(f"/orchestration/batches/{b['uuid']}/download", json={}).json()["url"]
    rows = list(csv.DictReader(io.StringIO(httpx.get(url).text)))
    assert [r["company_name"] for r in rows] == ["Stripe", "Figma", "Nameless"]
    no_file = api.post("/workspaceManagement/files/upload", content=b"{}", headers={"content-type": "application/json"})
    assert no_file.status_code == 400 and no_file.json()["reason"] == "noFile"


def test_batches_list_uuids_and_order_variants(emu: CargoEmulator, api: httpx.Client) -> None:
    tool = emu.store.tool_by_name("Enrich company")
    made = [api.post("/orchestration/batches", json={"workflowUuid": tool["workflowUuid"], "data": {
        "kind": "records", "records": [{"domain": f"d{i}.com"}]}}).json()["batch"]["uuid"] for i in range(3)]
    got = api.get("/orchestration/batches/list", params={"uuids[]": made[:2]}).json()["batches"]
    assert [b["uuid"] for b in got] == [made[1], made[0]]  # newest first by default
    emu.set_variants(batch_list_order="oldest_first")
    assert [b["uuid"] for b in api.get("/orchestration/batches/list").json()["batches"]] == made
    emu.set_variants(batch_list_order="unordered", batch_data_echo="absent", batch_user_uuid="absent")
    listed = api.get("/orchestration/batches/list").json()["batches"]
    assert sorted(b["uuid"] for b in listed) == sorted(made)
    assert all("data" not in b and "userUuid" not in b for b in listed)


def test_record_download_outputs_and_segment_download(emu: CargoEmulator, api: httpx.Client) -> None:
    tool = emu.store.tool_by_name("Normalize domain")
    wf = tool["workflowUuid"]
    for domains in (["a.com", "b.com"], ["a.com"]):
        b = api.post("/orchestration/batches", json={"workflowUuid": wf, "data": {
            "kind": "records", "records": [{"_id": d, "domain": d} for d in domains]}}).json()["batch"]
        run_to_completion(emu, api, b["uuid"])
    url = api.post("/orchestration/records/download-outputs", json={"workflowUuid": wf, "format": "json"}).json()["url"]
    rows = httpx.get(url).json()
    assert sorted(r["_record_id"] for r in rows) == ["a.com", "b.com"]  # one row per record: its newest run
    none = api.post("/orchestration/records/download-outputs", json={"workflowUuid": wf, "ids": ["zzz"]})
    assert none.status_code == 404 and none.json()["reason"] == "noRecordsFound"

    model = emu.store.model_by_slug("companies")
    body = {"modelUuid": model["uuid"], "filter": {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 1000}]}]}}
    urls = api.post("/segmentation/segments/download", json=body).json()["urls"]
    recs = list(csv.DictReader(io.StringIO(httpx.get(urls[0]).text)))
    assert list(recs[0]) == [c["slug"] for c in model["columns"]]
    assert len(recs) == sum(r["employee_count"] > 1000 for r in emu.store.model_records(model["uuid"]))


def test_control_plane_over_http(emu: CargoEmulator) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    ctl = emu.base_url + "/_emulator"
    assert httpx.get(ctl + "/state").status_code == 401
    state = httpx.get(ctl + "/state", headers=auth).json()
    assert state["creditsUsed"] == 0 and state["variants"]["download_gzip"] == "off"
    moved = httpx.post(ctl + "/clock/advance", headers=auth, json={"seconds": 60}).json()
    assert moved["now"] == state["now"] + 60
    bad = httpx.post(ctl + "/variants", headers=auth, json={"download_gzip": "zip"})
    assert bad.status_code == 400 and "allowed: off, file, transport" in bad.json()["errorMessage"]
    assert httpx.post(ctl + "/variants", headers=auth, json={"json_shape": "ndjson"}).json()["variants"][
        "json_shape"] == "ndjson"
    changes = httpx.post(ctl + "/records", headers=auth, json={"model": "companies", "records": [
        {"_id": "cmp_0001", "name": "Renamed Co"}]}).json()["changes"]
    play = emu.store.play_by_name("Score inbound companies")
    assert next(c for c in changes if c["segmentUuid"] == play["segmentUuid"])["updatedRecordsCount"] == 1
    sched = httpx.post(ctl + "/plays/schedule", headers=auth, json={"play": play["name"],
                                                                    "changeKinds": ["updated"]}).json()["batch"]
    assert sched["data"]["kind"] == "schedule" and sched["userUuid"] is None
    other = "00000000-0000-4000-8000-000000000042"
    tool = emu.store.tool_by_name("Enrich company")
    made = httpx.post(ctl + "/batches", headers=auth, json={"userUuid": other, "workflowUuid": tool["workflowUuid"],
                                                             "data": {"kind": "records", "records": [{"domain": "x.io"}]}})
    assert made.status_code == 200 and made.json()["batch"]["userUuid"] == other
    fault = httpx.post(ctl + "/faults", headers=auth, json={"next": {"target": "GET /v1/orchestration/plays/list",
                                                                    "kind": "server_error"}})
    assert fault.json()["pending"] == 1
    assert httpx.get(emu.api_url + "/orchestration/plays/list", headers=auth).status_code >= 500


def test_control_cli(emu: CargoEmulator) -> None:
    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cargo_gtm_emulator.cli", "ctl", "--url", emu.base_url, *args],
                              check=False, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "CARGO_EMULATOR_TOKEN": TOKEN})

    res = ctl("upsert-records", "contacts", json.dumps([{"_id": "ctc_0001", "title": "CEO"}]))
    assert res.returncode == 0, res.stderr
    assert emu.store.records[emu.store.model_by_slug("contacts")["uuid"]]["ctc_0001"]["title"] == "CEO"
    res = ctl("schedule-play", "Find decision makers", "--user-uuid", "u-2", "--change-kinds", "updated")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["batch"]["userUuid"] == "u-2"
    res = ctl("advance", "5")
    assert res.returncode == 0 and json.loads(res.stdout)["now"] > 0
    res = ctl("variant", "download_gzip=nope")
    assert res.returncode == 1 and "allowed" in res.stderr
