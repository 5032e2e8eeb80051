"""Order wire methods through the real dispatcher and SQLite file (contract §3.1-3.4, §3.8, §3.23).

SearchOrdersV1, GetOrderByIdV1, GetOrderBillByIdV1, CreateOrderV1 and CancelOrderByIdV1. Every
response is validated against the published schema by the ``rpc`` fixture; state is re-read
through the wire, or from the POS file where the wire cannot show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Rpc
from tests.helpers.builders import (
    create_order_params,
    failed,
    forged_cursor,
    get_order,
    item,
    lock_params,
    minutes_from_now,
    money,
    new_order,
    ok,
    order_id_params,
    parse_time,
    payment_params,
    scalar,
    search_order_ids,
    search_orders_params,
    search_tables_params,
    sql,
    walk_back,
    walk_forward,
)

NON_NUMERIC_IDS = [
    pytest.param(order_id, id=name)
    for name, order_id in (
        ("letters", "abc"),
        ("negative", "-1"),
        ("decimal", "1.5"),
        ("padded", " 1"),
        ("exponent", "1e3"),
        ("empty", ""),
        ("beyond-int64", "99999999999999999999999"),
        # A digit to str.isdigit() but not to int(): must still be NotFound, not a crash.
        ("superscript-two", "\u00b2"),
    )
]
"""Ids the POS never issued."""


# --- SearchOrdersV1: filters ---------------------------------------------------------------


@pytest.fixture
async def floor(rpc: Rpc) -> dict[str, str]:
    """Four open orders spread over tables, waiters, a party and a reservation."""
    specs: dict[str, dict[str, Any]] = {
        "t1_w1_party": {"table_id": "T1", "waiter_id": "w1", "party_id": "P1"},
        "t1_w2": {"table_id": "T1", "waiter_id": "w2"},
        "t2_w1": {"table_id": "T2", "waiter_id": "w1"},
        "t1_w1_reservation": {"table_id": "T1", "waiter_id": "w1", "reservation_id": "R1"},
    }
    return {name: (await new_order(rpc, f"dojo-{name}", **spec))["id"] for name, spec in specs.items()}


async def test_search_orders_returns_whole_orders_matching_the_filter(rpc: Rpc, floor: dict[str, str]) -> None:
    page = ok(await rpc("SearchOrdersV1", search_orders_params(dine_in={"partyId": "P1"})))

    [order] = page["data"]
    assert order == await get_order(rpc, floor["t1_w1_party"])
    assert order["details"]["dineIn"] == {"tableId": "T1", "waiterId": "w1", "partyId": "P1"}
    assert "before" not in page and "after" not in page


async def test_search_orders_leaves_out_finalized_and_canceled_orders(rpc: Rpc, pos_db_path: Path) -> None:
    open_order = await new_order(rpc, "dojo-open")
    finalized = await new_order(rpc, "dojo-finalized")
    canceled = await new_order(rpc, "dojo-canceled")
    sql(pos_db_path, "UPDATE orders SET status = 'Finalized' WHERE id = ?", [finalized["id"]])
    ok(await rpc("CancelOrderByIdV1", order_id_params(canceled["id"])))

    assert await search_order_ids(rpc) == [open_order["id"]]
    assert await search_order_ids(rpc, dine_in={"tableId": "T1"}) == [open_order["id"]]


async def test_search_orders_payable_only_leaves_out_paid_and_failed_orders(rpc: Rpc, pos_db_path: Path) -> None:
    unpaid = await new_order(rpc, "dojo-unpaid", total=3000)
    part_paid = await new_order(rpc, "dojo-part", total=3000)
    fully_paid = await new_order(rpc, "dojo-full", total=3000)
    failed_order = await new_order(rpc, "dojo-failed", total=3000)
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(part_paid["id"], "pi_part", 1000)))
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(fully_paid["id"], "pi_full", 3000)))
    sql(pos_db_path, "UPDATE orders SET status = 'Failed' WHERE id = ?", [failed_order["id"]])

    payable = await search_order_ids(rpc, payable_only=True)
    everything = await search_order_ids(rpc, payable_only=False)

    assert payable == [unpaid["id"], part_paid["id"]]
    assert everything == [unpaid["id"], part_paid["id"], fully_paid["id"], failed_order["id"]]


async def test_search_orders_payable_only_combines_with_the_table_filter(rpc: Rpc) -> None:
    on_t1 = await new_order(rpc, "dojo-t1", table_id="T1")
    paid_on_t1 = await new_order(rpc, "dojo-t1-paid", table_id="T1")
    await new_order(rpc, "dojo-t2", table_id="T2")
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(paid_on_t1["id"], "pi_1", 1000)))

    assert await search_order_ids(rpc, dine_in={"tableId": "T1"}, payable_only=True) == [on_t1["id"]]


async def test_search_orders_with_no_orders_returns_an_empty_page(rpc: Rpc) -> None:
    page = ok(await rpc("SearchOrdersV1", search_orders_params()))

    assert page == {"data": []}


# --- SearchOrdersV1: pagination ------------------------------------------------------------


@pytest.fixture
async def ten_orders(rpc: Rpc) -> list[str]:
    return [(await new_order(rpc, f"dojo-page-{n}"))["id"] for n in range(10)]


async def test_walking_forward_returns_every_order_exactly_once(rpc: Rpc, ten_orders: list[str]) -> None:
    pages = await walk_forward(rpc, "SearchOrdersV1", search_orders_params, limit=3)

    assert [len(page["data"]) for page in pages] == [3, 3, 3, 1]
    assert [order["id"] for page in pages for order in page["data"]] == ten_orders
    assert "before" not in pages[0], "the first page has no before cursor"
    assert "after" not in pages[-1], "the last page has no after cursor"
    assert all("before" in page for page in pages[1:])
    assert all("after" in page for page in pages[:-1])


async def test_walking_back_with_before_returns_the_orders_again(rpc: Rpc, ten_orders: list[str]) -> None:
    forward = await walk_forward(rpc, "SearchOrdersV1", search_orders_params, limit=3)

    backward = await walk_back(rpc, "SearchOrdersV1", search_orders_params, 3, forward[-1])

    assert [[o["id"] for o in page["data"]] for page in backward] == [
        ten_orders[6:9],
        ten_orders[3:6],
        ten_orders[0:3],
    ]
    assert "before" not in backward[-1], "back on the first page, before is omitted"
    assert "after" in backward[-1]


async def test_last_page_omits_after_when_orders_fill_it_exactly(rpc: Rpc) -> None:
    ids = [(await new_order(rpc, f"dojo-exact-{n}"))["id"] for n in range(6)]

    pages = await walk_forward(rpc, "SearchOrdersV1", search_orders_params, limit=3)

    assert [[o["id"] for o in page["data"]] for page in pages] == [ids[:3], ids[3:]]
    assert "after" not in pages[-1]


async def test_pagination_respects_filters(rpc: Rpc) -> None:
    on_t1 = [(await new_order(rpc, f"dojo-t1-{n}", table_id="T1"))["id"] for n in range(4)]
    for n in range(3):
        await new_order(rpc, f"dojo-t2-{n}", table_id="T2")

    pages = await walk_forward(
        rpc, "SearchOrdersV1", lambda **kw: search_orders_params(dine_in={"tableId": "T1"}, **kw), 2
    )

    assert [o["id"] for page in pages for o in page["data"]] == on_t1


async def test_orders_added_while_walking_are_not_returned_twice(rpc: Rpc, ten_orders: list[str]) -> None:
    first = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": 5})))
    late = await new_order(rpc, "dojo-late")

    second = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": 100, "after": first["after"]})))

    assert [o["id"] for o in first["data"] + second["data"]] == [*ten_orders, late["id"]]


@pytest.mark.parametrize("limit", [0, -5])
async def test_limit_below_one_is_clamped_to_one(rpc: Rpc, ten_orders: list[str], limit: int) -> None:
    page = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": limit})))

    assert [o["id"] for o in page["data"]] == ten_orders[:1]
    assert "after" in page


async def test_limit_of_100_is_allowed_and_default_page_holds_everything(rpc: Rpc, ten_orders: list[str]) -> None:
    limited = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": 100})))
    default = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={})))

    assert [o["id"] for o in limited["data"]] == ten_orders
    assert default == limited


async def test_limit_above_100_is_an_invalid_request(rpc: Rpc, ten_orders: list[str]) -> None:
    params = search_orders_params()
    params["cursor"] = {"limit": 101}

    error = failed(await rpc("SearchOrdersV1", params), "InvalidRequest")

    assert "limit" in error["debugMessage"]


async def test_before_and_after_together_are_an_invalid_request(rpc: Rpc, ten_orders: list[str]) -> None:
    page = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": 3})))
    params = search_orders_params()
    params["cursor"] = {"limit": 3, "before": page["after"], "after": page["after"]}

    error = failed(await rpc("SearchOrdersV1", params), "InvalidRequest")

    assert "before" in error["debugMessage"] and "after" in error["debugMessage"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "bm90IGpzb24",  # base64 of "not json"
        "é",
        forged_cursor([1, 2]),
        forged_cursor({"s": "orders"}),
        forged_cursor({"s": "orders", "k": "12"}),
        forged_cursor({"s": "orders", "k": True}),
        forged_cursor({"s": "orders", "k": 10**30}),
    ],
    ids=["not-base64", "not-json", "non-ascii", "not-an-object", "no-key", "string-key", "bool-key", "huge-key"],
)
@pytest.mark.parametrize("direction", ["after", "before"])
async def test_a_cursor_this_pos_did_not_issue_is_an_invalid_request(
    rpc: Rpc, ten_orders: list[str], cursor: str, direction: str
) -> None:
    error = failed(
        await rpc("SearchOrdersV1", search_orders_params(cursor={direction: cursor})),
        "InvalidRequest",
    )

    assert f"cursor.{direction}" in error["debugMessage"]


async def test_a_cursor_from_search_tables_is_refused_by_search_orders(rpc: Rpc, ten_orders: list[str]) -> None:
    tables = ok(await rpc("SearchTablesV1", search_tables_params(cursor={"limit": 1})))
    assert "after" in tables

    error = failed(
        await rpc("SearchOrdersV1", search_orders_params(cursor={"after": tables["after"]})),
        "InvalidRequest",
    )

    assert "cursor.after" in error["debugMessage"]


# --- GetOrderByIdV1 ------------------------------------------------------------------------


async def test_get_order_returns_the_order_with_the_fields_a_terminal_needs(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-1", total=2500)

    order = await get_order(rpc, created["id"])

    assert order == created
    assert order["status"] == "New"
    assert order["totalAmount"] == money(2500)
    assert order["paidAmount"] == money(0)
    assert order["tipsAmount"] == money(0)
    assert order["payments"] == []
    assert order["payable"] is True
    assert order["reference"] == f"DOJO-{int(order['id']):04d}"


async def test_get_order_of_an_unknown_id_is_not_found(rpc: Rpc) -> None:
    await new_order(rpc, "dojo-1")

    error = failed(await rpc("GetOrderByIdV1", order_id_params("999")), "NotFound")

    assert "999" in error["debugMessage"]


@pytest.mark.parametrize("order_id", NON_NUMERIC_IDS)
async def test_get_order_of_an_id_the_pos_never_issued_is_not_found(rpc: Rpc, order_id: str) -> None:
    await new_order(rpc, "dojo-1")

    failed(await rpc("GetOrderByIdV1", order_id_params(order_id)), "NotFound")


# --- GetOrderBillByIdV1 --------------------------------------------------------------------


async def test_bill_carries_the_venue_header_and_footer_around_the_current_order(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-bill", table_id="T12", total=4200, displayName="Table 12 dinner")

    bill = ok(await rpc("GetOrderBillByIdV1", order_id_params(created["id"])))

    header = {line["lineType"]: line for line in bill["header"]["lines"]}
    footer = {line["lineType"]: line for line in bill["footer"]["lines"]}
    assert header["MerchantName"]["merchantName"] == {"name": "Test Kitchen"}
    assert header["MerchantAddress"]["merchantAddress"] == {
        "addressLines": ["1 High Street", "Bristol"],
        "postcode": "BS1 1AA",
    }
    header_texts = [line["text"]["value"] for line in bill["header"]["lines"] if line["lineType"] == "Text"]
    assert "Table 12 dinner" in header_texts
    assert "Table 12" in header_texts
    assert footer["TaxNumber"]["taxNumber"] == {"name": "VAT number", "number": "GB123456789"}
    footer_texts = [line["text"]["value"] for line in bill["footer"]["lines"] if line["lineType"] == "Text"]
    assert footer_texts == ["Thank you!"]
    assert bill["order"] == await get_order(rpc, created["id"])


async def test_bill_shows_payments_already_taken(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-bill", total=4000)
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(created["id"], "pi_half", 2000)))

    bill = ok(await rpc("GetOrderBillByIdV1", order_id_params(created["id"])))

    assert bill["order"]["paidAmount"] == money(2000)
    assert bill["order"]["payable"] is True


@pytest.mark.parametrize("order_id", ["999", *NON_NUMERIC_IDS])
async def test_bill_of_an_unknown_order_is_not_found(rpc: Rpc, order_id: str) -> None:
    await new_order(rpc, "dojo-1")

    failed(await rpc("GetOrderBillByIdV1", order_id_params(order_id)), "NotFound")


# --- CreateOrderV1 -------------------------------------------------------------------------


def full_order_params(dojo_order_id: str = "dojo-full") -> dict[str, Any]:
    """An order using every optional field, in amounts that add up (VAT inclusive):
    2 x (1000 burger + 150 cheese + 300 fries + 50 truffle) + 300 cola - 300 discount + 300 service."""
    burger = item(
        "Burger",
        "BURG",
        quantity=2,
        price=1000,
        note="medium rare",
        modifiers=[{"name": "Cheese", "plu": "CHS", "quantity": 1, "amountPerModifier": money(150)}],
        subItems=[
            {
                "name": "Fries",
                "plu": "FRY",
                "quantity": 1,
                "amountPerItem": money(300),
                "note": "extra crispy",
                "modifiers": [{"name": "Truffle", "plu": "TRF", "quantity": 1, "amountPerModifier": money(50)}],
            }
        ],
    )
    return create_order_params(
        dojo_order_id,
        total=3300,
        items=[burger, item("Cola", "COLA", quantity=1, price=300)],
        payments=[{"paidAmount": money(500)}],
        note="birthday",
        customer={"id": "cust-7", "name": "Grace Hopper", "emailAddress": "grace@example.com", "phoneNumber": "07700"},
        discounts=[
            {
                "name": "Happy hour",
                "amountTotal": money(300),
                "affectedPlu": "COLA",
                "discountReference": "HH-1",
                "code": "HAPPY",
                "amountPercentage": 5000,
            }
        ],
        taxLines=[
            {
                "amountTotal": money(550),
                "id": "vat20",
                "name": "VAT 20%",
                "affectedPlu": "BURG",
                "amountPercentage": 2000,
            }
        ],
        serviceChargeAmount=money(300),
        reference="TAB-77",
        displayName="Table 1 - Grace",
    )


async def test_create_order_round_trips_every_field(rpc: Rpc) -> None:
    request = full_order_params()

    created = ok(await rpc("CreateOrderV1", request))
    fetched = await get_order(rpc, created["id"])

    assert fetched == created
    for field in ("items", "note", "customer", "discounts", "taxLines", "serviceChargeAmount", "reference"):
        assert fetched[field] == request[field], field
    assert fetched["displayName"] == "Table 1 - Grace"
    assert fetched["details"] == {"orderType": "DineIn", "dineIn": {"tableId": "T1"}}
    assert fetched["totalAmount"] == money(3300)
    assert fetched["payments"] == [{"paidAmount": money(500)}]
    assert fetched["paidAmount"] == money(500)
    assert fetched["payable"] is True
    assert fetched["status"] == "New"
    assert parse_time(fetched["createdAt"]) == parse_time(fetched["updatedAt"])


async def test_create_collection_order_round_trips_collect_at(rpc: Rpc) -> None:
    request = create_order_params("dojo-col", table_id=None)
    request["details"] = {"orderType": "Collection", "collection": {"asap": False, "collectAt": "2025-03-14T18:30:00Z"}}

    created = ok(await rpc("CreateOrderV1", request))
    fetched = await get_order(rpc, created["id"])

    collection = fetched["details"]["collection"]
    assert fetched["details"]["orderType"] == "Collection"
    assert "dineIn" not in fetched["details"]
    assert collection["asap"] is False
    assert parse_time(collection["collectAt"]) == parse_time("2025-03-14T18:30:00Z")
    assert fetched["reference"].startswith("COL-")


async def test_create_dine_in_pre_order_round_trips_ready_at(rpc: Rpc) -> None:
    request = create_order_params("dojo-pre", reservation_id="R9")
    request["details"]["dineIn"]["readyAt"] = "2025-03-14T19:15:00+01:00"

    created = ok(await rpc("CreateOrderV1", request))

    dine_in = (await get_order(rpc, created["id"]))["details"]["dineIn"]
    assert dine_in["reservationId"] == "R9"
    assert parse_time(dine_in["readyAt"]) == parse_time("2025-03-14T18:15:00Z")


async def test_create_order_is_idempotent_on_dojo_order_id(rpc: Rpc, pos_db_path: Path) -> None:
    first = ok(await rpc("CreateOrderV1", full_order_params("dojo-same")))
    retry = ok(await rpc("CreateOrderV1", full_order_params("dojo-same")))
    changed_retry = ok(await rpc("CreateOrderV1", create_order_params("dojo-same", total=99)))

    assert retry == first
    assert changed_retry == first
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM orders WHERE dojo_order_id = 'dojo-same'") == 1
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM order_items") == 2
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payments") == 1


async def test_two_different_dojo_orders_are_two_orders(rpc: Rpc, pos_db_path: Path) -> None:
    first = await new_order(rpc, "dojo-a")
    second = await new_order(rpc, "dojo-b")

    assert first["id"] != second["id"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM orders") == 2


def _currency_mismatch() -> dict[str, Any]:
    params = create_order_params("dojo-bad", total=1000)
    params["items"] = [item(price=1000) | {"amountPerItem": money(1000, "EUR")}]
    return params


def _unknown_table() -> dict[str, Any]:
    return create_order_params("dojo-bad", table_id="T99")


def _negative_amount() -> dict[str, Any]:
    return create_order_params("dojo-bad", total=1000, items=[item(price=1200), item("Voucher", "VCH", price=-200)])


def _service_charge_above_total() -> dict[str, Any]:
    return create_order_params("dojo-bad", total=1000, serviceChargeAmount=money(1001))


def _discount_in_other_currency() -> dict[str, Any]:
    return create_order_params("dojo-bad", discounts=[{"name": "Promo", "amountTotal": money(100, "EUR")}])


def _payments_above_total() -> dict[str, Any]:
    return create_order_params("dojo-bad", total=1000, payments=[{"paidAmount": money(1500)}])


def _zero_quantity() -> dict[str, Any]:
    return create_order_params("dojo-bad", items=[item(quantity=0)])


@pytest.mark.parametrize(
    ("build", "mentions"),
    [
        (_currency_mismatch, "currency"),
        (_unknown_table, "T99"),
        (_negative_amount, "negative"),
        (_service_charge_above_total, "serviceChargeAmount"),
        (_discount_in_other_currency, "discounts[0]"),
        (_payments_above_total, "payments"),
        (_zero_quantity, "quantity"),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)
async def test_create_order_refuses_an_order_it_cannot_store_faithfully(
    rpc: Rpc, pos_db_path: Path, build: Any, mentions: str
) -> None:
    error = failed(await rpc("CreateOrderV1", build()), "InvalidRequest")

    assert mentions in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM orders") == 0
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM order_items") == 0


async def test_create_order_without_details_branch_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    params = create_order_params("dojo-bad")
    params["details"] = {"orderType": "DineIn"}

    failed(await rpc("CreateOrderV1", params), "InvalidRequest")

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM orders") == 0


# --- CancelOrderByIdV1 ---------------------------------------------------------------------


async def test_cancel_order_marks_it_canceled_and_not_payable(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-1")

    canceled = ok(await rpc("CancelOrderByIdV1", order_id_params(created["id"])))

    assert canceled["status"] == "Canceled"
    assert canceled["payable"] is False
    assert await get_order(rpc, created["id"]) == canceled
    assert await search_order_ids(rpc) == []
    assert parse_time(canceled["updatedAt"]) >= parse_time(created["updatedAt"])


async def test_cancel_order_twice_is_success(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-1")
    first = ok(await rpc("CancelOrderByIdV1", order_id_params(created["id"])))

    second = ok(await rpc("CancelOrderByIdV1", order_id_params(created["id"])))

    assert second == first


async def test_cancel_order_with_a_payment_is_a_conflict(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-1", total=2000)
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(created["id"], "pi_1", 500)))

    error = failed(await rpc("CancelOrderByIdV1", order_id_params(created["id"])), "Conflict")

    assert "payment" in error["debugMessage"]
    assert (await get_order(rpc, created["id"]))["status"] == "New"


async def test_cancel_finalized_order_is_a_conflict(rpc: Rpc, pos_db_path: Path) -> None:
    created = await new_order(rpc, "dojo-1")
    sql(pos_db_path, "UPDATE orders SET status = 'Finalized' WHERE id = ?", [created["id"]])

    error = failed(await rpc("CancelOrderByIdV1", order_id_params(created["id"])), "Conflict")

    assert "Finalized" in error["debugMessage"]
    assert (await get_order(rpc, created["id"]))["status"] == "Finalized"


async def test_cancel_order_held_by_an_active_lock_is_a_conflict(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-1")
    ok(await rpc("CreateOrderLockV1", lock_params(created["id"], "lock-1", minutes_from_now(30))))

    error = failed(await rpc("CancelOrderByIdV1", order_id_params(created["id"])), "Conflict")

    assert "locked" in error["debugMessage"]
    assert (await get_order(rpc, created["id"]))["status"] == "New"


async def test_cancel_order_whose_lock_expired_is_allowed(rpc: Rpc) -> None:
    created = await new_order(rpc, "dojo-1")
    ok(await rpc("CreateOrderLockV1", lock_params(created["id"], "lock-1", minutes_from_now(-1))))

    canceled = ok(await rpc("CancelOrderByIdV1", order_id_params(created["id"])))

    assert canceled["status"] == "Canceled"


async def test_cancel_order_open_at_a_till_is_a_conflict(rpc: Rpc, pos_db_path: Path) -> None:
    created = await new_order(rpc, "dojo-1")
    sql(pos_db_path, "UPDATE orders SET open_at_till = 'till-2' WHERE id = ?", [created["id"]])

    error = failed(await rpc("CancelOrderByIdV1", order_id_params(created["id"])), "Conflict")

    assert "till-2" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT status FROM orders WHERE id = ?", [created["id"]]) == "New"


@pytest.mark.parametrize("order_id", ["999", *NON_NUMERIC_IDS])
async def test_cancel_unknown_order_is_not_found(rpc: Rpc, pos_db_path: Path, order_id: str) -> None:
    await new_order(rpc, "dojo-1")

    failed(await rpc("CancelOrderByIdV1", order_id_params(order_id)), "NotFound")

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM orders WHERE status = 'Canceled'") == 0
