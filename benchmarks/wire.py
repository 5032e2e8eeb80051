"""Round trips over the WebSocket: the bare echo baseline and the whole bridge, same driver.

Process layout (chosen for fairness, stated in the output): the load generator, Dojo's side
(:class:`~epos_bridge.sim.simulator.DojoSimulator`), runs in the benchmark process; the far end
runs in a second process, either the bare echo peer (:mod:`benchmarks.echo_peer`) or the real
headless bridge (``python -m epos_bridge run --headless``). Two processes on two cores is what a
till has (Dojo's gateway is remote), and it keeps the bridge's CPU work from being counted
against the driver's event loop and vice versa.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import Latency, cpu_seconds, rss_bytes
from epos_bridge.protocol.times import format_utc
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.testing.processes import isolated_env, simulator_env, stop_process
from epos_bridge.testing.venues import venue_with_open_orders

RequestFactory = Callable[[int], tuple[str, dict[str, Any]]]
BENCH_API_KEY = "sk_sandbox_benchmark_key_0001"
HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "bench-terminal", "deviceType": "terminal"}
BIG_TOTAL = 10**12
"""Bench orders owe this much: a million 1p payments never reach it."""
FULL_TABLE = "BENCH-20"
"""The table holding the 20 full orders the 20-order search returns."""
FULL_ORDERS = 20
RETRY_LINE = re.compile(rb"next gateway connection attempt in (?P<s>[0-9.]+) s")


def clean_env(folder: Path) -> dict[str, str]:
    """HOME/XDG in ``folder``, the fail keyring: the run never touches the user's settings."""
    return {**isolated_env(folder), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def build_venue(path: Path, bench_orders: int) -> list[str]:
    """The demo venue plus ``bench_orders`` open orders owing :data:`BIG_TOTAL` (one item each),
    and :data:`FULL_ORDERS` full orders on table :data:`FULL_TABLE` (:func:`add_full_orders`)."""
    ids = venue_with_open_orders(path, bench_orders, BIG_TOTAL, reference_prefix="BENCH", item=("Bench tab", "BENCH"))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        add_full_orders(conn, format_utc(datetime.now(UTC)))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return ids


def add_full_orders(conn: sqlite3.Connection, stamp: str) -> None:
    """:data:`FULL_ORDERS` open, part-paid orders on :data:`FULL_TABLE`, every kind of line filled
    in: three items (each with two modifiers; the first with a sub-item that has a modifier of its
    own), two discounts, two tax lines, two card payments (one with a tip), a customer and notes."""
    conn.execute("INSERT INTO tables (id, name, area_id, max_covers) VALUES (?, 'Bench 20', NULL, 8)", [FULL_TABLE])
    for n in range(FULL_ORDERS):
        order = conn.execute(
            "INSERT INTO orders (reference, display_name, status, order_type, table_id, waiter_id, note,"
            " customer_id, customer_name, customer_email, customer_phone, currency_code, total_amount,"
            " service_charge_amount, created_at, updated_at)"
            " VALUES (?, ?, 'Submitted', 'DineIn', ?, 'W2', 'No nuts, please', ?, 'Sam Diner', 'sam@example.com',"
            " '+44 7700 900123', 'GBP', ?, 450, ?, ?)",
            [f"FULL-{n}", f"Party of {n % 6 + 2}", FULL_TABLE, f"cust-{n}", 20_000 + n, stamp, stamp],
        ).lastrowid
        for position in range(3):
            item = conn.execute(
                "INSERT INTO order_items (order_id, position, name, plu, quantity, amount_per_item, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [order, position, f"Main course {position}", f"PLU-{position}", 2, 1450, "medium rare"],
            ).lastrowid
            conn.executemany(
                "INSERT INTO order_modifiers (item_id, position, name, plu, quantity, amount_per_modifier)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                [(item, m, f"Extra {m}", f"MOD-{m}", 150 + m) for m in range(2)],
            )
            if position == 0:
                sub = conn.execute(
                    "INSERT INTO order_sub_items (item_id, position, name, plu, quantity, amount_per_item, note)"
                    " VALUES (?, 0, 'Side salad', 'PLU-SIDE', 1, 350, 'dressing apart')",
                    [item],
                ).lastrowid
                conn.execute(
                    "INSERT INTO order_modifiers (sub_item_id, position, name, plu, quantity, amount_per_modifier)"
                    " VALUES (?, 0, 'Vinaigrette', 'MOD-VIN', 1, 50)",
                    [sub],
                )
        conn.executemany(
            "INSERT INTO order_discounts (order_id, position, name, amount_total, affected_plu, discount_reference,"
            " code, amount_percentage) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (order, 0, "Happy hour", 300, "PLU-1", "HH-1", "HAPPY", 10),
                (order, 1, "Loyalty", 200, None, "LOY-7", None, None),
            ],
        )
        conn.executemany(
            "INSERT INTO order_tax_lines (order_id, position, tax_id, name, affected_plu, amount_percentage,"
            " amount_total) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(order, 0, "VAT20", "VAT 20%", None, 20, 3300), (order, 1, "SVC", "Service", "PLU-0", 5, 450)],
        )
        conn.executemany(
            "INSERT INTO payments (order_id, payment_intent_id, tender, paid_amount, tips_amount, recorded_at)"
            " VALUES (?, ?, 'card', ?, ?, ?)",
            [(order, f"pi_full_{n}_a", 5000, 500, stamp), (order, f"pi_full_{n}_b", 2500, None, stamp)],
        )


class Peer:
    """The far end in its own process, stdout/stderr to files (nothing blocks on a pipe)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, *args], env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU seconds the process has used so far (every thread)."""
        return cpu_seconds(self.process.pid)

    def retry_steps(self) -> list[float]:
        """Every backoff pause the bridge logged, in order."""
        return [float(m["s"]) for m in RETRY_LINE.finditer(self.log_path.read_bytes())]

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


def start_echo_peer(sim: DojoSimulator, env: dict[str, str], folder: Path) -> Peer:
    return Peer(
        ["-m", "benchmarks.echo_peer", sim.ws_url, BENCH_API_KEY, DEMO_SOFTWARE_HOUSE_ID], env, folder / "echo.log"
    )


def start_bridge(sim: DojoSimulator, env: dict[str, str], folder: Path, db: Path) -> Peer:
    # ``env`` is clean_env(folder): the same user folders again, plus its PYTHONPATH.
    bridge_env = {**env, **simulator_env(folder, sim, api_key=BENCH_API_KEY, db=db, data_dir=folder / "bridge-data")}
    return Peer(["-m", "epos_bridge", "run", "--headless"], bridge_env, folder / "bridge.log")


def start_tray(sim: DojoSimulator, env: dict[str, str], folder: Path, db: Path) -> Peer:
    """The tray app as a till's autostart runs it (``python -m epos_bridge run``), offscreen Qt."""
    tray_env = {**env, **simulator_env(folder, sim, api_key=BENCH_API_KEY, db=db, data_dir=folder / "tray-data")}
    return Peer(["-m", "epos_bridge", "run"], tray_env, folder / "tray.log")


async def wait_connected(gateway: GatewaySimulator, peer: Peer, timeout: float = 30) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not gateway.connected:
        if peer.process.poll() is not None:
            raise RuntimeError(f"the peer exited ({peer.process.returncode}); see {peer.log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the peer did not connect within {timeout} s; see {peer.log_path}")
        await asyncio.sleep(0.01)


def _failed(response: dict[str, Any]) -> bool:
    return "error" in response


async def latency(
    gateway: GatewaySimulator, make: RequestFactory, count: int, start: int = 0, peer: Peer | None = None
) -> Latency:
    """``count`` requests one after another (1 in flight); milliseconds per round trip, and the
    CPU time ``peer`` (the far end) spent per request."""
    samples: list[float] = []
    errors = 0
    cpu_before = peer.cpu_seconds() if peer else None
    for i in range(start, start + count):
        method, params = make(i)
        began = time.perf_counter()
        response = await gateway.request(method, params, timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
        errors += _failed(response)
        if len(gateway.received) > 1000:
            gateway.received.clear()  # the simulator keeps every frame; a 20-order answer is 30 KB
    cpu_s = peer.cpu_seconds() - cpu_before if peer and cpu_before is not None else None
    gateway.received.clear()
    return Latency.of(samples, errors, cpu_s)


@dataclass
class Throughput:
    requests: int
    seconds: float
    in_flight: int
    errors: int
    cpu_s: float | None = None
    """CPU seconds the far end spent over the run (every thread)."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    @property
    def cpu_ms_per_request(self) -> float | None:
        return self.cpu_s * 1000 / self.requests if self.cpu_s is not None and self.requests else None


async def throughput(
    gateway: GatewaySimulator,
    make: RequestFactory,
    count: int,
    in_flight: int = 64,
    start: int = 0,
    peer: Peer | None = None,
) -> Throughput:
    """``count`` requests with ``in_flight`` always outstanding (64 = the bridge's own limit)."""
    numbers = iter(range(start, start + count))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in numbers:
            method, params = make(i)
            errors += _failed(await gateway.request(method, params, timeout=60))
            if len(gateway.received) > 1000:
                gateway.received.clear()

    cpu_before = peer.cpu_seconds() if peer else None
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    seconds = time.perf_counter() - began
    cpu_s = peer.cpu_seconds() - cpu_before if peer and cpu_before is not None else None
    gateway.received.clear()
    return Throughput(count, seconds, in_flight, errors, cpu_s)


def get_order(order_ids: list[str]) -> RequestFactory:
    return lambda i: ("GetOrderByIdV1", {"headers": HEADERS, "orderId": order_ids[i % len(order_ids)]})


def search_orders(table_id: str) -> RequestFactory:
    params = {"headers": HEADERS, "payableOnly": True, "dineIn": {"tableId": table_id}, "cursor": {"limit": 100}}
    return lambda i: ("SearchOrdersV1", params)


def search_full_orders() -> RequestFactory:
    """The search that answers :data:`FULL_ORDERS` full orders (table :data:`FULL_TABLE`)."""
    params = {"headers": HEADERS, "dineIn": {"tableId": FULL_TABLE}, "cursor": {"limit": 100}}
    return lambda i: ("SearchOrdersV1", params)


def record_payment(order_ids: list[str], run_tag: str) -> RequestFactory:
    """Distinct paymentIntentIds, 1p each, spread over the bench orders (which owe far more)."""

    def make(i: int) -> tuple[str, dict[str, Any]]:
        return (
            "RecordOrderPaymentByIdV1",
            {
                "headers": HEADERS,
                "orderId": order_ids[i % len(order_ids)],
                "paymentIntentId": f"pi_bench_{run_tag}_{i}",
                "paidAmount": {"value": 1, "currencyCode": "GBP"},
            },
        )

    return make


def mixed(order_ids: list[str], run_tag: str, table_id: str) -> RequestFactory:
    """Get, search and pay in turn (the memory soak)."""
    makers = (get_order(order_ids), search_orders(table_id), record_payment(order_ids, run_tag))
    return lambda i: makers[i % 3](i)


_counter = itertools.count()


def unique_tag() -> str:
    return f"{os.getpid()}_{int(time.time())}_{next(_counter)}"
