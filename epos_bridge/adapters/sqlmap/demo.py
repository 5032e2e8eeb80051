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

from epos_bridge.adapters.sqlmap import rows, writes
from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.demo_venue import DemoSeedRefused, DemoSummary, demo_venue
from epos_bridge.domain.orders import OrderRecord
from epos_bridge.protocol.entities import CLOSED_ORDER_STATUSES


def storable(record: OrderRecord) -> bool:
    """An open order the mapping can hold: no sub-items, at most one discount and one tax line."""
    return (
        record.status not in CLOSED_ORDER_STATUSES
        and len(record.discounts) <= 1
        and len(record.tax_lines) <= 1
        and not any(i.sub_items for i in record.items)
    )


def seed_demo(conn: sqlite3.Connection, mapping: Mapping, now: datetime) -> DemoSummary:
    """Write the demo venue in one transaction into an attached, empty POS database."""
    venue = demo_venue(now)
    db = sqlite_utils.Database(conn)
    if conn.execute("SELECT COUNT(*) FROM EPOS_BRIDGE_FACTS").fetchone()[0]:
        raise DemoSeedRefused("the database already holds a venue; demo data only goes into an empty one")
    for key in ("demo.venue", "demo.area", "demo.table", "orders.create", "orders.create_item"):
        if not mapping.has(key):
            raise DemoSeedRefused(f"the mapping {mapping.name} has no {key} statement, which the demo needs")
    orders = [o.record for o in venue.orders if storable(o.record)]
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        rows.keep_facts(db, "venue", 1, {"postcode": details.postcode, "vat_number": details.vat_number})
        area_keys: dict[str, int | None] = {}
        for area in venue.areas:
            area_key = area_keys[area.id] = rows.run(db, mapping, "demo.area", name=area.name)
            rows.keep_facts(db, "area", area_key, {"id": area.id, "waiter_ids": json.dumps(area.waiter_ids or [])})
        for number, table in enumerate(venue.tables, start=1):
            table_key = rows.run(db, mapping, "demo.table", number=number, area_key=area_keys.get(table.area_id or ""))
            facts = {"id": table.id, "name": table.name, "max_covers": table.max_covers}
            rows.keep_facts(db, "table", table_key, {**facts, "waiter_ids": json.dumps(table.waiter_ids or [])})
        for record in orders:
            writes.insert_order(db, mapping, record)
        reservations = [r.record for r in venue.reservations] if mapping.has("reservations.create") else []
        for reservation in reservations:
            writes.store_reservation(db, mapping, reservation, now)
        conn.execute("DELETE FROM EPOS_BRIDGE_CHANGES")  # the demo being written is no POS event
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
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
