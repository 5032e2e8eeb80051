"""Python's garbage collection, moved onto the GUI thread.

The bridge runs worker threads all day (database pools, state stores). Python's cyclic
collector runs in whichever thread happens to allocate when a threshold is crossed, so a Qt
object caught in a reference cycle could be destroyed on a worker thread — and Qt crashes when
an object with timers or pending events dies off its own thread. Like qutebrowser, the tray app
switches automatic collection off and collects from a timer on the GUI thread instead, by the
same generation thresholds Python would use.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_EVERY_MS = 500


class GuiThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(CHECK_EVERY_MS)
        self._timer.timeout.connect(self.check)

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def check(self) -> int:
        """Collect the oldest generation whose threshold is crossed; returns it, or -1."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return generation
        return -1
