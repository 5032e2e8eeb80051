"""Pay at counter: take a card payment for an open order on a Dojo terminal, and refunds.

Staff choose a terminal and an amount; the bridge creates the payment intent and a terminal
session, follows it (polling about once a second, contract §5.5 (rec)) and reports every status
and notification in words. On a successful end (``Captured`` or ``SignatureVerificationAccepted``)
the payment is recorded through the same idempotent path as RecordOrderPaymentById, keyed by
the paymentIntentId, so it lands on the order exactly once — even if the final status is seen
twice or the bridge restarts mid-session (unfinished sessions are kept in the state database and
followed again on start). Declined, canceled, expired and rejected sessions record nothing.

A card captured on the terminal is a fact, whatever the POS database is doing:

* If recording it fails because the POS cannot be written (busy, locked, read-only, gone), the
  order stays locked and the recording is retried with backoff — while running and after a
  restart — until it lands, exactly once (the paymentIntentId de-duplicates). Until then every
  update says ``unrecorded_capture`` (the UI's alert: "… taken on … is not on the till yet — do
  not charge it again") and no new sale on that order starts.
* A ``POST /terminal-sessions`` whose outcome is unknown (timeout, 5xx, an unreadable answer)
  may still have started a session. A pending record is stored *before* the POST; after such a
  failure the bridge asks Dojo about the payment intent until it is captured (recorded as
  above), cancelled, or past the time any session could still capture — and only then lets
  the lock go. A lock is never released while a session may still capture.
* A matched refund returns the whole card payment, tip included, because the whole payment
  stops counting on the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from epos_bridge.dojo_api import (
    DojoApiError,
    DojoClient,
    MatchedRefundDetails,
    Money,
    NetworkError,
    SaleDetails,
    ServerError,
    Terminal,
    TerminalSession,
    TerminalSessionStatus,
    TerminalStatus,
    UnexpectedResponseError,
    UnlinkedRefundDetails,
)
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.events import DomainEvent
from epos_bridge.ports import CallContext, Clock, PosAdapter, SystemClock
from epos_bridge.protocol.dojo_rest import PaymentIntentStatus as IntentStatus
from epos_bridge.protocol.entities import CaptureMode, Order, PaymentIntentEvent, PaymentIntentStatus
from epos_bridge.protocol.entities import Money as WireMoney
from epos_bridge.protocol.jsonrpc import EPOSErrorType
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    DeleteOrderLockParams,
    ExtendOrderLockParams,
    HandleEventParams,
    OrderIdParams,
    RecordOrderPaymentParams,
    RequestHeaders,
)
from epos_bridge.services.dispatcher import new_trace_id
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.pos_connection import PosConnection
from epos_bridge.state.terminal_sessions import CounterSession, TerminalSessionStore

log = logging.getLogger(__name__)

PAY_AT_COUNTER = "PayAtCounter"
"""The requesting product recorded with counter payments (payment log, lock board)."""

POLL_S = 1.0
SALE_LOCK_FOR = timedelta(minutes=15)
"""Longer than a terminal session lives (about 5 minutes); released as soon as it ends."""
SESSION_MAY_CAPTURE_FOR_S = 10 * 60.0
"""After a POST /terminal-sessions with an unknown outcome: how long a session we never heard
of could still capture the intent (a session lives about 5 minutes; twice that, to be sure)."""
RETRY_CAP_S = 30.0
PENDING_PREFIX = "pending:"
"""Session ids of sales whose POST /terminal-sessions has not answered (yet)."""
CREATING = "CreatingSession"
UNKNOWN_OUTCOME = (ServerError, NetworkError, UnexpectedResponseError)
"""POST /terminal-sessions failures after which a session may exist all the same."""


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
    CREATING: "Checking with Dojo whether the terminal started…",
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
    terminal_id: str | None = None
    terminal_name: str | None = None
    """The terminal's short id (``tid``) when known, else its Dojo id: how staff name it."""
    unrecorded_capture: bool = False
    """The card was captured but the POS does not hold the payment yet: alert staff, do not
    charge it again. Stays true in every update until it lands (or is refused, ``error``)."""


Listener = Callable[[SessionUpdate], None]
PosSource = Callable[[], PosConnection]


def retry_delay(attempt: int, base_s: float) -> float:
    """``base_s``, doubling, capped at :data:`RETRY_CAP_S`."""
    return float(min(RETRY_CAP_S, base_s * 2 ** max(0, attempt - 1)))


@dataclass
class _Followed:
    session: CounterSession
    task: asyncio.Task[None] | None = None
    seen_notifications: list[str] = field(default_factory=list)


class CounterPayments:
    def __init__(
        self,
        client: DojoClient,
        pos: PosSource,
        store: TerminalSessionStore,
        *,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        publish: Callable[[DomainEvent], None] = lambda event: None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self._pos = pos
        self.store = store
        self._clock = clock or SystemClock()
        self._wall = wall_clock
        self._poll_s = poll_s
        self._sleep = sleep
        self._publish_event = publish
        self._listeners: Listeners[SessionUpdate] = Listeners("terminal-session")
        self._followed: dict[str, _Followed] = {}
        self._unrecorded: dict[str, str] = {}
        """Orders holding a captured card not yet on the till: order id -> session id."""
        self._terminal_names: dict[str, str] = {}

    def on_update(self, listener: Listener) -> None:
        self._listeners.add(listener)

    async def terminals(self) -> list[Terminal]:
        found = await self.client.list_terminals()
        self._terminal_names.update({t.id: t.tid for t in found if t.tid})
        return found

    @staticmethod
    def available(terminals: list[Terminal]) -> list[Terminal]:
        return [t for t in terminals if t.status == TerminalStatus.AVAILABLE]

    def unrecorded_captures(self) -> dict[str, str]:
        """Orders whose captured card payment is not on the till yet (order id -> session id)."""
        return dict(self._unrecorded)

    async def outstanding(self, order_id: str) -> WireMoney:
        """The amount the payment dialog defaults to."""
        async with self._pos().using() as adapter:
            order = await adapter.get_order(OrderIdParams(order_id=order_id), CallContext(trace_id=new_trace_id()))
        total = order.total_amount.value if order.total_amount else 0
        paid = order.paid_amount.value if order.paid_amount else 0
        currency = order.total_amount.currency_code if order.total_amount else "GBP"
        return WireMoney(value=max(0, total - paid), currency_code=currency)

    async def start_sale(self, order_id: str, terminal_id: str, amount: WireMoney) -> str:
        """Lock the order, create the intent and the Sale session; returns the session id.

        The order is locked like Dojo's own products do before the card is charged, so a card is
        never taken for an order the POS would refuse (open on a till, closed, already paid) and
        no till edits it mid-payment. A failed POST /payment-intents is reported, never retried
        blindly (contract §5.6). A POST /terminal-sessions with an unknown outcome returns a
        ``pending:`` id that is followed like any session (see the module docstring).
        """
        if amount.value <= 0:
            raise CounterRefused("The amount must be more than zero.")
        if order_id in self._unrecorded:
            raise CounterRefused(
                "A card payment already taken on this order is not on the till yet. Do not charge it again: "
                "it is added as soon as the POS database can be written."
            )
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
        except BaseException:
            await self._unlock(order_id, lock_id)
            raise
        pending = CounterSession(
            f"{PENDING_PREFIX}{intent.id}",
            "Sale",
            terminal_id,
            order_id,
            intent.id,
            amount.value,
            amount.currency_code,
            CREATING,
            lock_id=lock_id,
        )
        pending = await self.store.add(pending)  # before the POST: a restart knows a session may exist
        try:
            session = await self.client.create_terminal_session(terminal_id, SaleDetails(intent.id))
        except UNKNOWN_OUTCOME as exc:
            log.warning("POST /terminal-sessions for %s ended without an answer (%s); asking Dojo", intent.id, exc)
            self._start_following(pending)
            return pending.session_id
        except BaseException:
            await self.store.set_status(pending.session_id, CREATING, outcome_recorded=True)
            await self._unlock(order_id, lock_id)
            raise
        record = replace(pending, session_id=session.id, status=session.status)
        await self.store.rename(pending.session_id, session.id, session.status)
        self._start_following(record)
        return session.id

    async def start_matched_refund(
        self, payment_intent_id: str, order_id: str | None, terminal_id: str, amount: WireMoney
    ) -> str:
        """Refund a card payment in full, tip included: the whole payment stops counting on the
        order, so exactly that is returned to the card (``amount`` must say so)."""
        if order_id is not None:
            whole = await self._whole_payment(order_id, payment_intent_id)
            if whole is not None and (whole.value, whole.currency_code) != (amount.value, amount.currency_code):
                raise CounterRefused(
                    f"A matched refund returns the whole card payment, tip included: {whole.value / 100:.2f} "
                    f"{whole.currency_code}."
                )
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

    async def _whole_payment(self, order_id: str, payment_intent_id: str) -> WireMoney | None:
        async with self._pos().using() as adapter:
            order = await adapter.get_order(OrderIdParams(order_id=order_id), CallContext(trace_id=new_trace_id()))
        for payment in order.payments or []:
            if payment.payment_intent_id == payment_intent_id:
                tips = payment.tips_amount.value if payment.tips_amount else 0
                return WireMoney(
                    value=payment.paid_amount.value + tips, currency_code=payment.paid_amount.currency_code
                )
        return None

    async def _lock(self, order_id: str, lock_id: str) -> Order:
        ctx = self._context()
        params = CreateOrderLockParams(
            headers=ctx.headers, order_id=order_id, lock_id=lock_id, expiry=self._clock.now() + SALE_LOCK_FOR
        )
        try:
            async with self._pos().using() as adapter:
                order = await adapter.create_order_lock(params, ctx)
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
            async with self._pos().using() as adapter:
                await adapter.delete_order_lock(
                    DeleteOrderLockParams(headers=ctx.headers, order_id=order_id, lock_id=lock_id), ctx
                )
        except EposFailure as exc:  # an expired lock counts as released anyway
            log.warning("could not release the counter lock on order %s: %s", order_id, exc.message)
        self._publish(ctx)

    async def _keep_locked(self, adapter: PosAdapter, record: CounterSession) -> None:
        """While a captured card waits for the till, keep the order ours (best effort: the
        recording right after is what matters, and it needs no lock)."""
        if not record.order_id or not record.lock_id:
            return
        ctx = self._context()
        params = ExtendOrderLockParams(
            headers=ctx.headers,
            order_id=record.order_id,
            lock_id=record.lock_id,
            expiry=self._clock.now() + SALE_LOCK_FOR,
        )
        with contextlib.suppress(EposFailure):
            await adapter.extend_order_lock(params, ctx)
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
        sessions = [s for s in await self.store.unfinished() if s.session_id not in self._followed]
        for session in sessions:
            if session.kind == "Sale" and session.status in SUCCESS and session.order_id:
                self._unrecorded[session.order_id] = session.session_id  # captured before the restart
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
        record = await self.store.add(record)
        self._start_following(record)
        return session.id

    def _start_following(self, record: CounterSession) -> None:
        followed = _Followed(record)
        self._followed[record.session_id] = followed
        work = self._resolve_unknown_session if record.session_id.startswith(PENDING_PREFIX) else self._follow
        followed.task = asyncio.get_running_loop().create_task(work(followed), name=f"terminal-{record.session_id}")

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
                await self._sleep(retry_delay(failures + 1, self._poll_s))
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
            await self._finish(followed, record, status, notifications)
            return

    async def _resolve_unknown_session(self, followed: _Followed) -> None:
        """A sale whose POST /terminal-sessions never answered: follow its payment intent.

        Captured: the card was taken (record it). Canceled/Reversed: nothing was taken. Still
        Created once no session could capture any more: nothing was taken. Until one of those,
        the lock stays.
        """
        record = followed.session
        assert record.payment_intent_id is not None
        failures = 0
        while True:
            try:
                intent = await self.client.get_payment_intent(record.payment_intent_id, return_canceled=True)
                failures = 0
            except DojoApiError as exc:
                failures += 1
                self._tell(record, CREATING, (), error=str(exc))
                await self._sleep(retry_delay(failures + 1, self._poll_s))
                continue
            if intent.status in (IntentStatus.CAPTURED, IntentStatus.AUTHORIZED):
                await self._finish(followed, record, TerminalSessionStatus.CAPTURED, ())
                return
            timed_out = self._wall() - record.started_at >= SESSION_MAY_CAPTURE_FOR_S
            if intent.status in (IntentStatus.CANCELED, IntentStatus.REVERSED) or timed_out:
                status = TerminalSessionStatus.CANCELED if not timed_out else TerminalSessionStatus.EXPIRED
                await self._finish(followed, record, status, ())
                return
            self._tell(record, CREATING, ())
            await self._sleep(self._poll_s)

    async def _finish(
        self, followed: _Followed, record: CounterSession, status: str, notifications: tuple[str, ...]
    ) -> None:
        """Apply a final outcome to the POS once, then let the lock go (not before)."""
        if status in SUCCESS and record.kind == "Sale":
            recorded, error = await self._land_sale(record, status, notifications)
        else:
            recorded, error = await self._settle_refund(record, status)
        await self._unlock(record.order_id, record.lock_id)
        await self.store.set_status(record.session_id, status, outcome_recorded=True)
        self._tell(record, status, notifications, recorded=recorded, error=error)
        self._followed.pop(record.session_id, None)

    async def _land_sale(
        self, record: CounterSession, status: str, notifications: tuple[str, ...]
    ) -> tuple[bool, str | None]:
        """Record a captured card on the order, retrying while the POS cannot be written.

        Returns (recorded, error); an error only for a refusal that retrying cannot change
        (the till closed or changed the order), which staff must resolve by hand.
        """
        if not record.order_id or not record.payment_intent_id:
            return False, None
        attempt = 0
        while True:
            ctx = self._context(record.terminal_id)
            params = RecordOrderPaymentParams(
                headers=ctx.headers,
                order_id=record.order_id,
                payment_intent_id=record.payment_intent_id,
                paid_amount=WireMoney(value=record.amount_value, currency_code=record.currency),
                lock_id=record.lock_id,
            )
            try:
                async with self._pos().using() as adapter:
                    if attempt:
                        await self._keep_locked(adapter, record)
                    await adapter.record_order_payment(params, ctx)
            except EposFailure as failure:
                if failure.error_type is not EPOSErrorType.UNEXPECTED_ERROR:
                    self._unrecorded.pop(record.order_id, None)
                    log.error(
                        "terminal session %s captured %s but the POS refused it: %s",
                        record.session_id,
                        record.payment_intent_id,
                        failure.message,
                    )
                    return False, (
                        f"Approved on the terminal, but the POS refused it: {failure.message} "
                        "Record it on the till by hand, or refund it."
                    )
                attempt += 1
                self._unrecorded[record.order_id] = record.session_id
                delay = retry_delay(attempt, self._poll_s)
                log.error(
                    "terminal session %s captured %s but the POS cannot record it yet (%s); retrying in %.0f s",
                    record.session_id,
                    record.payment_intent_id,
                    failure.message,
                    delay,
                )
                self._tell(record, status, notifications, error=failure.message, unrecorded_capture=True)
                await self._sleep(delay)
                continue
            self._unrecorded.pop(record.order_id, None)
            self._publish(ctx)
            return True, None

    async def _settle_refund(self, record: CounterSession, status: str) -> tuple[bool, str | None]:
        """A refund's outcome on the POS once. Returns (recorded on the POS, error)."""
        if status not in SUCCESS or record.kind != "MatchedRefund" or not record.payment_intent_id:
            return False, None  # nothing to record: unsuccessful, or an unlinked refund touches no order
        ctx = self._context(record.terminal_id)
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
        try:
            async with self._pos().using() as adapter:
                await adapter.handle_payment_intent_event(params_event, event, ctx)
        except EposFailure as failure:
            log.error(
                "refund session %s succeeded but the POS did not record it: %s", record.session_id, failure.message
            )
            return False, f"Refunded on the terminal, but the POS did not record it: {failure.message}"
        self._publish(ctx)
        return True, None

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
        unrecorded_capture: bool = False,
    ) -> None:
        final = status in FINAL and not unrecorded_capture
        update = SessionUpdate(
            session_id=record.session_id,
            kind=record.kind,
            status=status,
            words=in_words(status),
            notifications=tuple(notification_in_words(n) for n in notifications),
            final=final,
            succeeded=status in SUCCESS,
            cancellable=status in CANCELLABLE,
            awaiting_signature=status == TerminalSessionStatus.SIGNATURE_VERIFICATION_REQUIRED,
            order_id=record.order_id,
            amount=WireMoney(value=record.amount_value, currency_code=record.currency),
            recorded=recorded,
            error=error,
            terminal_id=record.terminal_id,
            terminal_name=self._terminal_names.get(record.terminal_id, record.terminal_id),
            unrecorded_capture=unrecorded_capture,
        )
        self._listeners.emit(update)
