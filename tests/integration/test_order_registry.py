"""The bridge never forgets a payment it recorded, whatever the POS does to the order afterwards:
re-keys it (a bill checked out under a new key, followed through the mapping's ``orders.follow``)
or removes it, and on files written before the bridge kept its record (reference schema v4,
sqlmap tables v1). Real SQLite files, the real dispatcher; the till is plain SQL as the POS writes."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from epos_bridge.adapters.sqlite.schema import MIGRATIONS
from epos_bridge.adapters.sqlmap import bridge, setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, load
from epos_bridge.domain.errors import PosUnavailable
from epos_bridge.testing.contract_suite import STANDARD_VENUE, failed, ok, pay
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

    def check_out(self, order_id: str) -> str:
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
                "UPDATE TICKET SET SETTLED = 1, PAID = 1, DUE_AMOUNT = 0 WHERE ID = :new",
                "INSERT INTO TICKET_MOVES (OLD_ID, NEW_ID) VALUES (:old, :new)",
                "DELETE FROM TICKET WHERE ID = :old",
            ):
                conn.execute(statement, {"old": int(order_id), "new": new_key})
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
