"""The tray controller and the status window over a real Bridge and the real Dojo simulator.

Offscreen there is no system tray, so most tests see the no-tray mode (the status window is the
main window); ``tray_available=lambda: True`` exercises the tray mode's own paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.app import Bridge, demo_settings
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.sim import flows
from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.state.payment_log import CSV_COLUMNS
from epos_bridge.ui.gui import GuiParts, run_gui
from epos_bridge.ui.icons import IconLibrary
from epos_bridge.ui.session_panel import TERMINAL_EMPTY_TEXT
from epos_bridge.ui.status_window import TAB_CONNECTION, TAB_LOCKS, TAB_PAYMENTS, TAB_TERMINAL
from epos_bridge.ui.text import plain_tooltip
from tests.ui.conftest import Gui, Run

pytestmark = pytest.mark.timeout(60)

HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "ui-test-terminal", "waiterId": "W2"}


def table_texts(model: Any, column: int) -> list[str]:
    return [model.data(model.index(row, column)) for row in range(model.rowCount())]


async def t12_order(simulator: DojoSimulator) -> dict[str, Any]:
    page = await simulator.send(
        "SearchOrdersV1",
        {"headers": HEADERS, "payableOnly": True, "dineIn": {"tableId": "T12"}, "cursor": {"limit": 10}},
    )
    return dict(page["result"]["data"][0])


def in_utc(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# --- the state at a glance ----------------------------------------------------------------------


def test_icons_render_for_every_state(qapp: QApplication) -> None:
    icons = IconLibrary()
    for name in ("connected", "connecting", "disconnected", "auth_failed", "app"):
        for attention in (False, True):
            pixmap = icons.pixmap(name, 32, attention=attention)
            assert not pixmap.isNull()
            assert pixmap.toImage().pixelColor(16, 16).alpha() > 0, name
    assert icons.icon("connected").availableSizes()


def test_connected_after_start_in_no_tray_mode(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    qtbot.waitUntil(lambda: gui.tray.icon_key == "connected", timeout=5000)
    assert gui.tray.mode == "window"
    assert gui.window.main_window and gui.window.isVisible()
    assert gui.window.icon_key == "connected"
    assert gui.window.connection_tab.state_label.text() == "Connected — card payments work"
    assert re.fullmatch(r"Card payments: connected since \d\d:\d\d · sandbox", gui.tray.tooltip)
    assert gui.window.connection_tab.gateway_label.text() == gui.bridge.settings.ws_url
    assert gui.window.connection_tab.software_house_label.text() == DEMO_SOFTWARE_HOUSE_ID
    assert gui.window.connection_tab.environment_label.text().startswith("Sandbox")
    qtbot.waitUntil(lambda: gui.window.connection_tab.capabilities_label.text().startswith("In sync"), timeout=5000)


def test_icon_follows_drops_and_an_unreachable_gateway(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    gui = start_gui()
    seen: list[str] = []
    gui.tray.icon_changed.connect(seen.append)

    run(simulator.gateway.drop_connections())
    qtbot.waitUntil(lambda: any(k.startswith(("disconnected", "connecting")) for k in seen), timeout=5000)
    qtbot.waitUntil(lambda: gui.tray.icon_key == "connected", timeout=10_000)

    run(simulator.gateway.stop())
    tab = gui.window.connection_tab
    qtbot.waitUntil(lambda: tab.state_label.text().startswith("Card payments are down"), timeout=10_000)
    assert re.fullmatch(r"Card payments are down — reconnecting to Dojo \(attempt \d+\)", tab.state_label.text())
    qtbot.waitUntil(lambda: re.search(r"next try in \d+ s$", tab.since_label.text()) is not None, timeout=10_000)
    assert gui.tray.icon_key.startswith("disconnected")
    assert gui.window.connection_tab.last_error_label.text() != "None"
    assert "not connected" in gui.tray.tooltip


@pytest.mark.logs_warnings("a rejected key is logged")
def test_rejected_key_shows_auth_failed_with_badge_and_notifies(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui(api_key="sk_sandbox_not_the_right_key", wait_connected=False)
    qtbot.waitUntil(lambda: gui.tray.icon_key == "auth_failed+attention", timeout=10_000)
    assert gui.window.connection_tab.state_label.text() == "Dojo rejected the API key — open Settings"
    assert gui.window.icon_key == "auth_failed+attention"
    assert "401" in gui.window.connection_tab.last_error_label.text()
    # No tray offscreen: the notice lands in the window's status bar.
    qtbot.waitUntil(lambda: "Dojo rejected the API key" in gui.window.statusBar().currentMessage(), timeout=5000)


def test_reconnect_button_reconnects(start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot) -> None:
    gui = start_gui()
    opened = simulator.gateway.connections_opened
    qtbot.mouseClick(gui.window.connection_tab.reconnect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: simulator.gateway.connections_opened > opened, timeout=10_000)
    qtbot.waitUntil(lambda: gui.state is ConnectionState.CONNECTED, timeout=10_000)
    assert gui.tray.icon_key == "connected"


# --- payments -----------------------------------------------------------------------------------


def test_pay_at_table_payment_appears_live(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    gui = start_gui()
    model = gui.window.payments_tab.payment_model
    assert model.rowCount() == 0
    report = run(flows.pay_at_table(simulator.send, table_id="T12"))
    assert report.ok, report.error
    intents = {intent for _, intent, _, _ in report.payments}
    assert intents
    qtbot.waitUntil(lambda: set(table_texts(model, 5)) == intents, timeout=5000)
    # The HandleEvent (captured) replaced each row in place: still one row per intent.
    qtbot.waitUntil(lambda: set(table_texts(model, 6)) == {"Captured"}, timeout=5000)
    assert model.rowCount() == len(intents)
    assert set(table_texts(model, 2)) == {"T12"}
    assert all(text.startswith("£") for text in table_texts(model, 3))
    assert re.search(r"last payment £\d+\.\d\d T12 \d\d:\d\d$", gui.tray.tooltip)


def record(gui: Gui, run: Run, intent: str, at: datetime, table: str, value: int = 1250) -> None:
    entry = PaymentLogEntry(
        at=at,
        order_id="99",
        payment_intent_id=intent,
        amount_value=value,
        currency="GBP",
        status="Captured",
        tips_value=125,
        order_reference=f"R-{intent}",
        table_id=table,
        product="PayAtTable",
        device_id="ui-test-terminal",
    )
    run(gui.bridge.payment_log.record(entry))


def test_today_all_and_search_filter_rows(start_gui: Callable[..., Gui], run: Run, qtbot: QtBot) -> None:
    gui = start_gui()
    window = gui.window
    now = datetime.now(UTC)
    record(gui, run, "pi_today_t1", now - timedelta(seconds=5), "T1")
    record(gui, run, "pi_today_t12", now - timedelta(seconds=1), "T12")
    record(gui, run, "pi_old_t12", now - timedelta(days=3), "T12")

    with qtbot.wait_signal(window.payments_tab.loaded, timeout=5000) as loaded:
        window.payments_tab.reload()
    assert loaded.args == [2]
    assert table_texts(window.payments_tab.payment_model, 5) == ["pi_today_t12", "pi_today_t1"]

    with qtbot.wait_signal(window.payments_tab.loaded, timeout=5000) as loaded:
        window.payments_tab.period_combo.setCurrentIndex(1)  # All
    assert loaded.args == [3]

    with qtbot.wait_signal(window.payments_tab.loaded, timeout=5000) as loaded:
        qtbot.keyClicks(window.payments_tab.search_edit, "T12")  # debounced: one query after typing stops
    assert loaded.args == [2]
    assert set(table_texts(window.payments_tab.payment_model, 5)) == {"pi_today_t12", "pi_old_t12"}
    assert window.payments_tab.payment_count_label.text() == '2 payments in the log matching "T12"'


def test_export_csv_writes_header_and_rows(
    start_gui: Callable[..., Gui], run: Run, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gui = start_gui()
    now = datetime.now(UTC)
    record(gui, run, "pi_export_1", now - timedelta(seconds=2), "T1", 4000)
    record(gui, run, "pi_export_2", now - timedelta(seconds=1), "T12", 1999)
    with qtbot.wait_signal(gui.window.payments_tab.loaded, timeout=5000):
        gui.window.payments_tab.reload()
    target = tmp_path / "exports" / "till-payments"
    target.parent.mkdir()
    gui.window.payments_tab.file_dialog = lambda _parent, _question, answered: answered(str(target), "")

    with qtbot.wait_signal(gui.window.payments_tab.exported, timeout=5000) as exported:
        qtbot.mouseClick(gui.window.payments_tab.export_button, Qt.MouseButton.LeftButton)

    written = target.with_name("till-payments.csv")
    assert exported.args == [2, str(written)]
    with written.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[6] for row in rows[1:]] == ["pi_export_2", "pi_export_1"]
    assert rows[2][3] == "40.00"
    assert gui.window.statusBar().currentMessage() == f"Exported 2 payments to {written}"


def test_export_cancelled_writes_nothing(
    start_gui: Callable[..., Gui], qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    gui = start_gui()
    gui.window.payments_tab.file_dialog = lambda _parent, _question, answered: answered("", "")
    with qtbot.assert_not_emitted(gui.window.payments_tab.exported, wait=200):
        gui.window.payments_tab.export_csv()


# --- locks --------------------------------------------------------------------------------------


def test_lock_shows_with_countdown_and_disappears_when_released(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    gui = start_gui()
    window = gui.window
    order = run(t12_order(simulator))
    lock = {"headers": HEADERS, "orderId": order["id"], "lockId": "lock_ui_test"}

    answer = run(simulator.send("CreateOrderLockV1", {**lock, "expiry": in_utc(90)}))
    assert "result" in answer, answer
    qtbot.waitUntil(lambda: window.locks_tab.lock_model.rowCount() == 1, timeout=5000)
    assert table_texts(window.locks_tab.lock_model, 1) == ["T12"]
    assert table_texts(window.locks_tab.lock_model, 2) == ["lock_ui_test"]
    assert table_texts(window.locks_tab.lock_model, 3) == ["PayAtTable · ui-test-terminal · W2"]
    assert re.fullmatch(r"1:[23]\d", table_texts(window.locks_tab.lock_model, 4)[0])
    assert not window.locks_tab.locks_empty_label.isVisibleTo(window)
    assert "created" in window.locks_tab.lock_history.item(0).text()

    answer = run(simulator.send("DeleteOrderLockV1", lock))
    assert "result" in answer, answer
    qtbot.waitUntil(lambda: window.locks_tab.lock_model.rowCount() == 0, timeout=5000)
    assert "released" in window.locks_tab.lock_history.item(0).text()
    assert "lock_ui_test" in window.locks_tab.lock_history.item(0).text()


def test_expired_lock_leaves_the_table_on_the_timer(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    gui = start_gui()
    order = run(t12_order(simulator))
    lock = {"headers": HEADERS, "orderId": order["id"], "lockId": "lock_short", "expiry": in_utc(1.5)}
    assert "result" in run(simulator.send("CreateOrderLockV1", lock))
    qtbot.waitUntil(lambda: gui.window.locks_tab.lock_model.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: gui.window.locks_tab.lock_model.rowCount() == 0, timeout=5000)
    assert "expired" in gui.window.locks_tab.lock_history.item(0).text()


def test_lock_conflict_badges_until_the_locks_tab_is_seen(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    gui = start_gui()
    order = run(t12_order(simulator))
    base = {"headers": HEADERS, "orderId": order["id"], "expiry": in_utc(90)}
    assert "result" in run(simulator.send("CreateOrderLockV1", {**base, "lockId": "lock_first"}))
    with qtbot.wait_signal(gui.tray.notified, timeout=5000) as told:
        refused = run(simulator.send("CreateOrderLockV1", {**base, "lockId": "lock_second"}))
    assert "error" in refused
    assert told.args[0].title == "Order could not be locked"
    qtbot.waitUntil(lambda: gui.tray.icon_key == "connected+attention", timeout=3000)
    assert "conflict" in gui.window.locks_tab.lock_history.item(0).text()

    gui.window.show_tab(TAB_LOCKS)
    qtbot.waitUntil(lambda: gui.tray.icon_key == "connected", timeout=3000)


# --- keyboard and layout --------------------------------------------------------------------------


def test_tabs_are_reachable_by_keyboard(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    window = gui.window
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    assert window.tabs.currentIndex() == TAB_CONNECTION

    qtbot.keyClick(window.tabs, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == TAB_PAYMENTS
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentIndex() == TAB_LOCKS
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == TAB_TERMINAL
    assert window.terminal_panel.session_panel.empty_label.text() == TERMINAL_EMPTY_TEXT
    qtbot.keyClick(window, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == TAB_CONNECTION
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == TAB_PAYMENTS
    assert window.payments_tab.search_edit.hasFocus()
    # The menu bar carries the tray's actions, with mnemonics and shortcuts.
    assert [a.text() for a in window.menuBar().actions()] == ["&Bridge", "&View"]
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"


def test_fits_a_till_screen(start_gui: Callable[..., Gui]) -> None:
    gui = start_gui()
    hint = gui.window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768
    assert gui.window.width() <= 1366 and gui.window.height() <= 768


# --- tray mode ------------------------------------------------------------------------------------


def test_the_tray_tooltip_shows_an_order_reference_as_text(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui(tray_available=lambda: True)
    qtbot.waitUntil(lambda: gui.tray.mode == "tray", timeout=3000)
    entry = PaymentLogEntry(
        datetime.now(UTC), "8", "pi_markup", 1000, "GBP", "Recorded", order_reference="<img src=x><b>T12</b>"
    )

    gui.signals.payment.emit(entry)

    assert gui.tray.tray is not None
    qtbot.waitUntil(lambda: "<img src=x>" in gui.tray.tooltip, timeout=3000)
    assert "<img" not in gui.tray.tray.toolTip()
    assert "&lt;img src=x&gt;&lt;b&gt;T12&lt;/b&gt;" in gui.tray.tray.toolTip()


def test_tray_mode_menu_and_close_hides(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui(tray_available=lambda: True)
    assert gui.tray.mode == "tray"
    assert gui.tray.tray is not None
    assert not gui.window.isVisible() and not gui.window.main_window
    qtbot.waitUntil(lambda: gui.tray.icon_key == "connected", timeout=5000)
    assert not gui.tray.tray.icon().isNull()
    assert gui.tray.tray.toolTip() == plain_tooltip(gui.tray.tooltip)
    assert [a.text() for a in gui.tray.menu.actions() if not a.isSeparator()] == [
        "&Open status window",
        "&Settings…",
        "&Reconnect",
        "Open &logs folder",
        "Export &diagnostics…",
        "&About epos-bridge",
        "&Quit",
    ]
    gui.tray.open_action.trigger()
    assert gui.window.isVisible()
    with qtbot.assert_not_emitted(gui.tray.quit_requested):
        gui.window.close()
    assert not gui.window.isVisible()
    with qtbot.wait_signal(gui.tray.settings_requested, timeout=1000):
        gui.tray.settings_action.trigger()
    with qtbot.assert_not_emitted(gui.tray.quit_requested):
        gui.tray.quit_action.trigger()
        answer_quit(gui, "Keep running", qtbot)
    with qtbot.wait_signal(gui.tray.quit_requested, timeout=1000):
        gui.tray.quit_action.trigger()
        answer_quit(gui, "Quit", qtbot)


def answer_quit(gui: Gui, button: str, qtbot: QtBot) -> None:
    """Quit is asked first and says card payments stop (issue 25, item 8); click ``button``."""
    qtbot.waitUntil(lambda: gui.tray.quit_box is not None and gui.tray.quit_box.isVisible(), timeout=3000)
    box = gui.tray.quit_box
    assert box is not None
    assert "Card payments stop" in box.text()
    (chosen,) = [b for b in box.buttons() if b.text() == button]
    chosen.click()
    qtbot.waitUntil(lambda: gui.tray.quit_box is None, timeout=3000)


def test_a_single_click_on_the_tray_icon_opens_the_window(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui(tray_available=lambda: True)
    qtbot.waitUntil(lambda: gui.tray.mode == "tray", timeout=3000)
    assert gui.tray.tray is not None and not gui.window.isVisible()

    gui.tray.tray.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)

    qtbot.waitUntil(gui.window.isVisible, timeout=3000)


def test_late_tray_is_retried(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    answers = iter([False, False])
    gui = start_gui(tray_available=lambda: next(answers, True))
    qtbot.waitUntil(lambda: gui.tray.mode == "tray", timeout=3000)
    assert not gui.window.main_window
    # The state was known before the tray host appeared: the late icon shows it all the same.
    assert gui.tray.tray is not None
    assert gui.tray.tray.toolTip() == plain_tooltip(gui.tray.tooltip)
    assert gui.tray.tooltip.startswith("Card payments: connected")


def test_closing_the_main_window_quits_without_a_tray(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    with qtbot.assert_not_emitted(gui.tray.quit_requested):
        gui.window.close()
        answer_quit(gui, "Keep running", qtbot)
    assert gui.window.isVisible()  # with no tray, a declined quit must leave the app on screen
    with qtbot.wait_signal(gui.tray.quit_requested, timeout=1000):
        gui.window.close()
        answer_quit(gui, "Quit", qtbot)


# --- the whole app ----------------------------------------------------------------------------------


def test_run_gui_serves_and_quits_cleanly(qapp: QApplication, tmp_path: Path) -> None:
    """run_gui on its own qasync loop: the demo-style composition, then Quit → close frame 1001."""
    init_database(tmp_path / "demo-venue.db", demo=True, now=datetime.now(UTC))
    simulators: list[DojoSimulator] = []
    seen: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def open_bridge() -> AsyncIterator[Bridge]:
        async with DojoSimulator() as simulator:
            simulators.append(simulator)
            yield Bridge(
                demo_settings(tmp_path, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID)
            )

    def started(parts: GuiParts) -> None:
        connected = asyncio.Event()
        parts.signals.status_changed.connect(
            lambda s: connected.set() if s.state is ConnectionState.CONNECTED else None
        )
        if parts.signals.status.state is ConnectionState.CONNECTED:
            connected.set()

        async def connected_then_quit() -> None:
            async with asyncio.timeout(10):
                await connected.wait()
            seen["icon"] = parts.tray.icon_key
            seen["label"] = parts.window.connection_tab.state_label.text()
            parts.quit()

        seen["task"] = asyncio.get_running_loop().create_task(connected_then_quit())

    assert run_gui(open_bridge, demo=True, on_started=started, settings_path=tmp_path / "settings.json") == 0
    assert seen["icon"] == "connected"
    assert seen["label"] == "Connected — card payments work"
    assert simulators[0].gateway.close_codes == [1001]
