"""The settings dialog: edits a copy of the settings, shows every problem next to its field, and
hands the result to an injected service that saves it and applies it to the running bridge.

The dialog does no I/O (STYLE, after qutebrowser): testing a key, checking the POS database and
saving all go through the ``service`` it is given (:class:`SettingsServiceLike`); the result is
emitted as :attr:`SettingsDialog.saved`. Async work runs as tasks on the asyncio loop that
qasync runs on the Qt event loop, so the dialog stays responsive while Dojo answers.

:func:`build_settings_service` wires the real service (keyring, settings file, Dojo client,
SQLite adapter) for the composition root.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
from keyring.backends import fail
from pydantic import SecretStr
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from epos_bridge import config
from epos_bridge.adapters.registry import installed_adapters
from epos_bridge.config import ENV_VARS, BridgeSettings, ConfigError, KeyStore, KeyStoreError, KeyStoreUnavailable
from epos_bridge.dojo_api import DojoClient
from epos_bridge.domain.verification import verification_refusal
from epos_bridge.host.tls import dojo_http_client
from epos_bridge.ports import AdapterFactory, LocationKind, PosLocation, ServerLocation, pos_location
from epos_bridge.protocol.dojo import DojoCredentials, environment_of, pasted_key
from epos_bridge.services.settings_service import (
    REJECTED_WORDS,
    Apply,
    IntegrationsReader,
    SettingsService,
    TestResult,
)
from epos_bridge.ui.dialogs import FileDialog, FileQuestion, ask_file, confirm
from epos_bridge.ui.tasks import WidgetTasks
from epos_bridge.ui.text import PlainLabel, plain_tooltip

log = logging.getLogger(__name__)

ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"
STORED_KEY_TEXT = "stored in the keyring — type a new key to replace it"
ENV_KEY_TEXT = "set for this computer when the bridge was installed — a key typed here is kept in the keyring"
DATABASE_FILTER = "SQLite databases (*.db *.sqlite *.sqlite3);;All files (*)"
MIN_WIDTH = 640
"""Wide enough that the longest message (a refused gateway URL) takes two lines, not a column."""
REJECTED_KEY_QUESTION = (
    "Dojo rejected this key. Save it anyway? Card payments will not work until a valid key is saved."
)
NO_KEYRING_TEXT = (
    "This computer has no secure key storage (OS keyring), so the key cannot be kept here. "
    "Ask whoever installed the bridge to set the key up for this computer."
)
FIELD_NAMES = {
    "api_key": "API key",
    "software_house_id": "Software-house-id",
    "reseller_id": "Reseller-id",
    "ws_url": "Gateway URL",
    "api_url": "API URL",
    "adapter": "Adapter",
    "db_path": "Database",
    "mapping": "Mapping",
    "start_at_login": "Start at login",
    "notifications_enabled": "Notifications",
    "notify_each_payment": "Notify on each payment",
}
"""How each field is named in its messages: as its label on screen."""

_FOR_STAFF: tuple[tuple[re.Pattern[str], str], ...] = (
    # "(set EPOS_BRIDGE_ALLOW_INSECURE=1 to allow …)", "(EPOS_BRIDGE_MAPPING)": an installer's aside
    (re.compile(r"\s*\((?:set )?EPOS_BRIDGE_\w+(?:=\S*)?[^()]*\)"), ""),
    (re.compile(r",\s*even with EPOS_BRIDGE_\w+(?:=\S+?)?,"), ","),
    (re.compile(r"[Cc]reate one with `epos-bridge [^`]*`"), "Whoever installed the bridge can create one"),
    (
        re.compile(r"\b[Rr]un `epos-bridge db attach[^`]*`( again)?"),
        r"ask whoever installed the bridge to connect it to the bridge\1",
    ),
    (re.compile(r"\b[Rr]un `epos-bridge [^`]*`( again)?"), r"ask whoever installed the bridge to set it up\1"),
    (re.compile(r"`epos-bridge [^`]*`"), "the bridge's setup"),
    (re.compile(r"\bEPOS_BRIDGE_\w+(?:=\S+)?"), "a setting made when the bridge was installed"),
)


def staff_words(text: str) -> str:
    """A message as venue staff should read it: without the environment variables and commands
    the lower layers name for installers (those stay in the log and the command line)."""
    for pattern, replacement in _FOR_STAFF:
        text = pattern.sub(replacement, text)
    return text


class SettingsServiceLike(Protocol):
    """What the dialog needs from :class:`epos_bridge.services.settings_service.SettingsService`."""

    async def test_key(self, draft: BridgeSettings, api_key: str | None) -> TestResult: ...

    async def check_database(
        self, adapter: str, path: PosLocation | None, mapping: str | None = None, password: str | None = None
    ) -> str | None: ...

    def has_stored_db_password(self, location: PosLocation | None) -> bool: ...

    def location_of(self, adapter: str) -> LocationKind: ...

    def mappings_of(self, adapter: str) -> tuple[str, ...] | None: ...

    async def save(self, new: BridgeSettings, api_key: str | None, db_password: str | None = None) -> list[str]: ...


def field_for(where: str) -> str | None:
    """A ConfigError location (``software_house_id``, ``EPOS_BRIDGE_WS_URL``, ``--ws-url``,
    ``settings.json: ws_url``) → the setting it names, or ``None``."""
    where = where.strip()
    names = set(BridgeSettings.model_fields)
    candidates = [where, where.rsplit(":", 1)[-1].strip(), where.removeprefix("--").replace("-", "_")]
    candidates += [name for name, variable in ENV_VARS.items() if variable == where]
    return next((c for c in candidates if c in names), None)


class SettingsDialog(QDialog):
    """Edit the bridge's settings. ``saved`` carries the new :class:`BridgeSettings` after Save."""

    saved = Signal(object)
    verify_requested = Signal()
    """Verify with Dojo…, offered after a successful Test when nothing is left unsaved."""
    busy_changed = Signal(bool)
    """True while a key test, database check or save is running (tests wait on it)."""

    def __init__(
        self,
        settings: BridgeSettings,
        service: SettingsServiceLike,
        installed_adapters: list[str] | None = None,
        parent: QWidget | None = None,
        *,
        can_verify: bool = False,
        file_dialog: FileDialog = ask_file,
    ) -> None:
        super().__init__(parent)
        self.file_dialog = file_dialog
        """Browse…'s chooser, answered by callback (never a nested loop); tests may replace it."""
        self._can_verify = can_verify
        self._tested_environment = "unknown"
        self._original = settings.model_copy(deep=True)
        self._service = service
        self._adapters = list(installed_adapters or [BridgeSettings.model_fields["adapter"].default])
        self._tasks = WidgetTasks(log, "a settings-dialog task")
        self._busy = 0
        self._saving = False
        self._draft: BridgeSettings | None = self._original
        self._errors: dict[str, str] = {}
        self._db_problem: str | None = None
        self._db_checked: tuple[str, str, str] | None = None
        self._save_problem: tuple[str, str] | None = None
        """(field, message) of the last failed save, shown under that field until the next edit."""
        self._rejected_key: str | None = None
        """The key Dojo rejected on the last Test: saving it needs an explicit confirmation."""
        self.confirm_box: QMessageBox | None = None
        """The "save it anyway?" question while it is open."""
        self.result_settings: BridgeSettings | None = None
        """The saved settings once Save succeeded (``None`` after Cancel)."""
        self.save_report: list[str] = []

        self.setWindowTitle("Bridge settings")
        self.setModal(True)
        self.setMinimumWidth(MIN_WIDTH)
        self._build()
        self._load(self._original)
        self._connect()
        self._validate()

    # --- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.field_errors: dict[str, QLabel] = {}
        self.field_widgets: dict[str, QWidget] = {}

        dojo = QGroupBox("Dojo account")
        dojo_form = QFormLayout(dojo)
        self.api_key_edit = QLineEdit()
        self.api_key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key_edit.setAccessibleName("API key")
        self.show_key_button = QPushButton("S&how")
        self.show_key_button.setCheckable(True)
        self.show_key_button.setToolTip("Show the key you typed (a stored key is never shown)")
        self.test_button = QPushButton("&Test")
        self.test_button.setToolTip("Ask Dojo whether it accepts this key")
        self.test_result = PlainLabel()
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test_result.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key_edit, 1)
        key_row.addWidget(self.show_key_button)
        key_row.addWidget(self.test_button)
        self._add_row(dojo_form, "&API key:", "api_key", self.api_key_edit, key_row)
        self.verify_button = QPushButton("&Verify with Dojo…")
        self.verify_button.setAutoDefault(False)
        self.verify_button.hide()
        self.verify_button.clicked.connect(self._verify)
        result_row = QHBoxLayout()
        result_row.addWidget(self.test_result, 1)
        result_row.addWidget(self.verify_button)
        dojo_form.addRow(PlainLabel(""), result_row)

        self.software_house_edit = QLineEdit()
        self._add_row(dojo_form, "&Software-house-id:", "software_house_id", self.software_house_edit)
        self.reseller_edit = QLineEdit()
        self.reseller_edit.setPlaceholderText("optional")
        self._add_row(dojo_form, "&Reseller-id:", "reseller_id", self.reseller_edit)
        self.ws_url_edit = QLineEdit()
        self._add_row(dojo_form, "&Gateway URL:", "ws_url", self.ws_url_edit)
        self.api_url_edit = QLineEdit()
        self._add_row(dojo_form, "API &URL:", "api_url", self.api_url_edit)

        pos = QGroupBox("POS")
        pos_form = QFormLayout(pos)
        self.adapter_combo = QComboBox()
        self._add_row(pos_form, "A&dapter:", "adapter", self.adapter_combo)
        self.db_path_edit = QLineEdit()
        self.browse_button = QPushButton("&Browse…")
        db_row = QHBoxLayout()
        db_row.addWidget(self.db_path_edit, 1)
        db_row.addWidget(self.browse_button)
        self._add_row(pos_form, "Data&base:", "db_path", self.db_path_edit, db_row)
        self.mapping_combo = QComboBox()
        self.mapping_combo.setEditable(True)  # a shipped mapping's name, or the path of one's own
        self.mapping_combo.setToolTip("the mapping file the adapter reads the POS through: a shipped name or a path")
        self._add_row(pos_form, "Ma&pping:", "mapping", self.mapping_combo)
        self._pos_form = pos_form
        self._mapping_row = pos_form.rowCount() - 1
        # A database on a server: its parts as the bridge reads them, and its password (kept in
        # the OS keyring like the API key; only what is typed here is ever in the field).
        self.db_server_label = PlainLabel()
        self.db_server_label.setObjectName("db_server")
        self.db_password_edit = QLineEdit()
        self.db_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.db_password_edit.setToolTip("the database user's password; saved in the OS keyring, never in a file")
        server_column = QVBoxLayout()
        server_column.setSpacing(2)
        server_column.addWidget(self.db_password_edit)
        server_column.addWidget(self.db_server_label)
        self._db_password_label = PlainLabel("Database pass&word:")
        self._db_password_label.setBuddy(self.db_password_edit)
        pos_form.addRow(self._db_password_label, server_column)
        self._db_password_row = pos_form.rowCount() - 1

        this_till = QGroupBox("This computer")
        till_box = QVBoxLayout(this_till)
        self.start_at_login_check = QCheckBox("Start the bridge when I &log in")
        self.notifications_check = QCheckBox("Show desktop &notifications")
        self.each_payment_check = QCheckBox("Notify on &each payment")
        for field, box in (
            ("start_at_login", self.start_at_login_check),
            ("notifications_enabled", self.notifications_check),
            ("notify_each_payment", self.each_payment_check),
        ):
            till_box.addWidget(box)
            self.field_widgets[field] = box
            till_box.addWidget(self._error_label(field))

        self.form_error = PlainLabel()
        self.form_error.setWordWrap(True)
        self.form_error.setStyleSheet(ERROR_STYLE)
        self.form_error.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.save_button.setDefault(True)  # Enter saves; Esc cancels (QDialog)
        self.save_button.setAutoDefault(True)
        for button in (self.show_key_button, self.test_button, self.browse_button, self.cancel_button):
            button.setAutoDefault(False)  # so Enter in a field still means Save

        layout = QVBoxLayout(self)
        for part in (dojo, pos, this_till):
            layout.addWidget(part)
        layout.addWidget(self.form_error)
        layout.addWidget(self.buttons)

        order: list[QWidget] = [
            self.api_key_edit,
            self.show_key_button,
            self.test_button,
            self.software_house_edit,
            self.reseller_edit,
            self.ws_url_edit,
            self.api_url_edit,
            self.adapter_combo,
            self.db_path_edit,
            self.browse_button,
            self.mapping_combo,
            self.db_password_edit,
            self.start_at_login_check,
            self.notifications_check,
            self.each_payment_check,
            self.save_button,
            self.cancel_button,
        ]
        for first, second in itertools.pairwise(order):
            QWidget.setTabOrder(first, second)
        self._hints = {field: widget.toolTip() for field, widget in self.field_widgets.items()}

    def _add_row(
        self, form: QFormLayout, text: str, field: str, widget: QWidget, row: QHBoxLayout | None = None
    ) -> None:
        label = PlainLabel(text)
        label.setBuddy(widget)  # Alt+mnemonic focuses the field
        self.field_widgets[field] = widget
        column = QVBoxLayout()
        column.setSpacing(2)
        if row is not None:
            column.addLayout(row)
        else:
            column.addWidget(widget)
        column.addWidget(self._error_label(field))
        form.addRow(label, column)

    def _error_label(self, field: str) -> QLabel:
        label = PlainLabel()
        label.setObjectName(f"error_{field}")
        label.setWordWrap(True)
        label.setStyleSheet(ERROR_STYLE)
        label.hide()
        self.field_errors[field] = label
        return label

    def _fit_to_messages(self) -> None:
        """Grow tall enough for every wrapped message at the current width (a top-level layout
        sizes itself without height-for-width, which left long messages clipped to one line)."""
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        width = max(self.width(), self.minimumWidth())
        needed = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.totalSizeHint().height()
        if needed <= 0:
            return
        self.setMinimumHeight(needed)
        if self.height() < needed:
            self.resize(width, needed)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            QTimer.singleShot(0, self, self._fit_to_messages)  # narrower means more lines: once this resize settles

    def _load(self, settings: BridgeSettings) -> None:
        if settings.api_key_source == "environment":
            self.api_key_edit.setPlaceholderText(ENV_KEY_TEXT)
        elif settings.api_key is not None:
            self.api_key_edit.setPlaceholderText(STORED_KEY_TEXT)
        else:
            self.api_key_edit.setPlaceholderText("paste the key from the Dojo developer portal")
        self.software_house_edit.setText(settings.software_house_id or "")
        self.reseller_edit.setText(settings.reseller_id or "")
        self.ws_url_edit.setText(settings.ws_url)
        self.api_url_edit.setText(settings.api_url)
        adapters = list(self._adapters)
        if settings.adapter not in adapters:
            adapters.append(settings.adapter)  # shown, so the "not installed" message makes sense
        self.adapter_combo.addItems(adapters)
        self.adapter_combo.setCurrentText(settings.adapter)
        self.db_path_edit.setText(str(settings.db_path) if settings.db_path else "")
        self._offer_mappings(settings.mapping or "")
        self._show_server_parts()
        self.start_at_login_check.setChecked(settings.start_at_login)
        self.notifications_check.setChecked(settings.notifications_enabled)
        self.each_payment_check.setChecked(settings.notify_each_payment)
        self.each_payment_check.setEnabled(settings.notifications_enabled)

    def _connect(self) -> None:
        for edit in (self.api_key_edit, self.software_house_edit, self.reseller_edit, self.ws_url_edit):
            edit.textChanged.connect(self._validate)
        self.api_url_edit.textChanged.connect(self._validate)
        self.db_path_edit.textChanged.connect(self._database_edited)
        self.db_path_edit.editingFinished.connect(self._check_database_soon)
        self.db_password_edit.textChanged.connect(self._database_edited)
        self.db_password_edit.editingFinished.connect(self._check_database_soon)
        self.adapter_combo.currentTextChanged.connect(self._adapter_changed)
        self.mapping_combo.currentTextChanged.connect(self._database_edited)
        mapping_line = self.mapping_combo.lineEdit()
        assert mapping_line is not None  # the combo is editable
        mapping_line.editingFinished.connect(self._check_database_soon)
        self.mapping_combo.activated.connect(self._check_database_soon)
        for box in (self.start_at_login_check, self.notifications_check, self.each_payment_check):
            box.toggled.connect(self._validate)
        self.notifications_check.toggled.connect(self.each_payment_check.setEnabled)
        self.show_key_button.toggled.connect(self._show_key)
        self.api_key_edit.textChanged.connect(self._key_edited)
        self.test_button.clicked.connect(self.test_key)
        self.browse_button.clicked.connect(self.browse_database)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

    # --- the draft -----------------------------------------------------------------------------

    def typed_key(self) -> str | None:
        """The key typed in this session (trimmed), or ``None`` to keep the stored one."""
        return pasted_key(self.api_key_edit.text())

    def _changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "software_house_id": self.software_house_edit.text(),
            "reseller_id": self.reseller_edit.text(),
            "ws_url": self.ws_url_edit.text(),
            "api_url": self.api_url_edit.text(),
            "adapter": self.adapter_combo.currentText(),
            "db_path": self.db_path_edit.text().strip() or None,
            "mapping": self._chosen_mapping(),
            "start_at_login": self.start_at_login_check.isChecked(),
            "notifications_enabled": self.notifications_check.isChecked(),
            "notify_each_payment": self.each_payment_check.isChecked(),
        }
        key = self.typed_key()
        if key is not None:
            changes["api_key"] = SecretStr(key)
            changes["api_key_source"] = "keyring"
        return changes

    def draft(self) -> BridgeSettings | None:
        """The edited copy, or ``None`` while a field is invalid (the messages are shown)."""
        return self._draft

    def _validate(self) -> None:
        errors: dict[str, str] = {}
        try:
            self._draft = config.with_changes(self._original, **self._changes())
        except ConfigError as exc:
            self._draft = None
            for where, message in exc.problems:
                field = field_for(where) or "form"
                errors.setdefault(field, message)
        self._errors = errors
        self._render_errors()
        self._update_verify()

    def _render_errors(self) -> None:
        shown = dict(self._errors)
        if self._db_problem and "db_path" not in shown:
            shown["db_path"] = self._db_problem
        if self._save_problem is not None:
            shown.setdefault(*self._save_problem)
        for field, label in self.field_errors.items():
            problem = shown.pop(field, "")
            message = f"{FIELD_NAMES.get(field, field)}: {staff_words(problem)}" if problem else ""
            label.setText(message)
            label.setVisible(bool(message))
            widget = self.field_widgets[field]
            widget.setAccessibleDescription(message)
            hint = self._hints.get(field, "")
            widget.setToolTip(plain_tooltip(message) if message else hint)
        # Only a setting without a field of its own (one the dialog does not edit) is left here.
        leftover = "; ".join(f"{_name_of(field)}: {message}" for field, message in shown.items())
        if leftover:
            self._form_error(leftover)
        elif self.form_error.isVisible() and not self._busy:
            self._form_error("")
        self._update_buttons()
        self._fit_to_messages()

    def _form_error(self, message: str) -> None:
        self.form_error.setText(staff_words(message))
        self.form_error.setVisible(bool(message))
        self._fit_to_messages()

    def _update_buttons(self) -> None:
        valid = self._draft is not None and self._db_problem is None
        self.save_button.setEnabled(valid and not self._busy)
        self.test_button.setEnabled(not self._busy and self._draft is not None)
        self.browse_button.setEnabled(not self._busy)

    def _key_edited(self) -> None:
        self.test_result.clear()
        self.verify_button.hide()
        if self._save_problem is not None and self._save_problem[0] == "api_key":
            self._save_problem = None
            self._render_errors()
        if not self.api_key_edit.text():
            self.show_key_button.setChecked(False)

    def _show_key(self, shown: bool) -> None:
        # Only text typed in this session is ever in the field, so "show" cannot reveal a stored key.
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.api_key_edit.setEchoMode(mode)
        self.show_key_button.setText("&Hide" if shown else "S&how")

    def needs_mapping(self) -> bool:
        """Whether the chosen adapter reads the POS through a mapping (its factory says so)."""
        return self._service.mappings_of(self.adapter_combo.currentText()) is not None

    def _offer_mappings(self, current: str) -> None:
        """The mapping row, shown only for an adapter that needs one, offering what it ships."""
        shipped = self._service.mappings_of(self.adapter_combo.currentText())
        self._pos_form.setRowVisible(self._mapping_row, shipped is not None)
        self.mapping_combo.blockSignals(True)
        self.mapping_combo.clear()
        self.mapping_combo.addItems(list(shipped or ()))
        self.mapping_combo.setCurrentText(current)
        self.mapping_combo.blockSignals(False)

    def _chosen_mapping(self) -> str | None:
        if not self.needs_mapping():
            return self._original.mapping  # other adapters ignore it: keep what the file says
        return self.mapping_combo.currentText().strip() or None

    def _adapter_changed(self) -> None:
        self._offer_mappings(self.mapping_combo.currentText())
        self._database_edited()

    def typed_db_password(self) -> str | None:
        """The database password typed in this session, or ``None`` to keep the stored one."""
        return self.db_password_edit.text() or None

    def _show_server_parts(self) -> None:
        """For a server's URL: the password row, and the server, database and user it names."""
        try:
            location = pos_location(self.db_path_edit.text().strip()) if self.db_path_edit.text().strip() else None
        except ValueError:
            location = None
        server = isinstance(location, ServerLocation)
        self._pos_form.setRowVisible(self._db_password_row, server)
        if isinstance(location, ServerLocation):
            port = f":{location.port}" if location.port else ""
            stored = self._service.has_stored_db_password(location)
            self.db_server_label.setText(
                f"Server {location.host}{port}, database {location.database}, user {location.user}"
                + ("; a password is saved in the OS keyring" if stored and not self.db_password_edit.text() else "")
            )
        else:
            self.db_server_label.setText("")

    def _database_edited(self) -> None:
        self._show_server_parts()
        self._db_problem = None
        self._db_checked = None
        if self._save_problem is not None and self._save_problem[0] == "db_path":
            self._save_problem = None
        self._validate()

    def _db_target(self) -> tuple[str, PosLocation | None, str | None]:
        """(adapter, database, mapping) as on screen, whatever the other fields say: a bad
        software-house-id must not hide what is wrong with the database. A URL that cannot be a
        server's (a password in it) is left for the settings check to name."""
        typed = self.db_path_edit.text().strip()
        try:
            location = pos_location(typed) if typed else None
        except ValueError:
            location = Path(typed)
        return self.adapter_combo.currentText(), location, self._chosen_mapping()

    # --- async work ----------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, object], *, busy: bool = False) -> None:
        task = self._tasks.spawn(work)
        if busy:  # counted from now, not from the task's first step, so the UI shows it at once
            self._set_busy(+1)
            task.add_done_callback(lambda _: self._set_busy(-1))

    def _set_busy(self, delta: int) -> None:
        if not isValid(self.save_button):
            return  # a check cancelled by closing the dialog ends after Qt deleted its widgets
        was = bool(self._busy)
        self._busy += delta
        self._update_buttons()
        if was != bool(self._busy):
            self.busy_changed.emit(bool(self._busy))

    @property
    def busy(self) -> bool:
        return bool(self._busy)

    def test_key(self) -> None:
        """Ask Dojo about the key typed (or the stored one) with the ids and URL on screen."""
        draft = self._draft
        if draft is None:
            return
        self.test_result.setStyleSheet("")
        self.test_result.setText("Testing…")
        self._spawn(self._test_key(draft, self.typed_key()), busy=True)
        self._check_database_soon()  # Test also checks the POS database (and its mapping's statements)

    async def _test_key(self, draft: BridgeSettings, key: str | None) -> None:
        try:
            result = await self._service.test_key(draft, key)
        except Exception as exc:  # the service answers in words; anything else is a bug, still shown
            log.exception("key test failed")
            result = TestResult(False, f"The test could not run: {type(exc).__name__}")
        words = staff_words(result.words)
        self.test_result.setStyleSheet(OK_STYLE if result.ok else ERROR_STYLE)
        self.test_result.setText(words)
        self.test_result.setAccessibleDescription(words)
        tested = key or _stored_key(draft)
        self._rejected_key = tested if not result.ok and result.words.startswith(REJECTED_WORDS) else None
        self._tested_environment = environment_of(tested)
        self.verify_button.setVisible(result.ok and self._can_verify)
        self._update_verify()
        self._fit_to_messages()

    def _update_verify(self) -> None:
        """Dojo's checks drive the bridge running with the *saved* settings, on a sandbox key."""
        if not self.verify_button.isVisible():
            return
        refusal = verification_refusal(self._tested_environment)
        unsaved = self.typed_key() is not None or self._draft != self._original
        if refusal is not None:
            why = refusal
        elif unsaved:
            why = "Save first: Dojo's checks drive the bridge that runs with the saved settings."
        else:
            why = "Run Dojo's EPOS tester tool flows against this till"
        self.verify_button.setEnabled(refusal is None and not unsaved)
        self.verify_button.setToolTip(why)

    def _verify(self) -> None:
        self.verify_requested.emit()
        self.reject()

    def browse_database(self) -> None:
        """Open a chooser for the database file (or folder); the answer fills the field later."""
        start = self.db_path_edit.text().strip() or str(Path.home())
        if self._service.location_of(self.adapter_combo.currentText()) == "folder":
            question = FileQuestion("Choose the POS database folder", start, mode="folder")
        else:
            question = FileQuestion("Choose the POS database", start, DATABASE_FILTER, mode="open")
        self.file_dialog(self, question, self._database_chosen)

    def _database_chosen(self, chosen: str, _filter: str = "") -> None:
        if chosen and isValid(self.db_path_edit):
            self.db_path_edit.setText(chosen)
            self._check_database_soon()

    def _check_database_soon(self) -> None:
        adapter, path, mapping = self._db_target()
        if path is None:
            return
        if (adapter, str(path), mapping or "") == self._db_checked:
            return
        self._spawn(self._check_database(adapter, path, mapping))

    async def _check_database(self, adapter: str, path: PosLocation | None, mapping: str | None) -> bool:
        target = (adapter, str(path or ""), mapping or "")
        self._set_busy(+1)
        try:
            problem = await self._service.check_database(adapter, path, mapping, self.typed_db_password())
        finally:
            self._set_busy(-1)
        now_adapter, now_path, now_mapping = self._db_target()
        if (now_adapter, str(now_path or ""), now_mapping or "") != target:
            return False  # edited meanwhile: the new value gets its own check
        self._db_problem = problem
        self._db_checked = target
        self._render_errors()
        return problem is None

    def save(self) -> None:
        """Validate, check the database, then hand the copy to the service; closes on success.
        A key Dojo rejected on Test is saved only once the person confirms it."""
        self._validate()
        draft = self._draft
        if draft is None or self._busy or self.confirm_box is not None:
            return
        key = self.typed_key()
        if self._rejected_key is not None and self._rejected_key == (key or _stored_key(draft)):
            self.confirm_box = confirm(
                self,
                self.windowTitle(),
                REJECTED_KEY_QUESTION,
                self._save_rejected_key,
                yes="Save anyway",
                on_no=self._keep_editing,
            )
            return
        self._spawn(self._save(draft, key), busy=True)

    def _save_rejected_key(self) -> None:
        self.confirm_box = None
        if not isValid(self.save_button):
            return
        self._validate()
        draft = self._draft
        if draft is None or self._busy:
            return
        self._spawn(self._save(draft, self.typed_key()), busy=True)

    def _keep_editing(self) -> None:
        self.confirm_box = None  # Cancel: nothing saved, the dialog stays as it was

    async def _save(self, draft: BridgeSettings, key: str | None) -> None:
        self._form_error("")
        if self._save_problem is not None:
            self._save_problem = None
            self._render_errors()
        if not await self._check_database(draft.adapter, draft.db_path, draft.mapping):
            return
        self._saving = True
        try:
            report = await self._service.save(draft, key, self.typed_db_password())
        except KeyStoreUnavailable:
            self._show_save_problem("api_key", NO_KEYRING_TEXT)
            return
        except KeyStoreError as exc:  # its sentence is safe to show and says what to do
            self._show_save_problem("api_key", str(exc))
            return
        except Exception as exc:  # the file's sentence; the dialog stays open
            self._form_error(f"Not saved: {exc}")
            return
        finally:
            self._saving = False
        self.save_report = report
        saved = draft.model_copy(update={"api_key": SecretStr(key), "api_key_source": "keyring"}) if key else draft
        self.result_settings = saved
        self.saved.emit(saved)
        self.accept()

    # --- closing ---------------------------------------------------------------------------------

    def reject(self) -> None:
        """Cancel changes nothing. While the service is saving, Cancel waits: a key already in the
        keyring cannot be taken back, and the dialog closes by itself when the save is done."""
        if self._saving:
            return
        self._cancel_tasks()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self._cancel_tasks()
        super().closeEvent(event)

    def _cancel_tasks(self) -> None:
        self._tasks.cancel()

    def _show_save_problem(self, field: str, message: str) -> None:
        self._save_problem = (field, f"not saved. {message}")
        self._render_errors()


def _stored_key(settings: BridgeSettings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key is not None else None


def _name_of(field: str) -> str:
    return FIELD_NAMES.get(field, field.replace("_", " ").capitalize())


# --- wiring for the composition root -------------------------------------------------------------


class ConfigSettingsFile:
    """The settings file through :mod:`epos_bridge.config`: read without the environment (so
    nothing the environment set is mistaken for a file value), written with ``config.save``."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    def read(self) -> BridgeSettings:
        # The fail backend: reading the file must not touch (or unlock) the OS keyring.
        return config.load(settings_path=self._path, environ={}, keystore=KeyStore(fail.Keyring()))  # type: ignore[no-untyped-call]

    def write(self, settings: BridgeSettings) -> Path:
        return config.save(settings, self._path)


def _default_http(settings: BridgeSettings) -> httpx.AsyncClient:
    # The same client as app.http_client (the UI may not import the composition root): the OS
    # trust store, the proxy setting, never a stray environment proxy unless "system".
    return dojo_http_client(settings.api_url, settings.proxy)


def build_settings_service(
    keystore: KeyStore,
    settings_path: Path,
    *,
    apply: Apply[BridgeSettings] | None = None,
    http_factory: Callable[[BridgeSettings], httpx.AsyncClient] | None = None,
    environ: Mapping[str, str] | None = None,
    adapters: Mapping[str, AdapterFactory] | None = None,
) -> SettingsService[BridgeSettings]:
    """The real service: the OS keyring, ``config.save``, a Dojo client per test, the installed adapters.

    Pass ``apply=bridge.apply_settings`` (and ``http_factory=app.http_client``) from the composition
    root; tests point the settings at the simulator and pass a real keyring backend.
    """
    make_http = http_factory or _default_http

    @contextlib.asynccontextmanager
    async def dojo(draft: BridgeSettings, credentials: DojoCredentials) -> AsyncIterator[IntegrationsReader]:
        async with make_http(draft) as http:
            yield DojoClient(
                http,
                credentials=credentials,
                base_url=draft.api_url,
                allow_insecure=draft.allow_insecure,
                max_retries=0,  # a person is waiting on the Test button: answer at once
            )

    return SettingsService(
        keystore,
        ConfigSettingsFile(settings_path),
        dojo=dojo,
        adapters=adapters if adapters is not None else installed_adapters(),
        apply=apply,
        environ=os.environ if environ is None else environ,
        env_vars=ENV_VARS,
    )
