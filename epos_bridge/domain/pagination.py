"""Cursor pagination shared by every Search method (contract §3.23).

Cursors are opaque: base64url of ``{"s": scope, "k": key}`` where ``key`` is the sort key of
the boundary row. Keyset pagination on a unique, immutable key gives a stable order, so walking
the pages returns every row exactly once even while rows are added. Default limit 100, clamped
to 1..100 *(rec)*; ``after`` is omitted on the last page and ``before`` on the first.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from epos_bridge.domain.errors import InvalidRequest
from epos_bridge.protocol.params import MAX_PAGE_SIZE, Cursor

SortKey = int | str
K = TypeVar("K", int, str)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
V = TypeVar("V")
Direction = Literal["forward", "backward"]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    boundary: SortKey | None
    direction: Direction


def read_cursor(cursor: Cursor | None, scope: str, key_type: type[int] | type[str] = int) -> PageRequest:
    """Raises ``InvalidRequest`` for a cursor this POS did not issue for this search."""
    if cursor is None:
        return PageRequest(MAX_PAGE_SIZE, None, "forward")
    limit = MAX_PAGE_SIZE if cursor.limit is None else max(1, min(MAX_PAGE_SIZE, cursor.limit))
    if cursor.after is not None:
        return PageRequest(limit, _decode(cursor.after, scope, "after", key_type), "forward")
    if cursor.before is not None:
        return PageRequest(limit, _decode(cursor.before, scope, "before", key_type), "backward")
    return PageRequest(limit, None, "forward")


def make_cursor(scope: str, key: SortKey) -> str:
    raw = json.dumps({"s": scope, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, scope: str, which: str, key_type: type[int] | type[str]) -> SortKey:
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidRequest(f"cursor.{which} is not a cursor this POS issued") from exc
    if not isinstance(document, dict) or document.get("s") != scope:
        raise InvalidRequest(f"cursor.{which} is not a cursor for this search")
    key = document.get("k")
    if isinstance(key, bool) or not isinstance(key, key_type):
        raise InvalidRequest(f"cursor.{which} is damaged")
    if isinstance(key, int) and not -(2**63) <= key < 2**63:
        raise InvalidRequest(f"cursor.{which} is damaged")
    return key


@dataclass(frozen=True)
class PageBounds:
    before: str | None
    after: str | None


def page_bounds(scope: str, keys: list[SortKey], more_before: bool, more_after: bool) -> PageBounds:
    """Cursors for the neighbours of a page whose (ascending) keys are ``keys``."""
    if not keys:
        return PageBounds(None, None)
    return PageBounds(
        before=make_cursor(scope, keys[0]) if more_before else None,
        after=make_cursor(scope, keys[-1]) if more_after else None,
    )


def page_of(keys: Sequence[K], request: PageRequest) -> tuple[list[K], bool, bool]:
    """One page of ascending, unique ``keys`` held in memory, and whether rows exist before and
    after it: the same page a keyset query (``key > boundary ORDER BY key LIMIT n``) gives."""
    boundary = request.boundary
    if request.direction == "forward":
        candidates = [k for k in keys if boundary is None or k > boundary]  # type: ignore[operator]
        page = candidates[: request.limit]
        if not page:
            return [], False, False
        return page, keys[0] < page[0], len(candidates) > request.limit
    candidates = [k for k in keys if boundary is None or k < boundary]  # type: ignore[operator]
    page = candidates[-request.limit :]
    if not page:
        return [], False, False
    return page, len(candidates) > request.limit, keys[-1] > page[-1]


@dataclass(frozen=True)
class Page(Generic[T_co]):
    """One page a storage read: the answers, their (ascending) sort keys, and whether rows exist
    on either side. The search call turns it into cursors of its own scope."""

    items: Sequence[T_co]
    keys: list[SortKey]
    more_before: bool
    more_after: bool

    def bounds(self, scope: str) -> PageBounds:
        return page_bounds(scope, self.keys, self.more_before, self.more_after)


def page_in_memory(found: Mapping[K, V], request: PageRequest, answer: Callable[[K, V], T | None]) -> Page[T]:
    """:func:`page_of` over rows already read, each answered by ``answer`` (``None`` leaves one
    out of the page, as a booking whose time cannot be read; the cursors still follow its key)."""
    keys, more_before, more_after = page_of(sorted(found), request)
    items = [item for key in keys if (item := answer(key, found[key])) is not None]
    return Page(items, list(keys), more_before, more_after)
