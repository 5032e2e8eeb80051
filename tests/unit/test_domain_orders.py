"""Pure rule tests for what an order Dojo creates stores, which orders a search keeps, and the
small read rules every adapter shares (domain/orders.py, locks.stored_lock, pagination.page_of,
bill.build_bill)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from epos_bridge.domain import bill, locks, orders
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.errors import InvalidRequest
from epos_bridge.domain.orders import RECORDED, OrderRecord, PaymentRecord, StoredPayment
from epos_bridge.domain.pagination import PageRequest, page_of
from epos_bridge.protocol.entities import (
    CollectionDetails,
    DineInDetails,
    Order,
    OrderDetails,
    OrderStatus,
    OrderType,
)
from epos_bridge.protocol.params import CreateOrderParams, RequestHeaders, SearchOrdersParams
from epos_bridge.protocol.times import LONG_AGO

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def money(value: int) -> dict[str, Any]:
    return {"value": value, "currencyCode": "GBP"}


def create(**extra: Any) -> CreateOrderParams:
    body: dict[str, Any] = {
        "items": [{"name": "Burger", "plu": "BURG", "quantity": 2, "amountPerItem": money(500)}],
        "totalAmount": money(1000),
        "dojoOrderId": "do_1",
        "payments": [],
        "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}},
        **extra,
    }
    return CreateOrderParams.model_validate(body)


class TestNewOrder:
    def test_a_new_order_starts_new_with_dojos_lines_and_the_time_it_was_stored(self) -> None:
        record = orders.decide_new_order(create(displayName="Table 1"), {"T1"}, NOW)
        assert record.status is OrderStatus.NEW
        assert (record.currency, record.total_value, record.created_at, record.updated_at) == ("GBP", 1000, NOW, NOW)
        assert record.dojo_order_id == "do_1" and record.display_name == "Table 1"
        assert [i.plu for i in record.items] == ["BURG"] and record.payments == ()

    def test_payments_that_come_with_it_are_recorded_by_tender(self) -> None:
        paid = [
            {"paidAmount": money(600), "paymentIntentId": "pi_1", "tipsAmount": money(50)},
            {"paidAmount": money(400)},
        ]
        record = orders.decide_new_order(create(payments=paid), {"T1"}, NOW)
        assert record.payments == (
            PaymentRecord(StoredPayment(600, 50, "pi_1", RECORDED), NOW, orders.CARD),
            PaymentRecord(StoredPayment(400, None, None, RECORDED), NOW, orders.OTHER_TENDER),
        )

    def test_an_unknown_table_or_an_order_that_cannot_be_stored_faithfully_is_refused(self) -> None:
        with pytest.raises(InvalidRequest, match=r"details\.dineIn\.tableId: unknown table 'T1'"):
            orders.decide_new_order(create(), {"T2"}, NOW)
        with pytest.raises(InvalidRequest, match="payments exceed totalAmount"):
            orders.decide_new_order(create(payments=[{"paidAmount": money(1001)}]), {"T1"}, NOW)

    def test_a_collection_names_no_table(self) -> None:
        params = create(details={"orderType": "Collection", "collection": {"asap": True}})
        assert orders.tables_named(params) == ()
        assert orders.decide_new_order(params, set(), NOW).details.order_type is OrderType.COLLECTION


class TestReferences:
    def test_an_order_dojo_sent_without_a_reference_is_numbered_by_its_key(self) -> None:
        dine_in = orders.decide_new_order(create(), {"T1"}, NOW)
        collection = orders.decide_new_order(
            create(details={"orderType": "Collection", "collection": {"asap": True}}), set(), NOW
        )
        assert dine_in.reference is None
        assert (dine_in.reference_for(7), collection.reference_for(12345)) == ("DOJO-0007", "COL-12345")
        assert orders.decide_new_order(create(reference="A-1"), {"T1"}, NOW).reference_for(7) == "A-1"

    def test_a_till_order_without_a_reference_shows_its_id(self) -> None:
        assert orders.display_reference(None, 7) == "#7"
        assert orders.display_reference("", "7") == "#7"
        assert orders.display_reference("T12-0007", 7) == "T12-0007"


class TestDetails:
    def test_anything_not_a_collection_is_dine_in_even_without_a_table(self) -> None:
        dine_in, collection = DineInDetails(), CollectionDetails(asap=True)
        assert orders.order_details("Collection", dine_in, collection).collection == collection
        for stored in ("DineIn", None, "Takeaway"):
            details = orders.order_details(stored, dine_in, collection)
            assert details.order_type is OrderType.DINE_IN and details.dine_in == DineInDetails()
            assert details.collection is None


@dataclass(frozen=True)
class Searched:
    status: OrderStatus = OrderStatus.ACCEPTED
    total_value: int = 1000
    paid_value: int = 0
    dine_in: Mapping[str, object] = field(default_factory=lambda: {"table_id": "T1", "waiter_id": "w1"})


class TestOrderSearch:
    def test_closed_orders_are_left_out_by_default(self) -> None:
        everything = orders.order_filter(SearchOrdersParams())
        assert everything.matches(Searched()) and everything.matches(Searched(status=OrderStatus.FAILED))
        for status in (OrderStatus.FINALIZED, OrderStatus.CANCELED):
            assert not everything.matches(Searched(status=status))

    def test_dine_in_filters_combine_with_and(self) -> None:
        wanted = orders.order_filter(SearchOrdersParams.model_validate({"dineIn": {"tableId": "T1", "waiterId": "w1"}}))
        assert wanted.dine_in == (("table_id", "T1"), ("waiter_id", "w1"))
        assert wanted.matches(Searched())
        assert not wanted.matches(Searched(dine_in={"table_id": "T1", "waiter_id": "w2"}))
        assert not wanted.matches(Searched(dine_in={}))

    @pytest.mark.parametrize(
        ("status", "paid", "payable"),
        [
            (OrderStatus.ACCEPTED, 0, True),
            (OrderStatus.ACCEPTED, 999, True),
            (OrderStatus.ACCEPTED, 1000, False),
            (OrderStatus.FAILED, 0, False),
            (OrderStatus.NEW, 0, True),
        ],
    )
    def test_payable_only_keeps_what_is_payable(self, status: OrderStatus, paid: int, payable: bool) -> None:
        assert orders.is_payable(status, 1000, paid) is payable
        wanted = orders.order_filter(SearchOrdersParams(payable_only=True))
        assert wanted.matches(Searched(status=status, paid_value=paid)) is payable

    def test_only_counting_payments_are_paid(self) -> None:
        paid = [StoredPayment(300, 20, "pi_1"), StoredPayment(200, None, "pi_2", "Reversed"), StoredPayment(100)]
        assert orders.paid_value(paid) == 400
        assert {"Reversed", "Refunded", "Canceled"} == orders.NON_COUNTING_PAYMENT_STATUSES


class TestStoredLock:
    def test_an_unreadable_expiry_counts_as_expired_and_an_unreadable_start_as_the_expiry(self) -> None:
        lock = locks.stored_lock("L1", None, None, RequestHeaders())
        assert lock.expires_at == lock.locked_at == LONG_AGO and not lock.is_active(NOW)
        later = NOW + timedelta(minutes=5)
        assert locks.stored_lock("L1", later, None, RequestHeaders()).locked_at == later
        assert locks.stored_lock("L1", later, NOW, RequestHeaders()).is_active(NOW)


class TestPageOf:
    KEYS = (1, 2, 3, 5, 8)

    def test_forward_from_the_start_and_after_a_boundary(self) -> None:
        assert page_of(self.KEYS, PageRequest(2, None, "forward")) == ([1, 2], False, True)
        assert page_of(self.KEYS, PageRequest(2, 3, "forward")) == ([5, 8], True, False)
        assert page_of(self.KEYS, PageRequest(2, 8, "forward")) == ([], False, False)

    def test_backward_before_a_boundary(self) -> None:
        assert page_of(self.KEYS, PageRequest(2, 5, "backward")) == ([2, 3], True, True)
        assert page_of(self.KEYS, PageRequest(9, 5, "backward")) == ([1, 2, 3], False, True)
        assert page_of(["T1", "T2"], PageRequest(1, "T2", "backward")) == (["T1"], False, True)


class TestBill:
    ORDER = Order(
        id="7",
        status=OrderStatus.ACCEPTED,
        details=OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails(table_id="T12")),
    )

    def texts(self, section: Any) -> list[str]:
        return [line.text.value for line in section.lines if line.text is not None]

    def test_a_pos_without_venue_details_still_prints_a_bill(self) -> None:
        printed = bill.build_bill(self.ORDER, None, "Table 12", NOW)
        assert printed.header.lines[0].merchant_name is not None
        assert printed.header.lines[0].merchant_name.name == bill.FALLBACK_VENUE.name == "Receipt"

    def test_the_table_prints_by_name_or_else_by_its_id(self) -> None:
        venue = VenueDetails(name="The Copper Kettle")
        assert bill.table_of(self.ORDER) == "T12"
        assert "Table Window" in self.texts(bill.build_bill(self.ORDER, venue, "Window", NOW).header)
        assert "Table T12" in self.texts(bill.build_bill(self.ORDER, venue, None, NOW).header)


def test_an_order_record_holds_what_a_seeder_needs() -> None:
    """The demo venue and CreateOrder store the same record; a till's own order may carry more."""
    record = OrderRecord(
        status=OrderStatus.PREPARING,
        details=OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails(table_id="T1")),
        currency="GBP",
        total_value=100,
        created_at=NOW,
        updated_at=NOW,
        open_at_till="TILL-2",
    )
    assert record.reference_for(3) == "DOJO-0003" and record.open_at_till == "TILL-2"
