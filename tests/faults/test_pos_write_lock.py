"""The POS holds the write lock on its database for 10 s (a till stuck in a long save).

A second OS process (tests/helpers/pos_writer.py ``hold``) takes ``BEGIN IMMEDIATE`` and keeps
it. Writes through the real dispatcher must answer ``UnexpectedError`` once the adapter's 5 s
busy timeout passes, never later than the dispatcher's 10 s deadline; reads keep working (WAL);
and once the POS lets go, the same requests retried with the same ids succeed exactly once.

The POS lets go on the test's cue, never on a timer of its own: only once every answer is in
(and at least 10 s after it took the lock), so the answers came while it still held the lock
by construction, however fast or slow the machine.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlite.connection import DEFAULT_BUSY_TIMEOUT_S
from epos_bridge.services.dispatcher import DEFAULT_DEADLINE_S, Dispatcher
from epos_bridge.services.idempotent_serve import IdempotentServe
from epos_bridge.state.idempotency import IdempotencyStore
from tests.faults.helpers import HEADERS, expiry, venue_with_orders
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos import sqlite_pos
from tests.helpers.pos_writer import PosProcess

pytestmark = pytest.mark.timeout(60)

HOLD_S = 10.0
"""How long the POS holds its lock at least; it lets go only when the test says so."""
HOLD_LIMIT_S = 45.0
"""The POS process's own failure guard: it lets go by itself after this long."""


async def test_a_10_s_pos_write_lock_gives_unexpected_error_in_time_then_service_resumes(tmp_path: Path) -> None:
    db = tmp_path / "venue.db"
    orders = venue_with_orders(db, 6)
    adapter = sqlite_pos(db)
    store = IdempotencyStore(tmp_path / "state.db")
    await store.open()
    serve = IdempotentServe(store, Dispatcher(adapter).handle)

    async def send(method: str, params: dict[str, Any], request_id: str) -> tuple[dict[str, Any], float]:
        began = time.monotonic()
        served = await serve(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        assert served is not None
        response = json.loads(served.response_text)
        assert_valid_response(method, response)
        return response, time.monotonic() - began

    def payment(i: int) -> dict[str, Any]:
        return {"headers": HEADERS, "orderId": orders[i], "paymentIntentId": f"pi_held_{i}",
                "paidAmount": {"value": 500 + i, "currencyCode": "GBP"}}  # fmt: skip

    await send("GetOrderByIdV1", {"headers": HEADERS, "orderId": orders[0]}, "warm")
    pos = await PosProcess.start("hold", str(db), "--order", orders[5], "--max-seconds", str(HOLD_LIMIT_S))
    try:
        await pos.expect("LOCKED")
        held_at = time.monotonic()
        writes = [send("RecordOrderPaymentByIdV1", payment(i), f"pay-{i}") for i in range(3)]
        writes.append(send("CreateOrderLockV1", {"headers": HEADERS, "orderId": orders[3], "lockId": "held-lock",
                                                 "expiry": expiry()}, "lock-3"))  # fmt: skip
        reads = [send("GetOrderByIdV1", {"headers": HEADERS, "orderId": orders[4]}, f"get-{i}") for i in range(2)]
        try:
            # The POS has not been told to let go: a bridge that waited for it would never answer.
            async with asyncio.timeout(HOLD_LIMIT_S - 10):
                answers = await asyncio.gather(*writes, *reads)
        except TimeoutError:
            raise AssertionError("no answer while the POS held its write lock: the bridge waited for the POS") from None
        assert pos.running, "the POS let go by itself before the answers came"
        for response, elapsed in answers[: len(writes)]:
            assert response["error"]["errorType"] == "UnexpectedError", response
            assert "busy" in response["error"]["debugMessage"], response
            assert 4.0 <= elapsed <= DEFAULT_DEADLINE_S + 0.5, elapsed
        for response, _elapsed in answers[len(writes) :]:
            assert "result" in response, response  # WAL: readers are not blocked by a writer
        await asyncio.sleep(max(0.0, HOLD_S - (time.monotonic() - held_at)))  # the till's long save goes on
        await pos.send("release")
        await pos.expect("RELEASED")
        await pos.finish()
    except BaseException:
        await pos.kill()
        raise
    try:
        for i in range(3):  # Dojo retries with the same ids: UnexpectedError was not remembered
            response, elapsed = await send("RecordOrderPaymentByIdV1", payment(i), f"pay-{i}")
            assert "result" in response, response
            assert elapsed < DEFAULT_BUSY_TIMEOUT_S, "the retry waited on a lock: the POS had let go"
        response, _ = await send("CreateOrderLockV1", {"headers": HEADERS, "orderId": orders[3], "lockId": "held-lock",
                                                       "expiry": expiry()}, "lock-3")  # fmt: skip
        assert "result" in response, response
    finally:
        await store.close()
        await adapter.close()
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT payment_intent_id, COUNT(*) FROM payments WHERE payment_intent_id LIKE 'pi_held_%'"
            " GROUP BY payment_intent_id"
        ).fetchall()
    finally:
        conn.close()
    assert sorted(rows) == [(f"pi_held_{i}", 1) for i in range(3)]
