"""The Payments tab: the payment log, live, with Today/All, a search box, Export CSV and Refund….

Queries and the export are awaited on the asyncio side (qasync), so the GUI thread never waits
for the disk; results arrive as signals tests can wait for (``loaded``, ``exported``). Payments
told live are placed into the rows shown when they match the current filter. Refund… hands the
selected payment on (``refund_requested``): the Terminal tab takes it from there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from epos_bridge.services.activity import PaymentLogEntry, takings
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.captured_alert import payment_status_words
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.dialogs import FileDialog as FileDialog  # re-exported for the status window
from epos_bridge.ui.dialogs import FileQuestion, ask_file
from epos_bridge.ui.styles import scaled_font
from epos_bridge.ui.table_model import RIGHT_ALIGNED, ModelIndex, RowTableModel, configure_table
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import PlainLabel, plain_tooltip
from epos_bridge.ui.words import (
    describe_takings,
    format_money,
    local_date,
    local_time,
    local_timestamp,
    order_words,
    plural,
    problem_words,
)

log = logging.getLogger(__name__)

SEARCH_DEBOUNCE_MS = 250
TODAY_LIMIT = 100_000
"""Payments read for today's total: far above any venue's day (the log's own cap is per query)."""
REFUNDABLE = frozenset({"Recorded", "Captured"})
"""Payment-log statuses a matched refund can start from (not Refunded, Reversed, Canceled…)."""


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
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ToolTipRole and column == 0:
            return local_timestamp(entry.at)
        return None

    @staticmethod
    def _text(entry: PaymentLogEntry, column: int) -> str:
        match column:
            case 0:
                return local_time(entry.at, seconds=True)
            case 1:
                return order_words(entry.order_reference, entry.display_name, entry.order_id, prefix="")
            case 2:
                return entry.table_id or ""
            case 3:
                return format_money(entry.amount_value, entry.currency)
            case 4:
                return format_money(entry.tips_value, entry.currency) if entry.tips_value else ""
            case 5:
                return entry.payment_intent_id
            case 6:
                return payment_status_words(entry.status)
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


class PaymentsTab(QWidget):
    """The payment log. ``loaded(rows)`` tells each finished (re)load, ``exported(rows, file)``
    and ``export_failed(words)`` each export, ``status_message(words)`` what the window's status
    bar says, ``refund_requested(entry)`` Refund… on a refundable row."""

    loaded = Signal(int)
    exported = Signal(int, str)
    export_failed = Signal(str)
    status_message = Signal(str)
    refund_requested = Signal(object)
    today_total_changed = Signal(str)

    def __init__(
        self,
        signals: BridgeSignals,
        *,
        clock: Clock = utc_now,
        file_dialog: FileDialog | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._signals = signals
        self._clock = clock
        self.file_dialog: FileDialog = file_dialog or ask_file
        """Asks where to export, without a nested event loop (tests may replace it)."""
        self._tasks = WidgetTasks(log, "a payment-log task", on_error=self._failed)
        self._load_generation = 0
        self._arrived_while_loading: dict[str, PaymentLogEntry] | None = None
        self._today_in_log: dict[str, PaymentLogEntry] = {}
        self._told_today: dict[str, PaymentLogEntry] = {}
        """Today's payment-log lines by paymentIntentId, for the total (see _show_today_total)."""

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
        bar = QHBoxLayout()
        bar.addWidget(period_label)
        bar.addWidget(self.period_combo)
        bar.addSpacing(12)
        bar.addWidget(search_label)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.refund_button)
        bar.addWidget(self.export_button)

        self.payment_model = PaymentTableModel(self)
        self.payment_view = QTableView()
        self.payment_view.setModel(self.payment_model)
        configure_table(self.payment_view)
        self.payment_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.refund_action = QAction("&Refund on a terminal…", self)
        self.refund_action.setEnabled(False)
        self.payment_count_label = PlainLabel()
        self.today_total_label = PlainLabel("Today: …")
        self.today_total_label.setObjectName("todayTotal")
        self.today_total_label.setFont(scaled_font(self.today_total_label.font(), 1.15, bold=True))
        self.today_total_label.setToolTip(
            "Card payments through Dojo since midnight that still count (refunds and reversals left out)"
        )
        foot = QHBoxLayout()
        foot.addWidget(self.payment_count_label, 1)
        foot.addWidget(self.today_total_label)

        outer = QVBoxLayout(self)
        outer.addLayout(bar)
        outer.addWidget(self.payment_view, 1)
        outer.addLayout(foot)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.reload)

        self.payment_view.customContextMenuRequested.connect(self._payment_menu)
        self.payment_view.selectionModel().selectionChanged.connect(self._update_refund)
        self.payment_model.modelReset.connect(self._update_refund)
        self.payment_model.dataChanged.connect(self._update_refund)
        self.refund_action.triggered.connect(self.refund_selected)
        self.period_combo.currentIndexChanged.connect(self.reload)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.search_edit.returnPressed.connect(self.reload)
        self.export_button.clicked.connect(self.export_csv)
        self.refund_button.clicked.connect(self.refund_selected)
        signals.payment.connect(self._payment_arrived)

    # --- the rows shown -----------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def filter_since(self) -> datetime | None:
        return start_of_today(self._clock()) if self.period_combo.currentIndex() == 0 else None

    def reload(self) -> None:
        """Query the payment log for the current filter (asynchronously; ``loaded`` tells)."""
        self._search_timer.stop()
        self._load_generation += 1
        self._arrived_while_loading = {}
        self._tasks.spawn(self._load(self._load_generation, self.filter_since(), self.search_edit.text()))

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
        today = await self._signals.payments(since=start_of_today(self._clock()), limit=TODAY_LIMIT)
        if generation == self._load_generation:
            self._today_in_log = {entry.payment_intent_id: entry for entry in today}
            self._show_today_total()
        self.loaded.emit(self.payment_model.rowCount())

    def _show_today_total(self) -> None:
        """Today's takings, whatever the filter shown: the log as last read, overridden by every
        line told since (a line is told before the log has written it, so a read can miss it;
        a status change told later, e.g. a refund, is the newer news)."""
        midnight = start_of_today(self._clock())
        self._told_today = {k: e for k, e in self._told_today.items() if e.at >= midnight}
        today = self._today_in_log | self._told_today
        text = describe_takings(takings(e for e in today.values() if e.at >= midnight))
        if text != self.today_total_label.text():
            self.today_total_label.setText(text)
            self.today_total_changed.emit(text)

    def _payment_arrived(self, entry: PaymentLogEntry) -> None:
        self._told_today[entry.payment_intent_id] = entry
        self._show_today_total()
        if self._arrived_while_loading is not None:
            self._arrived_while_loading[entry.payment_intent_id] = entry
        if self.payment_model.replace(entry):
            pass
        elif payment_matches(entry, self.filter_since(), self.search_edit.text()):
            self.payment_model.insert(entry)
        else:
            return
        self._show_payment_count()

    def _show_payment_count(self) -> None:
        shown = "today" if self.period_combo.currentIndex() == 0 else "in the log"
        search = self.search_edit.text().strip()
        matching = f' matching "{search}"' if search else ""
        self.payment_count_label.setText(f"{plural(self.payment_model.rowCount(), 'payment')} {shown}{matching}")

    # --- refund ---------------------------------------------------------------------------------

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
        """Refund… on a payment-log row."""
        entry = self.selected_payment()
        if entry is not None and entry.status in REFUNDABLE:
            self.refund_requested.emit(entry)

    # --- export -----------------------------------------------------------------------------------

    def export_csv(self) -> None:
        """Ask where to save (the chooser answers later, the loop keeps serving), then write the
        payments shown (the current filter) as CSV."""
        name = f"payments-{local_date(self._clock())}.csv"
        self.file_dialog(self, FileQuestion("Export payments", name, "CSV files (*.csv)"), self._export_to)

    def _export_to(self, path: str, _filter: str = "") -> None:
        if not path:
            return
        destination = Path(path)
        if destination.suffix.lower() != ".csv":
            destination = destination.with_name(destination.name + ".csv")
        self._tasks.spawn(self._export(destination, self.payment_model.entries()))

    async def _export(self, destination: Path, entries: list[PaymentLogEntry]) -> None:
        try:
            count = await self._signals.export_csv(destination, entries)
        except OSError as exc:
            message = f"Could not write {destination}: {exc.strerror or exc}. Choose another folder."
            self.status_message.emit(message)
            self.export_failed.emit(message)
            return
        self.status_message.emit(f"Exported {plural(count, 'payment')} to {destination}")
        self.exported.emit(count, str(destination))

    # --- lifecycle --------------------------------------------------------------------------------

    def _failed(self, error: BaseException) -> None:
        self.status_message.emit(f"Something went wrong: {problem_words(error)}")

    def shutdown(self) -> None:
        """Stop the search timer and cancel queries still running (before the loop closes)."""
        self._search_timer.stop()
        self._tasks.cancel()
