"""Cargo's concurrency gate on create: ``concurrencyLimitReached`` is waited out, not failed on.

Cargo refuses to start work while the workspace runs as much as it allows at once (reason
``concurrencyLimitReached``, REFERENCE §3; the limit's value is not documented, §11.12). The
refusal is a 4xx that created nothing, so sending the same create again cannot duplicate a
batch: :func:`send_when_free` does so after a growing pause, reports each wait, and gives up
with an actionable :class:`~cargo_gtm.errors.CargoConcurrencyLimitError` once the
pauses add up to ``max_wait`` seconds. The budget counts the pauses it asked for (not the wall
clock), so tests with an injected ``sleep`` are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import CargoConcurrencyLimitError

__all__ = ["BusyPolicy", "send_when_free"]

logger = logging.getLogger("cargo_gtm")

T = TypeVar("T")


@dataclass(frozen=True)
class BusyPolicy:
    """How long to wait out ``concurrencyLimitReached``: pauses of ``first_delay`` seconds, doubling up to
    ``max_delay``, for at most ``max_wait`` seconds in all (0: fail on the first refusal)."""

    first_delay: float = 5.0
    max_delay: float = 60.0
    max_wait: float = 900.0

    def delay(self, attempt: int) -> float:
        """The pause before resending after the ``attempt``-th refusal (1-based)."""
        return float(min(self.max_delay, self.first_delay * 2 ** (attempt - 1)))


def send_when_free(
    send: Callable[[], T],
    *,
    what: str,
    sleep: Callable[[float], None],
    policy: BusyPolicy | None = None,
    report: Callable[[str], None] | None = None,
) -> T:
    """``send()``, sent again while Cargo answers ``concurrencyLimitReached`` (it created nothing).

    ``what`` names the create in messages ("batch of workflow <uuid>"); ``report`` receives one line per
    wait (default: a warning on the ``cargo_gtm`` logger). Any other error propagates at once.
    """
    policy = policy or BusyPolicy()
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return send()
        except CargoConcurrencyLimitError as exc:
            pause = policy.delay(attempt)
            if waited + pause > policy.max_wait:
                exc.waited, exc.attempts = waited, attempt
                exc.args = (f"{exc} Cargo refused to start the {what} {attempt} time(s) over {waited:g}s of "
                            f"waiting (concurrencyLimitReached; nothing was created, 0 credits spent). To wait longer, raise "
                            "concurrency_wait (CargoResource) or BusyPolicy.max_wait (CargoClient).",)
                raise
            message = (f"Cargo is at its concurrency limit (concurrencyLimitReached): the {what} was not created "
                       f"(nothing spent). Sending it again in {pause:g}s (refusal {attempt}, waited {waited:g}s of "
                       f"at most {policy.max_wait:g}s). If this recurs, lower the Dagster pool limit of Cargo assets.")
            (report or logger.warning)(message)
            sleep(pause)
            waited += pause
