"""The one place where the running bridge meets Qt: its callbacks become Qt signals.

Widgets never hold the bridge. They get a :class:`BridgeSignals`, connect to its signals to
render, read its snapshots (``status``, ``settings``, ``registration``, ``lock_board``,
``outbox``) and call its few commands (``reconnect``, the payment-log queries, the open-order
search and the counter-payment commands, all awaited so the GUI thread never waits). It holds no
business rules: what a status *means* is decided by the session, what deserves a notification by
``services.notifications``, how a terminal session is followed and recorded by
``epos_bridge.services.counter``.

The bridge is described by :class:`BridgeLike` (a Protocol) rather than imported, because the
UI sits below the composition root (``epos_bridge.app``) in the import layers. Everything here
runs on the GUI thread: under qasync the asyncio loop *is* the Qt event loop, so a bridge
callback can emit a signal directly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal, SignalInstance

from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import RegistrationState, Terminal
from epos_bridge.domain.captures import CaptureNotOnTill
from epos_bridge.domain.events import DomainEvent
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.protocol.entities import Money, Order
from epos_bridge.protocol.params import PagedOrders, SearchOrdersParams
from epos_bridge.services.activity import HeldLockView, LockBoard, PaymentLogEntry
from epos_bridge.services.counter import SessionUpdate
from epos_bridge.services.dispatcher import Served
from epos_bridge.services.paging import every_page
from epos_bridge.services.pos_events import RelayStatus

log = logging.getLogger(__name__)

OPEN_ORDERS_PAGE = 100
OPEN_ORDERS_MAX_PAGES = 5
"""The Terminal tab lists at most 500 open orders: a till never has more open at once."""


class SessionLike(Protocol):
    @property
    def status(self) -> ConnectionStatus: ...
    def reconnect_now(self) -> None: ...
    def network_changed(self) -> None: ...


class PaymentLogLike(Protocol):
    async def entries(
        self, *, since: datetime | None = None, search: str | None = None, limit: int = 1000
    ) -> list[PaymentLogEntry]: ...
    async def export_csv(self, destination: Path, entries: Iterable[PaymentLogEntry]) -> int: ...


class CounterLike(Protocol):
    """What the UI uses of :class:`epos_bridge.services.counter.CounterPayments`."""

    def on_update(self, listener: Callable[[SessionUpdate], None]) -> None: ...
    async def terminals(self) -> list[Terminal]: ...
    async def outstanding(self, order_id: str) -> Money: ...
    async def start_sale(self, order_id: str, terminal_id: str, amount: Money) -> str: ...
    async def start_matched_refund(
        self, payment_intent_id: str, order_id: str | None, terminal_id: str, amount: Money
    ) -> str: ...
    async def start_unlinked_refund(self, terminal_id: str, amount: Money) -> str: ...
    async def cancel(self, session_id: str) -> None: ...
    async def answer_signature(self, session_id: str, accepted: bool) -> None: ...
    def captures_not_on_till(self) -> tuple[CaptureNotOnTill, ...]: ...
    def on_not_on_till(self, listener: Callable[[tuple[CaptureNotOnTill, ...]], None]) -> Callable[[], None]: ...
    async def refund_not_on_till(self, session_id: str) -> None: ...


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
    def registration(self) -> RegistrationState: ...
    @property
    def counter(self) -> CounterLike: ...
    async def search_orders(self, params: SearchOrdersParams) -> PagedOrders: ...
    def on_outbox(self, listener: Callable[[RelayStatus], None]) -> None: ...
    def on_status(self, listener: Callable[[ConnectionStatus], None]) -> Callable[[], None]: ...
    def on_registration(self, listener: Callable[[RegistrationState], None]) -> Callable[[], None]: ...
    def on_payment(self, listener: Callable[[PaymentLogEntry], None]) -> None: ...
    def on_domain_event(self, listener: Callable[[DomainEvent], None]) -> None: ...
    def on_served(self, listener: Callable[[Served], None]) -> None: ...
    async def apply_settings(self, new: BridgeSettings) -> list[str]: ...


class BridgeSignals(QObject):
    """Re-emits a bridge's callbacks as Qt signals and offers the widgets' few commands.

    Signals carry the bridge's own immutable values: ``status_changed(ConnectionStatus)``,
    ``payment(PaymentLogEntry)`` (a new line, or one whose status changed),
    ``domain_event(DomainEvent)``, ``served(Served)``, ``registration_changed(RegistrationState)``,
    ``settings_changed(BridgeSettings)`` (after :meth:`apply_settings`),
    ``counter_update(SessionUpdate)`` (a terminal session moved),
    ``captures_not_on_till(tuple[CaptureNotOnTill, ...])`` (the captured cards the POS refused,
    all of them, each time the set changes; empty once none is left) and
    ``outbox_changed(RelayStatus)`` (the POS-event queue's depth or last error changed; a copy,
    so a receiver may keep it).
    """

    status_changed = Signal(object)
    payment = Signal(object)
    domain_event = Signal(object)
    served = Signal(object)
    registration_changed = Signal(object)
    settings_changed = Signal(object)
    counter_update = Signal(object)
    captures_not_on_till = Signal(object)
    outbox_changed = Signal(object)

    def __init__(self, bridge: BridgeLike, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._attached = True
        # The bridge offers no unsubscribe for these three; detach() makes them no-ops instead.
        bridge.on_payment(self._relay(self.payment))
        bridge.on_domain_event(self._relay(self.domain_event))
        bridge.on_served(self._relay(self.served))
        bridge.counter.on_update(self._relay(self.counter_update))
        self._unsubscribe_captures = bridge.counter.on_not_on_till(self._relay(self.captures_not_on_till))
        # Nothing is queued until the relay says otherwise: it reports every change from zero.
        self._outbox = RelayStatus()
        bridge.on_outbox(self._outbox_changed)
        self._unsubscribe_status = bridge.on_status(self._relay(self.status_changed))
        self._unsubscribe_registration = bridge.on_registration(self._relay(self.registration_changed))

    def _relay(self, signal: SignalInstance) -> Callable[[object], None]:
        def emit(value: object) -> None:
            if self._attached:
                signal.emit(value)

        return emit

    def _outbox_changed(self, status: RelayStatus) -> None:
        # The relay hands out its own mutable status object: keep and send a snapshot.
        self._outbox = dataclasses.replace(status)
        if self._attached:
            self.outbox_changed.emit(self._outbox)

    def detach(self) -> None:
        """Stop relaying (before the bridge or this object goes away)."""
        self._attached = False
        self._unsubscribe_status()
        self._unsubscribe_registration()
        self._unsubscribe_captures()

    # --- snapshots --------------------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        return self._bridge.session.status

    @property
    def settings(self) -> BridgeSettings:
        return self._bridge.settings

    @property
    def registration(self) -> RegistrationState:
        return self._bridge.registration

    @property
    def lock_board(self) -> LockBoard:
        return self._bridge.lock_board

    @property
    def outbox(self) -> RelayStatus:
        """The POS-event queue as last reported (depth 0 and no error until the relay says)."""
        return self._outbox

    # --- commands ---------------------------------------------------------------------------

    def reconnect(self) -> None:
        """The Reconnect button: drop the connection (or the pause) and connect at once."""
        log.info("reconnect requested from the status window")
        self._bridge.session.reconnect_now()

    def network_changed(self) -> None:
        """The OS says the network changed: retry at once if waiting, else probe the link."""
        self._bridge.session.network_changed()

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
        return changed

    # --- the Terminal tab: open orders and counter payments -----------------------------------

    async def open_orders(self) -> list[Order]:
        """The till's open orders (not finalized or cancelled), read through the bridge's adapter
        (asynchronously; the adapter does its disk work off the GUI thread)."""
        return await every_page(
            lambda cursor: self._bridge.search_orders(SearchOrdersParams(cursor=cursor)),
            page_size=OPEN_ORDERS_PAGE,
            max_pages=OPEN_ORDERS_MAX_PAGES,
        )

    async def terminals(self) -> list[Terminal]:
        return await self._bridge.counter.terminals()

    async def outstanding(self, order_id: str) -> Money:
        return await self._bridge.counter.outstanding(order_id)

    async def start_sale(self, order_id: str, terminal_id: str, amount: Money) -> str:
        """Start a Sale on the terminal; returns the session id (updates follow as ``counter_update``)."""
        log.info(
            "card payment of %s %s for order %s started on %s",
            amount.value,
            amount.currency_code,
            order_id,
            terminal_id,
        )
        return await self._bridge.counter.start_sale(order_id, terminal_id, amount)

    async def start_matched_refund(
        self, payment_intent_id: str, order_id: str | None, terminal_id: str, amount: Money
    ) -> str:
        log.info("refund of %s started on %s", payment_intent_id, terminal_id)
        return await self._bridge.counter.start_matched_refund(payment_intent_id, order_id, terminal_id, amount)

    async def start_unlinked_refund(self, terminal_id: str, amount: Money) -> str:
        log.info("unlinked refund of %s %s started on %s", amount.value, amount.currency_code, terminal_id)
        return await self._bridge.counter.start_unlinked_refund(terminal_id, amount)

    async def cancel_session(self, session_id: str) -> None:
        await self._bridge.counter.cancel(session_id)

    async def answer_signature(self, session_id: str, accepted: bool) -> None:
        log.info("signature %s for terminal session %s", "accepted" if accepted else "rejected", session_id)
        await self._bridge.counter.answer_signature(session_id, accepted)

    def not_on_till(self) -> tuple[CaptureNotOnTill, ...]:
        """The captured cards the POS refused, now (the alert's first rendering)."""
        return self._bridge.counter.captures_not_on_till()

    async def refund_not_on_till(self, session_id: str) -> None:
        """The alert's one click: Dojo reverses the card payment; ``captures_not_on_till`` follows."""
        log.info("refund of the captured card not on the till (terminal session %s) requested", session_id)
        await self._bridge.counter.refund_not_on_till(session_id)
