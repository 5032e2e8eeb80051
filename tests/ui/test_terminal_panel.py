"""The Terminal tab, the payment dialogs and the outbox lines, over a real Bridge, the real Dojo
simulator and a real demo venue database.

Simulator terminal sessions move one step per poll, so each test polls fast (``_poll_s``) unless
it needs time to press Cancel. What counts as paid is read with SQL from the venue database,
the way the POS itself would see it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from epos_bridge.dojo_api import TerminalSessionStatus
from epos_bridge.protocol.entities import CollectionDetails, Money, Order, OrderDetails, OrderType
from epos_bridge.services.counter import SessionUpdate
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.ui.open_orders import orders_to_take
from epos_bridge.ui.payment_dialogs import TakePaymentDialog, check_amount, parse_amount
from epos_bridge.ui.session_panel import describe_session
from epos_bridge.ui.status_window import TAB_CONNECTION, TAB_PAYMENTS, TAB_TERMINAL
from epos_bridge.ui.terminal_panel import TerminalPanel
from tests.helpers.relay import relay_reading
from tests.ui.conftest import NOT_SHOWN, Gui, Run, session_update

pytestmark = pytest.mark.timeout(60)

ORDER = "8"  # demo: T12-0008 (Table 12), £36.56, nothing paid yet
ORDER_LABEL = "T12-0008 (Table 12)"
OUTSTANDING = 3656
FAST_POLL_S = 0.02


def paid(venue: Path, order: str = ORDER) -> int:
    """What counts as paid on the order, as the POS computes paidAmount."""
    with sqlite3.connect(venue / "demo-venue.db") as conn:
        value = conn.execute(
            "SELECT COALESCE(SUM(paid_amount), 0) FROM payments WHERE order_id = ? "
            "AND status NOT IN ('Reversed', 'Refunded', 'Canceled')",
            [order],
        ).fetchone()[0]
    return int(value)


def all_payments(venue: Path) -> int:
    with sqlite3.connect(venue / "demo-venue.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0])


def panel_of(gui: Gui) -> TerminalPanel:
    return gui.window.terminal_panel


def open_terminal_tab(gui: Gui, qtbot: QtBot) -> TerminalPanel:
    panel = panel_of(gui)
    with qtbot.wait_signal(panel.orders.loaded, timeout=5000):
        gui.window.show_tab(TAB_TERMINAL)
    return panel


def order_row(panel: TerminalPanel, order_id: str = ORDER) -> list[str]:
    model = panel.orders.orders_model
    row = model.row_of(order_id)
    assert row is not None, f"order {order_id} is listed"
    return [model.data(model.index(row, column)) for column in range(model.columnCount())]


def open_sale_dialog(gui: Gui, qtbot: QtBot, order_id: str = ORDER) -> TakePaymentDialog:
    panel = open_terminal_tab(gui, qtbot)
    assert panel.orders.select_order(order_id)
    with qtbot.wait_signal(panel.dialog_opened, timeout=2000) as opened:
        qtbot.mouseClick(panel.orders.take_payment_button, Qt.MouseButton.LeftButton)
    dialog: TakePaymentDialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.chosen_terminal() is not None, timeout=5000)
    return dialog


def start_and_finish(gui: Gui, qtbot: QtBot, dialog: TakePaymentDialog) -> SessionUpdate:
    panel = panel_of(gui)
    with qtbot.wait_signal(panel.session_started, timeout=5000) as started:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    session = panel.session_panel

    def finished() -> bool:
        last = session.last_update
        return last is not None and last.session_id == started.args[0] and last.final

    qtbot.waitUntil(finished, timeout=10_000)
    assert session.last_update is not None
    return session.last_update


def fast(gui: Gui) -> None:
    gui.bridge.counter._poll_s = FAST_POLL_S


# --- words (no widgets) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minor"),
    [("36.56", 3656), ("£5", 500), (" 1,200.5 ", 120050), ("0.01", 1), ("12.345", None), ("abc", None), ("", None)],
)
def test_amounts_are_read_in_pounds_and_pence(text: str, minor: int | None) -> None:
    assert parse_amount(text) == minor


def test_amount_rules_say_what_is_wrong() -> None:
    assert check_amount("10.00", "GBP", 3656, "outstanding on this order") == (1000, None)
    assert check_amount("0", "GBP", 3656, "")[1] == "The amount must be more than £0.00."
    assert check_amount("40", "GBP", 3656, "outstanding on this order")[1] == (
        "That is more than the £36.56 outstanding on this order."
    )
    assert check_amount("999", "GBP", None, "") == (99900, None)


def update(status: str, **changes: Any) -> SessionUpdate:
    base: dict[str, Any] = {
        "session_id": "ts_1",
        "kind": "Sale",
        "status": status,
        "notifications": (),
        "final": False,
        "succeeded": False,
        "cancellable": True,
        "awaiting_signature": False,
        "order_id": ORDER,
        "amount": Money(value=OUTSTANDING, currency_code="GBP"),
    }
    return session_update(**{**base, **changes})


def test_the_retry_line_blames_no_one_and_shows_no_technical_error() -> None:
    error = "Dojo did not answer GET /terminal-sessions/ts_1 in time (ReadTimeout). Check the internet connection"
    view = describe_session(update("Initiated", error=error), ORDER_LABEL)

    assert view.tone == "warning"
    assert "Dojo" not in view.outcome and "/terminal-sessions" not in view.outcome
    assert view.outcome.startswith("Still checking")


def test_session_words_put_the_terminal_prompt_first() -> None:
    view = describe_session(update("Initiated", notifications=("PresentCard", "EnterPin")), ORDER_LABEL)
    assert (view.headline, view.detail, view.tone) == ("Enter PIN", "Waiting for the card", "progress")
    approved = update("Captured", final=True, succeeded=True, recorded=True, cancellable=False)
    view = describe_session(approved, "T12-0008")
    assert (view.headline, view.outcome, view.tone) == ("Approved", "Recorded on T12-0008", "success")
    declined = update("Declined", final=True, cancellable=False)
    view = describe_session(declined, None)
    assert (view.headline, view.outcome) == ("Declined by the card issuer", "Nothing was recorded")
    unrecorded = update(
        "Captured",
        final=True,
        succeeded=True,
        error="Approved on the terminal, but the POS did not record it: gone",
    )
    assert describe_session(unrecorded, None).tone == "warning"


def test_session_words_come_from_the_codes_and_unknown_codes_show_as_sent() -> None:
    view = describe_session(update("SomethingNew", notifications=("BlinkTwice",)), None)
    assert (view.headline, view.detail) == ("BlinkTwice", "SomethingNew")  # an open set (§5.5)
    for status in [*TerminalSessionStatus, "SomethingNew"]:
        for final in (False, True):
            shown = describe_session(update(status, final=final, notifications=("EnterPin",)), ORDER_LABEL)
            assert NOT_SHOWN not in (shown.headline, shown.detail, shown.outcome)


# --- sale ---------------------------------------------------------------------------------------------


def test_open_orders_are_listed_with_what_is_outstanding(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    panel = open_terminal_tab(gui, qtbot)
    assert order_row(panel) == [ORDER_LABEL, "T12", "£36.56", "£0.00", "£36.56"]
    assert order_row(panel, "7")[3:] == ["£20.00", "£78.21"]
    assert panel.orders.orders_model.row_of("1") is None  # finalized orders are not open
    assert not panel.orders.take_payment_button.isEnabled()  # nothing selected yet
    panel.orders.select_order(ORDER)
    assert panel.orders.take_payment_button.isEnabled()


def test_only_orders_that_owe_are_listed_newest_first_and_the_search_narrows_them(
    start_gui: Callable[..., Gui], qtbot: QtBot
) -> None:
    gui = start_gui()
    orders = open_terminal_tab(gui, qtbot).orders
    rows = orders.orders_model.orders()
    assert len(rows) >= 2
    assert all(row.outstanding > 0 for row in rows)
    opened = [row.opened_at for row in rows]
    assert None not in opened
    assert opened == sorted(opened, reverse=True)  # type: ignore[type-var]

    orders.search_edit.setText("t12-0008")  # any case, any part of the order or its table
    assert [row.order_id for row in orders.orders_model.orders()] == [ORDER]
    assert orders.selected_order() is not None  # one match: Enter takes it
    assert orders.orders_status.text().startswith(f"1 of {len(rows)} orders to pay")
    orders.search_edit.setText("no such order")
    assert orders.orders_model.rowCount() == 0
    orders.search_edit.clear()
    assert orders.orders_model.rowCount() == len(rows)


def test_orders_to_take_leave_out_the_paid_and_put_the_newest_first() -> None:
    def order(order_id: str, minute: int, total: int, paid: int) -> Order:
        return Order(
            id=order_id,
            details=OrderDetails(order_type=OrderType.COLLECTION, collection=CollectionDetails(asap=True)),
            total_amount=Money(value=total, currency_code="GBP"),
            paid_amount=Money(value=paid, currency_code="GBP"),
            created_at=datetime(2026, 12, 7, 19, minute, tzinfo=UTC),
        )

    rows = orders_to_take([order("a", 1, 1000, 0), order("b", 5, 1000, 1000), order("c", 9, 1000, 400)])

    assert [(row.order_id, row.outstanding) for row in rows] == [("c", 600), ("a", 1000)]


def test_a_sale_through_the_dialog_is_approved_and_recorded_once(
    start_gui: Callable[..., Gui], venue: Path, qtbot: QtBot
) -> None:
    gui = start_gui()
    fast(gui)
    dialog = open_sale_dialog(gui, qtbot)
    items = [dialog.terminal_list.item(i) for i in range(dialog.terminal_list.count())]
    assert [item.text() for item in items] == [
        "Terminal 10000001 — Available",
        "Terminal 10000002 — In use",
        "Terminal 10000003 — Offline",
    ]
    assert [bool(item.flags() & Qt.ItemFlag.ItemIsEnabled) for item in items] == [True, False, False]
    assert dialog.amount_edit.text() == "36.56"
    assert dialog.start_button.isEnabled()

    final = start_and_finish(gui, qtbot, dialog)
    session = panel_of(gui).session_panel
    assert final.succeeded and final.recorded
    assert session.headline_label.text() == "Approved"
    assert session.outcome_label.text() == f"Recorded on {ORDER_LABEL}"
    history = [session.history.item(i).text() for i in range(session.history.count())]
    assert any(line.endswith("Present card") for line in history)
    assert any(line.endswith("Enter PIN") for line in history)
    assert paid(venue) == OUTSTANDING

    # The payment log shows it once, as a counter payment; the order list catches up.
    model = gui.window.payments_tab.payment_model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5000)
    assert [model.data(model.index(0, c)) for c in (1, 2, 3, 7)] == [ORDER_LABEL, "T12", "£36.56", "PayAtCounter"]
    # Paid in full, it leaves the list of orders to take (issue 25, item 8).
    qtbot.waitUntil(lambda: panel_of(gui).orders.orders_model.row_of(ORDER) is None, timeout=5000)
    assert not panel_of(gui).orders.take_payment_button.isEnabled()  # nothing left to pay on it
    qtbot.wait(300)
    assert paid(venue) == OUTSTANDING
    assert model.rowCount() == 1


def test_the_amount_is_validated_before_starting(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    dialog = open_sale_dialog(gui, qtbot)
    qtbot.waitUntil(lambda: dialog.amount_edit.text() == "36.56", timeout=5000)
    dialog.amount_edit.clear()
    qtbot.keyClicks(dialog.amount_edit, "40")
    assert not dialog.start_button.isEnabled()
    assert dialog.amount_hint.text() == "That is more than the £36.56 outstanding on this order."
    dialog.amount_edit.clear()
    qtbot.keyClicks(dialog.amount_edit, "0")
    assert not dialog.start_button.isEnabled()
    dialog.amount_edit.clear()
    qtbot.keyClicks(dialog.amount_edit, "10.00")
    assert dialog.start_button.isEnabled()
    assert dialog.amount() == Money(value=1000, currency_code="GBP")


def test_a_decline_is_shown_and_records_nothing(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, venue: Path, qtbot: QtBot
) -> None:
    gui = start_gui()
    fast(gui)
    before = all_payments(venue)
    simulator.rest.next_session_script("decline")
    final = start_and_finish(gui, qtbot, open_sale_dialog(gui, qtbot))
    session = panel_of(gui).session_panel
    assert (final.status, final.succeeded, final.recorded) == ("Declined", False, False)
    assert session.headline_label.text() == "Declined by the card issuer"
    assert session.outcome_label.text() == "Nothing was recorded"
    assert not session.cancel_button.isEnabled()
    assert paid(venue) == 0 and all_payments(venue) == before
    assert gui.window.payments_tab.payment_model.rowCount() == 0


@pytest.mark.parametrize(("accept", "recorded"), [(True, OUTSTANDING), (False, 0)])
def test_a_signature_check_asks_staff_and_only_acceptance_records(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, venue: Path, qtbot: QtBot, accept: bool, recorded: int
) -> None:
    gui = start_gui()
    fast(gui)
    simulator.rest.next_session_script("signature")
    dialog = open_sale_dialog(gui, qtbot)
    session = panel_of(gui).session_panel
    with qtbot.wait_signal(session.signature_asked, timeout=5000) as asked:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    signature = asked.args[0]
    qtbot.waitUntil(signature.isVisible, timeout=2000)
    assert session.headline_label.text() == "Check the signature"
    qtbot.keyClick(signature, Qt.Key.Key_Escape)  # not an answer: the question stays
    assert signature.isVisible()

    with qtbot.wait_signal(session.finished, timeout=5000) as finished:
        qtbot.mouseClick(signature.accept_button if accept else signature.reject_button, Qt.MouseButton.LeftButton)
    assert session.signature_dialog is None  # answered: closed (and deleted)
    final: SessionUpdate = finished.args[0]
    assert final.succeeded is accept
    if accept:
        assert session.outcome_label.text() == f"Recorded on {ORDER_LABEL}"
    else:
        assert session.headline_label.text() == "Signature rejected: payment reversed"
        assert session.outcome_label.text() == "Nothing was recorded"
    assert paid(venue) == recorded


def test_cancel_while_waiting_for_the_card(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, venue: Path, qtbot: QtBot
) -> None:
    gui = start_gui()
    fast(gui)
    cancel_in = asyncio.Event()

    async def waiting_for_the_card(seconds: float) -> None:
        # The simulated terminal moves one step per poll: no poll until Dojo has the cancel, so
        # the card cannot be taken before Cancel is pressed, however slowly the test runs.
        await cancel_in.wait()
        await asyncio.sleep(seconds)

    gui.bridge.counter._sleep = waiting_for_the_card
    dialog = open_sale_dialog(gui, qtbot)
    panel = panel_of(gui)
    session = panel.session_panel
    assert not session.cancel_button.isEnabled()
    with qtbot.wait_signal(panel.session_started, timeout=5000):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(session.cancel_button.isEnabled, timeout=5000)
    assert session.headline_label.text() == "Present card"
    assert not panel.orders.take_payment_button.isEnabled()  # one session at a time on this panel
    with qtbot.wait_signal(session.finished, timeout=5000) as finished:
        qtbot.mouseClick(session.cancel_button, Qt.MouseButton.LeftButton)
        assert not session.cancel_button.isEnabled()
        qtbot.waitUntil(
            lambda: [s.status for s in simulator.rest.sessions.values()] == ["CancelRequested"], timeout=5000
        )
        cancel_in.set()
    assert finished.args[0].status == "Canceled"
    assert session.headline_label.text() == "Cancelled"
    assert session.outcome_label.text() == "Nothing was recorded"
    assert paid(venue) == 0


@pytest.mark.logs_warnings("a refused terminal session is logged")
def test_a_busy_terminal_is_reported_in_words(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot
) -> None:
    gui = start_gui()
    dialog = open_sale_dialog(gui, qtbot)
    simulator.rest.terminals["tm_sim_counter"]["status"] = "InUse"  # someone else took it meanwhile
    with qtbot.wait_signal(dialog.start_failed, timeout=5000) as failed:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert failed.args[0].startswith("The terminal could not start:")
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: "No terminal is free" in dialog.terminal_hint.text(), timeout=5000)
    assert not dialog.start_button.isEnabled()


# --- refunds ------------------------------------------------------------------------------------------


def test_a_matched_refund_from_the_payment_log_stops_the_payment_counting(
    start_gui: Callable[..., Gui], venue: Path, qtbot: QtBot
) -> None:
    gui = start_gui()
    fast(gui)
    start_and_finish(gui, qtbot, open_sale_dialog(gui, qtbot))
    assert paid(venue) == OUTSTANDING
    window = gui.window
    qtbot.waitUntil(lambda: window.payments_tab.payment_model.rowCount() == 1, timeout=5000)

    window.show_tab(TAB_PAYMENTS)
    assert not window.payments_tab.refund_button.isEnabled()
    window.payments_tab.payment_view.selectRow(0)
    assert window.payments_tab.refund_button.isEnabled()
    panel = panel_of(gui)
    with qtbot.wait_signal(panel.dialog_opened, timeout=2000) as opened:
        qtbot.mouseClick(window.payments_tab.refund_button, Qt.MouseButton.LeftButton)
    dialog: TakePaymentDialog = opened.args[0]
    assert dialog.windowTitle() == "Refund card payment"
    assert dialog.amount_edit.text() == "36.56" and dialog.amount_edit.isReadOnly()
    qtbot.waitUntil(lambda: dialog.chosen_terminal() is not None, timeout=5000)

    final = start_and_finish(gui, qtbot, dialog)
    assert window.tabs.currentIndex() == TAB_TERMINAL  # followed in the same live panel
    assert final.kind == "MatchedRefund" and final.succeeded and final.recorded
    assert panel.session_panel.outcome_label.text() == f"Refunded: the payment no longer counts on {ORDER_LABEL}"
    assert paid(venue) == 0
    qtbot.waitUntil(
        lambda: window.payments_tab.payment_model.data(window.payments_tab.payment_model.index(0, 6)) == "Refunded",
        timeout=5000,
    )
    window.show_tab(TAB_PAYMENTS)
    window.payments_tab.payment_view.selectRow(0)
    assert not window.payments_tab.refund_button.isEnabled()  # refunded once is enough


def test_an_unlinked_refund_takes_an_amount_and_touches_no_order(
    start_gui: Callable[..., Gui], venue: Path, qtbot: QtBot
) -> None:
    gui = start_gui()
    fast(gui)
    before = all_payments(venue)
    panel = open_terminal_tab(gui, qtbot)
    with qtbot.wait_signal(panel.dialog_opened, timeout=2000) as opened:
        qtbot.mouseClick(panel.orders.unlinked_refund_button, Qt.MouseButton.LeftButton)
    dialog: TakePaymentDialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.chosen_terminal() is not None, timeout=5000)
    assert dialog.amount_edit.text() == "" and not dialog.start_button.isEnabled()
    qtbot.keyClicks(dialog.amount_edit, "abc")
    assert dialog.amount_hint.text() == "Enter the amount in pounds and pence, for example 12.50."
    dialog.amount_edit.clear()
    qtbot.keyClicks(dialog.amount_edit, "5")
    assert dialog.start_button.isEnabled()

    final = start_and_finish(gui, qtbot, dialog)
    assert final.kind == "UnlinkedRefund" and final.succeeded and not final.recorded
    assert panel.session_panel.title_label.text() == "Unlinked refund · £5.00"
    assert panel.session_panel.outcome_label.text() == "Refunded to the card — not linked to any order"
    assert all_payments(venue) == before


# --- keyboard --------------------------------------------------------------------------------------------


def test_the_payment_flow_works_from_the_keyboard(start_gui: Callable[..., Gui], venue: Path, qtbot: QtBot) -> None:
    gui = start_gui()
    fast(gui)
    panel = open_terminal_tab(gui, qtbot)
    gui.window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is gui.window, timeout=3000)
    panel.orders.select_order(ORDER)
    panel.orders.orders_view.setFocus()
    with qtbot.wait_signal(panel.dialog_opened, timeout=2000) as opened:
        qtbot.keyClick(panel.orders.orders_view, Qt.Key.Key_Return)
    dialog: TakePaymentDialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.chosen_terminal() is not None, timeout=5000)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible() and paid(venue) == 0

    with qtbot.wait_signal(panel.dialog_opened, timeout=2000) as opened:
        qtbot.keyClick(panel.orders.orders_view, Qt.Key.Key_Return)
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.chosen_terminal() is not None and dialog.start_button.isEnabled(), timeout=5000)
    with qtbot.wait_signal(panel.session_panel.finished, timeout=10_000):
        qtbot.keyClick(dialog.amount_edit, Qt.Key.Key_Return)  # the default button: Start
    assert paid(venue) == OUTSTANDING


def test_the_terminal_tab_fits_a_till_screen(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    open_terminal_tab(gui, qtbot)
    hint = gui.window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768


# --- POS events on the Connection tab ---------------------------------------------------------------------


@pytest.mark.logs_warnings("undelivered POS events are logged")
def test_the_outbox_depth_and_delivery_problem_are_live(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, venue: Path, run: Run, qtbot: QtBot
) -> None:
    gui = start_gui()
    window = gui.window
    window.show_tab(TAB_CONNECTION)
    assert window.connection_tab.outbox_depth_label.text() == "0"  # shown after "POS events waiting:"
    assert window.connection_tab.outbox_error_label.text() == "none"

    simulator.rest.fail_events(503)
    run(relay_reading(gui.bridge))  # an edit before the relay's starting position is history
    with sqlite3.connect(venue / "demo-venue.db") as conn:  # the till edits an order
        conn.execute("UPDATE orders SET note = 'no onions' WHERE id = ?", [ORDER])
    qtbot.waitUntil(lambda: window.connection_tab.outbox_depth_label.text().startswith("1 "), timeout=10_000)
    qtbot.waitUntil(lambda: window.connection_tab.outbox_error_label.text() != "none", timeout=10_000)
    assert "503" in window.connection_tab.outbox_error_label.text()
    assert window.connection_tab.outbox_error_label.text().endswith("the bridge keeps retrying; nothing is lost")

    simulator.rest.restore_events()
    qtbot.waitUntil(lambda: window.connection_tab.outbox_depth_label.text() == "0", timeout=15_000)
    assert window.connection_tab.outbox_error_label.text() == "none"
    assert simulator.rest.events[-1] == {"eventType": "OrderUpdated", "event": {"orderId": ORDER}}


# --- a captured card not on the till (issue 11, item 7) ------------------------------------------------


def test_a_captured_card_not_on_the_till_is_a_banner_and_a_critical_notice_until_it_lands(
    start_gui: Callable[..., Gui], qtbot: QtBot
) -> None:
    gui = start_gui()
    banner = gui.window.capture_alert
    assert banner.isHidden()
    waiting = update(
        "Captured",
        final=False,
        succeeded=True,
        cancellable=False,
        unrecorded_capture=True,
        terminal_name="10000001",
        order_label="Table 12",
        amount=Money(value=7983, currency_code="GBP"),
        error="The POS database is busy",
    )
    with qtbot.wait_signal(gui.tray.notified, timeout=3000) as told:
        gui.signals.counter_update.emit(waiting)
    notice = told.args[0]
    assert (notice.title, notice.level) == ("Card payment not on the till yet", "critical")
    # Staff find the order by how the till names it, never by the terminal's number (issue 25, item 8).
    assert "£79.83 for Table 12 is not on the till yet — do not charge it again" in notice.message
    assert "10000001" not in notice.message
    assert banner.isVisibleTo(gui.window) and banner.lines() == [notice.message]
    assert banner.textFormat() == Qt.TextFormat.PlainText
    qtbot.waitUntil(lambda: gui.tray.icon_key.endswith("+attention"), timeout=3000)
    with qtbot.assert_not_emitted(gui.tray.notified):
        gui.signals.counter_update.emit(waiting)  # each retry says it again; staff are told once
    view = describe_session(waiting, ORDER_LABEL)
    assert (view.headline, view.tone) == ("Approved — not on the till yet", "warning")

    landed = update("Captured", final=True, succeeded=True, recorded=True, cancellable=False)
    with qtbot.wait_signal(gui.tray.notified, timeout=3000) as told:
        gui.signals.counter_update.emit(landed)
    assert told.args[0].title == "Card payment now on the till"
    assert banner.isHidden()
    qtbot.waitUntil(lambda: not gui.tray.icon_key.endswith("+attention"), timeout=3000)
