"""The Terminal tab: take a card payment for an open order on a Dojo terminal, and follow it live.

Left, the till's open orders (:class:`~epos_bridge.ui.open_orders.OpenOrdersBox`); "Take card
payment…" opens :class:`~epos_bridge.ui.payment_dialogs.TakePaymentDialog`, "Unlinked refund…"
does the same for a refund to any card, and a matched refund starts from the payment log
(:meth:`TerminalPanel.refund_payment`). Right, the live session
(:class:`~epos_bridge.ui.session_panel.SessionPanel`).

Nothing here decides what a status means or records a payment: ``epos_bridge.services.counter`` does,
and its :class:`~epos_bridge.services.counter.SessionUpdate` arrives as ``BridgeSignals.counter_update``.
This class wires the two halves, opens the dialogs and sends the staff's commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from epos_bridge.protocol.entities import Money
from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.services.counter import SessionUpdate
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.open_orders import OpenOrdersBox
from epos_bridge.ui.payment_dialogs import TakePaymentDialog, TerminalRequest
from epos_bridge.ui.session_panel import SessionPanel
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.words import format_money, order_words, problem_words

log = logging.getLogger(__name__)

StartSession = Callable[[str, Money], Coroutine[Any, Any, str]]


class TerminalPanel(QWidget):
    """Open orders on the left, the live session on the right; commands go to :class:`BridgeSignals`.

    ``orders.loaded(int)`` tells each finished reload of the orders, ``dialog_opened(dialog)``
    each payment/refund dialog shown, ``session_started(session_id)`` each session started here.
    """

    dialog_opened = Signal(object)
    session_started = Signal(str)

    def __init__(self, signals: BridgeSignals, *, clock: Clock = utc_now, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._signals = signals
        self._tasks = WidgetTasks(log, "a terminal command")
        self._order_labels: dict[str, str] = {}
        self.payment_dialog: TakePaymentDialog | None = None

        self.orders = OpenOrdersBox(signals, clock=clock)
        self.session_panel = SessionPanel(clock, self)
        session_box = QGroupBox("Card machine")
        session_layout = QVBoxLayout(session_box)
        session_layout.addWidget(self.session_panel)
        session_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.orders)
        splitter.addWidget(session_box)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 4)
        splitter.setSizes([620, 520])
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)
        self.addAction(self.orders.refresh_action(self))

        self.orders.loaded.connect(self._orders_loaded)
        self.orders.take_payment_requested.connect(self.take_payment)
        self.orders.unlinked_refund_requested.connect(self.unlinked_refund)
        self.session_panel.cancel_requested.connect(self._cancel)
        self.session_panel.signature_answered.connect(self._answer_signature)
        self.session_panel.finished.connect(self._session_finished)
        signals.counter_update.connect(self._counter_update)

    def reload_orders(self) -> None:
        """Read the open orders again (the tab was shown)."""
        self.orders.reload()

    def _orders_loaded(self, _count: int) -> None:
        self._order_labels.update({row.order_id: row.reference for row in self.orders.orders_model.orders()})

    # --- starting sessions -------------------------------------------------------------------------

    def take_payment(self) -> None:
        """Open the payment dialog for the selected order (Enter on the row, or the button)."""
        order = self.orders.selected_order()
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
        """A matched refund of a recorded payment: the payment log's Refund…, which offers it only
        for a refundable payment (``payments_tab.REFUNDABLE``)."""
        if self.session_panel.busy:
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
        self._open_dialog(TerminalRequest.matched_refund(f"{paid} paid on {label}", whole), start, label)

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
        start: StartSession,
        order_label: str | None,
        *,
        outstanding: Callable[[], Coroutine[Any, Any, Money]] | None = None,
    ) -> None:
        dialog = TakePaymentDialog(request, self._signals.terminals, start, outstanding=outstanding, parent=self)

        def started(session_id: str, terminal: str) -> None:
            amount = dialog.amount() or request.amount
            self.session_panel.follow(session_id, request.kind, order_label, amount, terminal)
            self.orders.set_busy(self.session_panel.busy)
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
        self.orders.set_busy(self.session_panel.busy)

    def _session_finished(self, update: SessionUpdate) -> None:
        self.orders.set_busy(self.session_panel.busy)
        if update.order_id is not None:
            self.orders.reload_soon()

    def _cancel(self, session_id: str) -> None:
        self._tasks.spawn(self._command(self._signals.cancel_session(session_id), "The cancel did not reach Dojo"))

    def _answer_signature(self, session_id: str, accepted: bool) -> None:
        answer = self._signals.answer_signature(session_id, accepted)
        self._tasks.spawn(self._command(answer, "The signature answer did not reach Dojo"))

    async def _command(self, work: Coroutine[Any, Any, None], failure: str) -> None:
        try:
            await work
        except Exception as exc:  # in words on the panel; the session keeps being followed
            log.warning("%s: %s", failure, exc)
            self.session_panel.show_problem(f"{failure}: {problem_words(exc)}")

    def shutdown(self) -> None:
        """Stop the timer and cancel reads and commands still running (before the loop closes)."""
        self.orders.shutdown()
        self._tasks.cancel()
