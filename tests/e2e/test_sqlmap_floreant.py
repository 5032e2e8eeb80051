"""The mapped-SQL adapter on a Floreant-shaped venue, end to end against the Dojo simulator.

The venue is built by the real CLI (``db init --demo --adapter sqlmap --mapping floreant``); the
bridge runs in process and as ``epos-bridge run --headless`` with ``EPOS_BRIDGE_ADAPTER=sqlmap``
and ``EPOS_BRIDGE_MAPPING=floreant``; a second process edits tickets the way Floreant does while
Dojo's payments arrive.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.sim import flows
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.testing.processes import isolated_env, simulator_env
from tests.e2e.conftest import CliProcess, started
from tests.helpers.builders import read_only
from tests.helpers.child import init_demo_venue

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def floreant_db(tmp_path: Path) -> Path:
    path = tmp_path / "floreant" / "floreant.db"
    path.parent.mkdir()
    return init_demo_venue(path, isolated_env(tmp_path), mapping="floreant")


@pytest.fixture
async def bridge(make_settings: Callable[..., BridgeSettings], floreant_db: Path) -> AsyncIterator[Bridge]:
    running = Bridge(make_settings(adapter="sqlmap", mapping="floreant", db_path=floreant_db))
    try:
        yield running
    finally:
        await running.stop()


def card_transactions(path: Path, intent: str) -> list[tuple[Any, ...]]:
    """Floreant's own record of a Dojo payment: a CREDIT_CARD transaction, joined to the bridge's row."""
    return read_only(
        path,
        "SELECT tr.TICKET_ID, ROUND(tr.AMOUNT * 100), b.STATUS FROM TRANSACTIONS tr "
        "JOIN EPOS_BRIDGE_PAYMENTS b ON b.POS_PAYMENT_ID = tr.ID WHERE b.PAYMENT_INTENT_ID = ?",
        (intent,),
    )


async def test_pay_at_table_settles_a_floreant_ticket_through_the_gateway(
    bridge: Bridge, simulator: DojoSimulator, floreant_db: Path
) -> None:
    await started(bridge, simulator)
    registered = {c["name"] for c in simulator.rest.registered}
    assert {"SearchOrders", "RecordOrderPaymentById", "CreateOrderLock", "ListAreas"} <= registered
    assert {"CreateReservation", "SearchReservations"} <= registered
    assert "CreateParty" not in registered

    report = await flows.pay_at_table(simulator.send, rng=random.Random(5), parts=2)

    assert report.ok, (report.error, report.steps)
    order_id = report.payments[0][0]
    for _, intent, paid, _ in report.payments:
        assert card_transactions(floreant_db, intent) == [(int(order_id), paid, "Captured")]
    ((paid_flag, due, total, paid_amount),) = read_only(
        floreant_db, "SELECT PAID, DUE_AMOUNT, TOTAL_PRICE, PAID_AMOUNT FROM TICKET WHERE ID = ?", (int(order_id),)
    )
    assert (paid_flag, due) == (1, 0)
    assert paid_amount == pytest.approx(total)
    assert read_only(floreant_db, "SELECT COUNT(*) FROM DOJO_TICKET_LOCKS") == [(0,)]


async def test_order_and_pay_creates_a_floreant_ticket_that_pay_at_table_settles(
    bridge: Bridge, simulator: DojoSimulator
) -> None:
    await started(bridge, simulator)
    created = await flows.order_and_pay(simulator.send, rng=random.Random(3))
    assert created.ok, (created.error, created.steps)
    report = await flows.pay_at_table(simulator.send, rng=random.Random(9), parts=1)
    assert report.ok, (report.error, report.steps)


async def test_run_headless_with_sqlmap_serves_the_floreant_venue(
    spawn: Callable[..., CliProcess], simulator: DojoSimulator, floreant_db: Path, api_key: str, tmp_path: Path
) -> None:
    env = simulator_env(tmp_path, simulator, api_key=api_key, db=floreant_db, data_dir=tmp_path / "bridge-data")
    env |= {"EPOS_BRIDGE_ADAPTER": "sqlmap", "EPOS_BRIDGE_MAPPING": "floreant"}
    process = spawn(["run", "--headless"], env, name="run")
    await process.wait_for(lambda: simulator.gateway.connected, 20, "the bridge to connect")
    await simulator.gateway.wait_until(
        lambda: bool(simulator.rest.requests_to("GET", "/epos/integrations")), timeout=10, what="registration"
    )
    tables = await simulator.gateway.request("SearchTablesV1", {"headers": {}}, id="e2e-tables", timeout=10)
    assert [t["id"] for t in tables["result"]["data"]][:3] == ["B1", "B2", "B3"]
    report = await flows.pay_at_table(simulator.send, table_id="T12", rng=random.Random(1), parts=1)
    assert report.ok, (report.error, report.steps)
    code, _ = await process.terminate(timeout=10)
    assert code == 0, process.stderr
    assert "Traceback" not in process.stderr


async def test_floreant_editing_tickets_while_payments_arrive_loses_nothing_and_reaches_dojo(
    bridge: Bridge, simulator: DojoSimulator, floreant_db: Path
) -> None:
    """A second OS process is Floreant: it adds items and takes cash on the same tickets Dojo is
    paying. Afterwards every item and every payment either side committed is there, the ticket's
    totals add up, and its changes reached Dojo as OrderUpdated events."""
    await started(bridge, simulator)
    page = await simulator.send("SearchOrdersV1", {"headers": {}, "payableOnly": True, "cursor": {"limit": 100}})
    orders = [o for o in page["result"]["data"] if o["details"].get("dineIn", {}).get("tableId")][:3]
    assert len(orders) == 3
    events_before = len(simulator.rest.events)
    script = (
        "import sys; from pathlib import Path; from tests.helpers.floreant import FloreantTill\n"
        "till = FloreantTill(Path(sys.argv[1]))\n"
        "for round in range(10):\n"
        "    for order_id in sys.argv[2:]:\n"
        "        till.add_item(order_id, 'Extra chips', 1, 395)\n"
        "        till.settle_in_cash(order_id, 100)\n"
    )
    floreant = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(floreant_db), *[o["id"] for o in orders], cwd=Path.cwd()
    )
    paid: list[tuple[str, str]] = []
    for n in range(10):
        for order in orders:
            intent = f"pi_floreant_{order['id']}_{n}"
            answer = await simulator.send(
                "RecordOrderPaymentByIdV1",
                {
                    "headers": {"dojoRequestingProduct": "PayAtTable", "deviceId": "t1"},
                    "orderId": order["id"],
                    "paymentIntentId": intent,
                    "paidAmount": {"value": 50, "currencyCode": "GBP"},
                },
            )
            assert "result" in answer, answer
            paid.append((order["id"], intent))
    assert await asyncio.wait_for(floreant.wait(), 60) == 0

    for order in orders:
        key = int(order["id"])
        extras = read_only(
            floreant_db, "SELECT COUNT(*) FROM TICKET_ITEM WHERE TICKET_ID = ? AND ITEM_NAME = 'Extra chips'", (key,)
        )
        cash = read_only(
            floreant_db, "SELECT COUNT(*) FROM TRANSACTIONS WHERE TICKET_ID = ? AND TRANSACTION_TYPE = 'CASH'", (key,)
        )
        cards = read_only(
            floreant_db,
            "SELECT COUNT(*) FROM EPOS_BRIDGE_PAYMENTS WHERE ORDER_KEY = ? AND PAYMENT_INTENT_ID LIKE 'pi_floreant_%'",
            (key,),
        )
        assert (extras, cards) == ([(10,)], [(10,)])
        assert cash[0][0] >= 10
        fetched = (await simulator.send("GetOrderByIdV1", {"headers": {}, "orderId": order["id"]}))["result"]
        assert fetched["totalAmount"]["value"] == order["totalAmount"]["value"] + 10 * 395
        ((total, paid_amount, due),) = read_only(
            floreant_db, "SELECT TOTAL_PRICE, PAID_AMOUNT, DUE_AMOUNT FROM TICKET WHERE ID = ?", (key,)
        )
        assert fetched["paidAmount"]["value"] == round(paid_amount * 100)
        assert total == pytest.approx(paid_amount + due)

    wanted = {o["id"] for o in orders}
    await simulator.gateway.wait_until(
        lambda: wanted <= {e["event"].get("orderId") for e in simulator.rest.events[events_before:]},
        timeout=20,
        what="Floreant's edits to reach Dojo as OrderUpdated events",
    )
    assert len({intent for _, intent in paid}) == len(paid) == 30
