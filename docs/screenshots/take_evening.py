"""Take the screenshots of the till's evening (issue 25, item 8), on the demo app with a tray host.

Run it under a real X screen of a till's size, with a system tray on it (``trayer`` is a small
one), like ``take.py``::

    Xvfb :93 -screen 0 1366x768x24 &
    DISPLAY=:93 trayer --edge top --align right --widthtype request --height 28 &
    DISPLAY=:93 .venv/bin/python docs/screenshots/take_evening.py

It starts the demo GUI as ``epos-bridge demo`` does, waits for the icon to sit in the tray,
opens the window with one real click on it (``xdotool``), then shows: today's takings in the payment log, the
Connection tab naming the POS adapter, database and logs folder, the Terminal tab's search over
the orders that still owe, a card captured at the counter that the till then refused (the alert
naming the order and amount, with its one-click refund), the Quit question, and the headline
once Dojo is unreachable. Whole-screen grabs (the tray and the windows as staff see them) except
where one window is the point. Exit code 0 when every PNG was written.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import sys

from PySide6.QtCore import QPoint
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox
from take import OUT, RecordingSimulator, connected_window, save, settle, take, until  # the sibling script's helpers

from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.protocol.entities import Money
from epos_bridge.ui.captured_alert import CapturedAlert
from epos_bridge.ui.gui import GuiParts
from epos_bridge.ui.status_window import TAB_CONNECTION, TAB_PAYMENTS, TAB_TERMINAL

log = logging.getLogger("screenshots")

XDOTOOL = shutil.which("xdotool") or "xdotool"
FLOW_INTERVAL_S = 1.5
WARM_UP_S = 6.0


def save_screen(name: str) -> None:
    """The whole X screen: the tray host's panel and every window on it."""
    pixmap = QGuiApplication.primaryScreen().grabWindow(0)
    path = OUT / name
    if not pixmap.save(str(path)):
        raise OSError(f"could not write {path}")
    log.info("saved %s (%dx%d)", path.name, pixmap.width(), pixmap.height())


async def shoot(parts: GuiParts) -> None:
    window, tray, signals = parts.window, parts.tray, parts.signals
    simulator = RecordingSimulator.instances[-1]
    await until(lambda: tray.mode == "tray" and tray.tray is not None and tray.tray.isVisible(), "the tray icon", 40)
    await connected_window(parts)
    window.hide()
    await settle(1.0)

    # --- one click on the tray icon opens the window (a real click, through the X server) -----------
    assert tray.tray is not None
    icon = tray.tray.geometry()
    if icon.isEmpty():
        raise RuntimeError("the tray host gave the icon no place on the screen")
    save_screen("evening-tray.png")
    centre = icon.center()
    click = await asyncio.create_subprocess_exec(XDOTOOL, "mousemove", str(centre.x()), str(centre.y()), "click", "1")
    if await click.wait() != 0:
        raise RuntimeError("xdotool could not click the tray icon")
    await until(window.isVisible, "the window after one click on the tray icon")
    log.info("letting the simulated products play for %.0f s", WARM_UP_S)
    await asyncio.sleep(WARM_UP_S)

    # --- today's takings ---------------------------------------------------------------------------
    window.show_tab(TAB_PAYMENTS)
    tab = window.payments_tab
    await until(lambda: tab.today_total_label.text().startswith("Today: £"), "today's takings")
    await settle()
    save(window, "evening-payments-today.png")

    # --- which POS, and where the logs are ----------------------------------------------------------
    window.show_tab(TAB_CONNECTION)
    await settle()
    save(window, "evening-connection-pos.png")

    # --- the Terminal tab: what still owes, newest first, searchable --------------------------------
    window.show_tab(TAB_TERMINAL)
    panel = window.terminal_panel
    panel.reload_orders()
    box = panel.orders
    await until(lambda: box.refresh_button.isEnabled() and box.orders_model.rowCount() > 1, "orders that owe")
    await settle()
    save(window, "evening-terminal-owing.png")
    box.search_edit.setText("table 1")
    await settle()
    save(window, "evening-terminal-search.png")
    box.search_edit.clear()

    # --- a captured card the till then refused: the alert names the order and the amount -------------
    orders = [o for o in box.orders_model.orders() if o.table and o.table != "Collection"]
    order = next(o for o in orders if not o.reference.startswith("T20-"))  # T20 is open on another till
    terminals = [t for t in await signals.terminals() if t.status == "Available"]
    alert = window.findChild(CapturedAlert)
    await signals.start_sale(order.order_id, terminals[0].id, Money(value=order.outstanding, currency_code="GBP"))
    database = parts.bridge.settings.db_path  # type: ignore[attr-defined]  # the real Bridge
    with sqlite3.connect(database) as conn:  # the till finalizes the order while the card is on the terminal
        conn.execute("UPDATE orders SET status = 'Finalized' WHERE id = ?", [int(order.order_id)])
    await until(lambda: alert is not None and alert.isVisible(), "the captured-not-on-till alert", 40)
    await settle(0.8)
    save_screen("evening-captured-alert.png")
    assert alert is not None
    alert.hide()

    # --- Quit asks first -------------------------------------------------------------------------------
    tray.quit_action.trigger()
    await until(lambda: tray.quit_box is not None and tray.quit_box.isVisible(), "the Quit question")
    box_ = tray.quit_box
    assert box_ is not None
    box_.move(window.geometry().center() - box_.rect().center() + QPoint(0, -60))
    await settle(0.6)
    save_screen("evening-quit-confirm.png")
    keep = next(b for b in box_.buttons() if b.text() == "Keep running")
    keep.click()
    await until(lambda: tray.quit_box is None, "Keep running")

    # --- Dojo unreachable: the headline says card payments are down ---------------------------------------
    window.show_tab(TAB_CONNECTION)
    await simulator.gateway.stop()
    await until(lambda: signals.status.state is not ConnectionState.CONNECTED, "the drop")
    await until(
        lambda: window.connection_tab.state_label.text().startswith("Card payments are down"), "the offline headline"
    )
    await settle(1.2)
    save_screen("evening-offline.png")
    for leftover in window.findChildren(QMessageBox):
        leftover.close()


def main() -> int:
    return take(shoot, FLOW_INTERVAL_S)


if __name__ == "__main__":
    sys.exit(main())
