"""Exceptions raised by the Cargo client.

Every exception says *what* failed (method, endpoint, batch UUID when there is one),
carries Cargo's own ``errorMessage``/``reason``/``dataError.reason``, and ends with what
to do next. None of them ever contains the API token.

The "what to do next" text is a field of its own, :attr:`CargoError.hint`, and
:attr:`CargoError.message` is the text before it; ``str(error)`` is both
(``"<message> Next step: <hint>"``), so code that builds on an error reads the fields and
never parses the text.

Hierarchy::

    CargoError
    ├── CargoConfigError            bad client configuration (caught before any request)
    ├── CargoInputError             bad input caught before any credit is spent
    ├── CargoNetworkError           no HTTP response (connection, timeout)
    ├── CargoAPIError               an HTTP error response
    │   ├── CargoAuthError          401
    │   ├── CargoRequestError       400–498 (the official client's RequestError)
    │   │   ├── CargoNotFoundError  a *NotFound reason, or 404
    │   │   ├── CargoRateLimitError 429
    │   │   ├── CargoCreditsError   notEnoughCredits
    │   │   └── CargoConcurrencyLimitError concurrencyLimitReached
    │   └── CargoServerError        499 and 5xx
    ├── CargoBatchError             a batch reached a non-success terminal state
    │   ├── CargoBatchFailedError   status ``error``
    │   └── CargoBatchCancelledError status ``cancelled``
    ├── CargoWaitTimeoutError       waited longer than the timeout
    ├── CargoDownloadError          an output download was unusable
    └── CargoStepError              a step (batches or single runs) stopped: budget, timeout, failed rows
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CargoError",
    "CargoConfigError",
    "CargoInputError",
    "CargoNetworkError",
    "CargoAPIError",
    "CargoAuthError",
    "CargoRequestError",
    "CargoNotFoundError",
    "CargoRateLimitError",
    "CargoConcurrencyLimitError",
    "CargoCreditsError",
    "CargoServerError",
    "CargoBatchError",
    "CargoBatchFailedError",
    "CargoBatchCancelledError",
    "CargoWaitTimeoutError",
    "CargoDownloadError",
    "CargoStepError",
    "api_error_from_response",
    "with_hint",
]


class CargoError(Exception):
    """Base class of every error raised by dagster-cargo's client.

    Attributes:
        message: what failed (and Cargo's own words when it answered), without the advice.
        hint: what to do next, or ``None``; shown after ``" Next step: "`` in ``str(error)``.
    """

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(with_hint(message, hint))
        self.message = message
        self.hint = hint


def with_hint(message: str, hint: str | None) -> str:
    """The text users see: ``message``, then ``" Next step: " + hint`` when there is a hint."""
    return f"{message} Next step: {hint}" if hint else message


class CargoConfigError(CargoError):
    """The client or resource is configured in a way that cannot work."""


class CargoInputError(CargoError, ValueError):
    """Input rejected locally, before any request that could spend credits."""


class CargoNetworkError(CargoError):
    """No HTTP response was received (connection refused/reset, DNS, timeout)."""

    def __init__(self, message: str, *, method: str, endpoint: str, never_sent: bool = False,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.method = method
        self.endpoint = endpoint
        #: True when the request provably never reached the server (connection refused)
        self.never_sent = never_sent


# Messages the official client substitutes when the server sends a known ``reason``
# without an ``errorMessage`` (REFERENCE §3–§6, character for character).
_REASON_MESSAGES: dict[str, str] = {
    "workflowNotFound": "Workflow not found.",
    "invalidReleaseOrCustomNodes": "Invalid release or custom nodes.",
    "invalidDataKind": "Invalid data kind for workflow type.",
    "nodesNotFound": "Unable to retrieve nodes.",
    "rootNodeNotFound": "Root node not found.",
    "failedToStart": "Fail to start.",
    "notEnoughCredits": "Not enough credits.",
    "concurrencyLimitReached": "Concurrency limit reached.",
    "playNotFound": "Play not found.",
    "toolNotFound": "Tool not found.",
    "batchNotFound": "Batch not found.",
    "batchAlreadyFinished": "Batch already finished.",
    "batchNotFinished": "Batch not finished.",
    "batchNotSupported": "Batch not supported.",
    "releaseNotFound": "Deployed release not found.",
    "noRunsFound": "No runs found matching the given filters.",
    "tooManyRuns": "Export is limited to 10,000 runs. Please narrow your filters.",
    "changeNotFound": "Change not found.",
    "segmentNotFound": "Segment not found.",
    "invalidFilter": "Invalid filter.",
    "modelNotFound": "Model not found.",
    "datasetNotFound": "Dataset not found.",
    "playNotCompatible": "Play workflows are not compatible with run creation.",
}

_DATA_ERROR_MESSAGES: dict[str, str] = {
    "failedToGetSegment": "Fail to get segment.",
    "segmentLinkedToPlay": (
        "This segment belongs to a play and cannot be enrolled directly. Trigger the play "
        'with {"kind":"filter","modelUuid":"<uuid>"} instead.'
    ),
    "noRecords": "No records.",
    "failedToGetSegmentChange": "Fail to get segment change.",
    "invalidChange": "Invalid change.",
    "invalidChangeKinds": "Invalid changes.",
    "invalidData": "Invalid data.",
}

# What to do next, by reason (our own advice; appended to the message).
_REASON_HINTS: dict[str, str] = {
    "workflowNotFound": "Check the workflow UUID: list plays/tools to find the play's or tool's workflowUuid.",
    "invalidDataKind": (
        "Plays take segment, change, filter or recordIds data; tools take records or file data."
    ),
    "notEnoughCredits": "Top up credits in Cargo (Settings → Billing) or lower the batch size.",
    "concurrencyLimitReached": (
        "The Cargo workspace is running as much as it allows at once; nothing was created. Let other batches "
        "finish, or start fewer at once: lower the Dagster pool limit of Cargo assets "
        "(`dagster instance concurrency set cargo <n>`)."
    ),
    "batchNotFinished": "Wait until the batch is terminal before downloading (CargoClient.wait_for_batch).",
    "batchAlreadyFinished": "The batch is already terminal; nothing to cancel.",
    "batchNotFound": "Check the batch UUID and that the token's workspace owns it.",
    "releaseNotFound": "Deploy the workflow in Cargo first, or pass an explicit output node slug.",
    "playNotFound": "List plays (CargoClient.list_plays) to find the right UUID.",
    "toolNotFound": "List tools (CargoClient.list_tools) to find the right UUID.",
    "tooManyRuns": "Narrow the export with batchUuid/createdAfter filters or download per batch.",
    "noRunsFound": "No run matched the filters; check the batch/workflow UUIDs.",
    "segmentLinkedToPlay": 'Trigger the play with {"kind":"filter","modelUuid":"<uuid>"} instead.',
    "noRecords": "The input resolved to zero records; widen the filter or segment.",
}


def _first_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class CargoAPIError(CargoError):
    """Cargo answered with an HTTP error status.

    Attributes:
        status: HTTP status code.
        method, endpoint: the call that failed (``endpoint`` has no host and no query secret).
        reason: Cargo's machine-readable ``reason`` (or ``None``).
        error_message: Cargo's ``errorMessage`` verbatim (or ``None``).
        data_error_reason: nested ``dataError.reason`` for batch creation.
        batch_uuid: the batch concerned, when known.
        body: the parsed error body (dict) or raw text.
    """

    default_message = "Unknown error"

    def __init__(
        self,
        *,
        status: int,
        method: str,
        endpoint: str,
        body: Any = None,
        batch_uuid: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.endpoint = endpoint
        self.body = body
        self.batch_uuid = batch_uuid
        self.retry_after = retry_after
        data = body if isinstance(body, dict) else {}
        self.error_message: str | None = _first_str(data.get("errorMessage"))
        self.reason: str | None = _first_str(data.get("reason"))
        data_error = data.get("dataError")
        self.data_error_reason: str | None = (
            _first_str(data_error.get("reason")) if isinstance(data_error, dict) else None
        )
        super().__init__(self._format(), hint=self._advice())

    @property
    def cargo_message(self) -> str:
        """The message the official client would show for this error."""
        if self.error_message:
            return self.error_message
        if self.reason == "dataError" and self.data_error_reason in _DATA_ERROR_MESSAGES:
            return _DATA_ERROR_MESSAGES[self.data_error_reason]
        if self.reason in _REASON_MESSAGES and 400 <= self.status < 499 and self.status != 401:
            return _REASON_MESSAGES[self.reason]
        return self.default_message

    def _advice(self) -> str:
        """What the user should do next (the :attr:`hint`)."""
        key = self.data_error_reason if self.reason == "dataError" else self.reason
        if key and key in _REASON_HINTS:
            return _REASON_HINTS[key]
        return "Check the request against Cargo's API reference; the reason above says what Cargo rejected."

    def _format(self) -> str:
        parts = [f"Cargo API {self.method} {self.endpoint} failed with HTTP {self.status}"]
        details = []
        if self.reason:
            details.append(f"reason={self.reason}")
        if self.data_error_reason:
            details.append(f"dataError.reason={self.data_error_reason}")
        if self.batch_uuid:
            details.append(f"batch={self.batch_uuid}")
        if details:
            parts.append(f" ({', '.join(details)})")
        message = str(self.cargo_message).rstrip()
        parts.append(f": {message}" + ("" if message.endswith((".", "!", "?")) else "."))
        return "".join(parts)


class CargoAuthError(CargoAPIError):
    """HTTP 401: the token is missing, wrong, revoked or lacks access to the workspace."""

    default_message = "Not authorized"

    def _advice(self) -> str:
        return (
            "Check the API token (Cargo → Settings → API Tokens; set it with "
            "EnvVar('CARGO_API_TOKEN')) and the selected workspace UUID."
        )


class CargoRequestError(CargoAPIError):
    """HTTP 400–498: Cargo rejected the request."""


class CargoNotFoundError(CargoRequestError):
    """The referenced object does not exist (404 or a ``*NotFound`` reason)."""


class CargoRateLimitError(CargoRequestError):
    """HTTP 429: too many requests. ``retry_after`` holds the server's hint in seconds."""

    default_message = "Too many requests"

    def _advice(self) -> str:
        wait = f" (server asked to wait {self.retry_after:g}s)" if self.retry_after else ""
        return f"Slow down: raise poll intervals or lower concurrency{wait}."


class CargoCreditsError(CargoRequestError):
    """``notEnoughCredits``: the workspace has no credits left for this batch."""


class CargoConcurrencyLimitError(CargoRequestError):
    """``concurrencyLimitReached``: the workspace is at its concurrency limit; the create made nothing,
    so it is safe to send again (:func:`cargo_gtm.running.busy.send_when_free` does, with back-off).
    ``waited``/``attempts``: the back-off already spent when this is the final refusal."""

    waited: float = 0.0
    attempts: int = 1


class CargoServerError(CargoAPIError):
    """HTTP 499 or 5xx: Cargo failed to handle the request."""

    default_message = "Server error"

    def _advice(self) -> str:
        return "This is on Cargo's side; it was retried where safe. Try again later or contact Cargo support."


class CargoRedirectError(CargoAPIError):
    """HTTP 3xx: the host answered with a redirect, which the client never follows."""

    default_message = "Redirected"

    def _advice(self) -> str:
        return (
            "The client does not follow redirects, so the request (and the API token) went nowhere else. "
            "Check base_url: it must be Cargo's API host itself (https://api.getcargo.io), not the web app "
            "or a URL that redirects."
        )


def api_error_from_response(
    *,
    status: int,
    method: str,
    endpoint: str,
    body: Any,
    batch_uuid: str | None = None,
    retry_after: float | None = None,
) -> CargoAPIError:
    """Build the most specific :class:`CargoAPIError` for an error response."""
    kwargs: dict[str, Any] = dict(
        status=status, method=method, endpoint=endpoint, body=body,
        batch_uuid=batch_uuid, retry_after=retry_after,
    )
    if status == 401:
        return CargoAuthError(**kwargs)
    if 300 <= status < 400:
        return CargoRedirectError(**kwargs)
    if status >= 499 or status < 400:
        return CargoServerError(**kwargs)
    if status == 429:
        return CargoRateLimitError(**kwargs)
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason == "notEnoughCredits":
        return CargoCreditsError(**kwargs)
    if reason == "concurrencyLimitReached":
        return CargoConcurrencyLimitError(**kwargs)
    if status == 404 or (isinstance(reason, str) and reason.endswith("NotFound")):
        return CargoNotFoundError(**kwargs)
    return CargoRequestError(**kwargs)


class CargoBatchError(CargoError):
    """A batch ended in a non-success terminal state."""

    def __init__(self, message: str, *, batch: Any, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.batch = batch
        self.batch_uuid: str = getattr(batch, "uuid", "")


class CargoBatchFailedError(CargoBatchError):
    """The batch ended with status ``error``."""


class CargoBatchCancelledError(CargoBatchError):
    """The batch ended with status ``cancelled``."""


class CargoWaitTimeoutError(CargoError):
    """A batch did not reach a terminal state within the allowed time."""

    def __init__(self, message: str, *, batch_uuid: str, last_status: str | None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.batch_uuid = batch_uuid
        self.last_status = last_status


class CargoDownloadError(CargoError):
    """An output file could not be downloaded or failed an integrity check."""

    def __init__(self, message: str, *, batch_uuid: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.batch_uuid = batch_uuid


class CargoStepError(CargoError):
    """A step run by :mod:`cargo_gtm.running.step` stopped: over its credit budget, past its timeout, failed
    records under ``failed_rows='fail'``, or a batch that ended ``error``/``cancelled``.

    ``metadata``: plain figures for the orchestrator to record (``batch_uuid`` or ``run_uuid``,
    ``credits_used``, ``credit_budget``, ``failed_rows``, ``batch_url`` …), keyed without a namespace.
    """

    def __init__(self, message: str, *, metadata: dict[str, Any] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.metadata = dict(metadata or {})
