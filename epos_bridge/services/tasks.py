"""Background work a part of the bridge starts and owns: the one "spawn, keep, cancel on shutdown".

asyncio keeps only weak references to tasks, so a task nobody holds can vanish mid-flight; a task
that fails with nobody awaiting it reports "exception was never retrieved" at garbage
collection, far from its cause. :class:`TaskSet` holds every task until it ends, logs a failure
at once with what the task was for (and hands it to ``on_error``), and cancels what is left when
its owner stops. The gateway, the counter, the bridge, the idempotency store, the simulator and
every widget (``ui.tasks.WidgetTasks``) use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
ErrorHandler = Callable[[BaseException], None]


class TaskSet:
    """``spawn`` to start, ``wait`` to let them finish (bounded), ``cancel``/``stop`` on shutdown.

    ``what`` names the tasks in the log (``"<what> failed: …"``); ``logger`` and ``level`` say
    where and how loudly.
    """

    def __init__(
        self,
        what: str,
        *,
        logger: logging.Logger = log,
        level: int = logging.ERROR,
        on_error: ErrorHandler | None = None,
    ) -> None:
        self._what = what
        self._log = logger
        self._level = level
        self._on_error = on_error
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    async def wait(self, timeout_s: float | None = None) -> set[asyncio.Task[Any]]:
        """Wait for the tasks running now; returns those still running after ``timeout_s``."""
        pending = {task for task in self._tasks if not task.done()}
        if not pending:
            return set()
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        return late

    def cancel(self) -> None:
        """Cancel every task still running (without waiting: a widget closing)."""
        for task in list(self._tasks):
            task.cancel()

    async def stop(self) -> None:
        """Cancel every task and wait until each has ended."""
        tasks = list(self._tasks)
        self.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        self._log.log(self._level, "%s failed: %s", self._what, error, exc_info=error)
        if self._on_error is not None:
            self._on_error(error)

    def __len__(self) -> int:
        return len(self._tasks)

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(set(self._tasks))
