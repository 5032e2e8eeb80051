"""Reading a search through to its last page (contract §3: ``cursor.after``), a bounded number of
pages at most, so that a POS that keeps returning ``after`` cannot keep the caller reading."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from epos_bridge.protocol.params import Cursor

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Paged(Protocol[T_co]):
    """A paged result (``PagedOrders``, ``PagedTables``, …)."""

    @property
    def data(self) -> Sequence[T_co]: ...
    @property
    def after(self) -> str | None: ...


async def every_page(search: Callable[[Cursor], Awaitable[Paged[T]]], *, page_size: int, max_pages: int) -> list[T]:
    """What ``search(cursor)`` returns, page after page, until a page is empty or names no next one."""
    found: list[T] = []
    after: str | None = None
    for _ in range(max_pages):
        page = await search(Cursor(limit=page_size, after=after))
        found.extend(page.data)
        if page.after is None or not page.data:
            break
        after = page.after
    return found
