"""The polling loop: terminal detection, unknown statuses, timeouts, adaptive intervals."""

import pytest
from cargo_gtm import Batch, CargoBatchFailedError, CargoWaitTimeoutError, wait_for_batches
from cargo_gtm.running.waiting import UNLIMITED, PollingGuidance


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def batch(uuid, status, executed=0, runs=100, failed=0):
    return Batch.model_validate({"uuid": uuid, "workflowUuid": "wf", "status": status, "runsCount": runs,
                                 "executedRunsCount": executed, "failedRunsCount": failed})


def scripted(script):
    """get_batch that returns the scripted sequence per uuid (last one repeats)."""
    seen = {k: 0 for k in script}

    def get(uuid):
        i = min(seen[uuid], len(script[uuid]) - 1)
        seen[uuid] += 1
        return script[uuid][i]

    return get, seen


def test_waits_until_terminal_and_reports_progress():
    clock = FakeClock()
    get, seen = scripted({"a": [batch("a", "pending"), batch("a", "running", 50), batch("a", "success", 100)]})
    progress = []
    result = wait_for_batches(get, ["a"], timeout=100, sleep=clock.sleep, clock=clock, on_progress=progress.append)
    assert result["a"].status.value == "success"
    assert [p.batch.status.value for p in progress] == ["pending", "running", "success"]


def test_unknown_status_is_not_success():
    clock = FakeClock()
    get, _ = scripted({"a": [batch("a", "mystery")]})
    progress = []
    with pytest.raises(CargoWaitTimeoutError) as info:
        wait_for_batches(get, ["a"], timeout=30, sleep=clock.sleep, clock=clock, on_progress=progress.append)
    assert info.value.batch_uuid == "a" and info.value.last_status == "mystery"
    assert all(p.unknown_status for p in progress)
    assert "mystery" in str(info.value)


def test_failed_batch_raises_with_uuid_and_message():
    clock = FakeClock()
    failed = Batch.model_validate({"uuid": "a", "workflowUuid": "wf", "status": "error", "errorMessage": "boom"})
    get, _ = scripted({"a": [failed]})
    with pytest.raises(CargoBatchFailedError, match="boom") as info:
        wait_for_batches(get, ["a"], timeout=30, sleep=clock.sleep, clock=clock)
    assert info.value.batch_uuid == "a"


def test_many_batches_in_one_loop_and_finished_ones_are_not_polled_again():
    clock = FakeClock()
    get, seen = scripted({
        "a": [batch("a", "success", 100)],
        "b": [batch("b", "running", 10), batch("b", "running", 20), batch("b", "success", 100)],
    })
    result = wait_for_batches(get, ["a", "b"], timeout=600, sleep=clock.sleep, clock=clock)
    assert set(result) == {"a", "b"}
    assert seen["a"] == 1 and seen["b"] == 3


def test_backs_off_without_progress_and_caps_interval():
    clock = FakeClock()
    stuck = [batch("a", "running", 5)] * 30 + [batch("a", "success", 100)]
    get, seen = scripted({"a": stuck})
    times = []
    wait_for_batches(lambda u: (times.append(clock.now), get(u))[1], ["a"], timeout=10_000,
                     poll_interval=1, max_poll_interval=15, sleep=clock.sleep, clock=clock, guidance=UNLIMITED)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] == 1 and max(gaps) == 15
    assert all(g2 >= g1 for g1, g2 in zip(gaps, gaps[1:]))


def _poll_times(script, runs, **kwargs):
    clock = FakeClock()
    get, _ = scripted({"a": script})
    times = []
    wait_for_batches(lambda u: (times.append(clock.now), get(u))[1], ["a"], timeout=100_000, sleep=clock.sleep,
                     clock=clock, **kwargs)
    return times


def test_default_polling_stays_within_cargos_guidance_of_one_request_per_5s():
    # a batch progressing steadily: the adaptive schedule wants to poll often near the end
    script = [batch("a", "running", e) for e in range(0, 100, 2)] + [batch("a", "success", 100)]
    times = _poll_times(script, 100, poll_interval=1, max_poll_interval=30)
    for n, t in enumerate(times):
        assert t >= 5 * n  # the (n+1)-th request no sooner than polling every 5 s would send it
    assert len(times) <= times[-1] / 5 + 1


def test_large_batches_are_polled_at_most_every_10s_after_the_first_minute():
    script = [batch("a", "running", e, runs=5000) for e in range(0, 5000, 25)] + [batch("a", "success", 5000,
                                                                                          runs=5000)]
    times = _poll_times(script, 5000, poll_interval=1, max_poll_interval=30)
    late = [t for t in times if t > 60]
    assert late and all(b - a >= 10 for a, b in zip(late, late[1:]))


def test_the_user_can_choose_other_limits():
    script = [batch("a", "running", e) for e in range(0, 100, 2)] + [batch("a", "success", 100)]
    fast = _poll_times(script, 100, poll_interval=1, max_poll_interval=30,
                       guidance=PollingGuidance(average_interval=1.0))
    assert any(b - a < 5 for a, b in zip(fast, fast[1:]))


def test_one_polling_round_polls_what_is_due_and_never_sleeps():
    from cargo_gtm.running.waiting import BatchPoller

    clock = FakeClock()
    get, seen = scripted({"a": [batch("a", "running", 10), batch("a", "success", 100)],
                          "b": [batch("b", "error", 50, failed=5)]})
    poller = BatchPoller(get, ["a", "b"], now=clock, poll_interval=2, max_poll_interval=2, guidance=UNLIMITED,
                         initial={"b": batch("b", "running", 1)})
    first = poller.poll()  # "b" was just read: only "a" is due
    assert [p.batch.uuid for p in first.updates] == ["a"] and seen == {"a": 1, "b": 0}
    assert first.pending == ("a", "b") and first.wake_in == 2 and clock.now == 0
    assert poller.poll().updates == ()  # nothing due yet: no request
    clock.now = 2
    second = poller.poll()
    assert second.finished and second.batches["a"].status.value == "success"
    assert second.batches["b"].status.value == "error"  # a failed batch is reported, not raised
