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
from dataclasses import asdict
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


def _calls(order: str) -> list[Scenario]:
    payments = iter(range(1, 10**9))

    def get(rng: random.Random) -> tuple[str, dict[str, Any]]:
        return "GetOrderByIdV1", {"headers": HEADERS, "orderId": order}

    def pay(rng: random.Random) -> tuple[str, dict[str, Any]]:
        params = {"headers": HEADERS, "orderId": order, "paymentIntentId": f"pi_bench_{next(payments)}",
                  "paidAmount": {"value": 1, "currencyCode": "GBP"}}  # fmt: skip
        return "RecordOrderPaymentByIdV1", params

    return [Scenario("GetOrderById", get, 0.0), Scenario("RecordOrderPayment", pay, 0.0)]


async def _one(name: str, storage: SqlMapStorage, order: str, samples: int) -> dict[str, Any]:
    pos = PosCalls(storage)
    try:
        dispatcher = Dispatcher(pos)
        figures: dict[str, Any] = {"venue": name}
        for scenario in _calls(order):
            await measure(dispatcher, scenario, max(10, samples // 10))  # warm: connections, statements
            figures[scenario.name] = asdict(await measure(dispatcher, scenario, samples))
        return figures
    finally:
        await pos.close()


Venues = tuple[tuple[str, SqlMapStorage, str], tuple[str, SqlMapStorage, str]]
"""(name, storage, bench order) in the file, then on the server."""


def ospos_pair(folder: Path, url: str) -> Venues:
    file_till = OsposTill(folder / "ospos.db")
    file_till.seed(STANDARD_VENUE)
    server_till = OsposMysqlTill(url)
    try:
        server_till.seed(STANDARD_VENUE)
        server_order = server_till.add_open_order("T1", OWED, "GBP")
    finally:
        server_till.close()
    file_storage = SqlMapStorage.open(folder / "ospos.db", load("ospos"))
    return (
        ("ospos (SQLite file)", file_storage, file_till.add_open_order("T1", OWED, "GBP")),
        ("ospos_mysql (MariaDB)", ospos_mysql_storage(url), server_order),
    )


def floreant_pair(folder: Path, url: str) -> Venues:
    file_till = FloreantTill(folder / "floreant.db")
    file_till.seed(STANDARD_VENUE)
    server_till = FloreantPgTill(url)
    try:
        server_till.seed(STANDARD_VENUE)
        server_order = server_till.add_open_order("T1", OWED, "GBP")
    finally:
        server_till.close()
    file_storage = SqlMapStorage.open(folder / "floreant.db", load("floreant"))
    return (
        ("floreant (SQLite file)", file_storage, file_till.add_open_order("T1", OWED, "GBP")),
        ("floreant_pg (PostgreSQL)", floreant_pg_storage(url), server_order),
    )


PAIRS: tuple[tuple[str, Callable[[], DbServer], Callable[[Path, str], Venues]], ...] = (
    ("mariadb", start_mariadb, ospos_pair),
    ("postgresql", start_postgresql, floreant_pair),
)


async def run(folder: Path, samples: int) -> dict[str, Any]:
    """Both pairs; a server whose binaries are missing is reported as skipped, not faked."""
    pairs: list[dict[str, Any]] = []
    for engine, start, venues in PAIRS:
        try:
            server = start()
        except ServerUnavailable as exc:
            pairs.append({"engine": engine, "skipped": str(exc)})
            continue
        try:
            in_file, on_server = venues(folder, server.create_database())
            pairs.append(
                {
                    "engine": engine,
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
