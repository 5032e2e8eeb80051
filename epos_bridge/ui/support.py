"""What support needs without remote access: the logs folder, a diagnostics zip, the About box.

The zip is gathered on the asyncio side and written off the GUI thread; every member is
redacted by :mod:`epos_bridge.diagnostics` (the API key never leaves the till).
"""

from __future__ import annotations

import asyncio
import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget
from shiboken6 import isValid

from epos_bridge import __version__
from epos_bridge.diagnostics import build_diagnostics, default_zip_name, gather
from epos_bridge.host.private_files import private_dir
from epos_bridge.protocol.redaction import KnownSecrets
from epos_bridge.ui.dialogs import FileDialog, FileQuestion, ask_file, inform
from epos_bridge.ui.launch import open_folder

log = logging.getLogger(__name__)

DOJO_DOCS = "https://docs.dojo.tech"
"""Shown as text in the About box; the bridge never opens a network link by itself."""


def open_logs_folder(log_dir: Path, secrets: KnownSecrets) -> bool:
    """The logs folder in the file browser, which gets no secret in its environment."""
    private_dir(log_dir)
    return open_folder(log_dir, secrets)


async def ask(parent: QWidget, question: FileQuestion, file_dialog: FileDialog = ask_file) -> str:
    """Await a file chooser's answer (``""`` when cancelled) without a nested event loop: the
    task waits on a future the dialog's callback resolves (see :mod:`epos_bridge.ui.dialogs`)."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def answered(path: str, _filter: str) -> None:
        if not answer.done():
            answer.set_result(path)

    dialog = file_dialog(parent, question, answered)
    try:
        return await answer
    finally:
        if isinstance(dialog, QWidget) and not answer.done() and isValid(dialog):
            dialog.close()  # the task was cancelled (Quit): the question goes with it


async def export_diagnostics(parent: QWidget, bridge: Any, *, file_dialog: FileDialog = ask_file) -> Path | None:
    """Ask where, gather, write; returns the zip's path (``None`` when cancelled)."""
    suggested = str(Path.home() / default_zip_name())
    question = FileQuestion("Export diagnostics", suggested, "Zip archives (*.zip)")
    chosen = await ask(parent, question, file_dialog)
    if not chosen:
        return None
    sources = await gather(
        bridge,
        log_dir=bridge.settings.log_dir,
        requests=bridge.recent_requests,
        crashes=bridge.crashes.recent,
        secrets=bridge.secrets.all(),
    )
    path = await asyncio.to_thread(build_diagnostics, Path(chosen), sources)
    log.info("diagnostics exported to %s", path)
    return path


def show_about(parent: QWidget, environment: str) -> QMessageBox:
    """The About box, opened without a nested loop (``QMessageBox.about`` would run one)."""
    return inform(
        parent,
        "About epos-bridge",
        f"<h3>epos-bridge {__version__}</h3>"
        "<p>Connects this venue's POS to Dojo: card machines, Pay at Table, Bookings, Order and Pay.</p>"
        f"<p>Connected to Dojo's <b>{html.escape(environment)}</b> environment.</p>"
        f"<p>Dojo developer documentation: {DOJO_DOCS}<br>"
        "Support: use <i>Export diagnostics…</i> in the tray menu and send the zip to your installer.</p>",
        rich=True,
    )
