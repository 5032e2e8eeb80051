"""Open Source Point of Sale end to end: Dojo pays a bill through the simulator and the gateway,
then the till's own screens are read through the queries OSPOS's code runs (tests/helpers/ospos.py
names them): the bill a till unsuspends, the free tables, the day's payments report.

OSPOS keeps open bills apart from completed sales, and checking a bill out deletes it and writes
the sale under a new key: a replay from Dojo afterwards must still be the success it was, and
the payment must be on the day's report exactly once.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.sim import flows
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.testing.processes import isolated_env
from tests.e2e.conftest import started
from tests.helpers.child import init_demo_venue
from tests.helpers.ospos import CLOSED, OsposTill, ospos

pytestmark = pytest.mark.timeout(90)
HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "term-1"}


@pytest.fixture
def ospos_db(tmp_path: Path) -> Path:
    path = tmp_path / "ospos" / "ospos.db"
    path.parent.mkdir()
    return init_demo_venue(path, isolated_env(tmp_path), mapping="ospos")


@pytest.fixture
async def bridge(make_settings: Callable[..., BridgeSettings], ospos_db: Path) -> AsyncIterator[Bridge]:
    running = Bridge(make_settings(adapter="sqlmap", mapping="ospos", db_path=ospos_db))
    try:
        yield running
    finally:
        await running.stop()


def payment(order_id: str, intent: str, value: int, tips: int = 0) -> dict[str, Any]:
    return {
        "headers": HEADERS,
        "orderId": order_id,
        "paymentIntentId": intent,
        "paidAmount": {"value": value, "currencyCode": "GBP"},
        **({"tipsAmount": {"value": tips, "currencyCode": "GBP"}} if tips else {}),
    }


def today() -> str:
    return datetime.now(UTC).astimezone(ospos().zone).strftime("%Y-%m-%d")


async def test_a_bill_dojo_paid_shows_once_on_the_tills_bill_tables_and_day_report(
    bridge: Bridge, simulator: DojoSimulator, ospos_db: Path
) -> None:
    await started(bridge, simulator)
    registered = {c["name"] for c in simulator.rest.registered}
    assert {"SearchOrders", "RecordOrderPaymentById", "CreateOrderLock", "CreateOrder", "SearchTables"} <= registered
    till = OsposTill(ospos_db)
    table_of = dict(till._read("SELECT sale_id, dinner_table_id FROM ospos_sales_suspended"))

    report = await flows.pay_at_table(simulator.send, rng=random.Random(5), parts=2)

    assert report.ok, (report.error, report.steps)
    order_id = report.payments[0][0]
    bill = till.bill(int(order_id))
    # The bill as a till unsuspends it: each Dojo payment once, by its own row, and nothing due.
    assert bill.payments == {f"Dojo:{intent}": Decimal(paid) / 100 for _, intent, paid, _ in report.payments}
    assert bill.total == sum(bill.payments.values())
    assert (bill.amount_due, bill.complete_shows) == (0, True)
    # The table stays occupied until staff complete the sale, as OSPOS has it.
    assert table_of[int(order_id)] not in till.empty_tables()
    # A further payment has nothing left to take: refused, and the bill is unchanged.
    more = await simulator.send("RecordOrderPaymentByIdV1", payment(order_id, "pi_after_paid", 100))
    assert more["error"]["errorType"] == "Conflict", more
    assert till.bill(int(order_id)) == bill

    # Staff check the bill out: OSPOS deletes it and writes the sale under its own new key.
    sale_id = till.check_out(int(order_id))
    assert table_of[int(order_id)] in till.empty_tables()
    summary = {kind: (count, amount) for kind, count, amount in till.payments_summary(today())}
    for _, intent, paid, _ in report.payments:
        assert summary[f"Dojo:{intent}"] == (1, Decimal(paid) / 100)
    # Dojo's retry of an answer it lost: the success it was, from the sale the bill became.
    _, first_intent, first_paid, first_tip = report.payments[0]
    replay = (await simulator.send("RecordOrderPaymentByIdV1", payment(order_id, first_intent, first_paid, first_tip)))[
        "result"
    ]
    total = sum(paid for _, _, paid, _ in report.payments)
    assert (replay["id"], replay["status"], replay["paidAmount"]["value"]) == (order_id, "Finalized", total)
    fetched = (await simulator.send("GetOrderByIdV1", {"headers": HEADERS, "orderId": order_id}))["result"]
    assert (fetched["status"], fetched["payable"]) == ("Finalized", False)
    closed = await simulator.send("GetOrderByIdV1", {"headers": HEADERS, "orderId": str(CLOSED + sale_id)})
    assert closed["result"]["paidAmount"]["value"] == total
    # Nothing was counted twice anywhere the till looks.
    assert till._read("SELECT COUNT(*) FROM ospos_sales_suspended_payments") == [(0,)]
    assert sum(count for kind, count, _ in till.payments_summary(today()) if kind.startswith("Dojo:")) == len(
        report.payments
    )


async def test_a_reversed_dojo_payment_stops_counting_on_the_tills_bill_and_day_report(
    bridge: Bridge, simulator: DojoSimulator, ospos_db: Path
) -> None:
    await started(bridge, simulator)
    till = OsposTill(ospos_db)
    page = await simulator.send("SearchOrdersV1", {"headers": HEADERS, "payableOnly": True})
    order = page["result"]["data"][0]
    owed = order["totalAmount"]["value"]
    assert "result" in await simulator.send("RecordOrderPaymentByIdV1", payment(order["id"], "pi_kept", owed // 2))
    assert "result" in await simulator.send("RecordOrderPaymentByIdV1", payment(order["id"], "pi_reversed", 100))
    event = {
        "id": "evt_rev",
        "accountId": "acc_test",
        "event": "payment_intent.status_updated",
        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"paymentIntentId": "pi_reversed", "paymentStatus": "Reversed", "captureMode": "Auto"},
    }
    assert (await simulator.send("HandleEventV1", event))["result"] == {}
    bill = till.bill(int(order["id"]))
    assert bill.payments == {"Dojo:pi_kept": Decimal(owed // 2) / 100, "Dojo:pi_reversed": Decimal(0)}
    assert bill.amount_due == bill.total - Decimal(owed // 2) / 100
    fetched = (await simulator.send("GetOrderByIdV1", {"headers": HEADERS, "orderId": order["id"]}))["result"]
    assert fetched["paidAmount"]["value"] == owed // 2
    # After the checkout the reversal still holds on the day's report, and one that arrives later
    # reaches the completed sale too.
    till.check_out(int(order["id"]))
    later = {**event, "id": "evt_rev_2", "data": {**event["data"], "paymentIntentId": "pi_kept"}}
    assert (await simulator.send("HandleEventV1", later))["result"] == {}
    summary = {kind: amount for kind, _, amount in till.payments_summary(today())}
    assert (summary["Dojo:pi_kept"], summary["Dojo:pi_reversed"]) == (0, 0)


async def test_order_and_pay_creates_an_ospos_bill_the_till_lists_and_dojo_settles(
    bridge: Bridge, simulator: DojoSimulator, ospos_db: Path
) -> None:
    await started(bridge, simulator)
    till = OsposTill(ospos_db)
    tables = (await simulator.send("SearchTablesV1", {"headers": HEADERS}))["result"]["data"]
    free = set(till.empty_tables().values())
    table = next(t for t in tables if t["name"] in free)
    order = {
        "headers": {"dojoRequestingProduct": "OrderAndPay", "deviceId": "phone-1"},
        "items": [
            {"name": "Copper Kettle burger", "plu": "BRG-CK", "quantity": 2, "amountPerItem": {"value": 1450, "currencyCode": "GBP"}},
            {"name": "Cola", "plu": "SFT-COL", "quantity": 1, "amountPerItem": {"value": 325, "currencyCode": "GBP"}},
        ],
        "totalAmount": {"value": 3225, "currencyCode": "GBP"},
        "dojoOrderId": "dojo_order_ospos_1",
        "payments": [],
        "details": {"orderType": "DineIn", "dineIn": {"tableId": table["id"]}},
        "displayName": f"{table['name']} (phone order)",
    }  # fmt: skip
    created = (await simulator.send("CreateOrderV1", order))["result"]
    listed = dict(till.suspended_list())
    assert listed[int(created["id"])] == f"Dojo: {table['name']} (phone order)"
    assert till.bill(int(created["id"])).total == Decimal("32.25")
    assert table["name"] not in till.empty_tables().values()
    # OSPOS has no modifiers: an order carrying one is refused by name, and nothing is stored.
    with_modifier = {**order, "dojoOrderId": "dojo_order_ospos_2"}
    with_modifier["items"] = [
        {**order["items"][0], "modifiers": [{"name": "Extra cheese", "plu": "MOD-CHS", "quantity": 1,
                                             "amountPerModifier": {"value": 150, "currencyCode": "GBP"}}]},
    ]  # fmt: skip
    refused = await simulator.send("CreateOrderV1", with_modifier)
    assert "modifiers" in refused["error"]["debugMessage"]
    assert dict(till.suspended_list()).keys() == listed.keys()

    report = await flows.pay_at_table(simulator.send, table_id=table["id"], rng=random.Random(2), parts=1)
    assert report.ok, (report.error, report.steps)
    assert report.payments[0][0] == created["id"], report.payments
    assert till.bill(int(created["id"])).complete_shows


async def test_staff_taking_the_rest_in_cash_re_keys_the_bill_and_dojo_follows_it(
    bridge: Bridge, simulator: DojoSimulator, ospos_db: Path
) -> None:
    """OSPOS adds a payment by unsuspending the bill and suspending it again under a new sale_id:
    Dojo's order id still reads the bill, with both payments, and Dojo's retry is the success it was."""
    await started(bridge, simulator)
    till = OsposTill(ospos_db)
    page = await simulator.send("SearchOrdersV1", {"headers": HEADERS, "payableOnly": True})
    order = next(o for o in page["result"]["data"] if o["details"].get("dineIn", {}).get("tableId"))
    owed = order["totalAmount"]["value"]
    first = (await simulator.send("RecordOrderPaymentByIdV1", payment(order["id"], "pi_part", 1000)))["result"]
    new_bill = till.take_payment(int(order["id"]), "Cash", owed - 1000)
    assert new_bill != int(order["id"])
    assert till.bill(new_bill).payments == {"Dojo:pi_part": Decimal(10), "Cash": Decimal(owed - 1000) / 100}
    assert till.bill(new_bill).complete_shows
    fetched = (await simulator.send("GetOrderByIdV1", {"headers": HEADERS, "orderId": order["id"]}))["result"]
    assert (fetched["paidAmount"]["value"], fetched["payable"]) == (owed, False)
    assert [p.get("paymentIntentId") for p in fetched["payments"]] == ["pi_part", None]
    replay = (await simulator.send("RecordOrderPaymentByIdV1", payment(order["id"], "pi_part", 1000)))["result"]
    assert replay["paidAmount"]["value"] == owed and first["paidAmount"]["value"] == 1000
    more = await simulator.send("RecordOrderPaymentByIdV1", payment(order["id"], "pi_more", 100))
    assert more["error"]["errorType"] == "Conflict", more
    assert till.bill(new_bill).payments.keys() == {"Dojo:pi_part", "Cash"}
