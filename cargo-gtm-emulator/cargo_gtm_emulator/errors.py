"""API errors with the documented ``reason`` strings, canned messages and chosen HTTP statuses."""

from __future__ import annotations

from typing import Any

#: Canned messages, character-for-character from the official client (REFERENCE §3–§6).
MESSAGES: dict[str, str] = {
    "playNotFound": "Play not found.",
    "toolNotFound": "Tool not found.",
    "workflowNotFound": "Workflow not found.",
    "releaseNotFound": "Deployed release not found.",
    "invalidReleaseOrCustomNodes": "Invalid release or custom nodes.",
    "invalidDataKind": "Invalid data kind for workflow type.",
    "nodesNotFound": "Unable to retrieve nodes.",
    "rootNodeNotFound": "Root node not found.",
    "failedToStart": "Fail to start.",
    "notEnoughCredits": "Not enough credits.",
    "concurrencyLimitReached": "Concurrency limit reached.",
    "batchNotFound": "Batch not found.",
    "batchAlreadyFinished": "Batch already finished.",
    "batchNotFinished": "Batch not finished.",
    "batchNotSupported": "Batch not supported.",
    "runNotFound": "Run not found.",
    "noRunsFound": "No runs found matching the given filters.",
    "tooManyRuns": "Export is limited to 10,000 runs. Please narrow your filters.",
    "segmentNotFound": "Segment not found.",
    "changeNotFound": "Change not found.",
    "invalidFilter": "Invalid filter.",
    "modelNotFound": "Model not found.",
    "datasetNotFound": "Dataset not found.",
    "invalidData": "Invalid data.",
    "nodeNotFound": "Node not found.",
    "playNotCompatible": "Play workflows are not compatible with run creation.",
    "noRecordsFound": "No records found matching the given filters.",
    "tooManyRecords": "Export is limited to 10,000 records. Please narrow your filters.",
    "noColumnsFound": "No columns found in the file.",
    "noFile": "No file provided",
    # releases (REFERENCE §3.8)
    "draftReleaseNotFound": "Draft release not found.",
    "invalidParent": "Invalid parent workflow release.",
    "failedToReconciliateNodes": "Failed to reconciliate nodes.",
    "draftReleaseNodesAreInvalid": "The nodes are invalid.",
    "invalidReleaseVersion": "Invalid release version.",
    "toolReleaseRequiresFormFields": "A tool release requires form fields.",
}

#: Nested ``dataError.reason`` messages for batch creation (REFERENCE §3.4).
DATA_ERROR_MESSAGES: dict[str, str] = {
    "failedToGetSegment": "Fail to get segment.",
    "segmentLinkedToPlay": (
        "This segment belongs to a play and cannot be enrolled directly. Trigger the play with "
        '{"kind":"filter","modelUuid":"<uuid>"} instead.'
    ),
    "noRecords": "No records.",
    "failedToGetSegmentChange": "Fail to get segment change.",
    "invalidChange": "Invalid change.",
    "invalidChangeKinds": "Invalid changes.",
    "invalidData": "Invalid data.",
}

#: HTTP status chosen per reason (REFERENCE §11.4 leaves this open; see EMULATOR.md).
STATUS: dict[str, int] = {
    "playNotFound": 404,
    "toolNotFound": 404,
    "workflowNotFound": 404,
    "releaseNotFound": 404,
    "batchNotFound": 404,
    "runNotFound": 404,
    "segmentNotFound": 404,
    "changeNotFound": 404,
    "modelNotFound": 404,
    "datasetNotFound": 404,
    "noRunsFound": 404,
    "nodeNotFound": 404,
    "noRecordsFound": 404,
    "notEnoughCredits": 402,
    "batchAlreadyFinished": 409,
    "batchNotFinished": 409,
}


class ApiError(Exception):
    """An error response: JSON ``{errorMessage, reason?, dataError?}`` with an HTTP status."""

    def __init__(
        self,
        reason: str | None,
        message: str | None = None,
        status: int | None = None,
        data_error: str | None = None,
    ) -> None:
        if message is None:
            if data_error is not None:
                message = DATA_ERROR_MESSAGES.get(data_error, "Invalid data.")
            else:
                message = MESSAGES.get(reason or "", "Unknown error")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status if status is not None else STATUS.get(reason or "", 400)
        self.data_error = data_error
        self.issues: list[dict[str, Any]] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        out: dict[str, Any] = {"errorMessage": self.message}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.issues is not None:
            out["issues"] = self.issues
        if self.data_error is not None:
            out["dataError"] = {"reason": self.data_error}
        return out


def data_error(nested_reason: str, message: str | None = None) -> ApiError:
    """Build a batch-creation ``dataError`` (HTTP 400) with the nested reason."""
    return ApiError("dataError", message=message, status=400, data_error=nested_reason)


def zod_error(issues: list[dict[str, Any]]) -> ApiError:
    """A 400 validation error shaped like a zod error: ``{errorMessage, reason, issues: [{code, path, message,
    ...}]}`` (CARGO-DOCS 10.1, 10.2: the body carries the issue and its ``path``)."""
    import json

    reason = str(issues[0]["code"])
    # the CLI shows such errors as "API error (400): RequestError: [ … zod issues … ]"
    err = ApiError(reason, "RequestError: " + json.dumps(issues, separators=(",", ":")), status=400)
    err.issues = issues
    return err


def unrecognized_keys(keys: list[str], path: list[Any] | None = None) -> ApiError:
    """``400 unrecognized_keys: <key>`` for keys a strict request schema does not declare."""
    return zod_error([{"code": "unrecognized_keys", "keys": keys, "path": path or [],
                       "message": "Unrecognized key(s) in object: " + ", ".join(f"'{k}'" for k in keys)}])


def zod_enum_error(name: str, received: Any, options: tuple[str, ...]) -> ApiError:
    """``400`` for a value outside an enum; the message lists the accepted values."""
    opts = " | ".join(f"'{o}'" for o in options)
    return zod_error([{"code": "invalid_enum_value", "options": list(options), "path": [name],
                       "received": received,
                       "message": f"Invalid enum value. Expected {opts}, received '{received}'"}])
