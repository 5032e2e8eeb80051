"""The lock board and payment-log entries built from domain events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from epos_bridge.domain.events import (
    LockCreated,
    LockExtended,
    LockRefused,
    LockReleased,
    OrderFacts,
    PaymentRecorded,
)
from epos_bridge.protocol.entities import Money
from epos_bridge.protocol.params import RequestHeaders
from epos_bridge.services.activity import LockActivity, LockBoard, payment_entry

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
FACTS = OrderFacts(reference="T12-0007", display_name="Table 12", table_id="T12")
PAT = RequestHeaders(dojo_requesting_product="PayAtTable", device_id="term-1", waiter_id="w1")


def test_a_lock_is_shown_extended_and_released() -> None:
    board = LockBoard()
    board.apply(LockCreated("7", NOW, "L1", NOW + timedelta(seconds=60), PAT, FACTS))
    assert board.current["7"].seconds_left(NOW) == 60
    board.apply(LockExtended("7", NOW, "L1", NOW + timedelta(seconds=120)))
    assert board.current["7"].seconds_left(NOW) == 120
    board.apply(LockReleased("7", NOW, "L1"))
    assert board.current == {}
    assert [h.activity for h in board.history] == [LockActivity.CREATED, LockActivity.EXTENDED, LockActivity.RELEASED]
    assert board.history[-1].order == FACTS
    assert "PayAtTable" in board.history[0].detail


def test_expired_locks_leave_the_board_and_conflicts_are_remembered() -> None:
    board = LockBoard()
    board.apply(LockCreated("7", NOW, "L1", NOW + timedelta(seconds=5), PAT, FACTS))
    board.apply(LockRefused("7", NOW, "L2", "the order is held by another lock (L1)", PAT))
    assert board.expire(NOW + timedelta(seconds=4)) == []
    gone = board.expire(NOW + timedelta(seconds=5))
    assert [g.lock_id for g in gone] == ["L1"]
    assert board.current == {}
    assert [h.activity for h in board.history] == [LockActivity.CREATED, LockActivity.CONFLICT, LockActivity.EXPIRED]


def test_a_release_of_someone_elses_lock_keeps_the_holder() -> None:
    board = LockBoard()
    board.apply(LockCreated("7", NOW, "L1", NOW + timedelta(seconds=60), PAT, FACTS))
    board.apply(LockReleased("7", NOW, "L9"))
    assert board.current["7"].lock_id == "L1"


def test_payment_entries_keep_the_tip_apart() -> None:
    event = PaymentRecorded(
        "7", NOW, "pi_1", Money(value=4000, currency_code="GBP"), Money(value=500, currency_code="GBP"), PAT, FACTS
    )
    entry = payment_entry(event)
    assert (entry.amount_value, entry.tips_value, entry.status) == (4000, 500, "Recorded")
    assert (entry.order_reference, entry.table_id, entry.product, entry.device_id) == (
        "T12-0007",
        "T12",
        "PayAtTable",
        "term-1",
    )
