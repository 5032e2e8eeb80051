"""The simulator's scripted product flows, run straight against the dispatcher on the demo venue."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.sim import flows
from tests.helpers.contract import assert_valid_params, assert_valid_response
from tests.helpers.pos import sqlite_pos


@pytest.fixture
async def send(demo_db: Path) -> AsyncIterator[flows.Send]:
    adapter = sqlite_pos(demo_db)
    dispatcher = Dispatcher(adapter)
    counter = iter(range(1, 10_000))

    async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert_valid_params(method, params)
        served = await dispatcher.handle_text(
            json.dumps({"jsonrpc": "2.0", "id": f"f{next(counter)}", "method": method, "params": params})
        )
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response(method, response)
        return response

    yield call
    await adapter.close()


async def test_pay_at_table_settles_the_order_in_parts_and_releases_the_lock(send: flows.Send, demo_db: Path) -> None:
    report = await flows.pay_at_table(send, table_id="T12", rng=random.Random(1), parts=3)
    assert report.ok, report.error
    assert len(report.payments) == 3
    order_id = report.payments[0][0]
    with sqlite3.connect(demo_db) as conn:
        total, paid = conn.execute(
            "SELECT total_amount, (SELECT SUM(paid_amount) FROM payments WHERE order_id = orders.id) FROM orders WHERE id = ?",
            [order_id],
        ).fetchone()
        locks = conn.execute("SELECT COUNT(*) FROM order_locks WHERE order_id = ?", [order_id]).fetchone()[0]
        statuses = {
            row[0] for row in conn.execute("SELECT status FROM payments WHERE payment_intent_id LIKE 'pi_sim_%'")
        }
    assert paid == total
    assert locks == 0
    assert statuses == {"Captured"}
    assert report.steps.count("ExtendOrderLockV1 → ok") == 3


async def test_bookings_seats_updates_and_ends_a_party(send: flows.Send, demo_db: Path) -> None:
    report = await flows.bookings(send, rng=random.Random(2))
    assert report.ok, report.error
    with sqlite3.connect(demo_db) as conn:
        status, end_time, reservation = conn.execute(
            "SELECT status, end_time, reservation_id FROM parties WHERE dojo_party_id LIKE 'dojo_party_%'"
        ).fetchone()
    assert status == "Left"
    assert end_time is not None
    assert reservation is not None


async def test_order_and_pay_creates_an_order_that_pay_at_table_can_settle(send: flows.Send) -> None:
    created = await flows.order_and_pay(send, rng=random.Random(3))
    assert created.ok, created.error
    assert created.steps[-1] == "CreateOrderV1 → ok"


async def test_a_refused_step_ends_the_flow_with_a_clear_report(send: flows.Send) -> None:
    async def refusing(method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "CreateOrderLockV1":
            return {
                "jsonrpc": "2.0",
                "id": "x",
                "method": method,
                "error": {"errorType": "Conflict", "debugMessage": "held"},
            }
        return await send(method, params)

    report = await flows.pay_at_table(refusing, table_id="T12", rng=random.Random(1))
    assert not report.ok
    assert "Conflict" in (report.error or "")
    assert report.payments == []
