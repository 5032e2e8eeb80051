"""The reference SQLite POS adapter: every capability, answered from the venue's own file.

Every rule lives in :mod:`epos_bridge.domain`; this module reads the facts the rules need inside
one transaction (:mod:`.rows`), stores what they decide (:mod:`.writes`), and maps rows to wire
models. Read-modify-write always runs under ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from epos_bridge.adapters import kept_rows
from epos_bridge.adapters.kept_rows import KeptChangeLog
from epos_bridge.adapters.sqlite import rows, writes
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.adapters.sqlite.schema import KEPT
from epos_bridge.adapters.transactional import StoreBackedAdapter
from epos_bridge.domain import bill, bookings, locks, orders, payments, records
from epos_bridge.domain.pagination import PageBounds, PageRequest, page_bounds, read_cursor
from epos_bridge.ports import CallContext, Clock
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.entities import Area, Order, OrderBill, OrderStatus, Party, PaymentIntentEvent, Reservation

log = logging.getLogger(__name__)

T = TypeVar("T")


class SqlitePosAdapter(StoreBackedAdapter[sqlite_utils.Database]):
    """Implements :class:`epos_bridge.ports.PosAdapter` over the reference schema."""

    def __init__(self, database: PosDatabase, clock: Clock | None = None) -> None:
        super().__init__(database, clock)
        self._db = database

    @classmethod
    def open(cls, path: Path, clock: Clock | None = None, *, busy_timeout_s: float = 5.0) -> SqlitePosAdapter:
        return cls(PosDatabase(path, busy_timeout_s=busy_timeout_s), clock)

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

    # --- orders ---------------------------------------------------------------------------

    async def search_orders(self, params: wire.SearchOrdersParams, ctx: CallContext) -> wire.PagedOrders:
        where = rows.order_conditions(orders.order_filter(params))
        data, bounds = await self._search(ctx, "orders", read_cursor(params.cursor, "orders"), where, rows.load_orders)
        return wire.PagedOrders(data=data, before=bounds.before, after=bounds.after)

    async def get_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        return await self._read(ctx, lambda db: rows.load_order(db, params.order_id))

    async def get_order_bill(self, params: wire.OrderIdParams, ctx: CallContext) -> OrderBill:

        def work(db: sqlite_utils.Database) -> OrderBill:
            now = self._now()
            order = rows.load_order(db, params.order_id)
            venue = rows.venue_details(db)
            if venue is None:
                log.warning("the POS database has no venue row: the bill prints without a merchant header")
            table_id = bill.table_of(order)
            table = rows.one(db, "SELECT name FROM tables WHERE id = ?", [table_id]) if table_id else None
            return bill.build_bill(order, venue, table["name"] if table else None, now)

        return await self._read(ctx, work)

    async def cancel_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            paid = orders.paid_value(rows.stored_payments(db, row["id"]))
            lock = locks.active_lock(kept_rows.held_lock(db, KEPT, row["id"]), now)
            if orders.check_cancellable(
                params.order_id, OrderStatus(row["status"]), paid, lock is not None, row["open_at_till"]
            ):
                writes.cancel_order(db, row["id"], now)
            return rows.load_order(db, params.order_id)

        return await self._write(ctx, work)

    async def create_order(self, params: wire.CreateOrderParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            found = rows.record_by_dojo_id(db, "orders", params.dojo_order_id)
            existing = records.replay_of(records.ORDER, params.dojo_order_id, found)
            if existing is not None:
                return rows.load_orders(db, [existing])[0]
            known = rows.known_tables(db, orders.tables_named(params))
            order_key = writes.insert_order(db, orders.decide_new_order(params, known, now))
            return rows.load_orders(db, [order_key])[0]

        return await self._write(ctx, work)

    async def record_order_payment(self, params: wire.RecordOrderPaymentParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            order = payments.PayableOrder(
                order_id=params.order_id,
                status=OrderStatus(row["status"]),
                currency=row["currency_code"],
                total_value=row["total_amount"],
                payments=rows.stored_payments(db, row["id"]),
                open_at_till=row["open_at_till"],
                facts=rows.order_facts(row),
            )
            decision = kept_rows.decide_payment(db, KEPT, order, row["id"], params, now)
            if decision.warning:
                log.warning("%s", decision.warning)
            if decision.payment is not None:
                writes.insert_payment(db, row["id"], orders.PaymentRecord.taken(decision.payment, now, params.headers))
            ctx.record(*decision.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    # --- order locks ----------------------------------------------------------------------

    async def _change_lock(
        self, params: wire.CreateOrderLockParams, ctx: CallContext, decide: locks.LockDecision
    ) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            current = kept_rows.held_lock(db, KEPT, row["id"])
            change = decide(
                _lockable(row, params.order_id), current, params.lock_id, params.expiry, now, params.headers
            )
            kept_rows.apply_lock_change(db, KEPT, row["id"], change)
            ctx.record(*change.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    async def delete_order_lock(self, params: wire.DeleteOrderLockParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            change = locks.decide_delete(params.order_id, kept_rows.held_lock(db, KEPT, row["id"]), params.lock_id, now)
            kept_rows.apply_lock_change(db, KEPT, row["id"], change)
            ctx.record(*change.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    # --- tables and areas -----------------------------------------------------------------

    async def list_areas(self, params: wire.WithHeaders, ctx: CallContext) -> list[Area]:
        return await self._read(ctx, rows.load_areas)

    async def search_tables(self, params: wire.SearchTablesParams, ctx: CallContext) -> wire.PagedTables:
        where = rows.table_conditions(params.area_id, params.waiter_id)
        data, bounds = await self._search(
            ctx, "tables", read_cursor(params.cursor, "tables", str), where, rows.load_tables
        )
        return wire.PagedTables(data=data, before=bounds.before, after=bounds.after)

    # --- parties --------------------------------------------------------------------------

    async def create_party(self, params: wire.CreatePartyParams, ctx: CallContext) -> Party:
        def work(db: sqlite_utils.Database) -> Party:
            found = rows.record_by_dojo_id(db, "parties", params.dojo_party_id)
            existing = records.replay_of(records.PARTY, params.dojo_party_id, found)
            if existing is not None:
                return rows.load_parties(db, [existing])[0]
            known = rows.known_tables(db, params.table_ids)
            linked = rows.reservation_of_dojo_id(db, params.dojo_reservation_id)
            key = writes.insert_booking(db, bookings.decide_new_party(params, known, linked))
            return rows.load_parties(db, [key])[0]

        return await self._write(ctx, work)

    async def get_party(self, params: wire.PartyIdParams, ctx: CallContext) -> Party:
        return await self._get(ctx, "parties", records.PARTY, params.party_id, rows.load_parties)

    async def update_party(self, params: wire.UpdatePartyParams, ctx: CallContext) -> Party:
        party = bookings.updated_party(params)
        return await self._replace(
            ctx,
            "parties",
            records.PARTY,
            (params.id, params.dojo_party_id, params.table_ids),
            lambda db, key: writes.replace_booking(db, key, party),
            rows.load_parties,
        )

    async def delete_party(self, params: wire.PartyIdParams, ctx: CallContext) -> None:
        await self._write(ctx, lambda db: self._soft_delete(db, "parties", records.PARTY, params.party_id))

    async def search_parties(self, params: wire.SearchPartiesParams, ctx: CallContext) -> wire.PagedParties:
        where = rows.party_conditions(bookings.party_filter(params))
        data, bounds = await self._search(
            ctx, "parties", read_cursor(params.cursor, "parties"), where, partial(rows.load_parties, searching=True)
        )
        return wire.PagedParties(data=data, before=bounds.before, after=bounds.after)

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: wire.CreateReservationParams, ctx: CallContext) -> Reservation:
        reservation = bookings.reservation_record(params)

        def work(db: sqlite_utils.Database) -> Reservation:
            found = rows.record_by_dojo_id(db, "reservations", params.dojo_reservation_id)
            existing = records.replay_of(records.RESERVATION, params.dojo_reservation_id, found)
            if existing is not None:
                return rows.load_reservations(db, [existing])[0]
            records.check_tables(params.table_ids, rows.known_tables(db, params.table_ids))
            key = writes.insert_booking(db, reservation)
            return rows.load_reservations(db, [key])[0]

        return await self._write(ctx, work)

    async def get_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> Reservation:
        return await self._get(ctx, "reservations", records.RESERVATION, params.reservation_id, rows.load_reservations)

    async def update_reservation(self, params: wire.UpdateReservationParams, ctx: CallContext) -> Reservation:
        reservation = bookings.reservation_record(params)
        return await self._replace(
            ctx,
            "reservations",
            records.RESERVATION,
            (params.id, params.dojo_reservation_id, params.table_ids),
            lambda db, key: writes.replace_booking(db, key, reservation),
            rows.load_reservations,
        )

    async def delete_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> None:
        await self._write(
            ctx, lambda db: self._soft_delete(db, "reservations", records.RESERVATION, params.reservation_id)
        )

    async def search_reservations(
        self, params: wire.SearchReservationsParams, ctx: CallContext
    ) -> wire.PagedReservations:
        where = rows.reservation_conditions(bookings.reservation_filter(params))
        data, bounds = await self._search(
            ctx,
            "reservations",
            read_cursor(params.cursor, "reservations"),
            where,
            partial(rows.load_reservations, searching=True),
        )
        return wire.PagedReservations(data=data, before=bounds.before, after=bounds.after)

    async def _search(
        self,
        ctx: CallContext,
        table: str,
        request: PageRequest,
        where: tuple[list[str], list[Any]],
        load: Callable[[sqlite_utils.Database, list[Any]], list[T]],
    ) -> tuple[list[T], PageBounds]:
        """One keyset page of ``table`` (its name is the cursor's scope), paged in the database."""
        conditions, args = where

        def work(db: sqlite_utils.Database) -> tuple[list[T], PageBounds]:
            keys, more_before, more_after = rows.keyset_page(db, table, "id", conditions, args, request)
            return load(db, keys), page_bounds(table, keys, more_before, more_after)

        return await self._read(ctx, work)

    async def _get(
        self,
        ctx: CallContext,
        table: str,
        kind: records.RecordKind,
        wire_id: str,
        load: Callable[[sqlite_utils.Database, list[int]], list[T]],
    ) -> T:
        def work(db: sqlite_utils.Database) -> T:
            return load(db, [records.live(kind, wire_id, rows.record(db, table, wire_id))])[0]

        return await self._read(ctx, work)

    async def _replace(
        self,
        ctx: CallContext,
        table: str,
        kind: records.RecordKind,
        update: tuple[str, str, list[str]],
        replace: Callable[[sqlite_utils.Database, int], None],
        load: Callable[[sqlite_utils.Database, list[int]], list[T]],
    ) -> T:
        """An Update (replace semantics): ``update`` is the wire id, Dojo's id and the tables sent."""
        wire_id, dojo_id, table_ids = update

        def work(db: sqlite_utils.Database) -> T:
            found = rows.record(db, table, wire_id)
            key = records.decide_update(kind, wire_id, found, dojo_id, table_ids, rows.known_tables(db, table_ids))
            replace(db, key)
            return load(db, [key])[0]

        return await self._write(ctx, work)

    def _soft_delete(self, db: sqlite_utils.Database, table: str, kind: records.RecordKind, wire_id: str) -> None:
        now = self._now()  # after the write lock is held: never older than the POS's edits
        key = records.decide_soft_delete(kind, wire_id, rows.record(db, table, wire_id))
        if key is not None:
            writes.soft_delete(db, table, key, now)

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: wire.HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:

        def work(db: sqlite_utils.Database) -> None:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            received = kept_rows.receive_intent_event(db, KEPT, params, event, now)
            if received is None:
                return  # a redelivery: nothing written
            decision, recorded = received
            if decision.payment_status is not None and recorded is not None:
                status = decision.payment_status.value
                writes.set_payment_status(db, event.payment_intent_id, int(recorded.order_id), status, now)
            ctx.record(*decision.events)

        await self._write(ctx, work)


# --- helpers running inside a transaction -----------------------------------------------


def _lockable(row: rows.Row, order_id: str) -> locks.LockableOrder:
    return locks.LockableOrder(
        order_id=order_id,
        status=OrderStatus(row["status"]),
        updated_at=rows.parse_time(row["updated_at"], f"updatedAt of order {row['id']}"),
        open_at_till=row["open_at_till"],
        facts=rows.order_facts(row),
    )


# --- change capture (ports.ChangeSource) ----------------------------------------------------
