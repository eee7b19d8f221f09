"""Routing: the :class:`Request` a handler receives and the method + path-pattern :class:`Router`.

No sockets, no auth, no faults: see :mod:`.app` for the request pipeline and :mod:`.server` for the wire.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ApiError

if TYPE_CHECKING:
    from .store import Store


@dataclass
class Request:
    """What a handler gets: path params, parsed query, parsed JSON body, the store and current sim time."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, Any]
    body: Any
    headers: dict[str, str]
    store: Store
    now: float
    base_url: str
    raw: bytes = b""  # the undecoded body (multipart uploads)

    def json_obj(self) -> dict[str, Any]:
        """The body as an object (``{}`` when absent); 400 if it is not an object."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError(None, "Request body must be a JSON object.", status=400)
        return self.body


Handler = Callable[[Request], Any]


class Router:
    """Method + path-pattern routing table (``{name}`` segments become path params)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.body_keys: dict[Handler, frozenset[str]] = {}

    def add(self, method: str, pattern: str, handler: Handler, body_keys: Iterable[str] | None = None) -> None:
        """Register ``handler`` for ``method`` and ``pattern`` (relative to ``/v1``). ``body_keys``: the
        top-level JSON body keys the endpoint declares; any other key is a 400 ``unrecognized_keys``
        (strict request schemas, CARGO-DOCS 10.1)."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self._routes.append((method, re.compile(regex), handler))
        if body_keys is not None:
            self.body_keys[handler] = frozenset(body_keys)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """Find the handler for a request (literal routes are registered before parameterised ones)."""
        for m, rx, h in self._routes:
            if m == method:
                found = rx.match(path)
                if found:
                    return h, found.groupdict()
        return None

    def routes(self) -> list[tuple[str, str]]:
        """Every registered ``(method, regex)`` pair, in matching order."""
        return [(m, rx.pattern) for m, rx, _ in self._routes]
