"""HTTP transport for the Cargo API: headers, retries, error mapping, token hygiene.

Only *transient* failures of calls that are *safe to repeat* are retried:

* timeouts and connection errors, 429 and 5xx (>= 499) responses;
* on idempotent calls (reads, and POSTs that only read such as ``runs/list``);
* a non-idempotent call (batch creation) is retried only when the request provably
  never reached the server (connection refused) or the server refused it with 429.

``Retry-After`` (seconds or an HTTP date) is honoured; otherwise exponential backoff with
full jitter, bounded by ``RetryPolicy.max_elapsed``. The API token lives only in the
``authorization`` header of outgoing requests to the API host: it is never logged, never
part of a ``repr`` or an exception, and never sent to download URLs (see ``download.py``).
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import CargoAPIError, CargoConfigError, CargoNetworkError, api_error_from_response
from .query import serialize_params
from .running.clock import SYSTEM_CLOCK, Clock
from .version import __version__

__all__ = ["RetryPolicy", "Transport", "DEFAULT_BASE_URL", "check_base_url", "is_loopback_host", "tls_context"]

logger = logging.getLogger("cargo_gtm")

DEFAULT_BASE_URL = "https://api.getcargo.io"
ORIGIN_NAME = "dagster-cargo"


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry transient failures.

    Args:
        max_attempts: total attempts per call, including the first (1 disables retries).
        initial_backoff: first backoff in seconds; doubles each attempt.
        max_backoff: cap on a single backoff (also caps an absurd ``Retry-After``).
        max_elapsed: stop retrying once this many seconds have passed since the first attempt.
        jitter: apply full jitter to computed backoffs (not to ``Retry-After``).
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_elapsed: float = 120.0
    jitter: bool = True

    def backoff(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` starts at 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        base = min(self.initial_backoff * (2 ** (attempt - 1)), self.max_backoff)
        return rng.uniform(0, base) if self.jitter else base


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta-seconds or HTTP-date) into seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(parsed.timestamp() - current, 0.0)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: Any) -> str:
    """``base_url`` if it names an API host this client can use, else a :class:`CargoConfigError` saying what
    to write instead. A URL ending in ``/v1`` is refused (not rewritten): the client appends ``/v1`` itself,
    as Cargo's official client does, and ``.../v1/v1/...`` would answer 404 to every call."""
    text = base_url if isinstance(base_url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CargoConfigError(f"Invalid Cargo base URL {base_url!r}: expected a host such as "
                               f"{DEFAULT_BASE_URL}.", hint="pass the API host only, e.g. base_url="
                               f"'{DEFAULT_BASE_URL}' or the emulator's 'http://127.0.0.1:<port>'.")
    path = parts.path.rstrip("/")
    if path.lower().endswith("/v1"):
        host_only = text[: text.rstrip("/").lower().rindex("/v1")]
        raise CargoConfigError(
            f"Cargo base URL {base_url!r} ends in /v1; the client appends /v1 itself, so every call would go "
            f"to {host_only}/v1/v1/... and answer 404.", hint=f"remove /v1: base_url={host_only!r}.")
    return text


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context (httpx's defaults: certifi's CA bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), shared by the API client and the download client.

    Loading the CA bundle costs ~30 ms of CPU per ``httpx.Client`` created with ``verify=True``; the download
    client is created on the first download, so without sharing every first download paid it again.
    """
    return httpx.create_ssl_context()


def _join(base: str, endpoint: str) -> str:
    return f"{base.rstrip('/')}/v1/{endpoint.lstrip('/')}"


@dataclass
class Transport:
    """Sends requests to ``<base_url>/v1/...`` the way Cargo's official client does.

    Not usually used directly: see :class:`cargo_gtm.CargoClient`.
    """

    api_token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    workspace_uuid: str | None = None
    timeout: float = 60.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    allow_insecure_http: bool = False
    sleep: Callable[[float], None] | None = field(default=None, repr=False)
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)
    http: httpx.Client | None = field(default=None, repr=False)
    on_request: Callable[[str, str], None] | None = field(default=None, repr=False)
    seed: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.api_token or not isinstance(self.api_token, str):
            raise CargoConfigError(
                "No Cargo API token configured. Create one in Cargo (Settings → API Tokens) "
                "and pass it as api_token, e.g. EnvVar('CARGO_API_TOKEN')."
            )
        check_base_url(self.base_url)
        parts = urlsplit(self.base_url)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname) and not self.allow_insecure_http:
            raise CargoConfigError(
                f"Refusing to send the Cargo API token over plain http to {parts.hostname}. "
                "Use https, or set allow_insecure_http=True if this host is trusted."
            )
        self._rng = random.Random(self.seed)
        self._owns_http = self.http is None
        if self.http is None:
            self.http = httpx.Client(
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                follow_redirects=False, verify=tls_context(),
            )
        self.request_count = 0

    # -- headers -------------------------------------------------------------------------
    def _headers(self, has_body: bool, with_workspace: bool = True) -> dict[str, str]:
        headers = {
            "authorization": f"Bearer {self.api_token}",
            "x-cargo-origin": ORIGIN_NAME,
            "x-cargo-origin-version": __version__,
            "user-agent": f"{ORIGIN_NAME}/{__version__}",
        }
        if self.workspace_uuid and with_workspace:
            headers["selected-workspace-uuid"] = self.workspace_uuid
        if has_body:
            headers["content-type"] = "application/json"
        return headers

    def close(self) -> None:
        if self._owns_http and self.http is not None:
            self.http.close()

    # -- the one request loop ------------------------------------------------------------
    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
        send_body: bool | None = None,
        idempotent: bool,
        batch_uuid: str | None = None,
        without_workspace: bool = False,
    ) -> Any:
        """Send one API call and return the parsed JSON body (``None`` for an empty body).

        Args:
            method: HTTP method.
            endpoint: path under ``/v1`` (e.g. ``/orchestration/batches``).
            params: query params, serialized like the official client.
            payload: JSON body; sent for non-GET methods when not ``None``.
            send_body: force (``True``) or suppress (``False``) a body.
            idempotent: whether the call may be repeated after an ambiguous failure.
            batch_uuid: attached to errors so they name the batch.
            without_workspace: omit ``selected-workspace-uuid`` (user-level calls).
        """
        method = method.upper()
        url = _join(self.base_url, endpoint) + serialize_params(params)
        has_body = method != "GET" and (payload is not None if send_body is None else send_body)
        content = json.dumps(payload if payload is not None else {}, default=str).encode() if has_body else None
        headers = self._headers(has_body, not without_workspace)
        assert self.http is not None
        started = self.clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.request_count += 1
            if self.on_request is not None:
                self.on_request(method, endpoint)
            try:
                response = self.http.request(method, url, content=content, headers=headers)
            except httpx.TransportError as exc:
                error: CargoNetworkError | CargoAPIError = self._network_error(exc, method, endpoint, batch_uuid)
                retry_after, failure = None, type(exc).__name__
            else:
                if response.is_success:
                    return _parse_body(response.text)
                retry_after, failure = parse_retry_after(response.headers.get("retry-after")), \
                    f"HTTP {response.status_code}"
                error = api_error_from_response(
                    status=response.status_code, method=method, endpoint=endpoint,
                    body=_parse_error_body(response.text), batch_uuid=batch_uuid, retry_after=retry_after)
            if not (self._should_retry(error, idempotent) and self._may_retry(attempt, started, retry_after)):
                raise error from None
            delay = self._retry_delay(attempt, retry_after)
            logger.warning("Cargo %s %s: %s; retry %d in %.1fs", method, endpoint, failure, attempt, delay)
            self._sleep(delay)

    def _network_error(self, exc: httpx.TransportError, method: str, endpoint: str,
                       batch_uuid: str | None) -> CargoNetworkError:
        """The error for a request that got no response (the token scrubbed from httpx's text)."""
        return CargoNetworkError(
            f"Cargo API {method} {endpoint} got no response ({type(exc).__name__}: "
            f"{_scrub(str(exc), self.api_token)})" + (f" for batch {batch_uuid}" if batch_uuid else "") + ".",
            hint=f"check connectivity to {urlsplit(self.base_url).hostname}; transient errors are retried "
            "automatically.",
            method=method, endpoint=endpoint,
            never_sent=isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)),
        )

    @staticmethod
    def _should_retry(error: CargoNetworkError | CargoAPIError, idempotent: bool) -> bool:
        """The retry decision: a transient failure of a call that is safe to repeat.

        Transient: no response, 429, or 499 and above. A call that may not be repeated (a create) is
        repeated only when the request provably never reached the server (connection refused) or was
        refused with 429 ("not processed").
        """
        if isinstance(error, CargoNetworkError):
            return idempotent or error.never_sent
        if error.status == 429:
            return True
        return idempotent and error.status >= 499

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """The retry delay before attempt ``attempt + 1``: ``Retry-After`` when given, else jittered backoff."""
        return self.retry.backoff(attempt, retry_after, self._rng)

    def _sleep(self, seconds: float) -> None:
        # `is None`, not truthiness: a sleep= callable may be falsy (e.g. a list recording the delays)
        (self.sleep if self.sleep is not None else self.clock.sleep)(seconds)

    def _may_retry(self, attempt: int, started: float, retry_after: float | None) -> bool:
        if attempt >= self.retry.max_attempts:
            return False
        elapsed = self.clock.monotonic() - started
        upcoming = retry_after if retry_after is not None else 0.0
        return elapsed + upcoming <= self.retry.max_elapsed


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _parse_body(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_error_body(text: str) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text[:2000]
