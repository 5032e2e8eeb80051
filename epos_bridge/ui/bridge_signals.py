"""The one place where the running bridge meets Qt: its callbacks become Qt signals.

Widgets never hold the bridge. They get a :class:`BridgeSignals`, connect to its signals to
render, read its snapshots (``status``, ``settings``, ``registration``, ``lock_board``) and call
its few commands (``reconnect``, the payment-log queries). It holds no business rules: what a
status *means* is decided by the session, what deserves a notification by
``services.notifications``.

The bridge is described by :class:`BridgeLike` (a Protocol) rather than imported, because the
UI sits below the composition root (``epos_bridge.app``) in the import layers. Everything here
runs on the GUI thread: under qasync the asyncio loop *is* the Qt event loop, so a bridge
callback can emit a signal directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import RegistrationReport
from epos_bridge.domain.events import DomainEvent
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.services.activity import HeldLockView, LockBoard, PaymentLogEntry
from epos_bridge.services.dispatcher import Served

log = logging.getLogger(__name__)

REGISTRATION_POLL_MS = 1000
"""The bridge has no registration callback yet; a cheap identity check once a second stands in."""


class RegistrationLike(Protocol):
    """What the UI reads of ``app.RegistrationState``."""

    @property
    def report(self) -> RegistrationReport | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def at(self) -> datetime | None: ...
    @property
    def auth_rejected(self) -> bool: ...


class SessionLike(Protocol):
    @property
    def status(self) -> ConnectionStatus: ...
    def reconnect_now(self) -> None: ...


class PaymentLogLike(Protocol):
    async def entries(
        self, *, since: datetime | None = None, search: str | None = None, limit: int = 1000
    ) -> list[PaymentLogEntry]: ...
    async def export_csv(self, destination: Path, entries: Iterable[PaymentLogEntry]) -> int: ...


class BridgeLike(Protocol):
    """The parts of :class:`epos_bridge.app.Bridge` the UI uses."""

    @property
    def settings(self) -> BridgeSettings: ...
    @property
    def session(self) -> SessionLike: ...
    @property
    def lock_board(self) -> LockBoard: ...
    @property
    def payment_log(self) -> PaymentLogLike: ...
    @property
    def registration(self) -> RegistrationLike: ...
    def on_status(self, listener: Callable[[ConnectionStatus], None]) -> Callable[[], None]: ...
    def on_payment(self, listener: Callable[[PaymentLogEntry], None]) -> None: ...
    def on_domain_event(self, listener: Callable[[DomainEvent], None]) -> None: ...
    def on_served(self, listener: Callable[[Served], None]) -> None: ...
    async def apply_settings(self, new: BridgeSettings) -> list[str]: ...


class BridgeSignals(QObject):
    """Re-emits a bridge's callbacks as Qt signals and offers the widgets' few commands.

    Signals carry the bridge's own immutable values: ``status_changed(ConnectionStatus)``,
    ``payment(PaymentLogEntry)`` (a new line, or one whose status changed),
    ``domain_event(DomainEvent)``, ``served(Served)``, ``registration_changed(RegistrationState)``
    and ``settings_changed(BridgeSettings)`` (after :meth:`apply_settings`).
    """

    status_changed = Signal(object)
    payment = Signal(object)
    domain_event = Signal(object)
    served = Signal(object)
    registration_changed = Signal(object)
    settings_changed = Signal(object)

    def __init__(self, bridge: BridgeLike, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._attached = True
        # The bridge offers no unsubscribe for these three; detach() makes them no-ops instead.
        bridge.on_payment(self._relay(self.payment))
        bridge.on_domain_event(self._relay(self.domain_event))
        bridge.on_served(self._relay(self.served))
        self._unsubscribe_status = bridge.on_status(self._relay(self.status_changed))
        self._registration: RegistrationLike = bridge.registration
        self._poll = QTimer(self)
        self._poll.setInterval(REGISTRATION_POLL_MS)
        self._poll.timeout.connect(self.check_registration)
        self._poll.start()

    def _relay(self, signal: SignalInstance) -> Callable[[object], None]:
        def emit(value: object) -> None:
            if self._attached:
                signal.emit(value)

        return emit

    def detach(self) -> None:
        """Stop relaying (before the bridge or this object goes away)."""
        self._attached = False
        self._poll.stop()
        self._unsubscribe_status()

    # --- snapshots --------------------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        return self._bridge.session.status

    @property
    def settings(self) -> BridgeSettings:
        return self._bridge.settings

    @property
    def registration(self) -> RegistrationLike:
        return self._bridge.registration

    @property
    def lock_board(self) -> LockBoard:
        return self._bridge.lock_board

    def check_registration(self) -> None:
        """Emit ``registration_changed`` if the bridge has a new registration result."""
        current = self._bridge.registration
        if self._attached and current is not self._registration:
            self._registration = current
            self.registration_changed.emit(current)

    # --- commands ---------------------------------------------------------------------------

    def reconnect(self) -> None:
        """The Reconnect button: drop the connection (or the pause) and connect at once."""
        log.info("reconnect requested from the status window")
        self._bridge.session.reconnect_now()

    def expire_locks(self, now: datetime) -> list[HeldLockView]:
        """Move locks past their expiry to the history (the lock view's 1 s tick)."""
        return self._bridge.lock_board.expire(now)

    async def payments(
        self, *, since: datetime | None = None, search: str | None = None, limit: int = 1000
    ) -> list[PaymentLogEntry]:
        """The payment log, newest first, queried off the GUI thread."""
        return await self._bridge.payment_log.entries(since=since, search=search or None, limit=limit)

    async def export_csv(self, destination: Path, entries: Iterable[PaymentLogEntry]) -> int:
        return await self._bridge.payment_log.export_csv(destination, entries)

    async def apply_settings(self, new: BridgeSettings) -> list[str]:
        """Apply saved settings to the running bridge; tells ``settings_changed`` afterwards."""
        changed = await self._bridge.apply_settings(new)
        if self._attached:
            self.settings_changed.emit(self._bridge.settings)
            self.check_registration()
        return changed
