"""The till's evening (issue 25, item 8): today's takings in the payment log, what the status
window tells support, the logs folder on a till without a file browser, a crash pop-up without
a traceback, and Verify's own lock conflicts kept out of staff's notices.

Real parts: the bridge on the demo venue, the simulator, real widgets (offscreen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import keyring.backends.fail
import pytest
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from epos_bridge.config import ConfigError, KeyStore
from epos_bridge.domain.events import LockRefused
from epos_bridge.host.crash import CrashReport
from epos_bridge.services.activity import PaymentLogEntry, Takings, takings
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.ui.gui import _open_verify_quietly, _settings_before_start, open_logs
from epos_bridge.ui.icons import IconLibrary
from epos_bridge.ui.settings_dialog import SettingsDialog
from epos_bridge.ui.verify_dialog import VerifyDialog
from tests.helpers.fake_opener import install_fake_opener
from tests.ui.conftest import Gui, Run

ORDER = "8"  # demo: T12-0008 (Table 12), £36.56, nothing paid yet


def test_the_payment_log_shows_todays_takings_whatever_the_filter(
    start_gui: Callable[..., Gui], qtbot: QtBot, run: Run, simulator: DojoSimulator
) -> None:
    gui = start_gui()
    tab = gui.window.payments_tab
    qtbot.waitUntil(lambda: tab.today_total_label.text() == "Today: no card payments yet", timeout=5000)

    for intent, value, tips in (("pi_today_1", 1000, 150), ("pi_today_2", 500, None)):
        params = {
            "headers": {"dojoRequestingProduct": "PayAtTable"},
            "orderId": ORDER,
            "paymentIntentId": intent,
            "paidAmount": {"value": value, "currencyCode": "GBP"},
            **({"tipsAmount": {"value": tips, "currencyCode": "GBP"}} if tips else {}),
        }
        answer = run(simulator.gateway.request("RecordOrderPaymentByIdV1", params))
        assert "result" in answer, answer

    expected = "Today: £15.00 from 2 card payments (+ £1.50 tips)"
    qtbot.waitUntil(lambda: tab.today_total_label.text() == expected, timeout=5000)
    tab.search_edit.setText("no such payment")  # the filter narrows the rows, not today's takings
    with qtbot.wait_signal(tab.loaded, timeout=5000):
        tab.reload()
    assert tab.payment_model.rowCount() == 0
    assert tab.today_total_label.text() == expected


def test_takings_leave_out_what_was_given_back_or_is_not_on_the_till() -> None:
    at = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)

    def entry(intent: str, status: str, value: int, currency: str = "GBP") -> PaymentLogEntry:
        return PaymentLogEntry(at, "8", intent, value, currency, status, tips_value=100)

    totals = takings(
        [
            entry("a", "Recorded", 1000),
            entry("b", "Captured", 500),
            entry("c", "Refunded", 700),
            entry("d", "Reversed", 900),
            entry("e", "Canceled", 300),
            entry("f", "CapturedNotOnTill", 400),
            entry("g", "Recorded", 250, "EUR"),
        ]
    )

    assert totals == [Takings("GBP", 1500, 200, 2), Takings("EUR", 250, 100, 1)]


def test_the_status_window_says_which_pos_and_where_the_logs_are(start_gui: Callable[..., Gui]) -> None:
    gui = start_gui()
    tab = gui.window.connection_tab
    settings = gui.bridge.settings

    assert tab.adapter_label.text() == settings.adapter
    assert tab.database_label.text() == str(settings.db_path)
    assert tab.logs_label.text() == str(settings.log_dir)
    assert tab.logs_button.isVisibleTo(gui.window)


@pytest.mark.logs_warnings("the till has no file browser: starting it fails and is logged")
def test_open_logs_folder_shows_the_path_where_no_file_browser_can_be_opened(
    start_gui: Callable[..., Gui], qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gui = start_gui()
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))

    open_logs(gui.window, gui.bridge)

    boxes = [b for b in gui.window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1
    assert str(gui.bridge.settings.log_dir) in boxes[0].text()
    boxes[0].close()


def test_open_logs_folder_opens_the_file_browser_when_there_is_one(
    start_gui: Callable[..., Gui], qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gui = start_gui()
    dump = install_fake_opener(tmp_path, monkeypatch, "opened.env", keep_argument=True)

    gui.window.connection_tab.logs_button.click()  # wired as the tray app wires it
    open_logs(gui.window, gui.bridge)

    qtbot.waitUntil(dump.exists, timeout=10_000)
    assert Path(dump.with_suffix(".env.arg").read_text()) == gui.bridge.settings.log_dir
    assert not [b for b in gui.window.findChildren(QMessageBox) if b.isVisible()]


def test_a_crash_pop_up_shows_no_exception_or_traceback(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    report = CrashReport(
        "a background task",
        "RuntimeError: Cannot enter into task <Task pending name='Task-7'>",
        'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: …',
    )

    with qtbot.wait_signal(gui.tray.notified, timeout=3000) as told:
        gui.tray.show_problem(report)

    notice = told.args[0]
    shown = f"{notice.title} {notice.message}"
    assert "RuntimeError" not in shown and "Traceback" not in shown and "Task" not in shown
    assert "keeps serving" in notice.message


def test_verifys_own_lock_conflicts_raise_no_notice(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    refused = LockRefused(ORDER, datetime.now(UTC), "L2", "the order is held by another lock (L1)")

    dialog = _open_verify_quietly(gui.window, gui.bridge, gui.tray)
    with qtbot.assert_not_emitted(gui.tray.notified, wait=100):
        gui.signals.domain_event.emit(refused)
    assert _open_verify_quietly(gui.window, gui.bridge, gui.tray) is dialog  # brought forward, counted once

    dialog.close()
    qtbot.waitUntil(lambda: gui.window.findChild(VerifyDialog) is None, timeout=5000)
    QApplication.processEvents()
    with qtbot.wait_signal(gui.tray.notified, timeout=3000) as told:
        gui.signals.domain_event.emit(refused)
    assert told.args[0].title == "Order could not be locked"


def test_the_first_run_box_names_no_environment_variable_or_command(
    qloop: asyncio.AbstractEventLoop, qtbot: QtBot, tmp_path: Path
) -> None:
    problem = str(
        ConfigError(
            [
                ("EPOS_BRIDGE_API_KEY", "no Dojo API key: enter it in Settings → API key (kept in the OS keyring), "
                 "or set EPOS_BRIDGE_API_KEY for a service"),
            ]
        )
    )  # fmt: skip
    keystore = KeyStore(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    asking = qloop.create_task(_settings_before_start(problem, keystore, tmp_path / "settings.json", IconLibrary()))

    def visible_box() -> QMessageBox | None:
        return next((w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()), None)

    qtbot.waitUntil(lambda: visible_box() is not None, timeout=5000)
    box = visible_box()
    assert box is not None
    assert "EPOS_BRIDGE_" not in box.text() and "API key" in box.text()
    box.accept()
    qtbot.waitUntil(
        lambda: any(isinstance(w, SettingsDialog) and w.isVisible() for w in QApplication.topLevelWidgets()),
        timeout=5000,
    )
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, SettingsDialog) and w.isVisible())
    assert "EPOS_BRIDGE_" not in dialog.toolTip()
    dialog.reject()
    qtbot.waitUntil(asking.done, timeout=5000)
    assert asking.result() is False
