"""Helpers shared by the endpoint handlers: paging, parameter coercion, validation."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError, zod_enum_error
from ..util import parse_datetime

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def as_bool(value: Any) -> bool | None:
    """Coerce a query/body value to bool (``None`` when absent)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0"):
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    raise ApiError(None, f"Invalid boolean value: {value!r}", status=400)


def as_int(value: Any, name: str) -> int | None:
    """Coerce to a non-negative int (``None`` when absent)."""
    if value is None or value == "":
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ApiError(None, f"Invalid {name}: must be a non-negative integer.", status=400) from None
    if out < 0:
        raise ApiError(None, f"Invalid {name}: must be a non-negative integer.", status=400)
    return out


def as_list(value: Any) -> list[Any] | None:
    """A query array (``key[]=…``); a lone scalar (``key=v``) is accepted as a one-item list."""
    if value is None:
        return None
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


RUN_STATUSES = ("idle", "pending", "running", "success", "error", "cancelling", "cancelled", "skipped")
BATCH_STATUSES = ("pending", "syncing", "skipped", "querying", "running", "success", "error", "cancelling",
                  "cancelled")


def as_statuses(value: Any, allowed: tuple[str, ...], variants: dict[str, str]) -> list[Any] | None:
    """A ``statuses`` filter. A value that is no status (``"finished"``, CARGO-DOCS 2.7) matches nothing
    (``invalid_statuses=match_nothing``) or is a zod ``invalid_enum_value`` 400 (``zod_400``)."""
    statuses = as_list(value)
    if statuses and variants["invalid_statuses"] == "zod_400":
        bad = next((s for s in statuses if s not in allowed), None)
        if bad is not None:
            raise zod_enum_error("statuses", bad, allowed)
    return statuses


def as_time(value: Any, name: str) -> float | None:
    """Parse an ISO date/date-time parameter."""
    if value is None or value == "":
        return None
    ts = parse_datetime(value)
    if ts is None:
        raise ApiError(None, f"Invalid {name}: expected an ISO-8601 date or date-time.", status=400)
    return ts


def paginate(items: list[Any], src: dict[str, Any], default_limit: int = DEFAULT_LIMIT,
             max_limit: int = MAX_LIMIT) -> list[Any]:
    """Apply ``offset`` / ``limit`` (default 100, capped at ``max_limit``, 1000 by default)."""
    offset = as_int(src.get("offset"), "offset") or 0
    limit = as_int(src.get("limit"), "limit")
    limit = default_limit if limit is None else min(limit, max_limit)
    return items[offset: offset + limit]

