"""The right half of the Terminal tab: one terminal session, followed live in big words.

:class:`SessionPanel` shows what the terminal asks for ("Present card", "Enter PIN"), keeps
what it said, offers Cancel only while Dojo allows it, asks the signature question in a
:class:`~epos_bridge.ui.payment_dialogs.SignatureDialog`, and ends with the outcome in colour:
green "Recorded on T12-0008", red "Nothing was recorded".

It renders :class:`~epos_bridge.services.counter.SessionUpdate` from its codes — the session ``status``
and the raw ``notificationType`` values — through :mod:`epos_bridge.ui.words`; it does not read
the update's ``words``. What a status *means* (final, succeeded, cancellable) the counter says.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QPushButton, QVBoxLayout, QWidget

from epos_bridge.dojo_api import TerminalSessionStatus
from epos_bridge.protocol.entities import Money
from epos_bridge.services.counter import SessionUpdate
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.payment_dialogs import SignatureDialog
from epos_bridge.ui.styles import OUTCOME_STYLES, TONE_STYLES, scaled_font
from epos_bridge.ui.text import PlainLabel
from epos_bridge.ui.words import (
    KIND_WORDS,
    MATCHED_REFUND,
    SALE,
    capture_not_on_till_words,
    format_money,
    local_time,
    session_status_words,
    terminal_prompt_words,
)

TERMINAL_EMPTY_TEXT = "Card-present payments taken from this till will appear here"


RETRY_LINE = "Still checking — no answer yet. The card machine shows the result; do not start another payment."


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
    status = session_status_words(update.status)
    if update.unrecorded_capture:
        words = capture_not_on_till_words(update)
        return SessionView("Approved — not on the till yet", words, "Do not charge it again.", "warning")
    if not update.final:
        if update.awaiting_signature:
            return SessionView("Check the signature", "Answer on this screen: does the signature match?", "", "warning")
        if update.status == TerminalSessionStatus.CANCEL_REQUESTED:
            return SessionView("Cancelling…", "Waiting for the terminal to stop", "", "progress")
        headline = terminal_prompt_words(update.notifications[-1]) if update.notifications else status
        detail = status if headline != status else ""
        if update.error:
            # The bridge could not ask yet (the till's internet, or Dojo): blame no one, say what
            # staff can rely on. The technical reason is in the log.
            return SessionView(headline, detail, RETRY_LINE, "warning")
        return SessionView(headline, detail, "", "progress")
    if update.succeeded:
        if update.error:
            return SessionView(status, "", update.error, "warning")
        if update.kind == SALE:
            outcome = f"Recorded on {where}" if update.recorded and where else "Approved on the terminal"
        elif update.kind == MATCHED_REFUND:
            outcome = f"Refunded: the payment no longer counts on {where}" if update.recorded and where else "Refunded"
        else:
            outcome = "Refunded to the card — not linked to any order"
        return SessionView(status, "", outcome, "success")
    nothing = "Nothing was recorded" if update.kind == SALE else "Nothing was refunded"
    return SessionView(status, "", nothing, "failure")


def session_title(kind: str, order_label: str | None, amount: Money | None) -> str:
    """``Card payment · T12-0008 (Table 12) · £36.56``."""
    parts = [KIND_WORDS.get(kind, kind)]
    if order_label:
        parts.append(order_label)
    if amount is not None:
        parts.append(format_money(amount.value, amount.currency_code))
    return " · ".join(parts)


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
        self.body = self._build_body()
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_label, 1)
        layout.addWidget(self.body, 1)
        self.body.setVisible(False)

    def _build_body(self) -> QWidget:
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

        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        for widget in (self.title_label, self.terminal_label):
            column.addWidget(widget)
        column.addSpacing(6)
        for widget in (self.headline_label, self.detail_label, self.outcome_label):
            column.addWidget(widget)
        column.addSpacing(6)
        column.addWidget(PlainLabel("What the terminal said:"))
        column.addWidget(self.history, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        column.addLayout(buttons)
        return body

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
            self._add_history(terminal_prompt_words(notification))
        self._history_seen = max(self._history_seen, len(update.notifications))
        if update.status != self._last_status:
            self._last_status = update.status
            self._add_history(f"— {session_status_words(update.status)}")
        if update.error and not update.final:
            self._add_history("— no answer yet, still checking")
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
        self.history.addItem(f"{local_time(self._clock(), seconds=True)}  {text}")
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
