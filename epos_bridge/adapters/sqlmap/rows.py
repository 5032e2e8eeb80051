"""Running a mapping's statements and reading their rows into the domain's records and wire
models. Runs on a worker thread inside a transaction.

Column aliases name entity fields (``total_amount``, ``item_key``; docs/mapping-a-pos.md);
amounts are integers in minor units; times are ISO 8601 text. The bridge's own tables
(:mod:`.bridge`) are read and written here with constant SQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as ReadOnly
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from epos_bridge.adapters.sql_dialects import DIALECTS
from epos_bridge.adapters.sql_session import Cursor, Sql
from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.errors import NotFound, PosUnavailable
from epos_bridge.domain.events import OrderFacts
from epos_bridge.domain.orders import (
    RECORDED,
    StoredPayment,
    display_reference,
    order_details,
    paid_value,
    summarise_payments,
)
from epos_bridge.domain.records import StoredRecord
from epos_bridge.protocol import entities as wire
from epos_bridge.protocol.ids import canonical_int_id
from epos_bridge.protocol.times import required_stored_time, stored_time

Row = dict[str, Any]


def query(db: Sql, mapping: Mapping, key: str, **values: Any) -> list[Row]:
    """Run a mapping's read statement; every value is bound, never formatted in."""
    return _rows(db, mapping.sql(key), values)


def searched_headers(db: Sql, mapping: Mapping, left_out: Iterable[wire.OrderStatus]) -> list[Row]:
    """``orders.search`` without the statuses a search always leaves out (the domain's
    ``OrderFilter.left_out``), filtered in SQL so the rest of a closed order's columns are never
    computed; every other filter is the domain's, in Python."""
    statuses = sorted(s.value for s in left_out)
    marks = ", ".join("?" * len(statuses))
    sql = f"SELECT * FROM ({mapping.sql('orders.search')}) AS found WHERE status NOT IN ({marks})"  # noqa: S608
    return _rows(db, sql, statuses)


def _rows(db: Sql, sql: str, values: Any) -> list[Row]:
    cursor = db.execute(sql, values)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def run(db: Sql, mapping: Mapping, key: str, **values: Any) -> int | None:
    """Run a mapping's write key, every statement in order (each given ``:row_<n>``, the row id
    of statement *n* before it); returns the first statement's row id (an insert's new key)."""
    row_ids: dict[str, int | None] = {}
    for number, sql in enumerate(mapping.parts(key), start=1):
        row_ids[f"row_{number}"] = row_id(db.execute(sql, {**values, **row_ids}))
    return row_ids["row_1"]


def row_id(cursor: Cursor) -> int | None:
    """A statement's row id: the first column of the row it returns (a ``SELECT`` or an
    ``INSERT … RETURNING``: a table whose key no driver reports), else the new row's id."""
    if cursor.description:
        found = cursor.fetchone()
        return None if found is None or found[0] is None else int(found[0])
    return cursor.lastrowid


def order_key(order_id: str) -> int | None:
    """The integer key a wire id names: only the canonical decimal form names a row."""
    return canonical_int_id(order_id)


def header_or_none(db: Sql, mapping: Mapping, order_id: str) -> Row | None:
    """The order's header row, or ``None`` for an id the POS does not have."""
    key = order_key(order_id)
    found = query(db, mapping, "orders.get", order_id=key) if key is not None else []
    return found[0] if found else None


def header(db: Sql, mapping: Mapping, order_id: str) -> Row:
    """The order's header row; ``NotFound`` for an id the POS never issued."""
    found = header_or_none(db, mapping, order_id)
    if found is None:
        raise NotFound(f"order {order_id!r} does not exist")
    return found


def currency_of(row: Row, mapping: Mapping) -> str:
    return str(row.get("currency_code") or mapping.currency)


def status_of(row: Row) -> wire.OrderStatus:
    try:
        return wire.OrderStatus(row["status"])
    except ValueError:
        raise PosUnavailable(
            f"order {row['id']}: the mapping's orders statement gives status {row['status']!r}, not one of Dojo's"
        ) from None


def time_of(row: Row, column: str, mapping: Mapping) -> datetime | None:
    """An order's time as the POS stores it, in the mapping's zone when it has no offset."""
    return stored_time(row.get(column), f"{column} of order {row.get('id')}", mapping.zone)


def order_facts(row: Row) -> OrderFacts:
    return OrderFacts(
        reference=display_reference(row.get("reference"), row["id"]),
        display_name=row.get("display_name"),
        table_id=row.get("table_id"),
    )


def stored_payments(db: Sql, mapping: Mapping, key: int) -> tuple[StoredPayment, ...]:
    if not mapping.has("orders.payments"):
        return ()
    return tuple(
        StoredPayment(
            paid_value=int(r["paid_amount"]),
            tips_value=int(r["tips_amount"]) if r.get("tips_amount") else None,
            payment_intent_id=r.get("payment_intent_id"),
            status=str(r["status"] or RECORDED),
        )
        for r in query(db, mapping, "orders.payments", order_id=key)
    )


# --- whole orders ---------------------------------------------------------------------------


def _children(db: Sql, mapping: Mapping, key: str, order: int) -> list[Row]:
    return query(db, mapping, key, order_id=order) if mapping.has(key) else []


def load_order(db: Sql, mapping: Mapping, row: Row) -> wire.Order:
    """The whole order of a header row: its lines, modifiers, discounts, tax lines, payments."""
    key = int(row["id"])
    currency = currency_of(row, mapping)
    modifiers: dict[Any, list[wire.Modifier]] = defaultdict(list)
    for m in _children(db, mapping, "orders.modifiers", key):
        modifiers[m["item_key"]].append(
            wire.Modifier(
                name=m["name"],
                plu=str(m["plu"]),
                quantity=_whole(m["quantity"], f"order {key}: modifier {m['name']!r}"),
                amount_per_modifier=_money(m["amount_per_modifier"], currency),
            )
        )
    items = [
        wire.OrderItem(
            name=i["name"],
            plu=str(i["plu"]),
            quantity=_whole(i["quantity"], f"order {key}: line {i['name']!r}"),
            amount_per_item=_money(i["amount_per_item"], currency),
            note=i.get("note"),
            modifiers=modifiers.get(i["item_key"]) or None,
        )
        for i in _children(db, mapping, "orders.items", key)
    ]
    discounts = [
        wire.Discount(
            name=d["name"],
            amount_total=_money(d["amount_total"], currency),
            affected_plu=d.get("affected_plu"),
            discount_reference=d.get("discount_reference"),
            code=d.get("code"),
            amount_percentage=d.get("amount_percentage"),
        )
        for d in _children(db, mapping, "orders.discounts", key)
    ]
    taxes = [
        wire.TaxLine(
            amount_total=_money(t["amount_total"], currency),
            id=t.get("tax_id"),
            name=t.get("name"),
            affected_plu=t.get("affected_plu"),
            amount_percentage=t.get("amount_percentage"),
        )
        for t in _children(db, mapping, "orders.tax_lines", key)
    ]
    status = status_of(row)
    summary = summarise_payments(status, int(row["total_amount"]), currency, stored_payments(db, mapping, key))
    service = row.get("service_charge_amount")
    return wire.Order(
        id=str(key),
        status=status,
        details=order_details(
            row.get("order_type"),
            wire.DineInDetails(
                table_id=row.get("table_id"),
                waiter_id=row.get("waiter_id"),
                party_id=row.get("party_id"),
                reservation_id=row.get("reservation_id"),
            ),
            wire.CollectionDetails(),
        ),
        items=items,
        note=row.get("note"),
        customer=_customer(row),
        discounts=discounts,
        tax_lines=taxes,
        created_at=time_of(row, "created_at", mapping),
        updated_at=time_of(row, "updated_at", mapping),
        total_amount=_money(row["total_amount"], currency),
        payments=summary.payments,
        payable=summary.payable,
        paid_amount=summary.paid_amount,
        service_charge_amount=_money(service, currency) if service else None,
        reference=display_reference(row.get("reference"), key),
        tips_amount=summary.tips_amount,
        display_name=row.get("display_name"),
    )


def load_by_key(db: Sql, mapping: Mapping, key: int) -> wire.Order:
    return load_order(db, mapping, header(db, mapping, str(key)))


def _whole(value: Any, where: str) -> int:
    """A quantity as Dojo's whole number. A POS that sells by fractions (0.5 of a bottle) is never
    truncated to 0: the call fails naming the line, and the mapping must map it exactly (for
    example one line of quantity 1 at the fraction's price)."""
    try:
        exact = Decimal(str(value))
    except (InvalidOperation, ValueError):
        exact = None
    if not isinstance(value, bool) and exact is not None and exact.is_finite() and exact == exact.to_integral_value():
        return int(exact)
    raise PosUnavailable(
        f"{where}: quantity {value!r} is not a whole number, which Dojo cannot show; "
        "change the mapping's quantity column to map it exactly (docs/mapping-a-pos.md)",
        public="An order line's quantity in the POS is not a whole number; the mapping must map it exactly.",
    )


def _money(value: Any, currency: str) -> wire.Money:
    return wire.Money(value=int(value), currency_code=currency)


def _customer(row: Row) -> wire.Customer | None:
    fields = {
        "id": row.get("customer_id"),
        "name": row.get("customer_name"),
        "email_address": row.get("customer_email"),
        "phone_number": row.get("customer_phone"),
    }
    return wire.Customer(**fields) if any(v is not None for v in fields.values()) else None


@dataclass
class SearchedHeader:
    """A header row as :class:`epos_bridge.domain.orders.SearchedOrder`; payments read only if asked."""

    row: Row
    db: Sql
    mapping: Mapping
    _paid: int | None = field(default=None, repr=False)

    @property
    def status(self) -> wire.OrderStatus:
        return status_of(self.row)

    @property
    def dine_in(self) -> ReadOnly[str, object]:
        if self.row.get("order_type") == wire.OrderType.COLLECTION.value:
            return {}
        names = ("table_id", "waiter_id", "party_id", "reservation_id")
        return {n: self.row.get(n) for n in names if self.row.get(n) is not None}

    @property
    def total_value(self) -> int:
        return int(self.row["total_amount"])

    @property
    def paid_value(self) -> int:
        if self._paid is None:
            self._paid = paid_value(stored_payments(self.db, self.mapping, int(self.row["id"])))
        return self._paid


# --- venue and floor --------------------------------------------------------------------------


def venue_details(db: Sql, mapping: Mapping) -> VenueDetails | None:
    found = query(db, mapping, "venue.get") if mapping.has("venue.get") else []
    if not found:
        return None
    row = found[0]
    return VenueDetails.from_record(row, (row.get(c) for c in ("address_line1", "address_line2", "address_line3")))


def _waiters(value: Any) -> list[str]:
    """``waiter_ids``: a JSON array (or ``NULL``)."""
    if value in (None, ""):
        return []
    try:
        listed = json.loads(value)
    except (TypeError, ValueError):
        listed = None
    if not isinstance(listed, list):
        raise PosUnavailable(f"waiter_ids must be a JSON array of ids, not {value!r:.60}")
    return [str(w) for w in listed]


def load_tables(db: Sql, mapping: Mapping) -> dict[str, wire.Table]:
    """Every table by its wire id."""
    return {
        str(r["id"]): wire.Table(
            id=str(r["id"]),
            name=str(r["name"]),
            max_covers=int(r["max_covers"]) if r.get("max_covers") is not None else None,
            area_id=str(r["area_id"]) if r.get("area_id") is not None else None,
            waiter_ids=_waiters(r.get("waiter_ids")),
        )
        for r in query(db, mapping, "floor.tables")
    }


def load_areas(db: Sql, mapping: Mapping) -> list[wire.Area]:
    areas = [
        wire.Area(id=str(r["id"]), name=str(r["name"]), waiter_ids=_waiters(r.get("waiter_ids")))
        for r in query(db, mapping, "floor.areas")
    ]
    return sorted(areas, key=lambda a: (a.name, a.id))


# --- the bridge's own tables ------------------------------------------------------------------


def one(db: Sql, sql: str, args: Sequence[Any] = ()) -> Row | None:
    return next(iter(db.query(sql, args)), None)


def order_of_dojo_id(db: Sql, dojo_order_id: str) -> StoredRecord[int] | None:
    """The order holding Dojo's order id (a fact the bridge keeps: the POS has no column for it)."""
    row = one(
        db,
        "SELECT POS_KEY AS pos_key FROM EPOS_BRIDGE_FACTS WHERE KIND = 'order' AND FIELD = 'dojo_order_id'"
        " AND VALUE = ?",
        [dojo_order_id],
    )
    return StoredRecord(int(row["pos_key"]), dojo_order_id, False) if row is not None else None


def forget_facts(db: Sql, kind: str, pos_key: object, fields: Sequence[str]) -> None:
    for name in fields:
        sql = "DELETE FROM EPOS_BRIDGE_FACTS WHERE KIND = ? AND POS_KEY = ? AND FIELD = ?"
        db.execute(sql, [kind, str(pos_key), name])


FACT_COLUMNS = ("KIND", "POS_KEY", "FIELD", "VALUE")


def keep_facts(db: Sql, mapping: Mapping, kind: str, pos_key: object, facts: ReadOnly[str, object]) -> None:
    """Each fact set, replacing what was kept under the same kind, key and field."""
    sql = DIALECTS[mapping.engine].upsert("EPOS_BRIDGE_FACTS", FACT_COLUMNS, FACT_COLUMNS[:3])
    for name, value in facts.items():
        if value is not None:
            db.execute(sql, [kind, str(pos_key), name, value])


# --- reservations -----------------------------------------------------------------------------


def _fact(db: Sql, kind: str, pos_key: object, field_name: str) -> str | None:
    row = one(
        db,
        "SELECT VALUE AS value FROM EPOS_BRIDGE_FACTS WHERE KIND = ? AND POS_KEY = ? AND FIELD = ?",
        [kind, str(pos_key), field_name],
    )
    return None if row is None else row["value"]


def reservation_row(db: Sql, mapping: Mapping, wire_id: str) -> Row | None:
    key = canonical_int_id(wire_id)
    found = query(db, mapping, "reservations.get", reservation_id=key) if key is not None else []
    return found[0] if found else None


def reservation_deleted(db: Sql, row: Row) -> bool:
    """Deleted through Dojo (a fact the bridge keeps), or on the POS (the mapping's ``deleted``)."""
    return bool(row.get("deleted")) or _fact(db, "reservation", row["id"], "deleted_at") is not None


def reservation_record(db: Sql, mapping: Mapping, wire_id: str) -> StoredRecord[int] | None:
    """The reservation a wire id names, deleted or not; ``None`` for an id never issued."""
    row = reservation_row(db, mapping, wire_id)
    if row is None:
        return None
    key = int(row["id"])
    return StoredRecord(key, _fact(db, "reservation", key, "dojo_reservation_id"), reservation_deleted(db, row))


def reservation_of_dojo_id(db: Sql, dojo_reservation_id: str) -> StoredRecord[int] | None:
    row = one(
        db,
        "SELECT POS_KEY AS pos_key FROM EPOS_BRIDGE_FACTS WHERE KIND = 'reservation' AND FIELD = 'dojo_reservation_id'"
        " AND VALUE = ?",
        [dojo_reservation_id],
    )
    if row is None:
        return None
    key = int(row["pos_key"])
    return StoredRecord(key, dojo_reservation_id, _fact(db, "reservation", key, "deleted_at") is not None)


def reservation_tables(db: Sql, mapping: Mapping, key: int) -> list[str]:
    return [str(r["table_id"]) for r in query(db, mapping, "reservations.tables", reservation_id=key)]


_WIRE_TIME = {"start_time": "startTime", "end_time": "endTime"}


def _required_time(row: Row, column: str, mapping: Mapping) -> datetime:
    """A reservation's start or end (the mapping's text, often NULL from ``strftime`` of text it
    cannot read): :class:`~epos_bridge.protocol.times.UnreadableTime` naming the wire field."""
    return required_stored_time(row.get(column), _WIRE_TIME[column], mapping.zone)


def load_reservation(db: Sql, mapping: Mapping, row: Row) -> wire.Reservation:
    """One reservation row; read it through :mod:`epos_bridge.domain.bookings` (``searched`` or
    ``read_booking``), which decide about a time that cannot be read."""
    key = int(row["id"])
    return wire.Reservation(
        id=str(key),
        name=str(row["name"] or ""),
        covers=int(row["covers"]),
        start_time=_required_time(row, "start_time", mapping),
        end_time=_required_time(row, "end_time", mapping),
        table_ids=reservation_tables(db, mapping, key),
        host_notes=row.get("host_notes"),
        guest_requests=row.get("guest_requests"),
    )


@dataclass
class SearchedBooking:
    """A reservation row as :class:`epos_bridge.domain.bookings.SearchedReservation`."""

    row: Row
    db: Sql
    mapping: Mapping

    @property
    def deleted(self) -> bool:
        return reservation_deleted(self.db, self.row)

    @property
    def table_ids(self) -> list[str]:
        return reservation_tables(self.db, self.mapping, int(self.row["id"]))

    @property
    def start_time(self) -> datetime:
        return _required_time(self.row, "start_time", self.mapping)

    @property
    def end_time(self) -> datetime:
        return _required_time(self.row, "end_time", self.mapping)
