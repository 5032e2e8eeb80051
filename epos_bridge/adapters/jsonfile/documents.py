"""The JSON documents of a file database, read into wire models and the domain's facts.

Field names are camelCase like the wire. Money at order level is an integer in minor units of
``currencyCode``; order lines keep the wire's own shape (``OrderItem`` with ``Money`` objects).
Times are ISO 8601 UTC with milliseconds and ``Z``. The layout is in docs/file-database.md.
A document that does not have this shape is reported as :class:`CorruptDocument` naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel, to_snake

from epos_bridge.adapters.jsonfile.store import CorruptDocument, Document
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import PartyRecord, ReservationRecord
from epos_bridge.domain.events import OrderFacts
from epos_bridge.domain.intents import StoredIntentEvent
from epos_bridge.domain.locks import HeldLock, stored_lock
from epos_bridge.domain.orders import (
    RECORDED,
    OrderRecord,
    PaymentRecord,
    StoredPayment,
    display_reference,
    order_details,
    paid_value,
    summarise_payments,
)
from epos_bridge.domain.records import StoredRecord
from epos_bridge.ports import PosOrder
from epos_bridge.protocol import entities as wire
from epos_bridge.protocol.base import format_utc, to_wire
from epos_bridge.protocol.ids import canonical_int_id
from epos_bridge.protocol.params import RequestHeaders
from epos_bridge.protocol.times import LONG_AGO, required_stored_time, stored_time

T = TypeVar("T")

ORDERS = "orders"
PARTIES = "parties"
RESERVATIONS = "reservations"
PAYMENT_INTENTS = "payment_intents"
LEDGER_MARK = "ledger.json"
"""Written once the bridge's ledger holds every Dojo payment of the folder (see :func:`ledger_backfill`)."""
DOJO_ORDERS = "dojo_orders"
"""The bridge's registry of the orders Dojo wrote to, one file per Dojo order id."""
VENUE = "venue.json"
AREAS = "areas.json"
TABLES = "tables.json"
SEQUENCES = "sequences.json"


def checked(relative: str, read: Callable[[], T]) -> T:
    """Run a mapping; a missing key or wrong type becomes a clear error naming the file."""
    try:
        return read()
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
        raise CorruptDocument(
            f"{relative} in the POS folder does not have the documented shape ({exc!r:.200})"
        ) from exc


# --- ids ------------------------------------------------------------------------


def numeric_id(wire_id: str) -> int | None:
    """Orders, parties and reservations have integer ids; anything else was never issued.

    Also what keeps a wire id from naming a path outside the folder.
    """
    return canonical_int_id(wire_id)


def intent_file(payment_intent_id: str) -> str:
    """A payment intent's events file; hashed because Dojo's ids are not file names we control."""
    return f"{PAYMENT_INTENTS}/{hashlib.sha256(payment_intent_id.encode()).hexdigest()[:40]}.json"


def registry_file(order_id: str) -> str:
    """The bridge's record of one order Dojo wrote to; hashed like :func:`intent_file`."""
    return f"{DOJO_ORDERS}/{hashlib.sha256(order_id.encode()).hexdigest()[:40]}.json"


def recorded_doc(order_key: int, record: PaymentRecord) -> Document:
    """The ledger entry kept in the intent's own file: it outlives the order's file."""
    return ledger_entry(order_key, payment_doc(record))


def ledger_entry(order_key: int, row: Document) -> Document:
    """A ledger entry from an order file's payment row."""
    return {
        "orderKey": order_key,
        **{name: row.get(name) for name in ("paidAmount", "tipsAmount", "status", "recordedAt")},
    }


def ledger_backfill(orders: Iterable[tuple[int, Document]]) -> Iterator[tuple[str, int, Document]]:
    """``(paymentIntentId, order key, ledger entry)`` of every Dojo payment in the order files: a
    folder written by a bridge older than the ledger, brought over once."""
    for key, document in orders:
        for row in document.get("payments") or ():
            intent = row.get("paymentIntentId") if isinstance(row, dict) else None
            if intent:
                yield intent, key, ledger_entry(key, row)


def next_id(sequences: Any, kind: str, existing: Iterable[int]) -> int:
    """Never reuses an id: the larger of the stored sequence and one past the largest file."""
    stored = sequences.get(kind, 1) if isinstance(sequences, dict) else 1
    return max(int(stored), max(existing, default=0) + 1)


# --- times and small values --------------------------------------------------------------


def time_text(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None


def parse_time(text: Any, what: str = "a stored time") -> datetime | None:
    """An optional stored time; one the bridge cannot read is logged and left out."""
    return stored_time(text, what)


def required_time(text: Any, field: str) -> datetime:
    """A time the wire requires (a booking's start): :class:`~epos_bridge.protocol.times.UnreadableTime` naming the wire
    ``field`` when it cannot be read, which :func:`checked` lets through so that a search can
    leave that one booking out (:mod:`epos_bridge.domain.bookings`)."""
    return required_stored_time(text, field)


def headers_doc(headers: RequestHeaders) -> Document:
    return to_wire(headers)


def headers_of(document: Any) -> RequestHeaders:
    return RequestHeaders.model_validate(document or {}, strict=False)


def money(value: int, currency: str) -> wire.Money:
    return wire.Money(value=value, currency_code=currency)


# --- orders ------------------------------------------------------------------------------


def order_status(document: Document) -> wire.OrderStatus:
    return wire.OrderStatus(document.get("status", wire.OrderStatus.NEW.value))


def stored_payments(document: Document) -> tuple[StoredPayment, ...]:
    return tuple(
        StoredPayment(
            paid_value=int(p["paidAmount"]),
            tips_value=int(p["tipsAmount"]) if p.get("tipsAmount") is not None else None,
            payment_intent_id=p.get("paymentIntentId"),
            status=str(p.get("status", RECORDED)),
        )
        for p in document.get("payments", [])
    )


def dine_in(document: Document) -> Document:
    details = document.get("details") or {}
    branch = details.get("dineIn") if details.get("orderType", wire.OrderType.DINE_IN.value) == "DineIn" else None
    return branch or {}


def order_facts(order_id: str, document: Document) -> OrderFacts:
    return OrderFacts(
        reference=display_reference(document.get("reference"), order_id),
        display_name=document.get("displayName"),
        table_id=dine_in(document).get("tableId"),
    )


def held_lock(document: Document) -> HeldLock | None:
    lock = document.get("lock")
    if not lock:
        return None
    return stored_lock(
        str(lock["lockId"]),
        stored_time(lock.get("expiresAt"), "the expiry of an order lock"),
        stored_time(lock.get("lockedAt"), "the start of an order lock"),
        headers_of(lock.get("requester")),
    )


def lock_doc(lock: HeldLock) -> Document:
    return {
        "lockId": lock.lock_id,
        "expiresAt": format_utc(lock.expires_at),
        "lockedAt": format_utc(lock.locked_at),
        "requester": headers_doc(lock.requester),
    }


def pos_order(key: int, order_id: str, document: Document) -> PosOrder:
    """The order's header as the rules need it (``epos_bridge.ports.PosOrder``)."""
    return PosOrder(
        key=key,
        order_id=order_id,
        status=order_status(document),
        currency=str(document["currencyCode"]),
        total_value=int(document["totalAmount"]),
        updated_at=parse_time(document.get("updatedAt"), f"updatedAt of order {order_id}"),
        open_at_till=document.get("openAtTill"),
        facts=order_facts(order_id, document),
    )


def details_of(document: Document) -> wire.OrderDetails:
    details = document.get("details") or {"orderType": "DineIn"}
    collection = details.get("collection") or {}
    branch = details.get("dineIn") or {}
    return order_details(
        details.get("orderType"),
        wire.DineInDetails(
            table_id=branch.get("tableId"),
            waiter_id=branch.get("waiterId"),
            party_id=branch.get("partyId"),
            reservation_id=branch.get("reservationId"),
            ready_at=parse_time(branch.get("readyAt")),
        ),
        wire.CollectionDetails(asap=collection.get("asap"), collect_at=parse_time(collection.get("collectAt"))),
    )


def details_doc(details: wire.OrderDetails) -> Document:
    """Only the branch that matches the order type, as the reference schema keeps it."""
    if details.order_type is wire.OrderType.COLLECTION:
        return {"orderType": "Collection", "collection": to_wire(details.collection or wire.CollectionDetails())}
    return {"orderType": "DineIn", "dineIn": to_wire(details.dine_in or wire.DineInDetails())}


def to_order(order_id: str, document: Document) -> wire.Order:
    currency = str(document["currencyCode"])
    status = order_status(document)
    total = int(document["totalAmount"])
    summary = summarise_payments(status, total, currency, stored_payments(document))
    service = document.get("serviceChargeAmount")
    customer = document.get("customer")
    return wire.Order(
        id=order_id,
        status=status,
        details=details_of(document),
        items=[_tidy(wire.OrderItem.model_validate(i, strict=False)) for i in document.get("items", [])],
        note=document.get("note"),
        customer=wire.Customer.model_validate(customer, strict=False) if customer else None,
        discounts=[wire.Discount.model_validate(d, strict=False) for d in document.get("discounts", [])],
        tax_lines=[wire.TaxLine.model_validate(t, strict=False) for t in document.get("taxLines", [])],
        created_at=parse_time(document.get("createdAt")),
        updated_at=parse_time(document.get("updatedAt")),
        total_amount=money(total, currency),
        payments=summary.payments,
        payable=summary.payable,
        paid_amount=summary.paid_amount,
        service_charge_amount=money(int(service), currency) if service is not None else None,
        reference=display_reference(document.get("reference"), order_id),
        tips_amount=summary.tips_amount,
        display_name=document.get("displayName"),
    )


def _tidy(item: wire.OrderItem) -> wire.OrderItem:
    """Empty modifier and sub-item lists are left out, as the reference adapter sends them."""
    for sub in item.sub_items or []:
        sub.modifiers = sub.modifiers or None
    item.modifiers = item.modifiers or None
    item.sub_items = item.sub_items or None
    return item


def intent_events(document: Any) -> list[StoredIntentEvent]:
    """The events an intent's file keeps, in the order they arrived."""
    events = document.get("events", []) if isinstance(document, dict) else []
    return [
        StoredIntentEvent(
            event_id=str(e["eventId"]),
            payment_status=wire.PaymentIntentStatus(e["paymentStatus"]),
            created_at=parse_time(e.get("createdAt")) or LONG_AGO,
            received_at=parse_time(e.get("receivedAt")) or LONG_AGO,
        )
        for e in events
    ]


# --- venue, tables, areas -----------------------------------------------------------------


def venue_details(document: Any) -> VenueDetails | None:
    if not isinstance(document, dict):
        return None
    record = {to_snake(name): value for name, value in document.items()}
    return VenueDetails.from_record(record, document.get("addressLines") or ())


def to_table(document: Document) -> wire.Table:
    return wire.Table(
        id=str(document["id"]),
        name=str(document["name"]),
        max_covers=document.get("maxCovers"),
        area_id=document.get("areaId"),
        waiter_ids=sorted(document.get("waiterIds") or []),
    )


def to_area(document: Document) -> wire.Area:
    return wire.Area(
        id=str(document["id"]), name=str(document["name"]), waiter_ids=sorted(document.get("waiterIds") or [])
    )


# --- parties and reservations --------------------------------------------------------------


def to_party(party_id: str, document: Document) -> wire.Party:
    deposit = document.get("deposit")
    return wire.Party(
        id=party_id,
        start_time=required_time(document["startTime"], "startTime"),
        status=str(document["status"]),
        table_ids=list(document["tableIds"]),
        name=document.get("name"),
        covers=document.get("covers"),
        expected_end_time=parse_time(document.get("expectedEndTime"), f"expectedEndTime of party {party_id}"),
        end_time=parse_time(document.get("endTime"), f"endTime of party {party_id}"),
        host_notes=document.get("hostNotes"),
        guest_requests=document.get("guestRequests"),
        reservation_id=document.get("reservationId"),
        deposit=wire.PartyDeposit.model_validate(deposit, strict=False) if deposit else None,
    )


def to_reservation(reservation_id: str, document: Document) -> wire.Reservation:
    return wire.Reservation(
        id=reservation_id,
        name=str(document["name"]),
        covers=int(document["covers"]),
        start_time=required_time(document["startTime"], "startTime"),
        end_time=required_time(document["endTime"], "endTime"),
        table_ids=list(document.get("tableIds") or []),
        host_notes=document.get("hostNotes"),
        guest_requests=document.get("guestRequests"),
    )


# --- records Dojo creates -----------------------------------------------------------------


def stored_record(key: int, document: Document, dojo_id_field: str) -> StoredRecord[int]:
    return StoredRecord(key, document.get(dojo_id_field), document.get("deletedAt") is not None)


# --- writing the domain's records ----------------------------------------------------------


def payment_doc(record: PaymentRecord) -> Document:
    payment = record.payment
    row: Document = {
        "paymentIntentId": payment.payment_intent_id,
        "tender": record.tender,
        "paidAmount": payment.paid_value,
        "tipsAmount": payment.tips_value,
        "status": payment.status,
        "recordedAt": format_utc(record.recorded_at),
    }
    if record.requester is not None:
        row["requester"] = headers_doc(record.requester)
    return row


def order_doc(key: int, order: OrderRecord) -> Document:
    return {
        "id": str(key),
        "dojoOrderId": order.dojo_order_id,
        "reference": order.reference_for(key),
        "displayName": order.display_name,
        "status": order.status.value,
        "details": details_doc(order.details),
        "items": [to_wire(i) for i in order.items],
        "note": order.note,
        "customer": to_wire(order.customer) if order.customer is not None else None,
        "discounts": [to_wire(d) for d in order.discounts],
        "taxLines": [to_wire(t) for t in order.tax_lines],
        "currencyCode": order.currency,
        "totalAmount": order.total_value,
        "serviceChargeAmount": order.service_charge_value,
        "openAtTill": order.open_at_till,
        "createdAt": format_utc(order.created_at),
        "updatedAt": format_utc(order.updated_at),
        "payments": [payment_doc(p) for p in order.payments],
        "lock": None,
    }


def record_fields(record: PartyRecord | ReservationRecord) -> Document:
    """A party's or reservation's fields under their wire names (the file layout is the wire's).

    For an Update's record: everything it replaces (contract §3.14, §3.19); a party's reservation
    link is only in a :class:`NewParty`."""
    fields: Document = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if isinstance(value, datetime):
            value = format_utc(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, BaseModel):
            value = to_wire(value)
        fields[to_camel(item.name)] = value
    return fields


def party_doc(key: int, party: PartyRecord) -> Document:
    """A new party's file (a :class:`NewParty` also holds its reservation link)."""
    return {"id": str(key), **record_fields(party), "deletedAt": None}


def reservation_doc(key: int, reservation: ReservationRecord) -> Document:
    return {"id": str(key), **record_fields(reservation), "deletedAt": None}


def venue_doc(venue: VenueDetails, currency: str) -> Document:
    return {
        "name": venue.name,
        "addressLines": list(venue.address_lines),
        "postcode": venue.postcode,
        "phoneNumber": venue.phone_number,
        "emailAddress": venue.email_address,
        "vatNumber": venue.vat_number,
        "logoSvg": venue.logo_svg,
        "websiteUrl": venue.website_url,
        "websiteCaption": venue.website_caption,
        "footerText": venue.footer_text,
        "currencyCode": currency,
    }


# --- what the searches filter on, read only as far as the filter asks ------------------------


class SearchedOrderDocument:
    """An order file as :class:`epos_bridge.domain.orders.SearchedOrder`."""

    def __init__(self, document: Document) -> None:
        self._document = document

    @cached_property
    def status(self) -> wire.OrderStatus:
        return order_status(self._document)

    @cached_property
    def dine_in(self) -> Mapping[str, object]:
        branch = dine_in(self._document)
        return {
            "table_id": branch.get("tableId"),
            "waiter_id": branch.get("waiterId"),
            "party_id": branch.get("partyId"),
            "reservation_id": branch.get("reservationId"),
        }

    @cached_property
    def total_value(self) -> int:
        return int(self._document["totalAmount"])

    @cached_property
    def paid_value(self) -> int:
        return paid_value(stored_payments(self._document))


class _SearchedBooking:
    def __init__(self, document: Document) -> None:
        self._document = document

    @property
    def deleted(self) -> bool:
        return self._document.get("deletedAt") is not None

    @property
    def table_ids(self) -> Sequence[str]:
        return self._document.get("tableIds") or []


class SearchedPartyDocument(_SearchedBooking):
    """A party file as :class:`epos_bridge.domain.bookings.SearchedParty`."""

    @property
    def has_left(self) -> bool:
        return self._document.get("endTime") is not None


class SearchedReservationDocument(_SearchedBooking):
    """A reservation file as :class:`epos_bridge.domain.bookings.SearchedReservation`; a time
    that cannot be read raises :class:`~epos_bridge.protocol.times.UnreadableTime` (the search leaves that file out)."""

    @property
    def start_time(self) -> datetime:
        return required_time(self._document["startTime"], "startTime")

    @property
    def end_time(self) -> datetime:
        return required_time(self._document["endTime"], "endTime")
