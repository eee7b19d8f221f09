"""``CargoClient``: a typed Python client for Cargo's REST API (no Dagster import).

Example:
    .. code-block:: python

        from dagster_cargo.client import CargoClient, filter_data

        with CargoClient(api_token=os.environ["CARGO_API_TOKEN"]) as cargo:
            play = cargo.find_play("Score inbound companies")
            batch = cargo.create_batch(play.workflow_uuid, filter_data(play.model_uuid, limit=50))
            batch = cargo.wait_for_batch(batch.uuid, timeout=1800)
            frame = cargo.download_batch_dataframe(batch.uuid)
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

import httpx

from .busy import BusyPolicy, send_when_free
from .clock import SYSTEM_CLOCK, Clock
from .download import download_dataframe
from .errors import CargoError, CargoInputError, CargoNotFoundError
from .models import (
    Batch,
    Change,
    Dataset,
    Model,
    Play,
    Release,
    Run,
    RunList,
    RunMetric,
    Segment,
    SegmentFetchResult,
    Subscription,
    Tool,
    UsageMetric,
    User,
    Workflow,
    Workspace,
)
from .parquet import ParquetResult, StrPath, download_to_parquet
from .proof import prove_candidates
from .reconcile import LIST_PAGE, CreateIntent, create_batch_once, resolve_created, watermark_of
from .transport import DEFAULT_BASE_URL, RetryPolicy, Transport
from .waiting import BatchProgress, PollingGuidance, wait_for_batches

__all__ = ["CargoClient"]

logger = logging.getLogger("dagster_cargo.client")

DownloadFormat = Literal["csv", "json"]


def _date_param(value: str | date | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values (the official client omits undefined keys)."""
    return {k: v for k, v in mapping.items() if v is not None}


class CargoClient:
    """Typed client for Cargo's API.

    Args:
        api_token: a Cargo API token (Settings → API Tokens). Never logged or shown.
        workspace_uuid: sent as ``selected-workspace-uuid`` when given.
        base_url: API host; ``/v1`` is appended as the official client does.
        timeout: per-request read timeout in seconds.
        connect_timeout: TCP connect timeout in seconds.
        retry: retry policy for transient failures of safe calls.
        allow_insecure_http: allow ``http://`` to a non-loopback host (off: the token
            would travel in clear text).
        http: an ``httpx.Client`` to reuse (tests, proxies); its auth is never used.
        busy: how long a batch create waits out ``concurrencyLimitReached`` (:class:`BusyPolicy`).
        clock: monotonic time and sleep for every wait (polling, retries, download retries); tests pass a
            :class:`~dagster_cargo.client.clock.ManualClock`. ``sleep=`` (older) overrides only the sleeping.
    """

    def __init__(
        self,
        api_token: str,
        *,
        workspace_uuid: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] | None = None,
        busy: BusyPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        #: how long a create waits out Cargo's ``concurrencyLimitReached`` (:mod:`.busy`)
        self.busy_policy = busy or BusyPolicy()
        #: where those waits are reported (default: the ``dagster_cargo.client`` logger)
        self.busy_report: Callable[[str], None] | None = None
        #: the clock every wait goes through
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._transport = Transport(
            api_token=api_token,
            base_url=base_url,
            workspace_uuid=workspace_uuid,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retry=retry or RetryPolicy(),
            allow_insecure_http=allow_insecure_http,
            http=http,
            sleep=sleep,
            clock=self.clock,
        )
        self.base_url = base_url
        self.workspace_uuid = workspace_uuid
        self.timeout = timeout
        self._download_client: httpx.Client | None = None
        self._download_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._model_columns: dict[str, dict[str, str]] = {}
        self._required_fields: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"CargoClient(base_url={self.base_url!r}, workspace_uuid={self.workspace_uuid!r})"

    def __enter__(self) -> CargoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._transport.close()
        if self._download_client is not None:
            self._download_client.close()
            self._download_client = None

    def _downloads_http(self) -> httpx.Client:
        """One plain HTTP client for presigned download URLs, shared by every download.

        Separate from the API client so no Cargo header (above all the token) can reach the
        storage host; shared because creating a client (its TLS context) costs more than
        downloading a small output, which matters when a fan-out downloads 50 of them.
        """
        with self._download_lock:
            if self._download_client is None:
                self._download_client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=10.0), follow_redirects=True)
            return self._download_client

    def sleep(self, seconds: float) -> None:
        """Wait through the client's clock (or its older ``sleep=`` override)."""
        self._transport._sleep(seconds)

    @property
    def request_count(self) -> int:
        """HTTP requests sent to the API so far (retries included)."""
        return self._transport.request_count

    def _get(self, endpoint: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return self._transport.request("GET", endpoint, params=params, idempotent=True, **kw)

    def _post(self, endpoint: str, payload: Any = None, *, idempotent: bool, **kw: Any) -> Any:
        return self._transport.request("POST", endpoint, payload=payload, idempotent=idempotent, **kw)

    # -- workflows, plays, tools ---------------------------------------------------------
    def list_workflows(self) -> list[Workflow]:
        """``GET /orchestration/workflows/list``."""
        body = self._get("/orchestration/workflows/list")
        return [Workflow.model_validate(w) for w in body["workflows"]]

    def list_plays(
        self,
        *,
        is_enabled: bool | None = None,
        model_uuid: str | None = None,
        segment_uuid: str | None = None,
        schedule_type: str | None = None,
    ) -> list[Play]:
        """``GET /orchestration/plays/list``."""
        params = _compact(
            {"isEnabled": is_enabled, "modelUuid": model_uuid, "segmentUuid": segment_uuid,
             "scheduleType": schedule_type}
        )
        body = self._get("/orchestration/plays/list", params)
        return [Play.model_validate(p) for p in body["plays"]]

    def get_play(self, uuid: str) -> Play:
        """``GET /orchestration/plays/{uuid}``."""
        return Play.model_validate(self._get(f"/orchestration/plays/{uuid}")["play"])

    def list_tools(self) -> list[Tool]:
        """``GET /orchestration/tools/list``."""
        body = self._get("/orchestration/tools/list")
        return [Tool.model_validate(t) for t in body["tools"]]

    def get_tool(self, uuid: str) -> Tool:
        """``GET /orchestration/tools/{uuid}``."""
        return Tool.model_validate(self._get(f"/orchestration/tools/{uuid}")["tool"])

    def find_play(self, name_or_uuid: str) -> Play:
        """The play with this exact name or UUID; the error suggests close names."""
        plays = self.list_plays()
        return _find_by_name(plays, name_or_uuid, "play")

    def find_tool(self, name_or_uuid: str) -> Tool:
        """The tool with this exact name or UUID; the error suggests close names."""
        return _find_by_name(self.list_tools(), name_or_uuid, "tool")

    # -- releases ------------------------------------------------------------------------
    def get_release(self, uuid: str) -> Release:
        """``GET /orchestration/releases/{uuid}``."""
        return Release.model_validate(self._get(f"/orchestration/releases/{uuid}")["release"])

    def get_deployed_release(self, workflow_uuid: str) -> Release:
        """``GET /orchestration/releases/deployed?workflowUuid=`` (to find output node slugs)."""
        body = self._get("/orchestration/releases/deployed", {"workflowUuid": workflow_uuid})
        return Release.model_validate(body["release"])

    # -- batches -------------------------------------------------------------------------
    def create_batch(
        self,
        workflow_uuid: str,
        data: Mapping[str, Any],
        *,
        release_uuid: str | None = None,
        reconcile: bool = True,
        intent: CreateIntent | None = None,
        on_intent: Callable[[CreateIntent], None] | None = None,
        claimed: Callable[[], set[str]] | None = None,
        attempt_key: str | None = None,
    ) -> Batch:
        """``POST /orchestration/batches``: start a batch. **Spends credits.**

        The call itself is never retried blindly: only a refused connection or a 429 (the
        request provably not processed) are. Before sending, the workflow's batches are listed
        (every page) to take a watermark (:meth:`create_intent`); ``on_intent`` receives it
        before the request leaves, to record it durably. After an *ambiguous* failure (a
        timeout or dropped connection once the request was sent, or a 5xx) the batches created
        since are checked by content and the one provably made from ``data`` is adopted, so
        exactly one batch exists (see :mod:`dagster_cargo.client.reconcile`;
        ``reconcile=False`` raises instead). ``intent`` reuses a watermark already taken (several
        creates of one workflow); ``claimed`` returns batches other creates made, never adopted.
        """
        payload = _compact({"workflowUuid": workflow_uuid, "releaseUuid": release_uuid, "data": dict(data)})

        def post() -> Batch:
            body = self._post("/orchestration/batches", payload, idempotent=False)
            return Batch.model_validate(body["batch"])

        def send() -> Batch:  # concurrencyLimitReached created nothing: waited out, then sent again
            return send_when_free(post, what=f"batch of workflow {workflow_uuid}", sleep=self.sleep,
                                  policy=self.busy_policy, report=self.busy_report)

        if not reconcile:
            return send()
        if intent is None:
            intent = self.create_intent(workflow_uuid, attempt_key=attempt_key)
        if on_intent is not None:
            on_intent(intent)
        return create_batch_once(
            send=send,
            list_all=lambda: self.list_all_batches(workflow_uuid),
            check=lambda candidates: prove_candidates(self, payload["data"], candidates),
            intent=intent,
            sleep=self.sleep,
            claimed=claimed,
        )

    def create_intent(self, workflow_uuid: str, *, attempt_key: str | None = None,
                      listed: Sequence[Batch] | None = None) -> CreateIntent:
        """The :class:`CreateIntent` of a create about to be sent: the workflow's batch watermark now.

        ``listed``: the workflow's batches, listed in full (:meth:`list_all_batches`) a moment ago, to take
        the watermark from instead of listing them again. An earlier watermark is safe: batches created
        since are only more candidates, each proven by content before any is adopted.
        """
        from datetime import timezone

        batches = listed if listed is not None else self.list_all_batches(workflow_uuid)
        watermark, at = watermark_of(batches)
        return CreateIntent(workflow_uuid=workflow_uuid, sent_at=datetime.now(timezone.utc).isoformat(),
                            watermark=watermark, at_watermark=at, attempt_key=attempt_key)

    def find_created_batch(self, data: Mapping[str, Any], intent: CreateIntent, *,
                           claimed: Callable[[], set[str]] | None = None,
                           settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0)) -> Batch | None:
        """The batch an earlier create of ``data`` (recorded as ``intent``) made, proven by content.

        ``None`` when it made none (then sending again is safe). Raises
        :class:`~dagster_cargo.client.reconcile.CargoAmbiguousCreateError` naming the candidates
        when it cannot be told which one it made.
        """
        return resolve_created(
            list_all=lambda: self.list_all_batches(intent.workflow_uuid),
            check=lambda candidates: prove_candidates(self, data, candidates),
            intent=intent, sleep=self.sleep, settle_delays=settle_delays, claimed=claimed,
        )

    def list_all_batches(self, workflow_uuid: str, *, max_pages: int = 1000) -> list[Batch]:
        """Every batch of the workflow, whatever order Cargo lists them in (pages of ``LIST_PAGE``).

        Raises :class:`CargoError` past ``max_pages`` pages rather than return a partial list.
        """
        seen: dict[str, Batch] = {}
        for n in range(max_pages):
            batches = self.list_batches(workflow_uuids=[workflow_uuid], limit=LIST_PAGE, offset=n * LIST_PAGE or None)
            for batch in batches:
                seen.setdefault(batch.uuid, batch)
            if len(batches) < LIST_PAGE:
                return list(seen.values())
        raise CargoError(
            f"Workflow {workflow_uuid} has more than {LIST_PAGE * max_pages} batches; cannot list them all to "
            "check which one a create made. Next step: archive old batches in Cargo."
        )

    def create_batches(
        self,
        workflow_uuid: str,
        datas: Sequence[Mapping[str, Any]],
        *,
        max_workers: int = 8,
        on_created: Callable[[int, Batch], None] | None = None,
        on_intent: Callable[[int, CreateIntent], None] | None = None,
        attempt_keys: Sequence[str | None] | None = None,
        listed: Sequence[Batch] | None = None,
    ) -> list[Batch | CargoError]:
        """Create one batch per item of ``datas`` for one workflow, ``max_workers`` at a time.

        **Spends credits.** Each create keeps :meth:`create_batch`'s exactly-once guarantee:
        the workflow's batches are listed once for all of them (one watermark), and a create
        whose response is lost never adopts a batch a sibling create is known to have made.
        ``on_intent(index, intent)`` is called for each create before it is sent;
        ``on_created(index, batch)`` in the calling thread as each batch is created (in
        completion order), so the caller can record it at once. Returns, in input order, the
        batch or the :class:`CargoError` each create ended with; every create is attempted
        even if others fail. ``listed``: see :meth:`create_intent`.
        """
        from concurrent.futures import ThreadPoolExecutor, as_completed

        if not datas:
            return []
        keys = list(attempt_keys) if attempt_keys is not None else [None] * len(datas)
        base = self.create_intent(workflow_uuid, listed=listed)
        intents = [CreateIntent(workflow_uuid=workflow_uuid, sent_at=base.sent_at, watermark=base.watermark,
                                at_watermark=base.at_watermark, attempt_key=keys[i]) for i in range(len(datas))]
        if on_intent is not None:
            for i, intent in enumerate(intents):
                on_intent(i, intent)  # all recorded before the first request leaves
        made: set[str] = set()
        results: list[Batch | CargoError | None] = [None] * len(datas)

        def one(i: int) -> Batch:
            batch = self.create_batch(workflow_uuid, datas[i], intent=intents[i], claimed=made.copy)
            made.add(batch.uuid)
            return batch

        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(datas))),
                                thread_name_prefix="cargo-create") as pool:
            futures = {pool.submit(one, i): i for i in range(len(datas))}
            reported: set[int] = set()

            def report(future: Any) -> None:
                i = futures[future]
                reported.add(i)
                try:
                    results[i] = batch = future.result()
                except CargoError as exc:
                    results[i] = exc
                    return
                if on_created is not None:
                    on_created(i, batch)

            try:
                for future in as_completed(futures):
                    report(future)
            except BaseException:
                _report_in_flight(futures, reported, report)
                raise
        return [r for r in results if r is not None]

    def get_batch(self, uuid: str) -> Batch:
        """``GET /orchestration/batches/{uuid}``."""
        return Batch.model_validate(self._get(f"/orchestration/batches/{uuid}", batch_uuid=uuid)["batch"])

    def list_batches(
        self,
        *,
        workflow_uuids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        release_uuid: str | None = None,
        has_runs: bool | None = None,
        is_finished: bool | None = None,
        included_data_kinds: Sequence[str] | None = None,
        excluded_data_kinds: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Batch]:
        """``GET /orchestration/batches/list`` (no total count is returned)."""
        params = _compact(
            {
                "workflowUuids": list(workflow_uuids) if workflow_uuids else None,
                "releaseUuid": release_uuid,
                "statuses": [str(s) for s in statuses] if statuses else None,
                "hasRuns": has_runs,
                "isFinished": is_finished,
                "includedDataKinds": list(included_data_kinds) if included_data_kinds else None,
                "excludedDataKinds": list(excluded_data_kinds) if excluded_data_kinds else None,
                "limit": limit,
                "offset": offset,
            }
        )
        body = self._get("/orchestration/batches/list", params)
        return [Batch.model_validate(b) for b in body["batches"]]

    def cancel_batch(self, uuid: str) -> None:
        """``POST /orchestration/batches/{uuid}/cancel`` (no body)."""
        self._transport.request(
            "POST", f"/orchestration/batches/{uuid}/cancel", send_body=False, idempotent=True, batch_uuid=uuid
        )

    def get_batch_download_url(self, uuid: str, output_node_slug: str | None = None) -> str:
        """``POST /orchestration/batches/{uuid}/download`` → a URL that needs no token."""
        payload = _compact({"outputNodeSlug": output_node_slug})
        body = self._post(
            f"/orchestration/batches/{uuid}/download", payload, idempotent=True, send_body=True, batch_uuid=uuid
        )
        return str(body["url"])

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
        :mod:`dagster_cargo.client.outcomes` for why both sources are used.

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
        from .batch_outputs import download_batch_outputs

        return download_batch_outputs(self, uuid, output_node_slug, statuses=statuses, records=records,
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
        See :mod:`dagster_cargo.client.parquet`.

        Raises:
            CargoDownloadError: still failing or partial after ``attempts`` tries.
        """
        return download_to_parquet(
            lambda: self.get_batch_download_url(uuid, output_node_slug), path, expected_rows=expected_rows,
            attempts=attempts, column_types=column_types, compression=compression, timeout=self.timeout,
            batch_uuid=uuid, sleep=self.sleep,
        )

    # -- runs ----------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        workflow_uuid: str | None = None,
        batch_uuid: str | None = None,
        statuses: Sequence[str] | None = None,
        is_finished: bool | None = None,
        created_after: str | datetime | None = None,
        created_before: str | datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
        executions_filter: Mapping[str, Any] | None = None,
    ) -> RunList:
        """``POST /orchestration/runs/list`` → runs and the total count."""
        payload = _compact(
            {
                "workflowUuid": workflow_uuid,
                "batchUuid": batch_uuid,
                "statuses": [str(s) for s in statuses] if statuses else None,
                "isFinished": is_finished,
                "executionsFilter": dict(executions_filter) if executions_filter else None,
                "createdAfter": _date_param(created_after),
                "createdBefore": _date_param(created_before),
                "limit": limit,
                "offset": offset,
            }
        )
        return RunList.model_validate(
            self._post("/orchestration/runs/list", payload, idempotent=True, batch_uuid=batch_uuid)
        )

    def count_runs(
        self,
        *,
        workflow_uuid: str | None = None,
        batch_uuid: str | None = None,
        statuses: Sequence[str] | None = None,
        is_finished: bool | None = None,
        executions_filter: Mapping[str, Any] | None = None,
    ) -> int:
        """``POST /orchestration/runs/count``."""
        payload = _compact(
            {"workflowUuid": workflow_uuid, "batchUuid": batch_uuid,
             "statuses": [str(s) for s in statuses] if statuses else None, "isFinished": is_finished,
             "executionsFilter": dict(executions_filter) if executions_filter else None}
        )
        return int(self._post("/orchestration/runs/count", payload, idempotent=True)["count"])

    def create_run(self, workflow_uuid: str, data: Mapping[str, Any], *, release_uuid: str | None = None) -> Run:
        """``POST /orchestration/runs``: one record through a tool (plays answer ``playNotCompatible``).

        Spends credits, so it is never retried after an ambiguous failure (see :mod:`.single_run` when present).
        """
        payload = _compact({"workflowUuid": workflow_uuid, "releaseUuid": release_uuid, "data": dict(data)})
        return Run.model_validate(self._post("/orchestration/runs", payload, idempotent=False)["run"])

    def get_run(self, uuid: str) -> Run:
        """``GET /orchestration/runs/{uuid}`` (the run only)."""
        return Run.model_validate(self._get(f"/orchestration/runs/{uuid}")["run"])

    def get_run_metrics(
        self,
        workflow_uuid: str,
        *,
        batch_uuid: str | None = None,
        release_uuid: str | None = None,
        created_after: str | datetime | None = None,
        created_before: str | datetime | None = None,
    ) -> list[RunMetric]:
        """``POST /orchestration/runs/metrics``: per-node executions and credits."""
        payload = _compact(
            {"workflowUuid": workflow_uuid, "batchUuid": batch_uuid, "releaseUuid": release_uuid,
             "createdAfter": _date_param(created_after), "createdBefore": _date_param(created_before)}
        )
        body = self._post("/orchestration/runs/metrics", payload, idempotent=True, batch_uuid=batch_uuid)
        return [RunMetric.model_validate(m) for m in body["runMetrics"]]

    def get_run_outputs_download_url(
        self,
        workflow_uuid: str,
        *,
        output_node_slug: str | None = None,
        format: DownloadFormat = "csv",
        batch_uuid: str | None = None,
        statuses: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        executions_filter: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /orchestration/runs/download-outputs`` → a URL (CSV or JSON), one row per run."""
        payload = _compact(
            {"workflowUuid": workflow_uuid, "outputNodeSlug": output_node_slug, "format": format,
             "batchUuid": batch_uuid, "statuses": [str(s) for s in statuses] if statuses else None,
             "executionsFilter": dict(executions_filter) if executions_filter else None,
             "limit": limit, "offset": offset}
        )
        body = self._post("/orchestration/runs/download-outputs", payload, idempotent=True, batch_uuid=batch_uuid)
        return str(body["url"])

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

        url = self.get_run_outputs_download_url(
            workflow_uuid, output_node_slug=output_node_slug, format=format, batch_uuid=batch_uuid
        )
        frame = download_dataframe(url, format=format, timeout=self.timeout, batch_uuid=batch_uuid,
                                   http=self._downloads_http(), sniff=True)
        return spread_output(frame) if is_object_column(frame) else frame

    # -- waiting -------------------------------------------------------------------------
    def wait_for_batch(
        self,
        uuid: str,
        *,
        timeout: float | None = 3600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 30.0,
        on_progress: Callable[[BatchProgress], None] | None = None,
        raise_on_failure: bool = True,
        guidance: PollingGuidance | None = None,
    ) -> Batch:
        """Poll until the batch is terminal and return it.

        Polling stays within Cargo's guidance by default (see :class:`~.waiting.PollingGuidance`).

        Raises:
            CargoBatchFailedError / CargoBatchCancelledError: when ``raise_on_failure``.
            CargoWaitTimeoutError: past ``timeout`` seconds (the batch is *not* cancelled).
        """
        return self.wait_for_batches(
            [uuid], timeout=timeout, poll_interval=poll_interval, max_poll_interval=max_poll_interval,
            on_progress=on_progress, raise_on_failure=raise_on_failure, guidance=guidance,
        )[uuid]

    def wait_for_batches(
        self,
        uuids: Iterable[str],
        *,
        timeout: float | None = 3600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 30.0,
        on_progress: Callable[[BatchProgress], None] | None = None,
        raise_on_failure: bool = True,
        initial: Mapping[str, Batch] | None = None,
        guidance: PollingGuidance | None = None,
    ) -> dict[str, Batch]:
        """Wait for several batches in one polling loop; see :func:`wait_for_batches`."""
        return wait_for_batches(
            self.get_batch, list(uuids), timeout=timeout, poll_interval=poll_interval,
            max_poll_interval=max_poll_interval, on_progress=on_progress,
            raise_on_failure=raise_on_failure, sleep=self.sleep, clock=self.clock.monotonic, initial=initial,
            fetch_many=self._list_many, guidance=guidance,
        )

    def _list_many(self, known: Sequence[Batch]) -> dict[str, Batch]:
        """Fresh states of several batches: one list call per workflow with two or more of them.

        Batches are listed newest first, so a page of at least twice as many as are wanted
        (50 at the least, 200 at most) normally holds them all; any it misses are left to
        the caller (polled one by one).
        """
        by_workflow: dict[str, set[str]] = {}
        for batch in known:
            by_workflow.setdefault(batch.workflow_uuid, set()).add(batch.uuid)
        fresh: dict[str, Batch] = {}
        for workflow_uuid, wanted in by_workflow.items():
            if len(wanted) < 2:
                continue
            limit = min(max(2 * len(wanted), 50), 200)
            fresh.update({b.uuid: b for b in self.list_batches(workflow_uuids=[workflow_uuid], limit=limit)
                          if b.uuid in wanted})
        return fresh

    # -- segmentation --------------------------------------------------------------------
    def list_segments(self) -> list[Segment]:
        """``GET /segmentation/segments/list``."""
        return [Segment.model_validate(s) for s in self._get("/segmentation/segments/list")["segments"]]

    def get_segment(self, uuid: str) -> Segment:
        """``GET /segmentation/segments/{uuid}``."""
        return Segment.model_validate(self._get(f"/segmentation/segments/{uuid}")["segment"])

    def fetch_segment(
        self,
        model_uuid: str,
        filter: Mapping[str, Any],
        *,
        sort: Sequence[Mapping[str, str]] | None = None,
        limit: int | None = None,
        fetching_limit: int | None = None,
        fetching_offset: int | None = None,
    ) -> SegmentFetchResult:
        """``POST /segmentation/segments/fetch``: evaluate a filter against a model."""
        from .inputs import validate_filter

        validate_filter(filter)
        payload = _compact(
            {"modelUuid": model_uuid, "filter": dict(filter), "sort": [dict(s) for s in sort] if sort else None,
             "limit": limit, "fetchingLimit": fetching_limit, "fetchingOffset": fetching_offset}
        )
        return SegmentFetchResult.model_validate(
            self._post("/segmentation/segments/fetch", payload, idempotent=True)
        )

    def list_changes(
        self,
        *,
        segment_uuid: str | None = None,
        not_empty: bool | None = None,
        has_records: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Change]:
        """``GET /segmentation/changes/list``."""
        params = _compact(
            {"segmentUuid": segment_uuid, "notEmpty": not_empty, "hasRecords": has_records,
             "limit": limit, "offset": offset}
        )
        return [Change.model_validate(c) for c in self._get("/segmentation/changes/list", params)["changes"]]

    # -- storage -------------------------------------------------------------------------
    def list_models(self) -> list[Model]:
        """``GET /storage/models/list``."""
        return [Model.model_validate(m) for m in self._get("/storage/models/list")["models"]]

    def get_model(self, uuid: str) -> Model:
        """``GET /storage/models/{uuid}``."""
        return Model.model_validate(self._get(f"/storage/models/{uuid}")["model"])

    def list_datasets(self) -> list[Dataset]:
        """``GET /storage/datasets/list``."""
        return [Dataset.model_validate(d) for d in self._get("/storage/datasets/list")["datasets"]]

    def model_columns(self, model_uuid: str) -> dict[str, str]:
        """The model's column slugs and types (``GET /storage/models/{uuid}`` once per client, then cached)."""
        with self._cache_lock:
            cached = self._model_columns.get(model_uuid)
        if cached is not None:
            return cached
        model = self.get_model(model_uuid)
        columns = {c.slug: str(c.type.value if hasattr(c.type, "value") else c.type)
                   for c in [*model.columns, *model.additional_columns]}
        with self._cache_lock:
            self._model_columns[model_uuid] = columns
        return columns

    def required_form_fields(self, workflow_uuid: str) -> list[str]:
        """Slugs of the deployed release's required form fields (fetched once per client, then cached)."""
        with self._cache_lock:
            cached = self._required_fields.get(workflow_uuid)
        if cached is not None:
            return cached
        try:
            release = self.get_deployed_release(workflow_uuid)
        except CargoNotFoundError:
            return []
        required = [f.slug for f in release.form_fields or [] if f.is_required]
        with self._cache_lock:
            self._required_fields[workflow_uuid] = required
        return required

    # -- billing and workspace -----------------------------------------------------------
    def get_usage_metrics(
        self,
        from_: str | date | datetime,
        to: str | date | datetime,
        *,
        group_by: str | None = None,
        unit: str | None = None,
        workflow_uuid: str | None = None,
        model_uuid: str | None = None,
        connector_uuid: str | None = None,
        integration_slug: str | None = None,
    ) -> list[UsageMetric]:
        """``GET /billing/usage/metrics`` (admin token required by Cargo)."""
        params = _compact(
            {"from": _date_param(from_), "to": _date_param(to), "groupBy": group_by, "unit": unit,
             "workflowUuid": workflow_uuid, "modelUuid": model_uuid, "connectorUuid": connector_uuid,
             "integrationSlug": integration_slug}
        )
        return [UsageMetric.model_validate(m) for m in self._get("/billing/usage/metrics", params)["metrics"]]

    def get_subscription(self) -> Subscription:
        """``GET /billing/subscriptions``: the plan and credit balance."""
        return Subscription.model_validate(self._get("/billing/subscriptions")["subscription"])

    def get_current_user(self) -> User:
        """``GET /userManagement/users/current``: the user the token acts as (sent without the
        workspace header, like the official client)."""
        body = self._get("/userManagement/users/current", without_workspace=True)
        return User.model_validate(body["user"])

    def get_current_workspace(self) -> Workspace:
        """``GET /workspaceManagement/workspaces/current``."""
        return Workspace.model_validate(self._get("/workspaceManagement/workspaces/current")["workspace"])


def _report_in_flight(futures: Mapping[Any, int], reported: set[int], report: Callable[[Any], None]) -> None:
    """After a stop (e.g. the run was terminated): send nothing more, and still report the creates already
    in flight, so the caller can record and cancel those batches."""
    for future in futures:
        future.cancel()
    for future, i in futures.items():
        if i not in reported and not future.cancelled():
            try:
                future.exception()  # waits for it
                report(future)
            except BaseException:  # noqa: S110 - reporting must not mask the stop
                pass


def _find_by_name(items: Sequence[Any], name_or_uuid: str, what: str) -> Any:
    """The item with this UUID or exact name; a case-only match only when it is the only one (logged)."""
    exact = [item for item in items if item.uuid == name_or_uuid or item.name == name_or_uuid]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise CargoInputError(
            f"{len(exact)} Cargo {what}s are named {name_or_uuid!r} ({', '.join(i.uuid for i in exact)}). "
            f"Next step: pass the {what}'s UUID instead of its name."
        )
    folded = [item for item in items if item.name.casefold() == name_or_uuid.casefold()]
    if len(folded) == 1:
        logger.warning("No Cargo %s is named exactly %r; using %r (%s), the only one whose name differs only "
                       "in case.", what, name_or_uuid, folded[0].name, folded[0].uuid)
        return folded[0]
    names = [item.name for item in items]
    if len(folded) > 1:
        raise CargoInputError(
            f"No Cargo {what} is named exactly {name_or_uuid!r}, and {len(folded)} differ from it only in case: "
            f"{', '.join(repr(i.name) for i in folded)}. Next step: spell the name exactly, or pass the UUID."
        )
    close = difflib.get_close_matches(name_or_uuid, names, n=3, cutoff=0.5)
    suggestion = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    available = ", ".join(repr(n) for n in sorted(names)[:20]) or "none"
    raise CargoInputError(
        f"No Cargo {what} named or with UUID {name_or_uuid!r}.{suggestion} "
        f"Available {what}s: {available}."
    )
