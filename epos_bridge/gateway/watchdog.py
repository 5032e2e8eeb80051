""" "Connected" must mean "serving": how the session notices that it has stopped answering.

An open socket proves nothing. The bridge can hold a healthy WebSocket while no request is
answered: the event loop is blocked (a synchronous call, a nested Qt loop), or a task the
session needs is stuck (every in-flight slot taken by a request waiting forever). Dojo then
routes each payment into a black hole while the tray shows green. Two guards close that gap:

* :class:`Unanswered` (pure: no clock, no I/O) remembers when each request of the current
  connection was read and names those still unanswered after ``answer_within_s``, each once. The
  session's watch tick asks it; an overdue request makes the state ``stalled`` (red) and the
  session reconnects with fresh in-flight slots, so a stuck request cannot starve the next link.
  The watch tick also measures its own lateness: a tick ``stalled_after_s`` late means the loop
  was frozen, and the session reconnects the same way (answers held during the freeze may have
  come too late for Dojo, and pings went unanswered).
* :class:`FreezeGuard` is a thread: the loop cannot watch itself while it is frozen. When the
  watch tick has not beaten for ``frozen_after_s`` it logs where the loop thread is stuck and
  shuts the gateway socket down from outside, so Dojo sees the till offline at once instead of
  waiting on requests nobody reads. When the loop runs again the session finds the link closed
  and reconnects.

The thresholds follow the contract's "reply within a few seconds" (§1.2) and the dispatcher's
own 10 s deadline: a request unanswered for 30 s is stuck, not slow.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchdogPolicy:
    tick_s: float = 1.0
    """How often the watch tick runs (and beats for the freeze guard)."""
    stalled_after_s: float = 10.0
    """A watch tick this late means the event loop was frozen."""
    answer_within_s: float = 30.0
    """A request unanswered this long is stuck (three times the dispatcher's deadline)."""
    frozen_after_s: float = 10.0
    """The freeze guard drops the link when the loop has not beaten for this long."""

    def __post_init__(self) -> None:
        for name in ("tick_s", "stalled_after_s", "answer_within_s", "frozen_after_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class Unanswered:
    """The requests read on one connection and not yet answered, with when each was read."""

    def __init__(self, answer_within_s: float) -> None:
        self._answer_within_s = answer_within_s
        self._read_at: dict[Hashable, float] = {}
        self._reported: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._read_at)

    def read(self, request: Hashable, now: float) -> None:
        self._read_at[request] = now

    def answered(self, request: Hashable) -> None:
        self._read_at.pop(request, None)
        self._reported.discard(request)

    def newly_overdue(self, now: float) -> list[float]:
        """How long each request not reported before has waited, once it is past the limit."""
        late = [
            (request, now - read_at)
            for request, read_at in self._read_at.items()
            if request not in self._reported and now - read_at >= self._answer_within_s
        ]
        self._reported.update(request for request, _ in late)
        return sorted((waited for _, waited in late), reverse=True)


class FreezeGuard:
    """A daemon thread that acts when the event loop stops beating (see the module docstring).

    ``on_frozen`` runs on the guard's thread, so it must be thread-safe (shutting a socket down
    is: it is one system call). It runs once per freeze; the next :meth:`beat` re-arms it.
    """

    def __init__(
        self,
        frozen_after_s: float,
        on_frozen: Callable[[float], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frozen_after_s = frozen_after_s
        self._on_frozen = on_frozen
        self._clock = clock
        self._last_beat = clock()
        self._fired = False
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch the calling thread (the event loop's) from now on."""
        self._loop_thread = threading.get_ident()
        self.beat()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="epos-bridge freeze guard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def beat(self) -> None:
        """The loop is alive (called by the watch tick, on the loop)."""
        self._last_beat = self._clock()
        self._fired = False

    def _watch(self) -> None:
        check_every = min(1.0, self._frozen_after_s / 4)
        while not self._stop.wait(check_every):
            frozen_for = self._clock() - self._last_beat
            if frozen_for < self._frozen_after_s or self._fired:
                continue
            self._fired = True
            log.error(
                "the bridge has not answered for %.0f s (its event loop is blocked); dropping the Dojo"
                " connection so card machines see the till offline. The loop is at:\n%s",
                frozen_for,
                self._where_the_loop_is(),
            )
            try:
                self._on_frozen(frozen_for)
            except Exception:
                log.exception("dropping the connection of a frozen bridge failed")

    def _where_the_loop_is(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        return "".join(traceback.format_stack(frame)[-8:]) if frame is not None else "(unknown)"
