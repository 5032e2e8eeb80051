"""The Locks tab: the orders Dojo holds right now, with a live countdown, and what happened to locks.

It renders the bridge's :class:`~epos_bridge.services.activity.LockBoard` (which has already
applied each lock event before anyone hears of it) and, once a second, asks the bridge to drop
the locks whose time is up. Whether staff have *seen* a lock conflict is the window's business:
it knows which tab is showing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QGroupBox, QListWidget, QSplitter, QTableView, QVBoxLayout, QWidget

from epos_bridge.domain.events import DomainEvent
from epos_bridge.services.activity import HeldLockView, LockHistoryEntry
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.table_model import ModelIndex, RowTableModel, configure_table
from epos_bridge.ui.text import PlainLabel
from epos_bridge.ui.words import local_time, minutes_seconds, order_words

LOCKS_EMPTY_TEXT = "No order is locked by a card machine or Dojo product right now."


def history_line(entry: LockHistoryEntry) -> str:
    """``14:02:37  created   T12-0008 (Table 12) · table T12 · lock_1 — PayAtTable``."""
    order = order_words(entry.order.reference, entry.order.display_name, entry.order_id, prefix="")
    table = f" · table {entry.order.table_id}" if entry.order.table_id else ""
    lock = f" · {entry.lock_id}" if entry.lock_id else ""
    detail = f" — {entry.detail}" if entry.detail else ""
    return f"{local_time(entry.at, seconds=True)}  {entry.activity.value:<8}  {order}{table}{lock}{detail}"


class LockTableModel(RowTableModel[HeldLockView]):
    """The locks Dojo holds now, with the seconds left until each expires."""

    HEADERS = ("Order", "Table", "Lock id", "Held by", "Expires in")
    EXPIRES_COLUMN = 4

    def __init__(self, clock: Clock, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = clock

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        held = self._rows[index.row()]
        match index.column():
            case 0:
                return order_words(held.order.reference, held.order.display_name, held.order_id, prefix="")
            case 1:
                return held.order.table_id or ""
            case 2:
                return held.lock_id
            case 3:
                r = held.requester
                return " · ".join(p for p in (r.dojo_requesting_product, r.device_id, r.waiter_id) if p)
            case _:
                return minutes_seconds(held.seconds_left(self._clock()))

    def locks(self) -> list[HeldLockView]:
        return list(self._rows)

    def set_locks(self, locks: Sequence[HeldLockView]) -> None:
        self.beginResetModel()
        self._rows = sorted(locks, key=lambda held: held.locked_at)
        self.endResetModel()

    def tick(self) -> None:
        """Repaint the countdown column."""
        if self._rows:
            self.dataChanged.emit(
                self.index(0, self.EXPIRES_COLUMN), self.index(len(self._rows) - 1, self.EXPIRES_COLUMN)
            )


class LocksTab(QWidget):
    """Current locks above, their history below (newest first)."""

    def __init__(self, signals: BridgeSignals, *, clock: Clock = utc_now, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._signals = signals
        self._clock = clock

        current = QGroupBox("Orders Dojo holds now")
        current_layout = QVBoxLayout(current)
        self.lock_model = LockTableModel(clock, self)
        self.lock_view = QTableView()
        self.lock_view.setModel(self.lock_model)
        configure_table(self.lock_view)
        self.locks_empty_label = PlainLabel(LOCKS_EMPTY_TEXT)
        current_layout.addWidget(self.lock_view)
        current_layout.addWidget(self.locks_empty_label)
        history = QGroupBox("Lock history (newest first)")
        history_layout = QVBoxLayout(history)
        self.lock_history = QListWidget()
        self.lock_history.setAlternatingRowColors(True)
        history_layout.addWidget(self.lock_history)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(current)
        splitter.addWidget(history)
        outer = QVBoxLayout(self)
        outer.addWidget(splitter)

        signals.domain_event.connect(self._domain_event)
        self.refresh()

    def tick(self) -> None:
        """Once a second: drop expired locks, else repaint the countdowns."""
        if self._signals.expire_locks(self._clock()):
            self.refresh()
        else:
            self.lock_model.tick()

    def refresh(self) -> None:
        board = self._signals.lock_board
        self.lock_model.set_locks(list(board.current.values()))
        self.locks_empty_label.setVisible(not board.current)
        lines = [history_line(entry) for entry in reversed(board.history)]
        if lines != [self.lock_history.item(i).text() for i in range(self.lock_history.count())]:
            self.lock_history.clear()
            self.lock_history.addItems(lines)

    def _domain_event(self, _event: DomainEvent) -> None:
        # The board has already applied the event (the bridge does that before telling anyone).
        self.refresh()
