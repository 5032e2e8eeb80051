"""The demo venue (:mod:`epos_bridge.demo_venue`) written into a POS's own tables through its
mapping: the floor through the mapping's ``demo`` statements, the open orders through the same
``orders.create`` path the adapter uses for CreateOrder, the reservations through the path
CreateReservation uses (:mod:`.writes`).

Only what the POS can hold faithfully is written: an open order with sub-items, or more than one
discount or tax line, is left out, and so are closed history and parties (no statements for
them); reservations go in when the mapping has their statements.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import sqlite_utils

from epos_bridge.adapters.sql_session import Sql
from epos_bridge.adapters.sqlmap import rows, writes
from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.demo_venue import MENU, DemoSeedRefused, DemoSummary, demo_venue
from epos_bridge.domain.orders import OrderRecord
from epos_bridge.protocol.entities import CLOSED_ORDER_STATUSES


def storable(record: OrderRecord, mapping: Mapping) -> bool:
    """An open order the mapping can hold: no sub-items, at most one discount and one tax line,
    modifiers only where the mapping writes them."""
    return (
        record.status not in CLOSED_ORDER_STATUSES
        and len(record.discounts) <= 1
        and len(record.tax_lines) <= 1
        and not any(i.sub_items for i in record.items)
        and (mapping.has("orders.create_modifier") or not any(i.modifiers for i in record.items))
    )


def _kept_as_written(db: Sql, mapping: Mapping, record: OrderRecord) -> bool:
    """Write the order; keep it only if it reads back with its total and lines (a POS that
    works its total out from its lines cannot hold an order discount): else undo it. The
    savepoint statements are spelled as SQLite, MariaDB and PostgreSQL all take them."""
    db.execute("SAVEPOINT demo_order")
    key = writes.insert_order(db, mapping, record)
    stored = rows.load_by_key(db, mapping, key)
    total = stored.total_amount.value if stored.total_amount else None
    same = total == record.total_value and len(stored.items or ()) == len(record.items)
    if not same:
        db.execute("ROLLBACK TO SAVEPOINT demo_order")
    db.execute("RELEASE SAVEPOINT demo_order")
    return same


def seed_demo(conn: sqlite3.Connection, mapping: Mapping, now: datetime) -> DemoSummary:
    """Write the demo venue in one transaction into an attached, empty POS file."""
    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        summary = write_demo(db, mapping, now)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return summary


def write_demo(db: Sql, mapping: Mapping, now: datetime) -> DemoSummary:
    """The demo venue, inside the caller's transaction, into an attached, empty POS database."""
    venue = demo_venue(now)
    if db.execute("SELECT COUNT(*) FROM EPOS_BRIDGE_FACTS").fetchone()[0]:
        raise DemoSeedRefused("the database already holds a venue; demo data only goes into an empty one")
    for key in ("demo.venue", "demo.table", "orders.create", "orders.create_item"):
        if not mapping.has(key):
            raise DemoSeedRefused(f"the mapping {mapping.name} has no {key} statement, which the demo needs")
    candidates = [o.record for o in venue.orders if storable(o.record, mapping)]
    details = venue.venue
    lines = [*details.address_lines, None, None, None]
    rows.run(
        db,
        mapping,
        "demo.venue",
        name=details.name,
        address_line1=lines[0],
        address_line2=lines[1],
        address_line3=lines[2],
        telephone=details.phone_number,
        footer_text=details.footer_text,
    )
    rows.keep_facts(db, mapping, "venue", 1, {"postcode": details.postcode, "vat_number": details.vat_number})
    area_keys: dict[str, int | None] = {}
    for number, area in enumerate(venue.areas, start=1):
        # A POS without areas (no demo.area) keeps them as facts only, numbered here.
        area_key = rows.run(db, mapping, "demo.area", name=area.name) if mapping.has("demo.area") else number
        area_keys[area.id] = area_key
        named = {"id": area.id, "name": area.name, "waiter_ids": json.dumps(area.waiter_ids or [])}
        rows.keep_facts(db, mapping, "area", area_key, named)
    for number, table in enumerate(venue.tables, start=1):
        area_key = area_keys.get(table.area_id or "") if mapping.has("demo.area") else None
        table_key = rows.run(db, mapping, "demo.table", number=number, name=table.name, area_key=area_key)
        facts: dict[str, object] = {"id": table.id, "name": table.name, "max_covers": table.max_covers}
        facts["area_id"] = table.area_id
        facts["waiter_ids"] = json.dumps(table.waiter_ids or [])
        rows.keep_facts(db, mapping, "table", table_key, facts)
    for plu, (name, value) in MENU.items() if mapping.has("demo.menu_item") else ():
        rows.run(db, mapping, "demo.menu_item", name=name, plu=plu, amount_per_item=value)
    orders = [record for record in candidates if _kept_as_written(db, mapping, record)]
    reservations = [r.record for r in venue.reservations] if mapping.has("reservations.create") else []
    for reservation in reservations:
        writes.store_reservation(db, mapping, reservation, now)
    db.execute("DELETE FROM EPOS_BRIDGE_CHANGES")  # the demo being written is no POS event
    return DemoSummary(
        waiters=len(venue.waiters),
        areas=len(venue.areas),
        tables=len(venue.tables),
        open_orders=len(orders),
        closed_orders=0,
        seated_parties=0,
        departed_parties=0,
        reservations=len(reservations),
        payments=sum(len(r.payments) for r in orders),
    )
