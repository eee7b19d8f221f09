"""Deterministic fault injection for the emulator (see EMULATOR.md, "Fault injection").

A :class:`FaultProfile` says how often each fault kind happens; the :class:`FaultInjector` (``emu.faults``)
decides, request by request, whether a fault applies. Decisions come from the injector's own
``random.Random(profile.seed)`` drawn **in the order requests reach a decision point**, so the same seed and
the same request sequence give the same faults. Concurrent requests may reach the decision points in a
different order from run to run; only a sequential client gets a reproducible sequence.

Decision points (stages), each drawing at most one random number and picking at most one kind:

* ``request``: an authenticated ``/v1`` request (before its handler) or any ``/_files`` request:
  ``rate_limit``, ``server_error`` (``/v1`` only), ``connection_reset``, ``slow_response``;
* ``response``: after a ``/v1`` handler answered 200: ``lost_create_response`` (``POST /v1/orchestration/
  batches`` and ``POST /v1/orchestration/runs``), ``unknown_status`` (``GET /v1/orchestration/batches/{uuid}`` of an unfinished batch);
* ``download``: a ``/_files`` request whose URL is valid: ``expired_download_url`` (first fetch of a URL only),
  ``truncated_download``.

Within a stage the eligible kinds share one draw ``u`` laid out cumulatively in :data:`FAULT_KINDS` order, so
each kind fires with exactly its own probability as long as the eligible probabilities sum to at most 1.
A request gets at most one fault. Scripted faults (:meth:`FaultInjector.next`) are checked first and draw
nothing.
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from email.utils import formatdate
from typing import Any

FAULT_KINDS: tuple[str, ...] = (
    "rate_limit", "server_error", "connection_reset", "slow_response", "lost_create_response",
    "unknown_status", "expired_download_url", "truncated_download",
)
STAGE_KINDS: dict[str, tuple[str, ...]] = {
    "request": ("rate_limit", "server_error", "connection_reset", "slow_response"),
    "response": ("lost_create_response", "unknown_status"),
    "download": ("expired_download_url", "truncated_download"),
}
API_ONLY = ("rate_limit", "server_error")
TERMINAL = ("success", "error", "cancelled")
_BATCH_GET = re.compile(r"^/v1/orchestration/batches/(?!list$)([^/]+)$")
#: Creates that spend credits: a lost response leaves the client unsure whether the batch / run exists.
_CREATES = ("/v1/orchestration/batches", "/v1/orchestration/runs")

_GATEWAY_PAGES = {
    502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
         "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
    503: "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
         "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n",
}


@dataclass
class FaultProfile:
    """How often each fault kind is injected (probability per eligible request) and its parameters.

    ``paths`` optionally restricts a kind to request targets: ``{"rate_limit": ["GET /v1/orchestration/*"]}``;
    each target is ``"[METHOD ]glob"`` matched against the full path (a glob not starting with ``/v1`` or
    ``/_files`` is taken relative to ``/v1``). Kinds absent from ``paths`` apply to every eligible request.
    """

    rate_limit: float = 0.0
    server_error: float = 0.0
    connection_reset: float = 0.0
    slow_response: float = 0.0
    lost_create_response: float = 0.0
    truncated_download: float = 0.0
    expired_download_url: float = 0.0
    unknown_status: float = 0.0
    slow_seconds: float = 2.0
    retry_after_seconds: float = 1.0
    retry_after_http_date_rate: float = 0.2
    server_error_statuses: tuple[int, ...] = (500, 502, 503)
    unknown_status_value: str = "paused_for_review"
    unknown_status_polls: int = 2
    truncate_fraction: float = 0.5
    paths: Mapping[str, Sequence[str]] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            p = getattr(self, kind)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{kind} probability must be within [0, 1], got {p}")
        if self.slow_seconds < 0 or self.retry_after_seconds < 0:
            raise ValueError("slow_seconds and retry_after_seconds must be >= 0")
        if not 0.0 <= self.retry_after_http_date_rate <= 1.0:
            raise ValueError("retry_after_http_date_rate must be within [0, 1]")
        if not 0.0 < self.truncate_fraction < 1.0:
            raise ValueError("truncate_fraction must be within (0, 1)")
        if self.unknown_status_polls < 1:
            raise ValueError("unknown_status_polls must be >= 1")
        if not self.server_error_statuses or any(s not in (500, 502, 503) for s in self.server_error_statuses):
            raise ValueError("server_error_statuses must be a non-empty subset of (500, 502, 503)")
        unknown = set(self.paths) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"paths has unknown fault kinds: {sorted(unknown)}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> FaultProfile:
        """A named profile (:data:`PRESETS`), optionally with some fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown fault profile {name!r}; choose from {sorted(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def probability(self, kind: str) -> float:
        """The configured probability of ``kind``."""
        return float(getattr(self, kind))


PRESETS: dict[str, FaultProfile] = {
    "none": FaultProfile(),
    "mixed": FaultProfile(rate_limit=0.05, server_error=0.05, connection_reset=0.02, slow_response=0.02,
                          slow_seconds=2.0, lost_create_response=0.1, truncated_download=0.1,
                          expired_download_url=0.1, unknown_status=0.05, retry_after_seconds=1.0),
}
PROFILE_FIELDS = tuple(f.name for f in fields(FaultProfile))


@dataclass(frozen=True)
class Fault:
    """One injected fault: what the HTTP layer must do.

    ``status``/``headers``/``body``: the canned response (rate_limit, server_error); ``delay``: seconds to wait
    before answering (slow_response); ``fraction``: share of the body sent (truncated_download); ``value``: the
    status reported (unknown_status).
    """

    kind: str
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    fraction: float = 0.5
    value: str = ""


@dataclass
class _Script:
    method: str | None
    glob: str
    kind: str
    remaining: int
    status: int | None
    seconds: float | None


def _parse_target(target: str) -> tuple[str | None, str]:
    parts = target.strip().split(None, 1)
    if len(parts) == 2:
        method, glob = parts[0].upper(), parts[1]
    else:
        method, glob = None, parts[0] if parts else "*"
    if glob != "*" and not glob.startswith(("/v1", "/_files", "*")):
        glob = "/v1" + (glob if glob.startswith("/") else "/" + glob)
    return (None if method in (None, "*") else method), glob.rstrip("/") or "/"


def _matches(target: tuple[str | None, str], method: str, path: str) -> bool:
    want_method, glob = target
    return (want_method is None or want_method == method) and fnmatch.fnmatchcase(path, glob)


class FaultInjector:
    """Decides and records faults; ``emu.faults``. Thread-safe; deterministic for a sequential client."""

    def __init__(self, profile: FaultProfile | None = None) -> None:
        self._lock = threading.Lock()
        self._profile: FaultProfile | None = None
        self._rng = random.Random(0)
        self._scripts: list[_Script] = []
        self._counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._unknown_left: dict[str, int] = {}  # batch uuid -> polls still reporting the unknown status
        self.profile = profile

    # ------------------------------------------------------------------ public API
    @property
    def profile(self) -> FaultProfile | None:
        """The active profile (``None`` = no random faults). Setting it restarts the random sequence."""
        return self._profile

    @profile.setter
    def profile(self, value: FaultProfile | None) -> None:
        if value is not None and not isinstance(value, FaultProfile):
            raise TypeError("profile must be a FaultProfile or None")
        with self._lock:
            self._profile = value
            self._rng = random.Random(value.seed if value is not None else 0)

    @property
    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind (every kind present; an unknown_status episode counts once)."""
        with self._lock:
            return dict(self._counts)

    def next(self, target: str, kind: str, times: int = 1, *, status: int | None = None,
             seconds: float | None = None) -> None:
        """Force the next ``times`` eligible requests matching ``target`` to fail with ``kind``.

        ``target`` is ``"[METHOD ]glob"`` (e.g. ``"POST /v1/orchestration/batches"``, ``"GET /_files/*"``,
        ``"*"``). ``status`` picks the server_error code, ``seconds`` the slow_response delay; other
        parameters come from the profile (or the defaults). A scripted fault only fires where its kind is
        eligible (e.g. ``lost_create_response`` only on a successful batch or run creation).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {FAULT_KINDS}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if status is not None and status not in (500, 502, 503):
            raise ValueError("status must be 500, 502 or 503")
        method, glob = _parse_target(target)
        with self._lock:
            self._scripts.append(_Script(method, glob, kind, times, status, seconds))

    def clear(self) -> None:
        """Drop pending scripted faults, unknown-status episodes and the counts (the profile stays)."""
        with self._lock:
            self._scripts.clear()
            self._unknown_left.clear()
            self._counts = dict.fromkeys(FAULT_KINDS, 0)

    @property
    def pending(self) -> int:
        """Scripted faults not yet injected."""
        with self._lock:
            return sum(s.remaining for s in self._scripts)

    # ------------------------------------------------------------------ decision points (HTTP layer)
    def on_request(self, method: str, path: str, scope: str) -> Fault | None:
        """Stage ``request``: ``scope`` is ``"api"`` (authenticated ``/v1``) or ``"files"``."""
        kinds = STAGE_KINDS["request"] if scope == "api" else tuple(
            k for k in STAGE_KINDS["request"] if k not in API_ONLY)
        return self._decide(method, path, kinds)

    def on_response(self, method: str, path: str, result: Any) -> Fault | None:
        """Stage ``response`` after a 200 from a ``/v1`` handler; applies ``unknown_status`` to ``result``."""
        path = path.rstrip("/")
        if method == "POST" and path in _CREATES:
            return self._decide(method, path, ("lost_create_response",))
        found = _BATCH_GET.match(path)
        if method != "GET" or not found or not isinstance(result, dict):
            return None
        batch = result.get("batch")
        if not isinstance(batch, dict) or batch.get("status") in TERMINAL:
            with self._lock:
                self._unknown_left.pop(found.group(1), None)
            return None
        uuid = found.group(1)
        with self._lock:
            left = self._unknown_left.get(uuid, 0)
            if left > 0:
                self._unknown_left[uuid] = left - 1
                value = (self._profile or FaultProfile()).unknown_status_value
                fault: Fault | None = Fault("unknown_status", value=value)
            else:
                fault = self._decide_locked(method, path, ("unknown_status",))
                if fault is not None:
                    polls = (self._profile or FaultProfile()).unknown_status_polls
                    self._unknown_left[uuid] = polls - 1
        if fault is not None:
            batch["status"] = fault.value
        return fault

    def on_download(self, method: str, path: str, first_fetch: bool) -> Fault | None:
        """Stage ``download`` for a valid presigned URL (``expired_download_url`` only on its first fetch)."""
        kinds = STAGE_KINDS["download"] if first_fetch else ("truncated_download",)
        return self._decide(method, path, kinds)

    # ------------------------------------------------------------------ internals
    def _decide(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self._lock:
            return self._decide_locked(method, path.rstrip("/") or "/", kinds)

    def _decide_locked(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        for script in self._scripts:
            if script.kind in kinds and _matches((script.method, script.glob), method, path):
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
                return self._build(script.kind, script.status, script.seconds)
        profile = self._profile
        if profile is None:
            return None
        eligible = [k for k in kinds if profile.probability(k) > 0 and self._targeted(profile, k, method, path)]
        if not eligible:
            return None
        u = self._rng.random()
        edge = 0.0
        for kind in eligible:
            edge += profile.probability(kind)
            if u < edge:
                return self._build(kind, None, None)
        return None

    @staticmethod
    def _targeted(profile: FaultProfile, kind: str, method: str, path: str) -> bool:
        targets = profile.paths.get(kind)
        if not targets:
            return True
        return any(_matches(_parse_target(t), method, path) for t in targets)

    def _build(self, kind: str, status: int | None, seconds: float | None) -> Fault:
        """Materialise a fault (may draw from the rng: 5xx code, Retry-After form). Lock held."""
        profile = self._profile or FaultProfile()
        self._counts[kind] += 1
        if kind == "rate_limit":
            secs = max(0, math.ceil(profile.retry_after_seconds))
            if self._rng.random() < profile.retry_after_http_date_rate:
                retry_after = formatdate(time.time() + secs, usegmt=True)
            else:
                retry_after = str(secs)
            body = b'{"errorMessage":"Too many requests","reason":"rateLimited"}'
            return Fault(kind, 429, (("Content-Type", "application/json; charset=utf-8"),
                                     ("Retry-After", retry_after)), body)
        if kind == "server_error":
            code = status or profile.server_error_statuses[
                self._rng.randrange(len(profile.server_error_statuses))]
            if code == 500:
                return Fault(kind, 500, (("Content-Type", "application/json; charset=utf-8"),),
                             b'{"errorMessage":"Internal server error."}')
            return Fault(kind, code, (("Content-Type", "text/html; charset=utf-8"),),
                         _GATEWAY_PAGES[code].encode())
        if kind == "slow_response":
            return Fault(kind, delay=profile.slow_seconds if seconds is None else seconds)
        if kind == "truncated_download":
            return Fault(kind, fraction=profile.truncate_fraction)
        if kind == "unknown_status":
            return Fault(kind, value=profile.unknown_status_value)
        return Fault(kind)
