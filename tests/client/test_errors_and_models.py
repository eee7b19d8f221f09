"""Error mapping and tolerant parsing."""

from datetime import datetime, timezone

from cargo_gtm import (
    Batch,
    BatchStatus,
    CargoAuthError,
    CargoCreditsError,
    CargoNotFoundError,
    CargoRateLimitError,
    CargoRequestError,
    CargoServerError,
    Release,
)
from cargo_gtm.errors import api_error_from_response

BATCH = {
    "uuid": "b1", "workspaceUuid": "w1", "workflowUuid": "wf1", "userUuid": None, "releaseUuid": "r1",
    "nodes": None, "temporalWorkflowId": "t", "traceUuid": None, "data": {"kind": "filter", "modelUuid": "m"},
    "errorMessage": None, "status": "running", "runsStatus": None, "runsCount": 10, "executedRunsCount": 4,
    "failedRunsCount": 1, "creditsUsedCount": 12.5, "createdAt": "2025-01-15T10:00:00.000Z",
    "updatedAt": "2025-01-15T10:01:00Z", "finishedAt": None,
}


def test_batch_parses_dates_and_counts():
    batch = Batch.model_validate(BATCH)
    assert batch.created_at == datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)
    assert batch.status is BatchStatus.RUNNING and not batch.is_terminal
    assert batch.succeeded_runs_count == 3
    assert batch.data_kind == "filter"
    assert batch.to_wire()["creditsUsedCount"] == 12.5


def test_unknown_status_and_extra_fields_do_not_crash():
    batch = Batch.model_validate({**BATCH, "status": "paused_for_review", "brandNewField": {"x": 1}})
    assert batch.status.value == "paused_for_review"
    assert not batch.status.is_known
    assert not batch.is_terminal  # an unknown status is never terminal, never success
    assert batch.status != BatchStatus.SUCCESS
    assert batch.model_extra == {"brandNewField": {"x": 1}}


def test_release_output_node_is_leaf_of_first_branch():
    nodes = [
        {"uuid": "n3", "slug": "output", "kind": "native", "actionSlug": "end", "config": {}, "childrenUuids": []},
        {"uuid": "n1", "slug": "start", "kind": "native", "actionSlug": "start", "config": {}, "childrenUuids": ["n2"]},
        {"uuid": "n2", "slug": "enrich", "kind": "connector", "actionSlug": "x", "integrationSlug": "y",
         "config": {}, "childrenUuids": ["n3", None]},
    ]
    release = Release.model_validate({"uuid": "r", "workflowUuid": "w", "status": "deployed", "nodes": nodes})
    assert release.output_node().slug == "output"


def test_error_body_and_canned_messages():
    err = api_error_from_response(status=400, method="POST", endpoint="/orchestration/batches",
                                  body={"reason": "invalidDataKind"})
    assert isinstance(err, CargoRequestError)
    assert err.reason == "invalidDataKind"
    assert "Invalid data kind for workflow type." in str(err)
    assert "Plays take segment" in str(err)  # what to do next

    err = api_error_from_response(status=400, method="POST", endpoint="/orchestration/batches",
                                  body={"reason": "dataError", "dataError": {"reason": "segmentLinkedToPlay"}})
    assert err.data_error_reason == "segmentLinkedToPlay"
    assert "belongs to a play" in str(err)

    err = api_error_from_response(status=400, method="POST", endpoint="/x",
                                  body={"errorMessage": "Custom text", "reason": "notEnoughCredits"}, batch_uuid="b9")
    assert isinstance(err, CargoCreditsError)
    assert "Custom text" in str(err) and "b9" in str(err)


def test_status_mapping_matches_official_client():
    mk = lambda s, body=None: api_error_from_response(status=s, method="GET", endpoint="/x", body=body or {})
    assert isinstance(mk(401), CargoAuthError)
    assert isinstance(mk(429), CargoRateLimitError)
    assert isinstance(mk(404), CargoNotFoundError)
    assert isinstance(mk(400, {"reason": "playNotFound"}), CargoNotFoundError)
    assert isinstance(mk(498), CargoRequestError)
    assert isinstance(mk(499), CargoServerError)  # the official check is status < 499
    assert isinstance(mk(503), CargoServerError)
    assert str(mk(500)).count("Server error") == 1


def test_a_redirect_is_not_reported_as_a_server_error():
    from cargo_gtm.errors import CargoRedirectError, api_error_from_response

    err = api_error_from_response(status=302, method="GET", endpoint="/orchestration/plays/list", body="")
    assert isinstance(err, CargoRedirectError)
    text = str(err)
    assert "Server error" not in text and "Cargo's side" not in text
    assert "does not follow redirects" in text and "base_url" in text


def test_errors_carry_the_next_step_as_a_field():
    """The advice is ``hint``, the rest is ``message``; ``str()`` shows both, so nothing parses text."""
    from cargo_gtm.errors import CargoDownloadError, CargoError

    api = api_error_from_response(status=400, method="POST", endpoint="/orchestration/batches",
                                  body={"reason": "notEnoughCredits"}, batch_uuid="b-1")
    assert api.hint == "Top up credits in Cargo (Settings → Billing) or lower the batch size."
    assert "Next step" not in api.message and "b-1" in api.message
    assert str(api) == f"{api.message} Next step: {api.hint}"
    plain = CargoDownloadError("Cut short.", batch_uuid="b-2", hint="download again.")
    assert (plain.message, plain.hint, str(plain)) == ("Cut short.", "download again.",
                                                      "Cut short. Next step: download again.")
    assert str(CargoError("No advice.")) == "No advice." and CargoError("x").hint is None
