"""The bridge's one observer helper: a list of callbacks where one failing listener never stops
the others, or the bridge. ``add`` returns the function that removes the listener again (safe to
call twice, and from inside a callback)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Listeners(Generic[T]):
    def __init__(self, what: str) -> None:
        self._what = what
        self._callbacks: list[Callable[[T], None]] = []

    def add(self, callback: Callable[[T], None]) -> Callable[[], None]:
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def emit(self, value: T) -> None:
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                log.exception("a %s listener failed on %s", self._what, _describe(value))

    def __len__(self) -> int:
        return len(self._callbacks)


def _describe(value: object) -> str:
    state = getattr(value, "state", None)
    return str(getattr(state, "value", state)) if state is not None else type(value).__name__
