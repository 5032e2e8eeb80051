"""The asyncio work a widget starts: the bridge's one task helper, named for widgets.

Widgets await the bridge's coroutines on the qasync loop, so the GUI thread never waits for the
disk or the network. Every widget that does holds one :class:`WidgetTasks`
(:class:`epos_bridge.services.tasks.TaskSet`): a strong reference until each task ends, a task
that raises logged with its traceback and handed to ``on_error``, and ``cancel()`` from the
widget's ``shutdown`` or a dialog closing, before the loop closes.
"""

from __future__ import annotations

import logging

from epos_bridge.services.tasks import ErrorHandler, TaskSet


class WidgetTasks(TaskSet):
    """The running tasks of one widget. ``what`` names them in the log: ``"<what> failed: …"``."""

    def __init__(
        self, log: logging.Logger, what: str, *, on_error: ErrorHandler | None = None, level: int = logging.ERROR
    ) -> None:
        super().__init__(what, logger=log, level=level, on_error=on_error)
