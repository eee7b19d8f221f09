"""The :class:`CargoEmulator` facade: builds the store, seeds it and serves it over loopback HTTP."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import inspection
from .app import App
from .backend import releases
from .backend.batches import schedule_play_batch
from .clock import Clock
from .faults import FaultInjector, FaultProfile
from .handlers import build_router
from .seed import seed_agent_play, seed_synthetic_workflows, seed_workspace
from .server import make_server
from .store import Store
from .variants import check_variants

if TYPE_CHECKING:
    import httpx

    from .transport import InProcessTransport


class CargoEmulator:
    """A local stand-in for ``https://api.getcargo.io``.

    Args:
        token: the only accepted bearer token.
        speed: simulated seconds per real second (``clock="real"`` only).
        seed: drives every generated uuid and record.
        run_failure_rate: share of runs that fail by design (deterministic per record).
        credits: subscription credit balance.
        host, port: where to listen; ``port=0`` picks a free port.
        clock: ``"real"`` or ``"manual"`` (time moves only via :meth:`advance`).
        max_concurrent_runs: runs executing at once per batch.
        faults: a :class:`~cargo_gtm_emulator.faults.FaultProfile` (``None`` = no random faults);
            the injector is :attr:`faults` either way (scripted faults, counts, profile changes).
        variants: layout variants where Cargo's docs leave a behaviour open (name -> value, see
            :data:`~cargo_gtm_emulator.variants.VARIANTS`; unknown names or values raise ``ValueError``).
        strict: reject unknown top-level request body keys with 400 ``unrecognized_keys`` as Cargo does
            (CARGO-DOCS 10.1). ``False`` is a Python-only debugging aid; Cargo itself is always strict.
        extra_workflows: seed this many more plays and tools (half each, plays first when odd) on top of
            the 4 + 3 seeded ones, for scale tests: ``extra_workflows=993`` gives 1,000. They are renamed,
            runnable copies of the seeded workflows (``"Score inbound companies #0001"``, ...); see
            :func:`~cargo_gtm_emulator.seed.seed_synthetic_workflows`. ``0`` leaves the workspace as is.
        concurrency_limit: unfinished batches (and single runs) the workspace accepts at once; a create
            beyond it gets 400 ``concurrencyLimitReached`` and creates nothing. ``None`` (default): no limit.
            Also from the CLI (``--concurrency-limit N``), the control plane (``POST /_emulator/concurrency``)
            and :meth:`set_concurrency_limit`.
        agent_play: seed the play "Classify inbound companies" (an ``agent`` node with ``retry``,
            ``fallbackOnFailure`` and ``fallbackChildUuid``, and a ``variables`` node with the same slug:
            CARGO-DOCS 4.5, 15.4), the seventh default workflow (default ``True``). ``False`` leaves it out
            (the six others keep their uuids either way), for a test that wants the smaller workspace.
    """

    def __init__(self, token: str = "test-token", speed: float = 1.0, seed: int = 0,
                 run_failure_rate: float = 0.05, credits: int = 100_000, host: str = "127.0.0.1",
                 port: int = 0, clock: str = "real", max_concurrent_runs: int = 10,
                 faults: FaultProfile | None = None, extra_workflows: int = 0,
                 variants: Mapping[str, str] | None = None, strict: bool = True,
                 concurrency_limit: int | None = None, agent_play: bool = True) -> None:
        if not 0.0 <= run_failure_rate <= 1.0:
            raise ValueError("run_failure_rate must be within [0, 1]")
        if extra_workflows < 0:
            raise ValueError("extra_workflows must be >= 0")
        self.token = token
        self.strict = strict
        self.host = host
        self._port = port
        self._settings: dict[str, Any] = {
            "clock": clock, "speed": speed, "seed": seed, "run_failure_rate": run_failure_rate,
            "credits": credits, "max_concurrent_runs": max_concurrent_runs, "variants": dict(variants or {}),
            "extra_workflows": extra_workflows, "concurrency_limit": concurrency_limit, "agent_play": agent_play}
        self.clock, self.store = self._fresh_state()
        self.router = build_router()
        self._initial_faults = faults
        self.faults = FaultInjector(faults)
        self.app = App(self)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._httpd: Any = None
        self._thread: threading.Thread | None = None

    def _fresh_state(self) -> tuple[Clock, Store]:
        """A new clock and a newly seeded store, from the constructor's settings."""
        cfg = self._settings
        clock = Clock(cfg["clock"], cfg["speed"])
        store = Store(clock, seed=cfg["seed"], run_failure_rate=cfg["run_failure_rate"], credits=cfg["credits"],
                      max_concurrent_runs=cfg["max_concurrent_runs"], variants=dict(cfg["variants"]))
        seed_workspace(store)
        seed_synthetic_workflows(store, cfg["extra_workflows"])
        if cfg["agent_play"]:
            seed_agent_play(store)
        store.concurrency_limit = cfg["concurrency_limit"]
        return clock, store

    def reset(self) -> None:
        """Back to the state right after construction: a newly seeded workspace (same seed, so the same
        uuids), the clock at its start, the constructor's variants and fault profile (its random sequence
        restarted), no scripted faults, no failure plan, zero fault counts and an empty request log. The server, if started,
        keeps serving on the same port."""
        with self.store.lock:
            self.clock, self.store = self._fresh_state()
        self.faults.clear()
        self.faults.profile = self._initial_faults
        with self._log_lock:
            self._log.clear()

    def transport(self, sleep: Any = None) -> InProcessTransport:
        """An ``httpx`` transport that serves requests in-process, without a socket (see
        :mod:`~cargo_gtm_emulator.transport`). Use with base URL :attr:`in_process_url` (+ ``/v1``); the
        emulator need not be started. ``sleep``: how a slow-response fault waits (default ``time.sleep``)."""
        from .transport import InProcessTransport

        return InProcessTransport(self.app) if sleep is None else InProcessTransport(self.app, sleep=sleep)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on :meth:`transport`: base URL ``in_process_url + "/v1"``, this emulator's
        bearer token; ``kwargs`` go to ``httpx.Client`` (e.g. ``timeout=``). Close it (or use ``with``)."""
        import httpx

        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.Client(transport=self.transport(), base_url=self.in_process_url + "/v1", headers=headers,
                            **kwargs)

    @property
    def in_process_url(self) -> str:
        """The base URL (without ``/v1``) to use with :meth:`transport`."""
        from .transport import IN_PROCESS_URL

        return IN_PROCESS_URL

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> CargoEmulator:
        """Bind and start serving in a background thread (idempotent)."""
        if self._httpd is None:
            self._httpd, self._thread = make_server(self.app, self.host, self._port)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = None
            self._thread = None

    def __enter__(self) -> CargoEmulator:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until :meth:`stop` is called (used by the CLI)."""
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("emulator is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port`` (clients append ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """``base_url + "/v1"``."""
        return self.base_url + "/v1"

    @property
    def workspace_uuid(self) -> str:
        """The seeded workspace's uuid."""
        return self.store.workspace_uuid

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Recorded requests ``{method, path, query, headers, json}`` (authorization redacted). Clearable."""
        return self._log

    @property
    def variants(self) -> dict[str, str]:
        """The current layout variants (a copy; change them with :meth:`set_variants`)."""
        return dict(self.store.variants)

    def set_variants(self, **values: str) -> None:
        """Switch layout variants at run time (validated; ``ValueError`` lists the allowed values)."""
        checked = check_variants(values)
        with self.store.lock:
            self.store.variants.update(checked)

    @property
    def concurrency_limit(self) -> int | None:
        """The workspace's concurrency limit (``None``: none); see the constructor."""
        return self.store.concurrency_limit

    def set_concurrency_limit(self, limit: int | None) -> None:
        """Change the workspace's concurrency limit at run time (``None``: none); see the constructor. A
        :meth:`reset` restores the constructor's value."""
        if limit is not None and limit < 1:
            raise ValueError("concurrency_limit must be >= 1 or None")
        with self.store.lock:
            self.store.concurrency_limit = limit

    def plan_failures(self, plan: Mapping[str, int | str | None], *, workflow: str | None = None
                      ) -> list[dict[str, Any]]:
        """Make chosen records fail their first N runs, then succeed (transient failures), or always fail.

        ``plan``: key -> ``N`` (the next N runs of each matching record fail; ``0``: never fails) or
        ``"always"`` / ``None``. A key is a record id (a run's ``recordId``) or ``"field=value"``. ``workflow``:
        only runs of this play / tool (name or uuid, or a workflow uuid); default any. Planned records ignore
        ``run_failure_rate``. Setting a key again restarts its count. Returns :attr:`failure_plan`. See
        :mod:`~cargo_gtm_emulator.failure_plan`.
        """
        with self.store.lock:
            self.store.sync()
            wf = inspection.workflow_uuid(self.store, workflow) if workflow is not None else None
            self.store.failure_plan.set(plan, wf)
            return self.store.failure_plan.view()

    def clear_failure_plan(self) -> None:
        """Forget the failure plan: every record fails (or not) by ``run_failure_rate`` again."""
        with self.store.lock:
            self.store.failure_plan.clear()

    @property
    def failure_plan(self) -> list[dict[str, Any]]:
        """The plan's entries ``{key, times (N or "always"), workflowUuid, failed: {record id: runs failed}}``."""
        with self.store.lock:
            self.store.sync()
            return self.store.failure_plan.view()

    @property
    def credits_used(self) -> float:
        """Credits the subscription has lost: provider cost + 0.01 per node execution (exact to 0.01)."""
        with self.store.lock:
            self.store.sync()
            return self.store.credits_used

    def advance(self, seconds: float) -> None:
        """Advance simulated time by ``seconds`` and process everything due (deterministic with manual clock)."""
        with self.store.lock:
            self.clock.advance(seconds)
            self.store.sync()

    def run_play_schedule(self, play_name: str, change_kinds: tuple[str, ...] = ("added", "updated"),
                          user_uuid: str | None = None) -> str:
        """Simulate Cargo's own scheduler running a play (outside any API client): snapshot the
        play's segment and start a ``schedule`` batch over the new change. Returns the batch uuid.

        The batch's ``userUuid`` is null, as for every system-created batch, unless ``user_uuid`` is given
        (a schedule set up by another user).
        """
        with self.store.lock:
            self.store.sync()
            play = self.store.play_by_name(play_name)
            batch = schedule_play_batch(self.store, play, change_kinds, self.clock.now(), user_uuid=user_uuid)
        return batch.uuid

    def redeploy(self, workflow: str, *, configs: Mapping[str, Mapping[str, Any]] | None = None,
                 add_nodes: list[dict[str, Any]] | None = None, position: int | None = None,
                 description: str | None = None) -> dict[str, Any]:
        """Deploy a new release of a workflow, as a user editing it in Cargo would; returns the new Release.

        ``workflow``: a play's or tool's name or uuid, or a workflow uuid. ``configs``: node slug -> config
        keys merged into that node's ``config``. ``add_nodes``: node dicts (at least ``slug`` and ``kind``;
        ``actionSlug``, ``name``, ``config`` optional) inserted at ``position`` (default: after the last node,
        so the new node becomes the output node). The workflow's ``deployedRelease`` changes (new uuid, version
        + 1); batches created before keep the release they were created with.
        """
        with self.store.lock:
            now = self.store.sync()
            wf = inspection.workflow_uuid(self.store, workflow)
            cfg = {slug: dict(values) for slug, values in (configs or {}).items()}
            return releases.redeploy(self.store, wf, now, configs=cfg, add_nodes=add_nodes, position=position,
                                     description=description)

    # ------------------------------------------------------------------ internal
    def _log_request(self, method: str, path: str, query: str, headers: dict[str, str],
                     body: Any) -> dict[str, Any]:
        redacted = dict(headers)
        if "authorization" in redacted:
            redacted["authorization"] = "REDACTED"
        entry = {"method": method, "path": path, "query": query, "headers": redacted, "json": body}
        with self._log_lock:
            self._log.append(entry)
        return entry  # the HTTP layer adds "fault": <kind> when it injects one

    # ------------------------------------------------------------------ big outputs
    def attach_output_file(self, batch_uuid: str, path: str | os.PathLike[str], fmt: str = "csv") -> None:
        """Serve the file at ``path`` as the output of ``batch_uuid`` (a benchmark and test facility).

        Every later ``POST /orchestration/batches/{uuid}/download`` of that batch (for its output node)
        returns a presigned ``/_files/…`` URL that streams the file from disk with a ``Content-Length``
        header, as S3 does, without loading it into memory; signing, expiry and download faults work as
        for any export. The batch must exist; the download endpoint still requires it to be finished.
        This is not a Cargo behaviour: it lets tests and benchmarks serve millions of pre-generated rows
        through the normal download flow.
        """
        with self.store.lock:
            if batch_uuid not in self.store.engine.batches:
                raise KeyError(f"no batch {batch_uuid}")
        self.store.downloads.attach(batch_uuid, os.fspath(path), fmt)

    # ------------------------------------------------------------------ inspection (for tests)
    def batches(self, workflow: str | None = None, status: str | None = None) -> list[inspection.BatchInfo]:
        """Batches the API lists (single-run carriers excluded), oldest first, as plain records.

        ``workflow``: a workflow uuid, or a play's / tool's name or uuid. ``status``: one batch status."""
        with self.store.lock:
            self.store.sync()
            return inspection.batches(self.store, workflow, status)

    def runs(self, batch_uuid: str | None = None) -> list[inspection.RunInfo]:
        """Runs (of one batch, or all of them, single runs included), in creation order."""
        with self.store.lock:
            self.store.sync()
            return inspection.runs(self.store, batch_uuid)

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded requests ``{method, path, query, headers, json[, fault]}`` matching
        ``method`` and ``path`` (exact, or a glob such as ``/v1/orchestration/batches/*``)."""
        with self._log_lock:
            entries = list(self._log)
        return inspection.requests(entries, method, path)
