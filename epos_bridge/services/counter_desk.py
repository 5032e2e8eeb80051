"""What pay at counter shares between starting a session and following it: its ports, the POS
steps (lock, release, record, refund) and the updates it tells the UI.

Split from :mod:`epos_bridge.services.counter` so that each class does one thing; see that
module for the promises a counter sale keeps.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from epos_bridge.domain.captures import NOT_ON_TILL, CapturedCardPayment, CaptureNotOnTill, CaptureSettled
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.events import DomainEvent
from epos_bridge.domain.terminal_sessions import (
    CANCELLABLE,
    FINAL,
    PAY_AT_COUNTER,
    SALE_LOCK_FOR,
    SUCCESS,
    CounterSession,
    refund_as_event,
)
from epos_bridge.ports import CallContext, Clock, CounterDojo, CounterSessionStore, PosAdapter
from epos_bridge.protocol.dojo_rest import TerminalSessionStatus
from epos_bridge.protocol.entities import Money, Order
from epos_bridge.protocol.jsonrpc import new_trace_id
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    DeleteOrderLockParams,
    ExtendOrderLockParams,
    OrderIdParams,
    RequestHeaders,
)
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.pos_connection import PosConnection

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
PosSource = Callable[[], PosConnection]


@dataclass(frozen=True)
class SessionUpdate:
    """What the terminal panel shows, each time the session moves. Codes, not words: the UI
    words them (``status`` is a TerminalSessionStatus or ``CreatingSession``, ``notifications``
    are Dojo's notification types, an open set)."""

    session_id: str
    kind: str
    status: str
    notifications: tuple[str, ...]
    final: bool
    succeeded: bool
    cancellable: bool
    awaiting_signature: bool
    order_id: str | None = None
    amount: Money | None = None
    recorded: bool = False
    error: str | None = None
    terminal_id: str | None = None
    terminal_name: str | None = None
    """The terminal's short id (``tid``) when known, else its Dojo id: how staff name it."""
    order_label: str | None = None
    """How the till names the order (``Table 12``, ``T12-0008``) when known."""
    unrecorded_capture: bool = False
    """The card was captured but the POS does not hold the payment yet: alert staff, do not
    charge it again. Stays true in every update until it lands (or is refused, ``error``)."""
    not_on_till: bool = False
    """The card was captured and the POS refused it for good (``error`` says why): the bridge
    keeps it as "captured, not on the till" until staff refund it (see
    :meth:`epos_bridge.services.counter.CounterPayments.captures_not_on_till`)."""


@dataclass
class CounterDesk:
    """The ports and the state both halves of pay at counter work with."""

    client: CounterDojo
    pos: PosSource
    store: CounterSessionStore
    clock: Clock
    wall: Callable[[], float]
    poll_s: float
    sleep: Sleep
    publish_event: Callable[[DomainEvent], None]
    listeners: Listeners[SessionUpdate] = field(default_factory=lambda: Listeners("terminal-session"))
    unrecorded: dict[str, str] = field(default_factory=dict)
    """Orders holding a captured card not yet on the till: order id -> session id."""
    terminal_names: dict[str, str] = field(default_factory=dict)
    order_labels: dict[str, str] = field(default_factory=dict)
    """How the till names each order a sale was started for (its display name or reference), by
    order id: staff are told "£40.00 for Table 12", never a terminal number."""
    not_on_till: dict[str, CaptureNotOnTill] = field(default_factory=dict)
    """Captured cards the POS refused, by session id, until refunded or landed."""
    alerts: Listeners[tuple[CaptureNotOnTill, ...]] = field(default_factory=lambda: Listeners("captured-not-on-till"))
    """Hears every change of :attr:`not_on_till`, the whole current set each time."""

    # --- the POS -------------------------------------------------------------------------

    def context(self, device_id: str | None = None) -> CallContext:
        return CallContext(
            trace_id=new_trace_id(),
            headers=RequestHeaders(dojo_requesting_product=PAY_AT_COUNTER, device_id=device_id),
        )

    def publish(self, ctx: CallContext) -> None:
        """The payment log and lock board hear about counter payments like any other."""
        for event in ctx.events:
            self.publish_event(event)

    async def order(self, order_id: str) -> Order:
        async with self.pos().using() as adapter:
            return await adapter.get_order(OrderIdParams(order_id=order_id), self.context())

    async def lock(self, order_id: str, lock_id: str) -> Order:
        ctx = self.context()
        params = CreateOrderLockParams(
            headers=ctx.headers, order_id=order_id, lock_id=lock_id, expiry=self.clock.now() + SALE_LOCK_FOR
        )
        try:
            async with self.pos().using() as adapter:
                return await adapter.create_order_lock(params, ctx)
        finally:
            self.publish(ctx)

    async def unlock(self, order_id: str | None, lock_id: str | None) -> None:
        if not order_id or not lock_id:
            return
        ctx = self.context()
        try:
            async with self.pos().using() as adapter:
                await adapter.delete_order_lock(
                    DeleteOrderLockParams(headers=ctx.headers, order_id=order_id, lock_id=lock_id), ctx
                )
        except EposFailure as exc:  # an expired lock counts as released anyway
            log.warning("could not release the counter lock on order %s: %s", order_id, exc.message)
        self.publish(ctx)

    async def keep_locked(self, adapter: PosAdapter, record: CounterSession) -> None:
        """While a captured card waits for the till, keep the order ours (best effort: the
        recording right after is what matters, and it needs no lock)."""
        if not record.order_id or not record.lock_id:
            return
        ctx = self.context()
        params = ExtendOrderLockParams(
            headers=ctx.headers,
            order_id=record.order_id,
            lock_id=record.lock_id,
            expiry=self.clock.now() + SALE_LOCK_FOR,
        )
        with contextlib.suppress(EposFailure):
            await adapter.extend_order_lock(params, ctx)
        self.publish(ctx)

    async def record_sale(self, record: CounterSession, *, retrying: bool) -> None:
        """Record a captured sale once (the paymentIntentId de-duplicates); raises EposFailure."""
        assert record.order_id is not None
        assert record.payment_intent_id is not None
        ctx = self.context(record.terminal_id)
        # Captured: recorded whatever lock is on the order now, ours or another's (domain/captures.py).
        params = CapturedCardPayment(
            headers=ctx.headers,
            order_id=record.order_id,
            payment_intent_id=record.payment_intent_id,
            paid_amount=record.amount,
            lock_id=record.lock_id,
        )
        async with self.pos().using() as adapter:
            if retrying:
                await self.keep_locked(adapter, record)
            await adapter.record_order_payment(params, ctx)
        self.publish(ctx)

    async def keep_not_on_till(self, record: CounterSession, reason: str) -> CaptureNotOnTill:
        """The POS refused a captured card for good: keep it (durably first, as the session's
        status; the session stays unfinished), tell the payment log and alert staff."""
        assert record.order_id is not None
        assert record.payment_intent_id is not None
        await self.store.set_status(record.session_id, NOT_ON_TILL)
        reference = display_name = None
        with contextlib.suppress(EposFailure):  # how the till names it, if it still can (never needed)
            order = await self.order(record.order_id)
            reference, display_name = order.reference, order.display_name
        capture = CaptureNotOnTill(
            record.order_id, self.clock.now(), record.session_id, record.payment_intent_id, record.amount, reason,
            record.terminal_id, reference, display_name,
        )  # fmt: skip
        self.not_on_till[record.session_id] = capture
        self.publish_event(capture)
        self.alerts.emit(tuple(self.not_on_till.values()))
        return capture

    def settle(self, session_id: str, payment_intent_id: str, order_id: str, status: str) -> None:
        """A capture that was not on the till is refunded or landed: the payment log says so and
        the alert goes."""
        self.not_on_till.pop(session_id, None)
        self.publish_event(CaptureSettled(order_id, self.clock.now(), session_id, payment_intent_id, status))
        self.alerts.emit(tuple(self.not_on_till.values()))

    async def record_refund(self, record: CounterSession) -> None:
        """The refunded payment stops counting on the order (domain: ``refund_as_event``)."""
        assert record.payment_intent_id is not None
        ctx = self.context(record.terminal_id)
        params, event = refund_as_event(record.session_id, record.payment_intent_id, self.clock.now())
        async with self.pos().using() as adapter:
            await adapter.handle_payment_intent_event(params, event, ctx)
        self.publish(ctx)

    # --- telling the UI -------------------------------------------------------------------

    def tell(
        self,
        record: CounterSession,
        status: str,
        notifications: tuple[str, ...] = (),
        *,
        recorded: bool = False,
        error: str | None = None,
        unrecorded_capture: bool = False,
        not_on_till: bool = False,
    ) -> None:
        self.listeners.emit(
            SessionUpdate(
                session_id=record.session_id,
                kind=record.kind,
                status=status,
                notifications=notifications,
                final=status in FINAL and not unrecorded_capture,
                succeeded=status in SUCCESS,
                cancellable=status in CANCELLABLE,
                awaiting_signature=status == TerminalSessionStatus.SIGNATURE_VERIFICATION_REQUIRED,
                order_id=record.order_id,
                amount=record.amount,
                recorded=recorded,
                error=error,
                terminal_id=record.terminal_id,
                terminal_name=self.terminal_names.get(record.terminal_id, record.terminal_id),
                order_label=self.order_labels.get(record.order_id) if record.order_id else None,
                unrecorded_capture=unrecorded_capture,
                not_on_till=not_on_till,
            )
        )
