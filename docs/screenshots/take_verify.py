"""Take the screenshots of Verify with Dojo (the EPOS tester tool), on the demo app.

Run it under a real X screen of a till's size, like ``take.py``::

    Xvfb :93 -screen 0 1366x768x24 &
    DISPLAY=:93 .venv/bin/python docs/screenshots/take_verify.py

It starts the demo GUI as ``epos-bridge demo`` does, presses Verify with Dojo… on the Connection
tab, holds Pay at Table mid-way (the simulated gateway keeps the bridge's answer to the second
payment back) to show steps arriving live, runs every flow, shows a flow failing because a
capability is not registered, renders the report, and shows Settings offering Verify after a
successful Test. One PNG per view next to this file; exit code 0 when every PNG was written.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from PySide6.QtWidgets import QTextBrowser
from take import RecordingSimulator, connected_window, save, settle, take, until  # the sibling script's helpers

from epos_bridge.protocol.capabilities import Capability
from epos_bridge.services.verification_report import render_html
from epos_bridge.ui.gui import GuiParts
from epos_bridge.ui.settings_dialog import SettingsDialog
from epos_bridge.ui.status_window import TAB_CONNECTION
from epos_bridge.ui.verify_dialog import VerifyDialog

log = logging.getLogger("screenshots")

NO_PRODUCT_FLOWS_S = 3600.0
"""The demo's own product flows stay quiet, so the tester's flows are all that run."""
DIALOG_SIZE = (1180, 660)


def select(dialog: VerifyDialog, name: str) -> None:
    names = [dialog.flow_list.item(row).text().split("\n")[0] for row in range(dialog.flow_list.count())]
    dialog.flow_list.setCurrentRow(names.index(name))


async def shoot(parts: GuiParts) -> None:
    window = parts.window
    simulator = RecordingSimulator.instances[-1]
    screen = await connected_window(parts)
    window.show_tab(TAB_CONNECTION)
    await until(lambda: window.connection_tab.capabilities_label.text().startswith("In sync"), "the capabilities shown")
    await settle()
    save(window, "verify-connection-tab.png")

    # --- the dialog, with Pay at Table held mid-way ------------------------------------------------
    window.connection_tab.verify_button.click()
    await until(lambda: bool(window.findChildren(VerifyDialog)), "the Verify dialog")
    dialog = window.findChildren(VerifyDialog)[-1]
    dialog.resize(*DIALOG_SIZE)
    dialog.move(screen.center() - dialog.rect().center())
    await until(lambda: dialog.run_button.isEnabled(), "the flows from the tester tool")
    picker = dialog.form("Pay at Table").fields["tableId"].picker
    await until(lambda: picker is not None and picker.count() > 0, "tables from the POS")

    gate = asyncio.Event()
    request = simulator.gateway.request
    payments = 0

    async def held(method: str, params: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        nonlocal payments
        if method == "RecordOrderPaymentByIdV1":
            payments += 1
            if payments == 2:
                await gate.wait()
        return await request(method, params, **options)

    simulator.gateway.request = held  # type: ignore[method-assign]
    select(dialog, "Pay at Table")
    await settle()
    dialog.run_button.click()
    await until(
        lambda: any(name.startswith("Pay part 2") and status == "running…" for name, status, _ in dialog.step_rows()),
        "Pay at Table half way",
        30,
    )
    await settle(0.6)
    save(dialog, "verify-running.png")
    finished = asyncio.Event()
    dialog.run_finished.connect(lambda _runs: finished.set())
    gate.set()
    await finished.wait()
    simulator.gateway.request = request  # type: ignore[method-assign]

    # --- every flow ----------------------------------------------------------------------------------
    finished.clear()
    dialog.run_all_button.click()
    await asyncio.wait_for(finished.wait(), 120)
    select(dialog, "Bookings")
    await settle()
    save(dialog, "verify-all-flows.png")

    # --- a capability that is not registered -------------------------------------------------------
    simulator.rest.set_registered_names([c.value for c in Capability if c is not Capability.GET_ORDER_BY_ID])
    finished.clear()
    select(dialog, "Get Order")
    dialog.run_button.click()
    await asyncio.wait_for(finished.wait(), 30)
    await settle()
    save(dialog, "verify-not-registered.png")
    simulator.rest.set_registered_names([c.value for c in Capability])

    # --- the report the venue keeps ------------------------------------------------------------------
    browser = QTextBrowser()
    browser.setHtml(render_html(dialog.report()))
    browser.resize(900, 680)
    browser.show()
    await settle()
    save(browser, "verify-report.png")
    browser.close()
    dialog.close()
    await settle()

    # --- Settings offers Verify after a successful Test ---------------------------------------------------
    parts.tray.settings_requested.emit()
    await until(lambda: bool(window.findChildren(SettingsDialog)), "the Settings dialog")
    settings = window.findChildren(SettingsDialog)[-1]
    settings.resize(max(settings.width(), 760), settings.height())
    settings.test_button.click()
    await until(lambda: settings.verify_button.isVisible() and not settings.busy, "the key test")
    await settle(0.6)
    save(settings, "settings-verify.png")
    settings.reject()
    await settle()


def main() -> int:
    return take(shoot, NO_PRODUCT_FLOWS_S)


if __name__ == "__main__":
    sys.exit(main())
