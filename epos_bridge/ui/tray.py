"""The tray icon: at a glance, whether card payments work — and a nudge when they don't.

:class:`TrayController` shows the connection state's icon (with an orange badge while
something needs attention), a tooltip in words, a menu (Open status window, Settings…,
Reconnect, Quit) and desktop notifications. *Which* notifications, and when the badge shows,
is decided by :class:`epos_bridge.services.notifications.NotificationRules` (pure, no Qt): the
controller only feeds it the bridge's signals and a 1 s tick, and renders its answers.

Some desktops have no system tray (and the offscreen platform used by the tests never has
one). Then the status window is the main window: shown at start, its menu bar carries the
same actions, closing it quits, and notices go to its status bar. If the tray host is simply
late at login, the controller keeps retrying for a while and moves into the tray when it appears.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMenu, QMessageBox, QSystemTrayIcon

from epos_bridge.domain.events import DomainEvent, OrderFacts
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.host.crash import CrashReport
from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.services.notifications import Notice, NotificationRules
from epos_bridge.ui.actions import make_action
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.dialogs import confirm
from epos_bridge.ui.icons import IconLibrary, icon_key
from epos_bridge.ui.status_window import StatusWindow
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import plain_tooltip
from epos_bridge.ui.words import STATE_NAMES, format_money, local_time

log = logging.getLogger(__name__)

TRAY_RETRY_MS = 3000
TRAY_RETRIES = 10
"""At login the tray host can start after us: look for it for ~30 s before settling for the window."""
NOTICE_MS = 10_000

_NOTICE_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "critical": QSystemTrayIcon.MessageIcon.Critical,
}


def tray_tooltip(status: ConnectionStatus, environment: str, last_payment: PaymentLogEntry | None) -> str:
    """``Card payments: connected since 14:02 · sandbox · last payment £40.00 T12 14:31``."""
    parts = [f"Card payments: {STATE_NAMES[status.state]} since {local_time(status.since)}", environment]
    if last_payment is not None:
        where = last_payment.table_id or last_payment.order_reference or last_payment.order_id
        amount = format_money(last_payment.amount_value, last_payment.currency)
        parts.append(f"last payment {amount} {where} {local_time(last_payment.at)}")
    return " · ".join(parts)


class TrayController(QObject):
    """Owns the tray icon (or the window-as-main-window fallback) and the notifications.

    Commands leave through signals (``settings_requested``, ``quit_requested``); Reconnect goes
    straight to :meth:`BridgeSignals.reconnect`. ``icon_key`` and ``tooltip`` say what is shown,
    ``notified(Notice)`` tells each notification, so tests need no real tray.
    """

    settings_requested = Signal()
    quit_requested = Signal()
    logs_requested = Signal()
    diagnostics_requested = Signal()
    about_requested = Signal()
    notified = Signal(object)
    icon_changed = Signal(str)
    mode_changed = Signal(str)

    def __init__(
        self,
        signals: BridgeSignals,
        window: StatusWindow,
        icons: IconLibrary,
        *,
        rules: NotificationRules | None = None,
        clock: Clock = utc_now,
        tray_available: Callable[[], bool] = QSystemTrayIcon.isSystemTrayAvailable,
        retry_interval_ms: int = TRAY_RETRY_MS,
        retries: int = TRAY_RETRIES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._signals = signals
        self._window = window
        self._icons = icons
        self._clock = clock
        self._tray_available = tray_available
        self._retries_left = retries
        self.rules = rules or NotificationRules(signals.settings, clock, order_facts=self._order_facts)
        self.tray: QSystemTrayIcon | None = None
        self.mode = "starting"
        self.icon_key = ""
        self.tooltip = ""
        self.last_payment: PaymentLogEntry | None = None
        self._tasks = WidgetTasks(log, "reading the last payment", level=logging.WARNING)

        self.menu = QMenu()
        menu = self.menu
        self.open_action = make_action(self, "&Open status window", self.open_window, to=menu)
        self.settings_action = make_action(self, "&Settings…", self.settings_requested, to=menu)
        self.reconnect_action = make_action(self, "&Reconnect", signals.reconnect, to=menu)
        menu.addSeparator()
        self.logs_action = make_action(self, "Open &logs folder", self.logs_requested, to=menu)
        self.diagnostics_action = make_action(self, "Export &diagnostics…", self.diagnostics_requested, to=menu)
        self.about_action = make_action(self, "&About epos-bridge", self.about_requested, to=menu)
        menu.addSeparator()
        self.quit_action = make_action(self, "&Quit", self.ask_to_quit, to=menu)
        self.quit_box: QMessageBox | None = None
        """The open "Quit?" question, if any (one at a time)."""
        self.menu.setDefaultAction(self.open_action)

        window.settings_requested.connect(self.settings_requested)
        window.quit_requested.connect(self.ask_to_quit)
        window.locks_seen.connect(self._locks_seen)
        signals.status_changed.connect(self._status_changed)
        signals.domain_event.connect(self._domain_event)
        signals.payment.connect(self._payment)
        signals.counter_update.connect(self._counter_update)
        signals.settings_changed.connect(self._settings_changed)

        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(1000)
        self._tick_timer.timeout.connect(self.tick)
        self._retry_timer = QTimer(self)
        self._retry_timer.setInterval(retry_interval_ms)
        self._retry_timer.timeout.connect(self._retry_tray)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Show the tray icon, or the status window as the main window when there is no tray."""
        self.rules.on_status(self._signals.status)
        if self._tray_available():
            self._enter_tray()
        else:
            log.info("no system tray: the status window is the main window")
            self._enter_window_mode()
            if self._retries_left > 0:
                self._retry_timer.start()
        self._refresh()
        self._tick_timer.start()
        self._tasks.spawn(self._load_last_payment())

    def shutdown(self) -> None:
        """Hide the icon and stop the timers (quitting)."""
        self._tick_timer.stop()
        self._retry_timer.stop()
        self._tasks.cancel()
        if self.quit_box is not None:
            self.quit_box.close()  # a SIGTERM or the OS logging out answered it
        if self.tray is not None:
            self.tray.hide()
        self.menu.deleteLater()  # a parentless QMenu (Qt's tray rule) is ours to delete

    def _enter_tray(self) -> None:
        tray = QSystemTrayIcon(self)
        tray.setContextMenu(self.menu)
        tray.activated.connect(self._activated)
        self.tray = tray
        self.icon_key = ""  # force the icon and the tooltip onto the new tray: the state may have
        self.tooltip = ""  # been set before the tray host was ready
        self._refresh()
        tray.show()
        self._window.main_window = False
        self._set_mode("tray")

    def _enter_window_mode(self) -> None:
        self._window.main_window = True
        self._window.bring_to_front()
        self._set_mode("window")

    def _retry_tray(self) -> None:
        self._retries_left -= 1
        if self._tray_available():
            self._retry_timer.stop()
            log.info("the system tray appeared: moving into it")
            self._enter_tray()
        elif self._retries_left <= 0:
            self._retry_timer.stop()
            log.info("still no system tray: staying in the status window")

    def _set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self.mode_changed.emit(mode)

    # --- what is shown --------------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: the offline-for-30-s rule and the badge depend on the clock."""
        self._notify(self.rules.tick(self._clock()))
        self._refresh()

    def _refresh(self) -> None:
        status = self._signals.status
        attention = self.rules.attention
        key = icon_key(status.state, attention)
        self._window.set_attention(attention)
        if key != self.icon_key:
            self.icon_key = key
            if self.tray is not None:
                self.tray.setIcon(self._icons.state_icon(status.state, attention=attention))
            self.icon_changed.emit(key)
        tooltip = tray_tooltip(status, self._signals.settings.environment, self.last_payment)
        if tooltip != self.tooltip:
            self.tooltip = tooltip
            if self.tray is not None:
                self.tray.setToolTip(plain_tooltip(tooltip))  # an order reference is outside text

    def show_problem(self, report: CrashReport) -> None:
        """An unexpected error was caught and logged; staff learn the bridge is still serving.
        The exception itself (``report.summary``) is for the log and support, not for a pop-up."""
        self._notify(
            Notice(
                "epos-bridge hit an unexpected problem",
                "It keeps serving card payments. The details are in the log; if it happens again,"
                " use Export diagnostics… and send the file to support.",
                "warning",
            )
        )

    def _notify(self, notice: Notice | None) -> None:
        if notice is None:
            return
        log.info("notice: %s — %s", notice.title, notice.message)
        if self.tray is not None and self.tray.isVisible() and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(notice.title, notice.message, _NOTICE_ICONS[notice.level], NOTICE_MS)
        else:
            self._window.statusBar().showMessage(f"{notice.title}: {notice.message}", 30_000)
        self.notified.emit(notice)

    # --- what the bridge says -------------------------------------------------------------------

    def _status_changed(self, status: ConnectionStatus) -> None:
        self._notify(self.rules.on_status(status))
        self._refresh()

    def _domain_event(self, event: DomainEvent) -> None:
        self._notify(self.rules.on_domain_event(event))
        self._refresh()

    def _payment(self, entry: PaymentLogEntry) -> None:
        if self.last_payment is None or entry.at >= self.last_payment.at:
            self.last_payment = entry
        self._notify(self.rules.on_payment(entry))
        self._refresh()

    def _counter_update(self, update: Any) -> None:
        self._notify(self.rules.on_counter_update(update))
        self._refresh()

    def _settings_changed(self, settings: Any) -> None:
        self.rules.update_preferences(settings)
        self._refresh()

    def _locks_seen(self) -> None:
        self.rules.acknowledge()
        self._refresh()

    def _order_facts(self, order_id: str) -> OrderFacts | None:
        held = self._signals.lock_board.current.get(order_id)
        return held.order if held is not None else None

    async def _load_last_payment(self) -> None:
        entries = await self._signals.payments(limit=1)
        if entries and (self.last_payment is None or entries[0].at > self.last_payment.at):
            self.last_payment = entries[0]
            self._refresh()

    # --- commands -------------------------------------------------------------------------------

    def open_window(self) -> None:
        self._window.bring_to_front()

    def ask_to_quit(self) -> None:
        """Quit only when staff confirm: while the bridge is closed no card machine reaches the till."""
        if self.quit_box is not None:
            self.quit_box.raise_()
            self.quit_box.activateWindow()
            return
        self._window.bring_to_front()
        self.quit_box = confirm(
            self._window,
            "Quit epos-bridge?",
            "Card payments stop when epos-bridge quits: card machines, Pay at Table and online orders"
            " cannot reach the till until it runs again.",
            self._quit_confirmed,
            yes="Quit",
            no="Keep running",
            on_no=self._quit_declined,
        )

    def _quit_confirmed(self) -> None:
        self.quit_box = None
        self.quit_requested.emit()

    def _quit_declined(self) -> None:
        self.quit_box = None

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # One click opens the window (Trigger); a double click is two of those on some desktops.
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_window()
