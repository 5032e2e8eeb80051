"""The asyncio work a widget starts: kept while it runs, told when it fails, cancelled on shutdown.

Widgets await the bridge's coroutines on the qasync loop, so the GUI thread never waits for the
disk or the network. Every widget that does holds one :class:`WidgetTasks` and may rely on:

* :meth:`WidgetTasks.spawn` keeps a strong reference until the task ends (the loop keeps only a
  weak one, and a collected task just stops);
* a task that raises is logged, with its traceback, and handed to ``on_error`` — never lost as
  "Task exception was never retrieved";
* :meth:`WidgetTasks.cancel` cancels what is still running (a widget's ``shutdown``, a dialog
  closing), before the loop closes.

The UI's own helper; the services layer may grow a general one, and then this one can become a
thin use of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

ErrorHandler = Callable[[BaseException], None]


class WidgetTasks:
    """The running tasks of one widget. ``what`` names them in the log: ``"<what> failed: …"``."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        on_error: ErrorHandler | None = None,
        level: int = logging.ERROR,
    ) -> None:
        self._log = log
        self._what = what
        self._on_error = on_error
        self._level = level
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, object]) -> asyncio.Task[Any]:
        """Run ``work`` on the running (qasync) loop; the task is returned for extra callbacks."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def cancel(self) -> None:
        """Cancel every task still running."""
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)

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
