"""The file-database POS storage: every capability, stored in a folder of JSON files.

Storage only (:class:`epos_bridge.ports.PosStorage`): ``services/pos_calls`` runs each call and
``domain/`` decides; this module reads documents under the folder lock, stores what was decided
with atomic file writes, and maps documents to wire models (:mod:`.documents`). Read-modify-write
always runs under the exclusive lock (:mod:`.store`).

Write order matters because two files are never replaced together: the file that makes a
change *true* is written first, the bookkeeping second (an order before the id sequence, the
order's payment status before the intent's event log: ``services/pos_calls/payments.py`` stores
them in that order), so a crash in between leaves a state a replay repairs rather than one it
skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Container, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Generic, TypeVar

from epos_bridge.adapters.jsonfile import documents as docs
from epos_bridge.adapters.jsonfile.changes import JsonFileChangeLog
from epos_bridge.adapters.jsonfile.lockfile import DEFAULT_LOCK_TIMEOUT_S
from epos_bridge.adapters.jsonfile.store import Document, JsonFolder, Snapshot
from epos_bridge.adapters.transactional import RowStorage, last_known
from epos_bridge.domain import bookings, records
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import PartyFilter, PartyRecord, ReservationFilter, ReservationRecord
from epos_bridge.domain.errors import NotFound, PosUnavailable
from epos_bridge.domain.intents import StoredIntentEvent
from epos_bridge.domain.locks import HeldLock, LockChange
from epos_bridge.domain.orders import RECORDED, OrderFilter, OrderRecord, PaymentRecord, StoredPayment
from epos_bridge.domain.pagination import Page, PageRequest, page_in_memory
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.domain.records import StoredRecord
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import PosOrder
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import Area, Order, OrderStatus, Party, PaymentIntentEvent, Reservation, Table
from epos_bridge.protocol.params import HandleEventParams

T = TypeVar("T")
R = TypeVar("R", bound=PartyRecord | ReservationRecord)
B = TypeVar("B")
F = TypeVar("F")


class JsonFileStorage(RowStorage[Snapshot]):
    """Implements :class:`epos_bridge.ports.PosStorage` over a file database (docs/file-database.md)."""

    def __init__(self, folder: JsonFolder) -> None:
        super().__init__(folder, JsonFileRows)
        self._folder = folder

    @classmethod
    def open(cls, path: Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> JsonFileStorage:
        return cls(JsonFolder(path, lock_timeout_s=lock_timeout_s))

    @property
    def changes(self) -> JsonFileChangeLog:
        """The change log the POS-event relay reads (ports.ChangeSource)."""
        return JsonFileChangeLog(self._folder)

    async def check_writable(self) -> None:
        """A real, harmless write: a temporary file created in the folder and removed again."""
        await asyncio.to_thread(_write_and_remove, self._folder.path)


class JsonFileRows:
    """One transaction's :class:`epos_bridge.ports.PosRows` over a file database. A write reads
    every file fresh (never from the cache); the documents this call wrote are answered as written."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._fresh = snap.writable
        self._orders: dict[int, Document] = {}
        if snap.writable and not snap.probing and snap.load(docs.LEDGER_MARK, fresh=True) is None:
            self._bring_over_the_ledger()
        self.parties: _Bookings[PartyRecord, Party, PartyFilter] = _Bookings(
            snap,
            docs.PARTIES,
            records.PARTY,
            docs.party_doc,
            _party_of,
            docs.SearchedPartyDocument,
        )
        self.reservations: _Bookings[ReservationRecord, Reservation, ReservationFilter] = _Bookings(
            snap,
            docs.RESERVATIONS,
            records.RESERVATION,
            docs.reservation_doc,
            _reservation_of,
            docs.SearchedReservationDocument,
        )

    def _bring_over_the_ledger(self) -> None:
        """Once, in the first write after an upgrade: every Dojo payment already in the order
        files goes into the ledger (and its order into the registry, without an answer), so it
        outlives its order's file like a payment recorded since."""
        orders = set()
        for intent, key, entry in docs.ledger_backfill(_orders(self.snap)):
            log_doc = self._intent_log(intent)
            if "recorded" not in log_doc:
                self.snap.save(docs.intent_file(intent), {**log_doc, "recorded": entry})
            orders.add(key)
        for key in sorted(orders):
            if self.registered_order(str(key)) is None:
                self.snap.save(docs.registry_file(str(key)), {"orderId": str(key), "orderKey": key, "answer": None})
        self.snap.save(docs.LEDGER_MARK, {"ledger": "every Dojo payment of this folder is in payment_intents/"})

    # --- orders ---------------------------------------------------------------------------

    def _document(self, key: int) -> Document:
        return self._orders[key] if key in self._orders else _order(self.snap, str(key), fresh=self._fresh)[1]

    def _save_order(self, key: int, document: Document) -> None:
        self.snap.save(_order_file(key), document)
        self._orders[key] = document

    def order(self, order_id: str) -> PosOrder:
        key, document = _order(self.snap, order_id, fresh=self._fresh)
        self._orders[key] = document
        return docs.checked(_order_file(key), lambda: docs.pos_order(key, order_id, document))

    def payments(self, order: PosOrder) -> tuple[StoredPayment, ...]:
        document = self._document(order.key)
        return docs.checked(_order_file(order.key), lambda: docs.stored_payments(document))

    def answer_order(self, key: int) -> Order:
        return _wire_order(key, self._document(key))

    def search_orders(self, wanted: OrderFilter, page: PageRequest) -> Page[Order]:
        found = _matching(self.snap, docs.ORDERS, lambda _, d: wanted.matches(docs.SearchedOrderDocument(d)))
        return page_in_memory(found, page, _wire_order)

    def order_of_dojo_id(self, dojo_order_id: str) -> StoredRecord[int] | None:
        return _of_dojo_id(self.snap, docs.ORDERS, records.ORDER, dojo_order_id)

    def insert_order(self, order: OrderRecord) -> int:
        key, document = _store_new(self.snap, docs.ORDERS, lambda key: docs.order_doc(key, order))
        self._orders[key] = document
        for payment in order.payments:
            self._keep_recorded(key, payment)
        return key

    def cancel_order(self, order: PosOrder, now: datetime) -> None:
        document = self._document(order.key)
        self._save_order(order.key, {**document, "status": OrderStatus.CANCELED.value, "updatedAt": format_utc(now)})

    def venue(self) -> VenueDetails | None:
        return docs.checked(docs.VENUE, lambda: docs.venue_details(self.snap.load(docs.VENUE)))

    def table_name(self, table_id: str) -> str | None:
        table = _tables(self.snap).get(table_id)
        return str(table["name"]) if table else None

    # --- order locks ----------------------------------------------------------------------

    def held_lock(self, order: PosOrder) -> HeldLock | None:
        document = self._document(order.key)
        return docs.checked(_order_file(order.key), lambda: docs.held_lock(document))

    def store_lock(self, order: PosOrder, change: LockChange) -> None:
        """The lock lives in the order's own file, so order and lock are replaced together."""
        if change.remove:
            self._save_order(order.key, {**self._document(order.key), "lock": None})
        elif change.store is not None:
            self._save_order(order.key, {**self._document(order.key), "lock": docs.lock_doc(change.store)})

    # --- payments and payment-intent events -------------------------------------------------

    def recorded_intent(self, payment_intent_id: str) -> RecordedIntent | None:
        """From the intent's own file, which outlives the order's; a folder written before that
        ledger existed is searched order by order."""
        kept = self._intent_log(payment_intent_id).get("recorded")
        if isinstance(kept, dict):
            file = docs.intent_file(payment_intent_id)
            return docs.checked(file, lambda: _recorded(int(kept["orderKey"]), kept))
        return _recorded_intent(self.snap, payment_intent_id)

    def insert_payment(self, order: PosOrder, payment: PaymentRecord, now: datetime) -> None:
        """The order's file first, then the ledger: a crash between leaves the payment found by
        the search of :meth:`recorded_intent`, never a ledger entry the POS does not show."""
        document = self._document(order.key)
        row = docs.payment_doc(payment)
        self._save_order(
            order.key, {**document, "payments": [*document.get("payments", []), row], "updatedAt": format_utc(now)}
        )
        self._keep_recorded(order.key, payment)

    def _keep_recorded(self, key: int, payment: PaymentRecord) -> None:
        intent = payment.payment.payment_intent_id
        if intent is not None:
            self.snap.save(
                docs.intent_file(intent), {**self._intent_log(intent), "recorded": docs.recorded_doc(key, payment)}
            )

    def _intent_log(self, payment_intent_id: str) -> Document:
        found = self.snap.load(docs.intent_file(payment_intent_id), fresh=self._fresh)
        return found or {"paymentIntentId": payment_intent_id, "events": []}

    def intent_events(self, payment_intent_id: str, event_id: str | None = None) -> list[StoredIntentEvent]:
        """``event_id`` is not looked up in other intents' logs: each intent keeps its own file."""
        log_doc = self._intent_log(payment_intent_id)
        return docs.checked(docs.intent_file(payment_intent_id), lambda: docs.intent_events(log_doc))

    def keep_intent_event(self, params: HandleEventParams, event: PaymentIntentEvent, received_at: datetime) -> None:
        log_doc = self._intent_log(event.payment_intent_id)
        record = {
            "eventId": params.id,
            "accountId": params.account_id,
            "event": params.event,
            "paymentStatus": event.payment_status.value,
            "captureMode": event.capture_mode.value,
            "createdAt": format_utc(params.created_at),
            "receivedAt": format_utc(received_at),
        }
        self.snap.save(
            docs.intent_file(event.payment_intent_id), {**log_doc, "events": [*log_doc.get("events", []), record]}
        )

    def set_payment_status(self, recorded: RecordedIntent, payment_intent_id: str, status: str, now: datetime) -> None:
        """The order's file while the POS still has it, then the ledger."""
        key = int(recorded.order_id)
        found = self._orders.get(key) or self.snap.load(_order_file(key), fresh=self._fresh)
        document = copy.deepcopy(found) if found is not None else {}
        rows = [r for r in document.get("payments", []) if r.get("paymentIntentId") == payment_intent_id]
        if rows:  # the till may have removed the row or the order since: the ledger still changes
            rows[0]["status"] = status
            self._save_order(key, {**document, "updatedAt": format_utc(now)})
        log_doc = self._intent_log(payment_intent_id)
        kept = log_doc.get("recorded")
        if isinstance(kept, dict):
            self.snap.save(docs.intent_file(payment_intent_id), {**log_doc, "recorded": {**kept, "status": status}})

    # --- the registry of orders Dojo wrote to ---------------------------------------------

    def registered_order(self, order_id: str) -> RegisteredOrder | None:
        file = docs.registry_file(order_id)
        found = self.snap.load(file, fresh=self._fresh)
        if not isinstance(found, dict):
            return None
        return docs.checked(file, lambda: RegisteredOrder.stored(order_id, int(found["orderKey"]), found.get("answer")))

    def register_order(self, order_id: str, key: int, answer: Order, now: datetime) -> None:
        told = RegisteredOrder(order_id, key, answer).answer_document()
        self.snap.save(
            docs.registry_file(order_id),
            {"orderId": order_id, "orderKey": key, "answer": told, "answeredAt": format_utc(now)},
        )

    def follow_order(self, registered: RegisteredOrder) -> PosOrder | None:
        """A folder's orders keep their file: only the key the bridge last found it at."""
        return last_known(self, registered)

    # --- tables and areas -----------------------------------------------------------------

    def known_tables(self, table_ids: Sequence[str]) -> Container[str]:
        return _tables(self.snap)

    def areas(self) -> list[Area]:
        raw = self.snap.load(docs.AREAS) or []
        areas = docs.checked(docs.AREAS, lambda: [docs.to_area(a) for a in raw])
        return sorted(areas, key=lambda a: (a.name, a.id))

    def search_tables(self, area_id: str | None, waiter_id: str | None, page: PageRequest) -> Page[Table]:
        tables = docs.checked(docs.TABLES, lambda: [docs.to_table(d) for d in _tables(self.snap).values()])
        found = {
            t.id: t
            for t in tables
            if (area_id is None or t.area_id == area_id) and (waiter_id is None or waiter_id in (t.waiter_ids or []))
        }
        return page_in_memory(found, page, lambda _, table: table)


class _Bookings(Generic[R, B, F]):
    """The parties or the reservations of a file database: one file each under ``directory``."""

    def __init__(
        self,
        snap: Snapshot,
        directory: str,
        kind: records.RecordKind,
        document_of: Callable[[int, R], Document],
        read: Callable[[int, Document], B],
        searched: Callable[[Document], object],
    ) -> None:
        self._snap = snap
        self._directory = directory
        self._kind = kind
        self._document_of = document_of
        self._read = read
        self._searched = searched
        self._documents: dict[int, Document] = {}

    def _document(self, key: int) -> Document:
        if key not in self._documents:
            self._documents[key] = _stored(self._snap, self._directory, self._kind, str(key), fresh=True)[1]
        return self._documents[key]

    def record(self, wire_id: str) -> StoredRecord[int] | None:
        found, document = _stored(self._snap, self._directory, self._kind, wire_id, fresh=self._snap.writable)
        if found is not None:
            self._documents[found.key] = document
        return found

    def of_dojo_id(self, dojo_id: str) -> StoredRecord[int] | None:
        return _of_dojo_id(self._snap, self._directory, self._kind, dojo_id)

    def insert(self, record: R, now: datetime) -> int:
        key, document = _store_new(self._snap, self._directory, lambda key: self._document_of(key, record))
        self._documents[key] = document
        return key

    def _save(self, key: int, document: Document) -> None:
        self._snap.save(_file(self._directory, key), document)
        self._documents[key] = document

    def replace(self, key: int, record: R, now: datetime) -> None:
        self._save(key, {**self._document(key), **docs.record_fields(record)})

    def delete(self, key: int, now: datetime) -> None:
        self._save(key, {**self._document(key), "deletedAt": format_utc(now)})

    def answer(self, key: int) -> B:
        return bookings.read_booking(self._kind.noun, key, partial(self._read, key, self._document(key)))

    def search(self, wanted: F, page: PageRequest) -> Page[B]:
        noun = self._kind.noun
        found = _matching(
            self._snap,
            self._directory,
            lambda key, d: bookings.searched(noun, key, partial(wanted.matches, self._searched(d))),  # type: ignore[attr-defined]
        )
        return page_in_memory(found, page, lambda key, d: bookings.searched(noun, key, partial(self._read, key, d)))


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


def _recorded_intent(snap: Snapshot, payment_intent_id: str) -> RecordedIntent | None:
    """Where a paymentIntentId is already recorded, on any order (exact string match)."""
    for key, document in _orders(snap):
        for row in document.get("payments", []):
            if row.get("paymentIntentId") == payment_intent_id:
                return _recorded(key, row)
    return None


def _recorded(key: int, row: Document) -> RecordedIntent:
    return RecordedIntent(str(key), int(row["paidAmount"]), row.get("tipsAmount"), str(row.get("status", RECORDED)))


def _tables(snap: Snapshot) -> dict[str, Document]:
    raw = snap.load(docs.TABLES) or []
    return docs.checked(docs.TABLES, lambda: {str(t["id"]): t for t in raw})


def _of_dojo_id(snap: Snapshot, directory: str, kind: records.RecordKind, dojo_id: str) -> StoredRecord[int] | None:
    """The record in ``directory`` holding Dojo's id, deleted or not."""
    return next(
        (
            docs.stored_record(key, document, kind.dojo_id_field)
            for key, document in _documents(snap, directory)
            if document.get(kind.dojo_id_field) == dojo_id
        ),
        None,
    )


def _store_new(snap: Snapshot, directory: str, document_of: Callable[[int], Document]) -> tuple[int, Document]:
    """A new record under a never-used id: its own file first, then ``sequences.json``, so a crash
    between the two cannot reuse the id (docs/file-database.md, "New ids")."""
    sequences = snap.load(docs.SEQUENCES, fresh=True) or {}
    key = docs.next_id(sequences, directory, (k for k, _ in _documents(snap, directory)))
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
