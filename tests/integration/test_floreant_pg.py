"""The shipped ``floreant_pg`` mapping (Floreant POS on PostgreSQL) on a real PostgreSQL server,
for what the contract suite (``TestSqlMapFloreantPgContract``) does not look at: the demo venue
written through the mapping's ``[demo]`` statements, served at once (``db init --demo`` itself:
tests/integration/test_sqlmap_server_demo.py), and a
Dojo payment as Floreant's own screens read it (the ticket's TRANSACTIONS, its PAID_AMOUNT,
DUE_AMOUNT and PAID), through a reversal and the rest taken in cash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from epos_bridge.adapters.sqlmap.demo import write_demo
from epos_bridge.adapters.sqlmap.server import ServerSession
from epos_bridge.adapters.sqlmap.setup import AttachError
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.testing.contract_suite import STANDARD_VENUE, event, minutes_from_now, money, pay
from tests.helpers.contract import rpc_over
from tests.helpers.db_servers import postgresql_server, postgresql_url  # noqa: F401 - fixtures, found by name
from tests.helpers.floreant_pg import (
    FloreantPgTill,
    Transaction,
    bridge_attach,
    create_floreant_pg_database,
    floreant_pg,
    floreant_pg_storage,
)

pytestmark = pytest.mark.timeout(120)


def count(url: str, sql: str) -> int:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


async def test_the_demo_venue_written_through_the_mapping_is_served(postgresql_url: str) -> None:  # noqa: F811
    """What ``db init --demo`` does after creating the tables and attaching: the demo venue in one
    transaction (:func:`write_demo`: the ``[demo]`` statements, then each open order through
    ``orders.create``), read back through GetOrderById, SearchOrders and the floor."""
    create_floreant_pg_database(postgresql_url)
    engine = sa.create_engine(postgresql_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            summary = write_demo(ServerSession(conn), floreant_pg(), datetime.now(UTC))
    finally:
        engine.dispose()
    assert summary.open_orders and summary.tables and summary.areas

    pos = PosCalls(floreant_pg_storage(postgresql_url))
    try:
        rpc = rpc_over(pos)
        orders = (await rpc("SearchOrdersV1", {}))["result"]["data"]
        assert len(orders) == summary.open_orders
        assert all(o["totalAmount"]["value"] > 0 and o["items"] for o in orders)
        for order in orders:
            assert (await rpc("GetOrderByIdV1", {"orderId": order["id"]}))["result"] == order
        tables = (await rpc("SearchTablesV1", {}))["result"]["data"]
        areas = (await rpc("ListAreasV1", {}))["result"]
        reservations = (await rpc("SearchReservationsV1", {}))["result"]["data"]
        assert len(tables) == summary.tables and all(t["areaId"] in {a["id"] for a in areas} for t in tables)
        assert len(reservations) == summary.reservations
        bill = (await rpc("GetOrderBillByIdV1", {"orderId": orders[0]["id"]}))["result"]
        assert bill
    finally:
        await pos.close()
    assert count(postgresql_url, "SELECT COUNT(*) FROM TICKET") == summary.open_orders
    # PostgreSQL enforces RESTAURANT's VARCHARs: the demo's footer is cut to fit, not refused.
    assert count(postgresql_url, "SELECT LENGTH(TICKET_FOOTER) FROM RESTAURANT") == 60
    assert count(postgresql_url, "SELECT COUNT(*) FROM EPOS_BRIDGE_CHANGES") == 0  # the demo is no POS event


@pytest.fixture
def till(postgresql_url: str) -> Iterator[FloreantPgTill]:  # noqa: F811 - the fixture
    made = FloreantPgTill(postgresql_url)
    made.seed(STANDARD_VENUE)
    try:
        yield made
    finally:
        made.close()


async def test_a_dojo_payment_shows_on_the_ticket_as_floreants_screens_read_it(
    till: FloreantPgTill,
    postgresql_url: str,  # noqa: F811 - the fixture
) -> None:
    order = till.add_open_order("T1", 10000, "GBP")
    opened = till.ticket(order)
    long_intent = "pi_" + "x" * 77  # longer than CARD_TRANSACTION_ID's VARCHAR(60)
    pos = PosCalls(floreant_pg_storage(postgresql_url))
    try:
        rpc = rpc_over(pos)
        first = (await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 4000, tips=500)))["result"]
        assert (first["paidAmount"], first["tipsAmount"], first["payable"]) == (money(4000), money(500), True)
        # The settle screen and the receipt: a captured CREDIT_CARD transaction, tips as its additional amount.
        assert till.transactions(order) == [Transaction("CREDIT_CARD", 40.0, 45.0, 5.0, "Tips", "Dojo", "pi_1", True)]
        # The open-tickets list: paid and due follow, and the optimistic-lock version moved.
        ticket = till.ticket(order)
        assert (ticket.total, ticket.paid_amount, ticket.due_amount, ticket.paid) == (100.0, 40.0, 60.0, False)
        assert ticket.modified_time > opened.modified_time and not ticket.settled

        rest = (await rpc("RecordOrderPaymentByIdV1", pay(order, long_intent, 6000)))["result"]
        assert (rest["paidAmount"], rest["payable"]) == (money(10000), False)
        assert [p["paymentIntentId"] for p in rest["payments"]] == ["pi_1", long_intent]
        second = till.transactions(order)[1]
        assert (second.transaction_type, second.amount, second.card_transaction_id) == (
            "CREDIT_CARD",
            60.0,
            long_intent[:60],
        )
        ticket = till.ticket(order)
        assert (ticket.paid_amount, ticket.due_amount, ticket.paid) == (100.0, 0.0, True)

        # Dojo reverses the second payment: the ticket's paid and due go back, so staff see it is owed.
        event_at = minutes_from_now(0)
        assert (await rpc("HandleEventV1", event("evt_1", long_intent, "Reversed", created_at=event_at)))[
            "result"
        ] == {}
        ticket = till.ticket(order)
        assert (ticket.paid_amount, ticket.due_amount, ticket.paid) == (40.0, 60.0, False)

        # Staff take the rest in cash at the till; Dojo reads the ticket paid.
        till.settle_in_cash(order, 6000)
        after = (await rpc("GetOrderByIdV1", {"orderId": order}))["result"]
        assert (after["paidAmount"], after["payable"]) == (money(10000), False)
        assert [t.transaction_type for t in till.transactions(order)] == ["CREDIT_CARD", "CREDIT_CARD", "CASH"]
    finally:
        await pos.close()


async def test_a_dojo_lock_is_in_the_lock_view_a_till_reads(
    till: FloreantPgTill,
    postgresql_url: str,  # noqa: F811 - the fixture
) -> None:
    """``db attach`` on a server creates the mapping's ``lock_view`` (DOJO_TICKET_LOCKS) as on a
    file: a till customised to read it sees which ticket a card machine holds, and when it is let go."""
    order = till.add_open_order("T1", 2500, "GBP")
    view = "SELECT LOCK_ID FROM DOJO_TICKET_LOCKS WHERE ORDER_KEY = :o"
    pos = PosCalls(floreant_pg_storage(postgresql_url))
    try:
        rpc = rpc_over(pos)
        lock = {"orderId": order, "lockId": "lock-1", "expiry": minutes_from_now(5)}
        assert "result" in await rpc("CreateOrderLockV1", lock)
        assert till._read(view, {"o": order}) == [("lock-1",)]
        assert "result" in await rpc("DeleteOrderLockV1", {"orderId": order, "lockId": "lock-1"})
        assert till._read(view, {"o": order}) == []
        bridge_attach(postgresql_url)  # attach again: the view is the bridge's own, kept working
        assert "result" in await rpc("CreateOrderLockV1", {**lock, "lockId": "lock-2"})
        assert till._read(view, {"o": order}) == [("lock-2",)]
    finally:
        await pos.close()


def test_attach_never_replaces_a_pos_object_named_like_the_lock_view(postgresql_url: str) -> None:  # noqa: F811
    """A POS that already has a ``DOJO_TICKET_LOCKS`` of its own keeps it: attach refuses, naming it."""
    create_floreant_pg_database(postgresql_url, attach_hook=None)
    with sa.create_engine(postgresql_url, poolclass=NullPool).begin() as conn:
        conn.execute(sa.text("CREATE TABLE DOJO_TICKET_LOCKS (NOTE VARCHAR(20))"))
        conn.execute(sa.text("INSERT INTO DOJO_TICKET_LOCKS VALUES ('the POS''s own')"))
    with pytest.raises(AttachError, match="lock_view DOJO_TICKET_LOCKS: the database already has"):
        bridge_attach(postgresql_url)
    assert count(postgresql_url, "SELECT COUNT(*) FROM DOJO_TICKET_LOCKS WHERE NOTE = 'the POS''s own'") == 1
