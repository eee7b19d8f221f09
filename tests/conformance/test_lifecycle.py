"""Full lifecycle with the official client on a real-clock emulator: list plays, create a
batch, poll `get` until terminal, download, fetch the URL without a token, parse the CSV."""

from __future__ import annotations

from ._helpers import get_call, ok_result, parse_csv


def test_lifecycle(lifecycle_run):
    doc = lifecycle_run
    assert doc.get("fatal") is None, doc["fatal"]["stack"]
    ctx = doc["context"]
    assert ctx["play"]["name"] == "Score inbound companies"
    created = ok_result(doc, "batches.create")["batch"]
    assert created["status"] in {"pending", "syncing", "querying", "running"}
    batch = ctx["batch"]
    assert batch["uuid"] == created["uuid"]
    assert batch["status"] == "success", f"batch ended {batch['status']}: {batch.get('errorMessage')} (seen {ctx['statusesSeen']})"
    # statuses only move forward along the documented path
    order = ["pending", "syncing", "querying", "running", "success"]
    seen = ctx["statusesSeen"]
    assert all(s in order for s in seen), seen
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen), seen
    assert 0 < batch["runsCount"] <= 12, "filter batch with limit=12"
    assert batch["executedRunsCount"] == batch["runsCount"]
    assert batch["finishedAt"] is not None and batch["finishedAt"] >= batch["createdAt"]

    url = ok_result(doc, "batches.download")["url"]
    f = get_call(doc, "file.batch")
    assert f.get("status") == 200, f"plain GET {url} (no token) -> {f}"
    rows = parse_csv(f["text"])
    # CARGO-DOCS 1.2: one row per batch record, errored runs included (input fields, empty output)
    assert len(rows) == batch["runsCount"], (len(rows), batch)
    assert f["text"].startswith("_id,_title,"), f["text"][:80]
    assert rows, "a successful batch export has rows"
    header = set(rows[0])
    assert header, "CSV has a header"
    # one row per record: the record id column is unique and non-empty
    id_col = next((c for c in ("_id", "recordId", "id") if c in header), None)
    assert id_col is not None, f"no record id column in CSV header {sorted(header)}"
    ids = [r[id_col] for r in rows]
    assert all(ids) and len(set(ids)) == len(ids), ids
