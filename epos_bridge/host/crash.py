"""Last-resort error handlers: an unexpected exception is logged (redacted) and reported, and the
bridge keeps serving.

A till runs all day; a bug in one callback must not take the venue's payments down with it, nor
vanish silently. :class:`CrashHandler` installs itself in the three places Python reports an
exception nobody caught:

* ``sys.excepthook`` — the main thread, and every Qt slot (PySide6 routes exceptions raised in
  slots and virtual overrides here and carries on);
* ``threading.excepthook`` — worker threads (``asyncio.to_thread`` work included, when not awaited);
* the asyncio loop's exception handler — callbacks, and tasks whose exception nobody retrieved.

Each becomes a :class:`CrashReport` that is logged at ERROR with its traceback (API key removed)
and passed to ``notify`` (the tray shows it). ``notify`` may be called from a worker thread: a Qt
receiver must hop to the GUI thread (emit a signal; Qt queues it across threads). ``Ctrl+C``
keeps its normal meaning.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from epos_bridge.protocol.redaction import KnownSecrets

log = logging.getLogger("epos_bridge.host.crash")

RECENT_REPORTS = 20


@dataclass(frozen=True)
class CrashReport:
    """One unexpected error, already redacted: safe to show, log and put in a diagnostics zip."""

    where: str
    """``main thread``, ``thread <name>``, ``asyncio task <name>`` or ``asyncio callback``."""
    summary: str
    """``ValueError: the message`` — one line for a notification."""
    details: str
    """The traceback (or the loop's context when there is no exception)."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


Notify = Callable[[CrashReport], None]


class CrashHandler:
    """Install once per process with :meth:`install`; :meth:`uninstall` puts the old hooks back."""

    def __init__(self, *, secrets: KnownSecrets | Iterable[str | None] = (), notify: Notify | None = None) -> None:
        self.secrets = secrets if isinstance(secrets, KnownSecrets) else KnownSecrets(secrets)
        """Shared with the logging filter and the bridge: a key added there is redacted here at once."""
        self._notify = notify
        self.recent: deque[CrashReport] = deque(maxlen=RECENT_REPORTS)
        self._previous_excepthook: Callable[..., Any] | None = None
        self._previous_threading_hook: Callable[[threading.ExceptHookArgs], Any] | None = None
        self._loops: list[asyncio.AbstractEventLoop] = []

    def set_secrets(self, secrets: Iterable[str | None]) -> None:
        """The API key changed in Settings: redact the new one from now on (and still the old)."""
        self.secrets.add(*secrets)

    def set_notify(self, notify: Notify | None) -> None:
        """The GUI attaches its notifier once the tray exists; errors before then are only logged."""
        self._notify = notify

    # --- installation ---------------------------------------------------------------------

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._previous_excepthook is None:
            self._previous_excepthook = sys.excepthook
            self._previous_threading_hook = threading.excepthook
            sys.excepthook = self._sys_hook
            threading.excepthook = self._thread_hook
        if loop is not None:
            self.install_loop(loop)

    def install_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Call from inside ``asyncio.run`` (``asyncio.get_running_loop()``) or with the qasync loop."""
        loop.set_exception_handler(self._loop_handler)
        self._loops.append(loop)

    def uninstall(self) -> None:
        if self._previous_excepthook is not None:
            sys.excepthook = self._previous_excepthook
            self._previous_excepthook = None
        if self._previous_threading_hook is not None:
            threading.excepthook = self._previous_threading_hook
            self._previous_threading_hook = None
        for loop in self._loops:
            if not loop.is_closed():
                loop.set_exception_handler(None)
        self._loops.clear()

    # --- the hooks -------------------------------------------------------------------------

    def _sys_hook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            (self._previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)
            return
        self.report("main thread", exc, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return  # threading's own rule: SystemExit ends a thread quietly
        name = args.thread.name if args.thread is not None else "unknown"
        self.report(f"thread {name}", args.exc_value, args.exc_traceback)

    def _loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        task = context.get("task") or context.get("future")
        where = f"asyncio task {task.get_name()}" if isinstance(task, asyncio.Task) else "asyncio callback"
        message = str(context.get("message") or "unhandled error in the event loop")
        if isinstance(exc, BaseException):
            self.report(where, exc, exc.__traceback__, context=message)
        else:
            detail = "\n".join(f"{key}: {value!r}" for key, value in context.items() if key != "message")
            self._emit(CrashReport(where, self._redact(message), self._redact(f"{message}\n{detail}")))

    # --- reporting ---------------------------------------------------------------------------

    def report(
        self, where: str, exc: BaseException, tb: TracebackType | None = None, *, context: str | None = None
    ) -> CrashReport:
        """Log and notify one exception; also callable directly (``except Exception as exc:``)."""
        summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
        details = "".join(traceback.format_exception(type(exc), exc, tb))
        if context:
            details = f"{context}\n{details}"
        report = CrashReport(where, self._redact(summary), self._redact(details))
        self._emit(report)
        return report

    def _emit(self, report: CrashReport) -> None:
        self.recent.append(report)
        log.error("unexpected error in %s: %s\n%s", report.where, report.summary, report.details.rstrip())
        if self._notify is None:
            return
        try:
            self._notify(report)
        except Exception as exc:  # a failing notifier must not recurse into the hooks
            log.error("the error notifier itself failed: %s", self._redact(repr(exc)))

    def _redact(self, text: str) -> str:
        return self.secrets.redact(text)
