"""The Connection tab: whether card payments work, and what the bridge is connected to.

The state in words ("Connected — card payments work") with its icon, since when, the gateway,
the ids, sandbox or production, the capabilities Dojo routes here, the last error, the POS
events still waiting to reach Dojo and the last delivery problem; which POS adapter and database
are in use and where the logs are (support's first three questions); Reconnect, Settings…,
Verify with Dojo… and Open logs folder leave as signals. It renders what :class:`BridgeSignals` carries, in the words
of :mod:`epos_bridge.ui.words`; the window sets the icon (it knows the attention badge).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import RegistrationState
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.services.pos_events import RelayStatus
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.clock import Clock, utc_now
from epos_bridge.ui.styles import ERROR_STYLE, scaled_font
from epos_bridge.ui.text import PlainLabel
from epos_bridge.ui.words import (
    describe_adapter,
    describe_environment,
    describe_outbox_depth,
    describe_outbox_error,
    describe_registration,
    describe_since,
    describe_status,
)

ICON_SIZE = 56


class ConnectionTab(QWidget):
    """The connection at a glance. ``reconnect_requested``, ``settings_requested`` and
    ``verify_requested`` are the staff's commands (the window carries them out)."""

    reconnect_requested = Signal()
    settings_requested = Signal()
    verify_requested = Signal()
    logs_requested = Signal()

    def __init__(self, signals: BridgeSignals, *, clock: Clock = utc_now, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._signals = signals
        self._clock = clock

        self.state_icon = PlainLabel()
        self.state_icon.setFixedSize(ICON_SIZE, ICON_SIZE)
        self.state_label = PlainLabel()
        self.state_label.setObjectName("stateLabel")
        self.state_label.setFont(scaled_font(self.state_label.font(), 1.6, bold=True))
        self.state_label.setWordWrap(True)
        self.since_label = PlainLabel()
        words = QVBoxLayout()
        words.addWidget(self.state_label)
        words.addWidget(self.since_label)
        head = QHBoxLayout()
        head.addWidget(self.state_icon)
        head.addLayout(words, 1)

        outer = QVBoxLayout(self)
        outer.addLayout(head)
        outer.addLayout(self._build_form())
        outer.addLayout(self._build_buttons())
        outer.addStretch(1)

        signals.status_changed.connect(self.show_status)
        signals.registration_changed.connect(self.show_registration)
        signals.settings_changed.connect(self.show_settings)
        signals.outbox_changed.connect(self.show_outbox)
        self.show_status(signals.status)
        self.show_registration(signals.registration)
        self.show_settings(signals.settings)
        self.show_outbox(signals.outbox)

    def _build_form(self) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.gateway_label = PlainLabel()
        self.software_house_label = PlainLabel()
        self.reseller_label = PlainLabel()
        self.environment_label = PlainLabel()
        self.capabilities_label = PlainLabel()
        self.capabilities_label.setWordWrap(True)
        self.last_error_label = PlainLabel()
        self.last_error_label.setWordWrap(True)
        # POS events (contract §5.2): Dojo learns about till-side changes only through these.
        self.outbox_depth_label = PlainLabel()
        self.outbox_error_label = PlainLabel()
        self.outbox_error_label.setWordWrap(True)
        self.adapter_label = PlainLabel()
        self.database_label = PlainLabel()
        self.database_label.setWordWrap(True)
        self.logs_label = PlainLabel()
        self.logs_label.setWordWrap(True)
        selectable = Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        for label in (
            self.gateway_label,
            self.software_house_label,
            self.reseller_label,
            self.last_error_label,
            self.outbox_error_label,
            self.database_label,
            self.logs_label,
        ):
            label.setTextInteractionFlags(selectable)
        for name, label in (
            ("Gateway:", self.gateway_label),
            ("Software house id:", self.software_house_label),
            ("Reseller id:", self.reseller_label),
            ("Environment:", self.environment_label),
            ("Capabilities:", self.capabilities_label),
            ("Last error:", self.last_error_label),
            ("POS events waiting:", self.outbox_depth_label),
            ("Last delivery problem:", self.outbox_error_label),
            ("POS adapter:", self.adapter_label),
            ("POS database:", self.database_label),
            ("Logs:", self.logs_label),
        ):
            form.addRow(PlainLabel(name), label)
        return form

    def _build_buttons(self) -> QHBoxLayout:
        self.reconnect_button = QPushButton("&Reconnect now")
        self.reconnect_button.setToolTip("Drop the connection to Dojo and connect again at once (Ctrl+R)")
        self.reconnect_button.clicked.connect(self.reconnect_requested)
        self.settings_button = QPushButton("Se&ttings…")
        self.settings_button.clicked.connect(self.settings_requested)
        self.verify_button = QPushButton("Verify with &Dojo…")
        self.verify_button.setToolTip("Run Dojo's EPOS tester tool flows against this till (sandbox keys only)")
        self.verify_button.clicked.connect(self.verify_requested)
        self.logs_button = QPushButton("Open &logs folder")
        self.logs_button.setToolTip("Show the bridge's log files in the file browser (support asks for them)")
        self.logs_button.clicked.connect(self.logs_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reconnect_button)
        buttons.addWidget(self.settings_button)
        buttons.addWidget(self.verify_button)
        buttons.addWidget(self.logs_button)
        buttons.addStretch(1)
        return buttons

    # --- rendering --------------------------------------------------------------------------------

    def show_status(self, status: ConnectionStatus) -> None:
        self.state_label.setText(describe_status(status, self._clock()))
        self.since_label.setText(describe_since(status, self._clock()))
        self.last_error_label.setText(status.last_error or "none")

    def show_state_icon(self, icon: QIcon) -> None:
        self.state_icon.setPixmap(icon.pixmap(ICON_SIZE, ICON_SIZE))

    def show_registration(self, registration: RegistrationState) -> None:
        self.capabilities_label.setText(describe_registration(registration))

    def show_settings(self, settings: BridgeSettings) -> None:
        self.gateway_label.setText(settings.ws_url)
        self.software_house_label.setText(settings.software_house_id or "Not set — open Settings")
        self.reseller_label.setText(settings.reseller_id or "not set")
        self.environment_label.setText(describe_environment(settings.environment))
        self.adapter_label.setText(describe_adapter(settings.adapter, settings.mapping))
        self.database_label.setText(str(settings.db_path) if settings.db_path else "Not set — open Settings")
        self.logs_label.setText(str(settings.log_dir))

    def show_outbox(self, status: RelayStatus) -> None:
        self.outbox_depth_label.setText(describe_outbox_depth(status))
        self.outbox_error_label.setText(describe_outbox_error(status))
        self.outbox_error_label.setStyleSheet(ERROR_STYLE if status.last_error else "")

    def tick(self) -> None:
        """Once a second: the "next try in N s" countdown under the headline."""
        status = self._signals.status
        if status.next_retry_at is not None:
            self.since_label.setText(describe_since(status, self._clock()))
