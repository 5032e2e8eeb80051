"""Verify with Dojo: the EPOS tester tool's flows as a form, run one or all, each step shown live,
and a report the installer can leave with the venue (HTML, or PDF printed from the same page).

Left, the flows Dojo offers, each with its latest outcome. Right, the selected flow's parameters
(type, default and a * for required ones, as the flow description says; an order or table gets a
picker filled from the POS through the bridge's adapter, best choice first), then its steps with
status, times and Dojo's ``additionalInformation``, updated about once a second while it runs.

Nothing here decides anything: which values may be sent is
:func:`epos_bridge.domain.verification.values_to_send`, running and following flows is
:class:`epos_bridge.services.verification.Verification` (reached through
:class:`VerificationSignals`), the report is ``services.verification_report``. Text from Dojo or
the POS is always shown as plain text. Async work runs as tasks on the qasync loop, so the dialog
stays responsive while Dojo runs a flow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QMarginsF, QObject, Qt, Signal, qVersion
from PySide6.QtGui import QCloseEvent, QColor, QIntValidator, QPageLayout, QPageSize, QPdfWriter, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import RegistrationState
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.verification import (
    FlowDescription,
    FlowParam,
    FlowRun,
    FlowStatus,
    InvalidParams,
    ParamKind,
    StepResult,
    TesterToolError,
    TesterToolUnavailable,
    values_to_send,
)
from epos_bridge.services.verification import (
    Choice,
    CurrentLocks,
    LockingConnection,
    PosReader,
    TesterTool,
    Verification,
)
from epos_bridge.services.verification_report import (
    ReportFacts,
    VerificationReport,
    local_stamp,
    render_html,
    report_facts,
)
from epos_bridge.ui.dialogs import FileDialog, FileQuestion, ask_file
from epos_bridge.ui.styles import ERROR_STYLE, HINT_STYLE
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import PlainLabel, plain_tooltip
from epos_bridge.ui.words import local_date, local_time, problem_words

log = logging.getLogger(__name__)

FactsFor = Callable[[str | None], ReportFacts]
"""(venue typed in the dialog) → the facts the report starts with (ids, versions, time)."""

STATUS_WORDS = {
    None: "not run",
    FlowStatus.IN_PROGRESS: "running…",
    FlowStatus.SUCCESS: "SUCCESS",
    FlowStatus.FAILURE: "FAILURE",
    FlowStatus.TIMED_OUT: "TIMED OUT",
}
STATUS_COLOURS = {
    FlowStatus.SUCCESS: "#1b7f3b",
    FlowStatus.FAILURE: "#b3261e",
    FlowStatus.TIMED_OUT: "#8a5a00",
    FlowStatus.IN_PROGRESS: "#1a56a6",
}
STEP_HEADERS = ("#", "Step", "Status", "Started", "Took", "Information")
PDF_FILTER = "PDF (*.pdf)"
OK_STYLE = "color: #1b7f3b;"
HTML_FILTER = "HTML (*.html)"


class VerificationSignals(QObject):
    """The verification service's callbacks as Qt signals (on the GUI thread, under qasync).

    ``progress(FlowRun)``: a running flow has new steps; ``finished(FlowRun)``: a flow is done.
    """

    progress = Signal(object)
    finished = Signal(object)

    def __init__(self, verification: Verification, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.verification = verification
        self._attached = True
        verification.on_progress(self._relay(self.progress))
        verification.on_finished(self._relay(self.finished))

    def _relay(self, signal: Any) -> Callable[[FlowRun], None]:
        def emit(run: FlowRun) -> None:
            if self._attached and isValid(self):
                signal.emit(run)

        return emit

    def detach(self) -> None:
        self._attached = False


class ParamField:
    """One parameter's input: a line edit, or an editable picker for an order or a table."""

    def __init__(self, param: FlowParam) -> None:
        self.param = param
        self.error = PlainLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        self.picker: QComboBox | None = None
        self.edit: QLineEdit | None = None
        self.choice: QComboBox | None = None
        self._picked = ""
        """The value :meth:`offer` chose itself: replaced by the best choice at the next offer,
        while anything the installer chose or typed stays."""
        if param.kind in (ParamKind.ORDER, ParamKind.TABLE):
            self.picker = QComboBox()
            self.picker.setEditable(True)
            self.picker.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            self.picker.setMinimumContentsLength(40)
            self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            typing = self.picker.lineEdit()
            if typing is not None:
                entity = "order" if param.kind is ParamKind.ORDER else "table"
                typing.setPlaceholderText(f"choose from the POS or type the {entity} id")
            if param.default:
                self.picker.setEditText(param.default)
            self.widget: QWidget = self.picker
        elif param.kind is ParamKind.BOOLEAN:
            self.choice = QComboBox()
            self.choice.addItems(["", "true", "false"])
            if param.default:
                self.choice.setCurrentText(param.default.lower())
            self.widget = self.choice
        else:
            self.edit = QLineEdit(param.default or "")
            if param.kind is ParamKind.INTEGER:
                self.edit.setValidator(QIntValidator(0, 1_000_000, self.edit))
            self.edit.setPlaceholderText(param.description)
            self.widget = self.edit
        self.widget.setAccessibleName(param.name)
        if param.description:
            self.widget.setToolTip(plain_tooltip(param.description))  # Dojo's words, shown literally

    @property
    def text(self) -> str:
        """The value to send: the picked entry's id, or what was typed."""
        if self.picker is not None:
            index = self.picker.currentIndex()
            typed = self.picker.currentText().strip()
            if index >= 0 and typed == self.picker.itemText(index):
                return str(self.picker.itemData(index))
            return typed
        if self.choice is not None:
            return self.choice.currentText()
        assert self.edit is not None
        return self.edit.text().strip()

    def set_text(self, value: str) -> None:
        if self.picker is not None:
            for index in range(self.picker.count()):
                if self.picker.itemData(index) == value:
                    self.picker.setCurrentIndex(index)
                    return
            self.picker.setEditText(value)
        elif self.choice is not None:
            self.choice.setCurrentText(value)
        elif self.edit is not None:
            self.edit.setText(value)

    def offer(self, choices: Sequence[Choice]) -> None:
        """Fill the picker (best first, chosen for a required parameter); keep a value already
        chosen when it is still offered."""
        if self.picker is None:
            return
        kept = self.text
        by_hand = bool(kept) and kept not in (self._picked, self.param.default or "")
        self.picker.clear()
        for choice in choices:
            self.picker.addItem(choice.label, choice.value)
        self._picked = ""
        if by_hand and any(c.value == kept for c in choices):
            self.set_text(kept)
        elif by_hand:
            self.picker.setEditText(kept)  # something typed by hand stays
        elif self.param.default:
            self.set_text(self.param.default)
        elif choices and self.param.required:
            self.picker.setCurrentIndex(0)  # the best now: a flow run since may have paid the last one
            self._picked = self.text
        else:  # optional: empty lets the flow choose, the POS's entries are offered
            self.picker.setCurrentIndex(-1)
            self.picker.setEditText("")

    def show_problem(self, problem: str | None) -> None:
        self.error.setText(problem or "")
        self.error.setVisible(bool(problem))


class FlowForm(QWidget):
    """The parameters of one flow, as its description declares them."""

    def __init__(self, flow: FlowDescription, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.flow = flow
        self.fields: dict[str, ParamField] = {}
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        if not flow.params:
            none = PlainLabel("This flow takes no parameters.")
            none.setStyleSheet(HINT_STYLE)
            form.addRow(none)
        for param in flow.params:
            field = ParamField(param)
            self.fields[param.name] = field
            label = PlainLabel(f"{param.name}{' *' if param.required else ''} ({param.type}):")
            label.setBuddy(field.widget)
            label.setToolTip("required" if param.required else "optional")
            column = QVBoxLayout()
            column.setSpacing(2)
            column.addWidget(field.widget)
            about = param.description + (f" (default {param.default})" if param.default else "")
            if about:
                hint = PlainLabel(about)
                hint.setStyleSheet(HINT_STYLE)
                hint.setWordWrap(True)
                column.addWidget(hint)
            column.addWidget(field.error)
            form.addRow(label, column)

    def values(self) -> dict[str, str]:
        return {name: field.text for name, field in self.fields.items()}

    def check(self) -> bool:
        """Show what is wrong beside each field (the domain's rule); True when it can be sent."""
        problems: Mapping[str, str] = {}
        try:
            values_to_send(self.flow, self.values())
        except InvalidParams as invalid:
            problems = invalid.problems
        for name, field in self.fields.items():
            field.show_problem(problems.get(name))
        return not problems

    def kinds(self) -> set[ParamKind]:
        return {f.param.kind for f in self.fields.values() if f.picker is not None}

    def offer(self, kind: ParamKind, choices: Sequence[Choice]) -> None:
        for field in self.fields.values():
            if field.param.kind is kind:
                field.offer(choices)


def _item(text: str, *, colour: str | None = None, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)  # table items never interpret markup: plain text by nature
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if colour:
        item.setForeground(QColor(colour))
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def took(step: StepResult) -> str:
    seconds = step.seconds
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class VerifyDialog(QDialog):
    """The Verify with Dojo dialog. Signals tell tests (and the status bar) what happened."""

    flows_loaded = Signal(int)
    """The flows arrived from Dojo: how many."""
    unavailable = Signal(str)
    """The tester tool cannot be used (not enabled, production key, unreachable): why."""
    run_finished = Signal(list)
    """A run (one flow or all) ended: its FlowRuns."""
    choices_loaded = Signal()
    report_saved = Signal(str)
    report_failed = Signal(str)

    def __init__(
        self,
        signals: VerificationSignals,
        facts_for: FactsFor,
        *,
        file_dialog: FileDialog | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._signals = signals
        self._verification = signals.verification
        self._facts_for = facts_for
        self.file_dialog: FileDialog = file_dialog or ask_file
        """Save report…'s chooser, answered by callback (never a nested loop); tests may replace it."""
        self._tasks = WidgetTasks(log, "a verification task", on_error=self._task_failed)
        self._forms: dict[str, FlowForm] = {}
        self._flows: list[FlowDescription] = []
        self._live: dict[str, FlowRun] = {}
        self._running = False
        self._venue_edited = False

        self.setWindowTitle("Verify with Dojo — EPOS tester tool")
        self.setModal(False)
        self.resize(1120, 660)
        self._build()
        signals.progress.connect(self._progress)
        signals.finished.connect(self._finished)

    # --- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        top = QFormLayout()
        self.venue_edit = QLineEdit()
        self.venue_edit.setPlaceholderText("the venue's name, for the report")
        self.venue_edit.textEdited.connect(self._venue_typed)
        top.addRow("&Venue:", self.venue_edit)
        self.where_label = PlainLabel()
        self.where_label.setWordWrap(True)
        top.addRow("Dojo:", self.where_label)

        self.banner = PlainLabel("Asking Dojo which flows it can run…")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.flow_list = QListWidget()
        self.flow_list.setMinimumWidth(260)
        self.flow_list.currentRowChanged.connect(self._show_flow)
        self.flow_list.setAccessibleName("Flows")

        self.forms = QStackedWidget()
        params_box = QGroupBox("Parameters (* required)")
        params_layout = QVBoxLayout(params_box)
        params_layout.addWidget(self.forms)

        self.summary_label = PlainLabel("Choose a flow and run it.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.steps_table = QTableWidget(0, len(STEP_HEADERS))
        self.steps_table.setHorizontalHeaderLabels(list(STEP_HEADERS))
        self.steps_table.verticalHeader().setVisible(False)
        self.steps_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.steps_table.setWordWrap(True)
        self.steps_table.setTabKeyNavigation(False)
        header = self.steps_table.horizontalHeader()
        for column in range(len(STEP_HEADERS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.steps_table.setAccessibleName("Steps")

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(params_box)
        right_layout.addWidget(self.summary_label)
        right_layout.addWidget(self.steps_table, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.flow_list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([280, 840])

        self.run_button = QPushButton("&Run this flow")
        self.run_button.clicked.connect(self.run_selected)
        self.run_all_button = QPushButton("Run &all")
        self.run_all_button.clicked.connect(self.run_all)
        self.report_button = QPushButton("&Save report…")
        self.report_button.setToolTip("An HTML or PDF report to leave with the venue: every flow and step")
        self.report_button.clicked.connect(self.save_report)
        self.close_button = QPushButton("&Close")
        self.close_button.clicked.connect(self.close)
        for button in (self.run_button, self.run_all_button, self.report_button, self.close_button):
            button.setAutoDefault(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.run_all_button)
        buttons.addWidget(self.report_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    # --- loading ----------------------------------------------------------------------------

    def start(self, where: str) -> None:
        """Show where Dojo is, then ask it for the flows and the POS for the venue's name."""
        self.where_label.setText(where)
        refusal = self._verification.refusal()
        if refusal is not None:
            self._say_unavailable(refusal)
            return
        self._tasks.spawn(self._load())
        self._tasks.spawn(self._find_venue())

    async def _load(self) -> None:
        try:
            flows = await self._verification.load_flows()
        except TesterToolUnavailable as exc:
            self._say_unavailable(str(exc))
            return
        except TesterToolError as exc:
            self._say_unavailable(f"Dojo's EPOS tester tool could not be reached: {exc}")
            return
        self._flows = flows
        self.flow_list.clear()
        for flow in flows:
            form = FlowForm(flow)
            self._forms[flow.name] = form
            self.forms.addWidget(form)
            self.flow_list.addItem(QListWidgetItem(flow.name))
            self._paint_flow(flow.name)
        self._set_banner(
            f"Dojo offers {len(flows)} flow{'s' if len(flows) != 1 else ''}. Each drives this till's bridge "
            "over the EPOS Data WebSocket, as Dojo's products do: sandbox only, it creates orders and payments.",
        )
        if flows:
            self.flow_list.setCurrentRow(0)
        self._update_buttons()
        self.flows_loaded.emit(len(flows))
        await self._refresh_choices()

    async def _refresh_choices(self) -> None:
        kinds = set().union(*(form.kinds() for form in self._forms.values())) if self._forms else set()
        for kind in sorted(kinds):
            try:
                choices = await self._verification.choices(kind)
            except EposFailure as exc:
                log.warning("the POS could not list choices for %s parameters: %s", kind.value, exc)
                continue
            for form in self._forms.values():
                form.offer(kind, choices)
        self.choices_loaded.emit()

    async def _find_venue(self) -> None:
        name = await self._verification.venue_name()
        if name and not self._venue_edited and not self.venue_edit.text():
            self.venue_edit.setText(name)

    def _venue_typed(self) -> None:
        self._venue_edited = True

    def _say_unavailable(self, why: str) -> None:
        self._set_banner(why, error=True)
        self._flows = []
        self._update_buttons()
        self.unavailable.emit(why)

    def _set_banner(self, text: str, *, error: bool = False) -> None:
        self.banner.setText(text)
        self.banner.setStyleSheet(ERROR_STYLE if error else "")

    # --- running ----------------------------------------------------------------------------

    def selected_flow(self) -> FlowDescription | None:
        row = self.flow_list.currentRow()
        return self._flows[row] if 0 <= row < len(self._flows) else None

    def form(self, name: str) -> FlowForm:
        return self._forms[name]

    def run_selected(self) -> None:
        flow = self.selected_flow()
        if flow is None or self._running:
            return
        if not self._forms[flow.name].check():
            return
        self._start([flow])

    def run_all(self) -> None:
        """Every flow, in Dojo's order; one whose values are wrong is reported "Not started"."""
        if self._running or not self._flows:
            return
        for form in self._forms.values():
            form.check()
        self._start(list(self._flows))

    def _start(self, flows: list[FlowDescription]) -> None:
        plan = [(flow, self._forms[flow.name].values()) for flow in flows]
        self._running = True
        self._update_buttons()
        self._tasks.spawn(self._run(plan))

    async def _run(self, plan: list[tuple[FlowDescription, dict[str, str]]]) -> None:
        runs: list[FlowRun] = []
        # No ``finally``: when the dialog closes (or goes with its window) the task is cancelled,
        # and the widgets must then be left alone.
        try:
            for flow, values in plan:
                self._live[flow.name] = FlowRun(flow.name, values)
                self._select(flow.name)
                self._paint_flow(flow.name)
                self._set_banner(f"Dojo is running {flow.name}…")
                runs.append(await self._verification.run_one(flow, values))
        except TesterToolUnavailable as exc:
            self._say_unavailable(str(exc))
        self._live.clear()
        self._running = False
        self._update_buttons()
        if runs:
            failed = sum(1 for run in runs if not run.succeeded)
            words = "succeeded" if not failed else f"{failed} of {len(runs)} did not succeed"
            self._set_banner(
                f"Done: {len(runs)} flow{'s' if len(runs) != 1 else ''}, {words}. Save a report for the venue."
            )
        self.run_finished.emit(runs)
        await self._refresh_choices()  # the flows changed the POS (orders paid, locks gone)

    def _progress(self, run: FlowRun) -> None:
        self._live[run.flow] = run
        self._paint_flow(run.flow)
        if self._is_selected(run.flow):
            self._show_run(run)

    def _finished(self, run: FlowRun) -> None:
        self._live.pop(run.flow, None)
        self._paint_flow(run.flow)
        if self._is_selected(run.flow):
            self._show_run(run)

    # --- rendering --------------------------------------------------------------------------

    def latest(self, name: str) -> FlowRun | None:
        return self._live.get(name) or self._verification.runs.get(name)

    def _select(self, name: str) -> None:
        names = [f.name for f in self._flows]
        if name in names:
            self.flow_list.setCurrentRow(names.index(name))

    def _is_selected(self, name: str) -> bool:
        flow = self.selected_flow()
        return flow is not None and flow.name == name

    def _paint_flow(self, name: str) -> None:
        names = [f.name for f in self._flows]
        if name not in names:
            return
        item = self.flow_list.item(names.index(name))
        run = self.latest(name)
        status = run.status if run is not None else None
        item.setText(f"{name}\n    {STATUS_WORDS[status]}")
        item.setForeground(QColor(STATUS_COLOURS[status]) if status is not None else self.palette().text().color())
        why = run.why_not() if run is not None else None
        item.setToolTip(plain_tooltip(why) if why else "")  # Dojo's words, shown literally; no empty bubble

    def _show_flow(self, row: int) -> None:
        if not 0 <= row < len(self._flows):
            return
        flow = self._flows[row]
        self.forms.setCurrentWidget(self._forms[flow.name])
        run = self.latest(flow.name)
        if run is None:
            self.summary_label.setText(f"{flow.name} has not run yet.")
            self.summary_label.setStyleSheet("")
            self.steps_table.setRowCount(0)
        else:
            self._show_run(run)

    def _show_run(self, run: FlowRun) -> None:
        result = run.result
        parts = [f"{run.name}: {STATUS_WORDS[run.status]}"]
        if result is not None:
            parts.append(f"flow id {result.flow_id}")
            if result.started_at is not None:
                parts.append(f"started {local_stamp(result.started_at)}")
        why = run.why_not()
        text = " · ".join(parts) + (f"\n{why}" if why else "")
        self.summary_label.setText(text)
        colour = STATUS_COLOURS.get(run.status)
        self.summary_label.setStyleSheet(
            f"color: {colour};" if colour and run.status is not FlowStatus.IN_PROGRESS else ""
        )
        steps = result.steps if result is not None else ()
        self.steps_table.setRowCount(len(steps))
        for row, step in enumerate(steps):
            colour = STATUS_COLOURS.get(step.status)
            started = local_time(step.started_at, seconds=True) if step.started_at else ""
            cells = (
                _item(str(row + 1), align_right=True),
                _item(step.name),
                _item(STATUS_WORDS[step.status], colour=colour),
                _item(started),
                _item(took(step), align_right=True),
                _item("\n".join(step.additional_information)),
            )
            for column, cell in enumerate(cells):
                self.steps_table.setItem(row, column, cell)
        self.steps_table.resizeRowsToContents()
        if steps:
            self.steps_table.scrollToBottom()

    def step_rows(self) -> list[tuple[str, str, str]]:
        """(step, status, information) as shown: what tests and screen readers read."""
        rows = []
        for row in range(self.steps_table.rowCount()):
            cells = [self.steps_table.item(row, column) for column in (1, 2, 5)]
            rows.append(tuple(cell.text() if cell is not None else "" for cell in cells))
        return rows  # type: ignore[return-value]

    def flow_status_text(self, name: str) -> str:
        names = [f.name for f in self._flows]
        return self.flow_list.item(names.index(name)).text()

    def _update_buttons(self) -> None:
        ready = bool(self._flows) and not self._running
        self.run_button.setEnabled(ready)
        self.run_all_button.setEnabled(ready)
        self.report_button.setEnabled(bool(self._verification.runs) and not self._running)

    # --- the report -------------------------------------------------------------------------

    def report(self) -> VerificationReport:
        facts = self._facts_for(self.venue_edit.text().strip() or None)
        return VerificationReport(facts, tuple(self._verification.latest_runs()))

    def save_report(self) -> None:
        """Ask where, then write the report as HTML, or as PDF when a .pdf name is chosen."""
        if not self._verification.runs:
            return
        venue = self.venue_edit.text().strip()
        stamp = local_date(datetime.now(UTC))
        slug = "-".join(venue.lower().split())[:40] if venue else "venue"
        question = FileQuestion(
            "Save the verification report", f"dojo-verification-{slug}-{stamp}.html", f"{HTML_FILTER};;{PDF_FILTER}"
        )
        self.file_dialog(self, question, self._save_to)

    def _save_to(self, path: str, chosen: str) -> None:
        if not path or not isValid(self):
            return
        destination = Path(path)
        as_pdf = destination.suffix.lower() == ".pdf" or (chosen == PDF_FILTER and not destination.suffix)
        if not destination.suffix:
            destination = destination.with_suffix(".pdf" if as_pdf else ".html")
        page = render_html(self.report())
        if as_pdf:
            self._write_pdf(destination, page)
        else:
            self._tasks.spawn(self._write_html(destination, page))

    async def _write_html(self, destination: Path, page: str) -> None:
        try:
            await asyncio.to_thread(destination.write_text, page, encoding="utf-8")
        except OSError as exc:
            self._report_failed(destination, exc)
            return
        self._report_written(destination)

    def _write_pdf(self, destination: Path, page: str) -> None:
        """Qt prints the same page to PDF (``QTextDocument`` must live on the GUI thread)."""
        writer = QPdfWriter(str(destination))
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageLayout(
            QPageLayout(
                QPageSize(QPageSize.PageSizeId.A4),
                QPageLayout.Orientation.Portrait,
                QMarginsF(12, 12, 12, 12),
                QPageLayout.Unit.Millimeter,
            )
        )
        writer.setTitle("Dojo EPOS tester tool report")
        writer.setCreator("epos-bridge")
        document = QTextDocument()
        document.setHtml(page)
        document.print_(writer)
        del writer  # the file is finished when the writer goes
        if not destination.is_file() or destination.stat().st_size == 0:
            self._report_failed(destination, OSError("the PDF could not be written"))
            return
        self._report_written(destination)

    def _report_written(self, destination: Path) -> None:
        self._set_banner(f"Report saved to {destination}")
        self.banner.setStyleSheet(OK_STYLE)
        self.report_saved.emit(str(destination))

    def _report_failed(self, destination: Path, exc: OSError) -> None:
        message = f"The report could not be written to {destination}: {exc.strerror or exc}. Choose another folder."
        self._set_banner(message, error=True)
        self.report_failed.emit(message)

    # --- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing stops following; a flow already started keeps running at Dojo."""
        self._tasks.cancel()
        self._signals.detach()
        super().closeEvent(event)

    def _task_failed(self, error: BaseException) -> None:
        self._set_banner(f"Something went wrong: {problem_words(error)}", error=True)
        self._running = False
        self._update_buttons()


# --- wiring for the tray app ------------------------------------------------------------------------


class TesterClient(Protocol):
    """The bridge's Dojo client (``DojoClient``), which lends its calls to the tester tool."""

    @property
    def base_url(self) -> str: ...
    @property
    def environment(self) -> str: ...
    def tester_tool(self) -> TesterTool: ...


class VerifiableBridge(Protocol):
    """What verifying needs of :class:`epos_bridge.app.Bridge` (the UI may not import it)."""

    @property
    def settings(self) -> BridgeSettings: ...
    @property
    def registration(self) -> RegistrationState: ...
    @property
    def client(self) -> TesterClient: ...
    @property
    def pos_reads(self) -> PosReader: ...
    @property
    def pos(self) -> LockingConnection: ...
    def till_warnings(self) -> list[str]: ...


def facts_for(bridge: VerifiableBridge) -> FactsFor:
    """The report's facts, read when the report is made (settings may have been saved since)."""

    def build(venue: str | None) -> ReportFacts:
        settings = bridge.settings
        report = bridge.registration.report
        registered = sorted(c.value for c in report.matching | report.extra_at_dojo) if report is not None else []
        return report_facts(settings, venue, registered, [("Qt", qVersion())], bridge.till_warnings())

    return build


def open_verify(parent: QWidget, bridge: VerifiableBridge, **options: Any) -> VerifyDialog:
    """Open (or bring forward) the Verify dialog for the running bridge, and start loading."""
    existing = parent.findChild(VerifyDialog)
    if isinstance(existing, VerifyDialog) and existing.isVisible():
        existing.raise_()
        existing.activateWindow()
        return existing
    client = bridge.client
    # The pickers ask the POS which orders a flow could lock now, on the connection current then.
    locks = CurrentLocks(lambda: bridge.pos)
    signals = VerificationSignals(Verification(client.tester_tool(), bridge.pos_reads, locks=locks))
    dialog = VerifyDialog(signals, facts_for(bridge), parent=parent, **options)
    signals.setParent(dialog)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    dialog.start(f"{client.base_url} ({client.environment})")
    return dialog
