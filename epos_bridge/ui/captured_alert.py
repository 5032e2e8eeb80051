"""The alert staff cannot miss: a card taken at the counter that the POS refused (issue 25, item 3).

The counter decides (:mod:`epos_bridge.domain.captures`: the order was closed or gone, so the
card payment is kept as "captured, not on the till"); this window only renders the set the
bridge reports (``BridgeSignals.captures_not_on_till``) and offers the one click, a refund to the
card (``BridgeSignals.refund_not_on_till``: Dojo reverses the payment intent).

Non-modal, never ``exec()``: a nested event loop would stop the bridge serving under qasync
(issue 25, item 1). It stays on top and comes back while a capture remains; closing it only hides
it until the set changes again, and it hides by itself once every capture is settled.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from epos_bridge.domain.captures import NOT_ON_TILL, CaptureNotOnTill
from epos_bridge.domain.terminal_sessions import SaleRefused
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import PlainLabel
from epos_bridge.ui.words import format_money, order_words

log = logging.getLogger(__name__)

HEADLINE = "A card payment was taken but is not on the till"
STYLE = "QLabel#capturedHeadline { color: #b00020; font-weight: bold; font-size: 15px; }"

PAYMENT_STATUS_WORDS = {NOT_ON_TILL: "Captured, not on the till"}
"""Payment-log statuses the log shows in words; any other is shown as stored."""


def payment_status_words(status: str) -> str:
    return PAYMENT_STATUS_WORDS.get(status, status)


def capture_words(capture: CaptureNotOnTill) -> str:
    """Names the order and the amount (what staff look for on the till), and what to do."""
    money = format_money(capture.amount.value, capture.amount.currency_code)
    order = order_words(capture.order_reference, capture.display_name, capture.order_id)
    return (
        f"{money} was taken on the card for {order}, but the till refused it: {capture.reason}\n"
        "Do not charge it again. Refund it to the card, or record it on the till by hand."
    )


def refund_words(capture: CaptureNotOnTill) -> str:
    return f"Refund {format_money(capture.amount.value, capture.amount.currency_code)} to the card"


class CapturedAlertSignals(Protocol):
    """What the alert uses of :class:`epos_bridge.ui.bridge_signals.BridgeSignals`."""

    @property
    def captures_not_on_till(self) -> SignalInstance: ...
    def not_on_till(self) -> tuple[CaptureNotOnTill, ...]: ...
    def refund_not_on_till(self, session_id: str) -> Coroutine[Any, Any, None]: ...


class CapturedAlert(QWidget):
    """A window of its own listing each captured card the till refused, with its refund button.

    ``refund_done(session_id)`` and ``refund_failed(session_id, words)`` say how a click ended.
    """

    refund_done = Signal(str)
    refund_failed = Signal(str, str)

    def __init__(self, signals: CapturedAlertSignals, parent: QWidget | None = None) -> None:
        flags = Qt.WindowType.Window | Qt.WindowType.WindowStaysOnTopHint
        super().__init__(parent, flags)
        self.setObjectName("capturedAlert")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setWindowTitle("Card payment not on the till")
        self.setAccessibleName("Card payment not on the till")
        self.setStyleSheet(STYLE)
        self.setMinimumWidth(520)
        self._signals = signals
        self._tasks = WidgetTasks(log, "a refund of a card payment not on the till")
        self._rows: dict[str, _CaptureRow] = {}
        layout = QVBoxLayout(self)
        headline = PlainLabel(HEADLINE)
        headline.setObjectName("capturedHeadline")
        layout.addWidget(headline)
        self._list = QVBoxLayout()
        layout.addLayout(self._list)
        layout.addStretch(1)
        signals.captures_not_on_till.connect(self.show_captures)
        self.show_captures(signals.not_on_till())

    def show_captures(self, captures: tuple[CaptureNotOnTill, ...]) -> None:
        """Render the whole set; shown (and raised) while any remains, hidden once none does."""
        current = {c.session_id: c for c in captures}
        for session_id in list(self._rows):
            if session_id not in current:
                self._rows.pop(session_id).deleteLater()
        for session_id, capture in current.items():
            if session_id not in self._rows:
                row = _CaptureRow(capture)
                row.refund_clicked.connect(self._refund)
                self._rows[session_id] = row
                self._list.addWidget(row)
            else:
                self._rows[session_id].show_capture(capture)
        if current:
            self.show()
            self.raise_()
            self.activateWindow()
        else:
            self.hide()

    def lines(self) -> list[str]:
        """What each row says (tests, and the accessibility of the window)."""
        return [row.words.text() for row in self._rows.values()]

    def refund_button(self, session_id: str) -> QPushButton:
        return self._rows[session_id].refund

    def _refund(self, session_id: str) -> None:
        row = self._rows.get(session_id)
        if row is None:
            return
        row.busy()
        self._tasks.spawn(self._refunding(session_id), name=f"refund-not-on-till-{session_id}")

    async def _refunding(self, session_id: str) -> None:
        try:
            await self._signals.refund_not_on_till(session_id)
        except SaleRefused as refused:
            self._failed(session_id, str(refused))
            return
        except Exception:
            log.exception("the refund of a card payment not on the till did not reach Dojo")
            self._failed(session_id, "The refund did not reach Dojo. Check the connection, then try again.")
            return
        self.refund_done.emit(session_id)  # the row itself goes when the bridge says it is settled

    def _failed(self, session_id: str, words: str) -> None:
        row = self._rows.get(session_id)
        if row is not None:
            row.failed(words)
        self.refund_failed.emit(session_id, words)

    def shutdown(self) -> None:
        self._tasks.cancel()
        self.hide()


class _CaptureRow(QFrame):
    refund_clicked = Signal(str)

    def __init__(self, capture: CaptureNotOnTill) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._session_id = capture.session_id
        self.words = PlainLabel("")
        self.words.setWordWrap(True)
        self.problem = PlainLabel("")
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.refund = QPushButton("")
        self.refund.clicked.connect(lambda: self.refund_clicked.emit(self._session_id))
        layout = QHBoxLayout(self)
        text = QVBoxLayout()
        text.addWidget(self.words)
        text.addWidget(self.problem)
        layout.addLayout(text, 1)
        layout.addWidget(self.refund, 0, Qt.AlignmentFlag.AlignTop)
        self.show_capture(capture)

    def show_capture(self, capture: CaptureNotOnTill) -> None:
        self.words.setText(capture_words(capture))
        self.refund.setText(refund_words(capture))
        self.refund.setEnabled(True)

    def busy(self) -> None:
        self.refund.setEnabled(False)
        self.problem.hide()

    def failed(self, words: str) -> None:
        self.problem.setText(words)
        self.problem.show()
        self.refund.setEnabled(True)
