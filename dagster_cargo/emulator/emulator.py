"""The :class:`CargoEmulator` facade: builds the store, seeds it and serves it over loopback HTTP."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from .clock import Clock
from .faults import FaultInjector, FaultProfile
from .handlers import build_router
from .seed import seed_synthetic_workflows, seed_workspace
from .server import make_server
from .store import Store
from .variants import check_variants


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
        faults: a :class:`~dagster_cargo.emulator.faults.FaultProfile` (``None`` = no random faults);
            the injector is :attr:`faults` either way (scripted faults, counts, profile changes).
        variants: layout variants where Cargo's docs leave a behaviour open (name -> value, see
            :data:`~dagster_cargo.emulator.variants.VARIANTS`; unknown names or values raise ``ValueError``).
        extra_workflows: seed this many more plays and tools (half each, plays first when odd) on top of
            the 2 + 2 seeded ones, for scale tests: ``extra_workflows=996`` gives 1,000. They are renamed,
            runnable copies of the seeded workflows (``"Score inbound companies #0001"``, ...); see
            :func:`~dagster_cargo.emulator.seed.seed_synthetic_workflows`. ``0`` leaves the workspace as is.
    """

    def __init__(self, token: str = "test-token", speed: float = 1.0, seed: int = 0,
                 run_failure_rate: float = 0.05, credits: int = 100_000, host: str = "127.0.0.1",
                 port: int = 0, clock: str = "real", max_concurrent_runs: int = 10,
                 faults: FaultProfile | None = None, extra_workflows: int = 0,
                 variants: Mapping[str, str] | None = None) -> None:
        if not 0.0 <= run_failure_rate <= 1.0:
            raise ValueError("run_failure_rate must be within [0, 1]")
        if extra_workflows < 0:
            raise ValueError("extra_workflows must be >= 0")
        self.token = token
        self.host = host
        self._port = port
        self.clock = Clock(clock, speed)
        self.store = Store(self.clock, seed=seed, run_failure_rate=run_failure_rate, credits=credits,
                           max_concurrent_runs=max_concurrent_runs, variants=dict(variants or {}))
        seed_workspace(self.store)
        seed_synthetic_workflows(self.store, extra_workflows)
        self.router = build_router()
        self.faults = FaultInjector(faults)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._httpd: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> CargoEmulator:
        """Bind and start serving in a background thread (idempotent)."""
        if self._httpd is None:
            self._httpd, self._thread = make_server(self, self.host, self._port)
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

    def run_play_schedule(self, play_name: str, change_kinds: tuple[str, ...] = ("added", "updated")) -> str:
        """Simulate Cargo's own scheduler running a play (outside any API client): snapshot the
        play's segment and start a ``schedule`` batch over the new change. Returns the batch uuid.

        The batch's ``userUuid`` is null, as for every system-created batch.
        """
        from .handlers.batches import schedule_play_batch

        with self.store.lock:
            self.store.sync()
            play = self.store.play_by_name(play_name)
            batch = schedule_play_batch(self.store, play, change_kinds, self.clock.now())
        return batch.uuid

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
