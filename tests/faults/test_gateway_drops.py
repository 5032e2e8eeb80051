"""The gateway drops the connection every few hundred milliseconds while requests keep coming.

Real session, idempotency store, dispatcher and SQLite adapter in process; the simulator
aborts the TCP connection at random intervals of 150-400 ms. Dojo's side retries every
unanswered request with the same id. Every answer must be right and nothing applied twice.
The backoff policy is injected with short delays (the real one would wait 1, 2, 4 … s after
each drop, which is the contract's behaviour but would make this test take minutes).

The load is driven until what the test claims has happened, whatever the machine's speed: the
800 planned requests are all answered *and* the link has dropped at least ``MIN_DROPS`` times
under load with at least one request resent; a fast machine that finishes the plan early keeps
sending more (new payments and reads) until then.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.gateway.policy import BackoffPolicy
from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.idempotent_serve import IdempotentServe
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.state.idempotency import IdempotencyStore
from tests.faults.helpers import HEADERS, call_until_answered, venue_with_orders
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos import sqlite_pos

pytestmark = pytest.mark.timeout(120)

API_KEY = "sk_sandbox_fault_drops"
SHID = "fault-software-house"
PAYMENTS = 400
READS = 400
ORDERS = 40
WORKERS = 24
MIN_DROPS = 10
GIVE_UP_S = 90
"""A failure guard only: the load ends as soon as the plan is done and the drops have happened."""


@pytest.mark.logs_warnings("answers lost to a dropped link are logged")
async def test_answers_stay_right_and_nothing_applies_twice_while_the_link_keeps_dropping(tmp_path: Path) -> None:
    rng = random.Random(7)
    db = tmp_path / "venue.db"
    orders = venue_with_orders(db, ORDERS)
    adapter = sqlite_pos(db)
    store = IdempotencyStore(tmp_path / "state.db")
    await store.open()
    serve = IdempotentServe(store, Dispatcher(adapter).handle)
    gateway = GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=SHID)
    await gateway.start()
    session = GatewaySession(
        GatewaySettings(credentials=DojoCredentials(API_KEY, SHID), ws_url=gateway.url, allow_insecure=True),
        serve,
        policy=BackoffPolicy(initial_s=0.02, max_s=0.1),
    )
    running = asyncio.create_task(session.run())
    drops = 0
    finished = asyncio.Event()
    wrong: list[str] = []
    resends = 0

    async def dropper() -> None:
        nonlocal drops
        while not finished.is_set():
            await asyncio.sleep(rng.uniform(0.15, 0.4))
            if gateway.connected:
                await gateway.drop_connections()
                drops += 1

    paid: dict[str, int] = {}  # paymentIntentId -> amount, for every payment sent

    def pay(i: int) -> tuple[str, dict[str, Any], str]:
        paid[f"pi_drop_{i}"] = 100 + i
        return (
            "RecordOrderPaymentByIdV1",
            {"headers": HEADERS, "orderId": orders[i % ORDERS], "paymentIntentId": f"pi_drop_{i}",
             "paidAmount": {"value": 100 + i, "currencyCode": "GBP"}},
            f"pay-{i}",
        )  # fmt: skip

    def read(i: int) -> tuple[str, dict[str, Any], str]:
        return ("GetOrderByIdV1", {"headers": HEADERS, "orderId": orders[i % ORDERS]}, f"get-{i}")

    plan = [pay(i) for i in range(PAYMENTS)] + [read(i) for i in range(READS)]
    rng.shuffle(plan)

    def jobs() -> Iterator[tuple[str, dict[str, Any], str]]:
        """The plan, then more of the same mix for as long as the drops under load have not happened."""
        yield from plan
        extra = 0
        while drops < MIN_DROPS or resends == 0:
            n = PAYMENTS + extra // 2  # the numbering goes on past the plan's
            yield pay(n) if extra % 2 == 0 else read(READS + extra // 2)
            extra += 1

    queue = jobs()

    async def worker() -> None:
        nonlocal resends
        for method, params, request_id in queue:
            response, sends = await call_until_answered(gateway, method, params, request_id, answer_timeout_s=2)
            resends += sends - 1
            assert_valid_response(method, response)
            if "result" not in response:
                wrong.append(f"{request_id}: {response['error']}")
                continue
            result = response["result"]
            if response["id"] != request_id or result["id"] != params["orderId"]:
                wrong.append(f"{request_id}: answered for {response['id']} / order {result['id']}")
            if method == "RecordOrderPaymentByIdV1":
                mine = [p for p in result["payments"] if p.get("paymentIntentId") == params["paymentIntentId"]]
                if len(mine) != 1 or mine[0]["paidAmount"] != params["paidAmount"]:
                    wrong.append(f"{request_id}: the answer shows {mine}")

    drop_task: asyncio.Task[None] | None = None
    try:
        await gateway.wait_connected(timeout=10)
        drop_task = asyncio.create_task(dropper())
        async with asyncio.timeout(GIVE_UP_S):
            await asyncio.gather(*(worker() for _ in range(WORKERS)))
    finally:
        finished.set()
        if drop_task is not None:
            await drop_task
        await session.stop()
        await running
        await gateway.stop()
        await store.close()
        await adapter.close()

    assert not wrong, wrong[:10]
    assert drops >= MIN_DROPS, f"only {drops} drops happened: the test did not exercise what it claims"
    assert resends > 0
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT payment_intent_id, COUNT(*), SUM(paid_amount) FROM payments"
            " WHERE payment_intent_id LIKE 'pi_drop_%' GROUP BY payment_intent_id"
        ).fetchall()
        (total,) = conn.execute(
            "SELECT SUM(paid_amount) FROM payments WHERE payment_intent_id LIKE 'pi_drop_%'"
        ).fetchone()
    finally:
        conn.close()
    assert len(paid) >= PAYMENTS
    assert all(count == 1 for _, count, _ in rows), [r for r in rows if r[1] != 1][:5]
    assert {intent: amount for intent, _, amount in rows} == paid
    assert total == sum(paid.values())
