"""Pay at counter: the rules of a card-present session on a Dojo terminal (contract §5.4, §5.5).

Pure: which statuses end a session, which succeed, which can be cancelled, what an order still
owes, what a matched refund returns, and how a sale whose ``POST /terminal-sessions`` never
answered is resolved from its payment intent. The use case
(:mod:`epos_bridge.services.counter`) calls these; the UI only words them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from epos_bridge.protocol.dojo_rest import PaymentIntentStatus as IntentStatus
from epos_bridge.protocol.dojo_rest import TerminalSessionStatus as Status
from epos_bridge.protocol.entities import CaptureMode, Money, Order, PaymentIntentEvent, PaymentIntentStatus
from epos_bridge.protocol.params import HandleEventParams, RequestHeaders


class SessionKind(StrEnum):
    SALE = "Sale"
    MATCHED_REFUND = "MatchedRefund"
    UNLINKED_REFUND = "UnlinkedRefund"


SUCCESS = frozenset({Status.CAPTURED, Status.SIGNATURE_VERIFICATION_ACCEPTED})
FINAL = SUCCESS | frozenset({Status.CANCELED, Status.SIGNATURE_VERIFICATION_REJECTED, Status.EXPIRED, Status.DECLINED})
CANCELLABLE = frozenset({Status.INITIATE_REQUESTED, Status.INITIATED, Status.AUTHORIZED})

CREATING = "CreatingSession"
"""The status of a sale whose ``POST /terminal-sessions`` has not answered (yet)."""
PENDING_PREFIX = "pending:"
"""Session ids of such sales, until Dojo names the session."""

PAY_AT_COUNTER = "PayAtCounter"
"""The requesting product recorded with counter payments (payment log, lock board)."""
SALE_LOCK_FOR = timedelta(minutes=15)
"""Longer than a terminal session lives (about 5 minutes); released as soon as it ends."""
SESSION_MAY_CAPTURE_FOR_S = 10 * 60.0
"""After a POST /terminal-sessions with an unknown outcome: how long a session we never heard
of could still capture the intent (a session lives about 5 minutes; twice that, to be sure)."""

COUNTER_HEADERS = RequestHeaders(dojo_requesting_product=PAY_AT_COUNTER)


class SaleRefused(Exception):
    """The sale or refund cannot start; the message is for staff, in words."""


@dataclass(frozen=True)
class CounterSession:
    """A card-present session the bridge started, as its state store keeps it until the
    outcome is on the POS (a restart mid-session resumes from it)."""

    session_id: str
    kind: str
    terminal_id: str
    order_id: str | None
    payment_intent_id: str | None
    amount_value: int
    currency: str
    status: str
    outcome_recorded: bool = False
    lock_id: str | None = None
    started_at: float = 0.0
    """Unix seconds, set by the store when the session is added."""

    @property
    def pending(self) -> bool:
        """Dojo never told us this sale's session id: follow its payment intent instead."""
        return self.session_id.startswith(PENDING_PREFIX)

    @property
    def amount(self) -> Money:
        return Money(value=self.amount_value, currency_code=self.currency)


def outstanding(order: Order) -> Money:
    """What an order still owes: the amount a sale defaults to and may not exceed."""
    total = order.total_amount.value if order.total_amount else 0
    paid = order.paid_amount.value if order.paid_amount else 0
    currency = order.total_amount.currency_code if order.total_amount else "GBP"
    return Money(value=max(0, total - paid), currency_code=currency)


def check_sale(
    order_id: str, amount: Money, unrecorded_orders: set[str], not_on_till_orders: set[str] | None = None
) -> None:
    """Refuse a sale before anything is locked or charged: nothing, or an order whose card
    payment is already taken but not yet on the till (it would be charged twice), or one whose
    captured card the POS refused and staff have not refunded yet."""
    if amount.value <= 0:
        raise SaleRefused("The amount must be more than zero.")
    if order_id in (not_on_till_orders or set()):
        raise SaleRefused(
            "A card payment taken on this order is not on the till: the POS refused it. Refund it from the "
            "alert first, or record it on the till by hand; do not charge it again."
        )
    if order_id in unrecorded_orders:
        raise SaleRefused(
            "A card payment already taken on this order is not on the till yet. Do not charge it again: "
            "it is added as soon as the POS database can be written."
        )


def check_within(amount: Money, owed: Money) -> None:
    """Refuse a sale for more than the order owes (read under the sale's own lock)."""
    if amount.value > owed.value:
        raise SaleRefused(f"Only {owed.value / 100:.2f} is outstanding on this order.")


def whole_payment(order: Order, payment_intent_id: str) -> Money | None:
    """What a matched refund of this payment returns: all of it, tip included, because all of it
    stops counting on the order."""
    for payment in order.payments or []:
        if payment.payment_intent_id == payment_intent_id:
            tips = payment.tips_amount.value if payment.tips_amount else 0
            return Money(value=payment.paid_amount.value + tips, currency_code=payment.paid_amount.currency_code)
    return None


def check_refund(asked: Money, whole: Money | None) -> None:
    if whole is not None and (whole.value, whole.currency_code) != (asked.value, asked.currency_code):
        raise SaleRefused(
            f"A matched refund returns the whole card payment, tip included: {whole.value / 100:.2f} "
            f"{whole.currency_code}."
        )


def refund_as_event(
    session_id: str, payment_intent_id: str, at: datetime
) -> tuple[HandleEventParams, PaymentIntentEvent]:
    """A matched refund, applied on the POS the way Dojo's own ``Refunded`` status event is: the
    payment stops counting. The event id is the session's, so a second look records nothing."""
    event = PaymentIntentEvent(
        payment_intent_id=payment_intent_id, payment_status=PaymentIntentStatus.REFUNDED, capture_mode=CaptureMode.AUTO
    )
    params = HandleEventParams(
        headers=COUNTER_HEADERS,
        id=f"counter-refund:{session_id}",
        account_id="epos-bridge",
        event="payment_intent.status_updated",
        data=event.model_dump(by_alias=True, mode="json"),
        created_at=at,
    )
    return params, event


def outcome_of_unknown_session(intent_status: str | None, started_at: float, now: float) -> str | None:
    """A sale whose POST /terminal-sessions never answered, judged from its payment intent.

    Captured (or authorised): the card was taken. Canceled/Reversed: nothing was taken. Still
    Created once no session could capture any more: nothing was taken (``Expired``). Otherwise
    ``None``: a session may still capture, so the order stays locked.
    """
    if intent_status in (IntentStatus.CAPTURED, IntentStatus.AUTHORIZED):
        return Status.CAPTURED
    if intent_status in (IntentStatus.CANCELED, IntentStatus.REVERSED):
        return Status.CANCELED
    if now - started_at >= SESSION_MAY_CAPTURE_FOR_S:
        return Status.EXPIRED
    return None
