"""Guards on the Qt binding itself: the tray app emits signals all day long."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from pytestqt.qtbot import QtBot


class _Emitter(QObject):
    happened = Signal(object)
    flag = Signal(bool)


def test_emitting_signals_keeps_reference_counts(qtbot: QtBot) -> None:
    """PySide6 6.12.0 lost a reference to ``True`` per emit and crashed the process after a few
    thousand (``Fatal Python error: bool_dealloc``); the dependency pin keeps it out."""
    emitter = _Emitter()
    received: list[object] = []
    emitter.happened.connect(received.append)
    before = sys.getrefcount(True)
    for _ in range(200):
        emitter.happened.emit(1)
        emitter.flag.emit(True)
    assert sys.getrefcount(True) - before >= -5
    assert len(received) == 200
