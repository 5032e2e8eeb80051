"""Garbage collection runs on the GUI thread, never on a worker thread."""

from __future__ import annotations

import gc

from pytestqt.qtbot import QtBot

from epos_bridge.ui.garbage import GuiThreadGarbageCollector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_collector_turns_automatic_collection_off_and_collects_by_threshold(qtbot: QtBot) -> None:
    collector = GuiThreadGarbageCollector()
    collector.start()
    try:
        assert not gc.isenabled()
        for _ in range(gc.get_threshold()[0] + 10):
            _Cycle()
        assert collector.check() >= 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        collector.stop()
    assert gc.isenabled()
