"""The status window: what staff check between covers, readable on a 1366×768 till screen.

Four tabs, all reachable by keyboard (Alt+C/P/L/T, Ctrl+1…4, Ctrl+Tab), each its own class:

* **Connection** — :class:`~epos_bridge.ui.connection_tab.ConnectionTab`;
* **Payments** — :class:`~epos_bridge.ui.payments_tab.PaymentsTab`;
* **Locks** — :class:`~epos_bridge.ui.locks_tab.LocksTab`;
* **Terminal** — :class:`~epos_bridge.ui.terminal_panel.TerminalPanel`.

The window composes them and keeps what belongs to the window: the menus and shortcuts, the
state icon with the attention badge, the capture-alert banner (:mod:`epos_bridge.ui.alerts`),
the status bar, tab switching, and telling when staff have seen the Locks tab. It only renders:
it gets a :class:`BridgeSignals` (state and commands) and an :class:`IconLibrary`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QMainWindow, QTabWidget, QVBoxLayout, QWidget

from epos_bridge.domain.events import DomainEvent, LockRefused
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.ui.actions import make_action
from epos_bridge.ui.alerts import CaptureAlertBanner
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.connection_tab import ConnectionTab
from epos_bridge.ui.icons import IconLibrary, icon_key
from epos_bridge.ui.locks_tab import LocksTab
from epos_bridge.ui.payments_tab import FileDialog, PaymentsTab
from epos_bridge.ui.terminal_panel import TerminalPanel
from epos_bridge.ui.words import describe_since, describe_status

TICK_MS = 1000

TAB_CONNECTION, TAB_PAYMENTS, TAB_LOCKS, TAB_TERMINAL = range(4)
TAB_NAMES = ("&Connection", "&Payments", "&Locks", "&Terminal")


class StatusWindow(QMainWindow):
    """Renders the bridge; asks for settings, verification and quit through signals.

    ``main_window``: with no system tray the window *is* the app (closing it quits);
    otherwise closing only hides it.
    """

    settings_requested = Signal()
    verify_requested = Signal()
    """Verify with Dojo… (the EPOS tester tool, ``ui/verify_dialog.py``)."""
    quit_requested = Signal()
    locks_seen = Signal()
    """The Locks tab was shown to staff: unseen lock conflicts are now seen."""

    def __init__(
        self,
        signals: BridgeSignals,
        icons: IconLibrary,
        *,
        clock: Clock = utc_now,
        file_dialog: FileDialog | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._signals = signals
        self._icons = icons
        self._clock = clock
        self._attention = False
        self.main_window = False
        self.icon_key = ""

        self.setWindowTitle("EPOS Bridge — Dojo card payments")
        self.resize(1180, 680)
        self.setMinimumSize(760, 480)

        self.connection_tab = ConnectionTab(signals, clock=clock)
        self.payments_tab = PaymentsTab(signals, clock=clock, file_dialog=file_dialog)
        self.locks_tab = LocksTab(signals, clock=clock)
        self.terminal_panel = TerminalPanel(signals, clock=clock)
        terminal_page = QWidget()  # the panel keeps no margins of its own; the page gives the tab's
        QVBoxLayout(terminal_page).addWidget(self.terminal_panel, 1)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        for page, name in zip(
            (self.connection_tab, self.payments_tab, self.locks_tab, terminal_page), TAB_NAMES, strict=True
        ):
            self.tabs.addTab(page, name)
        self.capture_alert = CaptureAlertBanner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.capture_alert)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self.statusBar().showMessage("Starting…")

        self.tabs.currentChanged.connect(self._tab_changed)
        self.connection_tab.reconnect_requested.connect(self._reconnect)
        self.connection_tab.settings_requested.connect(self.settings_requested)
        self.connection_tab.verify_requested.connect(self.verify_requested)
        self.payments_tab.status_message.connect(self.statusBar().showMessage)
        self.payments_tab.refund_requested.connect(self.terminal_panel.refund_payment)
        self.terminal_panel.session_started.connect(lambda _session: self.show_tab(TAB_TERMINAL))
        signals.status_changed.connect(self._show_status)
        signals.domain_event.connect(self._domain_event)
        signals.counter_update.connect(self.capture_alert.show_update)

        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_MS)
        self._tick_timer.timeout.connect(self.tick)
        self._tick_timer.start()
        self._show_status(signals.status)

    def _build_menus(self) -> None:
        bridge = self.menuBar().addMenu("&Bridge")
        self.settings_action = make_action(self, "&Settings…", self.settings_requested, shortcut="Ctrl+,")
        self.reconnect_action = make_action(self, "&Reconnect", self._reconnect, shortcut="Ctrl+R")
        self.export_action = make_action(
            self, "&Export payments as CSV…", self.payments_tab.export_csv, shortcut="Ctrl+E"
        )
        # Ctrl+Q: StandardKey.Quit is empty on some desktops.
        self.quit_action = make_action(self, "&Quit", self.quit_requested, shortcut="Ctrl+Q")
        bridge.addActions([self.settings_action, self.reconnect_action, self.export_action])
        bridge.addSeparator()
        bridge.addAction(self.quit_action)

        view = self.menuBar().addMenu("&View")
        self.tab_actions = [
            make_action(
                self, name, lambda _=False, tab=number: self.show_tab(tab), shortcut=f"Ctrl+{number + 1}", to=view
            )
            for number, name in enumerate(TAB_NAMES)
        ]
        make_action(self, "&Find payment", self._focus_search, shortcut="Ctrl+F", to=view)
        # Ctrl+Tab / Ctrl+Shift+Tab work from anywhere in the window, not only inside the tabs.
        make_action(self, "Next tab", lambda: self._step_tab(1), shortcut="Ctrl+Tab", to=self)
        make_action(self, "Previous tab", lambda: self._step_tab(-1), shortcut="Ctrl+Shift+Tab", to=self)

    # --- the state at a glance --------------------------------------------------------------------

    @property
    def attention(self) -> bool:
        return self._attention

    def set_attention(self, attention: bool) -> None:
        """The tray controller's verdict (the window shows the same badge in no-tray mode)."""
        if attention != self._attention:
            self._attention = attention
            self._show_status(self._signals.status)

    def _show_status(self, status: ConnectionStatus) -> None:
        key = icon_key(status.state, self._attention)
        if key != self.icon_key:
            self.icon_key = key
            icon = self._icons.state_icon(status.state, attention=self._attention)
            self.setWindowIcon(icon)
            self.connection_tab.show_state_icon(icon)
        words = describe_status(status, self._clock())
        self.statusBar().showMessage(f"{words} ({describe_since(status)})")

    def _reconnect(self) -> None:
        self._signals.reconnect()
        self.statusBar().showMessage("Reconnecting to Dojo…", 5000)

    def tick(self) -> None:
        """Once a second: drop expired locks, repaint countdowns and the retry countdown."""
        self.locks_tab.tick()
        self.connection_tab.tick()

    # --- tabs -------------------------------------------------------------------------------------

    def show_tab(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def _step_tab(self, step: int) -> None:
        self.show_tab((self.tabs.currentIndex() + step) % self.tabs.count())

    def _focus_search(self) -> None:
        self.show_tab(TAB_PAYMENTS)
        self.payments_tab.focus_search()

    def _tab_changed(self, index: int) -> None:
        if index == TAB_LOCKS and self.isVisible():
            self.locks_seen.emit()
        if index == TAB_TERMINAL:
            self.terminal_panel.reload_orders()

    def _domain_event(self, event: DomainEvent) -> None:
        if isinstance(event, LockRefused) and self._locks_visible():
            self.locks_seen.emit()

    def _locks_visible(self) -> bool:
        return self.isVisible() and not self.isMinimized() and self.tabs.currentIndex() == TAB_LOCKS

    # --- window -----------------------------------------------------------------------------------

    def bring_to_front(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.raise_()
        self.activateWindow()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self.tabs.currentIndex() == TAB_LOCKS:
            self.locks_seen.emit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.main_window:
            event.ignore()  # quitting is asked first (the tray's ask_to_quit); "Keep running" keeps it open
            self.quit_requested.emit()
        else:
            event.ignore()
            self.hide()

    def shutdown(self) -> None:
        """Stop timers and cancel queries still running (before the loop closes)."""
        self._tick_timer.stop()
        self.payments_tab.shutdown()
        self.terminal_panel.shutdown()


__all__ = ["TAB_CONNECTION", "TAB_LOCKS", "TAB_PAYMENTS", "TAB_TERMINAL", "StatusWindow"]
