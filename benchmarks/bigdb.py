"""A venue after five years: 1,000,000 orders. Opening and migrating it, read latency and CPU
through the dispatcher, and the query plans behind them.

The database follows the reference schema exactly, as the last release before issue 16 left it
(schema :data:`UPGRADE_FROM`, change-capture triggers included); it is filled with
``executemany`` in one transaction with ``synchronous=OFF`` (a fixture, not a till): 1,000,000
orders (the newest 10,000 open, the rest finalized or canceled), three items each (one with a
modifier), a card payment on every finalized order, 60 tables. The first adapter to open it
migrates it to the current schema, and that is timed ("open + migrate"). The plans shown are
those of the SQL the adapter really runs: a trace callback on the adapter's own connection
records each statement, and each is then explained.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Latency
from epos_bridge.adapters.sqlite.adapter import SqliteStorage
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.adapters.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from epos_bridge.host.garbage import tune_for_serving, untune
from epos_bridge.protocol.times import format_utc
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import PosCalls

ORDERS = 1_000_000
OPEN = 10_000
TABLES = 60
UPGRADE_FROM = 3
"""The reference schema version of the last release before issue 16: what a venue upgrades from."""
CHUNK = 50_000
"""Orders generated and inserted at a time (the rows of a million orders do not sit in memory)."""
OPEN_STATUSES = ("New", "Submitted", "Confirmed", "Accepted", "Preparing", "Prepared", "Ready")
HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "bench"}
OPEN_TARGET_S = 2.0


def create_schema(path: Path, version: int) -> None:
    """The reference schema as it stood at ``version`` (the migrations up to it, as `db init` ran them)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for step in range(version):
            conn.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[step]}\nPRAGMA user_version = {step + 1};\nCOMMIT;")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


def build(path: Path, orders: int = ORDERS, open_orders: int = OPEN) -> float:
    """Create and fill the database at schema :data:`UPGRADE_FROM`; returns the seconds it took."""
    began = time.perf_counter()
    create_schema(path, min(UPGRADE_FROM, SCHEMA_VERSION))
    rng = random.Random(orders)
    base = datetime(2021, 1, 1, tzinfo=UTC)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Building a fixture, not serving: no fsync, no journal (a new file; a failed build is
        # thrown away), a cache the one big transaction never spills from. WAL comes back below.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1048576")
        conn.execute("BEGIN IMMEDIATE")
        # A relay that kept up leaves the change log empty: fill without the change-capture
        # triggers, and put them back, exactly as the schema defines them, before COMMIT.
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(
            "INSERT INTO venue (id, name, address_lines, postcode) VALUES (1, 'Bench Hall', '[\"1 Long Road\"]', 'LS1')"
        )
        conn.executemany("INSERT INTO areas (id, name) VALUES (?, ?)", [("main", "Main"), ("upstairs", "Upstairs")])
        conn.executemany(
            "INSERT INTO tables (id, name, area_id, max_covers) VALUES (?, ?, ?, 4)",
            [(f"T{t}", f"Table {t}", "main" if t <= 30 else "upstairs") for t in range(1, TABLES + 1)],
        )
        first_open = orders - open_orders + 1
        item_id = 0
        for chunk_start in range(1, orders + 1, CHUNK):
            order_rows, item_rows, modifier_rows, payment_rows = [], [], [], []
            for order in range(chunk_start, min(orders, chunk_start + CHUNK - 1) + 1):
                is_open = order >= first_open
                status = (
                    OPEN_STATUSES[order % len(OPEN_STATUSES)]
                    if is_open
                    else ("Canceled" if order % 50 == 0 else "Finalized")
                )
                at = format_utc(base + timedelta(minutes=order * 2))
                prices = [rng.randrange(300, 2500) for _ in range(3)]
                total = sum(prices)
                order_rows.append(
                    (order, f"R-{order}", status, f"T{order % TABLES + 1}", f"W{order % 6 + 1}", total, at, at)
                )
                for position, price in enumerate(prices):
                    item_id += 1
                    item_rows.append((item_id, order, position, DISHES[position], PLUS[position], 1, price))
                    if position == 0:
                        modifier_rows.append((item_id, 0, "Extra cheese", "MOD-CHS", 1, 0))
                if status == "Finalized":
                    payment_rows.append((order, f"pi_hist_{order}", total, at))
            _insert_chunk(conn, order_rows, item_rows, modifier_rows, payment_rows)
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    return time.perf_counter() - began


DISHES = ("Dish 0", "Dish 1", "Dish 2")
PLUS = ("PLU-0", "PLU-1", "PLU-2")


def _insert_chunk(
    conn: sqlite3.Connection,
    order_rows: list[tuple[Any, ...]],
    item_rows: list[tuple[Any, ...]],
    modifier_rows: list[tuple[Any, ...]],
    payment_rows: list[tuple[Any, ...]],
) -> None:
    conn.executemany(
        "INSERT INTO orders (id, reference, status, order_type, table_id, waiter_id, currency_code, total_amount,"
        " created_at, updated_at) VALUES (?, ?, ?, 'DineIn', ?, ?, 'GBP', ?, ?, ?)",
        order_rows,
    )
    conn.executemany(
        "INSERT INTO order_items (id, order_id, position, name, plu, quantity, amount_per_item)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        item_rows,
    )
    conn.executemany(
        "INSERT INTO order_modifiers (item_id, position, name, plu, quantity, amount_per_modifier)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        modifier_rows,
    )
    conn.executemany(
        "INSERT INTO payments (order_id, payment_intent_id, tender, paid_amount, recorded_at)"
        " VALUES (?, ?, 'card', ?, ?)",
        payment_rows,
    )


@dataclass
class Scenario:
    name: str
    make: Any  # (rng) -> (method, params)
    target_ms: float
    """The p99 the issue asks for (issue 16: a venue after five years)."""


def scenarios(first_open: int) -> list[Scenario]:
    def get_open(rng: random.Random) -> tuple[str, dict[str, Any]]:
        return "GetOrderByIdV1", {"headers": HEADERS, "orderId": str(rng.randrange(first_open, ORDERS + 1))}

    def get_any(rng: random.Random) -> tuple[str, dict[str, Any]]:
        return "GetOrderByIdV1", {"headers": HEADERS, "orderId": str(rng.randrange(1, ORDERS + 1))}

    def by_table(rng: random.Random) -> tuple[str, dict[str, Any]]:
        table = f"T{rng.randrange(1, TABLES + 1)}"
        return "SearchOrdersV1", {
            "headers": HEADERS,
            "payableOnly": True,
            "dineIn": {"tableId": table},
            "cursor": {"limit": 100},
        }

    def by_table_all(rng: random.Random) -> tuple[str, dict[str, Any]]:
        table = f"T{rng.randrange(1, TABLES + 1)}"
        return "SearchOrdersV1", {"headers": HEADERS, "dineIn": {"tableId": table}, "cursor": {"limit": 100}}

    def unfiltered(rng: random.Random) -> tuple[str, dict[str, Any]]:
        return "SearchOrdersV1", {"headers": HEADERS, "payableOnly": True, "cursor": {"limit": 100}}

    return [
        Scenario("GetOrderById (open order)", get_open, 5.0),
        Scenario("GetOrderById (any of 1M)", get_any, 5.0),
        Scenario("SearchOrders by table, payableOnly", by_table, 10.0),
        Scenario("SearchOrders by table", by_table_all, 10.0),
        Scenario("SearchOrders, no filter, payableOnly, limit 100", unfiltered, 20.0),
    ]


async def measure(dispatcher: Dispatcher, scenario: Scenario, count: int, seed: int = 7) -> Latency:
    """Latency through the dispatcher, and this process's CPU per request (every thread: the
    event loop and the adapter's worker threads)."""
    rng = random.Random(seed)
    samples: list[float] = []
    errors = 0
    cpu = time.process_time()
    for i in range(count):
        method, params = scenario.make(rng)
        text = json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        began = time.perf_counter()
        served = await dispatcher.handle_text(text)
        samples.append((time.perf_counter() - began) * 1000)
        errors += served is None or not served.ok
    return Latency.of(samples, errors, time.process_time() - cpu)


async def open_once(path: Path) -> float:
    """Seconds from a new adapter to its first answer: connect, check (and migrate) the schema."""
    began = time.perf_counter()
    adapter = PosCalls(SqliteStorage.open(path))
    try:
        served = await Dispatcher(adapter).handle_text(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "ListAreasV1"}))
        if served is None or not served.ok:
            raise RuntimeError(f"the first request on the big venue failed: {served}")
        return time.perf_counter() - began
    finally:
        await adapter.close()


_NUMBERS = re.compile(r"(?<![\w'])\d+(?![\w'])")


_PLACEHOLDER_RUN = re.compile(r"\?(?:, \?){3,}")


def normalise(sql: str) -> str:
    """Statements differing only in bound numbers are one query (the trace shows values bound);
    a long ``IN (?, ?, …)`` list is shown with its length."""
    text = _NUMBERS.sub("?", " ".join(sql.split()))
    return _PLACEHOLDER_RUN.sub(lambda m: f"?, … ({m.group(0).count('?')} values)", text)


@dataclass
class PlannedQuery:
    scenario: str
    sql: str
    plan: list[str]
    full_scans: list[str] = field(default_factory=list)


def explain(conn: sqlite3.Connection, scenario: str, sql: str) -> PlannedQuery:
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    scans = [step for step in plan if re.match(r"SCAN \w+(?! USING)", step) and " USING " not in step]
    return PlannedQuery(scenario, normalise(sql), plan, scans)


async def traced_plans(path: Path, cases: list[Scenario]) -> list[PlannedQuery]:
    """Run each scenario once on a one-connection adapter with a trace callback; explain each SQL."""
    database = PosDatabase(path, workers=1)
    adapter = PosCalls(SqliteStorage(database))
    dispatcher = Dispatcher(adapter)
    try:
        await dispatcher.handle_text(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "ListAreasV1"}))
        # Instrumentation only: the adapter's single worker connection, to hang a trace callback on.
        (conn,) = list(database._all)
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        found: list[PlannedQuery] = []
        explained: set[tuple[str, str]] = set()
        for case in cases:
            seen.clear()
            method, params = case.make(random.Random(1))
            await dispatcher.handle_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            statements = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
            conn.set_trace_callback(None)
            plain = sqlite3.connect(path)
            try:
                for sql in statements:
                    key = (case.name, normalise(sql))
                    if key not in explained:
                        explained.add(key)
                        found.append(explain(plain, case.name, sql))
            finally:
                plain.close()
            conn.set_trace_callback(seen.append)
        conn.set_trace_callback(None)
        return found
    finally:
        await adapter.close()


async def run(folder: Path, samples: int) -> dict[str, Any]:
    path = folder / "venue-1m.db"
    build_s = build(path)
    first_open = ORDERS - OPEN + 1
    cases = scenarios(first_open)
    results: dict[str, Any] = {
        "orders": ORDERS,
        "open": OPEN,
        "tables": TABLES,
        "build_s": build_s,
        "file_bytes": path.stat().st_size,
        "from_schema": min(UPGRADE_FROM, SCHEMA_VERSION),
        "to_schema": SCHEMA_VERSION,
        "open_and_migrate_s": await open_once(path),
        "open_s": await open_once(path),
        "open_target_s": OPEN_TARGET_S,
        "latency": {},
    }
    adapter = PosCalls(SqliteStorage.open(path))
    dispatcher = Dispatcher(adapter)
    # Measured in this process, collected as the bridge's own process is (host/garbage.py).
    before = tune_for_serving()
    try:
        for case in cases:
            await measure(dispatcher, case, max(20, samples // 10), seed=1)  # warm the page cache
            latency = await measure(dispatcher, case, samples)
            results["latency"][case.name] = {**latency.__dict__, "target_ms": case.target_ms}
    finally:
        untune(before)
        await adapter.close()
    plans = await traced_plans(path, cases)
    results["plans"] = [p.__dict__ for p in plans]
    return results
