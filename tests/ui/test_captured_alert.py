"""The alert for a card taken at the counter that the till refused (issue 25, item 3), over a real
Bridge, the real Dojo simulator and a real demo venue database: the till finalizes the order
while the card is on the terminal; the alert (non-modal) names the order and the amount, the
payment log shows the line as captured, not on the till, and one click refunds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from pytestqt.qtbot import QtBot

from epos_bridge.domain.captures import NOT_ON_TILL, CaptureNotOnTill
from epos_bridge.domain.terminal_sessions import SaleRefused
from epos_bridge.protocol.entities import Money
from epos_bridge.ui.captured_alert import CapturedAlert, payment_status_words
from epos_bridge.ui.status_window import TAB_PAYMENTS
from tests.ui.conftest import Gui, Run

pytestmark = pytest.mark.timeout(60)

ORDER = "8"  # demo: T12-0008 (Table 12), nothing paid yet
ORDER_LABEL = "T12-0008 (Table 12)"


def finalize(venue: Path, order: str = ORDER) -> None:
    """The till closes the order: its own write to its own table."""
    with sqlite3.connect(venue / "demo-venue.db") as conn:
        conn.execute("UPDATE orders SET status = 'Finalized' WHERE id = ?", [int(order)])


def status_shown(gui: Gui, payment_intent_id: str) -> str | None:
    model = gui.window.payments_tab.payment_model
    row = model.row_of(payment_intent_id)
    return None if row is None else model.data(model.index(row, 6))


@pytest.mark.logs_warnings("a capture the POS refused is logged as an error")
def test_a_card_the_till_refused_is_alerted_shown_in_the_payment_log_and_refunded_in_one_click(
    start_gui: Callable[..., Gui], qtbot: QtBot, run: Run, venue: Path
) -> None:
    gui = start_gui()
    alert = CapturedAlert(gui.signals)
    qtbot.addWidget(alert)
    assert alert.isHidden()
    [terminal] = [t for t in run(gui.signals.terminals()) if t.status == "Available"][:1]
    with qtbot.wait_signal(gui.signals.captures_not_on_till, timeout=20_000) as alerted:
        run(gui.signals.start_sale(ORDER, terminal.id, Money(value=1500, currency_code="GBP")))
        finalize(venue)  # the card is on the terminal; the till finalizes the order meanwhile
    [capture] = alerted.args[0]

    assert alert.isVisible(), "shown by itself"
    assert not alert.isModal() and alert.windowModality() == Qt.WindowModality.NonModal
    [line] = alert.lines()
    assert "£15.00" in line and ORDER_LABEL in line and "Do not charge it again" in line
    assert terminal.id not in line and (terminal.tid or "-") not in line, "the order names it, not the terminal"
    assert alert.refund_button(capture.session_id).text() == "Refund £15.00 to the card"

    gui.window.show_tab(TAB_PAYMENTS)
    qtbot.waitUntil(lambda: status_shown(gui, capture.payment_intent_id) == "Captured, not on the till", timeout=5000)

    with qtbot.wait_signal(alert.refund_done, timeout=10_000):
        qtbot.mouseClick(alert.refund_button(capture.session_id), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(alert.isHidden, timeout=5000)
    assert alert.lines() == []
    qtbot.waitUntil(lambda: status_shown(gui, capture.payment_intent_id) == "Reversed", timeout=5000)
    assert gui.signals.not_on_till() == ()


class FakeSignals(QObject):
    """The two things the alert uses of BridgeSignals, for the refusal path."""

    captures_not_on_till = Signal(object)

    def __init__(self, captures: tuple[CaptureNotOnTill, ...], refusal: Exception) -> None:
        super().__init__()
        self._captures = captures
        self._refusal = refusal

    def not_on_till(self) -> tuple[CaptureNotOnTill, ...]:
        return self._captures

    def refund_not_on_till(self, session_id: str) -> Coroutine[Any, Any, None]:
        async def refuse() -> None:
            raise self._refusal

        return refuse()


@pytest.mark.parametrize(
    ("refusal", "words"),
    [
        (SaleRefused("Dojo would not reverse this card payment (Captured)."), "Dojo would not reverse"),
        (OSError("network down"), "The refund did not reach Dojo"),
    ],
)
@pytest.mark.logs_warnings("a refund that did not reach Dojo is logged")
def test_a_capture_kept_before_a_restart_shows_at_once_and_a_refund_that_fails_says_why(
    qtbot: QtBot, run: Run, refusal: Exception, words: str
) -> None:
    kept = CaptureNotOnTill(
        "8", datetime.now(UTC), "ts_1", "pi_1", Money(value=2000, currency_code="GBP"), "order 8 is Finalized",
        order_reference="T12-0008", display_name="Table 12",
    )  # fmt: skip
    signals = FakeSignals((kept,), refusal)
    alert = CapturedAlert(signals)  # type: ignore[arg-type]
    qtbot.addWidget(alert)
    assert alert.isVisible()
    with qtbot.wait_signal(alert.refund_failed, timeout=5000) as failed:
        qtbot.mouseClick(alert.refund_button("ts_1"), Qt.MouseButton.LeftButton)
    assert words in failed.args[1]
    assert alert.isVisible() and alert.refund_button("ts_1").isEnabled(), "still there, the click can be tried again"
    signals.captures_not_on_till.emit(())  # settled elsewhere (it landed after all)
    assert alert.isHidden()


def test_the_payment_log_words_the_status() -> None:
    assert payment_status_words(NOT_ON_TILL) == "Captured, not on the till"
    assert payment_status_words("Recorded") == "Recorded"
