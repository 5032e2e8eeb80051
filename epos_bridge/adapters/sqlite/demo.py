"""The demo venue (:mod:`epos_bridge.demo_venue`) written into the reference schema.

``seed_demo`` fills an empty, migrated reference database with "The Copper Kettle" through the
same row writers the adapter uses (:mod:`.writes`), so the demo's rows are exactly what the
adapter itself would store. The same ``now`` always gives the same rows.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlite_utils

from epos_bridge.adapters.sqlite import writes
from epos_bridge.adapters.sqlite.schema import SCHEMA_VERSION, schema_version
from epos_bridge.demo_venue import DemoSeedRefused, DemoSummary, DemoVenue, demo_venue

__all__ = ["DemoSeedRefused", "DemoSummary", "seed_demo"]


def seed_demo(db: sqlite_utils.Database, now: datetime) -> DemoSummary:
    """Write the demo venue in one transaction.

    ``now`` must be timezone-aware. The database must be migrated to the current schema and
    hold no venue, tables or orders yet (:class:`DemoSeedRefused` otherwise).
    """
    venue = demo_venue(now)
    _check_empty(db)
    with db.atomic():
        _write(db, venue)
    return venue.summary()


def _check_empty(db: sqlite_utils.Database) -> None:
    version = schema_version(db)
    if version != SCHEMA_VERSION:
        raise DemoSeedRefused(f"the database is at schema version {version}, not {SCHEMA_VERSION}; migrate it first")
    for table in ("venue", "tables", "orders", "parties", "reservations"):
        if db.table(table).count:
            raise DemoSeedRefused(f"the database already has rows in {table}; demo data only goes into an empty one")


def _write(db: sqlite_utils.Database, venue: DemoVenue) -> None:
    details = venue.venue
    db.table("venue").insert(
        {
            "id": 1,
            "name": details.name,
            "address_lines": json.dumps(list(details.address_lines)),
            "postcode": details.postcode,
            "phone_number": details.phone_number,
            "email_address": details.email_address,
            "vat_number": details.vat_number,
            "logo_svg": details.logo_svg,
            "website_url": details.website_url,
            "website_caption": details.website_caption,
            "footer_text": details.footer_text,
            "currency_code": venue.currency,
        }
    )
    db.table("waiters").insert_all({"id": w.id, "name": w.name} for w in venue.waiters)
    db.table("areas").insert_all({"id": a.id, "name": a.name} for a in venue.areas)
    db.table("area_waiters").insert_all(
        {"area_id": a.id, "waiter_id": w} for a in venue.areas for w in a.waiter_ids or []
    )
    db.table("tables").insert_all(
        {"id": t.id, "name": t.name, "area_id": t.area_id, "max_covers": t.max_covers} for t in venue.tables
    )
    db.table("table_waiters").insert_all(
        {"table_id": t.id, "waiter_id": w} for t in venue.tables for w in t.waiter_ids or []
    )
    for reservation in venue.reservations:
        writes.insert_reservation(db, reservation.reservation, reservation.id)
    for party in venue.parties:
        writes.insert_party(db, party.party, party.id)
    for order in venue.orders:
        writes.insert_order(db, order.order, order.id)
