"""Verify's default orders and tables, chosen through the real SQLite adapter over the demo venue:
an order a till has open or another device holds is not the best choice, the POS is asked about
as few orders as it takes, and asking leaves no lock behind (issue 25, item 8)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from epos_bridge.demo_venue import T12_ORDER_ID
from epos_bridge.domain.verification import ParamKind
from epos_bridge.ports import CallContext
from epos_bridge.protocol.entities import Order
from epos_bridge.protocol.params import CreateOrderLockParams, DeleteOrderLockParams, RequestHeaders
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.services.verification import HELD, PROBE_PREFIX, Verification
from tests.helpers.pos import sqlite_pos

TILL_HELD = str(T12_ORDER_ID)  # T12's part-paid order, first choice on a fresh demo
TERMINAL_HELD = str(T12_ORDER_ID + 1)  # T12's other order


class CountingLocks:
    """The adapter's lock calls, counted (what the choice asked of the POS)."""

    def __init__(self, adapter: PosCalls) -> None:
        self.adapter = adapter
        self.asked: list[str] = []

    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order:
        self.asked.append(params.order_id)
        return await self.adapter.create_order_lock(params, ctx)

    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order:
        return await self.adapter.delete_order_lock(params, ctx)


class NoTesterTool:
    def refusal(self) -> str | None:
        return None

    async def list_flows(self) -> list[object]:
        raise AssertionError("not asked here")

    async def start_flow(self, flow: str, params: object) -> str:
        raise AssertionError("not asked here")

    async def flow_result(self, flow_id: str) -> object:
        raise AssertionError("not asked here")


@pytest.fixture
async def adapter(demo_db: Path) -> AsyncIterator[PosCalls]:
    pos = sqlite_pos(demo_db)
    yield pos
    await pos.close()


def lock_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        found = [lock_id for (lock_id,) in conn.execute("SELECT lock_id FROM order_locks")]
    conn.close()
    return found


async def test_a_fresh_demo_asks_about_the_first_order_only(adapter: PosCalls, demo_db: Path) -> None:
    locks = CountingLocks(adapter)
    verification = Verification(NoTesterTool(), adapter, locks=locks)  # type: ignore[arg-type]

    orders = await verification.choices(ParamKind.ORDER)
    tables = await verification.choices(ParamKind.TABLE)

    assert orders[0].value == TILL_HELD and HELD not in orders[0].label
    assert tables[0].value == "T12"
    assert locks.asked == [TILL_HELD, TERMINAL_HELD]  # one order, then the first table's other one
    assert lock_ids(demo_db) == []


async def test_orders_a_till_has_open_or_a_terminal_holds_are_not_chosen(adapter: PosCalls, demo_db: Path) -> None:
    with sqlite3.connect(demo_db) as conn:
        conn.execute("UPDATE orders SET open_at_till = 'TILL-1' WHERE id = ?", (T12_ORDER_ID,))
    conn.close()
    terminal = CreateOrderLockParams(
        headers=RequestHeaders(dojo_requesting_product="PayAtTable", device_id="terminal-7"),
        order_id=TERMINAL_HELD,
        lock_id="lock_terminal_7",
        expiry=datetime.now(UTC) + timedelta(minutes=10),
    )
    await adapter.create_order_lock(terminal, CallContext(trace_id="terminal"))
    locks = CountingLocks(adapter)
    # The adapter is asked directly when no other lock calls are given (the command line).
    verification = Verification(NoTesterTool(), CountingPos(adapter, locks))  # type: ignore[arg-type]

    orders = await verification.choices(ParamKind.ORDER)
    tables = await verification.choices(ParamKind.TABLE)

    assert orders[0].value not in {TILL_HELD, TERMINAL_HELD}
    labels = {choice.value: choice.label for choice in orders}
    assert labels[TILL_HELD].endswith(HELD) and labels[TERMINAL_HELD].endswith(HELD)
    assert tables[0].value != "T12"
    t12 = next(choice for choice in tables if choice.value == "T12")
    assert t12.label.endswith(f"2 to pay, 2 {HELD}")
    assert lock_ids(demo_db) == ["lock_terminal_7"]  # the terminal's lock, untouched; no probe left
    assert not any(lock.startswith(PROBE_PREFIX) for lock in lock_ids(demo_db))
    assert locks.asked[:2] == [TILL_HELD, TERMINAL_HELD] and len(locks.asked) <= 4


class CountingPos:
    """The adapter as the command line passes it (reads and locks), its lock calls counted."""

    def __init__(self, adapter: PosCalls, locks: CountingLocks) -> None:
        self._adapter = adapter
        self._locks = locks
        self.search_orders = adapter.search_orders
        self.search_tables = adapter.search_tables
        self.get_order_bill = adapter.get_order_bill

    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order:
        return await self._locks.create_order_lock(params, ctx)

    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order:
        return await self._locks.delete_order_lock(params, ctx)
