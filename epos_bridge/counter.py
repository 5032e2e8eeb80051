"""Pay at counter: take a card payment for an open order on a Dojo terminal, and refunds.

Staff choose a terminal and an amount; the bridge creates the payment intent and a terminal
session, follows it (polling about once a second, contract §5.5 (rec)) and reports every status
and notification in words. On a successful end (``Captured`` or ``SignatureVerificationAccepted``)
the payment is recorded through the same idempotent path as RecordOrderPaymentById, keyed by
the paymentIntentId, so it lands on the order exactly once — even if the final status is seen
twice or the bridge restarts mid-session (unfinished sessions are kept in the state database and
followed again on start). Declined, canceled, expired and rejected sessions record nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from epos_bridge.dojo_api import (
    DojoApiError,
    DojoClient,
    MatchedRefundDetails,
    Money,
    SaleDetails,
    Terminal,
    TerminalSession,
    TerminalSessionStatus,
    TerminalStatus,
    UnlinkedRefundDetails,
)
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.events import DomainEvent
from epos_bridge.ports import CallContext, Clock, PosAdapter, SystemClock
from epos_bridge.protocol.entities import CaptureMode, Order, PaymentIntentEvent, PaymentIntentStatus
from epos_bridge.protocol.entities import Money as WireMoney
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    DeleteOrderLockParams,
    HandleEventParams,
    OrderIdParams,
    RecordOrderPaymentParams,
    RequestHeaders,
)
from epos_bridge.services.dispatcher import new_trace_id
from epos_bridge.services.listeners import Listeners
from epos_bridge.state.terminal_sessions import CounterSession, TerminalSessionStore

log = logging.getLogger(__name__)

PAY_AT_COUNTER = "PayAtCounter"
"""The requesting product recorded with counter payments (payment log, lock board)."""

POLL_S = 1.0
SALE_LOCK_FOR = timedelta(minutes=15)
"""Longer than a terminal session lives (about 5 minutes); released as soon as it ends."""


class CounterRefused(Exception):
    """The sale cannot start; the message is for staff, in words."""


SUCCESS = frozenset({TerminalSessionStatus.CAPTURED, TerminalSessionStatus.SIGNATURE_VERIFICATION_ACCEPTED})
FINAL = SUCCESS | frozenset(
    {
        TerminalSessionStatus.CANCELED,
        TerminalSessionStatus.SIGNATURE_VERIFICATION_REJECTED,
        TerminalSessionStatus.EXPIRED,
        TerminalSessionStatus.DECLINED,
    }
)
CANCELLABLE = frozenset(
    {TerminalSessionStatus.INITIATE_REQUESTED, TerminalSessionStatus.INITIATED, TerminalSessionStatus.AUTHORIZED}
)

STATUS_WORDS = {
    "InitiateRequested": "Sending to the terminal…",
    "Initiated": "Waiting for the card",
    "Authorized": "Authorised, waiting for capture",
    "Captured": "Approved",
    "CancelRequested": "Cancelling…",
    "Canceled": "Cancelled",
    "SignatureVerificationRequired": "Check the customer's signature",
    "SignatureVerificationAccepted": "Approved (signature accepted)",
    "SignatureVerificationRejected": "Signature rejected: payment reversed",
    "Expired": "Expired: nobody presented a card",
    "Declined": "Declined by the card issuer",
}

NOTIFICATION_WORDS = {
    "PresentCard": "Present card",
    "InsertCard": "Insert card",
    "EnterPin": "Enter PIN",
    "PleaseWait": "Please wait",
    "Approved": "Approved",
    "Declined": "Declined",
    "PresentOnlyOneCard": "Present only one card",
    "RemoveCard": "Remove card",
    "CardUnsupported": "Card not supported",
    "CardError": "Card error: try again",
    "ReEnterCard": "Re-enter card",
}


def in_words(status: str) -> str:
    return STATUS_WORDS.get(status, status)


def notification_in_words(notification: str) -> str:
    """``notificationType`` is an open set (contract §5.5, §6 E2): unknown values shown as given."""
    return NOTIFICATION_WORDS.get(notification, notification)


@dataclass(frozen=True)
class SessionUpdate:
    """What the terminal panel shows, each time the session moves."""

    session_id: str
    kind: str
    status: str
    words: str
    notifications: tuple[str, ...]
    final: bool
    succeeded: bool
    cancellable: bool
    awaiting_signature: bool
    order_id: str | None = None
    amount: WireMoney | None = None
    recorded: bool = False
    error: str | None = None


Listener = Callable[[SessionUpdate], None]


@dataclass
class _Followed:
    session: CounterSession
    task: asyncio.Task[None] | None = None
    seen_notifications: list[str] = field(default_factory=list)


class CounterPayments:
    def __init__(
        self,
        client: DojoClient,
        adapter: PosAdapter,
        store: TerminalSessionStore,
        *,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        publish: Callable[[DomainEvent], None] = lambda event: None,
    ) -> None:
        self.client = client
        self.adapter = adapter
        self.store = store
        self._clock = clock or SystemClock()
        self._poll_s = poll_s
        self._sleep = sleep
        self._publish_event = publish
        self._listeners: Listeners[SessionUpdate] = Listeners("terminal-session")
        self._followed: dict[str, _Followed] = {}

    def on_update(self, listener: Listener) -> None:
        self._listeners.add(listener)

    async def terminals(self) -> list[Terminal]:
        return await self.client.list_terminals()

    @staticmethod
    def available(terminals: list[Terminal]) -> list[Terminal]:
        return [t for t in terminals if t.status == TerminalStatus.AVAILABLE]

    async def outstanding(self, order_id: str) -> WireMoney:
        """The amount the payment dialog defaults to."""
        order = await self.adapter.get_order(OrderIdParams(order_id=order_id), CallContext(trace_id=new_trace_id()))
        total = order.total_amount.value if order.total_amount else 0
        paid = order.paid_amount.value if order.paid_amount else 0
        currency = order.total_amount.currency_code if order.total_amount else "GBP"
        return WireMoney(value=max(0, total - paid), currency_code=currency)

    async def start_sale(self, order_id: str, terminal_id: str, amount: WireMoney) -> str:
        """Lock the order, create the intent and the Sale session; returns the session id.

        The order is locked like Dojo's own products do before the card is charged, so a card is
        never taken for an order the POS would refuse (open on a till, closed, already paid) and
        no till edits it mid-payment. A failed POST /payment-intents is reported, never retried
        blindly (contract §5.6).
        """
        if amount.value <= 0:
            raise CounterRefused("The amount must be more than zero.")
        lock_id = f"counter-{uuid.uuid4().hex}"
        order = await self._lock(order_id, lock_id)
        try:
            outstanding = (order.total_amount.value if order.total_amount else 0) - (
                order.paid_amount.value if order.paid_amount else 0
            )
            if amount.value > outstanding:
                raise CounterRefused(f"Only {outstanding / 100:.2f} is outstanding on this order.")
            reference = (order.reference or f"Order {order_id}")[:60]
            intent = await self.client.create_payment_intent(
                Money(value=amount.value, currency_code=amount.currency_code),
                reference,
                metadata={"eposOrderId": order_id, "eposLockId": lock_id},
                order_external_id=order_id,
                description=order.display_name or reference,
            )
            if intent.id is None:
                raise DojoApiError("Dojo created a payment intent without an id")
            session = await self.client.create_terminal_session(terminal_id, SaleDetails(intent.id))
        except BaseException:
            await self._unlock(order_id, lock_id)
            raise
        return await self._follow_new(session, "Sale", terminal_id, order_id, intent.id, amount, lock_id)

    async def start_matched_refund(
        self, payment_intent_id: str, order_id: str | None, terminal_id: str, amount: WireMoney
    ) -> str:
        session = await self.client.create_terminal_session(
            terminal_id,
            MatchedRefundDetails(payment_intent_id, Money(value=amount.value, currency_code=amount.currency_code)),
        )
        return await self._follow_new(session, "MatchedRefund", terminal_id, order_id, payment_intent_id, amount)

    async def start_unlinked_refund(self, terminal_id: str, amount: WireMoney) -> str:
        session = await self.client.create_terminal_session(
            terminal_id, UnlinkedRefundDetails(Money(value=amount.value, currency_code=amount.currency_code))
        )
        return await self._follow_new(session, "UnlinkedRefund", terminal_id, None, None, amount)

    async def _lock(self, order_id: str, lock_id: str) -> Order:
        ctx = self._context()
        params = CreateOrderLockParams(
            headers=ctx.headers, order_id=order_id, lock_id=lock_id, expiry=self._clock.now() + SALE_LOCK_FOR
        )
        try:
            order = await self.adapter.create_order_lock(params, ctx)
        except EposFailure as refused:
            self._publish(ctx)
            raise CounterRefused(f"This order cannot take a card payment now: {refused.message}") from refused
        self._publish(ctx)
        return order

    async def _unlock(self, order_id: str | None, lock_id: str | None) -> None:
        if not order_id or not lock_id:
            return
        ctx = self._context()
        try:
            await self.adapter.delete_order_lock(
                DeleteOrderLockParams(headers=ctx.headers, order_id=order_id, lock_id=lock_id), ctx
            )
        except EposFailure as exc:  # an expired lock counts as released anyway
            log.warning("could not release the counter lock on order %s: %s", order_id, exc.message)
        self._publish(ctx)

    def _context(self, device_id: str | None = None) -> CallContext:
        return CallContext(
            trace_id=new_trace_id(),
            headers=RequestHeaders(dojo_requesting_product=PAY_AT_COUNTER, device_id=device_id),
        )

    async def cancel(self, session_id: str) -> None:
        await self.client.cancel_terminal_session(session_id)

    async def answer_signature(self, session_id: str, accepted: bool) -> None:
        """Reply quickly: without an answer Dojo accepts the signature by itself (contract §5.5)."""
        await self.client.answer_signature(session_id, accepted)

    async def resume(self) -> int:
        """Follow again every session a previous run left unfinished. Returns how many."""
        sessions = await self.store.unfinished()
        for session in sessions:
            self._start_following(session)
        return len(sessions)

    async def stop(self) -> None:
        tasks = [f.task for f in self._followed.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._followed.clear()

    # --- following ----------------------------------------------------------------------

    async def _follow_new(
        self,
        session: TerminalSession,
        kind: str,
        terminal_id: str,
        order_id: str | None,
        payment_intent_id: str | None,
        amount: WireMoney,
        lock_id: str | None = None,
    ) -> str:
        record = CounterSession(
            session.id,
            kind,
            terminal_id,
            order_id,
            payment_intent_id,
            amount.value,
            amount.currency_code,
            session.status,
            lock_id=lock_id,
        )
        await self.store.add(record)
        self._start_following(record)
        return session.id

    def _start_following(self, record: CounterSession) -> None:
        followed = _Followed(record)
        self._followed[record.session_id] = followed
        followed.task = asyncio.get_running_loop().create_task(
            self._follow(followed), name=f"terminal-{record.session_id}"
        )

    async def _follow(self, followed: _Followed) -> None:
        record = followed.session
        failures = 0
        while True:
            try:
                session = await self.client.get_terminal_session(record.session_id)
                failures = 0
            except DojoApiError as exc:
                failures += 1
                self._tell(record, record.status, (), error=str(exc))
                await self._sleep(min(30.0, self._poll_s * 2**failures))
                continue
            status = session.status
            notifications = tuple(n.notification_type for n in session.notification_events)
            if status != record.status:
                await self.store.set_status(record.session_id, status)
                record = followed.session = replace(record, status=status)
            if status not in FINAL:
                self._tell(record, status, notifications)
                await self._sleep(self._poll_s)
                continue
            recorded, error = await self._settle(record, status)
            await self._unlock(record.order_id, record.lock_id)
            await self.store.set_status(record.session_id, status, outcome_recorded=error is None)
            self._tell(record, status, notifications, recorded=recorded, error=error)
            self._followed.pop(record.session_id, None)
            return

    async def _settle(self, record: CounterSession, status: str) -> tuple[bool, str | None]:
        """Apply a final outcome to the POS once. Returns (recorded on the POS, error)."""
        if status not in SUCCESS:
            return False, None
        ctx = self._context(record.terminal_id)
        try:
            if record.kind == "Sale" and record.order_id and record.payment_intent_id:
                params = RecordOrderPaymentParams(
                    headers=ctx.headers,
                    order_id=record.order_id,
                    payment_intent_id=record.payment_intent_id,
                    paid_amount=WireMoney(value=record.amount_value, currency_code=record.currency),
                    lock_id=record.lock_id,
                )
                await self.adapter.record_order_payment(params, ctx)
                self._publish(ctx)
                return True, None
            if record.kind == "MatchedRefund" and record.payment_intent_id:
                # The refunded payment stops counting towards paidAmount, as a Dojo Refunded event would make it.
                event = PaymentIntentEvent(
                    payment_intent_id=record.payment_intent_id,
                    payment_status=PaymentIntentStatus.REFUNDED,
                    capture_mode=CaptureMode.AUTO,
                )
                params_event = HandleEventParams(
                    headers=ctx.headers,
                    id=f"counter-refund:{record.session_id}",
                    account_id="epos-bridge",
                    event="payment_intent.status_updated",
                    data=event.model_dump(by_alias=True, mode="json"),
                    created_at=self._clock.now(),
                )
                await self.adapter.handle_payment_intent_event(params_event, event, ctx)
                self._publish(ctx)
                return True, None
            return False, None  # an unlinked refund touches no order
        except EposFailure as failure:
            log.error(
                "terminal session %s succeeded but the POS did not record it: %s", record.session_id, failure.message
            )
            return False, f"Approved on the terminal, but the POS did not record it: {failure.message}"

    def _publish(self, ctx: CallContext) -> None:
        """The payment log and lock board hear about counter payments like any other."""
        for event in ctx.events:
            self._publish_event(event)

    def _tell(
        self,
        record: CounterSession,
        status: str,
        notifications: tuple[str, ...],
        *,
        recorded: bool = False,
        error: str | None = None,
    ) -> None:
        update = SessionUpdate(
            session_id=record.session_id,
            kind=record.kind,
            status=status,
            words=in_words(status),
            notifications=tuple(notification_in_words(n) for n in notifications),
            final=status in FINAL,
            succeeded=status in SUCCESS,
            cancellable=status in CANCELLABLE,
            awaiting_signature=status == TerminalSessionStatus.SIGNATURE_VERIFICATION_REQUIRED,
            order_id=record.order_id,
            amount=WireMoney(value=record.amount_value, currency_code=record.currency),
            recorded=recorded,
            error=error,
        )
        self._listeners.emit(update)
