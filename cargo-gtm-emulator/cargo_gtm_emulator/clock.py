"""Simulated time for the emulator.

Two modes:

* ``real``: simulated time = start + (wall seconds elapsed) * ``speed``. Starts at the current wall time.
* ``manual``: time starts at a fixed instant (2025-01-15T10:00:00Z) and only moves via :meth:`Clock.advance`.
"""

from __future__ import annotations

import threading
import time

MANUAL_EPOCH = 1736935200.0  # 2025-01-15T10:00:00Z


class Clock:
    """Thread-safe simulated clock returning epoch seconds."""

    def __init__(self, mode: str = "real", speed: float = 1.0, start: float | None = None) -> None:
        if mode not in ("real", "manual"):
            raise ValueError("clock must be 'real' or 'manual'")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.mode = mode
        self.speed = float(speed)
        self._lock = threading.Lock()
        if mode == "manual":
            self._now = MANUAL_EPOCH if start is None else start
        else:
            self._start_sim = time.time() if start is None else start
            self._start_mono = time.monotonic()
            self._offset = 0.0

    def now(self) -> float:
        """Current simulated time in epoch seconds."""
        with self._lock:
            if self.mode == "manual":
                return self._now
            return self._start_sim + (time.monotonic() - self._start_mono) * self.speed + self._offset

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds`` (works in both modes) and return the new time."""
        if seconds < 0:
            raise ValueError("cannot move time backwards")
        with self._lock:
            if self.mode == "manual":
                self._now += seconds
                return self._now
            self._offset += seconds
        return self.now()

    def wall(self) -> float:
        """Wall-clock epoch seconds in real mode, simulated seconds in manual mode.

        Used for presigned-URL expiry so that URLs do not expire after a few real seconds at high ``speed``.
        """
        if self.mode == "manual":
            return self.now()
        return time.time() + self._offset
