"""The left half of the Terminal tab: the till's open orders, and the buttons that start a session.

Only orders that still owe are listed, newest first (the bill staff are about to take is usually
the latest), and a search box narrows them by order or table as staff type. The orders
(reference, table, total, paid, outstanding) are read through
:meth:`BridgeSignals.open_orders` off the GUI thread: on demand (Refresh, F5), when the tab is
shown, soon after a payment arrives and when a session ends. "Take card payment…" and "Unlinked
refund…" leave as signals; the Terminal tab opens the dialogs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLineEdit, QPushButton, QTableView, QVBoxLayout, QWidget

from epos_bridge.domain.terminal_sessions import outstanding
from epos_bridge.protocol.entities import Money, Order
from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.styles import TONE_STYLES, scaled_font
from epos_bridge.ui.table_model import RIGHT_ALIGNED, ModelIndex, RowTableModel, configure_table
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import PlainLabel, plain_tooltip
from epos_bridge.ui.words import format_money, local_time, order_words, plural, problem_words

log = logging.getLogger(__name__)

ORDERS_REFRESH_DELAY_MS = 400
"""A payment usually comes with a lock release and a status event: one reload for the burst."""
TAKE_PAYMENT_TIP = "Take the selected order's outstanding amount on a terminal (Enter)"


@dataclass(frozen=True)
class OpenOrder:
    """One row of the open-orders table; amounts in minor units."""

    order_id: str
    reference: str
    table: str
    total: int
    paid: int
    currency: str
    owed: int = 0
    """What the order still owes (the domain's rule, :func:`~epos_bridge.domain.terminal_sessions.outstanding`)."""
    opened_at: datetime | None = None

    @property
    def outstanding(self) -> int:
        return self.owed

    def matches(self, text: str) -> bool:
        """Does the search text (any case, any part) name this order or its table?"""
        wanted = text.strip().casefold()
        return not wanted or any(wanted in field.casefold() for field in (self.reference, self.table, self.order_id))

    @property
    def label(self) -> str:
        return self.reference

    def outstanding_money(self) -> Money:
        return Money(value=self.outstanding, currency_code=self.currency)


def open_order(order: Order) -> OpenOrder:
    order_id = order.id or ""
    table = order.details.dine_in.table_id if order.details.dine_in is not None else None
    collection = order.details.collection is not None
    return OpenOrder(
        order_id=order_id,
        reference=order_words(order.reference, order.display_name, order_id),
        table=table or ("Collection" if collection else ""),
        total=order.total_amount.value if order.total_amount else 0,
        paid=order.paid_amount.value if order.paid_amount else 0,
        currency=(order.total_amount.currency_code if order.total_amount else "GBP"),
        owed=outstanding(order).value,
        opened_at=order.created_at,
    )


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def orders_to_take(orders: Sequence[Order]) -> list[OpenOrder]:
    """The rows the Terminal tab lists: orders that still owe, newest first."""
    rows = [open_order(order) for order in orders if order.id]
    owing = [row for row in rows if row.outstanding > 0]
    return sorted(owing, key=lambda row: row.opened_at or _LONG_AGO, reverse=True)


class OrderTableModel(RowTableModel[OpenOrder]):
    """Open orders that still owe, newest first, narrowed by the search text."""

    HEADERS = ("Order", "Table", "Total", "Paid", "Outstanding")
    MONEY_COLUMNS = (2, 3, 4)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._all: list[OpenOrder] = []
        self._search = ""

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            match column:
                case 0:
                    return row.reference
                case 1:
                    return row.table
                case 2:
                    return format_money(row.total, row.currency)
                case 3:
                    return format_money(row.paid, row.currency)
                case _:
                    return format_money(row.outstanding, row.currency)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self.MONEY_COLUMNS:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ForegroundRole and column == 4 and row.outstanding == 0:
            return Qt.GlobalColor.darkGreen
        return None

    def orders(self) -> list[OpenOrder]:
        return list(self._rows)

    def order_at(self, row: int) -> OpenOrder | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, order_id: str) -> int | None:
        return next((i for i, o in enumerate(self._rows) if o.order_id == order_id), None)

    def set_orders(self, orders: Sequence[OpenOrder]) -> None:
        self._all = list(orders)
        self._show()

    def set_search(self, text: str) -> None:
        self._search = text
        self._show()

    def total_count(self) -> int:
        return len(self._all)

    def _show(self) -> None:
        self.beginResetModel()
        self._rows = [row for row in self._all if row.matches(self._search)]
        self.endResetModel()


class OpenOrdersBox(QGroupBox):
    """The open orders and the two commands. ``loaded(int)`` tells each finished reload (the row
    count); ``take_payment_requested`` and ``unlinked_refund_requested`` are the staff's commands."""

    loaded = Signal(int)
    take_payment_requested = Signal()
    unlinked_refund_requested = Signal()

    def __init__(self, signals: BridgeSignals, *, clock: Clock = utc_now, parent: QWidget | None = None) -> None:
        super().__init__("Open orders", parent)
        self._signals = signals
        self._clock = clock
        self._tasks = WidgetTasks(log, "reading the open orders")
        self._load_generation = 0
        self._busy = False
        self._read_at = ""

        self.orders_model = OrderTableModel(self)
        self.orders_view = QTableView()
        self.orders_view.setModel(self.orders_model)
        configure_table(self.orders_view, stretch_column=0)
        self.orders_view.setFont(scaled_font(self.font(), 1.1))
        self.orders_view.verticalHeader().setDefaultSectionSize(int(self.orders_view.fontMetrics().height() * 1.9))
        self.orders_view.setMinimumWidth(360)
        self.search_edit = QLineEdit()
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setPlaceholderText("Find an order or a table")
        self.search_edit.setAccessibleName("Find an open order")
        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.setToolTip("Read the open orders from the POS again (F5)")
        self.orders_status = PlainLabel("Loading open orders…")
        self.orders_status.setWordWrap(True)
        self.orders_status.setStyleSheet(TONE_STYLES["idle"])
        self.take_payment_button = QPushButton("Ta&ke card payment…")
        self.take_payment_button.setToolTip(TAKE_PAYMENT_TIP)
        self.take_payment_button.setFont(scaled_font(self.font(), 1.15, bold=True))
        self.take_payment_button.setMinimumHeight(44)
        self.take_payment_button.setEnabled(False)
        self.unlinked_refund_button = QPushButton("&Unlinked refund…")
        self.unlinked_refund_button.setToolTip("Refund an amount to any card, not linked to an order")
        self.unlinked_refund_button.setMinimumHeight(44)

        top = QHBoxLayout()
        top.addWidget(self.orders_status, 1)
        top.addWidget(self.refresh_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.take_payment_button, 2)
        bottom.addWidget(self.unlinked_refund_button, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.orders_view, 1)
        layout.addLayout(bottom)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(ORDERS_REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.reload)

        self.refresh_button.clicked.connect(self.reload)
        self.search_edit.textChanged.connect(self._search_changed)
        self.take_payment_button.clicked.connect(self.take_payment_requested)
        self.unlinked_refund_button.clicked.connect(self.unlinked_refund_requested)
        self.orders_view.activated.connect(lambda _index: self.take_payment_requested.emit())
        self.orders_view.selectionModel().selectionChanged.connect(self._update_buttons)
        signals.payment.connect(self._payment_arrived)

    def refresh_action(self, parent: QWidget) -> QAction:
        """F5 anywhere in ``parent`` (the whole Terminal tab) reads the orders again."""
        action = QAction("Refresh open orders", parent)
        action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(self.reload)
        return action

    # --- reading -------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the open orders again (asynchronously; ``loaded`` tells when done)."""
        self._refresh_timer.stop()
        self._load_generation += 1
        self.refresh_button.setEnabled(False)
        if not self.orders_model.rowCount():
            self.orders_status.setText("Loading open orders…")
        self._tasks.spawn(self._load(self._load_generation))

    def reload_soon(self) -> None:
        self._refresh_timer.start()

    async def _load(self, generation: int) -> None:
        try:
            orders = await self._signals.open_orders()
        except Exception as exc:  # the POS may be busy or gone: say so, keep what is shown
            log.warning("reading the open orders failed: %s", exc)
            if generation == self._load_generation:
                self.refresh_button.setEnabled(True)
                self.orders_status.setText(
                    f"Could not read the open orders from the POS: {problem_words(exc)}. Press Refresh."
                )
                self.orders_status.setStyleSheet(TONE_STYLES["failure"])
            return
        if generation != self._load_generation:
            return
        selected = self.selected_order()
        rows = orders_to_take(orders)
        self.orders_model.set_orders(rows)
        if selected is not None:
            self.select_order(selected.order_id)
        self.refresh_button.setEnabled(True)
        self._read_at = local_time(self._clock(), seconds=True)
        self._show_count()
        self.orders_status.setStyleSheet(TONE_STYLES["idle"])
        self._update_buttons()
        self.loaded.emit(len(rows))

    def _show_count(self) -> None:
        shown, owing = self.orders_model.rowCount(), self.orders_model.total_count()
        count = plural(owing, "order") + " to pay" if shown == owing else f"{shown} of {owing} orders to pay"
        self.orders_status.setText(f"{count} · read at {self._read_at}")

    def _search_changed(self, text: str) -> None:
        selected = self.selected_order()
        self.orders_model.set_search(text)
        if selected is not None:
            self.select_order(selected.order_id)
        elif self.orders_model.rowCount() == 1:
            self.select_order(self.orders_model.orders()[0].order_id)  # one match: Enter takes it
        self._show_count()
        self._update_buttons()

    def _payment_arrived(self, _entry: PaymentLogEntry) -> None:
        self.reload_soon()

    # --- selection and buttons -------------------------------------------------------------------

    def selected_order(self) -> OpenOrder | None:
        rows = self.orders_view.selectionModel().selectedRows()
        return self.orders_model.order_at(rows[0].row()) if rows else None

    def select_order(self, order_id: str) -> bool:
        row = self.orders_model.row_of(order_id)
        if row is None:
            return False
        self.orders_view.selectRow(row)
        self.orders_view.setCurrentIndex(self.orders_model.index(row, 0))
        return True

    def set_busy(self, busy: bool) -> None:
        """A session is running on the Terminal tab: no second one starts from here."""
        self._busy = busy
        self._update_buttons()

    def _update_buttons(self) -> None:
        order = self.selected_order()
        self.take_payment_button.setEnabled(order is not None and order.outstanding > 0 and not self._busy)
        self.unlinked_refund_button.setEnabled(not self._busy)
        if self._busy:
            self.take_payment_button.setToolTip("Wait for the terminal to finish the current session")
        elif order is not None and order.outstanding == 0:
            self.take_payment_button.setToolTip(plain_tooltip(f"{order.reference} is paid in full"))
        else:
            self.take_payment_button.setToolTip(TAKE_PAYMENT_TIP)

    def shutdown(self) -> None:
        """Stop the timer and cancel reads still running (before the loop closes)."""
        self._refresh_timer.stop()
        self._tasks.cancel()
