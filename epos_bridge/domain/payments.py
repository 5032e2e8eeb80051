"""RecordOrderPaymentById rules (contract §3.9).

The one rule that matters most: a payment already recorded under its ``paymentIntentId`` is
answered with the current order and success, never ``Conflict`` — Conflict makes Dojo reverse
money the customer really paid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from epos_bridge.domain.captures import locks_may_refuse
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


@dataclass(frozen=True)
class RecordedIntent:
    """A paymentIntentId the POS already holds: on which order, for how much, in which status."""

    order_id: str
    paid_value: int
    tips_value: int | None = None
    status: str = RECORDED


@dataclass(frozen=True)
class PaymentDecision:
    """``payment`` is the row to insert; ``None`` means a replay: change nothing.

    ``warning`` is for the log: a replay that differs from what was recorded.
    """

    payment: StoredPayment | None
    events: tuple[DomainEvent, ...] = ()
    warning: str | None = None


INT64_MAX = 2**63 - 1
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)


def decide_payment(
    order: PayableOrder,
    current_lock: HeldLock | None,
    params: RecordOrderPaymentParams,
    known_intent_status: PaymentIntentStatus | None,
    now: datetime,
    recorded: RecordedIntent | None = None,
) -> PaymentDecision:
    """``recorded``: where this paymentIntentId is already recorded, on any order, if anywhere.

    The order of the checks is the rule: an id that cannot identify a payment is refused first;
    then a paymentIntentId the POS already holds is success whatever else the request says
    (contract §3.9 (rec): any error would make Dojo reverse money the till holds); only then are
    the amounts and the order's state judged, and every refusal records nothing.
    """
    if not params.payment_intent_id.strip():
        # An empty id would make every later empty one its "duplicate", silently dropped.
        raise InvalidRequest("paymentIntentId: must not be empty")
    if recorded is None:
        recorded = _recorded_here(order, params.payment_intent_id)
    if recorded is not None:
        return PaymentDecision(payment=None, warning=_replay_warning(recorded, order, params))
    _check_amounts(order, params)
    amount = params.paid_amount
    tips = params.tips_amount
    if order.status in CLOSED_ORDER_STATUSES:
        raise Conflict(f"order {order.order_id} is {order.status.value} and cannot take a payment")
    if locks_may_refuse(params):  # not a card already captured at the counter (domain/captures.py)
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


def _recorded_here(order: PayableOrder, payment_intent_id: str) -> RecordedIntent | None:
    for payment in order.payments:
        if payment.payment_intent_id == payment_intent_id:
            return RecordedIntent(order.order_id, payment.paid_value, payment.tips_value, payment.status)
    return None


def _replay_warning(recorded: RecordedIntent, order: PayableOrder, params: RecordOrderPaymentParams) -> str | None:
    asked_tips = params.tips_amount.value if params.tips_amount is not None else 0
    differs = recorded.paid_value != params.paid_amount.value or (recorded.tips_value or 0) != asked_tips
    if not differs and recorded.order_id == order.order_id:
        return None
    return (
        f"payment intent {params.payment_intent_id} is already recorded on order {recorded.order_id} "
        f"for {recorded.paid_value} (tips {recorded.tips_value or 0}); this request for order {order.order_id} "
        f"says {params.paid_amount.value} (tips {asked_tips}): answered success without recording it again"
    )


def _check_amounts(order: PayableOrder, params: RecordOrderPaymentParams) -> None:
    """Whole minor units within int64, a positive payment, a non-negative tip, and the order's
    currency as three upper-case letters (contract §4.1)."""
    amount, tips = params.paid_amount, params.tips_amount
    if not 0 < amount.value <= INT64_MAX:
        raise InvalidRequest(
            f"paidAmount.value: must be a positive number of minor units, got {str(amount.value)[:40]}"
        )
    if tips is not None and not 0 <= tips.value <= INT64_MAX:
        raise InvalidRequest(f"tipsAmount.value: must be zero or more minor units, got {str(tips.value)[:40]}")
    for name, money in (("paidAmount", amount), ("tipsAmount", tips)):
        if money is None:
            continue
        if not _CURRENCY.fullmatch(money.currency_code):
            raise InvalidRequest(
                f"{name}.currencyCode: must be three upper-case letters, got {money.currency_code!r:.20}"
            )
        if money.currency_code != order.currency:
            currencies = f"{money.currency_code} does not match the order's {order.currency}"
            raise InvalidRequest(f"{name}.currencyCode: payment currency {currencies}")


def _held(order: PayableOrder, params: RecordOrderPaymentParams, now: datetime, reason: str) -> Conflict:
    return Conflict(
        f"order {order.order_id} cannot take a payment: {reason}",
        events=(LockRefused(order.order_id, now, params.lock_id, reason, params.headers),),
    )
