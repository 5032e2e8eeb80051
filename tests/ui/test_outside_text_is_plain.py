"""Text from Dojo and the POS is drawn as text on every widget: an order reference, a display
name, an error, a terminal message that looks like HTML shows its angle brackets, never an image,
a link or bold type. Real widgets (offscreen) over a real bridge and the simulator; the hostile
order reference is written into the venue's own POS database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QWidget
from pytestqt.qtbot import QtBot

from epos_bridge.dojo_api import RegistrationState
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.protocol.entities import Money
from epos_bridge.ui.payment_dialogs import SignatureDialog, TakePaymentDialog
from epos_bridge.ui.status_window import TAB_TERMINAL
from epos_bridge.ui.text import PlainLabel, plain_tooltip
from tests.ui.conftest import Gui, session_update

HOSTILE = '<b>T12</b><img src="file:///etc/passwd"><a href="https://evil.example/pay">Pay here</a>'
ORDER = "8"  # demo: T12-0008, nothing paid yet


def labels_not_plain(widget: QWidget) -> list[str]:
    return [
        f"{label.objectName() or type(label).__name__}: {label.text()!r}"
        for label in widget.findChildren(QLabel)
        if label.textFormat() != Qt.TextFormat.PlainText
    ]


def labels_showing(widget: QWidget, text: str) -> list[QLabel]:
    return [label for label in widget.findChildren(QLabel) if text in label.text()]


def test_a_plain_label_shows_markup_as_characters(qtbot: QtBot) -> None:
    label = PlainLabel(HOSTILE)
    qtbot.addWidget(label)

    assert label.textFormat() == Qt.TextFormat.PlainText
    assert label.text() == HOSTILE
    rendered = QTextDocument()
    rendered.setHtml(plain_tooltip(HOSTILE))
    assert rendered.toPlainText() == HOSTILE  # a tooltip shows the same characters, no link or image


def test_every_label_of_the_status_window_and_terminal_tab_is_plain_text(
    start_gui: Callable[..., Gui], qtbot: QtBot
) -> None:
    gui = start_gui()
    now = datetime.now(UTC)

    gui.signals.status_changed.emit(ConnectionStatus(ConnectionState.DISCONNECTED, now, last_error=HOSTILE))
    gui.signals.registration_changed.emit(RegistrationState(error=HOSTILE, at=now))
    panel = gui.window.terminal_panel
    panel.session_panel.show_update(
        session_update(
            session_id="ts_hostile",
            kind="Sale",
            status=HOSTILE,  # an unknown status is shown as Dojo sent it: as text
            notifications=(HOSTILE,),
            final=False,
            succeeded=False,
            cancellable=True,
            awaiting_signature=False,
            error=HOSTILE,
        ),
        HOSTILE,
    )

    assert labels_not_plain(gui.window) == []
    showing = labels_showing(gui.window, HOSTILE)
    assert {
        gui.window.connection_tab.last_error_label,
        gui.window.connection_tab.capabilities_label,
        panel.session_panel.title_label,
    } <= set(showing)
    assert all(label.text().count("<img") == 1 for label in showing)  # shown as typed, not rendered


def test_a_hostile_order_reference_from_the_pos_is_plain_in_the_list_dialog_and_tooltip(
    start_gui: Callable[..., Gui], venue: Path, qtbot: QtBot
) -> None:
    with sqlite3.connect(venue / "demo-venue.db") as conn:
        conn.execute("UPDATE orders SET reference = ?, display_name = ? WHERE id = ?", (HOSTILE, HOSTILE, ORDER))
    gui = start_gui()
    panel = gui.window.terminal_panel
    with qtbot.wait_signal(panel.orders.loaded, timeout=5000):
        gui.window.show_tab(TAB_TERMINAL)
    assert panel.orders.select_order(ORDER)

    with qtbot.wait_signal(panel.dialog_opened, timeout=2000) as opened:
        qtbot.mouseClick(panel.orders.take_payment_button, Qt.MouseButton.LeftButton)
    dialog: TakePaymentDialog = opened.args[0]
    try:
        assert HOSTILE in dialog.subject_label.text()
        assert labels_not_plain(dialog) == []
    finally:
        dialog.reject()


def test_payment_and_signature_dialogs_show_outside_words_as_text(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop
) -> None:
    from epos_bridge.ui.payment_dialogs import TerminalRequest
    from epos_bridge.ui.words import SALE

    async def no_terminals() -> list[object]:
        return []

    async def never_start(*_args: object) -> str:
        raise AssertionError("not started in this test")

    request = TerminalRequest(SALE, HOSTILE, HOSTILE, Money(value=500, currency_code="GBP"), 500)
    payment = TakePaymentDialog(request, no_terminals, never_start)  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: payment.terminal_hint.text() == "Dojo lists no terminals for this account.", timeout=5000)
    signature = SignatureDialog(HOSTILE)
    for dialog in (payment, signature):
        qtbot.addWidget(dialog)
        assert labels_not_plain(dialog) == []
        assert dialog.subject_label.text() == HOSTILE
