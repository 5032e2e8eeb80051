"""The shipped adapter contract suite (epos_bridge.testing.contract_suite) against the built-in adapters.

Each adapter gets a seeder that acts as its POS: SQL on the reference file for SQLite, locked
atomic file writes for the file database (the way docs/file-database.md tells a POS to write).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.jsonfile import FolderLock, write_json_atomic
from epos_bridge.adapters.jsonfile.adapter import JsonFileStorage
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.sqlite import writes
from epos_bridge.adapters.sqlite.adapter import SqliteStorage
from epos_bridge.adapters.sqlite.schema import migrate
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.ports import PosStorage
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import Area, Table
from epos_bridge.testing.contract_suite import (
    AdapterContract,
    Seeder,
    StandardVenue,
)
from tests.helpers.db_servers import (  # noqa: F401 - fixtures, found by name
    mariadb_server,
    mariadb_url,
    postgresql_server,
    postgresql_url,
)
from tests.helpers.floreant import FloreantTill, floreant
from tests.helpers.floreant_pg import FloreantPgTill, floreant_pg_storage
from tests.helpers.ospos import OsposTill, ospos
from tests.helpers.ospos_mysql import OsposMysqlTill, ospos_mysql_storage


class SqliteSeeder:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _sql(self, statement: str, args: list[Any] | tuple[Any, ...] = ()) -> int | None:
        with closing(sqlite3.connect(self.path, timeout=5)) as conn:
            cursor = conn.execute(statement, list(args))
            conn.commit()
            return cursor.lastrowid

    def seed(self, venue: StandardVenue) -> None:
        import sqlite_utils

        db = sqlite_utils.Database(self.path)
        migrate(db)
        details = VenueDetails(
            name=venue.name,
            address_lines=venue.address_lines,
            postcode=venue.postcode,
            vat_number=venue.vat_number,
            footer_text=venue.footer_text,
        )
        writes.insert_venue(db, details, venue.currency)
        writes.insert_floor(
            db,
            [Area(id=a.id, name=a.name, waiter_ids=list(a.waiter_ids)) for a in venue.areas],
            [
                Table(id=t.id, name=t.name, max_covers=t.max_covers, area_id=t.area_id, waiter_ids=list(t.waiter_ids))
                for t in venue.tables
            ],
        )
        db.conn.close()

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        now = format_utc(datetime.now(UTC))
        key = self._sql(
            "INSERT INTO orders (table_id, currency_code, total_amount, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (table_id, currency, total_value, now, now),
        )
        self._sql(
            "INSERT INTO order_items (order_id, name, plu, quantity, amount_per_item) VALUES (?, 'Meal', 'MEAL', 1, ?)",
            (key, total_value),
        )
        return str(key)

    def set_order_status(self, order_id: str, status: str) -> None:
        self._sql("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?", (status, _now(), order_id))

    def open_order_at_till(self, order_id: str, till: str) -> None:
        self._sql("UPDATE orders SET open_at_till = ?, updated_at = ? WHERE id = ?", (till, _now(), order_id))

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._sql("UPDATE orders SET updated_at = ? WHERE id = ?", (format_utc(moment), order_id))

    def remove_order(self, order_id: str) -> None:
        """With the schema's cascades on, as a POS that enforces its foreign keys would delete it."""
        with closing(sqlite3.connect(self.path, timeout=5)) as conn:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("DELETE FROM orders WHERE id = ?", [order_id])
            conn.commit()
        assert self._count("SELECT COUNT(*) FROM payments WHERE order_id = ?", order_id) == 0

    def _count(self, statement: str, *args: Any) -> int:
        with closing(sqlite3.connect(self.path, timeout=5)) as conn:
            return int(conn.execute(statement, list(args)).fetchone()[0])


class JsonFileSeeder:
    """Acts as a POS that keeps its data in the folder: every edit under the lock, atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = FolderLock(path)

    def seed(self, venue: StandardVenue) -> None:
        init_folder(self.path, demo=False, now=datetime.now(UTC))
        with self.lock.hold():
            write_json_atomic(
                self.path / "venue.json",
                {
                    "name": venue.name,
                    "addressLines": list(venue.address_lines),
                    "postcode": venue.postcode,
                    "vatNumber": venue.vat_number,
                    "footerText": venue.footer_text,
                    "currencyCode": venue.currency,
                },
            )
            write_json_atomic(
                self.path / "areas.json",
                [{"id": a.id, "name": a.name, "waiterIds": list(a.waiter_ids)} for a in venue.areas],
            )
            write_json_atomic(
                self.path / "tables.json",
                [
                    {
                        "id": t.id,
                        "name": t.name,
                        "areaId": t.area_id,
                        "maxCovers": t.max_covers,
                        "waiterIds": list(t.waiter_ids),
                    }
                    for t in venue.tables
                ],
            )

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        with self.lock.hold():
            sequences_path = self.path / "sequences.json"
            sequences = json.loads(sequences_path.read_text()) if sequences_path.exists() else {}
            existing = [int(p.stem) for p in (self.path / "orders").glob("*.json")]
            key = max(int(sequences.get("orders", 1)), max(existing, default=0) + 1)
            now = _now()
            write_json_atomic(
                self.path / "orders" / f"{key}.json",
                {
                    "id": str(key),
                    "status": "New",
                    "details": {"orderType": "DineIn", "dineIn": {"tableId": table_id}},
                    "items": [
                        {
                            "name": "Meal",
                            "plu": "MEAL",
                            "quantity": 1,
                            "amountPerItem": {"value": total_value, "currencyCode": currency},
                        }
                    ],
                    "currencyCode": currency,
                    "totalAmount": total_value,
                    "createdAt": now,
                    "updatedAt": now,
                    "payments": [],
                },
            )
            write_json_atomic(sequences_path, {**sequences, "orders": key + 1})
        return str(key)

    def _edit(self, order_id: str, change: dict[str, Any]) -> None:
        with self.lock.hold():
            path = self.path / "orders" / f"{order_id}.json"
            write_json_atomic(path, {**json.loads(path.read_text()), **change})

    def set_order_status(self, order_id: str, status: str) -> None:
        self._edit(order_id, {"status": status, "updatedAt": _now()})

    def open_order_at_till(self, order_id: str, till: str) -> None:
        self._edit(order_id, {"openAtTill": till, "updatedAt": _now()})

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._edit(order_id, {"updatedAt": format_utc(moment)})

    def remove_order(self, order_id: str) -> None:
        with self.lock.hold():
            (self.path / "orders" / f"{order_id}.json").unlink()


def _now() -> str:
    return format_utc(datetime.now(UTC))


class TestSqliteAdapterContract(AdapterContract):
    @pytest.fixture
    def epos_venue_seeder(self, tmp_path: Path) -> Seeder:
        return SqliteSeeder(tmp_path / "pos.db")

    @pytest.fixture
    def epos_adapter_factory(self, tmp_path: Path) -> Callable[[], PosStorage]:
        return lambda: SqliteStorage.open(tmp_path / "pos.db")


class TestJsonFileAdapterContract(AdapterContract):
    @pytest.fixture
    def epos_venue_seeder(self, tmp_path: Path) -> Seeder:
        return JsonFileSeeder(tmp_path / "pos")

    @pytest.fixture
    def epos_adapter_factory(self, tmp_path: Path) -> Callable[[], PosStorage]:
        return lambda: JsonFileStorage.open(tmp_path / "pos")


class TestSqlMapFloreantContract(AdapterContract):
    """The mapped-SQL adapter over a Floreant-shaped database, through the shipped ``floreant`` mapping."""

    @pytest.fixture
    def epos_venue_seeder(self, tmp_path: Path) -> Seeder:
        return FloreantTill(tmp_path / "floreant.db")

    @pytest.fixture
    def epos_adapter_factory(self, tmp_path: Path) -> Callable[[], PosStorage]:
        return lambda: SqlMapStorage.open(tmp_path / "floreant.db", floreant())


class TestSqlMapOsposContract(AdapterContract):
    """The mapped-SQL adapter over an Open Source Point of Sale database, through the shipped
    ``ospos`` mapping: open bills apart from completed sales, a checkout re-keying the bill."""

    @pytest.fixture
    def epos_venue_seeder(self, tmp_path: Path) -> Seeder:
        return OsposTill(tmp_path / "ospos.db")

    @pytest.fixture
    def epos_adapter_factory(self, tmp_path: Path) -> Callable[[], PosStorage]:
        return lambda: SqlMapStorage.open(tmp_path / "ospos.db", ospos())


class TestSqlMapOsposMysqlContract(AdapterContract):
    """The same Open Source Point of Sale on a real MariaDB server, through the shipped
    ``ospos_mysql`` mapping: the engine layer (adapters/sqlmap/server.py) under every contract."""

    @pytest.fixture
    def epos_venue_seeder(self, mariadb_url: str) -> Iterator[Seeder]:  # noqa: F811 - the fixture
        till = OsposMysqlTill(mariadb_url)
        try:
            yield till
        finally:
            till.close()

    @pytest.fixture
    def epos_adapter_factory(self, mariadb_url: str) -> Callable[[], PosStorage]:  # noqa: F811 - the fixture
        return lambda: ospos_mysql_storage(mariadb_url)


class TestSqlMapFloreantPgContract(AdapterContract):
    """The same Floreant POS on a real PostgreSQL server, through the shipped ``floreant_pg``
    mapping: the engine layer (adapters/sqlmap/server.py) on PostgreSQL under every contract."""

    @pytest.fixture
    def epos_venue_seeder(self, postgresql_url: str) -> Iterator[Seeder]:  # noqa: F811 - the fixture
        till = FloreantPgTill(postgresql_url)
        try:
            yield till
        finally:
            till.close()

    @pytest.fixture
    def epos_adapter_factory(self, postgresql_url: str) -> Callable[[], PosStorage]:  # noqa: F811 - the fixture
        return lambda: floreant_pg_storage(postgresql_url)
