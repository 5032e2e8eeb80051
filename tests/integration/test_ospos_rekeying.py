"""Open Source Point of Sale re-keys a bill whenever a till touches it (unsuspend deletes it;
suspending again or completing writes it under a new sale_id). What Dojo was told stays true on
the till's own screens through that: a payment reversed before it was recorded, a CreateOrder
retried after the checkout, a note on a line whose row id OSPOS hands out again."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.database import MappedDatabase
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.testing.contract_suite import STANDARD_VENUE, event, ok, order_params, pay
from tests.helpers.contract import Rpc, rpc_over
from tests.helpers.ospos import CLOSED, OsposTill, ospos
from tests.helpers.pos import sqlmap_pos


@pytest.fixture
def till(tmp_path: Path) -> OsposTill:
    till = OsposTill(tmp_path / "ospos.db")
    till.seed(STANDARD_VENUE)
    return till


@pytest.fixture
async def adapter(till: OsposTill) -> AsyncIterator[PosCalls]:
    opened = sqlmap_pos(till.path, ospos())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def rpc(adapter: PosCalls) -> Rpc:
    return rpc_over(adapter)


async def test_a_payment_reversed_before_it_was_recorded_is_not_counted_on_the_till(till: OsposTill, rpc: Rpc) -> None:
    order = till.add_open_order("T1", 3000, "GBP")
    ok(await rpc("HandleEventV1", event("evt_1", "pi_early", "Reversed", created_at=datetime.now(UTC).isoformat())))
    told = ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_early", 3000)))
    assert (told["paidAmount"]["value"], told["payable"]) == (0, True)
    bill = till.bill(int(order))
    assert bill.payments == {"Dojo:pi_early": Decimal(0)}
    assert not bill.complete_shows


async def test_a_create_order_retried_after_the_checkout_is_never_not_found(till: OsposTill, rpc: Rpc) -> None:
    created = ok(await rpc("CreateOrderV1", order_params("dojo-1")))
    ok(await rpc("RecordOrderPaymentByIdV1", pay(created["id"], "pi_1", 1000)))
    sale = till.check_out(int(created["id"]))
    again = ok(await rpc("CreateOrderV1", order_params("dojo-1")))
    assert (again["id"], again["status"], again["payable"]) == (created["id"], "Finalized", False)
    assert again["paidAmount"]["value"] == 1000
    assert ok(await rpc("GetOrderByIdV1", {"orderId": str(CLOSED + sale)}))["paidAmount"]["value"] == 1000


async def test_a_create_order_retried_after_the_till_dropped_the_bill_is_what_dojo_was_told(
    till: OsposTill, rpc: Rpc
) -> None:
    created = ok(await rpc("CreateOrderV1", order_params("dojo-1")))
    till.unsuspend(int(created["id"]))  # into a till's cart, never suspended again
    again = ok(await rpc("CreateOrderV1", order_params("dojo-1")))
    assert again == {**created, "payable": False}
    assert till.suspended_list() == []


async def test_a_note_stays_with_its_line_when_ospos_hands_the_row_id_out_again(till: OsposTill, rpc: Rpc) -> None:
    noted = order_params("dojo-1")
    noted["items"][0]["note"] = "NO ONIONS - allergy"
    created = ok(await rpc("CreateOrderV1", noted))
    assert ok(await rpc("GetOrderByIdV1", {"orderId": created["id"]}))["items"][0]["note"] == "NO ONIONS - allergy"
    till.check_out(int(created["id"]))
    other = till.suspend(till.table_keys["T2"], [("COLA", 1, 300)])
    line = ok(await rpc("GetOrderByIdV1", {"orderId": str(other)}))["items"][0]
    assert (line["name"], line.get("note")) == ("Cola", None)


async def test_a_reversal_while_a_tills_cart_holds_the_bill_is_applied_again_when_the_sale_is_written(
    till: OsposTill, rpc: Rpc, adapter: PosCalls
) -> None:
    order = till.add_open_order("T1", 3000, "GBP")
    ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 1000)))
    cart = till.unsuspend(int(order))  # a till has the bill: its rows are gone from the database
    ok(await rpc("HandleEventV1", event("evt_1", "pi_1", "Reversed", created_at=datetime.now(UTC).isoformat())))
    sale = till.complete(cart)  # the cart writes the payment back with its old amount
    assert await adapter.sweep_the_till() == 0  # no lock was released; the reversal was applied again
    day = datetime.now(UTC).astimezone(ospos().zone).strftime("%Y-%m-%d")
    assert {kind: amount for kind, _, amount in till.payments_summary(day)} == {"Dojo:pi_1": Decimal(0)}
    changes = till._read("SELECT COUNT(*) FROM EPOS_BRIDGE_CHANGES")[0][0]
    await adapter.sweep_the_till()  # applied already: nothing changes, no POS event follows
    assert till._read("SELECT COUNT(*) FROM EPOS_BRIDGE_CHANGES")[0][0] == changes
    assert ok(await rpc("GetOrderByIdV1", {"orderId": str(CLOSED + sale)}))["paidAmount"]["value"] == 0


async def test_a_new_dojo_line_on_a_row_id_handed_out_again_has_no_note_of_the_old_one(
    till: OsposTill, rpc: Rpc
) -> None:
    noted = order_params("dojo-1")
    noted["items"][0]["note"] = "NO ONIONS - allergy"
    first = ok(await rpc("CreateOrderV1", noted))
    till.check_out(int(first["id"]))
    second = ok(await rpc("CreateOrderV1", order_params("dojo-2")))
    assert "note" not in ok(await rpc("GetOrderByIdV1", {"orderId": second["id"]}))["items"][0]


async def test_reversals_are_applied_again_only_after_the_pos_changed_something(till: OsposTill, rpc: Rpc) -> None:
    """The sweep takes the POS's write lock for a reversal only when the till may have written the
    row back: while a quiet till holds its database, a sweep only reads (it would fail, waiting
    for the lock, if it tried to write)."""
    order = till.add_open_order("T1", 3000, "GBP")
    ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 1000)))
    ok(await rpc("HandleEventV1", event("evt_1", "pi_1", "Reversed", created_at=datetime.now(UTC).isoformat())))
    impatient = PosCalls(SqlMapStorage(MappedDatabase(till.path, ospos(), busy_timeout_s=0.2)))
    holder = sqlite3.connect(till.path, isolation_level=None)
    try:
        await impatient.sweep_the_till()
        await impatient.sweep_the_till()  # the first sweep's own (no-op) write settles the change mark
        holder.execute("BEGIN IMMEDIATE")  # the till holds its database, changing nothing yet
        for _ in range(3):
            await impatient.sweep_the_till()
        holder.execute("UPDATE ospos_sales_suspended SET comment = comment || '.' WHERE sale_id = ?", (int(order),))
        holder.execute("COMMIT")  # the till changed something: the next sweep may write again
        await impatient.sweep_the_till()
    finally:
        holder.close()
        await impatient.close()
