"""The POS holds the write lock on its database for 10 s (a till stuck in a long save).

A second OS process (tests/helpers/pos_writer.py ``hold``) takes ``BEGIN IMMEDIATE`` and keeps
it. Writes through the real dispatcher must answer ``UnexpectedError`` once the adapter's 5 s
busy timeout passes, never later than the dispatcher's 10 s deadline; reads keep working (WAL);
and once the POS lets go, the same requests retried with the same ids succeed exactly once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlite.adapter import SqlitePosAdapter
from epos_bridge.services.dispatcher import DEFAULT_DEADLINE_S, Dispatcher
from epos_bridge.state.idempotency import IdempotencyStore, IdempotentServe
from tests.faults.helpers import HEADERS, expiry, venue_with_orders
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos_writer import PosProcess

pytestmark = pytest.mark.timeout(60)

HOLD_S = 10.0


async def test_a_10_s_pos_write_lock_gives_unexpected_error_in_time_then_service_resumes(tmp_path: Path) -> None:
    db = tmp_path / "venue.db"
    orders = venue_with_orders(db, 6)
    adapter = SqlitePosAdapter.open(db)
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
    pos = await PosProcess.start("hold", str(db), "--order", orders[5], "--max-seconds", str(HOLD_S))
    try:
        await pos.expect("LOCKED")
        held_at = time.monotonic()
        writes = [send("RecordOrderPaymentByIdV1", payment(i), f"pay-{i}") for i in range(3)]
        writes.append(send("CreateOrderLockV1", {"headers": HEADERS, "orderId": orders[3], "lockId": "held-lock",
                                                 "expiry": expiry()}, "lock-3"))  # fmt: skip
        reads = [send("GetOrderByIdV1", {"headers": HEADERS, "orderId": orders[4]}, f"get-{i}") for i in range(2)]
        answers = await asyncio.gather(*writes, *reads)
        for response, elapsed in answers[: len(writes)]:
            assert response["error"]["errorType"] == "UnexpectedError", response
            assert "busy" in response["error"]["debugMessage"], response
            assert 4.0 <= elapsed <= DEFAULT_DEADLINE_S + 0.5, elapsed
        for response, _elapsed in answers[len(writes) :]:
            assert "result" in response, response  # WAL: readers are not blocked by a writer
        assert time.monotonic() - held_at < HOLD_S, "the first answers came only after the POS let go"
        await pos.expect("RELEASED", timeout_s=HOLD_S + 5)
        await pos.finish()
    except BaseException:
        await pos.kill()
        raise
    try:
        for i in range(3):  # Dojo retries with the same ids: UnexpectedError was not remembered
            response, elapsed = await send("RecordOrderPaymentByIdV1", payment(i), f"pay-{i}")
            assert "result" in response, response
            assert elapsed < 2.0
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
