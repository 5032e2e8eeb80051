"""The bridge never forgets a payment it recorded, whatever the POS does to the order afterwards:
re-keys it (a bill checked out under a new key, followed through the mapping's ``orders.follow``)
or removes it, and on files written before the bridge kept its record (reference schema v4,
sqlmap tables v1). Real SQLite files, the real dispatcher; the till is plain SQL as the POS writes."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from epos_bridge.adapters.sqlite.schema import MIGRATIONS
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.adapters.sqlmap import bridge, setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, load
from epos_bridge.domain.errors import PosUnavailable
from epos_bridge.testing.contract_suite import STANDARD_VENUE, failed, lock, minutes_from_now, ok, pay
from tests.helpers.builders import read_only
from tests.helpers.contract import Rpc, rpc_over
from tests.helpers.floreant import FloreantTill, floreant
from tests.helpers.pos import sqlite_pos, sqlmap_pos

FOLLOW = '''
follow = """
SELECT NEW_ID AS id FROM TICKET_MOVES WHERE OLD_ID = :order_key
"""
'''


def sql(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    with closing(sqlite3.connect(path, timeout=5)) as conn, conn:
        conn.execute("PRAGMA foreign_keys = ON")
        for statement, args in statements:
            conn.execute(statement, args)


class CheckingOutTill(FloreantTill):
    """A Floreant whose checkout copies the open ticket to a new key and deletes the open one,
    noting the move where the installer's ``orders.follow`` reads it (a POS that keeps open bills
    and closed orders apart)."""

    def check_out(self, order_id: str, *, settle: bool = True) -> str:
        with closing(sqlite3.connect(self.path, timeout=5)) as conn, conn:
            columns = [str(r[1]) for r in conn.execute("SELECT * FROM pragma_table_info('TICKET')") if r[1] != "ID"]
            listed = ", ".join(columns)
            new_key = conn.execute(
                f"INSERT INTO TICKET ({listed}) SELECT {listed} FROM TICKET WHERE ID = ?",
                [order_id],
            ).lastrowid
            for statement in (
                "UPDATE TRANSACTIONS SET TICKET_ID = :new WHERE TICKET_ID = :old",
                "UPDATE TICKET_ITEM SET TICKET_ID = :new WHERE TICKET_ID = :old",
                "UPDATE TICKET SET SETTLED = 1, PAID = 1, DUE_AMOUNT = 0 WHERE ID = :new AND :settle",
                "INSERT INTO TICKET_MOVES (OLD_ID, NEW_ID) VALUES (:old, :new)",
                "DELETE FROM TICKET WHERE ID = :old",
            ):
                conn.execute(statement, {"old": int(order_id), "new": new_key, "settle": int(settle)})
        return str(new_key)


@pytest_asyncio.fixture
async def moving_floreant(tmp_path: Path) -> AsyncIterator[tuple[CheckingOutTill, Rpc]]:
    path = tmp_path / "floreant.db"
    till = CheckingOutTill(path)
    till.seed(STANDARD_VENUE)
    sql(path, ("CREATE TABLE TICKET_MOVES (OLD_ID INTEGER PRIMARY KEY, NEW_ID INTEGER NOT NULL)", ()))
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8").replace("\n[orders]\n", f"\n[orders]\n{FOLLOW}", 1)
    mapping_file = tmp_path / "floreant-moves.toml"
    mapping_file.write_text(text, encoding="utf-8")
    mapping = load(str(mapping_file))
    assert mapping.has("orders.follow")
    setup.attach(path, mapping)
    adapter = sqlmap_pos(path, mapping)
    yield till, rpc_over(adapter)
    await adapter.close()


async def test_a_bill_checked_out_under_a_new_key_is_followed_and_a_replay_still_succeeds(
    moving_floreant: tuple[CheckingOutTill, Rpc],
) -> None:
    till, rpc = moving_floreant
    order = till.add_open_order("T1", 10000, "GBP")
    first = ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 10000)))
    assert first["payable"] is False
    closed = till.check_out(order)
    assert closed != order

    replay = ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 10000)))
    assert (replay["id"], replay["status"], replay["paidAmount"]["value"]) == (order, "Finalized", 10000)
    assert [p["paymentIntentId"] for p in replay["payments"]] == ["pi_1"]  # shown once, never twice
    now = ok(await rpc("GetOrderByIdV1", {"orderId": order}))
    assert {**now, "id": closed} == ok(await rpc("GetOrderByIdV1", {"orderId": closed}))
    # The closed order takes no further payment: Conflict, and Dojo reverses it.
    failed(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_2", 100)), "Conflict")


async def test_an_order_the_pos_removed_without_a_move_answers_from_the_record(
    moving_floreant: tuple[CheckingOutTill, Rpc],
) -> None:
    till, rpc = moving_floreant
    order = till.add_open_order("T1", 10000, "GBP")
    first = ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 6000)))
    till.remove_order(order)
    assert ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 6000))) == {**first, "payable": False}


async def test_a_reference_file_paid_before_the_record_existed_still_answers_a_replay(tmp_path: Path) -> None:
    """Schema v4 kept Dojo's payments only in the POS's payments table, which cascades away with
    its order; migration 5 copies them into the bridge's ledger and registry."""
    path = tmp_path / "pos.db"
    with closing(sqlite3.connect(path)) as conn:
        for version in range(4):
            conn.executescript(f"BEGIN;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;")
    stamp = "2026-12-07T10:00:00.000Z"
    sql(
        path,
        (
            "INSERT INTO orders (id, status, total_amount, currency_code, created_at, updated_at)"
            " VALUES (7, 'New', 5000, 'GBP', ?, ?)",
            (stamp, stamp),
        ),
        (
            "INSERT INTO payments (order_id, payment_intent_id, paid_amount, status, recorded_at)"
            " VALUES (7, 'pi_old', 5000, 'Recorded', ?)",
            (stamp,),
        ),
    )
    adapter = sqlite_pos(path)
    try:
        rpc = rpc_over(adapter)
        ok(await rpc("GetOrderByIdV1", {"orderId": "7"}))  # opened: migrated to v5
        sql(path, ("DELETE FROM orders WHERE id = 7", ()))
        replay = ok(await rpc("RecordOrderPaymentByIdV1", pay("7", "pi_old", 5000)))
        assert (replay["id"], replay["payable"]) == ("7", False)
        # Dojo paid it, so a read is never NotFound; nor a lock: Conflict, the order is closed.
        assert ok(await rpc("GetOrderByIdV1", {"orderId": "7"}))["payable"] is False
        failed(await rpc("CreateOrderLockV1", lock("7", "lock-1", minutes_from_now(5))), "Conflict")
        failed(await rpc("RecordOrderPaymentByIdV1", pay("7", "pi_new", 100)), "Conflict")
    finally:
        await adapter.close()


async def test_a_sqlmap_file_attached_by_an_older_bridge_is_refused_until_attached_again(tmp_path: Path) -> None:
    path = tmp_path / "floreant.db"
    till = FloreantTill(path)
    till.seed(STANDARD_VENUE)
    order = till.add_open_order("T1", 10000, "GBP")
    adapter = sqlmap_pos(path, floreant())
    try:
        ok(await rpc_over(adapter)("RecordOrderPaymentByIdV1", pay(order, "pi_1", 4000)))
    finally:
        await adapter.close()
    # As tables v1 left it: no registry.
    sql(
        path,
        ("DROP TABLE EPOS_BRIDGE_ORDERS", ()),
        ("DELETE FROM EPOS_BRIDGE_META WHERE KEY = 'created table EPOS_BRIDGE_ORDERS'", ()),
        ("UPDATE EPOS_BRIDGE_META SET VALUE = '1' WHERE KEY = 'version'", ()),
    )
    old = sqlmap_pos(path, floreant())
    try:
        with pytest.raises(PosUnavailable, match=r"attached by an older bridge.*db attach .* again"):
            await old.check_writable()
    finally:
        await old.close()

    setup.attach(path, floreant())
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT VALUE FROM EPOS_BRIDGE_META WHERE KEY = 'version'").fetchone() == (
            str(bridge.VERSION),
        )
        assert conn.execute("SELECT ORDER_ID, ANSWER FROM EPOS_BRIDGE_ORDERS").fetchall() == [(order, None)]
    till.remove_order(order)
    adapter = sqlmap_pos(path, floreant())
    try:
        replay = ok(await rpc_over(adapter)("RecordOrderPaymentByIdV1", pay(order, "pi_1", 4000)))
        assert (replay["id"], replay["status"], replay["payable"]) == (order, "Finalized", False)
    finally:
        await adapter.close()


async def test_an_open_bill_moved_to_a_new_key_keeps_taking_payments_under_dojos_id(
    moving_floreant: tuple[CheckingOutTill, Rpc],
) -> None:
    """The registry follows the bill to its new key; the next calls find it there, not gone."""
    till, rpc = moving_floreant
    order = till.add_open_order("T1", 10000, "GBP")
    ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 2000)))
    till.check_out(order, settle=False)  # moved, still open
    assert ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_2", 3000)))["paidAmount"]["value"] == 5000
    third = ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_3", 1000)))
    assert (third["id"], third["paidAmount"]["value"], third["payable"]) == (order, 6000, True)
    assert ok(await rpc("GetOrderByIdV1", {"orderId": order}))["paidAmount"]["value"] == 6000


async def test_the_ledger_follows_a_dojo_payment_the_reference_pos_moves_to_another_order(tmp_path: Path) -> None:
    """The till re-keys a bill: a new order, the payment row moved onto it (or inserted again
    there after the old order cascaded away), the old order deleted. Nothing the POS does fails
    on the bridge's trigger, and the recorded intent is still one replay."""
    path = tmp_path / "pos.db"
    init_database(path, demo=False, now=datetime.now(UTC))
    stamp = "2026-12-07T10:00:00.000Z"
    sql(path, ("INSERT INTO orders (id, total_amount, created_at, updated_at) VALUES (7, 5000, ?, ?)", (stamp, stamp)))
    adapter = sqlite_pos(path)
    try:
        rpc = rpc_over(adapter)
        ok(await rpc("RecordOrderPaymentByIdV1", pay("7", "pi_1", 2000)))
        ok(await rpc("RecordOrderPaymentByIdV1", pay("7", "pi_2", 1000)))
        sql(
            path,
            ("INSERT INTO orders (id, total_amount, created_at, updated_at) VALUES (8, 5000, ?, ?)", (stamp, stamp)),
            ("UPDATE payments SET order_id = 8 WHERE payment_intent_id = 'pi_1'", ()),
        )
        sql(
            path,
            ("DELETE FROM orders WHERE id = 7", ()),  # pi_2's row cascades away with it
            (
                "INSERT INTO payments (order_id, payment_intent_id, paid_amount, status, recorded_at)"
                " VALUES (8, 'pi_2', 1000, 'Recorded', ?)",
                (stamp,),
            ),
        )
        assert read_only(path, "SELECT payment_intent_id, order_key FROM dojo_payments ORDER BY 1") == [
            ("pi_1", 8),
            ("pi_2", 8),
        ]
        assert ok(await rpc("GetOrderByIdV1", {"orderId": "8"}))["paidAmount"]["value"] == 3000
        assert ok(await rpc("RecordOrderPaymentByIdV1", pay("8", "pi_2", 1000)))["paidAmount"]["value"] == 3000
        assert ok(await rpc("RecordOrderPaymentByIdV1", pay("7", "pi_1", 2000)))["id"] == "7"  # Dojo's old id
    finally:
        await adapter.close()
