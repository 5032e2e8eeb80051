"""The bridge and the venue's POS writing one SQLite file at the same time.

The POS is a real second OS process (``tests/helpers/pos_writer.py``) making short
``BEGIN IMMEDIATE`` edits under its own busy timeout, as a till does; it prints a journal line
after every ``COMMIT`` that returned. The bridge side goes through the real dispatcher, so
every answer is checked against the contract. What must hold afterwards: nothing either side
was told is committed has been lost, a replayed ``paymentIntentId`` is stored once, an error
answer stored nothing, and the file is intact.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlite.connection import DEFAULT_BUSY_TIMEOUT_S
from epos_bridge.protocol.base import format_utc
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import PosCalls
from tests.conftest import Rpc, money
from tests.helpers.builders import read_only
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos import sqlite_pos
from tests.helpers.pos_writer import PosProcess, csv
from tests.helpers.sqlite_trace import trace_bridge_statements

ORDER_ITEMS = (("Set menu", 997_600), ("Burger", 2_000), ("Cola", 400))
ORDER_TOTAL = sum(price for _, price in ORDER_ITEMS)
CARD_ORDERS = 20
CASH_ORDERS = 5
NEW_INTENTS_PER_ORDER = 6
REPLAYS_PER_ORDER = 3  # of the order's first intent, sent concurrently with it
OVERPAYMENT = 50_000_000  # more than any order can owe: must be Conflict and store nothing
LOCK_ROUNDS = 2
CHUNKS = 4
"""The payments go in this many bursts (by order, so each intent's replays stay in its burst); the
next burst starts only once the POS has committed after the last one. Left alone, the bridge's
burst can keep the POS waiting on its write lock throughout, and the POS edits nothing meanwhile."""
POS_LIMIT_S = "90"
"""The POS processes stop when the test tells them; this is only their own failure guard."""


def seed_orders(path: Path, count: int) -> list[int]:
    """Orders as the POS would have rung them up; the file is in WAL mode, as a POS sharing it runs it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        at = format_utc(datetime.now(UTC))
        keys: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        for n in range(count):
            key = conn.execute(
                "INSERT INTO orders (reference, table_id, currency_code, total_amount, created_at, updated_at) "
                "VALUES (?, 'T1', 'GBP', ?, ?, ?)",
                [f"POS-{n:03d}", ORDER_TOTAL, at, at],
            ).lastrowid
            assert key is not None
            conn.executemany(
                "INSERT INTO order_items (order_id, position, name, plu, quantity, amount_per_item) "
                "VALUES (?, ?, ?, ?, 1, ?)",
                [(key, i, name, f"P{i}", price) for i, (name, price) in enumerate(ORDER_ITEMS)],
            )
            keys.append(key)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return keys


@dataclass(frozen=True)
class PaymentCall:
    order: int
    intent: str
    amount: int

    def params(self) -> dict[str, Any]:
        return {
            "orderId": str(self.order),
            "paymentIntentId": self.intent,
            "paidAmount": money(self.amount),
            "headers": {"dojoRequestingProduct": "PayAtTable", "deviceId": f"terminal-{self.order % 3}"},
        }

    def frame(self, request_id: str) -> str:
        """The whole RecordOrderPaymentById request as Dojo sends it."""
        return json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": "RecordOrderPaymentByIdV1", "params": self.params()}
        )


async def pos_holding_its_write_lock(path: Path, order: int) -> PosProcess:
    """A POS process that holds its write transaction on ``order`` until told ``release``."""
    pos = await PosProcess.start("hold", str(path), "--order", str(order), "--max-seconds", POS_LIMIT_S)
    try:
        await pos.expect("LOCKED")
    except BaseException:
        await pos.kill()
        raise
    return pos


def payment_plan(orders: list[int]) -> list[PaymentCall]:
    calls: list[PaymentCall] = []
    for order in orders:
        new = [PaymentCall(order, f"pi_{order}_{k}", 1_000 + 10 * k + order) for k in range(NEW_INTENTS_PER_ORDER)]
        calls += new
        calls += [new[0]] * REPLAYS_PER_ORDER
        calls.append(PaymentCall(order, f"pi_{order}_over", OVERPAYMENT))
    random.Random(1).shuffle(calls)
    return calls


def later(seconds: float) -> str:
    return format_utc(datetime.now(UTC) + timedelta(seconds=seconds))


async def lock_rounds(rpc: Rpc, order: int) -> list[tuple[str, dict[str, Any]]]:
    """Create, extend and release a lock, twice, as a terminal does around a payment."""
    answers = []
    for round_ in range(LOCK_ROUNDS):
        lock = {"orderId": str(order), "lockId": f"lock-{order}-{round_}"}
        answers.append(("CreateOrderLockV1", await rpc("CreateOrderLockV1", {**lock, "expiry": later(300)})))
        answers.append(("ExtendOrderLockV1", await rpc("ExtendOrderLockV1", {**lock, "expiry": later(600)})))
        answers.append(("DeleteOrderLockV1", await rpc("DeleteOrderLockV1", lock)))
    return answers


@pytest.mark.slow
async def test_payments_and_locks_stay_correct_while_the_pos_process_keeps_editing(rpc: Rpc, pos_db_path: Path) -> None:
    card_orders = seed_orders(pos_db_path, CARD_ORDERS)
    cash_orders = seed_orders(pos_db_path, CASH_ORDERS)
    pos = await PosProcess.start(
        "churn",
        str(pos_db_path),
        "--edit-orders",
        csv(card_orders),
        "--cash-orders",
        csv(cash_orders),
        # It keeps editing until the test says stop, however long the bridge's side takes.
        "--max-edits",
        "1000000",
        "--max-seconds",
        POS_LIMIT_S,
        "--busy-timeout-ms",
        "5000",
    )
    try:
        plan = payment_plan(card_orders)
        latencies: list[float] = []

        async def pay(call: PaymentCall) -> tuple[PaymentCall, dict[str, Any]]:
            started = time.perf_counter()
            response = await rpc("RecordOrderPaymentByIdV1", call.params())
            latencies.append(time.perf_counter() - started)
            return call, response

        async def pos_commits_after(moment: str) -> None:
            while not any(entry["at"] > moment for entry in pos.journal):
                await pos.wait_for_edits(len(pos.journal) + 1)

        async def in_bursts() -> list[tuple[PaymentCall, dict[str, Any]]]:
            answered: list[tuple[PaymentCall, dict[str, Any]]] = []
            per_burst = len(card_orders) // CHUNKS
            for burst in range(CHUNKS):
                orders = set(card_orders[burst * per_burst : (burst + 1) * per_burst])
                answered += await asyncio.gather(*(pay(call) for call in plan if call.order in orders))
                if burst < CHUNKS - 1:
                    await pos_commits_after(format_utc(datetime.now(UTC)))  # the POS edits between two bursts
            return answered

        await pos.wait_for_edits(20)  # the POS is well into its edits before Dojo starts asking
        started = time.perf_counter()
        async with asyncio.timeout(60):
            paid, locked = await asyncio.gather(
                in_bursts(), asyncio.gather(*(lock_rounds(rpc, order) for order in card_orders))
            )
        elapsed = time.perf_counter() - started
        pos_still_running = pos.running
        await pos.finish()
    finally:
        await pos.kill()

    # The POS's commits stamped between the bridge's first and last card payment (both processes
    # read the same clock; the journal is what the POS saw committed, whenever the test read it).
    ((first_card, last_card),) = read_only(
        pos_db_path, "SELECT MIN(recorded_at), MAX(recorded_at) FROM payments WHERE tender = 'card'"
    )
    edits_during = sum(1 for entry in pos.journal if first_card < entry["at"] < last_card)
    print(
        f"\n{len(plan)} payments + {CARD_ORDERS * LOCK_ROUNDS * 3} lock calls in {elapsed:.2f} s "
        f"({len(plan) / elapsed:.0f} payments/s) against {edits_during} POS commits; payment latency "
        f"p50 {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"POS: {pos.summary}"
    )
    assert pos_still_running and edits_during >= CHUNKS - 1, "the POS process must be writing while the bridge is"

    # No `database is locked` escaped as a crash, and with a 5 s busy timeout none was even needed.
    errors = [
        (call.intent, r["error"]) for call, r in paid if "error" in r and r["error"]["errorType"] != "Conflict"
    ] + [(method, r["error"]) for rounds in locked for method, r in rounds if "error" in r]
    unexpected = [e for _, e in errors if e["errorType"] == "UnexpectedError"]
    assert all("busy" in e.get("debugMessage", "") for e in unexpected), unexpected
    assert errors == []

    # Every over-payment was refused; every other payment (replays included) answered ok.
    answered_ok: dict[str, PaymentCall] = {}
    refused: set[str] = set()
    for call, response in paid:
        if call.amount == OVERPAYMENT:
            assert response["error"]["errorType"] == "Conflict"
            refused.add(call.intent)
        else:
            assert "result" in response, response
            answered_ok[call.intent] = call
    assert len(answered_ok) == CARD_ORDERS * NEW_INTENTS_PER_ORDER

    stored = read_only(
        pos_db_path, "SELECT payment_intent_id, order_id, paid_amount, tender FROM payments WHERE tender = 'card'"
    )
    per_intent = Counter(intent for intent, *_ in stored)
    assert {intent for intent, n in per_intent.items() if n > 1} == set(), "a replay was stored twice"
    assert set(per_intent) == set(answered_ok), "stored card payments must be exactly those answered ok"
    assert refused.isdisjoint(per_intent)
    for intent, order, amount, _ in stored:
        assert (order, amount) == (answered_ok[intent].order, answered_ok[intent].amount)
    paid_per_order: dict[int, int] = defaultdict(int)
    for call in answered_ok.values():
        paid_per_order[call.order] += call.amount
    stored_per_order = dict(
        read_only(
            pos_db_path, "SELECT order_id, SUM(paid_amount) FROM payments WHERE tender = 'card' GROUP BY order_id"
        )
    )
    assert stored_per_order == paid_per_order

    # The answers agree with the table: the last answer for each order shows at least what it implies.
    for call, response in paid:
        if "result" in response:
            assert response["result"]["paidAmount"]["value"] <= paid_per_order[call.order]

    assert_pos_edits_survived(pos_db_path, pos.journal, card_orders)
    assert read_only(pos_db_path, "SELECT COUNT(*) FROM order_locks") == [(0,)]
    assert read_only(pos_db_path, "PRAGMA integrity_check") == [("ok",)]


def assert_pos_edits_survived(path: Path, journal: list[dict[str, Any]], card_orders: list[int]) -> None:
    """Every edit the POS saw committed is still there: nothing the bridge wrote went over it."""
    assert journal, "the POS journal is empty"
    last_note: dict[int, str] = {}
    extra_total: dict[int, int] = defaultdict(int)
    extra_quantity: dict[int, int] = defaultdict(int)
    added_items: set[int] = set()
    cash: dict[int, tuple[int, int]] = {}
    for entry in journal:
        order = entry["order"]
        kind = entry["kind"]
        if kind == "note":
            last_note[order] = entry["note"]
        elif kind == "quantity":
            extra_quantity[entry["item"]] += 1
            extra_total[order] += entry["price"]
        elif kind == "item":
            added_items.add(entry["item"])
            extra_total[order] += entry["price"]
        elif kind == "cash":
            cash[entry["payment"]] = (order, entry["amount"])
    orders = {row[0]: row[1:] for row in read_only(path, "SELECT id, note, total_amount FROM orders")}
    for order in card_orders:
        note, total = orders[order]
        assert note == last_note.get(order), f"order {order}: the POS's last note was lost"
        assert total == ORDER_TOTAL + extra_total[order], f"order {order}: a POS change to the total was lost"
        # updated_at ordering is covered by the dedicated test below.
    quantities = dict(read_only(path, "SELECT id, quantity FROM order_items"))
    for item, extra in extra_quantity.items():
        assert quantities[item] == 1 + extra, f"item {item}: a POS quantity change was lost"
    assert added_items <= set(quantities), "an item the POS added is missing"
    stored_cash = {
        row[0]: (row[1], row[2])
        for row in read_only(path, "SELECT id, order_id, paid_amount FROM payments WHERE tender = 'cash'")
    }
    assert stored_cash == cash, "cash payments must be exactly those the POS committed"


async def test_a_pos_holding_the_write_lock_gets_a_quick_busy_error_then_normal_service(pos_db_path: Path) -> None:
    """Busy timeout 0.5 s against a POS that holds its write transaction until released on cue."""
    (order,) = seed_orders(pos_db_path, 1)
    adapter = sqlite_pos(pos_db_path, busy_timeout_s=0.5)
    dispatcher = Dispatcher(adapter)
    request = PaymentCall(order, "pi_while_busy", 2_500).frame("busy-1")
    pos = await pos_holding_its_write_lock(pos_db_path, order)
    try:
        served = await dispatcher.handle_text(request)
        assert served is not None
        response = json.loads(served.response_text)
        assert_valid_response("RecordOrderPaymentByIdV1", response)
        print(f"\nbusy answer after {served.elapsed_ms:.0f} ms: {response['error']['debugMessage']}")
        assert response["error"]["errorType"] == "UnexpectedError"
        assert "is busy" in response["error"]["debugMessage"]
        assert pos_db_path.name not in response["error"]["debugMessage"], "no POS file name reaches Dojo"
        assert served.debug_message is not None and pos_db_path.name in served.debug_message, "the log names it"
        # Waits its own 0.5 s busy timeout: not the adapter's 5 s default, let alone the 10 s deadline.
        assert 400 <= served.elapsed_ms < DEFAULT_BUSY_TIMEOUT_S * 1000, "waits the configured busy timeout"
        assert pos.running, "the POS was still holding its lock when the bridge answered"
        assert read_only(pos_db_path, "SELECT COUNT(*) FROM payments") == [(0,)]

        await pos.send("release")
        await pos.expect("RELEASED")
        served = await dispatcher.handle_text(request)
        assert served is not None
        response = json.loads(served.response_text)
        assert_valid_response("RecordOrderPaymentByIdV1", response)
        assert response["result"]["paidAmount"] == money(2_500)
        await pos.finish()
    finally:
        await pos.kill()
        await adapter.close()

    assert read_only(pos_db_path, "SELECT payment_intent_id, paid_amount FROM payments") == [("pi_while_busy", 2_500)]
    assert read_only(pos_db_path, "SELECT note FROM orders WHERE id = ?", (order,)) == [("held by the POS",)]


async def test_a_payment_that_waited_for_the_pos_does_not_move_updated_at_back(
    adapter: PosCalls, pos_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """updated_at is what the ExtendOrderLock rule (contract §3.7) and POS sync read as "changed since"."""
    statements = trace_bridge_statements(monkeypatch)
    (order,) = seed_orders(pos_db_path, 1)
    dispatcher = Dispatcher(adapter)
    request = PaymentCall(order, "pi_after_wait", 1_000).frame("wait-1")
    pos = await pos_holding_its_write_lock(pos_db_path, order)
    try:
        waiting = asyncio.create_task(dispatcher.handle_text(request))
        await statements.wait_for("BEGIN IMMEDIATE")  # the request is in, waiting on the POS's write lock
        assert not waiting.done()
        # Whatever the request read from the clock so far is now in the past at the stored (ms)
        # precision, so the POS's commit stamp is strictly later than any of it.
        began = datetime.now(UTC)
        while datetime.now(UTC) < began + timedelta(milliseconds=10):  # noqa: ASYNC110 - waiting on the clock
            await asyncio.sleep(0.002)
        await pos.send("release")
        pos_saved_at = (await pos.expect("RELEASED")).split()[1]
        async with asyncio.timeout(5):
            served = await waiting
        assert served is not None and served.ok, served
        await pos.finish()
    finally:
        await pos.kill()

    ((updated_at,),) = read_only(pos_db_path, "SELECT updated_at FROM orders WHERE id = ?", (order,))
    assert updated_at >= pos_saved_at
