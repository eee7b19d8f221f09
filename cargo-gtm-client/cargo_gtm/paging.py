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
from datetime import datetime
from typing import TypeVar

from .errors import CargoError

__all__ = ["read_all", "read_newest"]

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


def _newest_first(page: Sequence[T], created: Callable[[T], datetime | None], after: datetime | None) -> bool:
    """Whether ``page`` reads newest first: every instant known, none newer than the one before it (nor than
    ``after``, the last instant of the page before)."""
    instants = [created(item) for item in page]
    if any(i is None for i in instants):
        return False
    known: list[datetime] = [i for i in instants if i is not None]
    if after is not None and known and known[0] > after:
        return False
    return all(a >= b for a, b in zip(known, known[1:]))


def read_newest(
    fetch_page: Callable[[int], Sequence[T]],
    *,
    page_size: int,
    key: Callable[[T], str],
    created: Callable[[T], datetime | None],
    since: datetime | None = None,
    max_pages: int | None = None,
    too_many: Callable[[], CargoError] | None = None,
) -> list[T]:
    """The items created at or after ``since`` (``None``: at the newest instant), reading only the newest
    pages when the list shows it is served newest first; else every item (:func:`read_all`).

    Cargo documents no order for its lists, so the order is read from the pages themselves: a first page
    shorter than ``page_size`` is the whole list (any order); a full one is taken as newest first only when
    its instants never increase, and each further page only when it continues that (no instant newer than
    the page before ends with). Reading stops at the first page that reaches back before ``since`` (or
    before the newest instant): every item at or after it has then been seen, in a list served newest first.
    Any page that breaks the order (oldest first, unordered, an unknown instant) falls back to reading the
    whole list, so the result always holds every item at or after ``since`` (and, as it may, older ones).
    Cost: one or two calls when newest first, whatever the list's length; the whole list otherwise.

    >>> from datetime import datetime as dt
    >>> items = [dt(2025, 1, d) for d in (9, 8, 8, 7, 5, 3, 2)]
    >>> fetched = []
    >>> def page(offset):
    ...     fetched.append(offset)
    ...     return items[offset:offset + 2]
    >>> got = read_newest(page, page_size=2, key=str, created=lambda d: d, since=dt(2025, 1, 7))
    >>> [d.day for d in got], fetched  # the page of the 5th and 3rd reaches back before the 7th: the last read
    ([9, 8, 7, 5, 3], [0, 2, 4])
    """
    found: dict[str, T] = {}
    pages: Iterable[int] = itertools.count() if max_pages is None else range(max_pages)
    last: datetime | None = None
    threshold = since
    for number in pages:
        page = fetch_page(number * page_size)
        found.update((key(item), item) for item in page)
        if len(page) < page_size:
            return list(found.values())  # the end of the list: everything was seen, whatever the order
        if not _newest_first(page, created, last):
            return read_all(fetch_page, page_size=page_size, key=key, max_pages=max_pages, too_many=too_many)
        if threshold is None:
            threshold = created(page[0])
        last = created(page[-1])
        if last is not None and threshold is not None and last < threshold:
            return list(found.values())  # this page reaches back before the threshold: the rest is older
    raise too_many() if too_many is not None else CargoError(
        f"The list has more than {page_size * (max_pages or 0)} items; not returning part of it.",
        hint="narrow the listing (filters) or archive old items in Cargo.")
