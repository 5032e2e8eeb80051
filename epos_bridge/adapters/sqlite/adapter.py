"""The reference SQLite POS adapter: every capability, answered from the venue's own file.

The rules (locks, payments, cancellation, pagination, the bill) live in :mod:`epos_bridge.domain`;
this module reads the facts they need inside one transaction, applies their decision, and
maps rows to wire models. Read-modify-write always runs under ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from epos_bridge.adapters.sqlite import rows
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.domain import locks, payments
from epos_bridge.domain.bill import VenueDetails, build_bill
from epos_bridge.domain.errors import Conflict, InvalidRequest, NotFound
from epos_bridge.domain.events import PaymentStatusChanged
from epos_bridge.domain.orders import check_cancellable, check_new_order
from epos_bridge.domain.pagination import page_bounds, read_cursor
from epos_bridge.ports import CallContext, Clock, PosChange, SystemClock
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import (
    Area,
    Order,
    OrderBill,
    OrderItem,
    OrderStatus,
    OrderType,
    Party,
    PartyDeposit,
    PaymentIntentEvent,
    Reservation,
)
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

DEFAULT_PARTY_STATUS = "Seated"
"""contract §3.12 (rec): Party.status is required but optional in the request."""

FALLBACK_VENUE = VenueDetails(name="Receipt")


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
        conditions = ["status NOT IN ('Finalized', 'Canceled')"]
        args: list[Any] = []
        if params.dine_in is not None:
            for column, value in (
                ("table_id", params.dine_in.table_id),
                ("waiter_id", params.dine_in.waiter_id),
                ("party_id", params.dine_in.party_id),
                ("reservation_id", params.dine_in.reservation_id),
            ):
                if value is not None:
                    conditions.append(f"{column} = ?")
                    args.append(value)
        if params.payable_only:
            conditions.append(f"status <> 'Failed' AND {rows.PAID_VALUE_SQL} < total_amount")

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
            table_name = None
            if order.details.dine_in is not None and order.details.dine_in.table_id:
                table = rows.one(db, "SELECT name FROM tables WHERE id = ?", [order.details.dine_in.table_id])
                table_name = table["name"] if table else order.details.dine_in.table_id
            return build_bill(order, venue or FALLBACK_VENUE, table_name, now)

        return await self._read(ctx, work)

    async def cancel_order(self, params: OrderIdParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            paid = sum(p.paid_value for p in rows.stored_payments(db, row["id"]) if p.counts)
            lock = locks.active_lock(rows.held_lock(db, row["id"]), now)
            if check_cancellable(
                params.order_id, OrderStatus(row["status"]), paid, lock is not None, row["open_at_till"]
            ):
                db.execute(
                    "UPDATE orders SET status = 'Canceled', updated_at = ? WHERE id = ?", [format_utc(now), row["id"]]
                )
            return rows.load_order(db, params.order_id)

        return await self._write(ctx, work)

    async def create_order(self, params: CreateOrderParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            # contract §3.4 (rec): idempotent on dojoOrderId.
            existing = rows.one(db, "SELECT id FROM orders WHERE dojo_order_id = ?", [params.dojo_order_id])
            if existing is not None:
                return rows.load_orders(db, [existing["id"]])[0]
            check_new_order(params)
            dine_in = params.details.dine_in
            if dine_in is not None and dine_in.table_id and rows.missing_tables(db, [dine_in.table_id]):
                raise InvalidRequest(f"details.dineIn.tableId: unknown table {dine_in.table_id!r}")
            order_key = _insert_order(db, params, now)
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
                rows.latest_intent_status(db, params.payment_intent_id),
                now,
                recorded=rows.recorded_intent(db, params.payment_intent_id),
            )
            if decision.warning:
                log.warning("%s", decision.warning)
            if decision.payment is not None:
                _insert_payment(db, row["id"], decision.payment, params.headers, now)
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
            _apply_lock_change(db, row["id"], change)
            ctx.record(*change.events)
            return rows.load_orders(db, [row["id"]])[0]

        return await self._write(ctx, work)

    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order:

        def work(db: sqlite_utils.Database) -> Order:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            row = rows.order_row(db, params.order_id)
            change = locks.decide_delete(params.order_id, rows.held_lock(db, row["id"]), params.lock_id, now)
            _apply_lock_change(db, row["id"], change)
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
            # contract §3.12 (rec): idempotent on dojoPartyId.
            existing = rows.one(
                db, "SELECT id, deleted_at FROM parties WHERE dojo_party_id = ?", [params.dojo_party_id]
            )
            if existing is not None:
                if existing["deleted_at"] is not None:
                    raise Conflict(f"party {params.dojo_party_id!r} was deleted and cannot be created again")
                return rows.load_parties(db, [existing["id"]])[0]
            _check_tables(db, params.table_ids)
            reservation_id = params.reservation_id or _reservation_for(db, params.dojo_reservation_id)
            key = _insert(
                db,
                "parties",
                {
                    "dojo_party_id": params.dojo_party_id,
                    "reservation_id": reservation_id,
                    "dojo_reservation_id": params.dojo_reservation_id,
                    **_party_fields(
                        params.name,
                        params.covers,
                        params.status or DEFAULT_PARTY_STATUS,
                        params.start_time,
                        params.expected_end_time,
                        None,
                        params.host_notes,
                        params.guest_requests,
                        params.deposit,
                    ),
                },
            )
            _replace_links(db, "party_tables", "party_id", key, params.table_ids)
            return rows.load_parties(db, [key])[0]

        return await self._write(ctx, work)

    async def get_party(self, params: PartyIdParams, ctx: CallContext) -> Party:
        def work(db: sqlite_utils.Database) -> Party:
            key = _live_key(db, "parties", "party", params.party_id)
            return rows.load_parties(db, [key])[0]

        return await self._read(ctx, work)

    async def update_party(self, params: UpdatePartyParams, ctx: CallContext) -> Party:
        def work(db: sqlite_utils.Database) -> Party:
            key = _live_key(db, "parties", "party", params.id)
            stored = rows.one(db, "SELECT dojo_party_id FROM parties WHERE id = ?", [key])
            if stored and stored["dojo_party_id"] not in (None, params.dojo_party_id):
                raise InvalidRequest(f"dojoPartyId {params.dojo_party_id!r} does not match party {params.id}")
            _check_tables(db, params.table_ids)
            # Replace semantics (contract §3.14): absent optional fields are cleared, except the
            # reservation link, which UpdatePartyRequest does not carry (§6 B6).
            fields = _party_fields(
                params.name,
                params.covers,
                params.status,
                params.start_time,
                params.expected_end_time,
                params.end_time,
                params.host_notes,
                params.guest_requests,
                params.deposit,
            )
            db.table("parties").update(key, {"dojo_party_id": params.dojo_party_id, **fields})
            _replace_links(db, "party_tables", "party_id", key, params.table_ids)
            return rows.load_parties(db, [key])[0]

        return await self._write(ctx, work)

    async def delete_party(self, params: PartyIdParams, ctx: CallContext) -> None:
        await self._write(ctx, lambda db: _soft_delete(db, "parties", "party", params.party_id, self._now()))

    async def search_parties(self, params: SearchPartiesParams, ctx: CallContext) -> PagedParties:
        request = read_cursor(params.cursor, "parties")
        # contract §3.16 and §6 C5 (rec): seated parties by default, only the departed with completedOnly.
        conditions = ["deleted_at IS NULL", "end_time IS NOT NULL" if params.completed_only else "end_time IS NULL"]
        args: list[Any] = []
        if params.table_id is not None:
            conditions.append("EXISTS (SELECT 1 FROM party_tables t WHERE t.party_id = parties.id AND t.table_id = ?)")
            args.append(params.table_id)

        def work(db: sqlite_utils.Database) -> PagedParties:
            keys, more_before, more_after = rows.keyset_page(db, "parties", "id", conditions, args, request)
            bounds = page_bounds("parties", keys, more_before, more_after)
            data = rows.load_parties(db, [int(k) for k in keys])
            return PagedParties(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: CreateReservationParams, ctx: CallContext) -> Reservation:
        _check_window(params.start_time, params.end_time)

        def work(db: sqlite_utils.Database) -> Reservation:
            # contract §3.17 (rec): idempotent on dojoReservationId.
            existing = rows.one(
                db,
                "SELECT id, deleted_at FROM reservations WHERE dojo_reservation_id = ?",
                [params.dojo_reservation_id],
            )
            if existing is not None:
                if existing["deleted_at"] is not None:
                    raise Conflict(
                        f"reservation {params.dojo_reservation_id!r} was deleted and cannot be created again"
                    )
                return rows.load_reservations(db, [existing["id"]])[0]
            _check_tables(db, params.table_ids)
            key = _insert(
                db,
                "reservations",
                {
                    "dojo_reservation_id": params.dojo_reservation_id,
                    **_reservation_fields(
                        params.name,
                        params.covers,
                        params.start_time,
                        params.end_time,
                        params.host_notes,
                        params.guest_requests,
                    ),
                },
            )
            _replace_links(db, "reservation_tables", "reservation_id", key, params.table_ids)
            return rows.load_reservations(db, [key])[0]

        return await self._write(ctx, work)

    async def get_reservation(self, params: ReservationIdParams, ctx: CallContext) -> Reservation:
        def work(db: sqlite_utils.Database) -> Reservation:
            key = _live_key(db, "reservations", "reservation", params.reservation_id)
            return rows.load_reservations(db, [key])[0]

        return await self._read(ctx, work)

    async def update_reservation(self, params: UpdateReservationParams, ctx: CallContext) -> Reservation:
        _check_window(params.start_time, params.end_time)

        def work(db: sqlite_utils.Database) -> Reservation:
            key = _live_key(db, "reservations", "reservation", params.id)
            stored = rows.one(db, "SELECT dojo_reservation_id FROM reservations WHERE id = ?", [key])
            if stored and stored["dojo_reservation_id"] not in (None, params.dojo_reservation_id):
                raise InvalidRequest(
                    f"dojoReservationId {params.dojo_reservation_id!r} does not match reservation {params.id}"
                )
            _check_tables(db, params.table_ids)
            fields = _reservation_fields(
                params.name, params.covers, params.start_time, params.end_time, params.host_notes, params.guest_requests
            )
            db.table("reservations").update(key, {"dojo_reservation_id": params.dojo_reservation_id, **fields})
            _replace_links(db, "reservation_tables", "reservation_id", key, params.table_ids)
            return rows.load_reservations(db, [key])[0]

        return await self._write(ctx, work)

    async def delete_reservation(self, params: ReservationIdParams, ctx: CallContext) -> None:
        await self._write(
            ctx, lambda db: _soft_delete(db, "reservations", "reservation", params.reservation_id, self._now())
        )

    async def search_reservations(self, params: SearchReservationsParams, ctx: CallContext) -> PagedReservations:
        request = read_cursor(params.cursor, "reservations")
        conditions = ["deleted_at IS NULL"]
        args: list[Any] = []
        if params.table_id is not None:
            conditions.append(
                "EXISTS (SELECT 1 FROM reservation_tables t "
                "WHERE t.reservation_id = reservations.id AND t.table_id = ?)"
            )
            args.append(params.table_id)
        # contract §3.21 (rec): [startTime, endTime) overlaps [fromTime, toTime); a missing bound is open.
        if params.to_time is not None:
            conditions.append("start_time < ?")
            args.append(format_utc(params.to_time))
        if params.from_time is not None:
            conditions.append("end_time > ?")
            args.append(format_utc(params.from_time))

        def work(db: sqlite_utils.Database) -> PagedReservations:
            keys, more_before, more_after = rows.keyset_page(db, "reservations", "id", conditions, args, request)
            bounds = page_bounds("reservations", keys, more_before, more_after)
            data = rows.load_reservations(db, [int(k) for k in keys])
            return PagedReservations(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:

        def work(db: sqlite_utils.Database) -> None:
            now = self._now()  # after the write lock is held: never older than the POS's edits
            if rows.one(db, "SELECT 1 FROM payment_intent_events WHERE event_id = ?", [params.id]) is not None:
                return  # contract §3.22: at-least-once delivery; a replay changes nothing (and writes nothing).
            inserted = db.execute(
                "INSERT OR IGNORE INTO payment_intent_events (event_id, account_id, event, payment_intent_id, "
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
            ).rowcount
            if not inserted:
                return  # contract §3.22: at-least-once delivery; a replay changes nothing.
            # Apply the newest known status, so events delivered out of order settle correctly.
            status = rows.latest_intent_status(db, event.payment_intent_id)
            payment = rows.one(
                db, "SELECT id, order_id, status FROM payments WHERE payment_intent_id = ?", [event.payment_intent_id]
            )
            if payment is None or status is None or payment["status"] == status.value:
                return
            db.execute("UPDATE payments SET status = ? WHERE id = ?", [status.value, payment["id"]])
            db.execute("UPDATE orders SET updated_at = ? WHERE id = ?", [format_utc(now), payment["order_id"]])
            ctx.record(PaymentStatusChanged(str(payment["order_id"]), now, event.payment_intent_id, status))

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


def _apply_lock_change(db: sqlite_utils.Database, order_key: int, change: locks.LockChange) -> None:
    if change.remove:
        db.execute("DELETE FROM order_locks WHERE order_id = ?", [order_key])
    elif change.store is not None:
        lock = change.store
        # Plain SQL, not sqlite_utils' upsert: that one probes the database for ON CONFLICT
        # support by creating a table, and when the probe cannot write (the snapshot attempt
        # runs with query_only) it falls back for good to INSERT OR IGNORE + UPDATE, which
        # silently stores nothing for a table with NOT NULL columns.
        db.execute(
            "INSERT INTO order_locks (order_id, lock_id, expires_at, locked_at, dojo_requesting_product, device_id,"
            " device_type, waiter_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET"
            " lock_id = excluded.lock_id, expires_at = excluded.expires_at, locked_at = excluded.locked_at,"
            " dojo_requesting_product = excluded.dojo_requesting_product, device_id = excluded.device_id,"
            " device_type = excluded.device_type, waiter_id = excluded.waiter_id",
            [
                order_key,
                lock.lock_id,
                format_utc(lock.expires_at),
                format_utc(lock.locked_at),
                lock.requester.dojo_requesting_product,
                lock.requester.device_id,
                lock.requester.device_type,
                lock.requester.waiter_id,
            ],
        )


def _insert_payment(
    db: sqlite_utils.Database, order_key: int, payment: Any, headers: RequestHeaders, now: datetime
) -> None:
    _insert(
        db,
        "payments",
        {
            "order_id": order_key,
            "payment_intent_id": payment.payment_intent_id,
            "tender": "card",
            "paid_amount": payment.paid_value,
            "tips_amount": payment.tips_value,
            "status": payment.status,
            "recorded_at": format_utc(now),
            "dojo_requesting_product": headers.dojo_requesting_product,
            "device_id": headers.device_id,
            "waiter_id": headers.waiter_id,
        },
    )
    db.execute("UPDATE orders SET updated_at = ? WHERE id = ?", [format_utc(now), order_key])


def _insert_order(db: sqlite_utils.Database, params: CreateOrderParams, now: datetime) -> int:
    currency = params.total_amount.currency_code
    dine_in = params.details.dine_in
    collection = params.details.collection
    customer = params.customer
    stamp = format_utc(now)
    order_key: int = _insert(
        db,
        "orders",
        {
            "dojo_order_id": params.dojo_order_id,
            "reference": params.reference,
            "display_name": params.display_name,
            "status": OrderStatus.NEW.value,
            "order_type": params.details.order_type.value,
            "table_id": dine_in.table_id if dine_in else None,
            "waiter_id": dine_in.waiter_id if dine_in else None,
            "party_id": dine_in.party_id if dine_in else None,
            "reservation_id": dine_in.reservation_id if dine_in else None,
            "ready_at": format_utc(dine_in.ready_at) if dine_in and dine_in.ready_at else None,
            "collection_asap": None if collection is None or collection.asap is None else int(collection.asap),
            "collect_at": format_utc(collection.collect_at) if collection and collection.collect_at else None,
            "note": params.note,
            "customer_id": customer.id if customer else None,
            "customer_name": customer.name if customer else None,
            "customer_email": customer.email_address if customer else None,
            "customer_phone": customer.phone_number if customer else None,
            "currency_code": currency,
            "total_amount": params.total_amount.value,
            "service_charge_amount": params.service_charge_amount.value if params.service_charge_amount else None,
            "created_at": stamp,
            "updated_at": stamp,
        },
    )
    if params.reference is None:
        prefix = "DOJO" if params.details.order_type is OrderType.DINE_IN else "COL"
        db.execute("UPDATE orders SET reference = ? WHERE id = ?", [f"{prefix}-{order_key:04d}", order_key])
    _insert_items(db, order_key, params.items)
    db.table("order_discounts").insert_all(
        {
            "order_id": order_key,
            "position": i,
            "name": d.name,
            "amount_total": d.amount_total.value,
            "affected_plu": d.affected_plu,
            "discount_reference": d.discount_reference,
            "code": d.code,
            "amount_percentage": d.amount_percentage,
        }
        for i, d in enumerate(params.discounts or [])
    )
    db.table("order_tax_lines").insert_all(
        {
            "order_id": order_key,
            "position": i,
            "tax_id": t.id,
            "name": t.name,
            "affected_plu": t.affected_plu,
            "amount_percentage": t.amount_percentage,
            "amount_total": t.amount_total.value,
        }
        for i, t in enumerate(params.tax_lines or [])
    )
    db.table("payments").insert_all(
        {
            "order_id": order_key,
            "payment_intent_id": p.payment_intent_id,
            "tender": "card" if p.payment_intent_id else "other",
            "paid_amount": p.paid_amount.value,
            "tips_amount": p.tips_amount.value if p.tips_amount else None,
            "recorded_at": stamp,
        }
        for p in params.payments
    )
    return order_key


def _insert_items(db: sqlite_utils.Database, order_key: int, items: Sequence[OrderItem]) -> None:
    for position, item in enumerate(items):
        item_key = _insert(
            db,
            "order_items",
            {
                "order_id": order_key,
                "position": position,
                "name": item.name,
                "plu": item.plu,
                "quantity": item.quantity,
                "amount_per_item": item.amount_per_item.value,
                "note": item.note,
            },
        )
        _insert_modifiers(db, "item_id", item_key, item.modifiers or [])
        for sub_position, sub in enumerate(item.sub_items or []):
            sub_key = _insert(
                db,
                "order_sub_items",
                {
                    "item_id": item_key,
                    "position": sub_position,
                    "name": sub.name,
                    "plu": sub.plu,
                    "quantity": sub.quantity,
                    "amount_per_item": sub.amount_per_item.value,
                    "note": sub.note,
                },
            )
            _insert_modifiers(db, "sub_item_id", sub_key, sub.modifiers or [])


def _insert_modifiers(db: sqlite_utils.Database, parent_column: str, parent_key: int, modifiers: Sequence[Any]) -> None:
    db.table("order_modifiers").insert_all(
        {
            parent_column: parent_key,
            "position": i,
            "name": m.name,
            "plu": m.plu,
            "quantity": m.quantity,
            "amount_per_modifier": m.amount_per_modifier.value,
        }
        for i, m in enumerate(modifiers)
    )


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    key = db.table(table).insert(row).last_pk
    assert isinstance(key, int)
    return key


def _check_tables(db: sqlite_utils.Database, table_ids: Sequence[str]) -> None:
    unknown = rows.missing_tables(db, table_ids)
    if unknown:
        raise InvalidRequest(f"tableIds: unknown table(s) {', '.join(repr(t) for t in unknown)}")


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidRequest("endTime must be after startTime")


def _reservation_for(db: sqlite_utils.Database, dojo_reservation_id: str | None) -> str | None:
    if dojo_reservation_id is None:
        return None
    row = rows.one(db, "SELECT id FROM reservations WHERE dojo_reservation_id = ?", [dojo_reservation_id])
    return str(row["id"]) if row else None


def _party_fields(
    name: str | None,
    covers: int | None,
    status: str,
    start: datetime,
    expected_end: datetime | None,
    end: datetime | None,
    host_notes: str | None,
    guest_requests: str | None,
    deposit: PartyDeposit | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "covers": covers,
        "status": status,
        "start_time": format_utc(start),
        "expected_end_time": format_utc(expected_end) if expected_end else None,
        "end_time": format_utc(end) if end else None,
        "host_notes": host_notes,
        "guest_requests": guest_requests,
        "deposit_amount": deposit.total_amount.value if deposit else None,
        "deposit_currency": deposit.total_amount.currency_code if deposit else None,
        "deposit_description": deposit.description if deposit else None,
        "deposit_payment_intent_ids": json.dumps(deposit.payment_intent_ids) if deposit else None,
    }


def _reservation_fields(
    name: str, covers: int, start: datetime, end: datetime, host_notes: str | None, guest_requests: str | None
) -> dict[str, Any]:
    return {
        "name": name,
        "covers": covers,
        "start_time": format_utc(start),
        "end_time": format_utc(end),
        "host_notes": host_notes,
        "guest_requests": guest_requests,
    }


def _replace_links(
    db: sqlite_utils.Database, table: str, owner_column: str, owner_key: int, table_ids: Sequence[str]
) -> None:
    db.execute(f"DELETE FROM {table} WHERE {owner_column} = ?", [owner_key])  # noqa: S608
    db.table(table).insert_all(
        {owner_column: owner_key, "table_id": table_id, "position": i}
        for i, table_id in enumerate(dict.fromkeys(table_ids))
    )


def _live_key(db: sqlite_utils.Database, table: str, noun: str, wire_id: str) -> int:
    key = rows.parse_int_id(wire_id)
    sql = f"SELECT id FROM {table} WHERE id = ? AND deleted_at IS NULL"  # noqa: S608 (table names come from code)
    row = rows.one(db, sql, [key]) if key is not None else None
    if row is None:
        raise NotFound(f"{noun} {wire_id!r} does not exist")
    return int(row["id"])


def _soft_delete(db: sqlite_utils.Database, table: str, noun: str, wire_id: str, now: datetime) -> None:
    """contract §3.15/§3.20 (rec): deleting twice is success; NotFound only if it never existed."""
    key = rows.parse_int_id(wire_id)
    row = rows.one(db, f"SELECT id, deleted_at FROM {table} WHERE id = ?", [key]) if key is not None else None  # noqa: S608
    if row is None:
        raise NotFound(f"{noun} {wire_id!r} does not exist")
    if row["deleted_at"] is None:
        db.execute(f"UPDATE {table} SET deleted_at = ? WHERE id = ?", [format_utc(now), row["id"]])  # noqa: S608


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
