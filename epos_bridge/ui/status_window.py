"""The status window: what staff check between covers, readable on a 1366×768 till screen.

Four tabs, all reachable by keyboard (Alt+C/P/L/T, Ctrl+1…4, Ctrl+Tab):

* **Connection** — the state in words ("Connected — card payments work"), since when, the
  gateway, ids, sandbox/production, the capabilities Dojo routes to us, the last error, the
  POS events still waiting to reach Dojo and the last delivery problem, and a Reconnect button.
* **Payments** — the payment log, live, with Today/All, a search box, Export CSV and Refund… (a
  matched refund of the selected payment on a terminal).
* **Locks** — the orders Dojo holds right now with a live countdown, and what happened to locks.
* **Terminal** — open orders, Take card payment…, Unlinked refund…, and the live terminal
  session (:mod:`epos_bridge.ui.terminal_panel`).

The window only renders: it gets a :class:`BridgeSignals` (state and commands) and an
:class:`IconLibrary`; payment-log queries are awaited on the asyncio side (qasync), so the GUI
thread never waits for the disk. Results arrive as signals tests can wait for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QCloseEvent, QFont, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import RegistrationState
from epos_bridge.domain.events import DomainEvent, LockRefused
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.services.activity import HeldLockView, LockHistoryEntry, PaymentLogEntry
from epos_bridge.services.notifications import format_money
from epos_bridge.services.pos_events import RelayStatus
from epos_bridge.ui.alerts import CaptureAlertBanner
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.icons import IconLibrary, icon_key
from epos_bridge.ui.table_model import ModelIndex, RowTableModel
from epos_bridge.ui.terminal_panel import REFUNDABLE, TERMINAL_EMPTY_TEXT, TerminalPanel
from epos_bridge.ui.text import PlainLabel, plain_tooltip

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

TICK_MS = 1000
SEARCH_DEBOUNCE_MS = 250

TAB_CONNECTION, TAB_PAYMENTS, TAB_LOCKS, TAB_TERMINAL = range(4)


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- words staff read (pure: unit-testable without widgets) -----------------------------------


def local_time(at: datetime, *, seconds: bool = False) -> str:
    """``14:02`` in the till's local time zone (the wire and the log keep UTC)."""
    return at.astimezone().strftime("%H:%M:%S" if seconds else "%H:%M")


def describe_status(status: ConnectionStatus, now: datetime) -> str:
    """One line that says whether card payments work, and what happens next."""
    state = status.state
    if state is ConnectionState.CONNECTED:
        return "Connected — card payments work"
    if state is ConnectionState.AUTH_FAILED:
        return "Dojo rejected the API key — open Settings"
    if state is ConnectionState.STOPPING:
        return "Stopping — finishing requests in progress"
    if state is ConnectionState.CONNECTING:
        return f"Connecting to Dojo (attempt {status.attempt})" if status.attempt > 1 else "Connecting to Dojo…"
    if status.next_retry_at is not None:
        seconds = max(0, round((status.next_retry_at - now).total_seconds()))
        return f"Reconnecting in {seconds} s (attempt {status.attempt + 1})"
    return "Not connected — card payments do not work"


def describe_since(status: ConnectionStatus) -> str:
    return f"since {local_time(status.since)}"


def describe_registration(registration: RegistrationState) -> str:
    """Capabilities implemented here versus registered at Dojo, in words."""
    report = registration.report
    if report is None:
        if registration.error:
            return f"Not checked: {registration.error}"
        return "Checking with Dojo…"
    if report.in_sync:
        return f"In sync — Dojo routes all {len(report.matching)} implemented capabilities here"
    parts = []
    if report.missing_at_dojo:
        names = ", ".join(sorted(c.value for c in report.missing_at_dojo))
        parts.append(f"Missing at Dojo (Dojo will not call these): {names}")
    if report.extra_at_dojo:
        names = ", ".join(sorted(c.value for c in report.extra_at_dojo))
        parts.append(f"Registered at Dojo but not implemented: {names}")
    return "\n".join(parts)


def describe_environment(environment: str) -> str:
    return {"sandbox": "Sandbox (test payments)", "production": "Production (real payments)"}.get(
        environment, "Unknown (check the API key)"
    )


def start_of_today(now: datetime) -> datetime:
    """Local midnight of ``now``'s day, in UTC: the payment log's "Today"."""
    local = now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def payment_matches(entry: PaymentLogEntry, since: datetime | None, search: str) -> bool:
    """The store's filter, for payments that arrive live (same fields as ``PaymentLogStore``)."""
    if since is not None and entry.at < since:
        return False
    needle = search.strip().casefold()
    if not needle:
        return True
    fields = (
        entry.order_reference,
        entry.display_name,
        entry.table_id,
        entry.payment_intent_id,
        entry.status,
        entry.product,
        entry.device_id,
    )
    return any(needle in value.casefold() for value in fields if value) or entry.order_id == search.strip()


def order_label(reference: str | None, display_name: str | None, order_id: str) -> str:
    if reference and display_name:
        return f"{reference} ({display_name})"
    return reference or display_name or order_id


def describe_outbox_depth(status: RelayStatus) -> str:
    """Read after its form label: "POS events waiting: 3 (Dojo hears of these till changes once sent)"."""
    if status.depth == 0:
        return "0"
    return f"{status.depth} (Dojo hears of these changes on the till once they are sent)"


def describe_outbox_error(status: RelayStatus) -> str:
    """The last delivery problem in words, with what happens next (the relay retries by itself)."""
    if not status.last_error:
        return "none"
    return f"{status.last_error} — the bridge keeps retrying; nothing is lost"


def countdown(seconds: int) -> str:
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes}:{rest:02d}"


# --- models -------------------------------------------------------------------------------------


class PaymentTableModel(RowTableModel[PaymentLogEntry]):
    """Payment-log lines, newest first; a status update replaces its row (by paymentIntentId)."""

    HEADERS = ("Time", "Order", "Table", "Amount", "Tip", "Payment intent", "Status", "Product", "Device")

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(entry, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == 0:
            return entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        return None

    @staticmethod
    def _text(entry: PaymentLogEntry, column: int) -> str:
        match column:
            case 0:
                return local_time(entry.at, seconds=True)
            case 1:
                return order_label(entry.order_reference, entry.display_name, entry.order_id)
            case 2:
                return entry.table_id or ""
            case 3:
                return format_money(entry.amount_value, entry.currency)
            case 4:
                return format_money(entry.tips_value, entry.currency) if entry.tips_value else ""
            case 5:
                return entry.payment_intent_id
            case 6:
                return entry.status
            case 7:
                return entry.product or ""
            case _:
                return entry.device_id or ""

    def entries(self) -> list[PaymentLogEntry]:
        return list(self._rows)

    def set_entries(self, entries: Sequence[PaymentLogEntry]) -> None:
        self.beginResetModel()
        self._rows = sorted(entries, key=lambda e: e.at, reverse=True)
        self.endResetModel()

    def row_of(self, payment_intent_id: str) -> int | None:
        for row, entry in enumerate(self._rows):
            if entry.payment_intent_id == payment_intent_id:
                return row
        return None

    def replace(self, entry: PaymentLogEntry) -> bool:
        """Replace the row of the same payment intent; False when it is not shown."""
        row = self.row_of(entry.payment_intent_id)
        if row is None:
            return False
        self._rows[row] = entry
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))
        return True

    def insert(self, entry: PaymentLogEntry) -> None:
        """A new payment: placed by time (normally at the top)."""
        row = next((i for i, e in enumerate(self._rows) if e.at <= entry.at), len(self._rows))
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.insert(row, entry)
        self.endInsertRows()


class LockTableModel(RowTableModel[HeldLockView]):
    """The locks Dojo holds now, with the seconds left until each expires."""

    HEADERS = ("Order", "Table", "Lock id", "Held by", "Expires in")
    EXPIRES_COLUMN = 4

    def __init__(self, clock: Clock, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = clock

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        held = self._rows[index.row()]
        match index.column():
            case 0:
                return order_label(held.order.reference, held.order.display_name, held.order_id)
            case 1:
                return held.order.table_id or ""
            case 2:
                return held.lock_id
            case 3:
                r = held.requester
                return " · ".join(p for p in (r.dojo_requesting_product, r.device_id, r.waiter_id) if p)
            case _:
                return countdown(held.seconds_left(self._clock()))

    def locks(self) -> list[HeldLockView]:
        return list(self._rows)

    def set_locks(self, locks: Sequence[HeldLockView]) -> None:
        self.beginResetModel()
        self._rows = sorted(locks, key=lambda held: held.locked_at)
        self.endResetModel()

    def tick(self) -> None:
        """Repaint the countdown column."""
        if self._rows:
            self.dataChanged.emit(
                self.index(0, self.EXPIRES_COLUMN), self.index(len(self._rows) - 1, self.EXPIRES_COLUMN)
            )


def history_line(entry: LockHistoryEntry) -> str:
    order = order_label(entry.order.reference, entry.order.display_name, entry.order_id)
    table = f" · table {entry.order.table_id}" if entry.order.table_id else ""
    lock = f" · {entry.lock_id}" if entry.lock_id else ""
    detail = f" — {entry.detail}" if entry.detail else ""
    return f"{local_time(entry.at, seconds=True)}  {entry.activity.value:<8}  {order}{table}{lock}{detail}"


# --- the window -----------------------------------------------------------------------------------


class StatusWindow(QMainWindow):
    """Renders the bridge; asks for settings, reconnect and quit through signals.

    ``main_window``: with no system tray the window *is* the app (closing it quits);
    otherwise closing only hides it.
    """

    settings_requested = Signal()
    verify_requested = Signal()
    """Verify with Dojo… (the EPOS tester tool, ``ui/verify_dialog.py``)."""
    quit_requested = Signal()
    locks_seen = Signal()
    """The Locks tab was shown to staff: unseen lock conflicts are now seen."""
    payments_loaded = Signal(int)
    """The payment table was (re)loaded from the log: the number of rows."""
    exported = Signal(int, str)
    """Export CSV finished: rows written and the file."""
    export_failed = Signal(str)

    def __init__(
        self,
        signals: BridgeSignals,
        icons: IconLibrary,
        *,
        clock: Clock = utc_now,
        file_dialog: Callable[[QWidget, str, str, str], tuple[str, str]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._signals = signals
        self._icons = icons
        self._clock = clock
        # Looked up at call time so a test's monkeypatch of QFileDialog.getSaveFileName applies.
        self._file_dialog = file_dialog
        self._tasks: set[asyncio.Task[Any]] = set()
        self._load_generation = 0
        self._arrived_while_loading: dict[str, PaymentLogEntry] | None = None
        self._attention = False
        self.main_window = False
        self.icon_key = ""

        self.setWindowTitle("EPOS Bridge — Dojo card payments")
        self.resize(1180, 680)
        self.setMinimumSize(760, 480)

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_connection_tab(), "&Connection")
        self.tabs.addTab(self._build_payments_tab(), "&Payments")
        self.tabs.addTab(self._build_locks_tab(), "&Locks")
        self.tabs.addTab(self._build_terminal_tab(), "&Terminal")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.capture_alert = CaptureAlertBanner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.capture_alert)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._build_actions()
        self.statusBar().showMessage("Starting…")

        signals.status_changed.connect(self._show_status)
        signals.registration_changed.connect(self._show_registration)
        signals.settings_changed.connect(self._show_settings)
        signals.payment.connect(self._payment_arrived)
        signals.domain_event.connect(self._domain_event)
        signals.outbox_changed.connect(self._show_outbox)
        signals.counter_update.connect(self.capture_alert.show_update)

        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_MS)
        self._tick_timer.timeout.connect(self.tick)
        self._tick_timer.start()

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.reload_payments)

        self._show_status(signals.status)
        self._show_registration(signals.registration)
        self._show_settings(signals.settings)
        self._show_outbox(signals.outbox)
        self._refresh_locks()

    # --- building -------------------------------------------------------------------------------

    def _build_connection_tab(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        head = QHBoxLayout()
        self.state_icon = PlainLabel()
        self.state_icon.setFixedSize(56, 56)
        self.state_label = PlainLabel()
        self.state_label.setObjectName("stateLabel")
        font = QFont(self.state_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.state_label.setFont(font)
        self.state_label.setWordWrap(True)
        self.since_label = PlainLabel()
        words = QVBoxLayout()
        words.addWidget(self.state_label)
        words.addWidget(self.since_label)
        head.addWidget(self.state_icon)
        head.addLayout(words, 1)
        outer.addLayout(head)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        selectable = Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        self.gateway_label = PlainLabel()
        self.software_house_label = PlainLabel()
        self.reseller_label = PlainLabel()
        self.environment_label = PlainLabel()
        self.capabilities_label = PlainLabel()
        self.capabilities_label.setWordWrap(True)
        self.last_error_label = PlainLabel()
        self.last_error_label.setWordWrap(True)
        for label in (self.gateway_label, self.software_house_label, self.reseller_label, self.last_error_label):
            label.setTextInteractionFlags(selectable)
        form.addRow(PlainLabel("Gateway:"), self.gateway_label)
        form.addRow(PlainLabel("Software house id:"), self.software_house_label)
        form.addRow(PlainLabel("Reseller id:"), self.reseller_label)
        form.addRow(PlainLabel("Environment:"), self.environment_label)
        form.addRow(PlainLabel("Capabilities:"), self.capabilities_label)
        form.addRow(PlainLabel("Last error:"), self.last_error_label)
        # POS events (contract §5.2): Dojo learns about till-side changes only through these.
        self.outbox_depth_label = PlainLabel()
        self.outbox_error_label = PlainLabel()
        self.outbox_error_label.setWordWrap(True)
        self.outbox_error_label.setTextInteractionFlags(selectable)
        form.addRow(PlainLabel("POS events waiting:"), self.outbox_depth_label)
        form.addRow(PlainLabel("Last delivery problem:"), self.outbox_error_label)
        outer.addLayout(form)

        buttons = QHBoxLayout()
        self.reconnect_button = QPushButton("&Reconnect now")
        self.reconnect_button.setToolTip("Drop the connection to Dojo and connect again at once (Ctrl+R)")
        self.reconnect_button.clicked.connect(self._reconnect)
        self.settings_button = QPushButton("Se&ttings…")
        self.settings_button.clicked.connect(self.settings_requested)
        self.verify_button = QPushButton("Verify with &Dojo…")
        self.verify_button.setToolTip("Run Dojo's EPOS tester tool flows against this till (sandbox keys only)")
        self.verify_button.clicked.connect(self.verify_requested)
        buttons.addWidget(self.reconnect_button)
        buttons.addWidget(self.settings_button)
        buttons.addWidget(self.verify_button)
        buttons.addStretch(1)
        outer.addLayout(buttons)
        outer.addStretch(1)
        return page

    def _build_payments_tab(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        bar = QHBoxLayout()
        self.period_combo = QComboBox()
        self.period_combo.addItems(["Today", "All"])
        period_label = PlainLabel("Sho&w:")
        period_label.setBuddy(self.period_combo)
        self.search_edit = QLineEdit()
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setPlaceholderText("Order, table, payment intent, status, product or device")
        search_label = PlainLabel("&Search:")
        search_label.setBuddy(self.search_edit)
        self.export_button = QPushButton("&Export CSV…")
        self.refund_button = QPushButton("&Refund…")
        self.refund_button.setToolTip("Refund the selected card payment on a terminal (matched refund)")
        self.refund_button.setEnabled(False)
        bar.addWidget(period_label)
        bar.addWidget(self.period_combo)
        bar.addSpacing(12)
        bar.addWidget(search_label)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.refund_button)
        bar.addWidget(self.export_button)
        outer.addLayout(bar)

        self.payment_model = PaymentTableModel(self)
        self.payment_view = QTableView()
        self.payment_view.setModel(self.payment_model)
        self._configure_table(self.payment_view)
        self.payment_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.payment_view.customContextMenuRequested.connect(self._payment_menu)
        self.payment_view.selectionModel().selectionChanged.connect(self._update_refund)
        self.payment_model.modelReset.connect(self._update_refund)
        self.payment_model.dataChanged.connect(self._update_refund)
        self.refund_action = QAction("&Refund on a terminal…", self)
        self.refund_action.setEnabled(False)
        self.refund_action.triggered.connect(self.refund_selected)
        outer.addWidget(self.payment_view, 1)
        self.payment_count_label = PlainLabel()
        outer.addWidget(self.payment_count_label)

        self.period_combo.currentIndexChanged.connect(self.reload_payments)
        self.search_edit.textChanged.connect(self._search_timer_restart)
        self.search_edit.returnPressed.connect(self.reload_payments)
        self.export_button.clicked.connect(self.export_csv)
        self.refund_button.clicked.connect(self.refund_selected)
        return page

    def _build_locks_tab(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        splitter = QSplitter(Qt.Orientation.Vertical)
        current = QGroupBox("Orders Dojo holds now")
        current_layout = QVBoxLayout(current)
        self.lock_model = LockTableModel(self._clock, self)
        self.lock_view = QTableView()
        self.lock_view.setModel(self.lock_model)
        self._configure_table(self.lock_view)
        self.locks_empty_label = PlainLabel("No order is locked by a card machine or Dojo product right now.")
        current_layout.addWidget(self.lock_view)
        current_layout.addWidget(self.locks_empty_label)
        history = QGroupBox("Lock history (newest first)")
        history_layout = QVBoxLayout(history)
        self.lock_history = QListWidget()
        self.lock_history.setAlternatingRowColors(True)
        history_layout.addWidget(self.lock_history)
        splitter.addWidget(current)
        splitter.addWidget(history)
        outer.addWidget(splitter)
        return page

    def _build_terminal_tab(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        self.terminal_panel = TerminalPanel(self._signals, clock=self._clock)
        self.terminal_panel.session_started.connect(lambda _session: self.tabs.setCurrentIndex(TAB_TERMINAL))
        # Shown until the first session: what the panel's right half is for.
        self.terminal_empty_label = self.terminal_panel.session_panel.empty_label
        outer.addWidget(self.terminal_panel, 1)
        return page

    @staticmethod
    def _configure_table(view: QTableView) -> None:
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setAlternatingRowColors(True)
        view.setWordWrap(False)
        view.verticalHeader().setVisible(False)
        view.horizontalHeader().setStretchLastSection(True)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        view.setTabKeyNavigation(False)  # Tab leaves the table, as keyboard users expect

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&Bridge")
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.settings_requested)
        self.reconnect_action = QAction("&Reconnect", self)
        self.reconnect_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reconnect_action.triggered.connect(self._reconnect)
        self.export_action = QAction("&Export payments as CSV…", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(self.export_csv)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))  # StandardKey.Quit is empty on some desktops
        self.quit_action.triggered.connect(self.quit_requested)
        menu.addAction(self.settings_action)
        menu.addAction(self.reconnect_action)
        menu.addAction(self.export_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)

        view = self.menuBar().addMenu("&View")
        names = ("&Connection", "&Payments", "&Locks", "&Terminal")
        self.tab_actions: list[QAction] = []
        for number, name in enumerate(names):
            action = QAction(name, self)
            action.setShortcut(QKeySequence(f"Ctrl+{number + 1}"))
            action.triggered.connect(lambda _=False, tab=number: self.tabs.setCurrentIndex(tab))
            view.addAction(action)
            self.tab_actions.append(action)
        find = QAction("&Find payment", self)
        find.setShortcut(QKeySequence("Ctrl+F"))
        find.triggered.connect(self._focus_search)
        view.addAction(find)
        # Ctrl+Tab / Ctrl+Shift+Tab work from anywhere in the window, not only inside the tabs.
        next_tab = QAction("Next tab", self)
        next_tab.setShortcut(QKeySequence("Ctrl+Tab"))
        next_tab.triggered.connect(lambda: self._step_tab(1))
        previous_tab = QAction("Previous tab", self)
        previous_tab.setShortcut(QKeySequence("Ctrl+Shift+Tab"))
        previous_tab.triggered.connect(lambda: self._step_tab(-1))
        self.addAction(next_tab)
        self.addAction(previous_tab)

    # --- connection -----------------------------------------------------------------------------

    @property
    def attention(self) -> bool:
        return self._attention

    def set_attention(self, attention: bool) -> None:
        """The tray controller's verdict (the window shows the same badge in no-tray mode)."""
        if attention != self._attention:
            self._attention = attention
            self._show_status(self._signals.status)

    def _show_status(self, status: ConnectionStatus) -> None:
        now = self._clock()
        self.state_label.setText(describe_status(status, now))
        self.since_label.setText(describe_since(status))
        self.last_error_label.setText(status.last_error or "none")
        key = icon_key(status.state, self._attention)
        if key != self.icon_key:
            self.icon_key = key
            icon = self._icons.state_icon(status.state, attention=self._attention)
            self.setWindowIcon(icon)
            self.state_icon.setPixmap(icon.pixmap(56, 56))
        self.statusBar().showMessage(f"{describe_status(status, now)} ({describe_since(status)})")

    def _show_registration(self, registration: RegistrationState) -> None:
        self.capabilities_label.setText(describe_registration(registration))

    def _show_settings(self, settings: BridgeSettings) -> None:
        self.gateway_label.setText(settings.ws_url)
        self.software_house_label.setText(settings.software_house_id or "Not set — open Settings")
        self.reseller_label.setText(settings.reseller_id or "not set")
        self.environment_label.setText(describe_environment(settings.environment))

    def _reconnect(self) -> None:
        self._signals.reconnect()
        self.statusBar().showMessage("Reconnecting to Dojo…", 5000)

    def _show_outbox(self, status: RelayStatus) -> None:
        self.outbox_depth_label.setText(describe_outbox_depth(status))
        self.outbox_error_label.setText(describe_outbox_error(status))
        self.outbox_error_label.setStyleSheet("color: #b3261e;" if status.last_error else "")

    # --- payments -------------------------------------------------------------------------------

    def _search_timer_restart(self) -> None:
        self._search_timer.start()

    def _focus_search(self) -> None:
        self.tabs.setCurrentIndex(TAB_PAYMENTS)
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def filter_since(self) -> datetime | None:
        return start_of_today(self._clock()) if self.period_combo.currentIndex() == 0 else None

    def reload_payments(self) -> None:
        """Query the payment log for the current filter (asynchronously; ``payments_loaded`` tells)."""
        self._search_timer.stop()
        self._load_generation += 1
        self._arrived_while_loading = {}
        self._spawn(self._load(self._load_generation, self.filter_since(), self.search_edit.text()))

    async def _load(self, generation: int, since: datetime | None, search: str) -> None:
        entries = await self._signals.payments(since=since, search=search.strip() or None)
        if generation != self._load_generation:
            return  # a newer filter was chosen while this query ran
        arrived = self._arrived_while_loading or {}
        self._arrived_while_loading = None
        known = {e.payment_intent_id for e in entries}
        self.payment_model.set_entries(entries)
        # Payments told live while the query ran may be missing from its answer.
        for entry in arrived.values():
            if entry.payment_intent_id in known:
                self.payment_model.replace(entry)
            else:
                self.payment_model.insert(entry)
        self._show_payment_count()
        self.payments_loaded.emit(self.payment_model.rowCount())

    def _payment_arrived(self, entry: PaymentLogEntry) -> None:
        if self.payment_model.replace(entry):
            pass
        elif payment_matches(entry, self.filter_since(), self.search_edit.text()):
            self.payment_model.insert(entry)
        else:
            return
        if self._arrived_while_loading is not None:
            self._arrived_while_loading[entry.payment_intent_id] = entry
        self._show_payment_count()

    def _show_payment_count(self) -> None:
        count = self.payment_model.rowCount()
        shown = "today" if self.period_combo.currentIndex() == 0 else "in the log"
        search = f' matching "{self.search_edit.text().strip()}"' if self.search_edit.text().strip() else ""
        self.payment_count_label.setText(f"{count} payment{'s' if count != 1 else ''} {shown}{search}")

    def selected_payment(self) -> PaymentLogEntry | None:
        rows = self.payment_view.selectionModel().selectedRows()
        entries = self.payment_model.entries()
        return entries[rows[0].row()] if rows and rows[0].row() < len(entries) else None

    def _update_refund(self) -> None:
        entry = self.selected_payment()
        refundable = entry is not None and entry.status in REFUNDABLE
        self.refund_button.setEnabled(refundable)
        self.refund_action.setEnabled(refundable)
        if entry is not None and not refundable:
            self.refund_button.setToolTip(plain_tooltip(f"A {entry.status} payment cannot be refunded"))
        else:
            self.refund_button.setToolTip("Refund the selected card payment on a terminal (matched refund)")

    def _payment_menu(self, position: QPoint) -> None:
        index = self.payment_view.indexAt(position)
        if not index.isValid():
            return
        self.payment_view.selectRow(index.row())
        menu = QMenu(self)
        menu.addAction(self.refund_action)
        menu.popup(self.payment_view.viewport().mapToGlobal(position))

    def refund_selected(self) -> None:
        """Refund… on a payment-log row: the Terminal tab takes it from here (dialog, live panel)."""
        entry = self.selected_payment()
        if entry is not None and entry.status in REFUNDABLE:
            self.terminal_panel.refund_payment(entry)

    def export_csv(self) -> None:
        """Ask where to save, then write the payments shown (the current filter) as CSV."""
        stamp = self._clock().astimezone().strftime("%Y-%m-%d")
        ask = self._file_dialog or QFileDialog.getSaveFileName
        path, _ = ask(self, "Export payments", f"payments-{stamp}.csv", "CSV files (*.csv)")
        if not path:
            return
        destination = Path(path)
        if destination.suffix.lower() != ".csv":
            destination = destination.with_name(destination.name + ".csv")
        self._spawn(self._export(destination, self.payment_model.entries()))

    async def _export(self, destination: Path, entries: list[PaymentLogEntry]) -> None:
        try:
            count = await self._signals.export_csv(destination, entries)
        except OSError as exc:
            message = f"Could not write {destination}: {exc.strerror or exc}. Choose another folder."
            self.statusBar().showMessage(message)
            self.export_failed.emit(message)
            return
        self.statusBar().showMessage(f"Exported {count} payment{'s' if count != 1 else ''} to {destination}")
        self.exported.emit(count, str(destination))

    # --- locks ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: drop expired locks, repaint countdowns and the retry countdown."""
        gone = self._signals.expire_locks(self._clock())
        if gone:
            self._refresh_locks()
        else:
            self.lock_model.tick()
        status = self._signals.status
        if status.next_retry_at is not None:
            self.state_label.setText(describe_status(status, self._clock()))

    def _domain_event(self, event: DomainEvent) -> None:
        # The board has already applied the event (the bridge does that before telling anyone).
        self._refresh_locks()
        if isinstance(event, LockRefused) and self._locks_visible():
            self.locks_seen.emit()

    def _refresh_locks(self) -> None:
        board = self._signals.lock_board
        self.lock_model.set_locks(list(board.current.values()))
        self.locks_empty_label.setVisible(not board.current)
        lines = [history_line(entry) for entry in reversed(board.history)]
        if lines != [self.lock_history.item(i).text() for i in range(self.lock_history.count())]:
            self.lock_history.clear()
            self.lock_history.addItems(lines)

    def _locks_visible(self) -> bool:
        return self.isVisible() and not self.isMinimized() and self.tabs.currentIndex() == TAB_LOCKS

    def _tab_changed(self, index: int) -> None:
        if index == TAB_LOCKS and self.isVisible():
            self.locks_seen.emit()
        if index == TAB_TERMINAL:
            self.terminal_panel.reload_orders()

    def _step_tab(self, step: int) -> None:
        self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % self.tabs.count())

    def show_tab(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    # --- window ---------------------------------------------------------------------------------

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
            event.accept()
            self.quit_requested.emit()
        else:
            event.ignore()
            self.hide()

    def shutdown(self) -> None:
        """Stop timers and cancel queries still running (before the loop closes)."""
        self._tick_timer.stop()
        self._search_timer.stop()
        self.terminal_panel.shutdown()
        for task in list(self._tasks):
            task.cancel()

    # --- asyncio --------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("a status-window task failed: %s", error, exc_info=error)
            self.statusBar().showMessage(f"Something went wrong: {error}")


__all__ = [
    "TERMINAL_EMPTY_TEXT",
    "LockTableModel",
    "PaymentTableModel",
    "StatusWindow",
    "describe_registration",
    "describe_status",
    "start_of_today",
]
