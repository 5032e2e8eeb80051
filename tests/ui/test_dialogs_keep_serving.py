"""Every dialog of the app can stay open while the bridge keeps serving (issue 25, item 1).

Under qasync a modal ``exec()`` (and the static ``QFileDialog.get…``/``QMessageBox.…`` helpers)
runs a nested Qt loop inside the callback that opened it; asyncio then refuses to step any other
task ("Cannot enter into task") and the gateway stops answering while the window says Connected.

Each test opens a dialog the way the app does (tray actions, buttons, the real wiring of
``ui/gui.py``) over a real Bridge and the real simulator, and while it is open sends JSON-RPC
requests from the simulator and waits for their answers. :class:`NestedLoopWatch` is a plain Qt
timer: it fires inside any nested loop, and it can tell one apart deterministically — it fires
while an asyncio task is in the middle of a step, or while the test's own click has not returned.
It then records the dialog and closes it, so a regression fails with the dialog's name instead of
hanging. The last test keeps the blocking calls from coming back into the source.
"""

from __future__ import annotations

import ast
import asyncio
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QLineEdit, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

import epos_bridge
from epos_bridge.config import KeyStore
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.state.payment_log import CSV_COLUMNS
from epos_bridge.ui import gui as gui_module
from epos_bridge.ui.payment_dialogs import TakePaymentDialog
from epos_bridge.ui.settings_dialog import SettingsDialog
from epos_bridge.ui.status_window import TAB_TERMINAL
from epos_bridge.ui.verify_dialog import VerifyDialog, open_verify
from tests.ui.conftest import Gui, Run

pytestmark = pytest.mark.timeout(120)

HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "dialog-test-terminal", "waiterId": "W2"}
ANSWERS_WHILE_OPEN = 3
W = TypeVar("W", bound=QWidget)


class NestedLoopWatch:
    """Records (and closes) any dialog that runs a nested event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._in_click = False
        self.nested: list[str] = []
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        # A Qt timer runs between asyncio steps, never inside one, unless a nested loop runs there.
        if not (self._in_click or asyncio.current_task(self._loop) is not None):
            return
        modal = QApplication.activeModalWidget()
        self.nested.append(type(modal).__name__ if modal is not None else "a nested loop")
        if isinstance(modal, QDialog):
            modal.reject()

    def click(self, action: Callable[[], object]) -> None:
        """Do what staff do (a click, a menu entry); a nested loop in it is caught here."""
        self._in_click = True
        try:
            action()
        finally:
            self._in_click = False

    def stop(self) -> None:
        self._timer.stop()


@pytest.fixture
def watch(qloop: asyncio.AbstractEventLoop) -> Iterator[NestedLoopWatch]:
    watching = NestedLoopWatch(qloop)
    yield watching
    watching.stop()


@pytest.fixture
def app(start_gui: Callable[..., Gui], tmp_path: Path) -> Iterator[Gui]:
    """The demo bridge with the tray app's own wiring of Settings, Verify, diagnostics and About."""
    gui = start_gui()
    support = gui_module._wire_support(gui.bridge, gui.signals, gui.window, gui.tray, None)
    verify = functools.partial(open_verify, gui.window, gui.bridge)
    gui.window.verify_requested.connect(verify)
    keystore = KeyStore(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    gui.tray.settings_requested.connect(
        functools.partial(
            gui_module.open_settings, gui.window, gui.signals, keystore, tmp_path / "settings.json", on_verify=verify
        )
    )
    gui.window.show()
    try:
        yield gui
    finally:
        support.tasks.cancel()
        support.close()
        gui.bridge.crashes.uninstall()


def keeps_answering(run: Run, simulator: DojoSimulator, *dialogs: QWidget) -> None:
    """While ``dialogs`` are open, Dojo's requests are answered (each awaited, none assumed)."""
    for _ in range(ANSWERS_WHILE_OPEN):
        assert all(d.isVisible() for d in dialogs), [type(d).__name__ for d in dialogs if not d.isVisible()]
        answer = run(simulator.send("SearchTablesV1", {"headers": HEADERS}), 10)
        assert "result" in answer, answer
    assert all(d.isVisible() for d in dialogs)


def shown(qtbot: QtBot, kind: type[W], within: QWidget | None = None) -> W:
    """The visible dialog of ``kind`` (over ``within``, or anywhere), once it is open."""
    found: list[W] = []

    def visible() -> bool:
        candidates = within.findChildren(kind) if within is not None else QApplication.topLevelWidgets()
        found[:] = [w for w in candidates if isinstance(w, kind) and w.isVisible()]
        return bool(found)

    qtbot.waitUntil(visible, timeout=10_000)
    return found[-1]


def choose(chooser: QFileDialog, path: Path) -> None:
    """Type the path in the chooser's name field, as staff would, and press Save."""
    name = chooser.findChild(QLineEdit, "fileNameEdit")
    assert isinstance(name, QLineEdit)
    name.setText(str(path))
    chooser.accept()


def test_diagnostics_payment_export_and_about_keep_serving_while_open(
    app: Gui, watch: NestedLoopWatch, simulator: DojoSimulator, run: Run, qtbot: QtBot, tmp_path: Path
) -> None:
    watch.click(app.tray.diagnostics_action.trigger)
    chooser = shown(qtbot, QFileDialog, app.window)
    keeps_answering(run, simulator, chooser)
    choose(chooser, tmp_path / "support.zip")
    qtbot.waitUntil(lambda: "Diagnostics saved to" in app.window.statusBar().currentMessage(), timeout=20_000)
    assert (tmp_path / "support.zip").is_file(), app.window.statusBar().currentMessage()

    watch.click(app.tray.about_action.trigger)
    about = shown(qtbot, QMessageBox, app.window)
    keeps_answering(run, simulator, about)
    about.accept()

    existing = tmp_path / "payments.csv"
    existing.write_text("yesterday's export\n", encoding="utf-8")
    tab = app.window.payments_tab
    watch.click(lambda: qtbot.mouseClick(tab.export_button, Qt.MouseButton.LeftButton))
    chooser = shown(qtbot, QFileDialog, app.window)
    keeps_answering(run, simulator, chooser)
    choose(chooser, existing)
    replace = shown(qtbot, QMessageBox, chooser)  # the file exists: asked without a nested loop
    keeps_answering(run, simulator, chooser, replace)
    with qtbot.wait_signal(tab.exported, timeout=10_000):
        next(b for b in replace.buttons() if b.text() == "Replace").click()
    assert existing.read_text(encoding="utf-8").startswith(",".join(CSV_COLUMNS))  # replaced by the export

    assert watch.nested == []


def test_settings_and_its_browse_keep_serving_while_open(
    app: Gui, watch: NestedLoopWatch, simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    watch.click(app.tray.settings_action.trigger)
    settings = shown(qtbot, SettingsDialog, app.window)
    keeps_answering(run, simulator, settings)

    watch.click(lambda: qtbot.mouseClick(settings.browse_button, Qt.MouseButton.LeftButton))
    browse = shown(qtbot, QFileDialog, settings)
    keeps_answering(run, simulator, settings, browse)
    browse.reject()
    settings.reject()

    assert watch.nested == []


def test_verify_and_its_save_report_keep_serving_while_open(
    app: Gui, watch: NestedLoopWatch, simulator: DojoSimulator, run: Run, qtbot: QtBot, tmp_path: Path
) -> None:
    watch.click(app.window.verify_requested.emit)
    verify = shown(qtbot, VerifyDialog, app.window)
    qtbot.waitUntil(lambda: verify.flow_list.count() > 0 and verify.run_button.isEnabled(), timeout=20_000)
    keeps_answering(run, simulator, verify)
    with qtbot.wait_signal(verify.run_finished, timeout=60_000):
        watch.click(lambda: qtbot.mouseClick(verify.run_button, Qt.MouseButton.LeftButton))

    watch.click(lambda: qtbot.mouseClick(verify.report_button, Qt.MouseButton.LeftButton))
    chooser = shown(qtbot, QFileDialog, verify)
    keeps_answering(run, simulator, verify, chooser)
    with qtbot.wait_signal(verify.report_saved, timeout=20_000):
        choose(chooser, tmp_path / "report.html")
    assert verify.banner.text() == f"Report saved to {tmp_path / 'report.html'}"
    verify.close()

    assert watch.nested == []


def test_the_take_payment_dialog_keeps_serving_while_open(
    app: Gui, watch: NestedLoopWatch, simulator: DojoSimulator, run: Run, qtbot: QtBot
) -> None:
    panel = app.window.terminal_panel
    with qtbot.wait_signal(panel.orders.loaded, timeout=5000):
        app.window.show_tab(TAB_TERMINAL)
    assert panel.orders.select_order("8")
    watch.click(lambda: qtbot.mouseClick(panel.orders.take_payment_button, Qt.MouseButton.LeftButton))
    payment = shown(qtbot, TakePaymentDialog, app.window)
    keeps_answering(run, simulator, payment)
    payment.reject()

    assert watch.nested == []


# --- and they cannot come back -------------------------------------------------------------------

BLOCKING_STATICS = {
    "QFileDialog": {"getSaveFileName", "getOpenFileName", "getOpenFileNames", "getExistingDirectory", "getOpenFileUrl"},
    "QMessageBox": {"about", "aboutQt", "question", "warning", "information", "critical"},
    "QInputDialog": {"getText", "getInt", "getDouble", "getItem", "getMultiLineText"},
    "QColorDialog": {"getColor"},
    "QFontDialog": {"getFont"},
}


def blocking_calls(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr = node.func.attr
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        if attr in {"exec", "exec_"} or (owner is not None and attr in BLOCKING_STATICS.get(owner, ())):
            found.append(f"{name}:{node.lineno}: {owner or '…'}.{attr}()")
    return found


def test_the_scan_finds_each_kind_of_blocking_call() -> None:
    source = "d.exec()\nm.exec_()\nQFileDialog.getSaveFileName(w)\nQMessageBox.question(w)\nQInputDialog.getText(w)\n"
    assert len(blocking_calls(source, "x.py")) == 5
    assert blocking_calls("box.open()\nQMessageBox(w)\n'''d.exec()'''\n", "x.py") == []


def test_no_modal_exec_or_blocking_static_dialog_anywhere_in_the_bridge() -> None:
    root = Path(epos_bridge.__file__).parent
    found: list[Any] = []
    for path in sorted(root.rglob("*.py")):
        found += blocking_calls(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    assert found == []
