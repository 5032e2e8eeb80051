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

import asyncio
import contextlib
import copy
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from epos_bridge.adapters.jsonfile import documents as docs
from epos_bridge.adapters.jsonfile.changes import JsonFileChangeLog
from epos_bridge.adapters.jsonfile.lockfile import DEFAULT_LOCK_TIMEOUT_S
from epos_bridge.adapters.jsonfile.store import Document, JsonFolder, Snapshot
from epos_bridge.adapters.transactional import StoreBackedAdapter
from epos_bridge.domain import bill, bookings, intents, locks, orders, payments, records
from epos_bridge.domain.errors import NotFound, PosUnavailable
from epos_bridge.domain.orders import RECORDED
from epos_bridge.domain.pagination import PageBounds, PageRequest, page_bounds, page_of, read_cursor
from epos_bridge.ports import CallContext, Clock
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import Area, Order, OrderBill, OrderStatus, Party, PaymentIntentEvent, Reservation

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", int, str)
V = TypeVar("V")


class JsonFilePosAdapter(StoreBackedAdapter[Snapshot]):
    """Implements :class:`epos_bridge.ports.PosAdapter` over a file database (docs/file-database.md)."""

    def __init__(self, folder: JsonFolder, clock: Clock | None = None) -> None:
        super().__init__(folder, clock)
        self._folder = folder

    @classmethod
    def open(
        cls, path: Path, clock: Clock | None = None, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> JsonFilePosAdapter:
        return cls(JsonFolder(path, lock_timeout_s=lock_timeout_s), clock)

    @property
    def changes(self) -> JsonFileChangeLog:
        """The change log the POS-event relay reads (ports.ChangeSource)."""
        return JsonFileChangeLog(self._folder)

    async def check_writable(self) -> None:
        """A real, harmless write: a temporary file created in the folder and removed again."""
        await asyncio.to_thread(_write_and_remove, self._folder.path)

    # --- orders ---------------------------------------------------------------------------

    async def search_orders(self, params: wire.SearchOrdersParams, ctx: CallContext) -> wire.PagedOrders:
        request = read_cursor(params.cursor, "orders")
        wanted = orders.order_filter(params)

        def work(snap: Snapshot) -> wire.PagedOrders:
            found = _matching(snap, docs.ORDERS, lambda _, d: wanted.matches(docs.SearchedOrderDocument(d)))
            data, bounds = _page(found, request, "orders", _wire_order)
            return wire.PagedOrders(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    async def get_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            key, document = _order(snap, params.order_id)
            return _wire_order(key, document)

        return await self._read(ctx, work)

    async def get_order_bill(self, params: wire.OrderIdParams, ctx: CallContext) -> OrderBill:
        def work(snap: Snapshot) -> OrderBill:
            now = self._now()
            key, document = _order(snap, params.order_id)
            order = _wire_order(key, document)
            venue = docs.checked(docs.VENUE, lambda: docs.venue_details(snap.load(docs.VENUE)))
            if venue is None:
                log.warning("the POS folder has no venue.json: the bill prints without a merchant header")
            table_id = bill.table_of(order)
            table = _tables(snap).get(table_id) if table_id else None
            return bill.build_bill(order, venue, str(table["name"]) if table else None, now)

        return await self._read(ctx, work)

    async def cancel_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()  # after the lock is held: never older than the POS's edits
            key, document = _order(snap, params.order_id, fresh=True)
            facts = docs.checked(
                _order_file(key),
                lambda: (
                    docs.order_status(document),
                    orders.paid_value(docs.stored_payments(document)),
                    docs.held_lock(document),
                ),
            )
            status, paid, lock = facts
            active = locks.active_lock(lock, now)
            if orders.check_cancellable(params.order_id, status, paid, active is not None, document.get("openAtTill")):
                document = {**document, "status": OrderStatus.CANCELED.value, "updatedAt": format_utc(now)}
                snap.save(_order_file(key), document)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    async def create_order(self, params: wire.CreateOrderParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()
            existing, replay = _replay(snap, docs.ORDERS, records.ORDER, params.dojo_order_id)
            if replay is not None:
                return _wire_order(replay, existing[replay])
            order = orders.decide_new_order(params, _tables(snap), now)
            return _wire_order(*_store_new(snap, docs.ORDERS, existing, lambda key: docs.order_doc(key, order)))

        return await self._write(ctx, work)

    async def record_order_payment(self, params: wire.RecordOrderPaymentParams, ctx: CallContext) -> Order:
        def work(snap: Snapshot) -> Order:
            now = self._now()  # after the lock is held: never older than the POS's edits
            key, document = _order(snap, params.order_id, fresh=True)
            order = docs.checked(_order_file(key), lambda: docs.payable(params.order_id, document))
            current_lock = docs.checked(_order_file(key), lambda: docs.held_lock(document))
            intent = snap.load(docs.intent_file(params.payment_intent_id), fresh=True)
            history = docs.checked(docs.intent_file(params.payment_intent_id), lambda: docs.intent_events(intent))
            decision = payments.decide_payment(
                order,
                current_lock,
                params,
                intents.newest_status(history),
                now,
                recorded=_recorded_intent(snap, params.payment_intent_id),
            )
            if decision.warning:
                log.warning("%s", decision.warning)
            if decision.payment is not None:
                row = docs.payment_doc(orders.PaymentRecord.taken(decision.payment, now, params.headers))
                document = {**document, "payments": [*document.get("payments", []), row], "updatedAt": format_utc(now)}
                snap.save(_order_file(key), document)
            ctx.record(*decision.events)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    # --- order locks ----------------------------------------------------------------------

    async def _change_lock(
        self, params: wire.CreateOrderLockParams, ctx: CallContext, decide: locks.LockDecision
    ) -> Order:

        def work(snap: Snapshot) -> Order:
            now = self._now()
            key, document = _order(snap, params.order_id, fresh=True)
            order, current = _lock_facts(key, params.order_id, document)
            change = decide(order, current, params.lock_id, params.expiry, now, params.headers)
            document = _apply_lock_change(snap, key, document, change)
            ctx.record(*change.events)
            return _wire_order(key, document)

        return await self._write(ctx, work)

    async def delete_order_lock(self, params: wire.DeleteOrderLockParams, ctx: CallContext) -> Order:
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

    async def list_areas(self, params: wire.WithHeaders, ctx: CallContext) -> list[Area]:
        def work(snap: Snapshot) -> list[Area]:
            raw = snap.load(docs.AREAS) or []
            areas = docs.checked(docs.AREAS, lambda: [docs.to_area(a) for a in raw])
            return sorted(areas, key=lambda a: (a.name, a.id))

        return await self._read(ctx, work)

    async def search_tables(self, params: wire.SearchTablesParams, ctx: CallContext) -> wire.PagedTables:
        request = read_cursor(params.cursor, "tables", str)

        def work(snap: Snapshot) -> wire.PagedTables:
            tables = docs.checked(docs.TABLES, lambda: [docs.to_table(d) for d in _tables(snap).values()])
            found = {
                t.id: t
                for t in tables
                if (params.area_id is None or t.area_id == params.area_id)
                and (params.waiter_id is None or params.waiter_id in (t.waiter_ids or []))
            }
            data, bounds = _page(found, request, "tables", lambda _, table: table)
            return wire.PagedTables(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- parties --------------------------------------------------------------------------

    async def create_party(self, params: wire.CreatePartyParams, ctx: CallContext) -> Party:
        def work(snap: Snapshot) -> Party:
            existing, replay = _replay(snap, docs.PARTIES, records.PARTY, params.dojo_party_id)
            if replay is not None:
                return _wire_party(replay, existing[replay])
            linked = _reservation_of_dojo_id(snap, params.dojo_reservation_id)
            new = bookings.decide_new_party(params, _tables(snap), linked)
            return _wire_party(*_store_new(snap, docs.PARTIES, existing, lambda key: docs.party_doc(key, new)))

        return await self._write(ctx, work)

    async def get_party(self, params: wire.PartyIdParams, ctx: CallContext) -> Party:
        return await self._get(ctx, docs.PARTIES, records.PARTY, params.party_id, _wire_party)

    async def update_party(self, params: wire.UpdatePartyParams, ctx: CallContext) -> Party:
        fields = docs.record_fields(bookings.updated_party(params))
        update = (params.id, params.dojo_party_id, params.table_ids)
        return await self._replace(ctx, docs.PARTIES, records.PARTY, update, fields, _wire_party)

    async def delete_party(self, params: wire.PartyIdParams, ctx: CallContext) -> None:
        await self._write(ctx, lambda snap: self._soft_delete(snap, docs.PARTIES, records.PARTY, params.party_id))

    async def search_parties(self, params: wire.SearchPartiesParams, ctx: CallContext) -> wire.PagedParties:
        request = read_cursor(params.cursor, "parties")
        wanted = bookings.party_filter(params)

        def work(snap: Snapshot) -> wire.PagedParties:
            found = _matching(snap, docs.PARTIES, lambda _, d: wanted.matches(docs.SearchedPartyDocument(d)))
            data, bounds = _bookings_page(found, request, "parties", "party", _party_of)
            return wire.PagedParties(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: wire.CreateReservationParams, ctx: CallContext) -> Reservation:
        reservation = bookings.reservation_record(params)

        def work(snap: Snapshot) -> Reservation:
            existing, replay = _replay(snap, docs.RESERVATIONS, records.RESERVATION, params.dojo_reservation_id)
            if replay is not None:
                return _wire_reservation(replay, existing[replay])
            records.check_tables(params.table_ids, _tables(snap))
            created = _store_new(snap, docs.RESERVATIONS, existing, lambda key: docs.reservation_doc(key, reservation))
            return _wire_reservation(*created)

        return await self._write(ctx, work)

    async def get_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> Reservation:
        return await self._get(ctx, docs.RESERVATIONS, records.RESERVATION, params.reservation_id, _wire_reservation)

    async def update_reservation(self, params: wire.UpdateReservationParams, ctx: CallContext) -> Reservation:
        fields = docs.record_fields(bookings.reservation_record(params))
        update = (params.id, params.dojo_reservation_id, params.table_ids)
        return await self._replace(ctx, docs.RESERVATIONS, records.RESERVATION, update, fields, _wire_reservation)

    async def delete_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> None:
        await self._write(
            ctx, lambda snap: self._soft_delete(snap, docs.RESERVATIONS, records.RESERVATION, params.reservation_id)
        )

    async def search_reservations(
        self, params: wire.SearchReservationsParams, ctx: CallContext
    ) -> wire.PagedReservations:
        request = read_cursor(params.cursor, "reservations")
        wanted = bookings.reservation_filter(params)

        def work(snap: Snapshot) -> wire.PagedReservations:
            found = _matching(
                snap,
                docs.RESERVATIONS,
                lambda key, d: bookings.searched(
                    "reservation", key, partial(wanted.matches, docs.SearchedReservationDocument(d))
                ),
            )
            data, bounds = _bookings_page(found, request, "reservations", "reservation", _reservation_of)
            return wire.PagedReservations(data=data, before=bounds.before, after=bounds.after)

        return await self._read(ctx, work)

    async def _get(
        self,
        ctx: CallContext,
        directory: str,
        kind: records.RecordKind,
        wire_id: str,
        wire: Callable[[int, Document], T],
    ) -> T:
        def work(snap: Snapshot) -> T:
            found, document = _stored(snap, directory, kind, wire_id)
            return wire(records.live(kind, wire_id, found), document)

        return await self._read(ctx, work)

    async def _replace(
        self,
        ctx: CallContext,
        directory: str,
        kind: records.RecordKind,
        update: tuple[str, str, list[str]],
        fields: Document,
        wire: Callable[[int, Document], T],
    ) -> T:
        """An Update (replace semantics): ``update`` is the wire id, Dojo's id and the tables sent."""
        wire_id, dojo_id, table_ids = update

        def work(snap: Snapshot) -> T:
            found, document = _stored(snap, directory, kind, wire_id, fresh=True)
            key = records.decide_update(kind, wire_id, found, dojo_id, table_ids, _tables(snap))
            document = {**document, **fields}
            snap.save(_file(directory, key), document)
            return wire(key, document)

        return await self._write(ctx, work)

    def _soft_delete(self, snap: Snapshot, directory: str, kind: records.RecordKind, wire_id: str) -> None:
        now = self._now()  # after the lock is held: never older than the POS's edits
        found, document = _stored(snap, directory, kind, wire_id, fresh=True)
        key = records.decide_soft_delete(kind, wire_id, found)
        if key is not None:
            snap.save(_file(directory, key), {**document, "deletedAt": format_utc(now)})

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: wire.HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:
        def work(snap: Snapshot) -> None:
            now = self._now()
            relative = docs.intent_file(event.payment_intent_id)
            log_doc = snap.load(relative, fresh=True) or {"paymentIntentId": event.payment_intent_id, "events": []}
            history = docs.checked(relative, lambda: docs.intent_events(log_doc))
            if intents.is_redelivery(params, history):
                return  # contract §3.22: at-least-once delivery; a replay changes nothing (no order is read).
            held = _payment_under_intent(snap, event.payment_intent_id)
            decision = intents.decide_intent_event(params, event, history, held.recorded if held else None, now)
            if decision.store is None:
                return  # contract §3.22: at-least-once delivery; a replay changes nothing.
            if decision.payment_status is not None and held is not None:
                # first: a crash before the log is repaired by a replay
                snap.save(_order_file(held.order_key), held.with_status(decision.payment_status.value, now))
            ctx.record(*decision.events)
            record = {
                "eventId": params.id,
                "accountId": params.account_id,
                "event": params.event,
                "paymentStatus": event.payment_status.value,
                "captureMode": event.capture_mode.value,
                "createdAt": format_utc(params.created_at),
                "receivedAt": format_utc(now),
            }
            snap.save(relative, {**log_doc, "events": [*log_doc.get("events", []), record]})

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


def _party_of(key: int, document: Document) -> Party:
    """May raise :class:`~epos_bridge.protocol.times.UnreadableTime`: read it through
    :mod:`epos_bridge.domain.bookings`."""
    return docs.checked(_file(docs.PARTIES, key), lambda: docs.to_party(str(key), document))


def _reservation_of(key: int, document: Document) -> Reservation:
    """As :func:`_party_of`."""
    return docs.checked(_file(docs.RESERVATIONS, key), lambda: docs.to_reservation(str(key), document))


def _wire_party(key: int, document: Document) -> Party:
    return bookings.read_booking("party", key, partial(_party_of, key, document))


def _wire_reservation(key: int, document: Document) -> Reservation:
    return bookings.read_booking("reservation", key, partial(_reservation_of, key, document))


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


@dataclass(frozen=True)
class _HeldPayment:
    """The payment row recorded under an intent, in its order's current document."""

    order_key: int
    document: Document
    index: int

    @property
    def recorded(self) -> payments.RecordedIntent:
        return _recorded(self.order_key, self.document["payments"][self.index])

    def with_status(self, status: str, now: datetime) -> Document:
        changed = copy.deepcopy(self.document)
        changed["payments"][self.index]["status"] = status
        changed["updatedAt"] = format_utc(now)
        return changed


def _payment_under_intent(snap: Snapshot, payment_intent_id: str) -> _HeldPayment | None:
    recorded = _recorded_intent(snap, payment_intent_id)
    if recorded is None:
        return None
    key, document = _order(snap, recorded.order_id, fresh=True)
    for index, row in enumerate(document.get("payments", [])):
        if row.get("paymentIntentId") == payment_intent_id:
            return _HeldPayment(key, document, index)
    return None


def _recorded_intent(snap: Snapshot, payment_intent_id: str) -> payments.RecordedIntent | None:
    """Where a paymentIntentId is already recorded, on any order (exact string match)."""
    for key, document in _orders(snap):
        for row in document.get("payments", []):
            if row.get("paymentIntentId") == payment_intent_id:
                return _recorded(key, row)
    return None


def _recorded(key: int, row: Document) -> payments.RecordedIntent:
    return payments.RecordedIntent(
        str(key), int(row["paidAmount"]), row.get("tipsAmount"), str(row.get("status", RECORDED))
    )


def _tables(snap: Snapshot) -> dict[str, Document]:
    raw = snap.load(docs.TABLES) or []
    return docs.checked(docs.TABLES, lambda: {str(t["id"]): t for t in raw})


def _replay(
    snap: Snapshot, directory: str, kind: records.RecordKind, dojo_id: str
) -> tuple[dict[int, Document], int | None]:
    """Every record in ``directory``, and the one to answer a create with (the domain decides)."""
    existing = dict(_documents(snap, directory))
    found = next(
        (
            docs.stored_record(key, document, kind.dojo_id_field)
            for key, document in existing.items()
            if document.get(kind.dojo_id_field) == dojo_id
        ),
        None,
    )
    return existing, records.replay_of(kind, dojo_id, found)


def _store_new(
    snap: Snapshot, directory: str, existing: Iterable[int], document_of: Callable[[int], Document]
) -> tuple[int, Document]:
    """A new record under a never-used id: its own file first, then ``sequences.json``, so a crash
    between the two cannot reuse the id (docs/file-database.md, "New ids")."""
    sequences = snap.load(docs.SEQUENCES, fresh=True) or {}
    key = docs.next_id(sequences, directory, existing)
    document = document_of(key)
    snap.save(_file(directory, key), document)
    snap.save(docs.SEQUENCES, {**sequences, directory: key + 1})
    return key, document


def _matching(snap: Snapshot, directory: str, keep: Callable[[int, Document], bool | None]) -> dict[int, Document]:
    """The documents a search keeps (``keep(key, document)``); a document the filter cannot read
    is reported naming its file."""
    return {
        key: document
        for key, document in _documents(snap, directory)
        if docs.checked(_file(directory, key), partial(keep, key, document))
    }


def _page(found: dict[K, V], request: PageRequest, scope: str, wire: Callable[[K, V], T]) -> tuple[list[T], PageBounds]:
    keys, more_before, more_after = page_of(sorted(found), request)
    return [wire(key, found[key]) for key in keys], page_bounds(scope, list(keys), more_before, more_after)


def _bookings_page(
    found: dict[int, Document], request: PageRequest, scope: str, noun: str, read: Callable[[int, Document], T]
) -> tuple[list[T], PageBounds]:
    """:func:`_page` of parties or reservations: one whose required time cannot be read is left
    out (logged by its key); the cursors still follow the keys, so paging goes on past it."""
    keys, more_before, more_after = page_of(sorted(found), request)
    reads = [(key, partial(read, key, found[key])) for key in keys]
    return bookings.read_bookings(noun, reads, searching=True), page_bounds(scope, list(keys), more_before, more_after)


def _reservation_of_dojo_id(snap: Snapshot, dojo_reservation_id: str | None) -> str | None:
    if dojo_reservation_id is None:
        return None
    for key, document in _documents(snap, docs.RESERVATIONS):
        if document.get("dojoReservationId") == dojo_reservation_id:
            return str(key)
    return None


def _stored(
    snap: Snapshot, directory: str, kind: records.RecordKind, wire_id: str, *, fresh: bool = False
) -> tuple[records.StoredRecord[int] | None, Document]:
    """The record a wire id names, deleted or not, and its document (``{}`` when there is none)."""
    key = docs.numeric_id(wire_id)
    document = snap.load(_file(directory, key), fresh=fresh) if key is not None else None
    if key is None or document is None:
        return None, {}
    return docs.stored_record(key, document, kind.dojo_id_field), document


def _write_and_remove(folder: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".epos-bridge-check.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise PosUnavailable(
            f"The POS folder {folder} cannot be written ({exc.strerror or exc}); the bridge needs write access "
            "to record payments and locks."
        ) from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
