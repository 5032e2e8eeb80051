"""The tray app's wiring: QApplication + qasync loop + bridge + signals + window + tray.

Composition only. The bridge itself is built by the caller (``epos_bridge.app``), because the
UI sits below the composition root in the import layers and must not import ``app`` or the
simulator: the caller passes ``open_bridge``, an async context manager factory that builds an
*unstarted* bridge and cleans up after it (for the demo: the temporary venue, the simulator
and its flows). :func:`run_gui` starts the bridge, shows the UI, and on Quit stops the bridge
cleanly (close frame sent, in-flight requests finished) before leaving the context — so the
demo's simulator stops after the bridge.

Everything runs on one thread: qasync runs asyncio on Qt's event loop, so bridge callbacks,
Qt signals and widget updates never race, and every I/O call is awaited, never blocking paint.
No nested ``exec()`` (dialogs use ``open()``): a nested Qt loop would re-enter asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import qasync
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from epos_bridge.config import ConfigError, KeyStore, default_settings_path
from epos_bridge.host.crash import CrashHandler
from epos_bridge.host.garbage import tune_for_serving, untune
from epos_bridge.host.instance import AlreadyServing
from epos_bridge.protocol.redaction import KnownSecrets
from epos_bridge.ui.bridge_signals import BridgeLike, BridgeSignals
from epos_bridge.ui.captured_alert import CapturedAlert
from epos_bridge.ui.dialogs import inform
from epos_bridge.ui.garbage import GuiThreadGarbageCollector
from epos_bridge.ui.icons import IconLibrary
from epos_bridge.ui.network_watch import NetworkWatch
from epos_bridge.ui.single_instance import RaiseServer
from epos_bridge.ui.status_window import StatusWindow
from epos_bridge.ui.support import export_diagnostics, open_logs_folder, show_about
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import plain_tooltip
from epos_bridge.ui.tray import TrayController
from epos_bridge.ui.verify_dialog import VerifiableBridge, VerifyDialog, open_verify
from epos_bridge.ui.words import problem_words

log = logging.getLogger(__name__)

APP_NAME = "EPOS Bridge"


class RunnableBridge(VerifiableBridge, BridgeLike, Protocol):
    @property
    def crashes(self) -> CrashHandler: ...
    @property
    def secrets(self) -> KnownSecrets: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


OpenBridge = Callable[[], AbstractAsyncContextManager[RunnableBridge]]


@dataclass
class GuiParts:
    """What :func:`run_gui` built, for ``on_started`` (tests, diagnostics)."""

    bridge: RunnableBridge
    signals: BridgeSignals
    window: StatusWindow
    tray: TrayController
    quit: Callable[[], None]


def application(argv: list[str] | None = None) -> QApplication:
    """The one QApplication (reused when one exists, as under pytest-qt)."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("epos-bridge")
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("epos-bridge")
    # Quitting is ours to do (stop the bridge first), never Qt's when a window closes.
    app.setQuitOnLastWindowClosed(False)
    return app


def run_gui(
    open_bridge: OpenBridge,
    *,
    demo: bool = False,
    keystore: KeyStore | None = None,
    settings_path: Path | None = None,
    on_started: Callable[[GuiParts], None] | None = None,
    argv: list[str] | None = None,
    raise_channel: str | None = None,
) -> int:
    """Run the tray app until Quit; returns the exit code (0, or 2 when the bridge cannot be built).

    ``keystore``/``settings_path`` are where the Settings dialog saves (the demo should pass
    throwaway ones so it never touches the real keyring or settings file).
    """
    app = application(argv)
    icons = IconLibrary()
    app.setWindowIcon(icons.app_icon())
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    collector_before = tune_for_serving()  # before the GUI-thread collector copies the thresholds
    collector = GuiThreadGarbageCollector()
    collector.start()
    try:
        with loop:
            return int(
                loop.run_until_complete(
                    _serve(
                        open_bridge,
                        icons,
                        demo,
                        keystore,
                        settings_path or default_settings_path(),
                        on_started,
                        raise_channel,
                    )
                )
            )
    finally:
        collector.stop()
        untune(collector_before)
        asyncio.set_event_loop(None)


class _Support(QObject):
    """Crash reports (from any thread) arrive here as a queued signal, then reach the tray."""

    crashed = Signal(object)

    def __init__(self, raise_server: RaiseServer | None, network: NetworkWatch | None = None) -> None:
        super().__init__()
        self.raise_server = raise_server
        self.network = network
        self.tasks = WidgetTasks(log, "exporting diagnostics")

    def close(self) -> None:
        if self.raise_server is not None:
            self.raise_server.close()
        if self.network is not None:
            self.network.close()


def _wire_support(
    bridge: RunnableBridge,
    signals: BridgeSignals,
    window: StatusWindow,
    tray: TrayController,
    raise_channel: str | None,
) -> _Support:
    """Logs folder, diagnostics, About, crash reports, network changes and the second-launch doorbell."""
    support = _Support(
        RaiseServer(raise_channel, window.bring_to_front) if raise_channel else None,
        NetworkWatch(signals.network_changed),
    )
    bridge.crashes.install(asyncio.get_running_loop())
    support.crashed.connect(tray.show_problem)
    bridge.crashes.set_notify(support.crashed.emit)
    tray.logs_requested.connect(lambda: open_logs(window, bridge))
    window.connection_tab.logs_requested.connect(lambda: open_logs(window, bridge))
    tray.about_requested.connect(lambda: show_about(window, bridge.settings.environment))

    async def export() -> None:
        try:
            path = await export_diagnostics(window, bridge)
        except Exception as exc:  # shown in words; support can still collect the logs folder
            log.exception("diagnostics export failed")
            window.statusBar().showMessage(f"Diagnostics could not be written: {problem_words(exc)}", 30_000)
            return
        if path is not None:
            window.statusBar().showMessage(f"Diagnostics saved to {path} (no secrets inside)", 30_000)

    tray.diagnostics_requested.connect(lambda: support.tasks.spawn(export()))
    return support


def open_logs(window: StatusWindow, bridge: Any) -> None:
    """The logs folder in the file browser; where the till has none, its path, to copy."""
    log_dir = bridge.settings.log_dir
    if not open_logs_folder(log_dir, bridge.secrets):
        inform(window, "Logs folder", f"No file browser could be opened on this PC. The logs are in:\n\n{log_dir}")


async def _serve(
    open_bridge: OpenBridge,
    icons: IconLibrary,
    demo: bool,
    keystore: KeyStore | None,
    settings_path: Path,
    on_started: Callable[[GuiParts], None] | None,
    raise_channel: str | None = None,
) -> int:
    quit_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, quit_requested.set)
    while True:
        try:
            async with open_bridge() as bridge:
                signals = BridgeSignals(bridge)
                window = StatusWindow(signals, icons)
                if demo:
                    window.setWindowTitle(window.windowTitle() + " (demo with the Dojo simulator)")
                tray = TrayController(signals, window, icons)
                captured_alert = CapturedAlert(signals, parent=window)  # before start: a resumed capture shows
                tray.quit_requested.connect(quit_requested.set)
                verify = functools.partial(_open_verify_quietly, window, bridge, tray)
                window.verify_requested.connect(verify)
                tray.settings_requested.connect(
                    functools.partial(
                        open_settings, window, signals, keystore or KeyStore(), settings_path, on_verify=verify
                    )
                )
                support = _wire_support(bridge, signals, window, tray, raise_channel)
                await bridge.start()
                tray.start()
                window.payments_tab.reload()
                if on_started is not None:
                    on_started(GuiParts(bridge, signals, window, tray, quit_requested.set))
                await quit_requested.wait()
                log.info("quitting: finishing requests in flight, then closing the connection")
                tray.shutdown()
                for dialog in window.findChildren(VerifyDialog):
                    dialog.close()  # stops following flows before the bridge stops
                captured_alert.shutdown()
                window.shutdown()
                window.hide()
                await bridge.stop()
                signals.detach()
                support.close()
                window.deleteLater()
            return 0
        except (ConfigError, ValueError, AlreadyServing) as exc:
            log.error("the bridge cannot start: %s", exc)
            # First run, or a setting that went bad: the installer fixes it here, not in a file.
            if not await _settings_before_start(str(exc), keystore or KeyStore(), settings_path, icons):
                return 2


def _open_verify_quietly(window: StatusWindow, bridge: Any, tray: TrayController) -> VerifyDialog:
    """Open Verify; while it is open its flows' lock conflicts (the EPOS tester locks orders on
    purpose) raise no notices for staff."""
    already_open = window.findChild(VerifyDialog)
    dialog = open_verify(window, bridge)
    if dialog is not already_open:
        tray.rules.verification_running(True)
        dialog.destroyed.connect(lambda: tray.rules.verification_running(False))
    return dialog


async def _settings_before_start(problem: str, keystore: KeyStore, settings_path: Path, icons: IconLibrary) -> bool:
    """Show the Settings dialog with what stops the bridge; True when the installer saved."""
    from epos_bridge.config import BridgeSettings, load
    from epos_bridge.ui.settings_dialog import SettingsDialog, build_settings_service, staff_words

    problem = staff_words(problem)  # the log keeps the installer's version (variables, commands)
    try:
        current = load(settings_path=settings_path, keystore=keystore)
    except ConfigError:
        current = BridgeSettings()
    service = build_settings_service(keystore, settings_path)
    dialog = SettingsDialog(current, service, service.installed_adapters)
    dialog.setWindowIcon(icons.app_icon())
    dialog.setWindowTitle(f"{APP_NAME} — set up before starting")
    dialog.setToolTip(plain_tooltip(problem))
    box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, f"The bridge cannot start yet:\n\n{problem}")
    box.setTextFormat(Qt.TextFormat.PlainText)  # the problem may quote a setting's value
    box.setInformativeText("Enter the missing settings now; the bridge starts as soon as you save.")
    box.open()
    shown = asyncio.Event()
    box.finished.connect(lambda _: shown.set())
    await shown.wait()
    done = asyncio.Event()
    dialog.finished.connect(lambda _: done.set())
    dialog.open()
    await done.wait()
    return dialog.result_settings is not None


def _after_save(window: StatusWindow, new: Any) -> None:
    """Start at login follows the saved setting (the OS entry is written or removed now)."""
    from epos_bridge.host import autostart

    try:
        autostart.apply(bool(new.start_at_login))
    except Exception as exc:  # a locked-down till may refuse; say so, the rest is saved
        log.warning("start at login could not be changed: %s", exc)
        window.statusBar().showMessage(
            f"Settings saved; start at login could not be changed: {problem_words(exc)}", 30_000
        )
        return
    window.statusBar().showMessage("Settings saved and applied", 10_000)


def open_settings(
    window: StatusWindow,
    signals: BridgeSignals,
    keystore: KeyStore,
    settings_path: Path,
    *,
    on_verify: Callable[[], object] | None = None,
) -> None:
    """Open the Settings dialog (window-modal, non-blocking); Save applies to the running bridge.
    With ``on_verify``, a successful key Test offers Verify with Dojo… (the running bridge)."""
    from epos_bridge.ui.settings_dialog import SettingsDialog, build_settings_service

    service = build_settings_service(keystore, settings_path, apply=signals.apply_settings)
    dialog = SettingsDialog(
        signals.settings, service, service.installed_adapters, parent=window, can_verify=on_verify is not None
    )
    dialog.saved.connect(lambda new: _after_save(window, new))
    if on_verify is not None:
        dialog.verify_requested.connect(on_verify)
    dialog.finished.connect(dialog.deleteLater)
    window.bring_to_front()
    dialog.open()
