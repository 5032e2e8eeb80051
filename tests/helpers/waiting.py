"""Waiting for what a test claims has happened, never for a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Let asyncio (and Qt, under qasync) run until ``condition`` holds; the timeout only turns a
    hang into a failure that names ``what`` never happened."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 - the states polled here have no event to wait on
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
