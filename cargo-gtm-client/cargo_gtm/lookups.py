"""Lookups built on the endpoints: a play or tool by name, and the per-client caches of model columns and
required form fields (each fetched once per client).

:class:`Lookups` is a part of :class:`~cargo_gtm.CargoClient` (``client.lookups``; its methods are also the
client's own), built over any :class:`LookupSource`."""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from .errors import CargoInputError, CargoNotFoundError
from .models import Model, Play, Release, Tool

__all__ = ["LookupSource", "Lookups", "find_by_name"]

logger = logging.getLogger("cargo_gtm")

T = TypeVar("T")


class LookupSource(Protocol):
    """The endpoints lookups read (:class:`~cargo_gtm.CargoClient` has them)."""

    def list_plays(self) -> list[Play]: ...

    def list_tools(self) -> list[Tool]: ...

    def get_model(self, uuid: str) -> Model: ...

    def get_deployed_release(self, workflow_uuid: str) -> Release: ...


class Lookups:
    """Name lookups and cached facts of a workspace, over ``source`` (the client: ``client.lookups``)."""

    def __init__(self, source: LookupSource) -> None:
        self.source = source
        self._cache_lock = threading.Lock()
        self._model_columns: dict[str, dict[str, str]] = {}
        self._required_fields: dict[str, list[str]] = {}

    def find_play(self, name_or_uuid: str) -> Play:
        """The play with this exact name or UUID; the error suggests close names."""
        return find_by_name(self.source.list_plays(), name_or_uuid, "play")

    def find_tool(self, name_or_uuid: str) -> Tool:
        """The tool with this exact name or UUID; the error suggests close names."""
        return find_by_name(self.source.list_tools(), name_or_uuid, "tool")

    def model_columns(self, model_uuid: str) -> dict[str, str]:
        """The model's column slugs and types (``GET /storage/models/{uuid}`` once per client, then cached)."""
        with self._cache_lock:
            cached = self._model_columns.get(model_uuid)
        if cached is not None:
            return cached
        model = self.source.get_model(model_uuid)
        columns = {c.slug: str(c.type.value if hasattr(c.type, "value") else c.type)
                   for c in [*model.columns, *model.additional_columns]}
        with self._cache_lock:
            self._model_columns[model_uuid] = columns
        return columns

    def required_form_fields(self, workflow_uuid: str) -> list[str]:
        """Slugs of the deployed release's required form fields (fetched once per client, then cached)."""
        with self._cache_lock:
            cached = self._required_fields.get(workflow_uuid)
        if cached is not None:
            return cached
        try:
            release = self.source.get_deployed_release(workflow_uuid)
        except CargoNotFoundError:
            return []
        required = [f.slug for f in release.form_fields or [] if f.is_required]
        with self._cache_lock:
            self._required_fields[workflow_uuid] = required
        return required


def find_by_name(items: Sequence[T], name_or_uuid: str, what: str) -> T:
    """The item with this UUID or exact name; a case-only match only when it is the only one (logged)."""
    exact = [item for item in items if name_or_uuid in (_attr(item, "uuid"), _attr(item, "name"))]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise CargoInputError(
            f"{len(exact)} Cargo {what}s are named {name_or_uuid!r} "
            f"({', '.join(_attr(i, 'uuid') for i in exact)}).", hint=f"pass the {what}'s UUID instead of its name.")
    folded = [item for item in items if _attr(item, "name").casefold() == name_or_uuid.casefold()]
    if len(folded) == 1:
        logger.warning("No Cargo %s is named exactly %r; using %r (%s), the only one whose name differs only "
                       "in case.", what, name_or_uuid, _attr(folded[0], "name"), _attr(folded[0], "uuid"))
        return folded[0]
    if len(folded) > 1:
        raise CargoInputError(
            f"No Cargo {what} is named exactly {name_or_uuid!r}, and {len(folded)} differ from it only in case: "
            f"{', '.join(repr(_attr(i, 'name')) for i in folded)}.",
            hint="spell the name exactly, or pass the UUID.")
    raise _not_found([_attr(item, "name") for item in items], name_or_uuid, what)


def _attr(item: Any, name: str) -> str:
    return str(getattr(item, name))


def _not_found(names: list[str], name_or_uuid: str, what: str) -> CargoInputError:
    close = difflib.get_close_matches(name_or_uuid, names, n=3, cutoff=0.5)
    suggestion = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    available = ", ".join(repr(n) for n in sorted(names)[:20]) or "none"
    return CargoInputError(f"No Cargo {what} named or with UUID {name_or_uuid!r}.{suggestion} "
                           f"Available {what}s: {available}.")
