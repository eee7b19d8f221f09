"""What every API area builds on: one GET and one POST returning Cargo's JSON, and the wire spelling.

An area (:mod:`.orchestration`, :mod:`.segmentation`, :mod:`.storage`, :mod:`.billing`,
:mod:`.workspace`) is a mixin of endpoint methods, a few lines each; :class:`~cargo_gtm.CargoClient`
composes them over one :class:`~cargo_gtm.transport.Transport`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from ..transport import Transport

__all__ = ["ApiArea", "wire", "date_param", "parse_list"]

M = TypeVar("M", bound=BaseModel)


class ApiArea:
    """Base of the API-area mixins: the two calls every endpoint is written with."""

    _transport: Transport

    def _get(self, endpoint: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """``GET`` (always safe to retry); ``kw`` as :meth:`Transport.request` (``batch_uuid=`` …)."""
        return self._transport.request("GET", endpoint, params=params, idempotent=True, **kw)

    def _post(self, endpoint: str, payload: Any = None, *, idempotent: bool, **kw: Any) -> Any:
        """``POST``; ``idempotent=False`` for calls that spend credits (never retried blindly)."""
        return self._transport.request("POST", endpoint, payload=payload, idempotent=idempotent, **kw)


def parse_list(body: Mapping[str, Any], key: str, model: type[M]) -> list[M]:
    """``body[key]`` parsed item by item into ``model``."""
    return [model.model_validate(item) for item in body[key]]


def date_param(value: str | date | datetime | None) -> str | None:
    """A date as Cargo reads it (ISO 8601; UTC datetimes end in ``Z``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


def _wire_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return date_param(value)
    if isinstance(value, Mapping):
        return dict(value) or None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [str(v) for v in value] or None
    return value


def wire(**fields: Any) -> dict[str, Any]:
    """Request fields as Cargo spells them: camelCase keys (``from_`` → ``from``), dates as ISO text,
    sequences as lists of text, and ``None`` or empty sequences and mappings left out, as the official
    client omits undefined keys.

    >>> wire(workflow_uuids=["w1"], statuses=[], is_finished=False, from_="2025-01-01", limit=None)
    {'workflowUuids': ['w1'], 'isFinished': False, 'from': '2025-01-01'}
    """
    out = {_camel(name): _wire_value(value) for name, value in fields.items()}
    return {key: value for key, value in out.items() if value is not None}
