"""Take the documentation screenshots of the tray app, on the demo venue and the Dojo simulator.

Run it under a real X screen of a till's size, for example::

    Xvfb :93 -screen 0 1366x768x24 &
    DISPLAY=:93 .venv/bin/python docs/screenshots/take.py

It starts the demo GUI the way ``epos-bridge demo`` does (``epos_bridge.app._demo_bridge`` +
``epos_bridge.ui.gui.run_gui``), lets the simulated Dojo products play for a few seconds so the
payment log and the lock history fill up, then drives the real widgets (a card payment stopped
at "Enter PIN", a signature check, the tray menu, Settings) and saves one PNG per view next to
this file. Exit code 0 when every PNG was written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import keyring.backends.fail
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from epos_bridge import app as bridge_app
from epos_bridge.config import KeyStore
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.protocol.redaction import KnownSecrets
from epos_bridge.sim import simulator as simulator_module
from epos_bridge.ui.gui import GuiParts, run_gui
from epos_bridge.ui.settings_dialog import SettingsDialog
from epos_bridge.ui.status_window import TAB_CONNECTION, TAB_LOCKS, TAB_PAYMENTS, TAB_TERMINAL
from epos_bridge.ui.terminal_panel import TerminalPanel

log = logging.getLogger("screenshots")

OUT = Path(__file__).resolve().parent
FLOW_INTERVAL_S = 1.5
WARM_UP_S = 7.0
WINDOW_SIZE = (1180, 680)
HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "tm_pat_waiter_3", "waiterId": "W3"}


class RecordingSimulator(simulator_module.DojoSimulator):
    """The demo's simulator, remembered so the script can script a signature session.

    ``_demo_bridge`` imports ``DojoSimulator`` when it is called, so replacing the module's name
    before ``run_gui`` starts is enough; nothing else changes.
    """

    instances: ClassVar[list[RecordingSimulator]] = []

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        RecordingSimulator.instances.append(self)


async def until(check: Callable[[], bool], what: str, within_s: float = 15.0) -> None:
    """Wait (letting Qt and asyncio run) until ``check()``; fail loudly with ``what``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def settle(seconds: float = 0.4) -> None:
    """Let layouts and paints finish before a grab. Only by awaiting: a processEvents() here would
    run other asyncio tasks inside this one, which asyncio refuses (and the relay task is lost)."""
    await asyncio.sleep(seconds)


def save(widget: QWidget, name: str) -> None:
    pixmap = widget.grab()
    path = OUT / name
    if not pixmap.save(str(path)):
        raise OSError(f"could not write {path}")
    log.info("saved %s (%dx%d)", path.name, pixmap.width(), pixmap.height())


def in_utc(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def choose_order(panel: TerminalPanel, preferred: str) -> str:
    """``preferred`` if it still has something to pay (the flows keep settling orders meanwhile),
    else the table order with the most left to pay. T20-0020 is open on another till in the demo
    venue: the POS would refuse to record a payment on it."""
    panel.reload_orders()
    box = panel.orders
    await until(lambda: box.refresh_button.isEnabled() and box.orders_model.rowCount() > 0, "open orders")
    orders = [
        o
        for o in box.orders_model.orders()
        if o.outstanding > 0 and o.table and o.table != "Collection" and not o.reference.startswith("T20-")
    ]
    if not orders:
        raise RuntimeError("no open order with anything left to pay")
    best = next((o for o in orders if o.order_id == preferred), None) or max(orders, key=lambda o: o.outstanding)
    box.select_order(best.order_id)
    return best.order_id


async def connected_window(parts: GuiParts) -> QRect:
    """The status window at its documented size, centred, once the demo bridge is connected and
    registered; returns the screen's free area (``take_verify.py`` centres its dialog on it)."""
    window, signals = parts.window, parts.signals
    window.resize(*WINDOW_SIZE)
    screen = QGuiApplication.primaryScreen().availableGeometry()
    window.move(screen.center() - window.rect().center())
    window.bring_to_front()
    await until(lambda: signals.status.state is ConnectionState.CONNECTED, "the connection to the simulator")
    await until(lambda: signals.registration.report is not None, "the capability registration")
    return screen


async def shoot(parts: GuiParts) -> None:
    window, tray = parts.window, parts.tray
    simulator = RecordingSimulator.instances[-1]
    await connected_window(parts)
    log.info("letting the simulated products play for %.0f s", WARM_UP_S)
    await asyncio.sleep(WARM_UP_S)

    # A lock held right now (a waiter's card machine at table 12), so the Locks view has a row.
    page = await simulator.send("SearchOrdersV1", {"headers": HEADERS, "payableOnly": True, "cursor": {"limit": 100}})
    held = next((o for o in page["result"]["data"] if o.get("details", {}).get("dineIn")), None)
    if held is not None:
        lock = {"headers": HEADERS, "orderId": held["id"], "lockId": "lock_docs_1", "expiry": in_utc(150)}
        await simulator.send("CreateOrderLockV1", lock)

    window.show_tab(TAB_CONNECTION)
    await settle()
    save(window, "status-connection.png")

    window.show_tab(TAB_LOCKS)
    await settle(1.0)
    save(window, "status-locks.png")

    # --- a card payment, stopped at "Enter PIN" -------------------------------------------------
    panel = window.terminal_panel
    session = panel.session_panel
    counter = parts.bridge.counter  # type: ignore[attr-defined]  # the real Bridge
    window.show_tab(TAB_TERMINAL)
    await choose_order(panel, "9")
    await settle()
    panel.take_payment()
    dialog = panel.payment_dialog
    if dialog is None:
        raise RuntimeError("the payment dialog did not open")
    await until(lambda: dialog.chosen_terminal() is not None and dialog.start_button.isEnabled(), "a free terminal")
    await settle()
    save(dialog, "take-payment.png")

    dialog.start_button.click()
    await until(lambda: session.headline_label.text() == "Present card", "Present card")
    counter._poll_s = 6.0  # hold the next step ("Enter PIN") on screen
    await until(lambda: session.headline_label.text() == "Enter PIN", "Enter PIN")
    await settle(0.6)
    save(window, "status-terminal.png")
    await until(lambda: session.last_update is not None and session.last_update.final, "the approval", 20)
    counter._poll_s = 0.5
    await settle()
    save(window, "status-terminal-approved.png")

    # --- a signature check -----------------------------------------------------------------------
    simulator.rest.next_session_script("signature")
    await choose_order(panel, "8")
    panel.take_payment()
    dialog = panel.payment_dialog
    if dialog is None:
        raise RuntimeError("the payment dialog did not open")
    await until(lambda: dialog.chosen_terminal() is not None and dialog.start_button.isEnabled(), "a free terminal")
    dialog.start_button.click()
    await until(lambda: session.signature_dialog is not None and session.signature_dialog.isVisible(), "signature")
    await settle(2.2)  # the waiting clock shows a few seconds
    signature = session.signature_dialog
    assert signature is not None
    save(signature, "signature.png")
    signature.accept_button.click()
    await until(lambda: session.last_update is not None and session.last_update.final, "the signature outcome")
    await settle()

    # --- the payment log, with the counter payments just taken (Refund… starts from a row) -------
    window.show_tab(TAB_PAYMENTS)
    window.payments_tab.period_combo.setCurrentIndex(1)  # All
    await until(lambda: window.payments_tab.payment_model.rowCount() > 0, "payments in the log")
    await settle()
    entries = window.payments_tab.payment_model.entries()
    counter_row = next((i for i, e in enumerate(entries) if e.product == "PayAtCounter"), 0)
    window.payments_tab.payment_view.selectRow(counter_row)
    await settle()
    save(window, "status-payments.png")

    # --- the tray menu and Settings --------------------------------------------------------------
    menu = tray.menu
    menu.popup(window.mapToGlobal(QPoint(40, 40)))
    await settle()
    save(menu, "tray-menu.png")
    menu.hide()

    tray.settings_requested.emit()
    await until(lambda: bool(window.findChildren(SettingsDialog)), "the Settings dialog")
    settings = window.findChildren(SettingsDialog)[-1]
    settings.resize(max(settings.width(), 760), settings.height())  # room for the long demo paths
    await settle(1.0)
    save(settings, "settings.png")
    settings.reject()
    await settle()


def take(shoot: Callable[[GuiParts], Awaitable[None]], flow_interval_s: float) -> int:
    """Run the demo GUI (product flows every ``flow_interval_s``) and ``shoot`` once it has started;
    the exit code: 2 without an X screen, 1 when ``shoot`` failed. ``take_verify.py`` uses it too."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not os.environ.get("DISPLAY"):
        print("Run under an X screen: Xvfb :93 -screen 0 1366x768x24 & DISPLAY=:93 …", file=sys.stderr)
        return 2
    simulator_module.DojoSimulator = RecordingSimulator  # type: ignore[misc]
    outcome: dict[str, BaseException | None] = {"error": None}

    def started(parts: GuiParts) -> None:
        async def run() -> None:
            try:
                await shoot(parts)
            except BaseException as exc:
                outcome["error"] = exc
                log.exception("taking the screenshots failed")
            finally:
                parts.quit()

        tasks.append(asyncio.get_running_loop().create_task(run()))

    tasks: list[asyncio.Task[None]] = []  # keeps the task referenced while it runs
    with tempfile.TemporaryDirectory(prefix="epos-bridge-screenshots-") as tmp:
        folder = Path(tmp)
        code = run_gui(
            lambda: bridge_app._demo_bridge(folder, flow_interval_s, KnownSecrets([simulator_module.DEMO_API_KEY])),
            demo=True,
            keystore=KeyStore(keyring.backends.fail.Keyring()),  # type: ignore[no-untyped-call]
            settings_path=folder / "settings.json",
            on_started=started,
            argv=[sys.argv[0], "-platform", "xcb"],
        )
    if outcome["error"] is not None:
        return 1
    return code


def main() -> int:
    return take(shoot, FLOW_INTERVAL_S)


if __name__ == "__main__":
    sys.exit(main())
