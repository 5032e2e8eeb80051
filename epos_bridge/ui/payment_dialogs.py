"""The two dialogs of pay at counter: choose a terminal and an amount, and check a signature.

:class:`TakePaymentDialog` serves a sale, a matched refund and an unlinked refund alike; a
:class:`TerminalRequest` says which, in words, and what amount is allowed. The dialog does no
I/O of its own: it is handed the coroutines to list terminals, re-read the outstanding amount
and start the session (from :class:`~epos_bridge.ui.bridge_signals.BridgeSignals`), awaits
them on the qasync loop, and reports the new session through ``started``. A failure to start
stays in the dialog, in words, so staff can pick another terminal or try again.

:class:`SignatureDialog` asks "Does the signature match?" while a session waits for it. It
cannot be dismissed with Escape: closing without an answer *is* an answer (Dojo accepts the
signature by itself after a timeout), so the dialog shows how long the customer has waited.

Both use ``open()``, never ``exec()``: a nested Qt loop would re-enter asyncio (see ``gui``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from epos_bridge.dojo_api import Terminal, TerminalStatus
from epos_bridge.protocol.entities import Money
from epos_bridge.ui.styles import ERROR_STYLE, HINT_STYLE, scaled_font
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import PlainLabel
from epos_bridge.ui.words import (
    MATCHED_REFUND,
    SALE,
    UNLINKED_REFUND,
    currency_symbol,
    format_money,
    minutes_seconds,
    problem_words,
    terminal_name,
    terminal_words,
)

log = logging.getLogger(__name__)

SIGNATURE_TICK_MS = 1000

StartSession = Callable[[str, Money], Awaitable[str]]
"""Start the session on ``terminal_id`` for ``amount``; returns the terminal-session id."""


# --- amounts (pure: unit-testable without widgets) ---------------------------------------------


def is_available(terminal: Terminal) -> bool:
    return terminal.status == TerminalStatus.AVAILABLE


def amount_text(value: int) -> str:
    """Minor units as staff type them: ``36.56`` (no symbol, no thousands separator)."""
    sign = "-" if value < 0 else ""
    whole, minor = divmod(abs(value), 100)
    return f"{sign}{whole}.{minor:02d}"


def parse_amount(text: str) -> int | None:
    """``"36.56"``, ``"£36.56"``, ``"1,200"`` → minor units; None when it is not an amount in pounds
    and pence (more than two decimals, letters, empty)."""
    cleaned = text.strip().replace(",", "").lstrip("£").strip()
    if not cleaned:
        return None
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    minor = number * 100
    if minor != minor.to_integral_value():
        return None
    return int(minor)


def check_amount(text: str, currency: str, maximum: int | None, maximum_words: str) -> tuple[int | None, str | None]:
    """(minor units, None) when ``text`` is a valid amount; (None, what is wrong) otherwise.

    A sale may not take more than is outstanding (``maximum``); a refund not more than was paid.
    """
    value = parse_amount(text)
    if value is None:
        return None, "Enter the amount in pounds and pence, for example 12.50."
    if value <= 0:
        return None, "The amount must be more than £0.00."
    if maximum is not None and value > maximum:
        return None, f"That is more than the {format_money(maximum, currency)} {maximum_words}."
    return value, None


@dataclass(frozen=True)
class TerminalRequest:
    """What the dialog asks a terminal to do, in the words staff read.

    ``maximum`` is the most the amount may be (a sale: the outstanding amount; a matched refund:
    the payment); ``None`` when only "more than zero" applies (an unlinked refund).
    """

    kind: str
    title: str
    subject: str
    amount: Money
    maximum: int | None
    maximum_words: str = ""
    amount_editable: bool = True
    start_text: str = "&Start on the terminal"

    @classmethod
    def sale(cls, order_label: str, outstanding: Money) -> TerminalRequest:
        return cls(
            kind=SALE,
            title="Take card payment",
            subject=f"Card payment for {order_label}",
            amount=outstanding,
            maximum=outstanding.value,
            maximum_words="outstanding on this order",
        )

    @classmethod
    def matched_refund(cls, payment_words: str, paid: Money) -> TerminalRequest:
        # The whole card payment, tip included: the POS then stops counting all of it (as Dojo's
        # Refunded event would), so exactly that goes back to the card.
        return cls(
            kind=MATCHED_REFUND,
            title="Refund card payment",
            subject=f"Refund {payment_words} to the card it was paid with",
            amount=paid,
            maximum=paid.value,
            maximum_words="paid",
            amount_editable=False,
            start_text="&Start refund on the terminal",
        )

    @classmethod
    def unlinked_refund(cls, currency: str = "GBP") -> TerminalRequest:
        return cls(
            kind=UNLINKED_REFUND,
            title="Unlinked refund",
            subject="Refund to any card, not linked to an order or a payment",
            amount=Money(value=0, currency_code=currency),
            maximum=None,
            start_text="&Start refund on the terminal",
        )


# --- take payment / refund ---------------------------------------------------------------------


class TakePaymentDialog(QDialog):
    """Choose an available terminal and the amount, then start the session.

    ``terminals_loaded(int)`` tells how many terminals were listed (tests wait on it);
    ``started(session_id, terminal words)`` tells the new session, just before the dialog closes;
    ``start_failed(str)`` tells why it could not start (the dialog stays open).
    """

    terminals_loaded = Signal(int)
    started = Signal(str, str)
    start_failed = Signal(str)

    def __init__(
        self,
        request: TerminalRequest,
        terminals: Callable[[], Awaitable[list[Terminal]]],
        start: StartSession,
        *,
        outstanding: Callable[[], Awaitable[Money]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.request = request
        self._list_terminals = terminals
        self._start = start
        self._outstanding = outstanding
        self._tasks = WidgetTasks(log, "a payment-dialog task")
        self._amount_edited = False
        self._starting = False
        self._terminals: list[Terminal] = []
        self.session_id: str | None = None

        self.setWindowTitle(request.title)
        self.setModal(True)
        self.setMinimumWidth(560)

        self.subject_label = PlainLabel(request.subject)
        self.subject_label.setFont(scaled_font(self.font(), 1.35, bold=True))
        self.subject_label.setWordWrap(True)

        self.terminal_list = QListWidget()
        self.terminal_list.setFont(scaled_font(self.font(), 1.2))
        self.terminal_list.setAlternatingRowColors(True)
        self.terminal_list.setSpacing(3)
        # Room for four machines without scrolling; a venue rarely has more at one counter.
        self.terminal_list.setFixedHeight(int(self.terminal_list.fontMetrics().height() * 1.5 * 4 + 24))
        terminal_label = PlainLabel("&Terminal:")
        terminal_label.setBuddy(self.terminal_list)
        self.refresh_terminals_button = QPushButton("Check &again")
        self.refresh_terminals_button.setToolTip("Ask Dojo again which terminals are free")
        self.terminal_hint = PlainLabel("Asking Dojo which terminals are free…")
        self.terminal_hint.setWordWrap(True)
        self.terminal_hint.setStyleSheet(HINT_STYLE)

        self.amount_edit = QLineEdit(amount_text(request.amount.value) if request.amount.value else "")
        self.amount_edit.setFont(scaled_font(self.font(), 1.5, bold=True))
        self.amount_edit.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.amount_edit.setMaximumWidth(220)
        self.amount_edit.setReadOnly(not request.amount_editable)
        self.amount_edit.setPlaceholderText("0.00")
        code = request.amount.currency_code
        currency = PlainLabel(currency_symbol(code) or code)
        currency.setFont(scaled_font(self.font(), 1.5, bold=True))
        amount_label = PlainLabel("&Amount:")
        amount_label.setBuddy(self.amount_edit)
        self.amount_hint = PlainLabel()
        self.amount_hint.setWordWrap(True)

        self.status_label = PlainLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setFont(scaled_font(self.font(), 1.1))

        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton(request.start_text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)

        terminals_row = QHBoxLayout()
        terminals_row.addWidget(self.terminal_hint, 1)
        terminals_row.addWidget(self.refresh_terminals_button)
        amount_row = QHBoxLayout()
        amount_row.addWidget(currency)
        amount_row.addWidget(self.amount_edit)
        amount_row.addStretch(1)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(terminal_label, self.terminal_list)
        form.addRow(PlainLabel(""), terminals_row)
        form.addRow(amount_label, amount_row)
        form.addRow(PlainLabel(""), self.amount_hint)

        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addWidget(self.subject_label)
        layout.addLayout(form)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        # Only once the button is inside the dialog does Qt make it the dialog's Enter key.
        self.refresh_terminals_button.setAutoDefault(False)
        self.start_button.setDefault(True)
        self.start_button.setFont(scaled_font(self.font(), 1.15, bold=True))
        for button in (self.start_button, self.close_button):
            button.setMinimumHeight(40)

        self.start_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        self.refresh_terminals_button.clicked.connect(self.load_terminals)
        self.terminal_list.currentItemChanged.connect(self._validate)
        self.terminal_list.itemActivated.connect(lambda _item: self.start())
        self.amount_edit.textEdited.connect(self._amount_typed)

        self._validate()
        self.load_terminals()
        if outstanding is not None:
            self._tasks.spawn(self._reload_outstanding())

    # --- what is chosen ---------------------------------------------------------------------

    def chosen_terminal(self) -> Terminal | None:
        item = self.terminal_list.currentItem()
        if item is None or not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            return None
        terminal = item.data(Qt.ItemDataRole.UserRole)
        return terminal if isinstance(terminal, Terminal) else None

    def amount(self) -> Money | None:
        value, _ = self._check()
        return None if value is None else Money(value=value, currency_code=self.request.amount.currency_code)

    def _check(self) -> tuple[int | None, str | None]:
        request = self.request
        return check_amount(
            self.amount_edit.text(), request.amount.currency_code, request.maximum, request.maximum_words
        )

    def _amount_typed(self) -> None:
        self._amount_edited = True
        self._validate()

    def _validate(self) -> bool:
        value, problem = self._check()
        if problem is not None and (self._amount_edited or self.amount_edit.text()):
            self.amount_hint.setText(problem)
            self.amount_hint.setStyleSheet(ERROR_STYLE)
        elif self.request.maximum is not None and self.request.amount_editable:
            maximum = format_money(self.request.maximum, self.request.amount.currency_code)
            self.amount_hint.setText(f"At most {maximum} ({self.request.maximum_words}).")
            self.amount_hint.setStyleSheet(HINT_STYLE)
        elif not self.request.amount_editable:
            self.amount_hint.setText("The whole payment is refunded, tip included.")
            self.amount_hint.setStyleSheet(HINT_STYLE)
        else:
            self.amount_hint.setText("The customer's card is credited with this amount.")
            self.amount_hint.setStyleSheet(HINT_STYLE)
        ready = value is not None and self.chosen_terminal() is not None and not self._starting
        self.start_button.setEnabled(ready)
        return ready

    # --- terminals and the outstanding amount ---------------------------------------------------

    def load_terminals(self) -> None:
        """Ask Dojo for the terminals again (the dialog does this when it opens)."""
        self.refresh_terminals_button.setEnabled(False)
        self.terminal_hint.setText("Asking Dojo which terminals are free…")
        self.terminal_hint.setStyleSheet(HINT_STYLE)
        self._tasks.spawn(self._load_terminals())

    async def _load_terminals(self) -> None:
        try:
            terminals = await self._list_terminals()
        except Exception as exc:  # any failure is shown in words; the button retries
            log.warning("listing terminals failed: %s", exc)
            self._show_terminals([], f"Could not list the terminals: {problem_words(exc)}")
            return
        self._show_terminals(terminals, None)

    def _show_terminals(self, terminals: list[Terminal], problem: str | None) -> None:
        previous = self.chosen_terminal()
        self._terminals = terminals
        self.terminal_list.clear()
        # Available first, then the rest greyed out so staff see why a machine is missing.
        ordered = sorted(terminals, key=lambda t: (not is_available(t), t.tid or t.id))
        for terminal in ordered:
            item = QListWidgetItem(terminal_words(terminal))
            item.setData(Qt.ItemDataRole.UserRole, terminal)
            if not is_available(terminal):
                item.setFlags(item.flags() & ~(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable))
            self.terminal_list.addItem(item)
        available = [t for t in ordered if is_available(t)]
        keep = next((i for i, t in enumerate(ordered) if previous is not None and t.id == previous.id), None)
        if available:
            self.terminal_list.setCurrentRow(keep if keep is not None and is_available(ordered[keep]) else 0)
        self.refresh_terminals_button.setEnabled(True)
        if problem is not None:
            self.terminal_hint.setText(problem)
            self.terminal_hint.setStyleSheet(ERROR_STYLE)
        elif not terminals:
            self.terminal_hint.setText("Dojo lists no terminals for this account.")
            self.terminal_hint.setStyleSheet(ERROR_STYLE)
        elif not available:
            self.terminal_hint.setText("No terminal is free right now: wait for one to finish, then Check again.")
            self.terminal_hint.setStyleSheet(ERROR_STYLE)
        else:
            count = len(available)
            self.terminal_hint.setText(f"{count} terminal{'s' if count != 1 else ''} free.")
            self.terminal_hint.setStyleSheet(HINT_STYLE)
        self._validate()
        self.terminals_loaded.emit(len(terminals))

    async def _reload_outstanding(self) -> None:
        """The list may be a little old: the POS says what is outstanding now."""
        if self._outstanding is None:
            return
        try:
            current = await self._outstanding()
        except Exception as exc:
            log.warning("reading the outstanding amount failed: %s", exc)
            return
        self.request = replace(self.request, amount=current, maximum=current.value)
        if not self._amount_edited:
            self.amount_edit.setText(amount_text(current.value) if current.value else "")
        self._validate()

    # --- start -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the session on the chosen terminal (Enter or the Start button)."""
        if not self._validate():
            return
        terminal, amount = self.chosen_terminal(), self.amount()
        if terminal is None or amount is None:
            return
        self._set_starting(True)
        self.status_label.setStyleSheet("")
        self.status_label.setText(f"Sending {format_money(amount.value, amount.currency_code)} to the terminal…")
        self._tasks.spawn(self._start_on(terminal, amount))

    async def _start_on(self, terminal: Terminal, amount: Money) -> None:
        try:
            session_id = await self._start(terminal.id, amount)
        except Exception as exc:  # shown in words; staff may choose another terminal and retry
            log.warning("starting a %s on %s failed: %s", self.request.kind, terminal.id, exc)
            message = f"The terminal could not start: {problem_words(exc)}"
            self.status_label.setText(f"{message}\nCheck the terminal is switched on, then try again.")
            self.status_label.setStyleSheet(ERROR_STYLE)
            self._set_starting(False)
            self.start_failed.emit(message)
            self.load_terminals()
            return
        self.session_id = session_id
        self.started.emit(session_id, terminal_name(terminal))
        self.accept()

    def _set_starting(self, starting: bool) -> None:
        self._starting = starting
        for widget in (self.terminal_list, self.amount_edit, self.refresh_terminals_button, self.close_button):
            widget.setEnabled(not starting)
        self._validate()

    def reject(self) -> None:
        if self._starting:
            return  # the session is being created: its id must reach the panel
        super().reject()

    def done(self, result: int) -> None:
        if not self._starting:  # a session being created must reach the panel
            self._tasks.cancel()
        super().done(result)


# --- signature check -------------------------------------------------------------------------


def waited_words(seconds: int) -> str:
    return f"Waiting {minutes_seconds(seconds)}"


class SignatureDialog(QDialog):
    """Does the signature on the receipt match the card? ``answered(bool)`` carries the answer.

    Escape does nothing: leaving without an answer lets Dojo accept by itself. :meth:`dismiss`
    closes it when the session moved on without us (answered elsewhere or timed out).
    """

    answered = Signal(bool)

    def __init__(self, subject: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._closable = False
        self.setWindowTitle("Check the signature")
        self.setModal(True)
        self.setMinimumWidth(520)
        self.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)

        question = PlainLabel("Does the signature match?")
        question.setFont(scaled_font(self.font(), 2.0, bold=True))
        self.subject_label = PlainLabel(subject)
        self.subject_label.setFont(scaled_font(self.font(), 1.2))
        self.subject_label.setWordWrap(True)
        explain = PlainLabel(
            "Compare the customer's signature on the terminal's receipt with the back of the card. "
            "Answer now: if nobody answers, Dojo accepts the signature by itself."
        )
        explain.setWordWrap(True)
        self.waited_label = PlainLabel(waited_words(0))
        self.waited_label.setFont(scaled_font(self.font(), 1.2, bold=True))

        self.accept_button = QPushButton("&Accept — it matches")
        self.reject_button = QPushButton("&Reject — payment is reversed")
        for button in (self.accept_button, self.reject_button):
            button.setFont(scaled_font(self.font(), 1.25, bold=True))
            button.setMinimumHeight(56)
            button.setAutoDefault(False)
        self.accept_button.setStyleSheet("QPushButton { background: #1b7f3b; color: white; padding: 8px 16px; }")
        self.reject_button.setStyleSheet("QPushButton { background: #b3261e; color: white; padding: 8px 16px; }")

        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_button, 1)
        buttons.addWidget(self.reject_button, 1)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addWidget(question)
        layout.addWidget(self.subject_label)
        layout.addWidget(explain)
        layout.addWidget(self.waited_label)
        layout.addLayout(buttons)

        self.accept_button.clicked.connect(lambda: self._answer(True))
        self.reject_button.clicked.connect(lambda: self._answer(False))

        self._elapsed = QElapsedTimer()
        self._elapsed.start()
        self._tick = QTimer(self)
        self._tick.setInterval(SIGNATURE_TICK_MS)
        self._tick.timeout.connect(self._show_waited)
        self._tick.start()

    def _show_waited(self) -> None:
        self.waited_label.setText(waited_words(int(self._elapsed.elapsed() / 1000)))

    def _answer(self, accepted: bool) -> None:
        self.answered.emit(accepted)
        self.dismiss()

    def dismiss(self) -> None:
        """Close without answering (the session no longer waits for us)."""
        self._closable = True
        self._tick.stop()
        super().reject()

    def reject(self) -> None:
        if self._closable:
            super().reject()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape and not self._closable:
            event.accept()
            return
        super().keyPressEvent(event)


__all__ = [
    "SignatureDialog",
    "TakePaymentDialog",
    "TerminalRequest",
    "check_amount",
    "parse_amount",
]
