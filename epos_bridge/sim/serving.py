"""What every simulator half shares: started and stopped by tests, or both by ``async with``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class LocalServer(ABC):
    """A server a test (or the demo) starts on this machine and stops again."""

    @abstractmethod
    async def start(self) -> None:
        """Listen, and be ready to answer, before returning."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and let go of every connection; safe to call twice."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
