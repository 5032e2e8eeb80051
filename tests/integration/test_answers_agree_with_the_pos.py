"""After every answer, the POS database agrees with it (issue 11, items 1-6).

Real SQLite files and real file databases throughout; the one fake is the adapter in the test
of per-key serialisation, where a real database cannot be made slow on cue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlite_utils

from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.jsonfile.store import JsonFolder
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.domain.errors import PosUnavailable
from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.ports import CallContext, Deadline, PosAdapter
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.entities import Money, Order
from epos_bridge.protocol.params import RecordOrderPaymentParams
from epos_bridge.protocol.times import format_utc
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.idempotent_serve import IdempotentServe
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.state.idempotency import IdempotencyStore
from tests.conftest import Rpc, money
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos import jsonfile_pos, sqlite_pos

API_KEY = "sk_sandbox_fake_answers_key"
SOFTWARE_HOUSE_ID = "sh-answers"


class SteppingClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def later(minutes: float = 10) -> str:
    return format_utc(datetime.now(UTC) + timedelta(minutes=minutes))


async def new_order(rpc: Rpc, total: int = 10_000, dojo_id: str = "dojo-1") -> str:
    created = await rpc(
        "CreateOrderV1",
        {
            "items": [{"name": "Meal", "plu": "M", "quantity": 1, "amountPerItem": money(total)}],
            "totalAmount": money(total),
            "dojoOrderId": dojo_id,
            "payments": [],
            "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}},
        },
    )
    order_id: str = created["result"]["id"]
    return order_id


def payment_params(order_id: str, intent: str, value: int) -> RecordOrderPaymentParams:
    return RecordOrderPaymentParams(
        order_id=order_id, payment_intent_id=intent, paid_amount=Money(value=value, currency_code="GBP")
    )


def rows(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- 1. the transaction owns the deadline --------------------------------------------------------


async def test_a_write_not_started_by_its_deadline_is_refused_and_writes_nothing(
    rpc: Rpc, adapter: PosCalls, pos_db_path: Path
) -> None:
    order = await new_order(rpc)
    clock = SteppingClock()
    due = CallContext(trace_id="t", deadline=Deadline(clock.now, clock))
    with pytest.raises(PosUnavailable, match="nothing was written"):
        await adapter.record_order_payment(payment_params(order, "pi_late", 500), due)
    assert rows(pos_db_path, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert due.events == []


async def test_a_replay_is_still_answered_once_due_because_it_needs_no_write(
    rpc: Rpc, adapter: PosCalls, pos_db_path: Path
) -> None:
    # A retry that queued behind the attempt it repeats may start after its own deadline: it is
    # answered from what that attempt committed, never refused.
    order = await new_order(rpc)
    assert "result" in await rpc("RecordOrderPaymentByIdV1", {"orderId": order, "paymentIntentId": "pi_1",
                                                                "paidAmount": money(500)})  # fmt: skip
    clock = SteppingClock()
    due = CallContext(trace_id="t", deadline=Deadline(clock.now, clock))
    answer = await adapter.record_order_payment(payment_params(order, "pi_1", 500), due)
    assert answer.paid_amount == Money(value=500, currency_code="GBP")
    assert rows(pos_db_path, "SELECT COUNT(*) FROM payments") == [(1,)]


async def test_a_transaction_that_runs_past_its_deadline_rolls_back(pos_db_path: Path) -> None:
    database = PosDatabase(pos_db_path)
    clock = SteppingClock()
    deadline = Deadline(clock.now + 5, clock)

    def slow_work(db: sqlite_utils.Database) -> None:
        db.execute("INSERT INTO waiters (id, name) VALUES ('w-late', 'Late')")
        clock.now += 6  # the work took longer than the answer may

    try:
        with pytest.raises(PosUnavailable, match="rolled back and nothing was written"):
            await database.write(slow_work, deadline)
    finally:
        await database.close()
    assert rows(pos_db_path, "SELECT COUNT(*) FROM waiters WHERE id = 'w-late'") == [(0,)]


async def test_a_file_database_write_past_its_deadline_replaces_no_file(tmp_path: Path) -> None:
    init_folder(tmp_path / "pos", demo=True, now=datetime.now(UTC))
    folder = JsonFolder(tmp_path / "pos")
    clock = SteppingClock()
    deadline = Deadline(clock.now + 5, clock)
    before = (tmp_path / "pos" / "venue.json").read_bytes()

    def slow_work(snap: Any) -> None:
        clock.now += 6
        snap.save("venue.json", {"name": "changed too late"})

    try:
        with pytest.raises(PosUnavailable, match="nothing was written"):
            await folder.write(slow_work, deadline)
    finally:
        await folder.close()
    assert (tmp_path / "pos" / "venue.json").read_bytes() == before


async def test_while_the_pos_holds_the_write_lock_a_replay_is_answered_at_once(rpc: Rpc, pos_db_path: Path) -> None:
    order = await new_order(rpc)
    lock = {"orderId": order, "lockId": "lock-1", "expiry": later()}
    assert "result" in await rpc("CreateOrderLockV1", lock)
    assert "result" in await rpc("RecordOrderPaymentByIdV1", {"orderId": order, "paymentIntentId": "pi_1",
                                                                "paidAmount": money(500), "lockId": "lock-1"})  # fmt: skip
    adapter = sqlite_pos(pos_db_path, busy_timeout_s=30)
    dispatcher = Dispatcher(adapter, deadline_s=0.5)
    pos = sqlite3.connect(pos_db_path, isolation_level=None)
    pos.execute("BEGIN IMMEDIATE")  # the till, mid-save
    try:

        async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
            served = await dispatcher.handle_text(json.dumps({"jsonrpc": "2.0", "id": "x", "method": method,
                                                              "params": {"headers": {}, **params}}))  # fmt: skip
            assert served is not None
            response: dict[str, Any] = json.loads(served.response_text)
            assert_valid_response(method, response)
            return response

        replay = await call("RecordOrderPaymentByIdV1", {"orderId": order, "paymentIntentId": "pi_1",
                                                         "paidAmount": money(500)})  # fmt: skip
        assert replay["result"]["paidAmount"] == money(500)
        assert "result" in await call("CreateOrderLockV1", lock)
        assert "result" in await call("DeleteOrderLockV1", {"orderId": order, "lockId": "someone-else"})
        new = await call("RecordOrderPaymentByIdV1", {"orderId": order, "paymentIntentId": "pi_2",
                                                      "paidAmount": money(500)})  # fmt: skip
        assert new["error"]["errorType"] == "UnexpectedError"
        assert "nothing was written" in new["error"]["debugMessage"]
    finally:
        pos.execute("ROLLBACK")
        pos.close()
        await adapter.close()
    assert rows(pos_db_path, "SELECT payment_intent_id FROM payments") == [("pi_1",)]
    assert rows(pos_db_path, "SELECT lock_id FROM order_locks") == [("lock-1",)]


async def test_a_lock_taken_after_waiting_for_the_pos_is_really_stored(rpc: Rpc, pos_db_path: Path) -> None:
    # Found while building the snapshot attempt: sqlite_utils' upsert probes the database for
    # ON CONFLICT support by writing, and under query_only fell back for good to an upsert that
    # silently stored nothing -- a lock answered "held" that was not.
    order = await new_order(rpc)
    adapter = sqlite_pos(pos_db_path)
    dispatcher = Dispatcher(adapter)
    pos = sqlite3.connect(pos_db_path, isolation_level=None)
    pos.execute("BEGIN IMMEDIATE")
    frame = json.dumps({"jsonrpc": "2.0", "id": "l1", "method": "CreateOrderLockV1",
                        "params": {"headers": {}, "orderId": order, "lockId": "lock-9", "expiry": later()}})  # fmt: skip
    try:
        answer = asyncio.create_task(dispatcher.handle_text(frame))
        await asyncio.sleep(0.2)
        pos.execute("COMMIT")
        served = await answer
    finally:
        pos.close()
        await adapter.close()
    assert served is not None and "result" in json.loads(served.response_text)
    assert rows(pos_db_path, "SELECT lock_id FROM order_locks") == [("lock-9",)]


@dataclass
class OverlapWatchingPos:
    """Counts how many payment calls for the same paymentIntentId run at once (a fake: a real
    database cannot be made slow on cue)."""

    running: dict[str, int] = field(default_factory=dict)
    most_at_once: dict[str, int] = field(default_factory=dict)

    def implemented_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.RECORD_ORDER_PAYMENT_BY_ID})

    async def close(self) -> None:
        return None

    async def record_order_payment(self, params: RecordOrderPaymentParams, ctx: CallContext) -> Order:
        intent = params.payment_intent_id
        self.running[intent] = self.running.get(intent, 0) + 1
        self.most_at_once[intent] = max(self.most_at_once.get(intent, 0), self.running[intent])
        await asyncio.sleep(0.02)
        self.running[intent] -= 1
        return Order.model_validate({"details": {"orderType": "DineIn", "dineIn": {}}, "id": params.order_id})


async def test_retries_of_one_payment_are_served_one_after_another() -> None:
    pos = OverlapWatchingPos()
    dispatcher = Dispatcher(cast(PosAdapter, pos))

    def frame(n: int, intent: str) -> str:
        params = {"headers": {}, "orderId": "1", "paymentIntentId": intent, "paidAmount": money(100)}
        return json.dumps({"jsonrpc": "2.0", "id": n, "method": "RecordOrderPaymentByIdV1", "params": params})

    await asyncio.gather(*(dispatcher.handle_text(frame(n, f"pi_{n % 3}")) for n in range(30)))
    assert pos.most_at_once == {"pi_0": 1, "pi_1": 1, "pi_2": 1}
    assert all(count == 0 for count in pos.running.values())


# --- 2. a reused JSON-RPC id with other params is another request ---------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IdempotencyStore]:
    async with IdempotencyStore(tmp_path / "state.db") as opened:
        yield opened


async def test_a_reused_id_with_other_params_is_served_as_a_new_request(
    rpc: Rpc, dispatcher: Dispatcher, store: IdempotencyStore, pos_db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first_order = await new_order(rpc, dojo_id="d1")
    second_order = await new_order(rpc, dojo_id="d2")
    serve = IdempotentServe(store, dispatcher.handle)

    async def pay(order: str, intent: str) -> dict[str, Any]:
        params = {"headers": {}, "orderId": order, "paymentIntentId": intent, "paidAmount": money(700)}
        served = await serve(json.dumps({"jsonrpc": "2.0", "id": "pay-1", "method": "RecordOrderPaymentByIdV1",
                                         "params": params}))  # fmt: skip
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        return response

    first = await pay(first_order, "pi_A")
    with caplog.at_level(logging.WARNING, logger="epos_bridge.state.idempotency"):
        other = await pay(second_order, "pi_B")
    assert other["result"]["id"] == second_order
    assert other["result"]["paidAmount"] == money(700), "the second payment was recorded, not replayed"
    assert any("different params" in r.getMessage() for r in caplog.records)
    assert await pay(second_order, "pi_B") == other  # now the stored answer for the id is the second
    assert first["result"]["id"] == first_order
    assert sorted(rows(pos_db_path, "SELECT payment_intent_id, order_id FROM payments")) == [
        ("pi_A", int(first_order)),
        ("pi_B", int(second_order)),
    ]


async def test_storing_an_answer_never_makes_it_wait_for_a_stuck_state_database(
    rpc: Rpc, dispatcher: Dispatcher, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    order = await new_order(rpc)
    state = tmp_path / "stuck.db"
    async with IdempotencyStore(state) as stuck_store:
        serve = IdempotentServe(stuck_store, dispatcher.handle, store_wait_s=0.2)
        blocker = sqlite3.connect(state, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another program holding the bridge's own state file
        try:
            params = {"headers": {}, "orderId": order, "paymentIntentId": "pi_s", "paidAmount": money(100)}
            frame = json.dumps({"jsonrpc": "2.0", "id": "s1", "method": "RecordOrderPaymentByIdV1", "params": params})
            with caplog.at_level(logging.WARNING, logger="epos_bridge.state.idempotency"):
                served = await serve(frame)
            assert served is not None and served.ok
            assert blocker.in_transaction, "answered while the state database was still held"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await serve.flush()
        assert await stuck_store.count() == 1, "the answer is stored once the database is free"
    assert any("answering now" in r.getMessage() for r in caplog.records)


# --- 3. dates and times ----------------------------------------------------------------------------


async def test_times_are_stored_in_one_fixed_width_utc_form(rpc: Rpc, pos_db_path: Path) -> None:
    order = await new_order(rpc)
    answer = await rpc("CreateOrderLockV1", {"orderId": order, "lockId": "l1", "expiry": "2099-06-01T10:00:00.5+05:30"})
    assert "result" in answer
    assert rows(pos_db_path, "SELECT expires_at FROM order_locks") == [("2099-06-01T04:30:00.500Z",)]


@pytest.mark.parametrize("stored", ["9-01-01T00:00:00.000Z", "garbage", "", "2026-13-45T99:00:00Z"])
async def test_a_stored_time_that_cannot_be_read_never_bricks_the_order(
    rpc: Rpc, pos_db_path: Path, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    order = await new_order(rpc)
    assert "result" in await rpc("CreateOrderLockV1", {"orderId": order, "lockId": "old", "expiry": later()})
    with sqlite3.connect(pos_db_path) as conn:  # what an older bridge or the POS left behind
        conn.execute("UPDATE order_locks SET expires_at = ?, locked_at = ?", [stored, stored])
        conn.execute("UPDATE orders SET updated_at = ? WHERE id = ?", [stored, order])
    with caplog.at_level(logging.WARNING, logger="epos_bridge.protocol.times"):
        got = await rpc("GetOrderByIdV1", {"orderId": order})
        locked = await rpc("CreateOrderLockV1", {"orderId": order, "lockId": "new", "expiry": later()})
        paid = await rpc("RecordOrderPaymentByIdV1", {"orderId": order, "paymentIntentId": "pi_1",
                                                      "paidAmount": money(10_000), "lockId": "new"})  # fmt: skip
        released = await rpc("DeleteOrderLockV1", {"orderId": order, "lockId": "new"})
    assert ("result" in got and "updatedAt" not in got["result"]) or stored == ""
    assert "result" in locked, "an expiry that cannot be read counts as expired"
    assert paid["result"]["payable"] is False
    assert "result" in released
    if stored:
        assert any("cannot" in r.getMessage() or "not a date-time" in r.getMessage() for r in caplog.records)


async def test_a_file_database_lock_with_an_unreadable_expiry_counts_as_expired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "pos"
    init_folder(folder, demo=True, now=datetime.now(UTC))
    adapter = jsonfile_pos(folder)
    rpc = rpc_over(Dispatcher(adapter))
    path = folder / "orders" / "8.json"
    document = json.loads(path.read_text())
    document["lock"] = {"lockId": "old", "expiresAt": "9-01-01T00:00:00.000Z", "lockedAt": "x", "requester": {}}
    document["updatedAt"] = "not a time"
    path.write_text(json.dumps(document))
    try:
        with caplog.at_level(logging.WARNING, logger="epos_bridge.protocol.times"):
            assert "result" in await rpc("GetOrderByIdV1", {"orderId": "8"})
            assert "result" in await rpc("CreateOrderLockV1", {"orderId": "8", "lockId": "new", "expiry": later()})
            assert "result" in await rpc("DeleteOrderLockV1", {"orderId": "8", "lockId": "new"})
    finally:
        await adapter.close()
    assert caplog.records


def rpc_over(dispatcher: Dispatcher) -> Rpc:
    async def call(method: str, params: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        served = await dispatcher.handle_text(json.dumps({"jsonrpc": "2.0", "id": "q", "method": method,
                                                          "params": {"headers": {}, **(params or {})}}))  # fmt: skip
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response(method, response)
        return response

    return call


# --- 4. any request id, over a real socket ---------------------------------------------------------

ODD_IDS: list[Any] = [
    "\ud800",
    "a\udfffb",
    "\x00\x1f\x7f",
    "x" * 4096,
    "é漢🙂",
    12345,
    -1.5e300,
    0,
    True,
    ["a", 1],
    {"k": "v"},
]


async def test_any_request_id_is_echoed_in_an_encodable_frame_and_the_link_stays_up(
    adapter: PosCalls, rpc: Rpc
) -> None:
    order = await new_order(rpc)
    async with GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=SOFTWARE_HOUSE_ID) as sim:
        settings = GatewaySettings(credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID), ws_url=sim.url, allow_insecure=True, stop_deadline_s=2.0)  # fmt: skip
        session = GatewaySession(settings, Dispatcher(adapter).handle_text)
        task = asyncio.create_task(session.run())
        try:
            await sim.wait_connected()
            for odd in ODD_IDS:
                answer = await sim.request("GetOrderByIdV1", {"headers": {}, "orderId": order}, id=odd)
                assert answer["id"] == odd or json.dumps(answer["id"]) == json.dumps(odd)
                assert answer["result"]["id"] == order
                bad = await sim.request("GetOrderByIdV1", {"headers": {}, "orderId": "\ud800"}, id=odd)
                assert bad["error"]["errorType"] == "InvalidRequest"
            assert sim.connections_opened == 1, "no request id may cost the connection"
            assert all(isinstance(frame, str) and frame.isascii() for frame in sim.received)
        finally:
            await session.stop()
            await task


# --- 6. money input: a differing replay is success and a warning -----------------------------------


async def test_a_replay_with_another_amount_logs_both_amounts(rpc: Rpc, caplog: pytest.LogCaptureFixture) -> None:
    order = await new_order(rpc)
    params = {"orderId": order, "paymentIntentId": "pi_1", "paidAmount": money(4000), "tipsAmount": money(400)}
    first = await rpc("RecordOrderPaymentByIdV1", params)
    with caplog.at_level(logging.WARNING, logger="epos_bridge.adapters.sqlite.adapter"):
        again = await rpc("RecordOrderPaymentByIdV1", {**params, "paidAmount": money(9000)})
    assert again == {**first, "id": again["id"]}
    [warning] = [r.getMessage() for r in caplog.records]
    assert "4000" in warning and "9000" in warning and "pi_1" in warning
