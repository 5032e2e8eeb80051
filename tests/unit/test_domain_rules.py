"""Pure rule tests: no database, no event loop, fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from epos_bridge.domain import locks, payments
from epos_bridge.domain.errors import Conflict, InvalidRequest
from epos_bridge.domain.events import LockCreated, LockExpired, LockRefused, PaymentRecorded
from epos_bridge.domain.orders import RECORDED, StoredPayment, check_cancellable, summarise_payments
from epos_bridge.domain.pagination import make_cursor, page_bounds, read_cursor
from epos_bridge.protocol.entities import Money, OrderStatus, PaymentIntentStatus
from epos_bridge.protocol.params import Cursor, RecordOrderPaymentParams, RequestHeaders

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
EARLIER = NOW - timedelta(minutes=5)
PRODUCT = RequestHeaders(dojo_requesting_product="PayAtTable", device_id="term-1")


def lockable(
    status: OrderStatus = OrderStatus.ACCEPTED, updated_at: datetime = EARLIER, till: str | None = None
) -> locks.LockableOrder:
    return locks.LockableOrder("7", status, updated_at, till)


def held(lock_id: str, expires_at: datetime) -> locks.HeldLock:
    return locks.HeldLock(lock_id, expires_at, EARLIER - timedelta(minutes=1), PRODUCT)


class TestCreateLock:
    def test_free_order_is_locked_and_announced(self) -> None:
        change = locks.decide_create(lockable(), None, "L1", LATER, NOW, PRODUCT)
        assert change.store == locks.HeldLock("L1", LATER, NOW, PRODUCT)
        assert [type(e) for e in change.events] == [LockCreated]

    def test_same_lock_again_is_success_keeping_the_later_expiry(self) -> None:
        # Not later: nothing to write, so a replay is answered from what is stored.
        change = locks.decide_create(lockable(), held("L1", LATER), "L1", NOW + timedelta(seconds=1), NOW, PRODUCT)
        assert change == locks.LockChange()
        later_still = LATER + timedelta(minutes=1)
        change = locks.decide_create(lockable(), held("L1", LATER), "L1", later_still, NOW, PRODUCT)
        assert change.store is not None and change.store.expires_at == later_still
        assert change.events == ()

    def test_another_active_lock_is_a_conflict_that_is_announced(self) -> None:
        with pytest.raises(Conflict) as refused:
            locks.decide_create(lockable(), held("L1", LATER), "L2", LATER, NOW, PRODUCT)
        assert [type(e) for e in refused.value.events] == [LockRefused]

    def test_an_expired_lock_counts_as_released(self) -> None:
        change = locks.decide_create(lockable(), held("L1", EARLIER), "L2", LATER, NOW, PRODUCT)
        assert change.store is not None and change.store.lock_id == "L2"
        assert [type(e) for e in change.events] == [LockExpired, LockCreated]

    @pytest.mark.parametrize("status", [OrderStatus.FINALIZED, OrderStatus.CANCELED])
    def test_closed_orders_cannot_be_locked(self, status: OrderStatus) -> None:
        with pytest.raises(Conflict, match=status.value):
            locks.decide_create(lockable(status), None, "L1", LATER, NOW, PRODUCT)

    def test_an_order_open_on_a_till_cannot_be_locked(self) -> None:
        with pytest.raises(Conflict, match="till 3"):
            locks.decide_create(lockable(till="3"), None, "L1", LATER, NOW, PRODUCT)


class TestExtendLock:
    def test_active_lock_moves_its_expiry(self) -> None:
        new_expiry = LATER + timedelta(minutes=5)
        change = locks.decide_extend(lockable(), held("L1", LATER), "L1", new_expiry, NOW, PRODUCT)
        assert change.store is not None and change.store.expires_at == new_expiry

    def test_expired_lock_on_untouched_order_is_retaken(self) -> None:
        change = locks.decide_extend(
            lockable(updated_at=EARLIER - timedelta(hours=1)), held("L1", EARLIER), "L1", LATER, NOW, PRODUCT
        )
        assert change.store is not None and change.store.expires_at == LATER

    def test_expired_lock_on_changed_order_is_lost(self) -> None:
        with pytest.raises(Conflict, match="changed since"):
            locks.decide_extend(lockable(updated_at=NOW), held("L1", EARLIER), "L1", LATER, NOW, PRODUCT)

    def test_wrong_lock_id_is_a_conflict(self) -> None:
        with pytest.raises(Conflict, match="another lock"):
            locks.decide_extend(lockable(), held("L1", LATER), "L2", LATER, NOW, PRODUCT)
        with pytest.raises(Conflict, match="not held"):
            locks.decide_extend(lockable(), None, "L2", LATER, NOW, PRODUCT)


class TestDeleteLock:
    def test_own_lock_is_removed(self) -> None:
        assert locks.decide_delete("7", held("L1", LATER), "L1", NOW).remove

    def test_unknown_or_foreign_lock_is_success_and_leaves_the_holder(self) -> None:
        assert locks.decide_delete("7", held("L1", LATER), "L2", NOW) == locks.LockChange()
        assert locks.decide_delete("7", None, "L2", NOW) == locks.LockChange()


def payable(
    total: int = 5000,
    paid: tuple[StoredPayment, ...] = (),
    status: OrderStatus = OrderStatus.ACCEPTED,
    till: str | None = None,
) -> payments.PayableOrder:
    return payments.PayableOrder("7", status, "GBP", total, paid, till)


def pay(
    intent: str = "pi_1", value: int = 4000, tip: int | None = 500, lock_id: str | None = None, currency: str = "GBP"
) -> RecordOrderPaymentParams:
    return RecordOrderPaymentParams(
        order_id="7",
        payment_intent_id=intent,
        paid_amount=Money(value=value, currency_code=currency),
        tips_amount=Money(value=tip, currency_code=currency) if tip is not None else None,
        lock_id=lock_id,
    )


class TestRecordPayment:
    def test_payment_with_tip_keeps_the_tip_apart(self) -> None:
        decision = payments.decide_payment(payable(), None, pay(), None, NOW)
        assert decision.payment == StoredPayment(4000, 500, "pi_1", RECORDED)
        assert [type(e) for e in decision.events] == [PaymentRecorded]

    def test_replay_changes_nothing_even_when_the_order_is_now_closed(self) -> None:
        recorded = (StoredPayment(5000, None, "pi_1"),)
        for status in (OrderStatus.ACCEPTED, OrderStatus.FINALIZED, OrderStatus.CANCELED):
            decision = payments.decide_payment(
                payable(paid=recorded, status=status), held("L9", LATER), pay(lock_id="L1"), None, NOW
            )
            assert decision.payment is None and decision.events == ()

    def test_more_than_outstanding_is_a_conflict(self) -> None:
        with pytest.raises(Conflict, match="exceeds the outstanding 1000"):
            payments.decide_payment(payable(paid=(StoredPayment(4000),)), None, pay("pi_2", 1001), None, NOW)

    def test_reversed_payments_do_not_count_towards_outstanding(self) -> None:
        reversed_payment = (StoredPayment(4000, None, "pi_0", PaymentIntentStatus.REVERSED.value),)
        decision = payments.decide_payment(payable(paid=reversed_payment), None, pay("pi_2", 5000), None, NOW)
        assert decision.payment is not None

    def test_a_different_active_lock_is_a_conflict_but_an_omitted_lock_id_is_not(self) -> None:
        with pytest.raises(Conflict, match="another lock"):
            payments.decide_payment(payable(), held("L1", LATER), pay(lock_id="L2"), None, NOW)
        assert payments.decide_payment(payable(), held("L1", LATER), pay(lock_id=None), None, NOW).payment is not None
        assert payments.decide_payment(payable(), held("L1", EARLIER), pay(lock_id="L2"), None, NOW).payment is not None

    def test_closed_or_till_held_orders_refuse(self) -> None:
        with pytest.raises(Conflict):
            payments.decide_payment(payable(status=OrderStatus.CANCELED), None, pay(), None, NOW)
        with pytest.raises(Conflict, match="till"):
            payments.decide_payment(payable(till="2"), None, pay(), None, NOW)

    def test_currency_mismatch_and_bad_amounts_are_invalid(self) -> None:
        with pytest.raises(InvalidRequest, match="currency"):
            payments.decide_payment(payable(), None, pay(currency="EUR"), None, NOW)
        with pytest.raises(InvalidRequest, match="positive"):
            payments.decide_payment(payable(), None, pay(value=0), None, NOW)

    def test_an_intent_already_known_as_reversed_is_recorded_as_not_counting(self) -> None:
        decision = payments.decide_payment(payable(), None, pay(), PaymentIntentStatus.REVERSED, NOW)
        assert decision.payment is not None and not decision.payment.counts


class TestOrderMoney:
    def test_summary_lists_only_counting_payments_and_sums_tips_apart(self) -> None:
        summary = summarise_payments(
            OrderStatus.ACCEPTED,
            5000,
            "GBP",
            [
                StoredPayment(2000, 300, "pi_1"),
                StoredPayment(1000, None, None, RECORDED),
                StoredPayment(900, 100, "pi_2", "Refunded"),
            ],
        )
        assert summary.paid_amount.value == 3000
        assert summary.tips_amount.value == 300
        assert [p.payment_intent_id for p in summary.payments] == ["pi_1", None]
        assert summary.payable and summary.outstanding_value == 2000

    def test_fully_paid_or_closed_is_not_payable(self) -> None:
        assert not summarise_payments(OrderStatus.ACCEPTED, 100, "GBP", [StoredPayment(100)]).payable
        assert not summarise_payments(OrderStatus.FINALIZED, 100, "GBP", []).payable

    def test_cancellation_rules(self) -> None:
        assert check_cancellable("7", OrderStatus.ACCEPTED, 0, False, None)
        assert not check_cancellable("7", OrderStatus.CANCELED, 0, False, None)
        for args in (
            (OrderStatus.FINALIZED, 0, False, None),
            (OrderStatus.NEW, 1, False, None),
            (OrderStatus.NEW, 0, True, None),
            (OrderStatus.NEW, 0, False, "1"),
        ):
            with pytest.raises(Conflict):
                check_cancellable("7", *args)


class TestCursors:
    def test_round_trip_and_clamping(self) -> None:
        request = read_cursor(Cursor(limit=0, after=make_cursor("orders", 42)), "orders")
        assert (request.limit, request.boundary, request.direction) == (1, 42, "forward")
        assert read_cursor(None, "orders").limit == 100

    @pytest.mark.parametrize("token", ["garbage!", make_cursor("tables", 3), make_cursor("orders", "T1"), "e30"])
    def test_foreign_or_damaged_cursors_are_invalid(self, token: str) -> None:
        with pytest.raises(InvalidRequest):
            read_cursor(Cursor(before=token), "orders")

    def test_first_page_has_no_before_and_last_page_no_after(self) -> None:
        bounds = page_bounds("orders", [1, 2, 3], more_before=False, more_after=False)
        assert bounds.before is None and bounds.after is None
        assert page_bounds("orders", [], True, True).after is None
