"""Pay at counter: take a card payment for an open order on a Dojo terminal, and refunds.

A use case over ports (:class:`epos_bridge.ports.CounterDojo`, :class:`CounterSessionStore`, the
POS connection); the rules are in :mod:`epos_bridge.domain.terminal_sessions`, the words in the UI.

Staff choose a terminal and an amount; the bridge locks the order, creates the payment intent and
a terminal session, follows it (polling about once a second, contract §5.5 (rec)) and reports
every status and notification. On a successful end (``Captured`` or
``SignatureVerificationAccepted``) the payment is recorded through the same idempotent path as
RecordOrderPaymentById, keyed by the paymentIntentId, so it lands exactly once — even if the final
status is seen twice or the bridge restarts mid-session (unfinished sessions are kept in the
state database and followed again on start). Declined, canceled, expired and rejected sessions
record nothing. A card captured on the terminal is a fact whatever the POS is doing
(:mod:`epos_bridge.services.counter_following`); a ``POST /terminal-sessions`` whose outcome is
unknown is stored as pending *before* it is sent; a matched refund returns the whole payment,
tip included, because the whole payment stops counting on the order. A captured card the POS
refuses for good (the till closed the order meanwhile) is kept as "captured, not on the till"
until staff refund it with one click (:meth:`CounterPayments.refund_not_on_till`: Dojo's
reversal of the intent); :meth:`CounterPayments.on_not_on_till` hears every change.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from epos_bridge.domain.captures import NOT_ON_TILL, REVERSED, CaptureNotOnTill
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.events import DomainEvent
from epos_bridge.domain.terminal_sessions import (
    CREATING,
    PENDING_PREFIX,
    SUCCESS,
    CounterSession,
    SaleRefused,
    SessionKind,
    check_refund,
    check_sale,
    check_within,
    outstanding,
    whole_payment,
)
from epos_bridge.ports import Clock, CounterDojo, CounterSessionStore, SystemClock
from epos_bridge.protocol.dojo_errors import (
    ConflictError,
    DojoApiError,
    NetworkError,
    ServerError,
    UnexpectedResponseError,
)
from epos_bridge.protocol.dojo_rest import (
    MatchedRefundDetails,
    PaymentIntentStatus,
    SaleDetails,
    SessionDetails,
    Terminal,
    TerminalStatus,
    UnlinkedRefundDetails,
)
from epos_bridge.protocol.entities import Money
from epos_bridge.services.counter_desk import CounterDesk, PosSource, SessionUpdate, Sleep
from epos_bridge.services.counter_following import SessionFollower

log = logging.getLogger(__name__)

POLL_S = 1.0
UNKNOWN_OUTCOME = (ServerError, NetworkError, UnexpectedResponseError)
"""POST /terminal-sessions failures after which a session may exist all the same."""

__all__ = ["CounterPayments", "SaleRefused", "SessionUpdate"]


class CounterPayments:
    """Start, command and resume counter sessions; updates arrive through :meth:`on_update`."""

    def __init__(
        self,
        client: CounterDojo,
        pos: PosSource,
        store: CounterSessionStore,
        *,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
        sleep: Sleep = asyncio.sleep,
        publish: Callable[[DomainEvent], None] = lambda event: None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._desk = CounterDesk(client, pos, store, clock or SystemClock(), wall_clock, poll_s, sleep, publish)
        self._follower = SessionFollower(self._desk)

    @property
    def client(self) -> CounterDojo:
        return self._desk.client

    @client.setter
    def client(self, client: CounterDojo) -> None:
        """New Dojo settings: the next call goes through the new client."""
        self._desk.client = client

    @property
    def store(self) -> CounterSessionStore:
        return self._desk.store

    def on_update(self, listener: Callable[[SessionUpdate], None]) -> None:
        self._desk.listeners.add(listener)

    def unrecorded_captures(self) -> dict[str, str]:
        """Orders whose captured card payment is not on the till yet (order id -> session id)."""
        return dict(self._desk.unrecorded)

    def captures_not_on_till(self) -> tuple[CaptureNotOnTill, ...]:
        """Captured cards the POS refused, oldest first: the money is taken, the till does not
        show it. Each stays until :meth:`refund_not_on_till` (or it lands after a restart)."""
        return tuple(self._desk.not_on_till.values())

    def on_not_on_till(self, listener: Callable[[tuple[CaptureNotOnTill, ...]], None]) -> Callable[[], None]:
        """Hear the whole set of :meth:`captures_not_on_till` each time it changes (an empty
        tuple: none left). Returns its unsubscribe."""
        return self._desk.alerts.add(listener)

    async def refund_not_on_till(self, session_id: str) -> None:
        """Give back a captured card the POS refused: Dojo reverses its payment intent (contract
        §5.4, ``POST /payment-intents/{id}/reversal``), then it is settled as ``Reversed``.

        Raises :class:`SaleRefused` (in words) when there is no such capture (none, already
        settled, or being tried on the till once more after a restart), or when Dojo will not
        reverse it. Once the intent is
        reversed (by this call, or already before it) the capture is settled.
        """
        desk = self._desk
        capture = desk.not_on_till.get(session_id)
        if capture is None:
            raise SaleRefused("This card payment is no longer waiting for a refund.")
        try:
            await desk.client.reverse_payment_intent(capture.payment_intent_id)
        except ConflictError as refused:
            intent = await desk.client.get_payment_intent(capture.payment_intent_id, return_canceled=True)
            if intent.status not in (PaymentIntentStatus.REVERSED, PaymentIntentStatus.REFUNDED):
                raise SaleRefused(
                    f"Dojo would not reverse this card payment ({intent.status}). Refund it on the terminal "
                    "from the payment log instead."
                ) from refused
        log.info("captured card %s on order %s, not on the till, was reversed", capture.payment_intent_id,
                 capture.order_id)  # fmt: skip
        await desk.store.set_status(session_id, REVERSED, outcome_recorded=True)
        desk.settle(session_id, capture.payment_intent_id, capture.order_id, REVERSED)

    async def terminals(self) -> list[Terminal]:
        found = await self._desk.client.list_terminals()
        self._desk.terminal_names.update({t.id: t.tid for t in found if t.tid})
        return found

    @staticmethod
    def available(terminals: list[Terminal]) -> list[Terminal]:
        return [t for t in terminals if t.status == TerminalStatus.AVAILABLE]

    async def outstanding(self, order_id: str) -> Money:
        """The amount the payment dialog defaults to."""
        return outstanding(await self._desk.order(order_id))

    async def start_sale(self, order_id: str, terminal_id: str, amount: Money) -> str:
        """Lock the order, create the intent and the Sale session; returns the session id.

        The order is locked like Dojo's own products do before the card is charged, so a card is
        never taken for an order the POS would refuse (open on a till, closed, already paid) and
        no till edits it mid-payment. A failed POST /payment-intents is reported, never retried
        blindly (contract §5.6). A POST /terminal-sessions with an unknown outcome returns a
        ``pending:`` id that is followed like any session.
        """
        desk = self._desk
        check_sale(order_id, amount, set(desk.unrecorded), {c.order_id for c in desk.not_on_till.values()})
        lock_id = f"counter-{uuid.uuid4().hex}"
        try:
            order = await desk.lock(order_id, lock_id)
        except EposFailure as refused:
            raise SaleRefused(f"This order cannot take a card payment now: {refused.message}") from refused
        try:
            check_within(amount, outstanding(order))
            reference = (order.reference or f"Order {order_id}")[:60]
            desk.order_labels[order_id] = (order.display_name or reference)[:60]
            intent = await desk.client.create_payment_intent(
                amount,
                reference,
                metadata={"eposOrderId": order_id, "eposLockId": lock_id},
                order_external_id=order_id,
                description=order.display_name or reference,
            )
            if intent.id is None:
                raise DojoApiError("Dojo created a payment intent without an id")
        except BaseException:
            await desk.unlock(order_id, lock_id)
            raise
        pending = CounterSession(f"{PENDING_PREFIX}{intent.id}", SessionKind.SALE, terminal_id, order_id, intent.id,
                                 amount.value, amount.currency_code, CREATING, lock_id=lock_id)  # fmt: skip
        pending = await desk.store.add(pending)  # before the POST: a restart knows a session may exist
        try:
            session = await desk.client.create_terminal_session(terminal_id, SaleDetails(intent.id))
        except UNKNOWN_OUTCOME as exc:
            log.warning("POST /terminal-sessions for %s ended without an answer (%s); asking Dojo", intent.id, exc)
            self._follower.follow(pending)
            return pending.session_id
        except BaseException:
            await desk.store.set_status(pending.session_id, CREATING, outcome_recorded=True)
            await desk.unlock(order_id, lock_id)
            raise
        await desk.store.rename(pending.session_id, session.id, session.status)
        self._follower.follow(CounterSession(session.id, SessionKind.SALE, terminal_id, order_id, intent.id,
                                             amount.value, amount.currency_code, session.status, lock_id=lock_id,
                                             started_at=pending.started_at))  # fmt: skip
        return session.id

    async def start_matched_refund(
        self, payment_intent_id: str, order_id: str | None, terminal_id: str, amount: Money
    ) -> str:
        """Refund a card payment in full, tip included (``amount`` must say so)."""
        if order_id is not None:
            check_refund(amount, whole_payment(await self._desk.order(order_id), payment_intent_id))
        details = MatchedRefundDetails(payment_intent_id, amount)
        return await self._start(details, SessionKind.MATCHED_REFUND, terminal_id, order_id, payment_intent_id, amount)

    async def start_unlinked_refund(self, terminal_id: str, amount: Money) -> str:
        details = UnlinkedRefundDetails(amount)
        return await self._start(details, SessionKind.UNLINKED_REFUND, terminal_id, None, None, amount)

    async def _start(
        self,
        details: SessionDetails,
        kind: SessionKind,
        terminal_id: str,
        order_id: str | None,
        payment_intent_id: str | None,
        amount: Money,
    ) -> str:
        session = await self._desk.client.create_terminal_session(terminal_id, details)
        record = CounterSession(session.id, kind, terminal_id, order_id, payment_intent_id, amount.value,
                                amount.currency_code, session.status)  # fmt: skip
        self._follower.follow(await self._desk.store.add(record))
        return session.id

    async def cancel(self, session_id: str) -> None:
        await self._desk.client.cancel_terminal_session(session_id)

    async def answer_signature(self, session_id: str, accepted: bool) -> None:
        """Reply quickly: without an answer Dojo accepts the signature by itself (contract §5.5)."""
        await self._desk.client.answer_signature(session_id, accepted)

    async def resume(self) -> int:
        """Follow again every session a previous run left unfinished. Returns how many."""
        sessions = [s for s in await self._desk.store.unfinished() if not self._follower.is_following(s.session_id)]
        for session in sessions:
            if session.kind == SessionKind.SALE and session.status in SUCCESS and session.order_id:
                self._desk.unrecorded[session.order_id] = session.session_id  # captured before the restart
            if session.status == NOT_ON_TILL and session.order_id:
                self._desk.unrecorded[session.order_id] = session.session_id  # tried once more, then alerted
            self._follower.follow(session)
        return len(sessions)

    async def stop(self) -> None:
        await self._follower.stop()
