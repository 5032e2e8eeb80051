"""The reference SQLite POS adapter: every capability, answered from the venue's own file.

Every rule lives in :mod:`epos_bridge.domain`; this module reads the facts the rules need inside
one transaction (:mod:`.rows`), stores what they decide (:mod:`.writes`), and maps rows to wire
models. Read-modify-write always runs under ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from epos_bridge.adapters.sqlite import rows, writes
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.domain import bill, bookings, intents, locks, orders, payments, records
from epos_bridge.domain.pagination import page_bounds, read_cursor
from epos_bridge.ports import CallContext, Clock, PosChange, SystemClock
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import Area, Order, OrderBill, OrderStatus, Party, PaymentIntentEvent, Reservation
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    CreateOrderParams,
    CreatePartyParams,
    CreateReservationParams,
    DeleteOrderLockParams,
    ExtendOrderLockParams,
    HandleEventParams,
    OrderIdParams,
    PagedOrders,
    PagedParties,
    PagedReservations,
    PagedTables,
    PartyIdParams,
    RecordOrderPaymentParams,
    RequestHeaders,
    ReservationIdParams,
    SearchOrdersParams,
    SearchPartiesParams,
    SearchReservationsParams,
    SearchTablesParams,
    UpdatePartyParams,
    UpdateReservationParams,
    WithHeaders,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

LockDecision = Callable[
    [locks.LockableOrder, locks.HeldLock | None, str, datetime, datetime, RequestHeaders], locks.LockChange
]


class SqlitePosAdapter:
    """Implements :class:`epos_bridge.ports.PosAdapter` over the reference schema."""

    def __init__(self, database: PosDatabase, clock: Clock | None = None) -> None:
        self._db = database
        self._clock = clock or SystemClock()

    @classmethod
    def open(cls, path: Path, clock: Clock | None = None, *, busy_timeout_s: float = 5.0) -> SqlitePosAdapter:
        return cls(PosDatabase(path, busy_timeout_s=busy_timeout_s), clock)

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def changes(self) -> SqliteChangeLog:
        """The change log the POS-event relay reads (ports.ChangeSource)."""
        return SqliteChangeLog(self._db)

    def implemented_capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    async def close(self) -> None:
        await self._db.close()

    async def check_writable(self) -> None:
        """A real, harmless write (the schema version rewritten as it is): raises PosUnavailable
        for a read-only database. Used by ``doctor``; taking the write lock alone writes nothing."""

        def work(db: sqlite_utils.Database) -> None:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute(f"PRAGMA user_version = {version}")

        await self._db.write(work)

    def _now(self) -> datetime:
        return self._clock.now()

    async def _read(self, ctx: CallContext, work: Callable[[sqlite_utils.Database], T]) -> T:
        return await self._db.read(work, ctx.deadline)

    async def _write(self, ctx: CallContext, work: Callable[[sqlite_utils.Database], T]) -> T:
        return await ctx.transaction(self._db.write, work)

    # --- orders ---------------------------------------------------------------------------

    async def search_orders(self, params: SearchOrdersParams, ctx: CallContext) -> PagedOrders:
        request = read_cursor(params.cursor, "orders")
        conditions, args = rows.order_conditions(orders.order_filter(params))

        def work(db: sqlite_utils.Database) -> PagedOrders:
            keys, more_before, more_after = rows.keyset_page(db, "orders", "id", conditions, args, request)
            bounds = page_bounds("orders", keys, more_before, more_after)
            data = rows.load_orders(db, [int(k) for k in keys])
            return PagedOrders(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    async def get_order(self, params: OrderIdParams, ctx: CallContext) -> Order:
        return await self._read(ctx, lambda db: rows.load_order(db, params.order_id))

    async def get_order_bill(self, params: OrderIdParams, ctx: CallContext) -> OrderBill:

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

    async def cancel_order(self, params: OrderIdParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            paid = orders.paid_value(rows.stored_payments(db, row["id"]))
            lock = locks.active_lock(rows.held_lock(db, row["id"]), now)
            if orders.check_cancellable(
                params.order_id, OrderStatus(row["status"]), paid, lock is not None, row["open_at_till"]
            ):
                writes.cancel_order(db, row["id"], now)
            return rows.load_order(db, params.order_id)

        return await self._write(ctx, work)

    async def create_order(self, params: CreateOrderParams, ctx: CallContext) -> Order:

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

    async def record_order_payment(self, params: RecordOrderPaymentParams, ctx: CallContext) -> Order:

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
            decision = payments.decide_payment(
                order,
                rows.held_lock(db, row["id"]),
                params,
                intents.newest_status(rows.intent_events(db, params.payment_intent_id)),
                now,
                recorded=rows.recorded_intent(db, params.payment_intent_id),
            )
            if decision.warning:
                log.warning("%s", decision.warning)
            if decision.payment is not None:
                writes.insert_payment(db, row["id"], orders.PaymentRecord.taken(decision.payment, now, params.headers))
            ctx.record(*decision.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    # --- order locks ----------------------------------------------------------------------

    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order:
        return await self._change_lock(params, ctx, locks.decide_create)

    async def extend_order_lock(self, params: ExtendOrderLockParams, ctx: CallContext) -> None:
        await self._change_lock(params, ctx, locks.decide_extend)

    async def _change_lock(self, params: CreateOrderLockParams, ctx: CallContext, decide: LockDecision) -> Order:
        """Create and extend share one shape: read order and lock, let the rule decide, store it."""

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            current = rows.held_lock(db, row["id"])
            change = decide(
                _lockable(row, params.order_id), current, params.lock_id, params.expiry, now, params.headers
            )
            writes.apply_lock_change(db, row["id"], change)
            ctx.record(*change.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            change = locks.decide_delete(params.order_id, rows.held_lock(db, row["id"]), params.lock_id, now)
            writes.apply_lock_change(db, row["id"], change)
            ctx.record(*change.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    # --- tables and areas -----------------------------------------------------------------

    async def list_areas(self, params: WithHeaders, ctx: CallContext) -> list[Area]:
        return await self._read(ctx, rows.load_areas)

    async def search_tables(self, params: SearchTablesParams, ctx: CallContext) -> PagedTables:
        request = read_cursor(params.cursor, "tables", str)
        conditions: list[str] = []
        args: list[Any] = []
        if params.area_id is not None:
            conditions.append("area_id = ?")
            args.append(params.area_id)
        if params.waiter_id is not None:
            conditions.append("EXISTS (SELECT 1 FROM table_waiters w WHERE w.table_id = tables.id AND w.waiter_id = ?)")
            args.append(params.waiter_id)

        def work(db: sqlite_utils.Database) -> PagedTables:
            keys, more_before, more_after = rows.keyset_page(db, "tables", "id", conditions, args, request)
            bounds = page_bounds("tables", keys, more_before, more_after)
            return PagedTables(
                data=rows.load_tables(db, [str(k) for k in keys]), before=bounds.before, after=bounds.after
            )

        return await self._read(ctx, work)

    # --- parties --------------------------------------------------------------------------

    async def create_party(self, params: CreatePartyParams, ctx: CallContext) -> Party:
        def work(db: sqlite_utils.Database) -> Party:
            found = rows.record_by_dojo_id(db, "parties", params.dojo_party_id)
            existing = records.replay_of(records.PARTY, params.dojo_party_id, found)
            if existing is not None:
                return rows.load_parties(db, [existing])[0]
            known = rows.known_tables(db, params.table_ids)
            linked = rows.reservation_of_dojo_id(db, params.dojo_reservation_id)
            key = writes.insert_party(db, bookings.decide_new_party(params, known, linked))
            return rows.load_parties(db, [key])[0]

        return await self._write(ctx, work)

    async def get_party(self, params: PartyIdParams, ctx: CallContext) -> Party:
        def work(db: sqlite_utils.Database) -> Party:
            key = records.live(records.PARTY, params.party_id, rows.record(db, "parties", params.party_id))
            return rows.load_parties(db, [key])[0]

        return await self._read(ctx, work)

    async def update_party(self, params: UpdatePartyParams, ctx: CallContext) -> Party:
        party = bookings.updated_party(params)

        def work(db: sqlite_utils.Database) -> Party:
            found = rows.record(db, "parties", params.id)
            known = rows.known_tables(db, params.table_ids)
            key = records.decide_update(records.PARTY, params.id, found, params.dojo_party_id, params.table_ids, known)
            writes.replace_party(db, key, party)
            return rows.load_parties(db, [key])[0]

        return await self._write(ctx, work)

    async def delete_party(self, params: PartyIdParams, ctx: CallContext) -> None:
        await self._write(ctx, lambda db: self._soft_delete(db, "parties", records.PARTY, params.party_id))

    async def search_parties(self, params: SearchPartiesParams, ctx: CallContext) -> PagedParties:
        request = read_cursor(params.cursor, "parties")
        conditions, args = rows.party_conditions(bookings.party_filter(params))

        def work(db: sqlite_utils.Database) -> PagedParties:
            keys, more_before, more_after = rows.keyset_page(db, "parties", "id", conditions, args, request)
            bounds = page_bounds("parties", keys, more_before, more_after)
            data = rows.load_parties(db, [int(k) for k in keys])
            return PagedParties(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: CreateReservationParams, ctx: CallContext) -> Reservation:
        reservation = bookings.reservation_record(params)

        def work(db: sqlite_utils.Database) -> Reservation:
            found = rows.record_by_dojo_id(db, "reservations", params.dojo_reservation_id)
            existing = records.replay_of(records.RESERVATION, params.dojo_reservation_id, found)
            if existing is not None:
                return rows.load_reservations(db, [existing])[0]
            records.check_tables(params.table_ids, rows.known_tables(db, params.table_ids))
            key = writes.insert_reservation(db, reservation)
            return rows.load_reservations(db, [key])[0]

        return await self._write(ctx, work)

    async def get_reservation(self, params: ReservationIdParams, ctx: CallContext) -> Reservation:
        def work(db: sqlite_utils.Database) -> Reservation:
            found = rows.record(db, "reservations", params.reservation_id)
            key = records.live(records.RESERVATION, params.reservation_id, found)
            return rows.load_reservations(db, [key])[0]

        return await self._read(ctx, work)

    async def update_reservation(self, params: UpdateReservationParams, ctx: CallContext) -> Reservation:
        reservation = bookings.reservation_record(params)

        def work(db: sqlite_utils.Database) -> Reservation:
            found = rows.record(db, "reservations", params.id)
            known = rows.known_tables(db, params.table_ids)
            key = records.decide_update(
                records.RESERVATION, params.id, found, params.dojo_reservation_id, params.table_ids, known
            )
            writes.replace_reservation(db, key, reservation)
            return rows.load_reservations(db, [key])[0]

        return await self._write(ctx, work)

    async def delete_reservation(self, params: ReservationIdParams, ctx: CallContext) -> None:
        await self._write(
            ctx, lambda db: self._soft_delete(db, "reservations", records.RESERVATION, params.reservation_id)
        )

    async def search_reservations(self, params: SearchReservationsParams, ctx: CallContext) -> PagedReservations:
        request = read_cursor(params.cursor, "reservations")
        conditions, args = rows.reservation_conditions(bookings.reservation_filter(params))

        def work(db: sqlite_utils.Database) -> PagedReservations:
            keys, more_before, more_after = rows.keyset_page(db, "reservations", "id", conditions, args, request)
            bounds = page_bounds("reservations", keys, more_before, more_after)
            data = rows.load_reservations(db, [int(k) for k in keys])
            return PagedReservations(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    def _soft_delete(self, db: sqlite_utils.Database, table: str, kind: records.RecordKind, wire_id: str) -> None:
        now = self._now()  # after the write lock is held: never older than the POS's edits
        key = records.decide_soft_delete(kind, wire_id, rows.record(db, table, wire_id))
        if key is not None:
            writes.soft_delete(db, table, key, now)

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:

        def work(db: sqlite_utils.Database) -> None:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            payment = rows.one(
                db, "SELECT id, order_id, status FROM payments WHERE payment_intent_id = ?", [event.payment_intent_id]
            )
            decision = intents.decide_intent_event(
                params,
                event,
                rows.intent_events(db, event.payment_intent_id, params.id),
                intents.PaymentUnderIntent(str(payment["order_id"]), payment["status"]) if payment else None,
                now,
            )
            if decision.store is None:
                return  # contract §3.22: at-least-once delivery; a replay changes nothing (and writes nothing).
            db.execute(
                "INSERT INTO payment_intent_events (event_id, account_id, event, payment_intent_id, "
                "payment_status, capture_mode, created_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    params.id,
                    params.account_id,
                    params.event,
                    event.payment_intent_id,
                    event.payment_status.value,
                    event.capture_mode.value,
                    format_utc(params.created_at),
                    format_utc(now),
                ],
            )
            if decision.payment_status is not None and payment is not None:
                writes.set_payment_status(db, payment["id"], payment["order_id"], decision.payment_status.value, now)
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


async def _latest_change(database: PosDatabase) -> int:
    return await database.read(
        lambda db: int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM pos_changes").fetchone()[0])
    )


class SqliteChangeLog:
    """Reads the ``pos_changes`` table the schema's triggers fill (docs/reference-schema.md)."""

    def __init__(self, database: PosDatabase) -> None:
        self._db = database

    async def latest_change(self) -> int:
        return await _latest_change(self._db)

    async def changes_after(self, seq: int, limit: int) -> list[PosChange]:
        def work(db: sqlite_utils.Database) -> list[PosChange]:
            rows_ = db.execute(
                "SELECT seq, entity, entity_id, change FROM pos_changes WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            ).fetchall()
            return [PosChange(int(r[0]), r[1], str(r[2]), r[3]) for r in rows_]

        return await self._db.read(work)

    async def forget_changes_through(self, seq: int) -> None:
        await self._db.write(lambda db: db.execute("DELETE FROM pos_changes WHERE seq <= ?", [seq]))
