"""Query-string serialization identical to Cargo's official TypeScript client.

The official client (``@cargo-ai/api``) reproduces Axios' default params serializer
byte for byte (REFERENCE §2.4). ``httpx``'s own encoding differs (``k=v&k=v`` for lists,
different escaping), so every GET made by :class:`~cargo_gtm.CargoClient`
goes through :func:`serialize_params`.

Example:
    >>> serialize_params({"statuses": ["running", "success"], "limit": 20, "x": None})
    '?statuses%5B%5D=running&statuses%5B%5D=success&limit=20'
    >>> serialize_params({"from": "2025-01-01T00:00:00Z", "unit": "billing.credits"})
    '?from=2025-01-01T00:00:00Z&unit=billing.credits'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["serialize_params", "js_string"]

# encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) unescaped.
_ENCODE_URI_COMPONENT_SAFE = "-_.!~*'()"


def js_string(value: Any) -> str:
    """Render a scalar the way JavaScript's ``String(value)`` does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def _axios_encode(text: str) -> str:
    encoded = quote(text, safe=_ENCODE_URI_COMPONENT_SAFE)
    return encoded.replace("%3A", ":").replace("%24", "$").replace("%2C", ",").replace("%20", "+")


def _nested(path: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):  # nested arrays are indexed
            _nested(f"{path}[{index}]", item, pairs)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _nested(f"{path}[{key}]", item, pairs)
        return
    pairs.append((path, js_string(value)))


def serialize_params(params: Mapping[str, Any] | None) -> str:
    """Serialize ``params`` to ``?a=1&b=2`` (or ``""`` when nothing is emitted)."""
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for item in value:  # a top-level array uses the empty-bracket form
                if item is None:
                    continue
                if isinstance(item, (Mapping, list, tuple)):
                    _nested(f"{key}[]", item, pairs)
                else:
                    pairs.append((f"{key}[]", js_string(item)))
            continue
        if isinstance(value, Mapping):
            for nested_key, nested in value.items():
                _nested(f"{key}[{nested_key}]", nested, pairs)
            continue
        pairs.append((key, js_string(value)))
    if not pairs:
        return ""
    return "?" + "&".join(f"{_axios_encode(k)}={_axios_encode(v)}" for k, v in pairs)
