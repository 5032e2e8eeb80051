"""The mapped-SQL POS storage: any POS schema, read and written through a mapping file.

Storage only (:class:`epos_bridge.ports.PosStorage`): ``services/pos_calls`` runs each call and
``domain/`` decides; this module runs the mapping's statements (:mod:`.rows`, :mod:`.writes`) in
the call's one transaction, which owns the answer's deadline (:mod:`epos_bridge.adapters.sqlitedb`).
What the POS schema lacks (locks, paymentIntentId de-duplication, the change log) lives in the
bridge's tables inside the same file (:mod:`.bridge`). It implements exactly the capabilities
whose statements the mapping has (:func:`.mapping.capabilities`); the dispatcher never routes
another to it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NoReturn

from sqlalchemy.engine import URL

from epos_bridge.adapters.kept_rows import KeptChangeLog, KeptRows
from epos_bridge.adapters.sql_dialects import DIALECTS
from epos_bridge.adapters.sql_session import Sql
from epos_bridge.adapters.sqlmap import rows, server_setup, writes
from epos_bridge.adapters.sqlmap.bridge import kept_in
from epos_bridge.adapters.sqlmap.database import MappedDatabase
from epos_bridge.adapters.sqlmap.mapping import Mapping, capabilities
from epos_bridge.adapters.sqlmap.server import ServerDatabase, where_of
from epos_bridge.adapters.transactional import RowStorage, last_known
from epos_bridge.domain import bookings
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import ReservationFilter, ReservationRecord
from epos_bridge.domain.errors import InvalidRequest, NotFound, PosUnavailable
from epos_bridge.domain.locks import LockChange
from epos_bridge.domain.orders import OrderFilter, OrderRecord, PaymentRecord, StoredPayment
from epos_bridge.domain.pagination import Page, PageRequest, page_in_memory
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.domain.records import StoredRecord
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import PosOrder
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import Area, Order, Reservation, Table

STATUS_REAPPLIED_FOR = timedelta(days=1)
"""How long after Dojo's event a reversal is applied again to the POS's own payment row (a bill
stays in a till's cart for minutes, not days)."""


class SqlMapStorage(RowStorage[Sql]):
    """Implements :class:`epos_bridge.ports.PosStorage` over a POS's own tables, through a mapping."""

    def __init__(self, database: MappedDatabase | ServerDatabase) -> None:
        mapping = database.mapping
        super().__init__(database, partial(SqlMapRows, mapping=mapping), capabilities(mapping))
        self._db = database
        self._map = mapping
        self._released_locks: set[tuple[int, str]] = set()
        self._reapplied_at_mark: int | None = None

    @classmethod
    def open(cls, path: Path, mapping: Mapping) -> SqlMapStorage:
        return cls(MappedDatabase(path, mapping))

    @classmethod
    def open_server(cls, url: URL, mapping: Mapping) -> SqlMapStorage:
        """The mapping's POS on a database server; ``url`` carries the password (from the keyring)."""
        where = where_of(url)
        return cls(ServerDatabase(url, mapping, check=lambda db: server_setup.mapping_problem(mapping, db, where)))

    @property
    def changes(self) -> KeptChangeLog | None:
        """The change log behind POS events, or ``None`` when the mapping names no POS tables
        whose changes become POS events."""
        return KeptChangeLog(self._db, kept_in(self._map)) if self._map.changes else None

    async def check_writable(self) -> None:
        """A real, harmless write to the bridge's own table: raises PosUnavailable when read-only."""
        sql = f"UPDATE EPOS_BRIDGE_META SET VALUE = VALUE WHERE {DIALECTS[self._map.engine].column('KEY')} = 'version'"  # noqa: S608
        await self._db.write(lambda db: db.execute(sql))

    async def keep_the_till_in_step(self, now: datetime) -> int:
        """Expired locks released on the POS (how many), then recent reversals applied again;
        one step failing does not stop the other (the first failure is raised after both)."""
        try:
            released = await self.release_expired_locks(now)
        except Exception:
            await self.reapply_payment_statuses(now)
            raise
        await self.reapply_payment_statuses(now)
        return released

    async def reapply_payment_statuses(self, now: datetime) -> int:
        """A payment Dojo reversed while a till's cart held its bill (OSPOS deletes the bill
        then, and writes the payment row back when the cart is completed or suspended again)
        stops counting on the POS again: ``payments.status`` runs once more for each recorded
        payment that no longer counts and whose status changed in the last day, whenever the
        POS's tables changed since the last time (the change log's sequence moved; with no
        ``[[changes]]`` in the mapping, every sweep). The statement must change no row when it
        was already applied; how many it ran for."""
        if not self._map.has("payments.status"):
            return 0
        since = format_utc(now - STATUS_REAPPLIED_FOR)
        watched = bool(self._map.changes)

        def change_mark(db: Sql) -> int | None:
            if not watched:
                return None
            row = db.execute(DIALECTS[self._map.engine].change_mark).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        def not_counting(db: Sql) -> list[tuple[str, RecordedIntent]]:
            found = db.execute(
                "SELECT b.PAYMENT_INTENT_ID, b.ORDER_KEY, b.PAID_AMOUNT, b.TIPS_AMOUNT, b.STATUS"
                " FROM EPOS_BRIDGE_PAYMENTS b WHERE EXISTS (SELECT 1 FROM EPOS_BRIDGE_INTENT_EVENTS e"
                " WHERE e.PAYMENT_INTENT_ID = b.PAYMENT_INTENT_ID AND e.RECEIVED_AT >= ?)",
                [since],
            ).fetchall()
            return [
                (intent, RecordedIntent(str(key), paid, tips, status))
                for intent, key, paid, tips, status in found
                if not StoredPayment(paid, tips, intent, status).counts
            ]

        def reapply(db: Sql) -> int:
            again = not_counting(db)
            for intent, recorded in again:
                writes.payment_status(db, self._map, recorded, intent, recorded.status, now)
            return len(again)

        def look(db: Sql) -> tuple[int | None, list[tuple[str, RecordedIntent]]]:
            mark = change_mark(db)
            if mark is not None and mark == self._reapplied_at_mark:
                return mark, []  # nothing on the POS changed: nothing can have been written back
            return mark, not_counting(db)

        mark, found = await self._db.read(look)  # the POS's write lock only when there is work
        if found:
            found_count = await self._db.write(reapply)
        else:
            found_count = 0
        self._reapplied_at_mark = mark
        return found_count

    async def release_expired_locks(self, now: datetime) -> int:
        """The POS's own "in use" mark of every Dojo lock that has expired is released through
        ``locks.released``, once per lock (a lock is its order and its expiry: a retaken or
        extended one is released again when it expires; after a restart every expired one is,
        the hook being harmless twice). No clock threshold: a clock set back loses nothing.
        The bridge's lock row stays, for the domain's retake rule."""
        if not self._map.has("locks.released"):
            return 0
        released_before = self._released_locks

        def expired(db: Sql) -> set[tuple[int, str]]:
            return set(SqlMapRows(db, mapping=self._map).expired_locks(now))

        def release(db: Sql) -> set[tuple[int, str]]:
            found = expired(db)
            for key, _ in sorted(found - released_before):
                rows.run(db, self._map, "locks.released", order_id=key)
            return found

        # A read first: the POS's write lock is taken only when there is something to release.
        found = await self._db.read(expired)
        if found - released_before:
            found = await self._db.write(release)
        self._released_locks = found  # forgets the locks no longer there
        return len(found - released_before)


class SqlMapRows(KeptRows):
    """One transaction's :class:`epos_bridge.ports.PosRows` through a mapping's statements."""

    def __init__(self, db: Sql, *, mapping: Mapping) -> None:
        super().__init__(db, kept_in(mapping))
        self.map = mapping
        self.reservations = _Reservations(db, mapping)

    @property
    def parties(self) -> NoReturn:
        """The one place that says so: the dispatcher never routes a party call here."""
        raise InvalidRequest(f"this POS's mapping ({self.map.name}) has no statements for parties")

    # --- orders ---------------------------------------------------------------------------

    def order(self, order_id: str) -> PosOrder:
        row = rows.header(self.db, self.map, order_id)
        return PosOrder(
            key=int(row["id"]),
            order_id=order_id,
            status=rows.status_of(row),
            currency=rows.currency_of(row, self.map),
            total_value=int(row["total_amount"]),
            updated_at=rows.time_of(row, "updated_at", self.map),
            open_at_till=row.get("open_at_till"),
            facts=rows.order_facts(row),
        )

    def payments(self, order: PosOrder) -> tuple[StoredPayment, ...]:
        return rows.stored_payments(self.db, self.map, order.key)

    def store_lock(self, order: PosOrder, change: LockChange) -> None:
        """The bridge's lock row, and the POS's own "in use" mark where the mapping has one."""
        super().store_lock(order, change)
        lock = change.store
        if lock is not None and self.map.has("locks.held"):
            rows.run(
                self.db,
                self.map,
                "locks.held",
                order_id=order.key,
                lock_id=lock.lock_id,
                expires_at=self.map.time_text(lock.expires_at),
                locked_at=self.map.time_text(lock.locked_at),
                dojo_requesting_product=lock.requester.dojo_requesting_product,
                device_id=lock.requester.device_id,
                waiter_id=lock.requester.waiter_id,
            )
        elif change.remove and self.map.has("locks.released"):
            rows.run(self.db, self.map, "locks.released", order_id=order.key)

    def answer_order(self, key: int) -> Order:
        return rows.load_by_key(self.db, self.map, key)

    def search_orders(self, wanted: OrderFilter, page: PageRequest) -> Page[Order]:
        db, mapping = self.db, self.map
        headers = {
            int(r["id"]): r
            for r in rows.searched_headers(db, mapping, wanted.left_out)
            if wanted.matches(rows.SearchedHeader(r, db, mapping))
        }
        return page_in_memory(headers, page, lambda _, header: rows.load_order(db, mapping, header))

    def order_of_dojo_id(self, dojo_order_id: str) -> StoredRecord[int] | None:
        return rows.order_of_dojo_id(self.db, dojo_order_id)

    def insert_order(self, order: OrderRecord) -> int:
        self._check_storable(order)
        return writes.insert_order(self.db, self.map, order)

    def _check_storable(self, order: OrderRecord) -> None:
        """Refuse, storing nothing, what this POS's mapping has no place for: an order must read
        back as it was sent. A mapping stores at most one discount and one tax line per order."""
        has = self.map.has
        lacking = [
            ("subItems", any(i.sub_items for i in order.items), False),
            ("modifiers", any(i.modifiers for i in order.items), has("orders.create_modifier")),
            ("discounts", len(order.discounts) > 1, False),
            ("discounts", bool(order.discounts), has("orders.discounts")),
            ("taxLines", len(order.tax_lines) > 1, False),
            ("taxLines", bool(order.tax_lines), has("orders.tax_lines")),
            ("payments", bool(order.payments), has("payments.insert")),
        ]
        for name, sent, storable in lacking:
            if sent and not storable:
                raise InvalidRequest(f"{name}: this POS (mapping {self.map.name}) has nowhere to store them")

    def cancel_order(self, order: PosOrder, now: datetime) -> None:
        rows.run(self.db, self.map, "orders.cancel", order_id=order.key, now=self.map.time_text(now))

    def venue(self) -> VenueDetails | None:
        return rows.venue_details(self.db, self.map)

    def table_name(self, table_id: str) -> str | None:
        table = rows.load_tables(self.db, self.map).get(table_id) if self.map.has("floor.tables") else None
        return table.name if table else None

    # --- payments -------------------------------------------------------------------------

    def insert_payment(self, order: PosOrder, payment: PaymentRecord, now: datetime) -> None:
        writes.insert_payment(self.db, self.map, order.key, payment)

    def set_payment_status(self, recorded: RecordedIntent, payment_intent_id: str, status: str, now: datetime) -> None:
        """The ledger always; the POS's own payment row (wherever it went: its statement finds
        it by the intent); the POS's paid and due columns while the POS still has the order."""
        self.set_recorded_status(payment_intent_id, status)
        writes.payment_status(self.db, self.map, recorded, payment_intent_id, status, now)
        if rows.header_or_none(self.db, self.map, recorded.order_id) is not None:
            writes.order_paid(self.db, self.map, int(recorded.order_id), now)

    def follow_order(self, registered: RegisteredOrder) -> PosOrder | None:
        """Under the key the bridge last found it at, else where ``orders.follow`` says the POS
        moved it from there."""
        here = last_known(self, registered)
        if here is not None or not self.map.has("orders.follow"):
            return here
        found = rows.query(self.db, self.map, "orders.follow", order_key=registered.key, order_id=registered.order_id)
        moved = found[0].get("id") if found else None
        if moved is None or str(moved) == str(registered.key):
            return None
        try:
            return self.order(str(moved))
        except NotFound:
            return None

    # --- tables and areas -----------------------------------------------------------------

    def known_tables(self, table_ids: Sequence[str]) -> Container[str]:
        return set(rows.load_tables(self.db, self.map)) if self.map.has("floor.tables") else set()

    def areas(self) -> list[Area]:
        return rows.load_areas(self.db, self.map)

    def search_tables(self, area_id: str | None, waiter_id: str | None, page: PageRequest) -> Page[Table]:
        found = {
            i: t
            for i, t in rows.load_tables(self.db, self.map).items()
            if area_id in (None, t.area_id) and (waiter_id is None or waiter_id in (t.waiter_ids or []))
        }
        return page_in_memory(found, page, lambda _, table: table)


class _Reservations:
    """The reservations of a mapped POS; Dojo's ids and deletions are facts the bridge keeps."""

    def __init__(self, db: Sql, mapping: Mapping) -> None:
        self._db = db
        self._map = mapping

    def record(self, wire_id: str) -> StoredRecord[int] | None:
        return rows.reservation_record(self._db, self._map, wire_id)

    def of_dojo_id(self, dojo_id: str) -> StoredRecord[int] | None:
        return rows.reservation_of_dojo_id(self._db, dojo_id)

    def insert(self, record: ReservationRecord, now: datetime) -> int:
        return writes.store_reservation(self._db, self._map, record, now)

    def replace(self, key: int, record: ReservationRecord, now: datetime) -> None:
        writes.store_reservation(self._db, self._map, record, now, key)

    def delete(self, key: int, now: datetime) -> None:
        writes.delete_reservation(self._db, self._map, key, now)

    def answer(self, key: int) -> Reservation:
        row = rows.reservation_row(self._db, self._map, str(key))
        if row is None:
            raise PosUnavailable(f"reservation {key} was written but the mapping's reservations.get does not find it")
        return bookings.read_booking("reservation", key, partial(rows.load_reservation, self._db, self._map, row))

    def search(self, wanted: ReservationFilter, page: PageRequest) -> Page[Reservation]:
        db, mapping = self._db, self._map
        found = {
            int(r["id"]): r
            for r in rows.query(db, mapping, "reservations.search")
            if bookings.searched("reservation", r["id"], partial(wanted.matches, rows.SearchedBooking(r, db, mapping)))
        }
        return page_in_memory(
            found,
            page,
            lambda key, row: bookings.searched("reservation", key, partial(rows.load_reservation, db, mapping, row)),
        )
