"""A POS on a database server beside the same POS in a file: GetOrderById and RecordOrderPayment
through the dispatcher and the mapped-SQL adapter.

Two pairs, each the same POS and the same calls, measured one after the other in the same run:
Open Source Point of Sale in an SQLite file (``ospos``) and on a real MariaDB server
(``ospos_mysql``); Floreant in an SQLite file (``floreant``) and on a real PostgreSQL server
(``floreant_pg``). The servers are throwaway instances on loopback (tests/helpers/db_servers.py)
with their default durability (every commit flushed), as SQLite's WAL is here. The ratio is what
a server costs per request over a file; the CPU is this process's (the bridge's side: event loop
and worker threads), not the server's, which runs in its own process.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.bigdb import HEADERS, Scenario, measure
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.mapping import load
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.testing.contract_suite import STANDARD_VENUE
from tests.helpers.db_servers import DbServer, ServerUnavailable, start_mariadb, start_postgresql
from tests.helpers.floreant import FloreantTill
from tests.helpers.floreant_pg import FloreantPgTill, floreant_pg_storage
from tests.helpers.ospos import OsposTill
from tests.helpers.ospos_mysql import OsposMysqlTill, ospos_mysql_storage

OWED = 1_000_000_000
"""What each bench order owes (£10m): a payment of 1p never finds it paid."""
BENCH_ORDERS = 20
"""Payments go round this many orders: a bill's payments are read with every payment on it, so
a thousand on one bill would measure that bill's growth, not the engine."""


def _calls(orders: list[str]) -> list[Scenario]:
    payments = iter(range(1, 10**9))

    def get(rng: random.Random) -> tuple[str, dict[str, Any]]:
        return "GetOrderByIdV1", {"headers": HEADERS, "orderId": orders[0]}

    def pay(rng: random.Random) -> tuple[str, dict[str, Any]]:
        n = next(payments)
        params = {"headers": HEADERS, "orderId": orders[n % len(orders)], "paymentIntentId": f"pi_bench_{n}",
                  "paidAmount": {"value": 1, "currencyCode": "GBP"}}  # fmt: skip
        return "RecordOrderPaymentByIdV1", params

    return [Scenario("GetOrderById", get, 0.0), Scenario("RecordOrderPayment", pay, 0.0)]


async def _one(name: str, storage: SqlMapStorage, orders: list[str], samples: int) -> dict[str, Any]:
    pos = PosCalls(storage)
    try:
        dispatcher = Dispatcher(pos)
        figures: dict[str, Any] = {"venue": name}
        for scenario in _calls(orders):
            await measure(dispatcher, scenario, max(10, samples // 10))  # warm: connections, statements
            figures[scenario.name] = asdict(await measure(dispatcher, scenario, samples))
        return figures
    finally:
        await pos.close()


Venues = tuple[tuple[str, SqlMapStorage, list[str]], tuple[str, SqlMapStorage, list[str]]]
"""(name, storage, bench orders) in the file, then on the server."""


@dataclass(frozen=True)
class Pair:
    """One POS in a file and on a server: its tills, mappings and the server's storage."""

    engine: str
    start: Callable[[], DbServer]
    file_mapping: str
    file_till: Callable[[Path], FloreantTill | OsposTill]
    server_mapping: str
    server_till: Callable[[str], FloreantPgTill | OsposMysqlTill]
    server_storage: Callable[[str], SqlMapStorage]
    server_name: str

    def venues(self, folder: Path, url: str) -> Venues:
        """The same standard venue and bench orders in each: (name, storage, orders) twice."""
        path = folder / f"{self.file_mapping}.db"
        in_file = self.file_till(path)
        in_file.seed(STANDARD_VENUE)
        on_server = self.server_till(url)
        try:
            on_server.seed(STANDARD_VENUE)
            server_orders = [on_server.add_open_order("T1", OWED, "GBP") for _ in range(BENCH_ORDERS)]
        finally:
            on_server.close()
        return (
            (f"{self.file_mapping} (SQLite file)", SqlMapStorage.open(path, load(self.file_mapping)),
             [in_file.add_open_order("T1", OWED, "GBP") for _ in range(BENCH_ORDERS)]),
            (f"{self.server_mapping} ({self.server_name})", self.server_storage(url), server_orders),
        )  # fmt: skip


PAIRS = (
    Pair("mariadb", start_mariadb, "ospos", OsposTill, "ospos_mysql", OsposMysqlTill, ospos_mysql_storage, "MariaDB"),
    Pair("postgresql", start_postgresql, "floreant", FloreantTill, "floreant_pg", FloreantPgTill, floreant_pg_storage,
         "PostgreSQL"),
)  # fmt: skip


async def run(folder: Path, samples: int) -> dict[str, Any]:
    """Both pairs; a server whose binaries are missing is reported as skipped, not faked."""
    pairs: list[dict[str, Any]] = []
    for pair in PAIRS:
        try:
            server = pair.start()
        except ServerUnavailable as exc:
            pairs.append({"engine": pair.engine, "skipped": str(exc)})
            continue
        try:
            in_file, on_server = pair.venues(folder, server.create_database())
            pairs.append(
                {
                    "engine": pair.engine,
                    "file": await _one(*in_file, samples),
                    "server": await _one(*on_server, samples),
                }
            )
        finally:
            server.stop()
    return {"samples": samples, "pairs": pairs}


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str, str]]:
    """The table's rows: each call on the server, its p50 as a ratio to the same call in the file."""
    found = []
    for pair in results["pairs"]:
        if "skipped" in pair:
            found.append((f"{pair['engine']}: skipped", pair["skipped"], "", "", "", "", ""))
            continue
        for call in ("GetOrderById", "RecordOrderPayment"):
            file_lat, server_lat = pair["file"][call], pair["server"][call]
            cpu, file_cpu = server_lat["cpu_ms_per_request"], file_lat["cpu_ms_per_request"]
            found.append(
                (
                    f"{pair['server']['venue']}: {call}",
                    f"p50 {server_lat['p50_ms']:.2f} ms",
                    f"p99 {server_lat['p99_ms']:.2f} ms",
                    ""
                    if cpu is None
                    else f"{cpu:.2f} ms ({cpu / file_cpu:.1f}× file)"
                    if file_cpu
                    else f"{cpu:.2f} ms",
                    f"{server_lat['p50_ms'] / file_lat['p50_ms']:.2f}× {pair['file']['venue']}"
                    f" (p50 {file_lat['p50_ms']:.2f} ms)",
                    "(diagnostic)",
                    "" if server_lat["errors"] == 0 else f"{server_lat['errors']} errors",
                )
            )
    return found
