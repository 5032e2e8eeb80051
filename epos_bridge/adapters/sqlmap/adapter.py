"""The mapped-SQL POS adapter: any POS schema, read and written through a mapping file.

The same shape as the reference adapter (``adapters/sqlite/adapter.py``): every rule lives in
:mod:`epos_bridge.domain`; each call reads the facts the rule needs in one transaction, through
the mapping's statements (:mod:`.rows`), and stores what the rule decided in the same
transaction, which owns the answer's deadline (:mod:`epos_bridge.adapters.sqlitedb`). What the
POS schema lacks (locks, paymentIntentId de-duplication, the change log) lives in the bridge's
tables inside the same file (:mod:`.bridge`). It implements exactly the capabilities whose
statements the mapping has (:func:`.mapping.capabilities`).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from epos_bridge.adapters import kept_rows
from epos_bridge.adapters.kept_rows import KeptChangeLog
from epos_bridge.adapters.sqlmap import rows, writes
from epos_bridge.adapters.sqlmap.bridge import KEPT
from epos_bridge.adapters.sqlmap.database import MappedDatabase
from epos_bridge.adapters.sqlmap.mapping import Mapping, capabilities
from epos_bridge.adapters.transactional import StoreBackedAdapter
from epos_bridge.domain import bill, bookings, locks, orders, payments, records
from epos_bridge.domain.errors import InvalidRequest, PosUnavailable
from epos_bridge.domain.pagination import page_bounds, page_of, read_cursor
from epos_bridge.ports import CallContext, Clock
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import Area, Order, OrderBill, PaymentIntentEvent, Reservation

log = logging.getLogger(__name__)

T = TypeVar("T")
C = Capability


class SqlMapPosAdapter(StoreBackedAdapter[sqlite_utils.Database]):
    """Implements :class:`epos_bridge.ports.PosAdapter` over a POS's own tables, through a mapping."""

    def __init__(self, database: MappedDatabase, clock: Clock | None = None) -> None:
        super().__init__(database, clock)
        self._db = database
        self._map: Mapping = database.mapping
        self._capabilities = capabilities(self._map)

    @classmethod
    def open(cls, path: Path, mapping: Mapping, clock: Clock | None = None) -> SqlMapPosAdapter:
        return cls(MappedDatabase(path, mapping), clock)

    @property
    def changes(self) -> KeptChangeLog | None:
        """The change log behind POS events, or ``None`` when the mapping names no POS tables
        whose changes become POS events."""
        return KeptChangeLog(self._db, KEPT) if self._map.changes else None

    def implemented_capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    async def check_writable(self) -> None:
        """A real, harmless write to the bridge's own table: raises PosUnavailable when read-only."""
        await self._db.write(lambda db: db.execute("UPDATE EPOS_BRIDGE_META SET VALUE = VALUE WHERE KEY = 'version'"))

    def _needs(self, capability: Capability) -> None:
        if capability not in self._capabilities:
            raise InvalidRequest(f"this POS's mapping ({self._map.name}) has no statements for {capability.value}")

    # --- orders ---------------------------------------------------------------------------

    async def search_orders(self, params: wire.SearchOrdersParams, ctx: CallContext) -> wire.PagedOrders:
        self._needs(C.SEARCH_ORDERS)
        request = read_cursor(params.cursor, "orders")
        wanted = orders.order_filter(params)

        def work(db: sqlite_utils.Database) -> wire.PagedOrders:
            headers = {
                int(r["id"]): r
                for r in rows.searched_headers(db, self._map, wanted.left_out)
                if wanted.matches(rows.SearchedHeader(r, db, self._map))
            }
            keys, more_before, more_after = page_of(sorted(headers), request)
            bounds = page_bounds("orders", list(keys), more_before, more_after)
            data = [rows.load_order(db, self._map, headers[k]) for k in keys]
            return wire.PagedOrders(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    async def get_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        self._needs(C.GET_ORDER_BY_ID)
        return await self._read(
            ctx, lambda db: rows.load_order(db, self._map, rows.header(db, self._map, params.order_id))
        )

    async def get_order_bill(self, params: wire.OrderIdParams, ctx: CallContext) -> OrderBill:
        self._needs(C.GET_ORDER_BILL_BY_ID)

        def work(db: sqlite_utils.Database) -> OrderBill:
            now = self._now()
            order = rows.load_order(db, self._map, rows.header(db, self._map, params.order_id))
            venue = rows.venue_details(db, self._map)
            if venue is None:
                log.warning("the POS database has no venue row: the bill prints without a merchant header")
            table_id = bill.table_of(order)
            tables = rows.load_tables(db, self._map) if table_id and self._map.has("floor.tables") else {}
            table = tables.get(table_id) if table_id else None
            return bill.build_bill(order, venue, table.name if table else None, now)

        return await self._read(ctx, work)

    async def cancel_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        self._needs(C.CANCEL_ORDER_BY_ID)

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.header(db, self._map, params.order_id)
            key = int(row["id"])
            paid = orders.paid_value(rows.stored_payments(db, self._map, key))
            lock = locks.active_lock(kept_rows.held_lock(db, KEPT, key), now)
            if orders.check_cancellable(
                params.order_id, rows.status_of(row), paid, lock is not None, row.get("open_at_till")
            ):
                rows.run(db, self._map, "orders.cancel", order_id=key, now=format_utc(now))
            return rows.load_by_key(db, self._map, key)

        return await self._write(ctx, work)

    async def create_order(self, params: wire.CreateOrderParams, ctx: CallContext) -> Order:
        self._needs(C.CREATE_ORDER)
        self._check_storable(params)

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            existing = records.replay_of(
                records.ORDER, params.dojo_order_id, rows.order_of_dojo_id(db, params.dojo_order_id)
            )
            if existing is not None:
                return rows.load_by_key(db, self._map, existing)
            known = set(rows.load_tables(db, self._map))
            record = orders.decide_new_order(params, known, now)
            key = writes.insert_order(db, self._map, record)
            return rows.load_by_key(db, self._map, key)

        return await self._write(ctx, work)

    def _check_storable(self, params: wire.CreateOrderParams) -> None:
        """Refuse, storing nothing, what this POS's mapping has no place for: an order must read
        back as it was sent. A mapping stores at most one discount and one tax line per order."""
        lacking = [
            ("subItems", any(i.sub_items for i in params.items), False),
            ("modifiers", any(i.modifiers for i in params.items), self._map.has("orders.create_modifier")),
            ("discounts", len(params.discounts or []) > 1, False),
            ("discounts", bool(params.discounts), self._map.has("orders.discounts")),
            ("taxLines", len(params.tax_lines or []) > 1, False),
            ("taxLines", bool(params.tax_lines), self._map.has("orders.tax_lines")),
            ("payments", bool(params.payments), self._map.has("payments.insert")),
        ]
        for name, sent, storable in lacking:
            if sent and not storable:
                raise InvalidRequest(f"{name}: this POS (mapping {self._map.name}) has nowhere to store them")

    async def record_order_payment(self, params: wire.RecordOrderPaymentParams, ctx: CallContext) -> Order:
        self._needs(C.RECORD_ORDER_PAYMENT_BY_ID)

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.header(db, self._map, params.order_id)
            key = int(row["id"])
            order = payments.PayableOrder(
                order_id=params.order_id,
                status=rows.status_of(row),
                currency=rows.currency_of(row, self._map),
                total_value=int(row["total_amount"]),
                payments=rows.stored_payments(db, self._map, key),
                open_at_till=row.get("open_at_till"),
                facts=rows.order_facts(row),
            )
            decision = kept_rows.decide_payment(db, KEPT, order, key, params, now)
            if decision.warning:
                log.warning("%s", decision.warning)
            if decision.payment is not None:
                writes.insert_payment(
                    db, self._map, key, orders.PaymentRecord.taken(decision.payment, now, params.headers)
                )
            ctx.record(*decision.events)
            return rows.load_by_key(db, self._map, key)

        return await self._write(ctx, work)

    # --- order locks ----------------------------------------------------------------------

    async def create_order_lock(self, params: wire.CreateOrderLockParams, ctx: CallContext) -> Order:
        self._needs(C.CREATE_ORDER_LOCK)
        return await super().create_order_lock(params, ctx)

    async def extend_order_lock(self, params: wire.ExtendOrderLockParams, ctx: CallContext) -> None:
        self._needs(C.EXTEND_ORDER_LOCK)
        await super().extend_order_lock(params, ctx)

    async def _change_lock(
        self, params: wire.CreateOrderLockParams, ctx: CallContext, decide: locks.LockDecision
    ) -> Order:
        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.header(db, self._map, params.order_id)
            key = int(row["id"])
            lockable = locks.LockableOrder(
                order_id=params.order_id,
                status=rows.status_of(row),
                updated_at=rows.time_of(row, "updated_at"),
                open_at_till=row.get("open_at_till"),
                facts=rows.order_facts(row),
            )
            change = decide(
                lockable, kept_rows.held_lock(db, KEPT, key), params.lock_id, params.expiry, now, params.headers
            )
            kept_rows.apply_lock_change(db, KEPT, key, change)
            ctx.record(*change.events)
            return rows.load_order(db, self._map, row)

        return await self._write(ctx, work)

    async def delete_order_lock(self, params: wire.DeleteOrderLockParams, ctx: CallContext) -> Order:
        self._needs(C.DELETE_ORDER_LOCK)

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.header(db, self._map, params.order_id)
            key = int(row["id"])
            change = locks.decide_delete(params.order_id, kept_rows.held_lock(db, KEPT, key), params.lock_id, now)
            kept_rows.apply_lock_change(db, KEPT, key, change)
            ctx.record(*change.events)
            return rows.load_order(db, self._map, row)

        return await self._write(ctx, work)

    # --- tables and areas -----------------------------------------------------------------

    async def list_areas(self, params: wire.WithHeaders, ctx: CallContext) -> list[Area]:
        self._needs(C.LIST_AREAS)
        return await self._read(ctx, lambda db: rows.load_areas(db, self._map))

    async def search_tables(self, params: wire.SearchTablesParams, ctx: CallContext) -> wire.PagedTables:
        self._needs(C.SEARCH_TABLES)
        request = read_cursor(params.cursor, "tables", str)

        def work(db: sqlite_utils.Database) -> wire.PagedTables:
            found = {
                i: t
                for i, t in rows.load_tables(db, self._map).items()
                if params.area_id in (None, t.area_id)
                and (params.waiter_id is None or params.waiter_id in (t.waiter_ids or []))
            }
            keys, more_before, more_after = page_of(sorted(found), request)
            bounds = page_bounds("tables", list(keys), more_before, more_after)
            return wire.PagedTables(data=[found[k] for k in keys], before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: wire.CreateReservationParams, ctx: CallContext) -> Reservation:
        self._needs(C.CREATE_RESERVATION)
        reservation = bookings.reservation_record(params)

        def work(db: sqlite_utils.Database) -> Reservation:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            found = rows.reservation_of_dojo_id(db, params.dojo_reservation_id)
            existing = records.replay_of(records.RESERVATION, params.dojo_reservation_id, found)
            if existing is None:
                records.check_tables(params.table_ids, set(rows.load_tables(db, self._map)))
                existing = writes.store_reservation(db, self._map, reservation, now)
            return self._reservation(db, existing)

        return await self._write(ctx, work)

    async def get_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> Reservation:
        self._needs(C.GET_RESERVATION_BY_ID)

        def work(db: sqlite_utils.Database) -> Reservation:
            found = rows.reservation_record(db, self._map, params.reservation_id)
            return self._reservation(db, records.live(records.RESERVATION, params.reservation_id, found))

        return await self._read(ctx, work)

    async def update_reservation(self, params: wire.UpdateReservationParams, ctx: CallContext) -> Reservation:
        self._needs(C.UPDATE_RESERVATION)
        reservation = bookings.reservation_record(params)

        def work(db: sqlite_utils.Database) -> Reservation:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            found = rows.reservation_record(db, self._map, params.id)
            known = set(rows.load_tables(db, self._map))
            key = records.decide_update(
                records.RESERVATION, params.id, found, params.dojo_reservation_id, params.table_ids, known
            )
            writes.store_reservation(db, self._map, reservation, now, key)
            return self._reservation(db, key)

        return await self._write(ctx, work)

    async def delete_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> None:
        self._needs(C.DELETE_RESERVATION_BY_ID)

        def work(db: sqlite_utils.Database) -> None:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            found = rows.reservation_record(db, self._map, params.reservation_id)
            key = records.decide_soft_delete(records.RESERVATION, params.reservation_id, found)
            if key is not None:
                writes.delete_reservation(db, self._map, key, now)

        await self._write(ctx, work)

    async def search_reservations(
        self, params: wire.SearchReservationsParams, ctx: CallContext
    ) -> wire.PagedReservations:
        self._needs(C.SEARCH_RESERVATIONS)
        request = read_cursor(params.cursor, "reservations")
        wanted = bookings.reservation_filter(params)

        def work(db: sqlite_utils.Database) -> wire.PagedReservations:
            found = {
                int(r["id"]): r
                for r in rows.query(db, self._map, "reservations.search")
                if bookings.searched(
                    "reservation", r["id"], partial(wanted.matches, rows.SearchedBooking(r, db, self._map))
                )
            }
            keys, more_before, more_after = page_of(sorted(found), request)
            bounds = page_bounds("reservations", list(keys), more_before, more_after)
            data = [
                reservation
                for k in keys
                if (
                    reservation := bookings.searched(
                        "reservation", k, partial(rows.load_reservation, db, self._map, found[k])
                    )
                )
                is not None
            ]
            return wire.PagedReservations(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    def _reservation(self, db: sqlite_utils.Database, key: int) -> Reservation:
        row = rows.reservation_row(db, self._map, str(key))
        if row is None:
            raise PosUnavailable(f"reservation {key} was written but the mapping's reservations.get does not find it")
        return bookings.read_booking("reservation", key, partial(rows.load_reservation, db, self._map, row))

    # --- parties: no mapping statements for them yet ----------------------------------------

    async def _unsupported(self, *args: object) -> Any:
        """Never called through the bridge: these capabilities are never registered."""
        raise InvalidRequest(f"this POS's mapping ({self._map.name}) has no statements for parties")

    create_party = get_party = update_party = delete_party = search_parties = _unsupported

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: wire.HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:
        self._needs(C.HANDLE_PAYMENT_INTENT_STATUS_UPDATED)

        def work(db: sqlite_utils.Database) -> None:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            received = kept_rows.receive_intent_event(db, KEPT, params, event, now)
            if received is None:
                return  # a redelivery: nothing written
            decision, recorded = received
            if decision.payment_status is not None and recorded is not None:
                db.execute(
                    "UPDATE EPOS_BRIDGE_PAYMENTS SET STATUS = ? WHERE PAYMENT_INTENT_ID = ?",
                    [decision.payment_status.value, event.payment_intent_id],
                )
                writes.order_paid(db, self._map, int(recorded.order_id), now)
            ctx.record(*decision.events)

        await self._write(ctx, work)


# --- change capture (ports.ChangeSource) ----------------------------------------------------
