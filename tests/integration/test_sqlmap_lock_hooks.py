"""A POS with its own "in use at till N" column shows Dojo's lock there: the mapping's
``locks.held`` / ``locks.released`` run in the transaction that takes, extends or releases it,
an expired lock is released there by the bridge's sweep, and the POS's own mark (a till using the
ticket) is what ``open_at_till`` reads, so Dojo's own lock never bars Dojo."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, Mapping, load
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.services.pos_connection import PosConnection
from epos_bridge.testing.contract_suite import STANDARD_VENUE, failed, lock, minutes_from_now, ok, pay
from tests.helpers.builders import read_only
from tests.helpers.contract import rpc_over
from tests.helpers.floreant import FloreantTill
from tests.helpers.pos import sqlmap_pos
from tests.helpers.waiting import until

LOCKS = """
[locks]
held = "UPDATE TICKET SET IN_USE_BY = 'Dojo ' || COALESCE(:device_id, '') WHERE ID = :order_id"
released = "UPDATE TICKET SET IN_USE_BY = NULL WHERE ID = :order_id AND IN_USE_BY LIKE 'Dojo%'"
"""


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at


def with_locks(tmp_path: Path, held: str | None = None) -> Mapping:
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    anchor = "    AS customer_phone\nFROM TICKET t\n"
    assert text.count(anchor) == 1
    text = text.replace(
        anchor,
        "    AS customer_phone,\n  CASE WHEN t.IN_USE_BY NOT LIKE 'Dojo%' THEN t.IN_USE_BY END AS open_at_till\n"
        "FROM TICKET t\n",
    )
    hooks = LOCKS if held is None else LOCKS.replace(LOCKS.splitlines()[2], f'held = "{held}"')
    (tmp_path / "locks.toml").write_text(text.replace("\n[reservations]\n", f"{hooks}\n[reservations]\n"))
    return load(str(tmp_path / "locks.toml"))


@pytest.fixture
def till(tmp_path: Path) -> FloreantTill:
    till = FloreantTill(tmp_path / "floreant.db")
    till.seed(STANDARD_VENUE)
    with closing(sqlite3.connect(till.path)) as conn, conn:
        conn.execute("ALTER TABLE TICKET ADD COLUMN IN_USE_BY TEXT")  # the POS's own "in use at till N"
    return till


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def order(till: FloreantTill, tmp_path: Path) -> str:
    """An open ticket on a Floreant with an "in use" column, attached for the hooks' mapping."""
    setup.attach(till.path, with_locks(tmp_path))
    return till.add_open_order("T1", 3000, "GBP")


@pytest.fixture
async def adapter(till: FloreantTill, tmp_path: Path, order: str, clock: Clock) -> AsyncIterator[PosCalls]:
    opened = sqlmap_pos(till.path, with_locks(tmp_path), clock)
    try:
        yield opened
    finally:
        await opened.close()


def in_use(till: FloreantTill, order_id: str) -> str | None:
    return read_only(till.path, "SELECT IN_USE_BY FROM TICKET WHERE ID = ?", [int(order_id)])[0][0]


async def test_dojos_lock_shows_on_the_pos_while_held_and_goes_when_released(
    till: FloreantTill, order: str, adapter: PosCalls
) -> None:
    rpc = rpc_over(adapter)
    at_t7 = {**lock(order, "lock-1", minutes_from_now(5)), "headers": {"deviceId": "t7"}}
    ok(await rpc("CreateOrderLockV1", at_t7))
    assert in_use(till, order) == "Dojo t7"
    # Dojo's own mark never bars Dojo: the same lock again, and a payment under it, succeed.
    ok(await rpc("CreateOrderLockV1", {**at_t7, "expiry": minutes_from_now(6)}))
    ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 1000, lock_id="lock-1")))
    ok(await rpc("DeleteOrderLockV1", {"orderId": order, "lockId": "lock-1"}))
    assert in_use(till, order) is None


async def test_a_till_using_the_ticket_is_what_open_at_till_reads(
    till: FloreantTill, order: str, adapter: PosCalls
) -> None:
    till._sql("UPDATE TICKET SET IN_USE_BY = 'till-2' WHERE ID = ?", (int(order),))
    error = failed(await rpc_over(adapter)("CreateOrderLockV1", lock(order, "lock-1", minutes_from_now(5))), "Conflict")
    assert "till-2" in error["debugMessage"]
    assert in_use(till, order) == "till-2"  # the refusal wrote nothing: the till's mark stays


async def test_a_lock_that_expires_is_released_on_the_pos_once_and_a_retake_shows_again(
    till: FloreantTill, tmp_path: Path, order: str, adapter: PosCalls, clock: Clock
) -> None:
    rpc = rpc_over(adapter)
    ok(await rpc("CreateOrderLockV1", lock(order, "lock-1", minutes_from_now(2))))
    assert await adapter.sweep_the_till() == 0  # still held
    assert in_use(till, order) == "Dojo "
    clock.at += timedelta(minutes=3)
    assert await adapter.sweep_the_till() == 1
    assert in_use(till, order) is None
    assert await adapter.sweep_the_till() == 0  # released once, not on every sweep
    clock.at = datetime.now(UTC)
    ok(await rpc("ExtendOrderLockV1", lock(order, "lock-1", minutes_from_now(5))))  # untouched: retaken
    assert in_use(till, order) == "Dojo "
    # A bridge started later releases every lock that expired meanwhile (the hook is idempotent).
    later = sqlmap_pos(till.path, with_locks(tmp_path), clock)
    clock.at += timedelta(minutes=10)
    try:
        assert await later.sweep_the_till() == 1
        assert in_use(till, order) is None
    finally:
        await later.close()


async def test_a_clock_set_back_never_keeps_an_expired_lock_on_the_pos(
    till: FloreantTill, order: str, adapter: PosCalls, clock: Clock
) -> None:
    clock.at += timedelta(hours=1)
    assert await adapter.sweep_the_till() == 0
    clock.at = datetime.now(UTC)  # the PC's clock corrected backwards
    ok(await rpc_over(adapter)("CreateOrderLockV1", lock(order, "lock-1", minutes_from_now(2))))
    clock.at += timedelta(minutes=5)
    assert await adapter.sweep_the_till() == 1
    assert in_use(till, order) is None


async def test_the_pos_connection_sweeps_while_it_is_current(
    till: FloreantTill, order: str, adapter: PosCalls, clock: Clock
) -> None:
    ok(await rpc_over(adapter)("CreateOrderLockV1", lock(order, "lock-1", minutes_from_now(2))))
    clock.at += timedelta(minutes=3)
    connection = PosConnection(adapter)
    connection.start_lock_sweep(every_s=0.01)
    try:
        await until(lambda: in_use(till, order) is None, "the sweep released the expired lock", timeout=30)
    finally:
        await connection.stop_relay()


async def test_a_failing_hook_stores_no_lock(till: FloreantTill, tmp_path: Path) -> None:
    mapping = with_locks(tmp_path, held="UPDATE TICKET SET NO_SUCH = 1 WHERE ID = :order_id")
    with closing(sqlite3.connect(till.path)) as conn, conn:
        conn.execute("ALTER TABLE TICKET ADD COLUMN NO_SUCH INTEGER CHECK (NO_SUCH IS NULL)")
    setup.attach(till.path, mapping)
    order = till.add_open_order("T1", 3000, "GBP")
    adapter = sqlmap_pos(till.path, mapping)
    try:
        failed(
            await rpc_over(adapter)("CreateOrderLockV1", lock(order, "lock-1", minutes_from_now(5))), "UnexpectedError"
        )
    finally:
        await adapter.close()
    assert read_only(till.path, "SELECT COUNT(*) FROM EPOS_BRIDGE_ORDER_LOCKS") == [(0,)]
