"""Exactly once, proved against a model: what Dojo is told about money is what the till holds.

A hypothesis state machine drives the real dispatcher, the real idempotency store and a real POS
database — the reference SQLite adapter and, in further machines, the file-database adapter and
the mapped-SQL adapter on a Floreant-shaped database and on Open Source Point of Sale's (open
bills apart from completed sales), in SQLite files and on real servers (OSPOS on MariaDB,
Floreant on PostgreSQL) —
through random interleavings of what a busy evening brings:

* new payments, with and without tips and lock ids; payments that exceed what is owed;
* Dojo replaying a request with the same JSON-RPC id and params, reusing an id for other
  params, and resending a paymentIntentId under a new id (same amount, another amount, another
  order);
* requests abandoned half way (the link dropped: the task is cancelled while its work may go
  on) and retried later;
* locks created, extended and deleted with expiries near now;
* payment-intent events, in and out of order, redelivered;
* a second OS process taking the POS's write lock and giving it back (on a server: its
  transaction holding every bill's row lock);
* the bridge restarting (store and adapter closed and reopened);
* the till removing an order (with its payment rows) that Dojo may have paid.

After every step the database is held against the model:

* a paymentIntentId whose latest answer was a success has exactly one payment row; one whose
  latest answer was an error has none; one with no answer yet (abandoned) has at most one (on
  an order the till removed: in the bridge's own ledger, which the till cannot remove);
* every order reads, and its ``paidAmount``/``tipsAmount``/``payable`` are the sum of the
  payments that count; a removed one Dojo paid reads as not payable, one it never paid is gone;
* a recorded payment's status is the newest status Dojo's events gave its intent;
* an order that owes can always be locked and paid (probed by a rule).

CI runs a bounded budget (``EPOS_BRIDGE_MODEL_EXAMPLES``, default below; on a database server
``EPOS_BRIDGE_MODEL_SERVER_EXAMPLES``, a third of it). For a long soak::

    EPOS_BRIDGE_MODEL_MINUTES=30 ./dev test tests/model -s

which repeats the machines with fresh seeds until the time is up and prints the steps run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from epos_bridge.adapters.jsonfile.lockfile import FolderLock
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.database import MappedDatabase
from epos_bridge.adapters.sqlmap.mapping import load as load_mapping
from epos_bridge.ports import PosAdapter
from epos_bridge.protocol.times import format_utc
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.idempotent_serve import IdempotentServe
from epos_bridge.services.pos_calls import PosCalls
from epos_bridge.state.idempotency import IdempotencyStore
from tests.helpers.builders import read_only
from tests.helpers.contract import assert_valid_response
from tests.helpers.db_servers import DbServer, mariadb_server, postgresql_server  # noqa: F401 - fixtures
from tests.helpers.floreant import create_floreant_database, floreant_time
from tests.helpers.floreant_pg import FloreantPgTill, create_floreant_pg_database, floreant_pg_storage, floreant_pg_time
from tests.helpers.ospos import CLOSED, OsposTill, create_ospos_database, ospos_time
from tests.helpers.ospos_mysql import OsposMysqlTill, create_ospos_mysql_database, ospos_mysql_storage
from tests.helpers.pos import jsonfile_pos, sqlite_pos
from tests.helpers.pos_writer import PosProcess

EXAMPLES = int(os.environ.get("EPOS_BRIDGE_MODEL_EXAMPLES", "12"))
SERVER_EXAMPLES = int(os.environ.get("EPOS_BRIDGE_MODEL_SERVER_EXAMPLES", str(max(1, EXAMPLES // 3))))
"""A machine on a database server takes about five times as long per step (every request and
check a round trip, a fresh database per example): a third of the examples by default."""
STEPS = int(os.environ.get("EPOS_BRIDGE_MODEL_STEPS", "40"))
SOAK_MINUTES = float(os.environ.get("EPOS_BRIDGE_MODEL_MINUTES", "0"))

ORDER_TOTALS = (1500, 2500, 4000)
DEADLINE_S = 0.4
BUSY_S = 0.25
COUNTING = frozenset({"Recorded", "Created", "Authorized", "Captured"})
HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "model"}

STEPS_RUN = [0]


@dataclass
class Intent:
    """What Dojo was last told about one paymentIntentId."""

    order: str
    amount: int
    tips: int
    told: str  # "ok", "error" or "unknown" (no answer reached Dojo)


@dataclass
class Sent:
    request_id: str
    method: str
    params: dict[str, Any]
    answer: dict[str, Any] | None


@dataclass
class Events:
    """A paymentIntentId's events as Dojo sent them: (createdAt offset, status)."""

    sent: list[tuple[int, str, str]] = field(default_factory=list)  # (offset s, status, event id)

    def newest(self) -> str | None:
        return max(self.sent)[1] if self.sent else None


class Venue:
    """A POS database with open orders, as one adapter kind sees it, plus an independent reader."""

    kind = ""
    server_fixture: str | None = None
    """The session fixture of the database server this venue lives on, if any."""
    server: DbServer | None = None
    server_url: str | None = None
    """Its database's URL, password included, for the POS process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def close(self) -> None:
        """Let go of what the venue holds open (a server venue's connections)."""

    def open_adapter(self) -> PosAdapter:
        raise NotImplementedError

    def lock_target(self) -> tuple[str, ...]:
        raise NotImplementedError

    def payment_rows(self) -> list[tuple[str, str, int, int, str]]:
        """(intent, order, paid, tips, status) of every card payment row."""
        raise NotImplementedError

    def lock_of(self, order: str) -> str | None:
        raise NotImplementedError

    def ledger(self) -> dict[str, tuple[str, str]]:
        """The bridge's own record: intent -> (order key, status)."""
        raise NotImplementedError

    def remove(self, order: str) -> None:
        """The till deletes the order, its lines and its payment rows."""
        raise NotImplementedError


class SqliteFileVenue(Venue):
    """A venue in one SQLite file: read back through the two statements a subclass names."""

    PAYMENT_ROWS = ""
    """(intent, order, paid, tips, status) of every card payment row."""
    LOCK_ID = ""
    """The lock id held on the order given as its one parameter."""
    path: Path

    def lock_target(self) -> tuple[str, ...]:
        return ("control", str(self.path), "--kind", "sqlite")

    def payment_rows(self) -> list[tuple[str, str, int, int, str]]:
        return [(r[0], str(r[1]), r[2], r[3], r[4]) for r in read_only(self.path, self.PAYMENT_ROWS)]

    def lock_of(self, order: str) -> str | None:
        rows = read_only(self.path, self.LOCK_ID, [int(order)])
        return rows[0][0] if rows else None

    LEDGER = ""
    """(intent, order key, status) of every row of the bridge's ledger."""
    REMOVE: tuple[str, ...] = ()
    """The till's statements removing the order given as their one parameter."""

    def ledger(self) -> dict[str, tuple[str, str]]:
        return {r[0]: (str(r[1]), r[2]) for r in read_only(self.path, self.LEDGER)}

    def remove(self, order: str) -> None:
        conn = sqlite3.connect(self.path, timeout=5)
        try:
            with conn:
                conn.execute("PRAGMA foreign_keys = ON")
                for statement in self.REMOVE:
                    conn.execute(statement, [int(order)])
        finally:
            conn.close()


class SqliteVenue(SqliteFileVenue):
    kind = "sqlite"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = folder / "venue.db"
        init_database(self.path, demo=False, now=datetime.now(UTC))
        stamp = format_utc(datetime.now(UTC) - timedelta(minutes=5))
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("INSERT INTO tables (id, name) VALUES ('T1', '1')")
            self.orders = []
            for n, total in enumerate(ORDER_TOTALS, start=1):
                conn.execute(
                    "INSERT INTO orders (id, reference, status, order_type, table_id, currency_code, total_amount,"
                    " created_at, updated_at) VALUES (?, ?, 'Submitted', 'DineIn', 'T1', 'GBP', ?, ?, ?)",
                    [n, f"M-{n}", total, stamp, stamp],
                )
                self.orders.append(str(n))
        finally:
            conn.close()

    def open_adapter(self) -> PosAdapter:
        return sqlite_pos(self.path, busy_timeout_s=BUSY_S)

    PAYMENT_ROWS = (
        "SELECT payment_intent_id, order_id, paid_amount, COALESCE(tips_amount, 0), status FROM payments"
        " WHERE payment_intent_id IS NOT NULL"
    )
    LOCK_ID = "SELECT lock_id FROM order_locks WHERE order_id = ?"
    LEDGER = "SELECT payment_intent_id, order_key, status FROM dojo_payments"
    REMOVE = ("DELETE FROM orders WHERE id = ?",)


class FolderVenue(Venue):
    kind = "jsonfile"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = folder / "pos"
        init_folder(self.path, demo=False, now=datetime.now(UTC))
        stamp = format_utc(datetime.now(UTC) - timedelta(minutes=5))
        (self.path / "tables.json").write_text(json.dumps([{"id": "T1", "name": "1"}]))
        self.orders = []
        for n, total in enumerate(ORDER_TOTALS, start=1):
            document = {"id": str(n), "reference": f"M-{n}", "status": "Submitted",
                        "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}}, "items": [],
                        "currencyCode": "GBP", "totalAmount": total, "createdAt": stamp, "updatedAt": stamp,
                        "payments": [], "lock": None}  # fmt: skip
            (self.path / "orders" / f"{n}.json").write_text(json.dumps(document))
            self.orders.append(str(n))

    def open_adapter(self) -> PosAdapter:
        return jsonfile_pos(self.path, lock_timeout_s=BUSY_S)

    def lock_target(self) -> tuple[str, ...]:
        return ("control", str(self.path), "--kind", "folder")

    def _orders(self) -> list[dict[str, Any]]:
        files = (self.path / "orders" / f"{n}.json" for n in self.orders)
        return [json.loads(f.read_text()) for f in files if f.exists()]

    def ledger(self) -> dict[str, tuple[str, str]]:
        found = {}
        for file in (self.path / "payment_intents").glob("*.json"):
            document = json.loads(file.read_text())
            recorded = document.get("recorded")
            if recorded:
                found[document["paymentIntentId"]] = (str(recorded["orderKey"]), recorded["status"])
        return found

    def remove(self, order: str) -> None:
        with FolderLock(self.path).hold():
            (self.path / "orders" / f"{order}.json").unlink()

    def payment_rows(self) -> list[tuple[str, str, int, int, str]]:
        return [
            (p["paymentIntentId"], o["id"], p["paidAmount"], p.get("tipsAmount") or 0, p["status"])
            for o in self._orders()
            for p in o.get("payments", [])
            if p.get("paymentIntentId")
        ]

    def lock_of(self, order: str) -> str | None:
        document = json.loads((self.path / "orders" / f"{order}.json").read_text())
        lock = document.get("lock")
        return lock["lockId"] if lock else None


class FloreantVenue(SqliteFileVenue):
    """A Floreant-shaped database through the mapped-SQL adapter and the shipped ``floreant`` mapping."""

    kind = "sqlmap"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = folder / "floreant.db"
        create_floreant_database(self.path)
        stamp = floreant_time(datetime.now(UTC) - timedelta(minutes=5))
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("INSERT INTO SHOP_TABLE (NUMBER) VALUES (1)")
            self.orders = []
            for total in ORDER_TOTALS:
                key = conn.execute(
                    "INSERT INTO TICKET (STATUS, TICKET_TYPE, TABLE_NUMBER, TOTAL_PRICE, PAID_AMOUNT, DUE_AMOUNT,"
                    " PAID, VOIDED, SETTLED, CREATE_DATE, MODIFIED_TIME) VALUES ('Submitted', 'DINE_IN', 1, ?, 0, ?,"
                    " 0, 0, 0, ?, ?)",
                    [total / 100, total / 100, stamp, stamp],
                ).lastrowid
                self.orders.append(str(key))
        finally:
            conn.close()

    def open_adapter(self) -> PosAdapter:
        return PosCalls(SqlMapStorage(MappedDatabase(self.path, load_mapping("floreant"), busy_timeout_s=BUSY_S)))

    PAYMENT_ROWS = (
        "SELECT b.PAYMENT_INTENT_ID, tr.TICKET_ID, CAST(ROUND(tr.AMOUNT * 100) AS INTEGER),"
        " CAST(ROUND(COALESCE(tr.ADDITIONAL_AMOUNT, 0) * 100) AS INTEGER), b.STATUS"
        " FROM EPOS_BRIDGE_PAYMENTS b JOIN TRANSACTIONS tr ON tr.ID = b.POS_PAYMENT_ID"
    )
    LOCK_ID = "SELECT LOCK_ID FROM DOJO_TICKET_LOCKS WHERE ORDER_KEY = ?"
    LEDGER = "SELECT PAYMENT_INTENT_ID, ORDER_KEY, STATUS FROM EPOS_BRIDGE_PAYMENTS"
    REMOVE = (
        "DELETE FROM TRANSACTIONS WHERE TICKET_ID = ?",
        "DELETE FROM TICKET_ITEM WHERE TICKET_ID = ?",
        "DELETE FROM TICKET WHERE ID = ?",
    )


class OsposVenue(SqliteFileVenue):
    """An Open Source Point of Sale database through the shipped ``ospos`` mapping: three bills
    suspended at one table; the till "removing" one is OSPOS's own checkout (the bill
    unsuspended and completed under a new sale_id, its payment rows carried by the cart) for the
    first and last, an unsuspend never completed for the middle one."""

    kind = "sqlmap"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = folder / "ospos.db"
        create_ospos_database(self.path)
        self.till = OsposTill(self.path)
        table = self.till._sql("INSERT INTO ospos_dinner_tables (name, status, deleted) VALUES ('1', 0, 0)")
        assert table is not None
        self.orders = [str(self.till.suspend(table, [("MEAL", 1, total)])) for total in ORDER_TOTALS]
        stamp = ospos_time(datetime.now(UTC) - timedelta(minutes=5))
        self.till._sql("UPDATE ospos_sales_suspended SET sale_time = ?", (stamp,))

    def open_adapter(self) -> PosAdapter:
        return PosCalls(SqlMapStorage(MappedDatabase(self.path, load_mapping("ospos"), busy_timeout_s=BUSY_S)))

    PAYMENT_ROWS = (
        "SELECT b.PAYMENT_INTENT_ID, p.sale_id, CAST(ROUND(p.payment_amount * 100) AS INTEGER),"
        " COALESCE(b.TIPS_AMOUNT, 0), b.STATUS FROM EPOS_BRIDGE_PAYMENTS b"
        " JOIN ospos_sales_suspended_payments p ON p.payment_type = 'Dojo:' || b.PAYMENT_INTENT_ID"
        " UNION ALL"
        f" SELECT b.PAYMENT_INTENT_ID, {CLOSED} + p.sale_id, CAST(ROUND(p.payment_amount * 100) AS INTEGER),"
        " COALESCE(b.TIPS_AMOUNT, 0), b.STATUS FROM EPOS_BRIDGE_PAYMENTS b"
        " JOIN ospos_sales_payments p ON p.payment_type = 'Dojo:' || b.PAYMENT_INTENT_ID"
    )
    LOCK_ID = "SELECT LOCK_ID FROM EPOS_BRIDGE_ORDER_LOCKS WHERE ORDER_KEY = ?"
    LEDGER = "SELECT PAYMENT_INTENT_ID, ORDER_KEY, STATUS FROM EPOS_BRIDGE_PAYMENTS"

    def remove(self, order: str) -> None:
        if self.orders.index(order) == 1:
            self.till.unsuspend(int(order))
        else:
            self.till.check_out(int(order))


class ServerVenue(Venue):
    """A venue in a fresh database on the session's server (``server_fixture``), through its till,
    read back through the statements a subclass names (bound as ``:o``)."""

    LOCK_ID = ""
    LEDGER = "SELECT PAYMENT_INTENT_ID, ORDER_KEY, STATUS FROM EPOS_BRIDGE_PAYMENTS"
    HOLD = ""
    """The till's statement saving every open bill at once: the row locks the POS holds."""
    till: OsposMysqlTill | FloreantPgTill

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        assert self.server is not None, "the test hands the machine its server"
        self.server_url = self.server.create_database()

    def close(self) -> None:
        self.till.close()

    def lock_target(self) -> tuple[str, ...]:
        return ("control", "-", "--kind", "server", "--sql", self.HOLD)

    def lock_of(self, order: str) -> str | None:
        rows = self.till._read(self.LOCK_ID, {"o": int(order)})
        return str(rows[0][0]) if rows else None

    def ledger(self) -> dict[str, tuple[str, str]]:
        return {str(r[0]): (str(r[1]), str(r[2])) for r in self.till._read(self.LEDGER)}


class OsposMysqlVenue(ServerVenue):
    """The same three OSPOS bills on a real MariaDB server through the shipped ``ospos_mysql``
    mapping (adapters/sqlmap/server.py)."""

    kind = "sqlmap"
    server_fixture = "mariadb_server"
    LOCK_ID = "SELECT LOCK_ID FROM EPOS_BRIDGE_ORDER_LOCKS WHERE ORDER_KEY = :o"
    # The bridge's serialisable reads of a bill wait for its row lock.
    HOLD = "UPDATE ospos_sales_suspended SET comment = CONCAT(comment, '')"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        assert self.server_url is not None
        create_ospos_mysql_database(self.server_url)
        self.till = till = OsposMysqlTill(self.server_url)
        table = till._sql("INSERT INTO ospos_dinner_tables (name, status, deleted) VALUES ('1', 0, 0)")
        assert table is not None
        self.orders = [str(till.suspend(table, [("MEAL", 1, total)])) for total in ORDER_TOTALS]
        stamp = ospos_time(datetime.now(UTC) - timedelta(minutes=5))
        till._sql("UPDATE ospos_sales_suspended SET sale_time = :t", {"t": stamp})

    def open_adapter(self) -> PosAdapter:
        assert self.server_url is not None
        return PosCalls(ospos_mysql_storage(self.server_url))

    def payment_rows(self) -> list[tuple[str, str, int, int, str]]:
        # Matched in Python, byte for byte: OSPOS's own columns compare case-insensitively.
        ledger = {
            str(intent): (int(tips or 0), str(status))
            for intent, tips, status in self.till._read(
                "SELECT PAYMENT_INTENT_ID, TIPS_AMOUNT, STATUS FROM EPOS_BRIDGE_PAYMENTS"
            )
        }
        rows = []
        for offset, table in ((0, "ospos_sales_suspended_payments"), (CLOSED, "ospos_sales_payments")):
            for sale_id, kind, amount in self.till._read(f"SELECT sale_id, payment_type, payment_amount FROM {table}"):
                intent = str(kind).removeprefix("Dojo:")
                if str(kind).startswith("Dojo:") and intent in ledger:
                    tips, status = ledger[intent]
                    rows.append((intent, str(offset + sale_id), round(amount * 100), tips, status))
        return rows

    remove = OsposVenue.remove


class FloreantPgVenue(ServerVenue):
    """Three Floreant tickets on a real PostgreSQL server through the shipped ``floreant_pg``
    mapping; the locks as a till reads them, in the mapping's ``lock_view``."""

    kind = "sqlmap"
    server_fixture = "postgresql_server"
    LOCK_ID = "SELECT LOCK_ID FROM DOJO_TICKET_LOCKS WHERE ORDER_KEY = :o"
    # PostgreSQL's readers never wait; the bridge's update of the ticket's paid and due columns does.
    HOLD = "UPDATE TICKET SET MODIFIED_TIME = MODIFIED_TIME"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        assert self.server_url is not None
        create_floreant_pg_database(self.server_url)
        self.till = till = FloreantPgTill(self.server_url)
        till._sql("INSERT INTO SHOP_TABLE (NUMBER, X, Y) VALUES (1, 0, 0)")
        till.table_numbers["T1"] = 1
        self.orders = [till.add_open_order("T1", total, "GBP") for total in ORDER_TOTALS]
        stamp = floreant_pg_time(datetime.now(UTC) - timedelta(minutes=5))
        till._sql("UPDATE TICKET SET CREATE_DATE = :t, MODIFIED_TIME = :t", {"t": stamp})

    def open_adapter(self) -> PosAdapter:
        assert self.server_url is not None
        return PosCalls(floreant_pg_storage(self.server_url))

    def payment_rows(self) -> list[tuple[str, str, int, int, str]]:
        rows = self.till._read(
            "SELECT b.PAYMENT_INTENT_ID, tr.TICKET_ID, CAST(ROUND(tr.AMOUNT * 100) AS INTEGER),"
            " CAST(ROUND(COALESCE(tr.ADDITIONAL_AMOUNT, 0) * 100) AS INTEGER), b.STATUS"
            " FROM EPOS_BRIDGE_PAYMENTS b JOIN TRANSACTIONS tr ON tr.ID = b.POS_PAYMENT_ID"
        )
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]

    def remove(self, order: str) -> None:
        self.till.remove_order(order)


class MoneyMachine(RuleBasedStateMachine):
    venue_kind: type[Venue] = SqliteVenue

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="epos-model-"))
        self.venue = self.venue_kind(self.tmp)
        self.ids = itertools.count(1)
        self.intents: dict[str, Intent] = {}
        self.events: dict[str, Events] = {}
        self.sent: list[Sent] = []
        self.params_of_id: dict[str, dict[str, Any]] = {}
        """The params each request id was last sent with (an id may be reused for others)."""
        self.abandoned: list[Sent] = []
        self.locks: dict[str, tuple[str, float]] = {}  # order -> (lock id, expiry as Unix s)
        self.removed: set[str] = set()
        """Orders the till removed: Dojo's payments on them live on only in the bridge's ledger."""
        self.pos: PosProcess | None = None
        self.pos_holds = False
        self.adapter: PosAdapter | None = None
        self.store: IdempotencyStore | None = None
        self.serve: IdempotentServe | None = None
        self.loop.run_until_complete(self._open())

    # --- plumbing --------------------------------------------------------------------------------

    async def _open(self) -> None:
        self.adapter = self.venue.open_adapter()
        self.store = IdempotencyStore(self.tmp / "state.db")
        await self.store.open()
        self.dispatcher = Dispatcher(self.adapter, deadline_s=DEADLINE_S)
        self.serve = IdempotentServe(self.store, self.dispatcher.handle)

    async def _close(self) -> None:
        assert self.serve is not None and self.store is not None and self.adapter is not None
        await self.dispatcher.drain()
        await self.serve.flush()
        await self.store.close()
        await self.adapter.close()

    def teardown(self) -> None:
        try:
            if self.pos is not None:
                self.loop.run_until_complete(self.pos.finish())
            self.loop.run_until_complete(self._close())
        finally:
            self.venue.close()
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def step(self) -> None:
        STEPS_RUN[0] += 1

    async def _send(self, request_id: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.serve is not None
        frame = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        served = await self.serve(frame)
        assert served is not None
        answer: dict[str, Any] = json.loads(served.response_text)
        assert answer["id"] == request_id
        assert_valid_response(method, answer)
        return answer

    def call(self, request_id: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.step()
        return self.loop.run_until_complete(asyncio.wait_for(self._send(request_id, method, params), 30))

    def new_id(self, prefix: str = "r") -> str:
        return f"{prefix}{next(self.ids)}"

    def payment(self, order: str, intent: str, amount: int, tips: int, lock_id: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"headers": HEADERS, "orderId": order, "paymentIntentId": intent,
                                  "paidAmount": {"value": amount, "currencyCode": "GBP"}}  # fmt: skip
        if tips:
            params["tipsAmount"] = {"value": tips, "currencyCode": "GBP"}
        if lock_id:
            params["lockId"] = lock_id
        return params

    def tell(self, intent: str, answer: dict[str, Any]) -> None:
        """Dojo acts on the latest answer it got for a payment."""
        self.intents[intent].told = "ok" if "result" in answer else "error"

    # --- payments --------------------------------------------------------------------------------

    @rule(order=st.integers(0, 2), amount=st.sampled_from([1, 100, 499, 1000, 2600]), tips=st.sampled_from([0, 0, 50]),
          with_lock=st.booleans())  # fmt: skip
    def pay_new(self, order: int, amount: int, tips: int, with_lock: bool) -> None:
        order_id = self.venue.orders[order]
        intent = self.new_id("pi_")
        lock_id = self.locks.get(order_id, (None, 0.0))[0] if with_lock else None
        params = self.payment(order_id, intent, amount, tips, lock_id)
        self.intents[intent] = Intent(order_id, amount, tips, "unknown")
        sent = Sent(self.new_id(), "RecordOrderPaymentByIdV1", params, None)
        sent.answer = self.call(sent.request_id, sent.method, params)
        self.params_of_id[sent.request_id] = params
        self.sent.append(sent)
        self.tell(intent, sent.answer)

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(0, 10**6))
    def replay_same_request(self, pick: int) -> None:
        """Dojo never saw the answer: the same id and params again."""
        sent = self.sent[pick % len(self.sent)]
        reused = self.params_of_id.get(sent.request_id) != sent.params
        answer = self.call(sent.request_id, sent.method, sent.params)
        self.params_of_id[sent.request_id] = sent.params
        if sent.answer is not None and "result" in sent.answer and not reused:
            assert answer == sent.answer, "a stored success is replayed as it was"
        sent.answer = answer
        self.tell(sent.params["paymentIntentId"], answer)

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(0, 10**6), order=st.integers(0, 2), amount=st.sampled_from([1, 300]))
    def reuse_id_for_another_payment(self, pick: int, order: int, amount: int) -> None:
        sent = self.sent[pick % len(self.sent)]
        intent = self.new_id("pi_")
        order_id = self.venue.orders[order]
        params = self.payment(order_id, intent, amount, 0, None)
        self.intents[intent] = Intent(order_id, amount, 0, "unknown")
        reused = Sent(sent.request_id, sent.method, params, None)
        reused.answer = self.call(reused.request_id, reused.method, params)
        self.params_of_id[reused.request_id] = params
        self.sent.append(reused)
        self.tell(intent, reused.answer)

    @precondition(lambda self: bool(self.intents))
    @rule(pick=st.integers(0, 10**6), order=st.integers(0, 2), amount=st.sampled_from([None, 1, 777]))
    def resend_a_recorded_intent(self, pick: int, order: int, amount: int | None) -> None:
        """Same paymentIntentId under a new request id: always success, never a second row."""
        recorded = sorted(i for i, v in self.intents.items() if v.told == "ok")
        if not recorded:
            return  # whether one landed depends on timing; the draw above must not
        intent = recorded[pick % len(recorded)]
        known = self.intents[intent]
        order_id = self.venue.orders[order]
        answer = self.call(self.new_id(), "RecordOrderPaymentByIdV1",
                           self.payment(order_id, intent, amount or known.amount, 0, None))  # fmt: skip
        assert "result" in answer, f"a recorded payment was answered {answer['error']}: Dojo would reverse it"
        assert answer["result"]["id"] == order_id

    @rule(order=st.integers(0, 2), amount=st.sampled_from([100, 400]), after_ms=st.integers(0, 8))
    def abandon_a_payment(self, order: int, amount: int, after_ms: int) -> None:
        """The link drops while the payment is being served: no answer reaches Dojo."""
        order_id = self.venue.orders[order]
        intent = self.new_id("pi_")
        self.intents[intent] = Intent(order_id, amount, 0, "unknown")
        sent = Sent(self.new_id(), "RecordOrderPaymentByIdV1", self.payment(order_id, intent, amount, 0, None), None)
        self.step()

        async def start_then_drop() -> None:
            task = asyncio.ensure_future(self._send(sent.request_id, sent.method, sent.params))
            await asyncio.sleep(after_ms / 1000)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # The work under a dropped request goes on and may still commit; the model only
            # needs it finished (its answer never reached Dojo either way).
            await self.dispatcher.drain()

        self.loop.run_until_complete(start_then_drop())
        self.params_of_id[sent.request_id] = sent.params
        self.abandoned.append(sent)

    @precondition(lambda self: bool(self.abandoned))
    @rule(pick=st.integers(0, 10**6), same_id=st.booleans())
    def retry_an_abandoned_payment(self, pick: int, same_id: bool) -> None:
        sent = self.abandoned[pick % len(self.abandoned)]
        self.abandoned.remove(sent)
        request_id = sent.request_id if same_id else self.new_id()
        sent.answer = self.call(request_id, sent.method, sent.params)
        self.params_of_id[request_id] = sent.params
        self.sent.append(Sent(request_id, sent.method, sent.params, sent.answer))
        self.tell(sent.params["paymentIntentId"], sent.answer)

    # --- locks ------------------------------------------------------------------------------------

    @rule(order=st.integers(0, 2), expiry_s=st.sampled_from([-30, -1, 2, 60, 600]))
    def lock(self, order: int, expiry_s: int) -> None:
        order_id = self.venue.orders[order]
        lock_id = self.new_id("lock-")
        if order_id in self.removed:
            answer = self.call(self.new_id(), "CreateOrderLockV1", {"headers": HEADERS, "orderId": order_id,
                               "lockId": lock_id, "expiry": format_utc(datetime.now(UTC) + timedelta(minutes=1))})  # fmt: skip
            busy = ("UnexpectedError",) if self.pos_holds else ()  # the POS holds its lock: nothing was written
            assert answer["error"]["errorType"] in ("NotFound", "Conflict", *busy), "a removed order cannot be locked"
            return
        before = self.venue.lock_of(order_id)
        expiry = datetime.now(UTC) + timedelta(seconds=expiry_s)
        answer = self.call(self.new_id(), "CreateOrderLockV1",
                           {"headers": HEADERS, "orderId": order_id, "lockId": lock_id, "expiry": format_utc(expiry)})  # fmt: skip
        if "result" in answer:
            assert self.venue.lock_of(order_id) == lock_id, "a lock answered as taken is stored"
            self.locks[order_id] = (lock_id, expiry.timestamp())
        else:
            assert self.venue.lock_of(order_id) == before, "a refused lock changed nothing"

    @rule(order=st.integers(0, 2), expiry_s=st.sampled_from([-5, 3, 300]))
    def extend(self, order: int, expiry_s: int) -> None:
        order_id = self.venue.orders[order]
        if order_id not in self.locks or order_id in self.removed:
            return
        lock_id, _ = self.locks[order_id]
        expiry = datetime.now(UTC) + timedelta(seconds=expiry_s)
        answer = self.call(self.new_id(), "ExtendOrderLockV1",
                           {"headers": HEADERS, "orderId": order_id, "lockId": lock_id, "expiry": format_utc(expiry)})  # fmt: skip
        if "result" in answer:
            assert self.venue.lock_of(order_id) == lock_id
            self.locks[order_id] = (lock_id, expiry.timestamp())

    @rule(order=st.integers(0, 2))
    def unlock(self, order: int) -> None:
        order_id = self.venue.orders[order]
        if order_id not in self.locks or order_id in self.removed:
            return
        lock_id, _ = self.locks[order_id]
        answer = self.call(
            self.new_id(), "DeleteOrderLockV1", {"headers": HEADERS, "orderId": order_id, "lockId": lock_id}
        )
        if "result" in answer:
            assert self.venue.lock_of(order_id) != lock_id, "a lock answered as released is gone"
            del self.locks[order_id]

    @precondition(lambda self: not self.pos_holds)
    @rule(order=st.integers(0, 2))
    def an_order_that_owes_can_be_locked_and_paid(self, order: int) -> None:
        order_id = self.venue.orders[order]
        if order_id in self.removed:
            return
        got = self.call(self.new_id(), "GetOrderByIdV1", {"headers": HEADERS, "orderId": order_id})
        result = got["result"]
        owes = result["totalAmount"]["value"] - result["paidAmount"]["value"]
        assert result["payable"] == (owes > 0)
        held = self.locks.get(order_id)
        if owes <= 0 or (held is not None and held[1] > time.time() - 1):
            return
        lock_id = self.new_id("probe-")
        expiry = format_utc(datetime.now(UTC) + timedelta(minutes=5))
        locked = self.call(self.new_id(), "CreateOrderLockV1",
                           {"headers": HEADERS, "orderId": order_id, "lockId": lock_id, "expiry": expiry})  # fmt: skip
        assert "result" in locked, f"an order that owes could not be locked: {locked['error']}"
        intent = self.new_id("pi_")
        self.intents[intent] = Intent(order_id, 1, 0, "unknown")
        paid = self.call(self.new_id(), "RecordOrderPaymentByIdV1", self.payment(order_id, intent, 1, 0, lock_id))
        assert "result" in paid, f"an order that owes could not take a payment: {paid['error']}"
        self.tell(intent, paid)
        released = self.call(
            self.new_id(), "DeleteOrderLockV1", {"headers": HEADERS, "orderId": order_id, "lockId": lock_id}
        )
        assert "result" in released
        self.locks.pop(order_id, None)

    # --- payment-intent events -------------------------------------------------------------------

    @precondition(lambda self: bool(self.intents))
    @rule(pick=st.integers(0, 10**6), status=st.sampled_from(["Captured", "Reversed", "Refunded", "Canceled", "Authorized"]),
          offset=st.integers(-600, 600), redeliver=st.booleans())  # fmt: skip
    def payment_intent_event(self, pick: int, status: str, offset: int, redeliver: bool) -> None:
        names = sorted(self.intents)
        intent = names[pick % len(names)]
        log = self.events.setdefault(intent, Events())
        fresh = not (redeliver and log.sent)
        if not fresh:
            offset, status, event_id = log.sent[pick % len(log.sent)]
        else:
            if any(o == offset for o, _, _ in log.sent):
                return  # equal createdAt would leave "newest" to the arrival order
            event_id = self.new_id("evt-")
            log.sent.append((offset, status, event_id))
        created = datetime(2026, 12, 1, 12, tzinfo=UTC) + timedelta(seconds=offset)
        answer = self.call(self.new_id(), "HandleEventV1", {"headers": {}, "id": event_id, "accountId": "acc",
                                                            "event": "payment_intent.status_updated",
                                                            "createdAt": format_utc(created),
                                                            "data": {"paymentIntentId": intent, "paymentStatus": status,
                                                                     "captureMode": "Auto"}})  # fmt: skip
        if "error" in answer:
            assert answer["error"]["errorType"] == "UnexpectedError", answer  # the POS was busy
            if fresh:
                log.sent.remove((offset, status, event_id))  # not stored: Dojo delivers it again later

    # --- faults -------------------------------------------------------------------------------------

    @precondition(lambda self: not self.pos_holds)
    @rule()
    def pos_takes_the_write_lock(self) -> None:
        async def hold() -> None:
            if self.pos is None:
                self.pos = await PosProcess.start(*self.venue.lock_target(), server_url=self.venue.server_url)
            await self.pos.send("hold")
            await self.pos.expect("LOCKED")

        self.loop.run_until_complete(hold())
        self.pos_holds = True

    @precondition(lambda self: self.pos_holds)
    @rule()
    def pos_lets_go(self) -> None:
        async def release() -> None:
            assert self.pos is not None
            await self.pos.send("release")
            await self.pos.expect("RELEASED")

        self.loop.run_until_complete(release())
        self.pos_holds = False

    @precondition(lambda self: not self.pos_holds and len(self.removed) < 2)
    @rule(order=st.integers(0, 2))
    def the_till_removes_an_order(self, order: int) -> None:
        """Checked out elsewhere or purged, with its payment rows; Dojo may still retry them."""
        order_id = self.venue.orders[order]
        if order_id not in self.removed:
            self.step()
            self.venue.remove(order_id)
            self.removed.add(order_id)
            self.locks.pop(order_id, None)

    @rule()
    def bridge_restarts(self) -> None:
        self.step()
        self.loop.run_until_complete(self._close())
        self.loop.run_until_complete(self._open())

    # --- what must always hold ---------------------------------------------------------------------

    @invariant()
    def every_answer_agrees_with_the_database(self) -> None:
        if self.adapter is None:
            return
        rows = self.venue.payment_rows()
        counts: dict[str, int] = {}
        for intent, *_ in rows:
            counts[intent] = counts.get(intent, 0) + 1
        assert all(n == 1 for n in counts.values()), f"a payment was recorded twice: {counts}"
        ledger = self.venue.ledger()
        for intent, known in self.intents.items():
            # On a removed order the till's rows are gone; the bridge's ledger must still hold it.
            there = int(intent in ledger) if known.order in self.removed else counts.get(intent, 0)
            if known.told == "ok":
                assert there == 1, f"{intent} was answered success but is not on the till"
            elif known.told == "error":
                assert there == 0, f"{intent} was answered an error but is on the till: Dojo reversed it"

    @invariant()
    def a_payment_has_the_newest_status_its_events_gave(self) -> None:
        if self.adapter is None:
            return
        stored = [(intent, status) for intent, _order, _paid, _tips, status in self.venue.payment_rows()]
        stored += [(intent, status) for intent, (_key, status) in self.venue.ledger().items()]
        for intent, status in stored:
            newest = self.events.get(intent, Events()).newest()
            if newest is not None:
                assert status == newest, f"{intent}: stored {status}, newest event said {newest}"

    @invariant()
    def every_order_reads_and_adds_up(self) -> None:
        if self.adapter is None or (self.pos_holds and self.venue.kind == "jsonfile"):
            return  # a file database's readers wait for the folder lock; SQLite's (WAL) never do
        rows = self.venue.payment_rows()
        for order_id, total in zip(self.venue.orders, ORDER_TOTALS, strict=True):
            got = self.call(self.new_id(), "GetOrderByIdV1", {"headers": HEADERS, "orderId": order_id})
            if order_id in self.removed:
                paid_by_dojo = any(k.order == order_id and k.told == "ok" for k in self.intents.values())
                if "result" in got:
                    assert got["result"]["payable"] is False, "a removed order is never payable"
                else:
                    assert got["error"]["errorType"] == "NotFound" and not paid_by_dojo, got["error"]
                continue
            assert "result" in got, f"order {order_id} could not be read: {got['error']}"
            order = got["result"]
            counting = [(paid, tips) for _, o, paid, tips, status in rows if o == order_id and status in COUNTING]
            paid = sum(p for p, _ in counting)
            assert order["paidAmount"]["value"] == paid
            assert order["tipsAmount"]["value"] == sum(t for _, t in counting)
            assert order["payable"] == (paid < total)


class FolderMoneyMachine(MoneyMachine):
    venue_kind = FolderVenue


class FloreantMoneyMachine(MoneyMachine):
    venue_kind = FloreantVenue


MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.generate, Phase.target, Phase.shrink],
    database=None,
)


class OsposMoneyMachine(MoneyMachine):
    venue_kind = OsposVenue


class OsposMysqlMoneyMachine(MoneyMachine):
    venue_kind = OsposMysqlVenue


class FloreantPgMoneyMachine(MoneyMachine):
    venue_kind = FloreantPgVenue


MACHINES = (
    MoneyMachine,
    FolderMoneyMachine,
    FloreantMoneyMachine,
    OsposMoneyMachine,
    OsposMysqlMoneyMachine,
    FloreantPgMoneyMachine,
)
MACHINE_IDS = [
    "sqlite",
    "jsonfile",
    "sqlmap-floreant",
    "sqlmap-ospos",
    "sqlmap-ospos-mariadb",
    "sqlmap-floreant-postgresql",
]


@pytest.mark.logs_warnings("reused ids and differing replays are logged")
@pytest.mark.slow
@pytest.mark.timeout(900 + SOAK_MINUTES * 60)
@pytest.mark.parametrize("machine", MACHINES, ids=MACHINE_IDS)
def test_what_dojo_is_told_is_what_the_till_holds(request: pytest.FixtureRequest, machine: type[MoneyMachine]) -> None:
    venue = machine.venue_kind
    budget = MODEL_SETTINGS
    if venue.server_fixture is not None:
        venue.server = request.getfixturevalue(venue.server_fixture)
        budget = settings(MODEL_SETTINGS, max_examples=SERVER_EXAMPLES)
    if SOAK_MINUTES > 0:
        until = time.monotonic() + SOAK_MINUTES * 60 / len(MACHINES)  # the soak's minutes, shared
        rounds = 0
        while time.monotonic() < until:
            run_state_machine_as_test(machine, settings=MODEL_SETTINGS)
            rounds += 1
        print(f"\n{machine.__name__}: {rounds} rounds, {STEPS_RUN[0]} steps in total without a counterexample")
        return
    run_state_machine_as_test(machine, settings=budget)
    print(f"\n{machine.__name__}: {STEPS_RUN[0]} steps in total without a counterexample")


@pytest.mark.logs_warnings("reused ids and differing replays are logged")
def test_the_model_machine_can_find_a_disagreement() -> None:
    """The invariant is not a tautology: a database that loses an answered payment is caught."""

    class Forgetful(MoneyMachine):
        @precondition(lambda self: not self.pos_holds)
        @rule()
        def the_pos_loses_a_payment(self) -> None:
            if isinstance(self.venue, SqliteVenue) and any(i.told == "ok" for i in self.intents.values()):
                conn = sqlite3.connect(self.venue.path)
                with conn:
                    conn.execute("DELETE FROM payments WHERE id = (SELECT MAX(id) FROM payments)")
                conn.close()

    with pytest.raises(AssertionError, match="not on the till"):
        run_state_machine_as_test(
            Forgetful,
            settings=settings(MODEL_SETTINGS, max_examples=40, phases=[Phase.generate], stateful_step_count=30),
        )
