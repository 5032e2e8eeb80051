"""The demo venue (:mod:`epos_bridge.demo_venue`) written into the reference schema.

``seed_demo`` fills an empty, migrated reference database with "The Copper Kettle" through the
same row writers the adapter uses (:mod:`.writes`), so the demo's rows are exactly what the
adapter itself would store. The same ``now`` always gives the same rows.
"""

from __future__ import annotations

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
    writes.insert_venue(db, venue.venue, venue.currency)
    db.table("waiters").insert_all({"id": w.id, "name": w.name} for w in venue.waiters)
    writes.insert_floor(db, venue.areas, venue.tables)
    for reservation in venue.reservations:
        writes.insert_booking(db, reservation.record, reservation.id)
    for party in venue.parties:
        writes.insert_booking(db, party.record, party.id)
    for order in venue.orders:
        writes.insert_order(db, order.record, order.id)
