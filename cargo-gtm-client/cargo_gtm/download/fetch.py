"""The one output-fetch loop: a fresh download URL per attempt, a pause between attempts, and an
integrity check that counts as a failure, for DataFrames (:mod:`.batch_outputs`) and Parquet (:mod:`.parquet`).

Cargo's download URLs are presigned and expire, so an attempt asks for a new one; a transfer cut short, a
body that does not parse or a row count that does not match the records is a
:class:`~cargo_gtm.errors.CargoDownloadError` raised by the attempt, and the next attempt starts
from scratch: partial data is never returned. Waits go through the client's clock (``sleep``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import CargoDownloadError
from .stream import retry_pause

__all__ = ["fetch_with_retries"]

logger = logging.getLogger("cargo_gtm")

T = TypeVar("T")


def fetch_with_retries(
    attempt: Callable[[], T],
    *,
    attempts: int,
    sleep: Callable[[float], None],
    what: str,
    give_up: Callable[[CargoDownloadError], CargoDownloadError] | None = None,
) -> T:
    """The result of the first of ``attempts`` calls of ``attempt`` that raises no :class:`CargoDownloadError`.

    ``attempt`` requests a fresh URL, downloads and checks what it got. Between attempts the loop waits
    :func:`~.stream.retry_pause` (0.5 s, doubling, at most 8 s) through ``sleep``, and logs each failure
    as ``"<what> <n>/<attempts> failed: <error>"``. After the last failure it raises ``give_up(last)``
    (by default the last error itself). Any other error is not retried.
    """
    last: CargoDownloadError | None = None
    for number in range(1, attempts + 1):
        if number > 1:
            sleep(retry_pause(number))
        try:
            return attempt()
        except CargoDownloadError as exc:
            last = exc
            logger.warning("%s %d/%d failed: %s", what, number, attempts, exc)
    if last is None:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    final = give_up(last) if give_up is not None else last
    if final is last:
        raise last
    raise final from last
