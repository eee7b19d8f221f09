"""Retry rules, headers and token hygiene of the transport.

These faults (429, 5xx, dropped connections) are injected with httpx.MockTransport
because the emulator cannot produce them yet.
"""

import json

import httpx
import pytest
from cargo_gtm import (
    CargoClient,
    CargoConfigError,
    CargoNetworkError,
    CargoRequestError,
    CargoServerError,
    RetryPolicy,
)

from dagster_cargo.version import __version__

TOKEN = "tok-SECRET-123"
BATCH = {"uuid": "b1", "workflowUuid": "wf", "status": "pending", "data": {"kind": "records"}}


def make_client(handler, **kw):
    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = CargoClient(
        TOKEN, base_url="https://api.example.test", http=http, sleep=sleeps.append,
        retry=RetryPolicy(max_attempts=4, initial_backoff=0.5, jitter=False), **kw,
    )
    return client, sleeps


def test_headers_like_official_client_plus_origin():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"plays": []})

    client, _ = make_client(handler, workspace_uuid="ws-1")
    client.list_plays(is_enabled=True)
    req = seen[0]
    assert str(req.url) == "https://api.example.test/v1/orchestration/plays/list?isEnabled=true"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["selected-workspace-uuid"] == "ws-1"
    assert req.headers["x-cargo-origin"] == "dagster-cargo"
    assert req.headers["x-cargo-origin-version"] == __version__
    assert "content-type" not in req.headers  # no body on GET


def test_cancel_sends_no_body_and_download_sends_empty_object():
    seen = []

    def handler(request):
        seen.append(request)
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"url": "https://files.example.test/x.csv"})

    client, _ = make_client(handler)
    client.cancel_batch("b1")
    client.get_batch_download_url("b1")
    assert seen[0].content == b"" and "content-type" not in seen[0].headers
    assert json.loads(seen[1].content) == {} and seen[1].headers["content-type"] == "application/json"


def test_429_honours_retry_after_then_succeeds():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(429, headers={"retry-after": "7"}, json={"errorMessage": "slow down"})
        return httpx.Response(200, json={"plays": []})

    client, sleeps = make_client(handler)
    assert client.list_plays() == []
    assert sleeps == [7.0, 7.0]


def test_a_falsy_sleep_callable_is_still_the_one_used():
    """``sleep=`` is used whenever given, even when the object is falsy (an empty recording list)."""

    class Recorder(list):
        def __call__(self, seconds: float) -> None:
            self.append(seconds)

    recorder = Recorder()
    responses = iter([httpx.Response(429, headers={"retry-after": "2"}), httpx.Response(200, json={"plays": []})])
    http = httpx.Client(transport=httpx.MockTransport(lambda request: next(responses)))
    client = CargoClient(TOKEN, base_url="https://api.example.test", http=http, sleep=recorder)
    assert client.list_plays() == [] and recorder == [2.0]


def test_5xx_retried_on_reads_with_exponential_backoff():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(503) if len(calls) < 3 else httpx.Response(200, json={"batch": BATCH})

    client, sleeps = make_client(handler)
    assert client.get_batch("b1").uuid == "b1"
    assert sleeps == [0.5, 1.0]


def test_4xx_is_never_retried():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(400, json={"reason": "invalidDataKind"})

    client, sleeps = make_client(handler)
    with pytest.raises(CargoRequestError):
        client.create_batch("wf", {"kind": "records", "records": [{"a": 1}]}, reconcile=False)
    assert len(calls) == 1 and sleeps == []


def test_create_batch_not_retried_on_5xx_or_read_timeout():
    for failure in (lambda r: httpx.Response(502), "timeout"):
        calls = []

        def handler(request, failure=failure):
            calls.append(1)
            if failure == "timeout":
                raise httpx.ReadTimeout("read timed out", request=request)
            return failure(request)

        client, _ = make_client(handler)
        with pytest.raises((CargoServerError, CargoNetworkError)):
            client.create_batch("wf", {"kind": "records", "records": [{"a": 1}]}, reconcile=False)
        assert len(calls) == 1, "an ambiguous create must not be repeated: it could double-spend"


def test_create_batch_retried_when_connection_refused_or_429():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) == 2:
            return httpx.Response(429)
        return httpx.Response(200, json={"batch": BATCH})

    client, _ = make_client(handler)
    assert client.create_batch("wf", {"kind": "records", "records": [{"a": 1}]}, reconcile=False).uuid == "b1"
    assert len(calls) == 3


def test_gives_up_after_max_attempts_and_message_is_actionable():
    def handler(request):
        raise httpx.ConnectError(f"cannot connect with {TOKEN}", request=request)

    client, sleeps = make_client(handler)
    with pytest.raises(CargoNetworkError) as info:
        client.list_tools()
    assert len(sleeps) == 3
    assert "GET /orchestration/tools/list" in str(info.value)
    assert "Next step" in str(info.value)
    assert TOKEN not in str(info.value)


def test_token_absent_from_reprs():
    client, _ = make_client(lambda r: httpx.Response(200, json={}))
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client._transport)


def test_plain_http_to_remote_host_refused_but_loopback_allowed():
    with pytest.raises(CargoConfigError, match="plain http"):
        CargoClient(TOKEN, base_url="http://api.example.test")
    CargoClient(TOKEN, base_url="http://127.0.0.1:8000").close()
    CargoClient(TOKEN, base_url="http://api.example.test", allow_insecure_http=True).close()
    with pytest.raises(CargoConfigError, match="No Cargo API token"):
        CargoClient("", base_url="https://api.example.test")


def test_current_user_is_sent_without_workspace_header():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"user": {"uuid": "u1", "email": "a@b.c"}})

    client, _ = make_client(handler, workspace_uuid="ws-1")
    assert client.get_current_user().uuid == "u1"
    assert "selected-workspace-uuid" not in seen[0].headers
