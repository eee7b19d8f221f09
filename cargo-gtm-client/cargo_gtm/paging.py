"""The one paginator: every item of an offset-paged Cargo list, read to the end.

Cargo's list endpoints page with ``limit``/``offset`` and return no total (``batches/list``,
``changes/list``), and they document no order, so no page may be skipped as "already seen": the
list is read until a short page. Offset paging over a list that moves can repeat an item (deduplicated
here by its key) or skip one (callers that care look again later, e.g. the sensors' cursors).
Used by :meth:`CargoClient.list_all_batches <cargo_gtm.CargoClient.list_all_batches>`'s
callers and the sensors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from .errors import CargoError

__all__ = ["read_all"]

T = TypeVar("T")


def read_all(
    fetch_page: Callable[[int], Sequence[T]],
    *,
    page_size: int,
    key: Callable[[T], str],
    max_pages: int | None = None,
    too_many: Callable[[], CargoError] | None = None,
) -> list[T]:
    """Every item of the list, in first-seen order, one copy per ``key`` (the copy seen last).

    ``fetch_page(offset)`` returns the page at ``offset`` (0, ``page_size``, …) of at most ``page_size``
    items; a shorter page is the last. Past ``max_pages`` pages the error ``too_many()`` (by default a
    :class:`CargoError`) is raised rather than a partial list returned.

    >>> data = ["a", "b", "c", "b", "d"]
    >>> read_all(lambda offset: data[offset:offset + 2], page_size=2, key=str)
    ['a', 'b', 'c', 'd']
    """
    found: dict[str, T] = {}
    pages: Iterable[int] = itertools.count() if max_pages is None else range(max_pages)
    for number in pages:
        page = fetch_page(number * page_size)
        found.update((key(item), item) for item in page)
        if len(page) < page_size:
            return list(found.values())
    raise too_many() if too_many is not None else CargoError(
        f"The list has more than {page_size * (max_pages or 0)} items; not returning part of it.",
        hint="narrow the listing (filters) or archive old items in Cargo.")
