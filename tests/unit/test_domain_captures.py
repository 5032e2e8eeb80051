"""The rule for a card captured at the counter (domain/captures.py, issue 25 item 3): recorded
against its order whatever lock is on it; refused only where the order cannot take it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from epos_bridge.domain import payments
from epos_bridge.domain.captures import CapturedCardPayment, Landing, landing_after
from epos_bridge.domain.errors import Conflict, InvalidRequest, NotFound, PosUnavailable
from epos_bridge.domain.locks import HeldLock
from epos_bridge.domain.orders import StoredPayment
from epos_bridge.protocol.entities import Money, OrderStatus
from epos_bridge.protocol.params import RecordOrderPaymentParams, RequestHeaders

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
THEIRS = HeldLock("pat-1", NOW + timedelta(minutes=5), NOW, RequestHeaders(dojo_requesting_product="PayAtTable"))


def order(
    status: OrderStatus = OrderStatus.NEW, open_at_till: str | None = None, paid: int = 0
) -> payments.PayableOrder:
    taken = (StoredPayment(paid_value=paid, tips_value=None, payment_intent_id="pi_cash", status="Recorded"),)
    return payments.PayableOrder("8", status, "GBP", 3000, taken if paid else (), open_at_till=open_at_till)


def params(kind: type[RecordOrderPaymentParams], value: int = 1000, pi: str = "pi_card") -> RecordOrderPaymentParams:
    return kind(order_id="8", payment_intent_id=pi, paid_amount=Money(value=value, currency_code="GBP"), lock_id="ours")


@pytest.mark.parametrize(("lock", "till"), [(THEIRS, None), (None, "TILL-2"), (THEIRS, "TILL-2")])
def test_a_captured_card_is_recorded_whatever_lock_is_on_the_order(lock: HeldLock | None, till: str | None) -> None:
    decision = payments.decide_payment(order(open_at_till=till), lock, params(CapturedCardPayment), None, NOW)
    assert decision.payment is not None and decision.payment.paid_value == 1000
    with pytest.raises(Conflict):  # the same request from Dojo is still refused by the lock
        payments.decide_payment(order(open_at_till=till), lock, params(RecordOrderPaymentParams), None, NOW)


def test_a_captured_card_already_recorded_is_not_recorded_again() -> None:
    recorded = payments.RecordedIntent("8", 1000)
    decision = payments.decide_payment(order(), THEIRS, params(CapturedCardPayment), None, NOW, recorded=recorded)
    assert decision.payment is None


@pytest.mark.parametrize("status", [OrderStatus.FINALIZED, OrderStatus.CANCELED])
def test_an_order_the_till_closed_cannot_take_a_captured_card(status: OrderStatus) -> None:
    with pytest.raises(Conflict) as refused:
        payments.decide_payment(order(status), None, params(CapturedCardPayment), None, NOW)
    assert landing_after(refused.value) is Landing.NOT_ON_TILL


def test_an_order_that_would_be_overpaid_cannot_take_it_either() -> None:
    with pytest.raises(Conflict):
        payments.decide_payment(order(paid=2500), None, params(CapturedCardPayment), None, NOW)


def test_only_a_pos_that_cannot_be_written_is_retried() -> None:
    assert landing_after(PosUnavailable("busy")) is Landing.RETRY
    for refusal in (Conflict("closed"), NotFound("gone"), InvalidRequest("bad")):
        assert landing_after(refusal) is Landing.NOT_ON_TILL
