"""Output downloads built on the endpoints: a batch as a DataFrame or a Parquet file, per-run outputs.

:class:`Outputs` is a part of :class:`~cargo_gtm.CargoClient` (``client.outputs``; its methods are also the
client's own, ``client.download_batch_dataframe(...)``), built over any :class:`~.source.OutputSource`. The
fetching itself (a fresh URL per attempt, retries, integrity checks) is :mod:`.fetch`; the layouts
:mod:`.layout`; the statuses :mod:`.outcomes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..api import DownloadFormat
from ..models import Batch
from .batch_outputs import download_batch_outputs
from .dataframe import download_dataframe
from .parquet import ParquetResult, StrPath, download_to_parquet
from .source import OutputSource

__all__ = ["Outputs"]


class Outputs:
    """Downloads of a batch's or a workflow's outputs, over ``source`` (the client: ``client.outputs``)."""

    def __init__(self, source: OutputSource) -> None:
        self.source = source

    def download_batch_dataframe(
        self,
        uuid: str,
        output_node_slug: str | None = None,
        *,
        statuses: bool = True,
        records: Sequence[Mapping[str, Any]] | None = None,
        expected_rows: int | None = None,
        attempts: int = 5,
        batch: Batch | None = None,
    ) -> Any:
        """A finished batch's outputs as a pandas DataFrame: **one row per input record**.

        Rows come from the batch download (its input fields, then the output node's data spread into
        typed columns, whatever layout Cargo serves: CSV or JSON, gzipped or not, spread or one ``output``
        column). With ``statuses`` (the default) each row also gets ``_status`` (``success``, ``error``,
        ``filtered``, ``skipped``, ``cancelled``) and ``_error_message``, from ``runs/download-outputs`` for
        the runs that did not simply succeed; a record the file leaves out is restored from its run. See
        :mod:`cargo_gtm.download.outcomes` for why both sources are used.

        ``output_node_slug``: the node whose data to export; by default Cargo's (the last executed node).
        A slug is checked against the batch's own release (``releaseUuid``): one naming no node, or several,
        raises :class:`CargoInputError` before any download. ``records``: a tool batch's input as sent; rows
        are then put in that order and must number ``len(records)``. Otherwise the rows must number
        ``expected_rows`` (default with ``statuses``: the batch's ``runsCount``).

        A failed transfer (expired URL, truncated body, dropped connection) or a row count that does not
        match is retried with a freshly requested URL, after a short pause (0.5 s, doubling): partial data
        is never returned. The batch is already paid for, so a download is worth several tries (5).

        Raises:
            CargoDownloadError: still failing or not matching the record count after ``attempts`` tries.
            CargoInputError: ``output_node_slug`` matches no node, or several, of the batch's release.
        """
        return download_batch_outputs(self.source, uuid, output_node_slug, statuses=statuses, records=records,
                                      expected_rows=expected_rows, attempts=attempts, batch=batch)

    def download_batch_to_parquet(
        self,
        uuid: str,
        path: StrPath,
        output_node_slug: str | None = None,
        *,
        expected_rows: int | None = None,
        attempts: int = 3,
        column_types: Mapping[str, Any] | None = None,
        compression: str = "snappy",
    ) -> ParquetResult:
        """Stream a finished batch's outputs into the Parquet file ``path`` (needs ``pyarrow``).

        For outputs that outgrow memory: rows are written one row group at a time, so peak memory
        is bounded by the row-group size, not the output's. Retries as
        :meth:`download_batch_dataframe` does (a fresh URL per attempt; with ``expected_rows``, fewer
        rows count as partial); ``path`` is replaced atomically, only by a complete file. Column
        types come from the first row group; ``column_types`` pins some (``{"zip": "string"}``).
        See :mod:`cargo_gtm.download.parquet`.

        Raises:
            CargoDownloadError: still failing or partial after ``attempts`` tries.
        """
        source = self.source
        return download_to_parquet(
            lambda: source.get_batch_download_url(uuid, output_node_slug), path, expected_rows=expected_rows,
            attempts=attempts, column_types=column_types, compression=compression, timeout=source.timeout,
            batch_uuid=uuid, sleep=source.sleep,
        )

    def download_run_outputs_dataframe(
        self,
        workflow_uuid: str,
        *,
        batch_uuid: str | None = None,
        output_node_slug: str | None = None,
        format: DownloadFormat = "json",
    ) -> Any:
        """Download per-run outputs (optionally of one batch) into a pandas DataFrame: one row per run with
        Cargo's ``_`` run columns (``_status``, ``_error_message`` …), ``input`` (an object) and the output
        node's data spread into typed columns."""
        from .layout import is_object_column, spread_output

        url = self.source.get_run_outputs_download_url(
            workflow_uuid, output_node_slug=output_node_slug, format=format, batch_uuid=batch_uuid
        )
        frame = download_dataframe(url, format=format, timeout=self.source.timeout, batch_uuid=batch_uuid,
                                   http=self.source.download_http, sniff=True)
        return spread_output(frame) if is_object_column(frame) else frame
