"""The file-database POS adapter: every capability, answered from a folder of JSON files.

Same rules as the reference SQLite adapter, by calling the same :mod:`epos_bridge.domain`
functions: this module only reads the facts they need under the folder lock, applies their
decision with atomic file writes, and maps documents to wire models (:mod:`.documents`).
Read-modify-write always runs under the exclusive lock (:mod:`.store`).

Write order matters because two files are never replaced together: the file that makes a
change *true* is written first, the bookkeeping second (an order before the id sequence, the
order's payment status before the intent's event log), so a crash in between leaves a state a
replay repairs rather than one it skips.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from epos_bridge.adapters.jsonfile import documents as docs
from epos_bridge.adapters.jsonfile.changes import JsonFileChangeLog
from epos_bridge.adapters.jsonfile.lockfile import DEFAULT_LOCK_TIMEOUT_S
from epos_bridge.adapters.jsonfile.store import Document, JsonFolder, Snapshot
from epos_bridge.domain import locks, payments
from epos_bridge.domain.bill import VenueDetails, build_bill
from epos_bridge.domain.errors import Conflict, InvalidRequest, NotFound
from epos_bridge.domain.events import PaymentStatusChanged
from epos_bridge.domain.orders import check_cancellable, check_new_order, is_payable
from epos_bridge.domain.pagination import page_bounds, read_cursor
from epos_bridge.ports import CallContext, Clock, SystemClock
from epos_bridge.protocol.base import format_utc, to_wire
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import (
    CLOSED_ORDER_STATUSES,
    Area,
    Order,
    OrderBill,
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

DEFAULT_PARTY_STATUS = "Seated"
"""contract §3.12 (rec): Party.status is required but optional in the request."""

FALLBACK_VENUE = VenueDetails(name="Receipt")


class JsonFilePosAdapter:
    """Implements :class:`epos_bridge.ports.PosAdapter` over a file database (docs/file-database.md)."""

    def __init__(self, folder: JsonFolder, clock: Clock | None = None) -> None:
        self._folder = folder
        self._clock = clock or SystemClock()

    @classmethod
    def open(
        cls, path: Path, clock: Clock | None = None, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> JsonFilePosAdapter:
        return cls(JsonFolder(path, lock_timeout_s=lock_timeout_s), clock)

    @property
    def path(self) -> Path:
        return self._folder.path

    @property
    def changes(self) -> JsonFileChangeLog:
        """The change log the POS-event relay reads (ports.ChangeSource)."""
        return JsonFileChangeLog(self._folder)

    def implemented_capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    async def close(self) -> None:
        await self._folder.close()

    def _now(self) -> datetime:
        return self._clock.now()

    async def _read(self, ctx: CallContext, work: Callable[[Snapshot], T]) -> T:
        return await self._folder.read(work, ctx.deadline)

    async def _write(self, ctx: CallContext, work: Callable[[Snapshot], T]) -> T:
        return await ctx.transaction(self._folder.write, work)

    # --- orders ---------------------------------------------------------------------------

    async def search_orders(self, params: SearchOrdersParams, ctx: CallContext) -> PagedOrders:
        request = read_cursor(params.cursor, "orders")
        wanted = {}
        if params.dine_in is not None:
            wanted = {k: v for k, v in to_wire(params.dine_in).items() if v is not None}

        def matches(document: Document) -> bool:
            status = docs.order_status(document)
            if status in CLOSED_ORDER_STATUSES:
                return False
            branch = docs.dine_in(document)
            if any(branch.get(field) != value for field, value in wanted.items()):
                return False
            if params.payable_only:
                return is_payable(status, int(document["totalAmount"]), docs.paid_value(document))
            return True

        def work(snap: Snapshot) -> PagedOrders:
            found: dict[int, Document] = {}
            for key, document in _orders(snap):
                if docs.checked(_order_file(key), partial(matches, document)):
                    found[key] = document
            keys, more_before, more_after = docs.page_of(sorted(found), request)
            bounds = page_bounds("orders", list(keys), more_before, more_after)
            data = [_wire_order(key, found[key]) for key in keys]
            return PagedOrders(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    async def get_order(self, params: OrderIdParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            key, document = _order(snap, params.order_id)
            return _wire_order(key, document)

        return await self._read(ctx, work)

    async def get_order_bill(self, params: OrderIdParams, ctx: CallContext) -> OrderBill:
        def work(snap: Snapshot) -> OrderBill:
            now = self._now()
            key, document = _order(snap, params.order_id)
            order = _wire_order(key, document)
            venue = docs.checked(docs.VENUE, lambda: docs.venue_details(snap.load(docs.VENUE)))
            if venue is None:
                log.warning("the POS folder has no venue.json: the bill prints without a merchant header")
            table_name = None
            table_id = order.details.dine_in.table_id if order.details.dine_in else None
            if table_id:
                table = _tables(snap).get(table_id)
                table_name = str(table["name"]) if table else table_id
            return build_bill(order, venue or FALLBACK_VENUE, table_name, now)

        return await self._read(ctx, work)

    async def cancel_order(self, params: OrderIdParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()  # after the lock is held: never older than the POS's edits
            key, document = _order(snap, params.order_id, fresh=True)
            facts = docs.checked(
                _order_file(key),
                lambda: (docs.order_status(document), docs.paid_value(document), docs.held_lock(document)),
            )
            status, paid, lock = facts
            active = locks.active_lock(lock, now)
            if check_cancellable(params.order_id, status, paid, active is not None, document.get("openAtTill")):
                document = {**document, "status": OrderStatus.CANCELED.value, "updatedAt": format_utc(now)}
                snap.save(_order_file(key), document)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    async def create_order(self, params: CreateOrderParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()
            existing = list(_orders(snap))
            # contract §3.4 (rec): idempotent on dojoOrderId.
            for key, document in existing:
                if document.get("dojoOrderId") == params.dojo_order_id:
                    return _wire_order(key, document)
            check_new_order(params)
            dine_in = params.details.dine_in
            if dine_in is not None and dine_in.table_id and _missing_tables(snap, [dine_in.table_id]):
                raise InvalidRequest(f"details.dineIn.tableId: unknown table {dine_in.table_id!r}")
            sequences = snap.load(docs.SEQUENCES, fresh=True) or {}
            key = docs.next_id(sequences, docs.ORDERS, (k for k, _ in existing))
            document = _new_order_document(key, params, now)
            snap.save(_order_file(key), document)
            snap.save(docs.SEQUENCES, {**sequences, docs.ORDERS: key + 1})
            return _wire_order(key, document)

        return await self._write(ctx, work)

    async def record_order_payment(self, params: RecordOrderPaymentParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()  # after the lock is held: never older than the POS's edits
            key, document = _order(snap, params.order_id, fresh=True)
            order = docs.checked(_order_file(key), lambda: docs.payable(params.order_id, document))
            current_lock = docs.checked(_order_file(key), lambda: docs.held_lock(document))
            intent = snap.load(docs.intent_file(params.payment_intent_id), fresh=True)
            known = docs.checked(docs.intent_file(params.payment_intent_id), lambda: docs.latest_intent_status(intent))
            decision = payments.decide_payment(
                order, current_lock, params, known, now, recorded=_recorded_intent(snap, params.payment_intent_id)
            )
            if decision.warning:
                log.warning("%s", decision.warning)
            if decision.payment is not None:
                payment = decision.payment
                row = {
                    "paymentIntentId": payment.payment_intent_id,
                    "tender": "card",
                    "paidAmount": payment.paid_value,
                    "tipsAmount": payment.tips_value,
                    "status": payment.status,
                    "recordedAt": format_utc(now),
                    "requester": docs.headers_doc(params.headers),
                }
                document = {**document, "payments": [*document.get("payments", []), row], "updatedAt": format_utc(now)}
                snap.save(_order_file(key), document)
            ctx.record(*decision.events)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    # --- order locks ----------------------------------------------------------------------

    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()
            key, document = _order(snap, params.order_id, fresh=True)
            order, current = _lock_facts(key, params.order_id, document)
            change = locks.decide_create(order, current, params.lock_id, params.expiry, now, params.headers)
            document = _apply_lock_change(snap, key, document, change)
            ctx.record(*change.events)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    async def extend_order_lock(self, params: ExtendOrderLockParams, ctx: CallContext) -> None:
        def work(snap: Snapshot) -> None:
            now = self._now()
            key, document = _order(snap, params.order_id, fresh=True)
            order, current = _lock_facts(key, params.order_id, document)
            change = locks.decide_extend(order, current, params.lock_id, params.expiry, now, params.headers)
            _apply_lock_change(snap, key, document, change)
            ctx.record(*change.events)

        await self._write(ctx, work)

    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()
            key, document = _order(snap, params.order_id, fresh=True)
            _, current = _lock_facts(key, params.order_id, document)
            change = locks.decide_delete(params.order_id, current, params.lock_id, now)
            document = _apply_lock_change(snap, key, document, change)
            ctx.record(*change.events)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    # --- tables and areas -----------------------------------------------------------------

    async def list_areas(self, params: WithHeaders, ctx: CallContext) -> list[Area]:
        def work(snap: Snapshot) -> list[Area]:
            raw = snap.load(docs.AREAS) or []
            areas = docs.checked(docs.AREAS, lambda: [docs.to_area(a) for a in raw])
            return sorted(areas, key=lambda a: (a.name, a.id))

        return await self._read(ctx, work)

    async def search_tables(self, params: SearchTablesParams, ctx: CallContext) -> PagedTables:
        request = read_cursor(params.cursor, "tables", str)

        def work(snap: Snapshot) -> PagedTables:
            tables = docs.checked(docs.TABLES, lambda: {t: docs.to_table(d) for t, d in _tables(snap).items()})
            found = [
                t
                for t in tables.values()
                if (params.area_id is None or t.area_id == params.area_id)
                and (params.waiter_id is None or params.waiter_id in (t.waiter_ids or []))
            ]
            keys, more_before, more_after = docs.page_of(sorted(t.id for t in found), request)
            bounds = page_bounds("tables", list(keys), more_before, more_after)
            return PagedTables(data=[tables[k] for k in keys], before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- parties --------------------------------------------------------------------------

    async def create_party(self, params: CreatePartyParams, ctx: CallContext) -> Party:
        def work(snap: Snapshot) -> Party:
            existing = list(_documents(snap, docs.PARTIES))
            # contract §3.12 (rec): idempotent on dojoPartyId.
            for key, document in existing:
                if document.get("dojoPartyId") == params.dojo_party_id:
                    if document.get("deletedAt") is not None:
                        raise Conflict(f"party {params.dojo_party_id!r} was deleted and cannot be created again")
                    return _wire_party(key, document)
            _check_tables(snap, params.table_ids)
            reservation_id = params.reservation_id or _reservation_for(snap, params.dojo_reservation_id)
            sequences = snap.load(docs.SEQUENCES, fresh=True) or {}
            key = docs.next_id(sequences, docs.PARTIES, (k for k, _ in existing))
            document = {
                "id": str(key),
                "dojoPartyId": params.dojo_party_id,
                "reservationId": reservation_id,
                "dojoReservationId": params.dojo_reservation_id,
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
                    params.table_ids,
                ),
                "deletedAt": None,
            }
            snap.save(_file(docs.PARTIES, key), document)
            snap.save(docs.SEQUENCES, {**sequences, docs.PARTIES: key + 1})
            return _wire_party(key, document)

        return await self._write(ctx, work)

    async def get_party(self, params: PartyIdParams, ctx: CallContext) -> Party:
        def work(snap: Snapshot) -> Party:
            key, document = _live(snap, docs.PARTIES, "party", params.party_id)
            return _wire_party(key, document)

        return await self._read(ctx, work)

    async def update_party(self, params: UpdatePartyParams, ctx: CallContext) -> Party:
        def work(snap: Snapshot) -> Party:
            key, document = _live(snap, docs.PARTIES, "party", params.id, fresh=True)
            if document.get("dojoPartyId") not in (None, params.dojo_party_id):
                raise InvalidRequest(f"dojoPartyId {params.dojo_party_id!r} does not match party {params.id}")
            _check_tables(snap, params.table_ids)
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
                params.table_ids,
            )
            document = {**document, "dojoPartyId": params.dojo_party_id, **fields}
            snap.save(_file(docs.PARTIES, key), document)
            return _wire_party(key, document)

        return await self._write(ctx, work)

    async def delete_party(self, params: PartyIdParams, ctx: CallContext) -> None:
        await self._write(ctx, lambda snap: _soft_delete(snap, docs.PARTIES, "party", params.party_id, self._now()))

    async def search_parties(self, params: SearchPartiesParams, ctx: CallContext) -> PagedParties:
        request = read_cursor(params.cursor, "parties")

        def matches(document: Document) -> bool:
            if document.get("deletedAt") is not None:
                return False
            # contract §3.16 and §6 C5 (rec): seated parties by default, only the departed with completedOnly.
            if (document.get("endTime") is not None) != bool(params.completed_only):
                return False
            return params.table_id is None or params.table_id in (document.get("tableIds") or [])

        def work(snap: Snapshot) -> PagedParties:
            found = {k: d for k, d in _documents(snap, docs.PARTIES) if matches(d)}
            keys, more_before, more_after = docs.page_of(sorted(found), request)
            bounds = page_bounds("parties", list(keys), more_before, more_after)
            data = [_wire_party(k, found[k]) for k in keys]
            return PagedParties(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: CreateReservationParams, ctx: CallContext) -> Reservation:
        _check_window(params.start_time, params.end_time)

        def work(snap: Snapshot) -> Reservation:
            existing = list(_documents(snap, docs.RESERVATIONS))
            # contract §3.17 (rec): idempotent on dojoReservationId.
            for key, document in existing:
                if document.get("dojoReservationId") == params.dojo_reservation_id:
                    if document.get("deletedAt") is not None:
                        raise Conflict(
                            f"reservation {params.dojo_reservation_id!r} was deleted and cannot be created again"
                        )
                    return _wire_reservation(key, document)
            _check_tables(snap, params.table_ids)
            sequences = snap.load(docs.SEQUENCES, fresh=True) or {}
            key = docs.next_id(sequences, docs.RESERVATIONS, (k for k, _ in existing))
            document = {
                "id": str(key),
                "dojoReservationId": params.dojo_reservation_id,
                **_reservation_fields(params),
                "deletedAt": None,
            }
            snap.save(_file(docs.RESERVATIONS, key), document)
            snap.save(docs.SEQUENCES, {**sequences, docs.RESERVATIONS: key + 1})
            return _wire_reservation(key, document)

        return await self._write(ctx, work)

    async def get_reservation(self, params: ReservationIdParams, ctx: CallContext) -> Reservation:
        def work(snap: Snapshot) -> Reservation:
            key, document = _live(snap, docs.RESERVATIONS, "reservation", params.reservation_id)
            return _wire_reservation(key, document)

        return await self._read(ctx, work)

    async def update_reservation(self, params: UpdateReservationParams, ctx: CallContext) -> Reservation:
        _check_window(params.start_time, params.end_time)

        def work(snap: Snapshot) -> Reservation:
            key, document = _live(snap, docs.RESERVATIONS, "reservation", params.id, fresh=True)
            if document.get("dojoReservationId") not in (None, params.dojo_reservation_id):
                raise InvalidRequest(
                    f"dojoReservationId {params.dojo_reservation_id!r} does not match reservation {params.id}"
                )
            _check_tables(snap, params.table_ids)
            document = {**document, "dojoReservationId": params.dojo_reservation_id, **_reservation_fields(params)}
            snap.save(_file(docs.RESERVATIONS, key), document)
            return _wire_reservation(key, document)

        return await self._write(ctx, work)

    async def delete_reservation(self, params: ReservationIdParams, ctx: CallContext) -> None:
        await self._write(
            ctx, lambda snap: _soft_delete(snap, docs.RESERVATIONS, "reservation", params.reservation_id, self._now())
        )

    async def search_reservations(self, params: SearchReservationsParams, ctx: CallContext) -> PagedReservations:
        request = read_cursor(params.cursor, "reservations")

        def matches(document: Document) -> bool:
            if document.get("deletedAt") is not None:
                return False
            if params.table_id is not None and params.table_id not in (document.get("tableIds") or []):
                return False
            # contract §3.21 (rec): [startTime, endTime) overlaps [fromTime, toTime); a missing bound is open.
            if params.to_time is not None and not docs.required_time(document["startTime"]) < params.to_time:
                return False
            return params.from_time is None or docs.required_time(document["endTime"]) > params.from_time

        def work(snap: Snapshot) -> PagedReservations:
            found: dict[int, Document] = {}
            for key, document in _documents(snap, docs.RESERVATIONS):
                if docs.checked(_file(docs.RESERVATIONS, key), partial(matches, document)):
                    found[key] = document
            keys, more_before, more_after = docs.page_of(sorted(found), request)
            bounds = page_bounds("reservations", list(keys), more_before, more_after)
            data = [_wire_reservation(k, found[k]) for k in keys]
            return PagedReservations(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:
        def work(snap: Snapshot) -> None:
            now = self._now()
            relative = docs.intent_file(event.payment_intent_id)
            log_doc = snap.load(relative, fresh=True) or {"paymentIntentId": event.payment_intent_id, "events": []}
            if any(e.get("eventId") == params.id for e in log_doc.get("events", [])):
                return  # contract §3.22: at-least-once delivery; a replay changes nothing.
            record = {
                "eventId": params.id,
                "accountId": params.account_id,
                "event": params.event,
                "paymentStatus": event.payment_status.value,
                "captureMode": event.capture_mode.value,
                "createdAt": format_utc(params.created_at),
                "receivedAt": format_utc(now),
            }
            log_doc = {**log_doc, "events": [*log_doc.get("events", []), record]}
            # Apply the newest known status, so events delivered out of order settle correctly.
            status = docs.checked(relative, lambda: docs.latest_intent_status(log_doc))
            holder = _order_holding_intent(snap, event.payment_intent_id)
            if holder is not None and status is not None:
                key, document = _order(snap, str(holder), fresh=True)
                changed = copy.deepcopy(document)
                rows = [p for p in changed.get("payments", []) if p.get("paymentIntentId") == event.payment_intent_id]
                if rows and rows[0].get("status") != status.value:
                    rows[0]["status"] = status.value
                    changed["updatedAt"] = format_utc(now)
                    snap.save(_order_file(key), changed)  # first: a crash before the log is repaired by a replay
                    ctx.record(PaymentStatusChanged(str(key), now, event.payment_intent_id, status))
            snap.save(relative, log_doc)

        await self._write(ctx, work)


# --- helpers running under the folder lock ---------------------------------------------------


def _file(directory: str, key: int) -> str:
    return f"{directory}/{key}.json"


def _order_file(key: int) -> str:
    return _file(docs.ORDERS, key)


def _documents(snap: Snapshot, directory: str) -> Iterator[tuple[int, Document]]:
    """Documents whose file name is an id this POS issues; other files are left alone."""
    for stem, document in snap.load_all(directory):
        key = docs.numeric_id(stem)
        if key is not None and str(key) == stem:
            yield key, document


def _orders(snap: Snapshot) -> Iterator[tuple[int, Document]]:
    return _documents(snap, docs.ORDERS)


def _order(snap: Snapshot, wire_id: str, *, fresh: bool = False) -> tuple[int, Document]:
    """The order file for a wire id; ``NotFound`` for anything that is not one."""
    key = docs.numeric_id(wire_id)
    document = snap.load(_order_file(key), fresh=fresh) if key is not None else None
    if key is None or document is None:
        raise NotFound(f"order {wire_id!r} does not exist")
    return key, document


def _wire_order(key: int, document: Document) -> Order:
    return docs.checked(_order_file(key), lambda: docs.to_order(str(key), document))


def _wire_party(key: int, document: Document) -> Party:
    return docs.checked(_file(docs.PARTIES, key), lambda: docs.to_party(str(key), document))


def _wire_reservation(key: int, document: Document) -> Reservation:
    return docs.checked(_file(docs.RESERVATIONS, key), lambda: docs.to_reservation(str(key), document))


def _lock_facts(key: int, order_id: str, document: Document) -> tuple[locks.LockableOrder, locks.HeldLock | None]:
    return docs.checked(_order_file(key), lambda: (docs.lockable(order_id, document), docs.held_lock(document)))


def _apply_lock_change(snap: Snapshot, key: int, document: Document, change: locks.LockChange) -> Document:
    """The lock lives in the order's own file, so order and lock are replaced together."""
    if change.remove:
        document = {**document, "lock": None}
    elif change.store is not None:
        document = {**document, "lock": docs.lock_doc(change.store)}
    else:
        return document
    snap.save(_order_file(key), document)
    return document


def _order_holding_intent(snap: Snapshot, payment_intent_id: str) -> int | None:
    recorded = _recorded_intent(snap, payment_intent_id)
    return int(recorded.order_id) if recorded is not None else None


def _recorded_intent(snap: Snapshot, payment_intent_id: str) -> payments.RecordedIntent | None:
    """Where a paymentIntentId is already recorded, on any order (exact string match)."""
    for key, document in _orders(snap):
        for row in document.get("payments", []):
            if row.get("paymentIntentId") == payment_intent_id:
                return payments.RecordedIntent(str(key), int(row["paidAmount"]), row.get("tipsAmount"))
    return None


def _tables(snap: Snapshot) -> dict[str, Document]:
    raw = snap.load(docs.TABLES) or []
    return docs.checked(docs.TABLES, lambda: {str(t["id"]): t for t in raw})


def _missing_tables(snap: Snapshot, table_ids: Sequence[str]) -> list[str]:
    known = _tables(snap)
    return [t for t in table_ids if t not in known]


def _check_tables(snap: Snapshot, table_ids: Sequence[str]) -> None:
    unknown = _missing_tables(snap, table_ids)
    if unknown:
        raise InvalidRequest(f"tableIds: unknown table(s) {', '.join(repr(t) for t in unknown)}")


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidRequest("endTime must be after startTime")


def _reservation_for(snap: Snapshot, dojo_reservation_id: str | None) -> str | None:
    if dojo_reservation_id is None:
        return None
    for key, document in _documents(snap, docs.RESERVATIONS):
        if document.get("dojoReservationId") == dojo_reservation_id:
            return str(key)
    return None


def _live(snap: Snapshot, directory: str, noun: str, wire_id: str, *, fresh: bool = False) -> tuple[int, Document]:
    key = docs.numeric_id(wire_id)
    document = snap.load(_file(directory, key), fresh=fresh) if key is not None else None
    if key is None or document is None or document.get("deletedAt") is not None:
        raise NotFound(f"{noun} {wire_id!r} does not exist")
    return key, document


def _soft_delete(snap: Snapshot, directory: str, noun: str, wire_id: str, now: datetime) -> None:
    """contract §3.15/§3.20 (rec): deleting twice is success; NotFound only if it never existed."""
    key = docs.numeric_id(wire_id)
    document = snap.load(_file(directory, key), fresh=True) if key is not None else None
    if key is None or document is None:
        raise NotFound(f"{noun} {wire_id!r} does not exist")
    if document.get("deletedAt") is None:
        snap.save(_file(directory, key), {**document, "deletedAt": format_utc(now)})


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
    table_ids: Sequence[str],
) -> Document:
    return {
        "name": name,
        "covers": covers,
        "status": status,
        "startTime": format_utc(start),
        "expectedEndTime": docs.time_text(expected_end),
        "endTime": docs.time_text(end),
        "hostNotes": host_notes,
        "guestRequests": guest_requests,
        "deposit": to_wire(deposit) if deposit is not None else None,
        "tableIds": list(dict.fromkeys(table_ids)),
    }


def _reservation_fields(params: CreateReservationParams | UpdateReservationParams) -> Document:
    return {
        "name": params.name,
        "covers": params.covers,
        "startTime": format_utc(params.start_time),
        "endTime": format_utc(params.end_time),
        "hostNotes": params.host_notes,
        "guestRequests": params.guest_requests,
        "tableIds": list(dict.fromkeys(params.table_ids)),
    }


def _new_order_document(key: int, params: CreateOrderParams, now: datetime) -> Document:
    stamp = format_utc(now)
    reference = params.reference
    if reference is None:
        prefix = "DOJO" if params.details.order_type is OrderType.DINE_IN else "COL"
        reference = f"{prefix}-{key:04d}"
    payments_rows: list[dict[str, Any]] = [
        {
            "paymentIntentId": p.payment_intent_id,
            "tender": "card" if p.payment_intent_id else "other",
            "paidAmount": p.paid_amount.value,
            "tipsAmount": p.tips_amount.value if p.tips_amount else None,
            "status": "Recorded",
            "recordedAt": stamp,
        }
        for p in params.payments
    ]
    return {
        "id": str(key),
        "dojoOrderId": params.dojo_order_id,
        "reference": reference,
        "displayName": params.display_name,
        "status": OrderStatus.NEW.value,
        "details": docs.details_doc(params.details),
        "items": [to_wire(i) for i in params.items],
        "note": params.note,
        "customer": to_wire(params.customer) if params.customer is not None else None,
        "discounts": [to_wire(d) for d in params.discounts or []],
        "taxLines": [to_wire(t) for t in params.tax_lines or []],
        "currencyCode": params.total_amount.currency_code,
        "totalAmount": params.total_amount.value,
        "serviceChargeAmount": params.service_charge_amount.value if params.service_charge_amount else None,
        "openAtTill": None,
        "createdAt": stamp,
        "updatedAt": stamp,
        "payments": payments_rows,
        "lock": None,
    }
