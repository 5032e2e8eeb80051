"""The Terminal tab: take a card payment for an open order on a Dojo terminal, and follow it live.

Left, the till's open orders (reference, table, total, paid, outstanding), read through
:meth:`BridgeSignals.open_orders` off the GUI thread: on demand (Refresh, F5), when the tab is
shown, when a payment arrives and when a session ends. "Take card payment…" opens
:class:`~epos_bridge.ui.payment_dialogs.TakePaymentDialog`; "Unlinked refund…" does the same for
a refund to any card; a matched refund starts from the payment log (:meth:`refund_payment`).

Right, :class:`SessionPanel` follows the session in big words ("Present card", "Enter PIN",
"Approved"), keeps what the terminal said, offers Cancel only while Dojo allows it, asks the
signature question in a :class:`~epos_bridge.ui.payment_dialogs.SignatureDialog`, and ends with
the outcome in colour: green "Recorded on T12-0008", red "Nothing was recorded".

Nothing here decides what a status means or records a payment: ``epos_bridge.services.counter`` does,
and its :class:`~epos_bridge.services.counter.SessionUpdate` arrives as ``BridgeSignals.counter_update``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from epos_bridge.protocol.entities import Money, Order
from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.services.counter import SessionUpdate
from epos_bridge.services.notifications import capture_not_on_till_words, format_money
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.payment_dialogs import (
    MATCHED_REFUND,
    SALE,
    UNLINKED_REFUND,
    SignatureDialog,
    TakePaymentDialog,
    TerminalRequest,
    scaled_font,
)
from epos_bridge.ui.session_words import in_words, notification_in_words
from epos_bridge.ui.table_model import RIGHT_ALIGNED, ModelIndex, RowTableModel
from epos_bridge.ui.text import PlainLabel, plain_tooltip

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

TERMINAL_EMPTY_TEXT = "Card-present payments taken from this till will appear here"
ORDERS_REFRESH_DELAY_MS = 400
"""A payment usually comes with a lock release and a status event: one reload for the burst."""
REFUNDABLE = frozenset({"Recorded", "Captured"})
"""Payment-log statuses a matched refund can start from (not Refunded, Reversed, Canceled…)."""

KIND_WORDS = {SALE: "Card payment", MATCHED_REFUND: "Refund", UNLINKED_REFUND: "Unlinked refund"}

TONE_STYLES = {
    "idle": "color: #5f6368;",
    "progress": "color: palette(text);",
    "success": "color: #1b7f3b;",
    "failure": "color: #b3261e;",
    "warning": "color: #8a5a00;",
}
_OUTCOME_BOX = "QLabel {{ background: {}; color: {}; border: 2px solid {}; border-radius: 6px; padding: 10px; }}"
OUTCOME_STYLES = {
    "success": _OUTCOME_BOX.format("#e3f4e8", "#14532d", "#1b7f3b"),
    "failure": _OUTCOME_BOX.format("#fbe9e7", "#7f1d1d", "#b3261e"),
    "warning": _OUTCOME_BOX.format("#fff4dc", "#5c3d00", "#c98a00"),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- what staff read (pure: unit-testable without widgets) ----------------------------------------


@dataclass(frozen=True)
class OpenOrder:
    """One row of the open-orders table; amounts in minor units."""

    order_id: str
    reference: str
    table: str
    total: int
    paid: int
    currency: str

    @property
    def outstanding(self) -> int:
        return max(0, self.total - self.paid)

    @property
    def label(self) -> str:
        return self.reference

    def outstanding_money(self) -> Money:
        return Money(value=self.outstanding, currency_code=self.currency)


def order_words(reference: str | None, display_name: str | None, order_id: str) -> str:
    """``T12-0008 (Table 12)``: what the order is called on the till."""
    if reference and display_name:
        return f"{reference} ({display_name})"
    return reference or display_name or f"Order {order_id}"


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
    )


@dataclass(frozen=True)
class SessionView:
    """How one session update is shown: ``tone`` is idle, progress, success, failure or warning."""

    headline: str
    detail: str
    outcome: str
    tone: str


def describe_session(update: SessionUpdate, order_label: str | None) -> SessionView:
    """Big words first (the latest thing the terminal asks for), then the outcome in plain terms."""
    where = order_label or (f"order {update.order_id}" if update.order_id else None)
    if update.unrecorded_capture:
        amount = update.amount
        words = capture_not_on_till_words(
            amount.value if amount else 0, amount.currency_code if amount else "GBP", update.terminal_name
        )
        return SessionView("Approved — not on the till yet", words, "Do not charge it again.", "warning")
    if not update.final:
        if update.awaiting_signature:
            return SessionView("Check the signature", "Answer on this screen: does the signature match?", "", "warning")
        if update.status == "CancelRequested":
            return SessionView("Cancelling…", "Waiting for the terminal to stop", "", "progress")
        words = in_words(update.status)
        headline = notification_in_words(update.notifications[-1]) if update.notifications else words
        detail = words if headline != words else ""
        if update.error:
            return SessionView(headline, detail, f"Dojo did not answer: {update.error} Still checking…", "warning")
        return SessionView(headline, detail, "", "progress")
    if update.succeeded:
        if update.error:
            return SessionView(in_words(update.status), "", update.error, "warning")
        if update.kind == SALE:
            outcome = f"Recorded on {where}" if update.recorded and where else "Approved on the terminal"
        elif update.kind == MATCHED_REFUND:
            outcome = f"Refunded: the payment no longer counts on {where}" if update.recorded and where else "Refunded"
        else:
            outcome = "Refunded to the card — not linked to any order"
        return SessionView(in_words(update.status), "", outcome, "success")
    nothing = "Nothing was recorded" if update.kind == SALE else "Nothing was refunded"
    return SessionView(in_words(update.status), "", nothing, "failure")


def session_title(kind: str, order_label: str | None, amount: Money | None) -> str:
    """``Card payment · T12-0008 (Table 12) · £36.56``."""
    parts = [KIND_WORDS.get(kind, kind)]
    if order_label:
        parts.append(order_label)
    if amount is not None:
        parts.append(format_money(amount.value, amount.currency_code))
    return " · ".join(parts)


# --- the open orders --------------------------------------------------------------------------------


class OrderTableModel(RowTableModel[OpenOrder]):
    """Open orders, oldest first (as the POS numbers them)."""

    HEADERS = ("Order", "Table", "Total", "Paid", "Outstanding")
    MONEY_COLUMNS = (2, 3, 4)

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
        self.beginResetModel()
        self._rows = list(orders)
        self.endResetModel()


# --- the live session ---------------------------------------------------------------------------------


class SessionPanel(QWidget):
    """Follows one terminal session and renders it; asks for commands through signals.

    ``cancel_requested(session_id)`` and ``signature_answered(session_id, accepted)`` are the
    staff's commands; ``finished(SessionUpdate)`` tells the final update once it is shown.
    """

    cancel_requested = Signal(str)
    signature_answered = Signal(str, bool)
    finished = Signal(object)
    signature_asked = Signal(object)
    """A :class:`SignatureDialog` was opened (tests and the screenshots find it here)."""

    def __init__(self, clock: Clock = utc_now, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self.session_id: str | None = None
        self.last_update: SessionUpdate | None = None
        self.order_label: str | None = None
        self.signature_dialog: SignatureDialog | None = None
        self._signature_asked_for: str | None = None
        self._history_seen = 0
        self._last_status = ""
        self._cancel_sent = False

        self.empty_label = PlainLabel(TERMINAL_EMPTY_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setFont(scaled_font(self.font(), 1.3))
        self.empty_label.setStyleSheet(TONE_STYLES["idle"])

        self.title_label = PlainLabel()
        self.title_label.setFont(scaled_font(self.font(), 1.3, bold=True))
        self.title_label.setWordWrap(True)
        self.terminal_label = PlainLabel()
        self.terminal_label.setStyleSheet(TONE_STYLES["idle"])
        self.headline_label = PlainLabel()
        self.headline_label.setObjectName("sessionHeadline")
        self.headline_label.setFont(scaled_font(self.font(), 2.6, bold=True))
        self.headline_label.setWordWrap(True)
        self.headline_label.setMinimumHeight(int(self.headline_label.fontMetrics().height() * 1.2))
        self.detail_label = PlainLabel()
        self.detail_label.setFont(scaled_font(self.font(), 1.2))
        self.detail_label.setWordWrap(True)
        self.outcome_label = PlainLabel()
        self.outcome_label.setFont(scaled_font(self.font(), 1.35, bold=True))
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        history_title = PlainLabel("What the terminal said:")
        self.history = QListWidget()
        self.history.setAlternatingRowColors(True)
        self.history.setFont(scaled_font(self.font(), 1.1))
        self.history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button = QPushButton("Ca&ncel on the terminal")
        self.cancel_button.setFont(scaled_font(self.font(), 1.15, bold=True))
        self.cancel_button.setMinimumHeight(44)
        self.cancel_button.setToolTip("Ask the terminal to stop this payment (only while the card is not yet taken)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel)

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(8)
        body.addWidget(self.title_label)
        body.addWidget(self.terminal_label)
        body.addSpacing(6)
        body.addWidget(self.headline_label)
        body.addWidget(self.detail_label)
        body.addWidget(self.outcome_label)
        body.addSpacing(6)
        body.addWidget(history_title)
        body.addWidget(self.history, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        body.addLayout(buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_label, 1)
        layout.addWidget(self.body, 1)
        self.body.setVisible(False)

    # --- following ---------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A session is being followed and has not ended."""
        return self.session_id is not None and (self.last_update is None or not self.last_update.final)

    def follow(self, session_id: str, kind: str, order_label: str | None, amount: Money, terminal: str) -> None:
        """Show a session staff just started (before its first update arrives)."""
        self._reset(session_id, order_label)
        self.title_label.setText(session_title(kind, order_label, amount))
        self.terminal_label.setText(f"On {terminal} · session {session_id}")
        self._show(SessionView("Sending to the terminal…", "", "", "progress"))
        self._add_history("Sent to the terminal")

    def show_update(self, update: SessionUpdate, order_label: str | None) -> None:
        """Render ``update`` if it is the followed session's (or adopt it when idle: a session a
        previous run left unfinished is followed again by the bridge and shown here)."""
        if update.session_id != self.session_id:
            if self.busy:
                return
            self._reset(update.session_id, order_label)
            self.terminal_label.setText(f"Session {update.session_id}")
        if order_label is not None:
            self.order_label = order_label
        self.last_update = update
        self.title_label.setText(session_title(update.kind, self.order_label, update.amount))
        for notification in update.notifications[self._history_seen :]:
            self._add_history(notification_in_words(notification))
        self._history_seen = max(self._history_seen, len(update.notifications))
        if update.status != self._last_status:
            self._last_status = update.status
            self._add_history(f"— {in_words(update.status)}")
        if update.error and not update.final:
            self._add_history(f"— Dojo did not answer: {update.error}")
        self._show(describe_session(update, self.order_label))
        self.cancel_button.setEnabled(update.cancellable and not update.final and not self._cancel_sent)
        if update.awaiting_signature and self._signature_asked_for != update.session_id:
            self._ask_signature(update)
        if update.final:
            self._close_signature_dialog()
            self.finished.emit(update)

    def show_problem(self, message: str) -> None:
        """A command (cancel, signature answer) did not reach Dojo."""
        self.outcome_label.setText(message)
        self.outcome_label.setStyleSheet(OUTCOME_STYLES["warning"])
        self.outcome_label.setVisible(True)
        self._add_history(f"— {message}")
        if self.last_update is not None and not self.last_update.final:
            self._cancel_sent = False
            self.cancel_button.setEnabled(self.last_update.cancellable)

    def _reset(self, session_id: str, order_label: str | None) -> None:
        self._close_signature_dialog()
        self.session_id = session_id
        self.order_label = order_label
        self.last_update = None
        self._signature_asked_for = None
        self._history_seen = 0
        self._last_status = ""
        self._cancel_sent = False
        self.history.clear()
        self.cancel_button.setEnabled(False)
        self.empty_label.setVisible(False)
        self.body.setVisible(True)

    def _show(self, view: SessionView) -> None:
        self.headline_label.setText(view.headline)
        self.headline_label.setStyleSheet(TONE_STYLES[view.tone])
        self.detail_label.setText(view.detail)
        self.detail_label.setVisible(bool(view.detail))
        self.outcome_label.setText(view.outcome)
        self.outcome_label.setStyleSheet(OUTCOME_STYLES.get(view.tone, ""))
        self.outcome_label.setVisible(bool(view.outcome))

    def _add_history(self, text: str) -> None:
        stamp = self._clock().astimezone().strftime("%H:%M:%S")
        self.history.addItem(f"{stamp}  {text}")
        self.history.scrollToBottom()

    # --- commands --------------------------------------------------------------------------------

    def _cancel(self) -> None:
        if self.session_id is None or not self.cancel_button.isEnabled():
            return
        self._cancel_sent = True
        self.cancel_button.setEnabled(False)
        self.headline_label.setText("Cancelling…")
        self._add_history("— Cancel asked from this till")
        self.cancel_requested.emit(self.session_id)

    def _ask_signature(self, update: SessionUpdate) -> None:
        self._signature_asked_for = update.session_id
        subject = session_title(update.kind, self.order_label, update.amount)
        dialog = SignatureDialog(subject, parent=self.window())
        session_id = update.session_id
        dialog.answered.connect(lambda accepted: self._answer(session_id, accepted))
        dialog.finished.connect(dialog.deleteLater)
        self.signature_dialog = dialog
        dialog.open()
        self.signature_asked.emit(dialog)

    def _answer(self, session_id: str, accepted: bool) -> None:
        self.signature_dialog = None
        words = "Signature accepted — finishing…" if accepted else "Signature rejected — reversing…"
        self.headline_label.setText(words)
        self._add_history(f"— Signature {'accepted' if accepted else 'rejected'} on this till")
        self.signature_answered.emit(session_id, accepted)

    def _close_signature_dialog(self) -> None:
        if self.signature_dialog is not None:
            self.signature_dialog.dismiss()
            self.signature_dialog = None


# --- the tab -----------------------------------------------------------------------------------------


class TerminalPanel(QWidget):
    """Open orders on the left, the live session on the right; commands go to :class:`BridgeSignals`.

    ``orders_loaded(int)`` tells each finished reload (the row count), ``dialog_opened(dialog)``
    each payment/refund dialog shown, ``session_started(session_id)`` each session started here.
    """

    orders_loaded = Signal(int)
    dialog_opened = Signal(object)
    session_started = Signal(str)

    def __init__(self, signals: BridgeSignals, *, clock: Clock = utc_now, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._signals = signals
        self._clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        self._order_labels: dict[str, str] = {}
        self._load_generation = 0
        self.payment_dialog: TakePaymentDialog | None = None

        self.orders_model = OrderTableModel(self)
        self.orders_view = QTableView()
        self.orders_view.setModel(self.orders_model)
        self.orders_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.orders_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.orders_view.setAlternatingRowColors(True)
        self.orders_view.setWordWrap(False)
        self.orders_view.setTabKeyNavigation(False)
        self.orders_view.verticalHeader().setVisible(False)
        self.orders_view.setFont(scaled_font(self.font(), 1.1))
        self.orders_view.verticalHeader().setDefaultSectionSize(int(self.orders_view.fontMetrics().height() * 1.9))
        header = self.orders_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.orders_view.setMinimumWidth(360)

        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.setToolTip("Read the open orders from the POS again (F5)")
        self.orders_status = PlainLabel("Loading open orders…")
        self.orders_status.setWordWrap(True)
        self.orders_status.setStyleSheet(TONE_STYLES["idle"])
        self.take_payment_button = QPushButton("Ta&ke card payment…")
        self.take_payment_button.setToolTip("Take the selected order's outstanding amount on a terminal (Enter)")
        self.take_payment_button.setFont(scaled_font(self.font(), 1.15, bold=True))
        self.take_payment_button.setMinimumHeight(44)
        self.take_payment_button.setEnabled(False)
        self.unlinked_refund_button = QPushButton("&Unlinked refund…")
        self.unlinked_refund_button.setToolTip("Refund an amount to any card, not linked to an order")
        self.unlinked_refund_button.setMinimumHeight(44)

        orders_box = QGroupBox("Open orders")
        orders_layout = QVBoxLayout(orders_box)
        top = QHBoxLayout()
        top.addWidget(self.orders_status, 1)
        top.addWidget(self.refresh_button)
        orders_layout.addLayout(top)
        orders_layout.addWidget(self.orders_view, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.take_payment_button, 2)
        bottom.addWidget(self.unlinked_refund_button, 1)
        orders_layout.addLayout(bottom)

        self.session_panel = SessionPanel(clock, self)
        session_box = QGroupBox("Card machine")
        session_layout = QVBoxLayout(session_box)
        session_layout.addWidget(self.session_panel)
        session_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(orders_box)
        splitter.addWidget(session_box)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 4)
        splitter.setSizes([620, 520])
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)

        refresh_action = QAction("Refresh open orders", self)
        refresh_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        refresh_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        refresh_action.triggered.connect(self.reload_orders)
        self.addAction(refresh_action)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(ORDERS_REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.reload_orders)

        self.refresh_button.clicked.connect(self.reload_orders)
        self.take_payment_button.clicked.connect(self.take_payment)
        self.unlinked_refund_button.clicked.connect(self.unlinked_refund)
        self.orders_view.activated.connect(lambda _index: self.take_payment())
        self.orders_view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.session_panel.cancel_requested.connect(self._cancel)
        self.session_panel.signature_answered.connect(self._answer_signature)
        self.session_panel.finished.connect(self._session_finished)
        signals.counter_update.connect(self._counter_update)
        signals.payment.connect(self._payment_arrived)

    # --- open orders -----------------------------------------------------------------------------

    def reload_orders(self) -> None:
        """Read the open orders again (asynchronously; ``orders_loaded`` tells when done)."""
        self._refresh_timer.stop()
        self._load_generation += 1
        self.refresh_button.setEnabled(False)
        if not self.orders_model.rowCount():
            self.orders_status.setText("Loading open orders…")
        self._spawn(self._load_orders(self._load_generation))

    def reload_soon(self) -> None:
        self._refresh_timer.start()

    async def _load_orders(self, generation: int) -> None:
        try:
            orders = await self._signals.open_orders()
        except Exception as exc:  # the POS may be busy or gone: say so, keep what is shown
            log.warning("reading the open orders failed: %s", exc)
            if generation == self._load_generation:
                self.refresh_button.setEnabled(True)
                self.orders_status.setText(f"Could not read the open orders from the POS: {exc}. Press Refresh.")
                self.orders_status.setStyleSheet(TONE_STYLES["failure"])
            return
        if generation != self._load_generation:
            return
        selected = self.selected_order()
        rows = [open_order(order) for order in orders if order.id]
        self._order_labels.update({row.order_id: row.reference for row in rows})
        self.orders_model.set_orders(rows)
        if selected is not None:
            self.select_order(selected.order_id)
        self.refresh_button.setEnabled(True)
        count = len(rows)
        stamp = self._clock().astimezone().strftime("%H:%M:%S")
        self.orders_status.setText(f"{count} open order{'s' if count != 1 else ''} · read at {stamp}")
        self.orders_status.setStyleSheet(TONE_STYLES["idle"])
        self._update_buttons()
        self.orders_loaded.emit(count)

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

    def _update_buttons(self) -> None:
        order = self.selected_order()
        busy = self.session_panel.busy
        self.take_payment_button.setEnabled(order is not None and order.outstanding > 0 and not busy)
        self.unlinked_refund_button.setEnabled(not busy)
        if busy:
            self.take_payment_button.setToolTip("Wait for the terminal to finish the current session")
        elif order is not None and order.outstanding == 0:
            self.take_payment_button.setToolTip(plain_tooltip(f"{order.reference} is paid in full"))
        else:
            self.take_payment_button.setToolTip("Take the selected order's outstanding amount on a terminal (Enter)")

    def _payment_arrived(self, _entry: PaymentLogEntry) -> None:
        self.reload_soon()

    # --- starting sessions -------------------------------------------------------------------------

    def take_payment(self) -> None:
        """Open the payment dialog for the selected order (Enter on the row, or the button)."""
        order = self.selected_order()
        if order is None or order.outstanding <= 0 or self.session_panel.busy:
            return
        order_id, signals = order.order_id, self._signals

        def start(terminal_id: str, amount: Money) -> Coroutine[Any, Any, str]:
            return signals.start_sale(order_id, terminal_id, amount)

        def outstanding() -> Coroutine[Any, Any, Money]:
            return signals.outstanding(order_id)

        request = TerminalRequest.sale(order.reference, order.outstanding_money())
        self._open_dialog(request, start, order.reference, outstanding=outstanding)

    def refund_payment(self, entry: PaymentLogEntry) -> None:
        """A matched refund of a recorded payment (the payment log's Refund… action)."""
        if self.session_panel.busy or entry.status not in REFUNDABLE:
            return
        signals = self._signals
        label = order_words(entry.order_reference, entry.display_name, entry.order_id)
        self._order_labels.setdefault(entry.order_id, label)
        # The whole card payment goes back, tip included: all of it stops counting on the order.
        whole = Money(value=entry.amount_value + (entry.tips_value or 0), currency_code=entry.currency)

        def start(terminal_id: str, amount: Money) -> Coroutine[Any, Any, str]:
            return signals.start_matched_refund(entry.payment_intent_id, entry.order_id, terminal_id, amount)

        paid = format_money(entry.amount_value, entry.currency)
        if entry.tips_value:
            paid += f" + {format_money(entry.tips_value, entry.currency)} tip"
        words = f"{paid} paid on {label}"
        self._open_dialog(TerminalRequest.matched_refund(words, whole), start, label)

    def unlinked_refund(self) -> None:
        if self.session_panel.busy:
            return
        signals = self._signals

        def start(terminal_id: str, amount: Money) -> Coroutine[Any, Any, str]:
            return signals.start_unlinked_refund(terminal_id, amount)

        self._open_dialog(TerminalRequest.unlinked_refund(), start, None)

    def _open_dialog(
        self,
        request: TerminalRequest,
        start: Callable[[str, Money], Coroutine[Any, Any, str]],
        order_label: str | None,
        *,
        outstanding: Callable[[], Coroutine[Any, Any, Money]] | None = None,
    ) -> None:
        dialog = TakePaymentDialog(request, self._signals.terminals, start, outstanding=outstanding, parent=self)

        def started(session_id: str, terminal: str) -> None:
            amount = dialog.amount() or request.amount
            self.session_panel.follow(session_id, request.kind, order_label, amount, terminal)
            self._update_buttons()
            self.session_started.emit(session_id)

        dialog.started.connect(started)
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self.payment_dialog = dialog
        dialog.open()
        self.dialog_opened.emit(dialog)

    def _dialog_closed(self, dialog: TakePaymentDialog) -> None:
        if self.payment_dialog is dialog:
            self.payment_dialog = None
        dialog.deleteLater()

    # --- following -----------------------------------------------------------------------------------

    def _counter_update(self, update: SessionUpdate) -> None:
        label = self._order_labels.get(update.order_id) if update.order_id else None
        self.session_panel.show_update(update, label)
        self._update_buttons()

    def _session_finished(self, update: SessionUpdate) -> None:
        self._update_buttons()
        if update.order_id is not None:
            self.reload_soon()

    def _cancel(self, session_id: str) -> None:
        self._spawn(self._command(self._signals.cancel_session(session_id), "The cancel did not reach Dojo"))

    def _answer_signature(self, session_id: str, accepted: bool) -> None:
        self._spawn(
            self._command(
                self._signals.answer_signature(session_id, accepted), "The signature answer did not reach Dojo"
            )
        )

    async def _command(self, work: Coroutine[Any, Any, None], failure: str) -> None:
        try:
            await work
        except Exception as exc:  # in words on the panel; the session keeps being followed
            log.warning("%s: %s", failure, exc)
            self.session_panel.show_problem(f"{failure}: {exc}")

    # --- lifecycle ---------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the timer and cancel reads still running (before the loop closes)."""
        self._refresh_timer.stop()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a terminal-panel task failed: %s", task.exception(), exc_info=task.exception())


__all__ = [
    "TERMINAL_EMPTY_TEXT",
    "OpenOrder",
    "OrderTableModel",
    "SessionPanel",
    "SessionView",
    "TerminalPanel",
    "describe_session",
    "open_order",
    "order_words",
]
