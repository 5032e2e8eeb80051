"""Reading reference-schema rows into wire models. Runs on a worker thread inside a transaction.

All SQL here is constant text with ``?`` parameters; the only composed parts are ``IN (?, ?)``
placeholder lists and fixed condition fragments chosen by code, never by input.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import sqlite_utils

from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import PartyFilter, ReservationFilter, read_bookings
from epos_bridge.domain.errors import NotFound
from epos_bridge.domain.events import OrderFacts
from epos_bridge.domain.orders import (
    NON_COUNTING_PAYMENT_STATUSES,
    NOT_PAYABLE_STATUSES,
    OrderFilter,
    StoredPayment,
    display_reference,
    order_details,
    summarise_payments,
)
from epos_bridge.domain.pagination import PageRequest, SortKey
from epos_bridge.domain.records import StoredRecord
from epos_bridge.protocol import entities as wire
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.ids import canonical_int_id
from epos_bridge.protocol.times import required_stored_time, stored_time

Row = dict[str, Any]


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def parse_time(text: str | None, what: str = "a stored time") -> datetime | None:
    """An optional stored time; one the bridge cannot read is logged and left out."""
    return stored_time(text, what)


def one(db: sqlite_utils.Database, sql: str, args: Sequence[Any] = ()) -> Row | None:
    return next(iter(db.query(sql, args)), None)


def select_in(
    db: sqlite_utils.Database, table: str, column: str, keys: Sequence[Any], order_by: str = "id"
) -> list[Row]:
    """``SELECT * FROM table WHERE column IN (?, …)``; names come from code, values are bound."""
    if not keys:
        return []
    sql = f"SELECT * FROM {table} WHERE {column} IN ({placeholders(len(keys))}) ORDER BY {order_by}"  # noqa: S608
    # sqlite3.Row, built and read by name in C: an order page is hundreds of rows, and a dict per
    # row (sqlite_utils' query) cost more than the SQL. Read-only mapping access, like a dict's.
    cursor = db.conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, list(keys)).fetchall()


# --- keyset pagination ------------------------------------------------------------------


def keyset_page(
    db: sqlite_utils.Database,
    table: str,
    key: str,
    conditions: Sequence[str],
    args: Sequence[Any],
    request: PageRequest,
) -> tuple[list[SortKey], bool, bool]:
    """Keys of one page in ascending order, and whether rows exist before and after it."""
    forward = request.direction == "forward"
    where = list(conditions)
    values = list(args)
    if request.boundary is not None:
        where.append(f"{key} {'>' if forward else '<'} ?")
        values.append(request.boundary)
    sql = f"SELECT {key} AS k FROM {table}{_where(where)} ORDER BY {key} {'ASC' if forward else 'DESC'} LIMIT ?"  # noqa: S608
    keys: list[SortKey] = [row["k"] for row in db.query(sql, [*values, request.limit + 1])]
    more_in_direction = len(keys) > request.limit
    keys = keys[: request.limit]
    if not forward:
        keys.reverse()
    if not keys:
        return keys, False, False
    if forward:
        return keys, _exists(db, table, key, conditions, args, "<", keys[0]), more_in_direction
    return keys, more_in_direction, _exists(db, table, key, conditions, args, ">", keys[-1])


def _exists(
    db: sqlite_utils.Database,
    table: str,
    key: str,
    conditions: Sequence[str],
    args: Sequence[Any],
    op: str,
    edge: SortKey,
) -> bool:
    sql = f"SELECT 1 FROM {table}{_where([*conditions, f'{key} {op} ?'])} LIMIT 1"  # noqa: S608
    return one(db, sql, [*args, edge]) is not None


def _where(conditions: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


# --- orders -----------------------------------------------------------------------------


def _quoted(values: Iterable[str]) -> str:
    """A constant SQL list of the domain's own status names (never input)."""
    return ", ".join(f"'{v}'" for v in sorted(values))


COUNTING_PAYMENT = f"status NOT IN ({_quoted(NON_COUNTING_PAYMENT_STATUSES)})"
"""``StoredPayment.counts`` in SQL: built from the same statuses."""
PAID_VALUE_SQL = (
    f"(SELECT COALESCE(SUM(p.paid_amount), 0) FROM payments p WHERE p.order_id = orders.id AND p.{COUNTING_PAYMENT})"  # noqa: S608
)
"""``orders.paid_value`` of an ``orders`` row in SQL."""
PAYABLE_SQL = f"status NOT IN ({_quoted(s.value for s in NOT_PAYABLE_STATUSES)}) AND {PAID_VALUE_SQL} < total_amount"
"""``orders.is_payable`` in SQL, so a ``payableOnly`` search pages in the database: built from the
same statuses, and tested against the function (tests/integration/test_sql_follows_the_domain.py)."""

_DINE_IN_COLUMNS = {name: name for name in ("table_id", "waiter_id", "party_id", "reservation_id")}
"""``SearchDineInDetails`` fields and the ``orders`` columns that hold them (the same names)."""


def order_conditions(wanted: OrderFilter) -> tuple[list[str], list[Any]]:
    """:class:`OrderFilter` as ``WHERE`` conditions over ``orders``."""
    conditions = [f"status NOT IN ({_quoted(s.value for s in wanted.left_out)})"]
    args: list[Any] = []
    for name, value in wanted.dine_in:
        conditions.append(f"{_DINE_IN_COLUMNS[name]} = ?")
        args.append(value)
    if wanted.payable_only:
        conditions.append(PAYABLE_SQL)
    return conditions, args


def table_conditions(area_id: str | None, waiter_id: str | None) -> tuple[list[str], list[Any]]:
    """SearchTables (contract §3.11): in an area, served by a waiter."""
    conditions: list[str] = []
    args: list[Any] = []
    if area_id is not None:
        conditions.append("area_id = ?")
        args.append(area_id)
    if waiter_id is not None:
        conditions.append("EXISTS (SELECT 1 FROM table_waiters w WHERE w.table_id = tables.id AND w.waiter_id = ?)")
        args.append(waiter_id)
    return conditions, args


def party_conditions(wanted: PartyFilter) -> tuple[list[str], list[Any]]:
    """:class:`PartyFilter` as ``WHERE`` conditions over ``parties``."""
    conditions = ["deleted_at IS NULL", "end_time IS NOT NULL" if wanted.departed else "end_time IS NULL"]
    args: list[Any] = []
    if wanted.table_id is not None:
        conditions.append("EXISTS (SELECT 1 FROM party_tables t WHERE t.party_id = parties.id AND t.table_id = ?)")
        args.append(wanted.table_id)
    return conditions, args


def reservation_conditions(wanted: ReservationFilter) -> tuple[list[str], list[Any]]:
    """:class:`ReservationFilter` as ``WHERE`` conditions over ``reservations``; stored times are
    fixed-width UTC text, so they compare as the times do."""
    conditions = ["deleted_at IS NULL"]
    args: list[Any] = []
    if wanted.table_id is not None:
        conditions.append(
            "EXISTS (SELECT 1 FROM reservation_tables t WHERE t.reservation_id = reservations.id AND t.table_id = ?)"
        )
        args.append(wanted.table_id)
    if wanted.starts_before is not None:
        conditions.append("start_time < ?")
        args.append(format_utc(wanted.starts_before))
    if wanted.ends_after is not None:
        conditions.append("end_time > ?")
        args.append(format_utc(wanted.ends_after))
    return conditions, args


def order_row(db: sqlite_utils.Database, order_id: str) -> Row:
    """The ``orders`` row for a wire id; ``NotFound`` for anything that is not one."""
    key = parse_int_id(order_id)
    row = one(db, "SELECT * FROM orders WHERE id = ?", [key]) if key is not None else None
    if row is None:
        raise NotFound(f"order {order_id!r} does not exist")
    return row


def parse_int_id(wire_id: str) -> int | None:
    """The integer key a wire id names, or ``None``: ids are exact strings, so only the
    canonical decimal form names a row ("007" and " 7" are not order 7)."""
    return canonical_int_id(wire_id)


def order_facts(row: Row) -> OrderFacts:
    return OrderFacts(
        reference=display_reference(row["reference"], row["id"]),
        display_name=row["display_name"],
        table_id=row["table_id"],
    )


def stored_payments(db: sqlite_utils.Database, order_key: int) -> tuple[StoredPayment, ...]:
    rows = db.query("SELECT * FROM payments WHERE order_id = ? ORDER BY id", [order_key])
    return tuple(_stored_payment(r) for r in rows)


def _stored_payment(row: Row) -> StoredPayment:
    return StoredPayment(
        paid_value=row["paid_amount"],
        tips_value=row["tips_amount"],
        payment_intent_id=row["payment_intent_id"],
        status=row["status"],
    )


def load_orders(db: sqlite_utils.Database, keys: Sequence[int]) -> list[wire.Order]:
    """Whole orders with all their lines, in the order of ``keys``; 7 queries per batch."""
    if not keys:
        return []
    rows = {r["id"]: r for r in select_in(db, "orders", "id", keys)}
    # Each child query sorts by its parent first, as its index does, so SQLite streams the rows
    # in index order instead of sorting them in a temporary B-tree (grouping keeps the order).
    items = _group(select_in(db, "order_items", "order_id", keys, "order_id, position, id"), "order_id")
    item_ids = [i["id"] for group in items.values() for i in group]
    subs = _children(db, "order_sub_items", "item_id", item_ids)
    sub_ids = [s["id"] for group in subs.values() for s in group]
    item_mods = _children(db, "order_modifiers", "item_id", item_ids)
    sub_mods = _children(db, "order_modifiers", "sub_item_id", sub_ids)
    discounts = _group(select_in(db, "order_discounts", "order_id", keys, "order_id, position, id"), "order_id")
    taxes = _group(select_in(db, "order_tax_lines", "order_id", keys, "order_id, position, id"), "order_id")
    payments = _group(select_in(db, "payments", "order_id", keys, "order_id, id"), "order_id")
    orders = []
    for key in keys:
        row = rows.get(key)
        if row is None:
            continue
        currency = row["currency_code"]
        lines = [
            _item(i, currency, item_mods.get(i["id"], []), subs.get(i["id"], []), sub_mods) for i in items.get(key, [])
        ]
        orders.append(
            _order(
                row,
                lines,
                [_discount(d, currency) for d in discounts.get(key, [])],
                [_tax_line(t, currency) for t in taxes.get(key, [])],
                [_stored_payment(p) for p in payments.get(key, [])],
            )
        )
    return orders


def _with_links(
    db: sqlite_utils.Database, table: str, links: str, owner: str, keys: Sequence[Any], order_by: str
) -> list[tuple[Row, list[Row]]]:
    """The rows of ``keys`` in that order (a key with no row left out), each with its rows in
    ``links`` (a table, party or reservation with its waiters or tables)."""
    if not keys:
        return []
    found = {r["id"]: r for r in select_in(db, table, "id", keys)}
    linked = _group(select_in(db, links, owner, keys, order_by), owner)
    return [(found[k], linked.get(k, [])) for k in keys if k in found]


def _children(db: sqlite_utils.Database, table: str, parent: str, parent_ids: list[int]) -> dict[int, list[Row]]:
    return _group(select_in(db, table, parent, parent_ids, f"{parent}, position, id"), parent)


def _group(rows: Iterable[Row], column: str) -> dict[Any, list[Row]]:
    """Rows by the value of ``column`` (a parent's key)."""
    grouped: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return grouped


def money(value: int, currency: str) -> wire.Money:
    return wire.Money(value=value, currency_code=currency)


# The lines of an order are built as plain dicts and the whole order is validated once
# (wire.Order.model_validate): pydantic-core builds the nested models in Rust, where a model
# constructed per line cost a Python call and a validation each (44 for a full order).
Doc = dict[str, Any]


def _money(value: int, currency: str) -> Doc:
    return {"value": value, "currency_code": currency}


def _modifier(row: Row, currency: str) -> Doc:
    return {
        "name": row["name"],
        "plu": row["plu"],
        "quantity": row["quantity"],
        "amount_per_modifier": _money(row["amount_per_modifier"], currency),
    }


def _item(row: Row, currency: str, mods: list[Row], subs: list[Row], sub_mods: dict[int, list[Row]]) -> Doc:
    return {
        "name": row["name"],
        "plu": row["plu"],
        "quantity": row["quantity"],
        "amount_per_item": _money(row["amount_per_item"], currency),
        "note": row["note"],
        "modifiers": [_modifier(m, currency) for m in mods] or None,
        "sub_items": [
            {
                "name": s["name"],
                "plu": s["plu"],
                "quantity": s["quantity"],
                "amount_per_item": _money(s["amount_per_item"], currency),
                "note": s["note"],
                "modifiers": [_modifier(m, currency) for m in sub_mods.get(s["id"], [])] or None,
            }
            for s in subs
        ]
        or None,
    }


def _discount(row: Row, currency: str) -> Doc:
    return {
        "name": row["name"],
        "amount_total": _money(row["amount_total"], currency),
        "affected_plu": row["affected_plu"],
        "discount_reference": row["discount_reference"],
        "code": row["code"],
        "amount_percentage": row["amount_percentage"],
    }


def _tax_line(row: Row, currency: str) -> Doc:
    return {
        "amount_total": _money(row["amount_total"], currency),
        "id": row["tax_id"],
        "name": row["name"],
        "affected_plu": row["affected_plu"],
        "amount_percentage": row["amount_percentage"],
    }


def _details(row: Row) -> wire.OrderDetails:
    return order_details(
        row["order_type"],
        wire.DineInDetails(
            table_id=row["table_id"],
            waiter_id=row["waiter_id"],
            party_id=row["party_id"],
            reservation_id=row["reservation_id"],
            ready_at=parse_time(row["ready_at"], f"readyAt of order {row['id']}"),
        ),
        wire.CollectionDetails(
            asap=None if row["collection_asap"] is None else bool(row["collection_asap"]),
            collect_at=parse_time(row["collect_at"], f"collectAt of order {row['id']}"),
        ),
    )


def _customer(row: Row) -> wire.Customer | None:
    fields = {
        "id": row["customer_id"],
        "name": row["customer_name"],
        "email_address": row["customer_email"],
        "phone_number": row["customer_phone"],
    }
    return wire.Customer(**fields) if any(v is not None for v in fields.values()) else None


def _order(
    row: Row, items: list[Doc], discounts: list[Doc], taxes: list[Doc], payments: list[StoredPayment]
) -> wire.Order:
    currency = row["currency_code"]
    status = wire.OrderStatus(row["status"])
    summary = summarise_payments(status, row["total_amount"], currency, payments)
    service = row["service_charge_amount"]
    return wire.Order.model_validate(
        {
            "id": str(row["id"]),
            "status": status,
            "details": _details(row),
            "items": items,
            "note": row["note"],
            "customer": _customer(row),
            "discounts": discounts,
            "tax_lines": taxes,
            "created_at": parse_time(row["created_at"], f"createdAt of order {row['id']}"),
            "updated_at": parse_time(row["updated_at"], f"updatedAt of order {row['id']}"),
            "total_amount": _money(row["total_amount"], currency),
            "payments": summary.payments,
            "payable": summary.payable,
            "paid_amount": summary.paid_amount,
            "service_charge_amount": _money(service, currency) if service is not None else None,
            "reference": display_reference(row["reference"], row["id"]),
            "tips_amount": summary.tips_amount,
            "display_name": row["display_name"],
        }
    )


# --- venue, tables, areas ----------------------------------------------------------------


def venue_details(db: sqlite_utils.Database) -> VenueDetails | None:
    row = one(db, "SELECT * FROM venue WHERE id = 1")
    if row is None:
        return None
    return VenueDetails.from_record(row, json.loads(row["address_lines"] or "[]"))


def load_tables(db: sqlite_utils.Database, keys: Sequence[str]) -> list[wire.Table]:
    return [
        wire.Table(
            id=row["id"],
            name=row["name"],
            max_covers=row["max_covers"],
            area_id=row["area_id"],
            waiter_ids=[w["waiter_id"] for w in waiters],
        )
        for row, waiters in _with_links(db, "tables", "table_waiters", "table_id", keys, "waiter_id")
    ]


def load_areas(db: sqlite_utils.Database) -> list[wire.Area]:
    waiters = _group(db.query("SELECT * FROM area_waiters ORDER BY waiter_id"), "area_id")
    return [
        wire.Area(id=r["id"], name=r["name"], waiter_ids=[w["waiter_id"] for w in waiters.get(r["id"], [])])
        for r in db.query("SELECT * FROM areas ORDER BY name, id")
    ]


def known_tables(db: sqlite_utils.Database, table_ids: Sequence[str]) -> set[str]:
    """Which of ``table_ids`` the POS has."""
    return {r["id"] for r in select_in(db, "tables", "id", table_ids)}


# --- records Dojo creates ----------------------------------------------------------------

_DOJO_ID_COLUMN = {"orders": "dojo_order_id", "parties": "dojo_party_id", "reservations": "dojo_reservation_id"}
_DELETED_COLUMN = {"orders": "NULL", "parties": "deleted_at", "reservations": "deleted_at"}


def _record(row: Row | None) -> StoredRecord[int] | None:
    return StoredRecord(int(row["id"]), row["dojo_id"], row["deleted_at"] is not None) if row is not None else None


def record_by_dojo_id(db: sqlite_utils.Database, table: str, dojo_id: str) -> StoredRecord[int] | None:
    """The order, party or reservation holding Dojo's id, deleted or not."""
    column = _DOJO_ID_COLUMN[table]
    sql = f"SELECT id, {column} AS dojo_id, {_DELETED_COLUMN[table]} AS deleted_at FROM {table} WHERE {column} = ?"  # noqa: S608
    return _record(one(db, sql, [dojo_id]))


def record(db: sqlite_utils.Database, table: str, wire_id: str) -> StoredRecord[int] | None:
    """The record a wire id names, deleted or not; ``None`` for an id this POS never issued."""
    key = parse_int_id(wire_id)
    if key is None:
        return None
    column = _DOJO_ID_COLUMN[table]
    sql = f"SELECT id, {column} AS dojo_id, {_DELETED_COLUMN[table]} AS deleted_at FROM {table} WHERE id = ?"  # noqa: S608
    return _record(one(db, sql, [key]))


# --- parties and reservations ------------------------------------------------------------


def load_parties(db: sqlite_utils.Database, keys: Sequence[int], *, searching: bool = False) -> list[wire.Party]:
    """The parties of ``keys``; one whose start cannot be read is left out of a search
    (:func:`epos_bridge.domain.bookings.read_bookings`), an error otherwise."""
    links = _with_links(db, "parties", "party_tables", "party_id", keys, "position, table_id")
    reads = [(row["id"], partial(_party, row, [t["table_id"] for t in tables])) for row, tables in links]
    return read_bookings("party", reads, searching=searching)


def _party(row: Row, table_ids: list[str]) -> wire.Party:
    deposit = None
    if row["deposit_amount"] is not None:
        deposit = wire.PartyDeposit(
            total_amount=money(row["deposit_amount"], row["deposit_currency"] or "GBP"),
            payment_intent_ids=json.loads(row["deposit_payment_intent_ids"] or "[]"),
            description=row["deposit_description"],
        )
    return wire.Party(
        id=str(row["id"]),
        start_time=required_stored_time(row["start_time"], "startTime"),
        status=row["status"],
        table_ids=table_ids,
        name=row["name"],
        covers=row["covers"],
        expected_end_time=parse_time(row["expected_end_time"], f"expectedEndTime of party {row['id']}"),
        end_time=parse_time(row["end_time"], f"endTime of party {row['id']}"),
        host_notes=row["host_notes"],
        guest_requests=row["guest_requests"],
        reservation_id=row["reservation_id"],
        deposit=deposit,
    )


def load_reservations(
    db: sqlite_utils.Database, keys: Sequence[int], *, searching: bool = False
) -> list[wire.Reservation]:
    """The reservations of ``keys``; one whose start or end cannot be read is left out of a
    search (:func:`epos_bridge.domain.bookings.read_bookings`), an error otherwise."""
    links = _with_links(db, "reservations", "reservation_tables", "reservation_id", keys, "position, table_id")
    reads = [(row["id"], partial(_reservation, row, [t["table_id"] for t in tables])) for row, tables in links]
    return read_bookings("reservation", reads, searching=searching)


def _reservation(row: Row, table_ids: list[str]) -> wire.Reservation:
    return wire.Reservation(
        id=str(row["id"]),
        name=row["name"],
        covers=row["covers"],
        start_time=required_stored_time(row["start_time"], "startTime"),
        end_time=required_stored_time(row["end_time"], "endTime"),
        table_ids=table_ids,
        host_notes=row["host_notes"],
        guest_requests=row["guest_requests"],
    )
