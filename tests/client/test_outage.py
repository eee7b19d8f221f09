"""A wait survives a Cargo outage up to a stated tolerance (issue 19, item 8d).

Cargo is made unreachable for a span of simulated time (every batch read answers a 5xx, through the emulator's
fault plane) while the client waits on the emulator's manual clock. Before, the transport's retries (5 attempts,
about 10 s of backoff) ran out long before ``retry_max_elapsed`` and the wait failed while the batch kept
running and billing. Now the wait keeps trying for ``OUTAGE_TOLERANCE`` (300 s), then fails saying the batch may
still be running and that a re-execution attaches to it.
"""

import pytest
from cargo_gtm import CargoClient, CargoWaitOutageError
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.waiting import OUTAGE_TOLERANCE

from ..conftest import TOKEN

READS = "GET /v1/orchestration/batches/*"


class Outage:
    """Every batch read fails with a 5xx while the manual clock is inside [start, start + seconds)."""

    def __init__(self, emu, start: float, seconds: float) -> None:
        self.emu, self.start, self.end = emu, start, start + seconds
        self.clock = ManualClock(on_sleep=self.advance)
        self.active = False
        self.failed_reads = 0

    def advance(self, seconds: float) -> None:
        self.emu.advance(seconds)
        self.sync()

    def sync(self) -> None:
        now = self.clock.monotonic()
        inside = self.start <= now < self.end
        if inside and not self.active:
            self.emu.faults.next(READS, "server_error", times=1_000_000, status=503)
        elif not inside and self.active:
            self.failed_reads += self.emu.faults.counts.get("server_error", 0)
            self.emu.faults.clear()
        self.active = inside


def wait_through(emu, outage_seconds: float):
    outage = Outage(emu, start=2.0, seconds=outage_seconds)
    with CargoClient(TOKEN, base_url=emu.base_url, clock=outage.clock) as client:
        tool = next(t for t in client.list_tools() if t.name == "Enrich company")
        records = [{"domain": f"d{i}.example", "company_name": f"D{i}"} for i in range(200)]
        batch = client.create_batch(tool.workflow_uuid, {"kind": "records", "records": records})
        try:
            return client.wait_for_batch(batch.uuid, timeout=None, poll_interval=1.0, max_poll_interval=5.0), \
                outage, batch
        except CargoWaitOutageError as exc:
            return exc, outage, batch


def test_a_20s_outage_while_waiting_is_survived(manual_emulator):
    final, outage, batch = wait_through(manual_emulator, 20.0)
    assert not isinstance(final, Exception), final
    assert final.status.value == "success" and final.uuid == batch.uuid
    assert outage.clock.monotonic() > outage.end  # the wait went on past the outage


def test_an_outage_past_the_tolerance_fails_saying_the_batch_may_still_run(manual_emulator):
    error, outage, batch = wait_through(manual_emulator, OUTAGE_TOLERANCE + 200.0)
    assert isinstance(error, CargoWaitOutageError), error
    assert error.batch_uuid == batch.uuid
    assert OUTAGE_TOLERANCE <= error.outage_seconds < OUTAGE_TOLERANCE + 60
    text = str(error)
    assert "may still be running" in text and "re-execute" in text and batch.uuid in text
    manual_emulator.faults.clear()
    with CargoClient(TOKEN, base_url=manual_emulator.base_url) as client:
        assert client.get_batch(batch.uuid).status.value not in ("cancelled", "cancelling")


@pytest.mark.parametrize("seconds", [60.0, 250.0])
def test_outages_below_the_tolerance_are_survived(manual_emulator, seconds):
    final, _, _ = wait_through(manual_emulator, seconds)
    assert not isinstance(final, Exception), final
    assert final.status.value == "success"
