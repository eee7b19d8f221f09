"""Prove, from what Cargo holds, that a batch was created from a given ``data``.

Used by :mod:`cargo_gtm.running.reconcile` after an ambiguous create and by the Dagster layer
on re-execution after a crash. A candidate is *proven* only by its content, *undecided* while
that content cannot be read yet (e.g. its runs do not exist yet), and dropped otherwise.
Nothing here relies on who created a batch, on list order, or on ``data`` being echoed.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..download.fetch import fetch_with_retries
from ..errors import CargoError
from ..models import Batch, BatchStatus, RunList, SegmentFetchResult
from .reconcile import Match, data_matches, records_match

__all__ = ["ProofSource", "prove_candidates"]


class ProofSource(Protocol):
    """What proving a batch's content reads (:class:`~cargo_gtm.CargoClient` has it). A protocol, not the
    client class: the client calls into this module, this module never imports the client."""

    def list_runs(self, *, workflow_uuid: str | None = None, batch_uuid: str | None = None,
                  limit: int | None = None, offset: int | None = None) -> RunList: ...

    def fetch_segment(
        self, model_uuid: str, filter: Mapping[str, Any], *, sort: Sequence[Mapping[str, str]] | None = None,
        limit: int | None = None, fetching_limit: int | None = None, fetching_offset: int | None = None,
    ) -> SegmentFetchResult: ...

    def download_run_outputs_dataframe(self, workflow_uuid: str, *, batch_uuid: str | None = None,
                                       format: Any = "json") -> Any: ...

    def sleep(self, seconds: float) -> None: ...

logger = logging.getLogger("cargo_gtm")

def _echoes(batch: Batch) -> bool:
    return isinstance(batch.data, Mapping) and isinstance(batch.data.get("kind"), str)


def _runs_ready(batch: Batch) -> bool:
    """Whether the batch's runs exist (it is running or ended)."""
    return batch.runs_count > 0 or batch.is_terminal or batch.status == BatchStatus.CANCELLING


def prove_candidates(client: ProofSource, data: Mapping[str, Any], candidates: Sequence[Batch]) -> Match:
    """Split ``candidates`` into batches proven to hold ``data`` and ones that cannot be told yet."""
    match = Match()
    for batch in candidates:
        verdict = _verdict(client, data, batch)
        if verdict is True:
            match.proven.append(batch)
        elif verdict is None:
            match.undecided.append(batch)
    return match


def _verdict(client: ProofSource, data: Mapping[str, Any], batch: Batch) -> bool | None:
    """True: holds ``data``; False: does not; None: cannot tell yet."""
    if batch.status in (BatchStatus.CANCELLED, BatchStatus.CANCELLING):
        return False  # cancelled (e.g. by the user resolving an ambiguity): never adopted
    kind = data.get("kind")
    if _echoes(batch) and batch.data.get("kind") != kind:
        return False
    if kind == "records":
        return _records_verdict(client, list(data.get("records") or []), batch)
    if _fully_echoed(batch, data):
        return data_matches(batch.data, data)  # the full data is echoed: compare all of it
    if kind == "recordIds":
        return _ids_verdict(client, batch, [str(i) for i in data.get("ids") or []], subset=True)
    if kind == "filter":
        return _filter_verdict(client, data, batch)
    return None  # segment / change / file without an echo: nothing readable proves it


def _fully_echoed(batch: Batch, data: Mapping[str, Any]) -> bool:
    """Whether the batch echoes every key that was sent (so its ``data`` can be compared in full)."""
    sent_keys = [k for k, v in data.items() if k != "kind" and v is not None]
    return _echoes(batch) and bool(sent_keys) and all(k in batch.data for k in sent_keys)


def _run_record_ids(client: ProofSource, batch: Batch) -> list[str]:
    ids: list[str] = []
    offset = 0
    while True:
        page = client.list_runs(workflow_uuid=batch.workflow_uuid, batch_uuid=batch.uuid, limit=100,
                                offset=offset or None)
        ids.extend(str(r.record_id) for r in page.runs)
        offset += len(page.runs)
        if not page.runs or offset >= page.count:
            return ids


def _ids_verdict(client: ProofSource, batch: Batch, expected: list[str], *, subset: bool) -> bool | None:
    if not _runs_ready(batch):
        return None
    if batch.runs_count == 0:
        return False  # ended without runs: nothing to adopt (and nothing charged)
    try:
        got = _run_record_ids(client, batch)
    except CargoError as exc:
        logger.warning("Could not read the runs of candidate batch %s: %s", batch.uuid, exc)
        return None
    if len(got) < batch.runs_count:
        return None
    if subset:  # ids the model lacks are dropped by Cargo: every run must be one of the ids sent, once
        wanted = set(expected)
        return bool(got) and len(got) == len(set(got)) and set(got) <= wanted
    return Counter(got) == Counter(expected)


def _filter_verdict(client: ProofSource, data: Mapping[str, Any], batch: Batch) -> bool | None:
    if not _runs_ready(batch):
        return None
    try:
        fetched = client.fetch_segment(str(data.get("modelUuid")), data.get("filter") or {"conjonction": "and",
                                                                                          "groups": []},
                                       sort=data.get("sort"), limit=data.get("limit"))
    except CargoError as exc:
        logger.warning("Could not evaluate the filter to check candidate batch %s: %s", batch.uuid, exc)
        return None
    expected = [str(r.get("_id", r.get("id"))) for r in fetched.records]
    return _ids_verdict(client, batch, expected, subset=False)


def _records_verdict(client: ProofSource, records: list[Mapping[str, Any]], batch: Batch) -> bool | None:
    if not _runs_ready(batch):
        return None
    if batch.runs_count != len(records):
        return False
    try:  # a fresh URL each time: an expired or truncated file is not a verdict
        frame = fetch_with_retries(
            lambda: client.download_run_outputs_dataframe(batch.workflow_uuid, batch_uuid=batch.uuid, format="json"),
            attempts=3, sleep=client.sleep, what=f"Reading the runs' input of candidate batch {batch.uuid}")
    except CargoError as exc:
        logger.warning("Could not read the runs' input of candidate batch %s: %s", batch.uuid, exc)
        return None
    rows = frame.to_dict("records") if hasattr(frame, "to_dict") else list(frame)
    if len(rows) < len(records):
        return None  # not every run is listed yet
    if rows and "input" not in rows[0]:
        logger.warning("Cargo's run outputs for batch %s carry no 'input': its content cannot be checked.",
                       batch.uuid)
        return None
    inputs = [json.loads(r["input"]) if isinstance(r.get("input"), str) and r["input"] else r.get("input")
              for r in rows]
    return records_match(records, inputs)
