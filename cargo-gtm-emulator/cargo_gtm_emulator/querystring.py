"""qs-style query-string parser matching the Axios serializer described in REFERENCE §2.4.

``statuses[]=a&statuses[]=b`` → ``{"statuses": ["a", "b"]}``;
``filter[conjonction]=and`` → ``{"filter": {"conjonction": "and"}}``;
``filter[groups][0][conditions][0][values][1]=x`` → nested lists (indices compacted in order).
Brackets may be percent-encoded; ``+`` means space. Scalars ``true``/``false`` become booleans and
numeric strings become numbers (see :func:`coerce`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def coerce(value: str) -> Any:
    """Turn ``"true"``/``"false"`` into booleans and numeric strings into ``int``/``float``."""
    if value == "true":
        return True
    if value == "false":
        return False
    if _NUMBER.match(value):
        return float(value) if any(c in value for c in ".eE") else int(value)
    return value


def _split_key(key: str) -> list[str]:
    first = key.find("[")
    if first <= 0:
        return [key]
    head, rest = key[:first], key[first:]
    parts = [head]
    pos = 0
    for m in _SEGMENT.finditer(rest):
        if m.start() != pos:
            return [key]
        parts.append(m.group(1))
        pos = m.end()
    if pos != len(rest):
        return [key]
    return parts


def _listify(node: Any) -> Any:
    """Convert dicts whose keys are all integer strings into lists (ordered by index)."""
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(isinstance(k, str) and k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def _set_leaf(node: dict[str, Any], part: str, value: Any) -> None:
    """``a=1&a=2`` (or ``a[b]=…`` twice) collects the values into a list."""
    existing = node.get(part)
    if existing is None:
        node[part] = value
    elif isinstance(existing, list):
        existing.append(value)
    else:
        node[part] = [existing, value]


def _step(node: Any, part: str, nxt: str | None, value: Any) -> Any:
    """Apply one key part to ``node``; return the container the next part goes into (``None``: stop)."""
    last = nxt is None
    if part == "":  # "[]" append
        if not isinstance(node, list):
            return None
        if last:
            node.append(value)
            return None
        child: Any = [] if nxt == "" else {}
        node.append(child)
        return child
    if isinstance(node, list):  # defensive: a key after [] on a list
        return None
    if last:
        _set_leaf(node, part, value)
        return None
    container = node.get(part)
    if container is None or not isinstance(container, (dict, list)):
        container = [] if nxt == "" else {}
        node[part] = container
    return container


def parse_qs(query: str, coerce_values: bool = True) -> dict[str, Any]:
    """Parse a raw query string (without the leading ``?``) into nested dicts/lists."""
    result: dict[str, Any] = {}
    for pair in query.split("&") if query else []:
        if not pair:
            continue
        raw_key, sep, raw_value = pair.partition("=")
        value_str = unquote_plus(raw_value) if sep else ""
        value: Any = coerce(value_str) if coerce_values else value_str
        parts = _split_key(unquote_plus(raw_key))
        node: Any = result
        for i, part in enumerate(parts):
            node = _step(node, part, parts[i + 1] if i + 1 < len(parts) else None, value)
            if node is None:
                break
    return _listify(result)
