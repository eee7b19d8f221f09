"""One clock for every wait in the client and the Dagster layer: monotonic time plus sleep.

Every loop that waits (polling, retry backoff, download retries, ``concurrencyLimitReached`` waits) reads
time and sleeps through one :class:`Clock`, so a test can drive them all with a manual clock instead of real
time.

Example:
    .. code-block:: python

        from cargo_gtm.running.clock import ManualClock

        clock = ManualClock()
        clock.sleep(2.5)
        assert clock.monotonic() == 2.5
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "SYSTEM_CLOCK"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic seconds and a way to wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`time.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when slept on, optionally moving something else along (thread-safe).

    Args:
        start: the initial reading.
        on_sleep: called with the seconds slept, e.g. ``emulator.advance``, so that the service's simulated time
            moves exactly as far as the client waited.
    """

    def __init__(self, start: float = 0.0, on_sleep: Callable[[float], object] | None = None) -> None:
        self._now = float(start)
        self._on_sleep = on_sleep
        self._lock = threading.Lock()
        #: every sleep, in order (tests assert on waits without measuring them)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        seconds = max(float(seconds), 0.0)
        with self._lock:
            self._now += seconds
            self.sleeps.append(seconds)
        if self._on_sleep is not None and seconds > 0:
            self._on_sleep(seconds)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now})"
