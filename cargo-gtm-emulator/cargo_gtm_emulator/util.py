"""Small shared helpers: deterministic ids, hashing, ISO-8601 formatting."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timezone
from typing import Any


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as ``2025-01-15T10:00:00.000Z`` (UTC, millisecond precision)."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def credit_number(value: float) -> int | float:
    """A credit figure for the wire: rounded to 0.01, an int when whole (``2`` rather than ``2.0``)."""
    rounded = round(float(value), 2)
    return int(rounded) if rounded == int(rounded) else rounded


def parse_datetime(value: Any) -> float | None:
    """Parse an ISO-8601 date or date-time string (``YYYY-MM-DD`` accepted) to epoch seconds.

    Naive values are taken as UTC. Returns ``None`` when the value cannot be parsed.
    """
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


_sha256 = hashlib.sha256


def stable_hash(*parts: Any) -> int:
    """A 64-bit integer hash of ``parts`` that is stable across processes (unlike ``hash``)."""
    return int.from_bytes(_sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()[:8], "big")


def unit_float(*parts: Any) -> float:
    """A deterministic float in ``[0, 1)`` derived from ``parts``."""
    return stable_hash(*parts) / 2**64


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, for content hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


#: version 4 and the RFC 4122 variant, as ``uuid.UUID(int=..., version=4)`` sets them
_UUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (4 << 76) | (0x8000 << 48)


class IdFactory:
    """Generates UUID-v4-shaped identifiers from a seeded PRNG (deterministic for a given seed)."""

    def __init__(self, seed: int, namespace: str) -> None:
        self._rng = random.Random(f"{seed}:{namespace}")

    def uuid(self) -> str:
        """Return the next UUID (version 4 layout) as a string: ``str(uuid.UUID(int=bits, version=4))``,
        formatted here (the emulator makes two per run)."""
        bits = (self._rng.getrandbits(128) & _UUID_KEEP) | _UUID_V4
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex(self, n: int) -> str:
        """Return ``n`` random hex characters."""
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))
