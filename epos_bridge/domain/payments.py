"""RecordOrderPaymentById rules (contract §3.9).

The one rule that matters most: a payment already recorded under its ``paymentIntentId`` is
answered with the current order and success, never ``Conflict`` — Conflict makes Dojo reverse
money the customer really paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from epos_bridge.domain.errors import Conflict, InvalidRequest
from epos_bridge.domain.events import DomainEvent, LockRefused, OrderFacts, PaymentRecorded
from epos_bridge.domain.locks import HeldLock, active_lock
from epos_bridge.domain.orders import RECORDED, StoredPayment
from epos_bridge.protocol.entities import CLOSED_ORDER_STATUSES, OrderStatus, PaymentIntentStatus
from epos_bridge.protocol.params import RecordOrderPaymentParams


@dataclass(frozen=True)
class PayableOrder:
    order_id: str
    status: OrderStatus
    currency: str
    total_value: int
    payments: tuple[StoredPayment, ...]
    open_at_till: str | None = None
    facts: OrderFacts = field(default_factory=OrderFacts)

    @property
    def paid_value(self) -> int:
        return sum(p.paid_value for p in self.payments if p.counts)

    def has_intent(self, payment_intent_id: str) -> bool:
        return any(p.payment_intent_id == payment_intent_id for p in self.payments)


@dataclass(frozen=True)
class PaymentDecision:
    """``payment`` is the row to insert; ``None`` means a replay: change nothing."""

    payment: StoredPayment | None
    events: tuple[DomainEvent, ...] = ()


def decide_payment(
    order: PayableOrder,
    current_lock: HeldLock | None,
    params: RecordOrderPaymentParams,
    known_intent_status: PaymentIntentStatus | None,
    now: datetime,
    recorded_on_order: str | None = None,
) -> PaymentDecision:
    """``recorded_on_order``: the order that already holds this paymentIntentId, if any."""
    if order.has_intent(params.payment_intent_id) or recorded_on_order is not None:
        # contract §3.9 (rec): an already-recorded paymentIntentId is success, wherever it was
        # recorded. Any error here would make Dojo reverse a payment the POS holds.
        return PaymentDecision(payment=None)
    amount = params.paid_amount
    tips = params.tips_amount
    if amount.currency_code != order.currency or (tips is not None and tips.currency_code != order.currency):
        raise InvalidRequest(f"payment currency {amount.currency_code} does not match the order's {order.currency}")
    if amount.value <= 0:
        raise InvalidRequest("paidAmount must be positive")
    if tips is not None and tips.value < 0:
        raise InvalidRequest("tipsAmount must not be negative")
    if order.status in CLOSED_ORDER_STATUSES:
        raise Conflict(f"order {order.order_id} is {order.status.value} and cannot take a payment")
    if order.open_at_till:
        raise _held(order, params, now, f"the order is open on till {order.open_at_till}")
    holder = active_lock(current_lock, now)
    # Only a lockId that names a *different* active lock is a conflict. Dojo may omit lockId
    # even while holding the lock, and a wrong Conflict reverses a real payment.
    if holder is not None and params.lock_id is not None and holder.lock_id != params.lock_id:
        raise _held(order, params, now, f"the order is held by another lock ({holder.lock_id})")
    outstanding = order.total_value - order.paid_value
    if amount.value > outstanding:
        raise Conflict(
            f"payment of {amount.value} exceeds the outstanding {max(outstanding, 0)} on order {order.order_id}"
        )
    status = known_intent_status.value if known_intent_status is not None else RECORDED
    payment = StoredPayment(
        paid_value=amount.value,
        tips_value=tips.value if tips is not None and tips.value else None,
        payment_intent_id=params.payment_intent_id,
        status=status,
    )
    event = PaymentRecorded(order.order_id, now, params.payment_intent_id, amount, tips, params.headers, order.facts)
    return PaymentDecision(payment=payment, events=(event,))


def _held(order: PayableOrder, params: RecordOrderPaymentParams, now: datetime, reason: str) -> Conflict:
    return Conflict(
        f"order {order.order_id} cannot take a payment: {reason}",
        events=(LockRefused(order.order_id, now, params.lock_id, reason, params.headers),),
    )
