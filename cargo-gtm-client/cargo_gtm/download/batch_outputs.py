"""A finished batch's outputs as one DataFrame: one row per input record, each with its status.

See :mod:`cargo_gtm.download.outcomes` for the sources (batch download for rows, ``runs/download-outputs``
for the runs that did not simply succeed) and the ``_status`` column; :mod:`~cargo_gtm.download.layout`
for the file layouts. Integrity: the rows must number exactly the batch's records (``runsCount``), or,
for a tool, the records the caller sent; a short or cut download is retried with a fresh URL and
partial data is never returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CargoDownloadError
from .dataframe import download_dataframe
from .fetch import fetch_with_retries
from .layout import is_object_column, json_rows, spread_output
from .outcomes import (
    NOT_SUCCEEDED,
    RunOutcome,
    align_inputs,
    apply_outcomes,
    check_output_slug,
    filter_stop_filter,
    outcome_from_row,
)
from .stream import open_download

if TYPE_CHECKING:
    from ..models import Batch
    from .source import OutputSource

__all__ = ["download_batch_outputs", "batch_run_outcomes", "EXPORT_LIMIT"]

logger = logging.getLogger("cargo_gtm")

#: ``runs/download-outputs`` serves at most this many runs per file (``tooManyRuns``, REFERENCE 3.5).
EXPORT_LIMIT = 10_000


def _release_nodes(client: OutputSource, batch: Batch) -> list[Any]:
    """The nodes of the release the batch ran (its own ``releaseUuid``, never the deployed one)."""
    if not batch.release_uuid:
        return []
    return list(client.get_release(batch.release_uuid).nodes)


def _read_rows(client: OutputSource, url: str, batch_uuid: str) -> list[dict[str, Any]]:
    """The JSON rows of a ``runs/download-outputs`` file (gzip and NDJSON handled; truncation raises)."""
    with open_download(url, timeout=client.timeout, http=client.download_http, batch_uuid=batch_uuid) as body:
        try:
            data = body.stream.read()
        except (ValueError, OSError) as exc:
            raise body.failure(exc, "json") from exc
        body.check_complete()
    try:
        return json_rows(data)
    except ValueError as exc:
        raise CargoDownloadError(f"Cargo's run export for batch {batch_uuid} could not be parsed as JSON: {exc}.",
                                 hint="re-download; if it persists, report the batch to Cargo.",
                                 batch_uuid=batch_uuid) from exc


def _export_runs(client: OutputSource, batch: Batch, statuses: Sequence[str], count: int,
                 executions_filter: Mapping[str, Any] | None, attempts: int) -> list[dict[str, Any]]:
    """Every ``runs/download-outputs`` row of the batch's runs with ``statuses`` (``count`` of them),
    10,000 per file; each file retried with a fresh URL; the rows must be ``count`` distinct runs."""
    rows: dict[str, dict[str, Any]] = {}
    for offset in range(0, count, EXPORT_LIMIT):
        def one_file(offset: int = offset) -> list[dict[str, Any]]:
            url = client.get_run_outputs_download_url(
                batch.workflow_uuid, batch_uuid=batch.uuid, format="json", statuses=list(statuses),
                executions_filter=executions_filter, limit=EXPORT_LIMIT if count > EXPORT_LIMIT else None,
                offset=offset or None)
            return _read_rows(client, url, batch.uuid)

        page = fetch_with_retries(one_file, attempts=attempts, sleep=client.sleep,
                                  what=f"Run export of batch {batch.uuid}")
        for row in page:
            rows[str(row.get("_uuid") or len(rows))] = row
    if len(rows) != count:
        raise CargoDownloadError(
            f"Cargo's run export for batch {batch.uuid} holds {len(rows)} runs with status {'/'.join(statuses)} but "
            f"runs/count says {count}: the run statuses are incomplete.", hint="re-run the step (it attaches to "
            "this batch and downloads again); if it persists, report the batch to Cargo.", batch_uuid=batch.uuid)
    return list(rows.values())


def batch_run_outcomes(client: OutputSource, batch: Batch, nodes: Sequence[Any] | None = None,
                       attempts: int = 5) -> list[RunOutcome]:
    """The batch's runs that did not simply succeed (errored, skipped, cancelled, stopped by a filter).

    One ``runs/count`` call (two when the release has ``filter`` nodes); ``runs/download-outputs`` files only
    when some run did not succeed.
    """
    nodes = _release_nodes(client, batch) if nodes is None else nodes
    outcomes: dict[str, RunOutcome] = {}
    filtered = filter_stop_filter(nodes)
    if filtered is not None:
        statuses = ["success", "skipped"]
        count = client.count_runs(workflow_uuid=batch.workflow_uuid, batch_uuid=batch.uuid, statuses=statuses,
                                  executions_filter=filtered)
        if count:
            for row in _export_runs(client, batch, statuses, count, filtered, attempts):
                outcome = outcome_from_row(row, filtered=True)
                outcomes[outcome.run_uuid or outcome.record_id] = outcome
    count = client.count_runs(workflow_uuid=batch.workflow_uuid, batch_uuid=batch.uuid, statuses=NOT_SUCCEEDED)
    if count:
        for row in _export_runs(client, batch, NOT_SUCCEEDED, count, None, attempts):
            outcome = outcome_from_row(row)
            outcomes.setdefault(outcome.run_uuid or outcome.record_id, outcome)
    return list(outcomes.values())


def _file_frame(client: OutputSource, uuid: str, output_node_slug: str | None) -> Any:
    """One download of the batch file, its layout normalized (output objects spread into columns)."""
    url = client.get_batch_download_url(uuid, output_node_slug)
    frame = download_dataframe(url, format="csv", timeout=client.timeout, batch_uuid=uuid,
                               http=client.download_http, sniff=True)
    return spread_output(frame) if is_object_column(frame) else frame


def _outcomes(client: OutputSource, uuid: str, output_node_slug: str | None, statuses: bool,
              batch: Batch | None, attempts: int) -> tuple[list[RunOutcome], Batch | None]:
    """The runs that did not simply succeed (with ``statuses``), after checking ``output_node_slug``
    against the batch's release; and the batch, when it had to be read."""
    if not (statuses or output_node_slug):
        return [], batch
    batch = batch if batch is not None and batch.is_terminal else client.get_batch(uuid)
    nodes = _release_nodes(client, batch)
    if output_node_slug and nodes:
        check_output_slug(nodes, output_node_slug, str(batch.release_uuid), uuid)
    return (batch_run_outcomes(client, batch, nodes, attempts=attempts) if statuses else []), batch


def _checked_rows(frame: Any, uuid: str, expected_rows: int | None) -> Any:
    """``frame`` when it has ``expected_rows`` rows; otherwise the download was partial (or inconsistent)."""
    if expected_rows is None or len(frame) == expected_rows:
        return frame
    what = "partial" if len(frame) < expected_rows else "inconsistent (more rows than records)"
    raise CargoDownloadError(
        f"Cargo outputs for batch {uuid} account for {len(frame)} rows but the batch has {expected_rows} "
        f"input records: the download is {what}.", hint="re-run; if it persists, report the batch to Cargo.",
        batch_uuid=uuid)


def download_batch_outputs(
    client: OutputSource,
    uuid: str,
    output_node_slug: str | None = None,
    *,
    statuses: bool = True,
    records: Sequence[Mapping[str, Any]] | None = None,
    expected_rows: int | None = None,
    attempts: int = 5,
    batch: Batch | None = None,
) -> Any:
    """See :meth:`CargoClient.download_batch_dataframe`."""
    outcomes, batch = _outcomes(client, uuid, output_node_slug, statuses, batch, attempts)
    if statuses and expected_rows is None and batch is not None:
        expected_rows = len(records) if records is not None else batch.runs_count

    def one_download() -> Any:
        frame = _file_frame(client, uuid, output_node_slug)
        if statuses:
            frame, notes = apply_outcomes(frame, outcomes, records)
            for note in notes:
                logger.warning("Batch %s: %s", uuid, note)
            if records is not None and not notes:
                frame = align_inputs(frame, records)
        return _checked_rows(frame, uuid, expected_rows)

    def give_up(last: CargoDownloadError) -> CargoDownloadError:
        return CargoDownloadError(
            f"Downloading Cargo outputs for batch {uuid} failed {attempts} time(s), each with a fresh URL; "
            f"last: {last.message} The batch itself finished and its credits are spent.",
            hint="re-execute the step later (a Dagster re-execution attaches to this batch instead of paying for "
            "a new one); if downloads keep failing, report the batch UUID to Cargo.", batch_uuid=uuid)

    return fetch_with_retries(one_download, attempts=attempts, sleep=client.sleep,
                              what=f"Download of batch {uuid}", give_up=give_up)
