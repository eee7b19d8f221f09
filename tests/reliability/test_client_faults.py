"""The client against the emulator with scripted faults: one fault, one expected behaviour.

The emulator's clock is manual (batches only move when a test advances it) and the client's
sleep is recorded instead of slept, so these tests are exact and fast; waits in them never
depend on wall-clock speed.
"""

from collections.abc import Iterator

import pytest
from cargo_gtm import CargoClient, records_data
from cargo_gtm.errors import (
    CargoAuthError,
    CargoDownloadError,
    CargoNotFoundError,
    CargoRequestError,
    CargoWaitTimeoutError,
)
from cargo_gtm.models import BatchStatus
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator, FaultProfile
from cargo_gtm_emulator.enrichment import enrich_company

TOKEN = "tok-reliability-5d0e2b9a41c7"
CREATE = "/v1/orchestration/batches"
DOMAINS = [f"fault{i}.example" for i in range(6)]


class Sleeps(list):
    """Stands in for ``time.sleep``: records each requested delay; optionally moves the emulator's clock."""

    def __init__(self, emu: CargoEmulator | None = None, advance: float = 0.0) -> None:
        super().__init__()
        self.emu, self.advance = emu, advance

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.emu is not None and self.advance:
            self.emu.advance(self.advance)


@pytest.fixture
def emu() -> Iterator[CargoEmulator]:
    # a zero-probability profile only sets parameters of scripted faults (Retry-After form, unknown status)
    profile = FaultProfile(retry_after_seconds=3.0, retry_after_http_date_rate=0.0)
    with CargoEmulator(token=TOKEN, clock="manual", seed=3, run_failure_rate=0.0, faults=profile) as e:
        yield e


def make_client(emu: CargoEmulator, sleeps: Sleeps, timeout: float = 5.0) -> CargoClient:
    return CargoClient(TOKEN, base_url=emu.base_url, sleep=sleeps, timeout=timeout)


def log(emu: CargoEmulator, method: str | None = None, path: str | None = None) -> list[dict]:
    return [e for e in emu.request_log
            if (method is None or e["method"] == method) and (path is None or e["path"] == path)]


def tool_workflow(emu: CargoEmulator) -> str:
    return str(emu.store.tool_by_name("Enrich company")["workflowUuid"])


def data() -> dict:
    return records_data([{"domain": d, "company_name": d.split(".")[0]} for d in DOMAINS])


def finished_batch(emu: CargoEmulator, client: CargoClient) -> str:
    batch = client.create_batch(tool_workflow(emu), data())
    emu.advance(600)
    assert client.get_batch(batch.uuid).status == BatchStatus.SUCCESS
    return batch.uuid


def assert_complete(frame) -> None:
    assert sorted(frame["domain"]) == sorted(DOMAINS)
    for row in frame.to_dict("records"):
        want = enrich_company(row["domain"])
        assert (row["industry"], row["employee_range"], row["linkedin_url"]) == (
            want["industry"], want["employee_range"], want["linkedin_url"])


# ---------------------------------------------------------------------------- batch creation
def test_lost_create_response_adopts_the_one_committed_batch(emu):
    emu.faults.next(f"POST {CREATE}", "lost_create_response")
    with make_client(emu, Sleeps(emu, advance=5.0)) as client:  # Cargo's time passes while reconciling
        batch = client.create_batch(tool_workflow(emu), data())
    assert [b.uuid for b in emu.batches()] == [batch.uuid]  # exactly one batch, and it is the one returned
    creates = log(emu, "POST", CREATE)
    assert len(creates) == 1 and creates[0]["fault"] == "lost_create_response"  # adopted, never resent
    assert emu.faults.counts["lost_create_response"] == 1


def test_slow_create_response_past_the_read_timeout_is_adopted_not_resent(emu):
    # real time (1 s): a socket read timeout over loopback HTTP fires only on the wall clock
    emu.faults.next(f"POST {CREATE}", "slow_response", seconds=1.0)
    with make_client(emu, Sleeps(emu, advance=5.0), timeout=0.3) as client:
        batch = client.create_batch(tool_workflow(emu), data())
    assert [b.uuid for b in emu.batches()] == [batch.uuid]
    assert len(log(emu, "POST", CREATE)) == 1


def test_5xx_on_create_is_reconciled_before_sending_again(emu):
    emu.faults.next(f"POST {CREATE}", "server_error", status=500)  # handler not run: nothing committed
    sleeps = Sleeps()
    with make_client(emu, sleeps) as client:
        batch = client.create_batch(tool_workflow(emu), data())
    assert [b.uuid for b in emu.batches()] == [batch.uuid]
    calls = [(e["method"], e["path"], e.get("fault")) for e in emu.request_log
             if e["path"] in (CREATE, "/v1/orchestration/batches/list")]
    first, second = [i for i, c in enumerate(calls) if c[:2] == ("POST", CREATE)]
    assert calls[first][2] == "server_error" and calls[second][2] is None
    # not a blind retry: the workflow's batches were listed (and the server given time to settle) in between
    between = calls[first + 1:second]
    assert between and all(c[1].endswith("/list") for c in between)
    assert sum(sleeps) >= 1.0


def test_429_on_create_is_retried_after_retry_after(emu):
    emu.faults.next(f"POST {CREATE}", "rate_limit")
    sleeps = Sleeps()
    with make_client(emu, sleeps) as client:
        batch = client.create_batch(tool_workflow(emu), data())
    assert [b.uuid for b in emu.batches()] == [batch.uuid]
    assert [e.get("fault") for e in log(emu, "POST", CREATE)] == ["rate_limit", None]
    assert sleeps == [3.0]


def test_connection_reset_on_create_is_reconciled_then_sent_once_more(emu):
    emu.faults.next(f"POST {CREATE}", "connection_reset")
    with make_client(emu, Sleeps()) as client:
        batch = client.create_batch(tool_workflow(emu), data())
    assert [b.uuid for b in emu.batches()] == [batch.uuid]
    assert [e.get("fault") for e in log(emu, "POST", CREATE)] == ["connection_reset", None]


# ---------------------------------------------------------------------------- safe calls
@pytest.mark.parametrize("http_date", [False, True])
def test_429_retry_after_is_honoured(emu, http_date):
    emu.faults.profile = FaultProfile(retry_after_seconds=3.0, retry_after_http_date_rate=1.0 if http_date else 0.0)
    emu.faults.next("GET /v1/orchestration/tools/list", "rate_limit")
    sleeps = Sleeps()
    with make_client(emu, sleeps) as client:
        assert client.find_tool("Enrich company").name == "Enrich company"
    listed = log(emu, "GET", "/v1/orchestration/tools/list")
    assert [e.get("fault") for e in listed] == ["rate_limit", None]
    assert len(sleeps) == 1
    # the wait is the server's, not the default backoff (0.5 s with jitter); an HTTP date has 1 s precision
    assert sleeps[0] == 3.0 if not http_date else 1.0 < sleeps[0] <= 3.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_on_a_get_is_retried(emu, status):
    with make_client(emu, Sleeps()) as client:
        uuid = finished_batch(emu, client)
        emu.faults.next("GET /v1/orchestration/batches/*", "server_error", times=2, status=status)
        assert client.get_batch(uuid).status == BatchStatus.SUCCESS
    gets = log(emu, "GET", f"/v1/orchestration/batches/{uuid}")
    assert [e.get("fault") for e in gets[-3:]] == ["server_error", "server_error", None]


def test_connection_reset_on_a_get_is_retried(emu):
    emu.faults.next("GET /v1/orchestration/tools/list", "connection_reset")
    with make_client(emu, Sleeps()) as client:
        assert client.find_tool("Enrich company")
    assert [e.get("fault") for e in log(emu, "GET", "/v1/orchestration/tools/list")] == ["connection_reset", None]


def test_a_4xx_is_never_retried(emu):
    sleeps = Sleeps()
    with make_client(emu, sleeps) as client:
        with pytest.raises(CargoNotFoundError) as info:
            client.get_batch("00000000-0000-4000-8000-000000000000")
        assert "Next step" in str(info.value)
        with pytest.raises(CargoRequestError):
            client.create_batch(tool_workflow(emu), {"kind": "segment", "segmentUuid": "nope"}, reconcile=False)
    assert len(log(emu, "GET", "/v1/orchestration/batches/00000000-0000-4000-8000-000000000000")) == 1
    assert len(log(emu, "POST", CREATE)) == 1
    assert sleeps == [] and emu.batches() == []


def test_401_is_not_retried(emu):
    with CargoClient("wrong-token", base_url=emu.base_url, sleep=Sleeps()) as client, pytest.raises(CargoAuthError):
        client.list_tools()
    assert len(log(emu, "GET", "/v1/orchestration/tools/list")) == 1


# ---------------------------------------------------------------------------- waiting
def test_unknown_status_is_not_finished_and_polling_goes_on(emu):
    emu.faults.profile = FaultProfile(unknown_status_polls=3)
    clock = ManualClock(on_sleep=lambda s: emu.advance(2.0))  # each wait between polls moves the batch on 2 s
    seen = []
    with CargoClient(TOKEN, base_url=emu.base_url, clock=clock) as client:
        batch = client.create_batch(tool_workflow(emu), data())
        emu.faults.next("GET /v1/orchestration/batches/*", "unknown_status")
        final = client.wait_for_batch(batch.uuid, poll_interval=0.01, max_poll_interval=0.01,
                                      on_progress=lambda p: seen.append(p.batch.status.value))
    assert seen[:3] == ["paused_for_review"] * 3  # three polls answered with a status the client does not know
    assert len(seen) > 3 and seen[-1] == "success"  # ... were not taken as the end: polling went on
    assert final.status == BatchStatus.SUCCESS and next(b for b in emu.batches() if b.uuid == batch.uuid).status == "success"


def test_an_unknown_status_is_never_terminal_and_a_wait_on_it_times_out(emu):
    emu.faults.profile = FaultProfile(unknown_status_polls=1_000_000, unknown_status_value="on_hold")
    with CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock()) as client:  # waits move no time in Cargo
        batch = client.create_batch(tool_workflow(emu), data())
        emu.faults.next("GET /v1/orchestration/batches/*", "unknown_status")
        seen = client.get_batch(batch.uuid)
        assert seen.status.value == "on_hold" and not seen.status.is_known
        assert not seen.is_terminal and seen.status != BatchStatus.SUCCESS
        with pytest.raises(CargoWaitTimeoutError) as info:  # frozen clock: it never finishes
            client.wait_for_batch(batch.uuid, timeout=0.2, poll_interval=0.01, max_poll_interval=0.01)
    assert info.value.batch_uuid == batch.uuid and info.value.last_status == "on_hold"
    assert batch.uuid in str(info.value) and "Next step" in str(info.value)


# ---------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("kind", ["truncated_download", "expired_download_url", "connection_reset"])
def test_bad_download_is_retried_with_a_fresh_url_and_the_frame_is_complete(emu, kind):
    with make_client(emu, Sleeps()) as client:
        uuid = finished_batch(emu, client)
        emu.faults.next("GET /_files/*", kind)
        frame = client.download_batch_dataframe(uuid, expected_rows=len(DOMAINS))
    assert len(frame) == len(DOMAINS)
    assert_complete(frame)
    assert len(log(emu, "POST", f"/v1/orchestration/batches/{uuid}/download")) == 2  # a URL per attempt
    fetches = [e for e in emu.request_log if e["path"].startswith("/_files/")]
    assert [e.get("fault") for e in fetches] == [kind, None]
    assert len({(e["path"], e["query"]) for e in fetches}) == 2  # the second fetch used a new URL


def test_the_token_is_never_sent_to_the_download_host(emu):
    emu.faults.next("GET /_files/*", "expired_download_url")
    with make_client(emu, Sleeps()) as client:
        uuid = finished_batch(emu, client)
        client.download_batch_dataframe(uuid, expected_rows=len(DOMAINS))
    fetches = [e for e in emu.request_log if e["path"].startswith("/_files/")]
    assert len(fetches) == 2
    for entry in fetches:
        assert "authorization" not in entry["headers"]
        assert TOKEN not in repr(entry)
    # while every API call did carry it (the log redacts the value)
    assert all(e["headers"].get("authorization") == "REDACTED" for e in emu.request_log if e["path"].startswith("/v1"))


def test_a_download_that_keeps_failing_ends_in_a_clear_error(emu):
    # every fetch gets a fresh URL that has expired: after the client's attempts the error must still say
    # which batch failed and what to do next, like every other error of the package
    emu.faults.next("GET /_files/*", "expired_download_url", times=3)
    with make_client(emu, Sleeps()) as client:
        uuid = finished_batch(emu, client)
        with pytest.raises(CargoDownloadError) as info:
            client.download_batch_dataframe(uuid, expected_rows=len(DOMAINS), attempts=3)
    assert len([e for e in emu.request_log if e["path"].startswith("/_files/")]) == 3
    assert info.value.batch_uuid == uuid and uuid in str(info.value)
    assert "Next step" in str(info.value), str(info.value)
