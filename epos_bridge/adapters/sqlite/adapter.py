"""The reference SQLite POS storage: every capability, stored in the venue's own file.

Storage only (:class:`epos_bridge.ports.PosStorage`): ``services/pos_calls`` runs each call and
``domain/`` decides; this module reads the reference schema's rows (:mod:`.rows`), stores what
was decided (:mod:`.writes`), and pages searches in the database. Read-modify-write always runs
under ``BEGIN IMMEDIATE`` (:mod:`epos_bridge.adapters.sqlitedb`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlite_utils

from epos_bridge.adapters.kept_rows import KeptChangeLog, KeptRows
from epos_bridge.adapters.sqlite import rows, writes
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.adapters.sqlite.schema import KEPT
from epos_bridge.adapters.transactional import RowStorage, last_known
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import PartyFilter, PartyRecord, ReservationFilter, ReservationRecord
from epos_bridge.domain.orders import OrderFilter, OrderRecord, PaymentRecord, StoredPayment
from epos_bridge.domain.pagination import Page, PageRequest
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.domain.records import StoredRecord
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import PosOrder
from epos_bridge.protocol.entities import Area, Order, OrderStatus, Party, Reservation, Table

B = TypeVar("B")
R = TypeVar("R", bound=PartyRecord | ReservationRecord)
F = TypeVar("F")


class SqliteStorage(RowStorage[sqlite_utils.Database]):
    """Implements :class:`epos_bridge.ports.PosStorage` over the reference schema."""

    def __init__(self, database: PosDatabase) -> None:
        super().__init__(database, SqliteRows)
        self._db = database

    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float = 5.0) -> SqliteStorage:
        return cls(PosDatabase(path, busy_timeout_s=busy_timeout_s))

    @property
    def changes(self) -> KeptChangeLog:
        """The change log the POS-event relay reads (ports.ChangeSource)."""
        return KeptChangeLog(self._db, KEPT)

    async def check_writable(self) -> None:
        """A real, harmless write (the schema version rewritten as it is): raises PosUnavailable
        for a read-only database. Used by ``doctor``; taking the write lock alone writes nothing."""

        def work(db: sqlite_utils.Database) -> None:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute(f"PRAGMA user_version = {version}")

        await self._db.write(work)


class SqliteRows(KeptRows):
    """One transaction's :class:`epos_bridge.ports.PosRows` over the reference schema."""

    db: sqlite_utils.Database
    """The reference schema is SQLite only: its row code may use all of ``sqlite_utils``."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        super().__init__(db, KEPT)
        self.parties: _Bookings[PartyRecord, Party, PartyFilter] = _Bookings(
            db, "parties", rows.party_conditions, rows.load_parties
        )
        self.reservations: _Bookings[ReservationRecord, Reservation, ReservationFilter] = _Bookings(
            db, "reservations", rows.reservation_conditions, rows.load_reservations
        )

    # --- orders ---------------------------------------------------------------------------

    def order(self, order_id: str) -> PosOrder:
        row = rows.order_row(self.db, order_id)
        return PosOrder(
            key=row["id"],
            order_id=order_id,
            status=OrderStatus(row["status"]),
            currency=row["currency_code"],
            total_value=row["total_amount"],
            updated_at=rows.parse_time(row["updated_at"], f"updatedAt of order {row['id']}"),
            open_at_till=row["open_at_till"],
            facts=rows.order_facts(row),
        )

    def payments(self, order: PosOrder) -> tuple[StoredPayment, ...]:
        return rows.stored_payments(self.db, order.key)

    def follow_order(self, registered: RegisteredOrder) -> PosOrder | None:
        """The reference schema's orders keep their key: only the key the bridge last found it at."""
        return last_known(self, registered)

    def answer_order(self, key: int) -> Order:
        return rows.load_orders(self.db, [key])[0]

    def search_orders(self, wanted: OrderFilter, page: PageRequest) -> Page[Order]:
        return _keyset(self.db, "orders", rows.order_conditions(wanted), page, rows.load_orders)

    def order_of_dojo_id(self, dojo_order_id: str) -> StoredRecord[int] | None:
        return rows.record_by_dojo_id(self.db, "orders", dojo_order_id)

    def insert_order(self, order: OrderRecord) -> int:
        return writes.insert_order(self.db, order)

    def cancel_order(self, order: PosOrder, now: datetime) -> None:
        writes.cancel_order(self.db, order.key, now)

    def venue(self) -> VenueDetails | None:
        return rows.venue_details(self.db)

    def table_name(self, table_id: str) -> str | None:
        table = rows.one(self.db, "SELECT name FROM tables WHERE id = ?", [table_id])
        return table["name"] if table else None

    # --- payments -------------------------------------------------------------------------

    def insert_payment(self, order: PosOrder, payment: PaymentRecord, now: datetime) -> None:
        writes.insert_payment(self.db, order.key, payment)

    def set_payment_status(self, recorded: RecordedIntent, payment_intent_id: str, status: str, now: datetime) -> None:
        writes.set_payment_status(self.db, payment_intent_id, int(recorded.order_id), status, now)
        self.set_recorded_status(payment_intent_id, status)

    # --- tables and areas -----------------------------------------------------------------

    def known_tables(self, table_ids: Sequence[str]) -> Container[str]:
        return rows.known_tables(self.db, table_ids)

    def areas(self) -> list[Area]:
        return rows.load_areas(self.db)

    def search_tables(self, area_id: str | None, waiter_id: str | None, page: PageRequest) -> Page[Table]:
        return _keyset(self.db, "tables", rows.table_conditions(area_id, waiter_id), page, rows.load_tables)


class _Bookings(Generic[R, B, F]):
    """The parties or the reservations (``table``) of the reference schema: the same columns."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        table: str,
        conditions: Callable[[F], tuple[list[str], list[Any]]],
        load: Callable[..., list[B]],
    ) -> None:
        self._db = db
        self._table = table
        self._conditions = conditions
        self._load = load

    def record(self, wire_id: str) -> StoredRecord[int] | None:
        return rows.record(self._db, self._table, wire_id)

    def of_dojo_id(self, dojo_id: str) -> StoredRecord[int] | None:
        return rows.record_by_dojo_id(self._db, self._table, dojo_id)

    def insert(self, record: R, now: datetime) -> int:
        return writes.insert_booking(self._db, record)

    def replace(self, key: int, record: R, now: datetime) -> None:
        writes.replace_booking(self._db, key, record)

    def delete(self, key: int, now: datetime) -> None:
        writes.soft_delete(self._db, self._table, key, now)

    def answer(self, key: int) -> B:
        return self._load(self._db, [key])[0]

    def search(self, wanted: F, page: PageRequest) -> Page[B]:
        return _keyset(self._db, self._table, self._conditions(wanted), page, partial(self._load, searching=True))


def _keyset(
    db: sqlite_utils.Database,
    table: str,
    where: tuple[list[str], list[Any]],
    request: PageRequest,
    load: Callable[[sqlite_utils.Database, list[Any]], list[B]],
) -> Page[B]:
    """One keyset page of ``table``, paged in the database."""
    conditions, args = where
    keys, more_before, more_after = rows.keyset_page(db, table, "id", conditions, args, request)
    return Page(load(db, keys), keys, more_before, more_after)
