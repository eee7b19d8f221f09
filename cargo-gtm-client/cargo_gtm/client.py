"""``CargoClient``: a typed Python client for Cargo's REST API (no Dagster import).

Example:
    .. code-block:: python

        from cargo_gtm import CargoClient, filter_data

        with CargoClient(api_token=os.environ["CARGO_API_TOKEN"]) as cargo:
            play = cargo.find_play("Score inbound companies")
            batch = cargo.create_batch(play.workflow_uuid, filter_data(play.model_uuid, limit=50))
            batch = cargo.wait_for_batch(batch.uuid, timeout=1800)
            frame = cargo.download_batch_dataframe(batch.uuid)
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from .api import BillingAPI, DownloadFormat, OrchestrationAPI, SegmentationAPI, StorageAPI, WorkspaceAPI
from .download.outputs import Outputs
from .errors import CargoError
from .lookups import Lookups
from .lookups import find_by_name as _find_by_name  # noqa: F401 - its old home, imported by tests
from .models import Batch
from .paging import read_all, read_newest
from .running.busy import BusyPolicy, send_when_free
from .running.clock import SYSTEM_CLOCK, Clock
from .running.proof import prove_candidates
from .running.reconcile import LIST_PAGE, CreateIntent, create_batch_once, resolve_created, watermark_of
from .running.waiting import BatchProgress, PollingGuidance, wait_for_batches
from .transport import DEFAULT_BASE_URL, RetryPolicy, Transport, tls_context

__all__ = ["CargoClient", "DownloadFormat"]

logger = logging.getLogger("cargo_gtm")


def _compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values (the official client omits undefined keys)."""
    return {k: v for k, v in mapping.items() if v is not None}


def _part(attribute: str, method: Callable[..., Any]) -> Any:
    """``client.<name>(...)`` for ``client.<attribute>.<name>(...)``: a part's method as the client's own,
    with its signature and docstring."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, attribute), name)(*args, **kwargs)

    return call


class CargoClient(OrchestrationAPI, SegmentationAPI, StorageAPI, BillingAPI, WorkspaceAPI):
    """Typed client for Cargo's API.

    Composed, not a diamond of mixins: its endpoint methods are those of the API areas in :mod:`cargo_gtm.api`
    (orchestration, segmentation, storage, billing, workspace: one endpoint each, over one transport); its
    lookups are a part, :attr:`lookups` (:class:`~cargo_gtm.lookups.Lookups`), and its downloads another,
    :attr:`outputs` (:class:`~cargo_gtm.download.outputs.Outputs`), each over this client's endpoints; their
    methods are also the client's own (``client.find_play``, ``client.download_batch_dataframe``). What is
    defined here is the connection, the clock, and the exactly-once create, fan-out and waiting glue
    (:mod:`.running.reconcile`, :mod:`.running.waiting`).

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
            :class:`~cargo_gtm.running.clock.ManualClock`. ``sleep=`` (older) overrides only the sleeping.
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
        #: where those waits are reported (default: the ``cargo_gtm`` logger)
        self.busy_report: Callable[[str], None] | None = None
        #: the clock every wait goes through
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
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
        #: name lookups and the per-client caches (model columns, required form fields)
        self.lookups = Lookups(self)
        #: output downloads (DataFrame, Parquet, per-run outputs)
        self.outputs = Outputs(self)

    find_play = _part("lookups", Lookups.find_play)
    find_tool = _part("lookups", Lookups.find_tool)
    model_columns = _part("lookups", Lookups.model_columns)
    required_form_fields = _part("lookups", Lookups.required_form_fields)
    download_batch_dataframe = _part("outputs", Outputs.download_batch_dataframe)
    download_batch_to_parquet = _part("outputs", Outputs.download_batch_to_parquet)
    download_run_outputs_dataframe = _part("outputs", Outputs.download_run_outputs_dataframe)

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

    @property
    def download_http(self) -> httpx.Client:
        """One plain HTTP client for presigned download URLs, shared by every download.

        Separate from the API client so no Cargo header (above all the token) can reach the
        storage host; shared because creating a client (its TLS context) costs more than
        downloading a small output, which matters when a fan-out downloads 50 of them.
        """
        with self._download_lock:
            if self._download_client is None:
                self._download_client = httpx.Client(  # the API client's TLS context: ~30 ms not paid twice
                    timeout=httpx.Timeout(self.timeout, connect=10.0), follow_redirects=True, verify=tls_context())
            return self._download_client

    def _downloads_http(self) -> httpx.Client:
        """Older name of :attr:`download_http`, kept while branches written against it are merged."""
        return self.download_http

    def sleep(self, seconds: float) -> None:
        """Wait through the client's clock (or its older ``sleep=`` override)."""
        self._transport._sleep(seconds)

    @property
    def request_count(self) -> int:
        """HTTP requests sent to the API so far (retries included)."""
        return self._transport.request_count

    def raw_json(self, method: str, endpoint: str, *, params: Mapping[str, Any] | None = None,
                 payload: Any = None, idempotent: bool | None = None) -> Any:
        """Cargo's JSON body for any endpoint, unparsed (``endpoint`` under ``/v1``, e.g.
        ``/orchestration/plays/list``): for reading items one by one, or an endpoint without a method.

        Sent through the client's transport (headers, retries, error mapping). A ``GET`` is retried on
        transient failures; any other method must say whether it is safe to repeat (``idempotent``).
        """
        if idempotent is None and method.upper() != "GET":
            raise ValueError(f"raw_json({method!r}, {endpoint!r}) needs idempotent=True or False")
        return self._transport.request(method, endpoint, params=params, payload=payload,
                                       idempotent=True if idempotent is None else idempotent)

    # -- batch creation: exactly once (see .reconcile) ------------------------------------
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
        exactly one batch exists (see :mod:`cargo_gtm.running.reconcile`;
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
            list_all=lambda: self.list_newest_batches(workflow_uuid, since=intent.watermark),
            check=lambda candidates: prove_candidates(self, payload["data"], candidates),
            intent=intent,
            sleep=self.sleep,
            claimed=claimed,
        )

    def create_intent(self, workflow_uuid: str, *, attempt_key: str | None = None,
                      listed: Sequence[Batch] | None = None) -> CreateIntent:
        """The :class:`CreateIntent` of a create about to be sent: the workflow's batch watermark now.

        ``listed``: the workflow's newest batches (:meth:`list_newest_batches`, or all of them) listed a
        moment ago, to take the watermark from instead of listing them again. An earlier watermark is safe:
        batches created since are only more candidates, each proven by content before any is adopted.
        """
        from datetime import timezone

        batches = listed if listed is not None else self.list_newest_batches(workflow_uuid)
        watermark, at = watermark_of(batches)
        return CreateIntent(workflow_uuid=workflow_uuid, sent_at=datetime.now(timezone.utc).isoformat(),
                            watermark=watermark, at_watermark=at, attempt_key=attempt_key)

    def find_created_batch(self, data: Mapping[str, Any], intent: CreateIntent, *,
                           claimed: Callable[[], set[str]] | None = None,
                           settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0)) -> Batch | None:
        """The batch an earlier create of ``data`` (recorded as ``intent``) made, proven by content.

        ``None`` when it made none (then sending again is safe). Raises
        :class:`~cargo_gtm.running.reconcile.CargoAmbiguousCreateError` naming the candidates
        when it cannot be told which one it made.
        """
        return resolve_created(
            list_all=lambda: self.list_newest_batches(intent.workflow_uuid, since=intent.watermark),
            check=lambda candidates: prove_candidates(self, data, candidates),
            intent=intent, sleep=self.sleep, settle_delays=settle_delays, claimed=claimed,
        )

    def list_all_batches(self, workflow_uuid: str, *, max_pages: int = 1000) -> list[Batch]:
        """Every batch of the workflow, whatever order Cargo lists them in (pages of ``LIST_PAGE``).

        Raises :class:`CargoError` past ``max_pages`` pages rather than return a partial list.
        """
        return read_all(
            lambda offset: self.list_batches(workflow_uuids=[workflow_uuid], limit=LIST_PAGE, offset=offset or None),
            page_size=LIST_PAGE, key=lambda batch: batch.uuid, max_pages=max_pages,
            too_many=lambda: CargoError(
                f"Workflow {workflow_uuid} has more than {LIST_PAGE * max_pages} batches; cannot list them all to "
                "check which one a create made.", hint="archive old batches in Cargo."))

    def list_newest_batches(self, workflow_uuid: str, *, since: str | datetime | None = None,
                            max_pages: int = 1000) -> list[Batch]:
        """The workflow's batches created at or after ``since`` (``None``: its newest batches, every one at the
        newest instant among them), and maybe older ones: what a create's watermark and its reconciliation need.

        When Cargo lists batches newest first (its order is not documented: each page is checked, see
        :func:`~cargo_gtm.paging.read_newest`) only the newest pages are read, one call or two whatever the
        workflow's history; any other order reads every page, as :meth:`list_all_batches`.
        """
        mark = datetime.fromisoformat(since.replace("Z", "+00:00")) if isinstance(since, str) else since
        return read_newest(
            lambda offset: self.list_batches(workflow_uuids=[workflow_uuid], limit=LIST_PAGE, offset=offset or None),
            page_size=LIST_PAGE, key=lambda batch: batch.uuid, created=lambda batch: batch.created_at, since=mark,
            max_pages=max_pages, too_many=lambda: CargoError(
                f"Workflow {workflow_uuid} has more than {LIST_PAGE * max_pages} batches; cannot list them all to "
                "check which one a create made.", hint="archive old batches in Cargo."))

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
        claimed: Callable[[], set[str]] | None = None,
        on_intents: Callable[[list[tuple[int, CreateIntent]]], None] | None = None,
        on_created_many: Callable[[list[tuple[int, Batch]]], None] | None = None,
    ) -> list[Batch | CargoError]:
        """Create one batch per item of ``datas`` for one workflow, ``max_workers`` at a time.

        **Spends credits.** Each create keeps :meth:`create_batch`'s exactly-once guarantee:
        the workflow's batches are listed once for all of them (one watermark), and a create
        whose response is lost never adopts a batch a sibling create is known to have made.
        ``on_intent(index, intent)`` is called for each create before it is sent;
        ``on_created(index, batch)`` in the calling thread as each batch is created (in
        completion order), so the caller can record it at once. Returns, in input order, the
        batch or the :class:`CargoError` each create ended with; every create is attempted
        even if others fail. ``listed``: see :meth:`create_intent`. ``claimed`` returns batches other creates
        (e.g. other orchestrator runs with the same input) have recorded as theirs: never adopted.
        ``on_intents(pairs)``: all of them at once, before the first request leaves (one durable write instead
        of one per create). ``on_created_many(pairs)``: instead of ``on_created``, the batches created since the
        last call, together (a group commit: a durable record of a fan-out's batches costs one write per group
        of creates that ended while the previous write was made, not one per batch; none waits for a later one).
        """
        from concurrent.futures import ThreadPoolExecutor, as_completed

        if not datas:
            return []
        keys = list(attempt_keys) if attempt_keys is not None else [None] * len(datas)
        base = self.create_intent(workflow_uuid, listed=listed)
        intents = [CreateIntent(workflow_uuid=workflow_uuid, sent_at=base.sent_at, watermark=base.watermark,
                                at_watermark=base.at_watermark, attempt_key=keys[i]) for i in range(len(datas))]
        if on_intents is not None:
            on_intents(list(enumerate(intents)))  # all recorded before the first request leaves
        if on_intent is not None:
            for i, intent in enumerate(intents):
                on_intent(i, intent)
        made: set[str] = set()
        results: list[Batch | CargoError | None] = [None] * len(datas)

        def one(i: int) -> Batch:
            taken = made.copy if claimed is None else (lambda: made | claimed())
            batch = self.create_batch(workflow_uuid, datas[i], intent=intents[i], claimed=taken)
            made.add(batch.uuid)
            return batch

        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(datas))),
                                thread_name_prefix="cargo-create") as pool:
            futures = {pool.submit(one, i): i for i in range(len(datas))}
            report = _CreateReport(futures, results, on_created, on_created_many)
            try:
                report.as_they_end(as_completed(futures))
            except BaseException:
                _report_in_flight(futures, report.reported, report)
                raise
        return [r for r in results if r is not None]

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
            fetch_many=self.fresh_states, guidance=guidance,
        )

    def fresh_states(self, known: Sequence[Batch]) -> dict[str, Batch]:
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


class _CreateReport:
    """Reports creates that ended (:meth:`CargoClient.create_batches`): each one's result in ``results``, the batches
    to ``on_created_many`` together, or to ``on_created`` one by one."""

    def __init__(self, futures: Mapping[Any, int], results: list[Any],
                 on_created: Callable[[int, Batch], None] | None,
                 on_created_many: Callable[[list[tuple[int, Batch]]], None] | None) -> None:
        self.futures = futures
        self.results = results
        self.on_created = on_created
        self.on_created_many = on_created_many
        self.reported: set[int] = set()

    def as_they_end(self, ended: Iterable[Any]) -> None:
        """Report each create as it ends (``ended``: as completed), with every other create that ended meanwhile."""
        for future in ended:
            if self.futures[future] not in self.reported:
                self([f for f in self.futures if f.done() and self.futures[f] not in self.reported])

    def __call__(self, done: list[Any]) -> None:
        created: list[tuple[int, Batch]] = []
        for future in done:
            i = self.futures[future]
            self.reported.add(i)
            try:
                self.results[i] = batch = future.result()
            except CargoError as exc:
                self.results[i] = exc
                continue
            created.append((i, batch))
        if self.on_created_many is not None and created:
            self.on_created_many(created)
        elif self.on_created is not None:
            for i, batch in created:
                self.on_created(i, batch)


def _report_in_flight(futures: Mapping[Any, int], reported: set[int], report: Callable[[list[Any]], None]) -> None:
    """After a stop (e.g. the run was terminated): send nothing more, and still report the creates already
    in flight, so the caller can record and cancel those batches."""
    for future in futures:
        future.cancel()
    for future, i in futures.items():
        if i not in reported and not future.cancelled():
            try:
                future.exception()  # waits for it
                report([future])
            except BaseException:  # noqa: S110 - reporting must not mask the stop
                pass
