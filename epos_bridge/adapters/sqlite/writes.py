"""Writing the domain's records as reference-schema rows (docs/reference-schema.md).

Runs inside a write transaction, through the ``db`` handle only: a transaction body may run
twice (a snapshot attempt under ``PRAGMA query_only``, then under the write lock), so nothing
here keeps state of its own. Plain SQL and ``insert``; never sqlite_utils' ``upsert`` (see
``adapters/kept_rows.py`` ``apply_lock_change``). The demo seeder writes the demo venue through the same functions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import PartyRecord, ReservationRecord
from epos_bridge.domain.orders import OrderRecord, PaymentRecord
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import Area, Modifier, OrderItem, OrderStatus, Table


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    key = db.table(table).insert(row).last_pk
    assert isinstance(key, int)
    return key


def _time(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None


# --- the venue ----------------------------------------------------------------------------


def insert_venue(db: sqlite_utils.Database, venue: VenueDetails, currency: str) -> None:
    """The venue row the bill prints (there is one, ``id`` 1)."""
    db.table("venue").insert(
        {
            "id": 1,
            "name": venue.name,
            "address_lines": json.dumps(list(venue.address_lines)),
            "postcode": venue.postcode,
            "phone_number": venue.phone_number,
            "email_address": venue.email_address,
            "vat_number": venue.vat_number,
            "logo_svg": venue.logo_svg,
            "website_url": venue.website_url,
            "website_caption": venue.website_caption,
            "footer_text": venue.footer_text,
            "currency_code": currency,
        }
    )


def insert_floor(db: sqlite_utils.Database, areas: Sequence[Area], tables: Sequence[Table]) -> None:
    """Areas and tables with the waiters who serve them."""
    db.table("areas").insert_all({"id": a.id, "name": a.name} for a in areas)
    db.table("area_waiters").insert_all({"area_id": a.id, "waiter_id": w} for a in areas for w in a.waiter_ids or [])
    db.table("tables").insert_all(
        {"id": t.id, "name": t.name, "area_id": t.area_id, "max_covers": t.max_covers} for t in tables
    )
    db.table("table_waiters").insert_all({"table_id": t.id, "waiter_id": w} for t in tables for w in t.waiter_ids or [])


# --- orders -------------------------------------------------------------------------------


def insert_order(db: sqlite_utils.Database, order: OrderRecord, key: int | None = None) -> int:
    """Store a whole order, its lines and payments; ``key`` ``None``: the database numbers it."""
    dine_in = order.details.dine_in
    collection = order.details.collection
    customer = order.customer
    row: dict[str, Any] = {
        "dojo_order_id": order.dojo_order_id,
        "reference": order.reference,
        "display_name": order.display_name,
        "status": order.status.value,
        "order_type": order.details.order_type.value,
        "table_id": dine_in.table_id if dine_in else None,
        "waiter_id": dine_in.waiter_id if dine_in else None,
        "party_id": dine_in.party_id if dine_in else None,
        "reservation_id": dine_in.reservation_id if dine_in else None,
        "ready_at": _time(dine_in.ready_at) if dine_in else None,
        "collection_asap": None if collection is None or collection.asap is None else int(collection.asap),
        "collect_at": _time(collection.collect_at) if collection else None,
        "note": order.note,
        "customer_id": customer.id if customer else None,
        "customer_name": customer.name if customer else None,
        "customer_email": customer.email_address if customer else None,
        "customer_phone": customer.phone_number if customer else None,
        "currency_code": order.currency,
        "total_amount": order.total_value,
        "service_charge_amount": order.service_charge_value,
        "open_at_till": order.open_at_till,
        "created_at": format_utc(order.created_at),
        "updated_at": format_utc(order.updated_at),
    }
    order_key = insert(db, "orders", row if key is None else {"id": key, **row})
    if order.reference is None:
        # Numbered from the key, which exists only once the row does.
        db.execute("UPDATE orders SET reference = ? WHERE id = ?", [order.reference_for(order_key), order_key])
    _insert_items(db, order_key, order.items)
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
        for i, d in enumerate(order.discounts)
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
        for i, t in enumerate(order.tax_lines)
    )
    for payment in order.payments:
        _insert_payment_row(db, order_key, payment)
    return order_key


def insert_payment(db: sqlite_utils.Database, order_key: int, payment: PaymentRecord) -> None:
    """A payment taken on an existing order: the order changes with it."""
    _insert_payment_row(db, order_key, payment)
    db.execute("UPDATE orders SET updated_at = ? WHERE id = ?", [format_utc(payment.recorded_at), order_key])


def _insert_payment_row(db: sqlite_utils.Database, order_key: int, record: PaymentRecord) -> None:
    payment, requester = record.payment, record.requester
    insert(
        db,
        "payments",
        {
            "order_id": order_key,
            "payment_intent_id": payment.payment_intent_id,
            "tender": record.tender,
            "paid_amount": payment.paid_value,
            "tips_amount": payment.tips_value,
            "status": payment.status,
            "recorded_at": format_utc(record.recorded_at),
            "dojo_requesting_product": requester.dojo_requesting_product if requester else None,
            "device_id": requester.device_id if requester else None,
            "waiter_id": requester.waiter_id if requester else None,
        },
    )


def set_payment_status(
    db: sqlite_utils.Database, payment_intent_id: str, order_key: int, status: str, now: datetime
) -> None:
    """A Dojo event changed the payment's status (``payment_intent_id`` is unique in the schema).
    The POS may have deleted the order since: then only the bridge's ledger changes (the caller's)."""
    db.execute("UPDATE payments SET status = ? WHERE payment_intent_id = ?", [status, payment_intent_id])
    db.execute("UPDATE orders SET updated_at = ? WHERE id = ?", [format_utc(now), order_key])


def cancel_order(db: sqlite_utils.Database, order_key: int, now: datetime) -> None:
    db.execute(
        "UPDATE orders SET status = ?, updated_at = ? WHERE id = ?",
        [OrderStatus.CANCELED.value, format_utc(now), order_key],
    )


def _insert_items(db: sqlite_utils.Database, order_key: int, items: Sequence[OrderItem]) -> None:
    for position, item in enumerate(items):
        item_key = insert(
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
            sub_key = insert(
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


def _insert_modifiers(
    db: sqlite_utils.Database, parent_column: str, parent_key: int, modifiers: Sequence[Modifier]
) -> None:
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


# --- order locks ----------------------------------------------------------------------------


# --- parties and reservations ---------------------------------------------------------------


@dataclass(frozen=True)
class _BookingTables:
    table: str
    links: str
    owner: str


def _tables_of(record: PartyRecord | ReservationRecord) -> _BookingTables:
    if isinstance(record, PartyRecord):
        return _BookingTables("parties", "party_tables", "party_id")
    return _BookingTables("reservations", "reservation_tables", "reservation_id")


def _booking_columns(record: PartyRecord | ReservationRecord) -> dict[str, Any]:
    """A party's or reservation's columns: its fields under their own names, times as stored
    text, the deposit in four columns; its tables go to the link table."""
    columns: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if item.name == "table_ids":
            continue
        if item.name == "deposit":
            columns.update(
                deposit_amount=value.total_amount.value if value else None,
                deposit_currency=value.total_amount.currency_code if value else None,
                deposit_description=value.description if value else None,
                deposit_payment_intent_ids=json.dumps(value.payment_intent_ids) if value else None,
            )
            continue
        columns[item.name] = format_utc(value) if isinstance(value, datetime) else value
    return columns


def insert_booking(db: sqlite_utils.Database, record: PartyRecord | ReservationRecord, key: int | None = None) -> int:
    """A new party (with its reservation link) or reservation; ``key`` ``None``: the database numbers it."""
    tables = _tables_of(record)
    row = {**_booking_columns(record), "deleted_at": None}
    new_key = insert(db, tables.table, row if key is None else {"id": key, **row})
    _replace_links(db, tables.links, tables.owner, new_key, record.table_ids)
    return new_key


def replace_booking(db: sqlite_utils.Database, key: int, record: PartyRecord | ReservationRecord) -> None:
    """Replace semantics (contract §3.14, §3.19); an Update's party record holds no reservation
    link, so the stored one is kept (§6 B6)."""
    tables = _tables_of(record)
    db.table(tables.table).update(key, _booking_columns(record))
    _replace_links(db, tables.links, tables.owner, key, record.table_ids)


def soft_delete(db: sqlite_utils.Database, table: str, key: int, now: datetime) -> None:
    db.execute(f"UPDATE {table} SET deleted_at = ? WHERE id = ?", [format_utc(now), key])  # noqa: S608


def _replace_links(
    db: sqlite_utils.Database, table: str, owner_column: str, owner_key: int, table_ids: Sequence[str]
) -> None:
    db.execute(f"DELETE FROM {table} WHERE {owner_column} = ?", [owner_key])  # noqa: S608
    db.table(table).insert_all(
        {owner_column: owner_key, "table_id": table_id, "position": i} for i, table_id in enumerate(table_ids)
    )
