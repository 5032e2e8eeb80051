"""``epos-bridge db init --adapter jsonfile PATH [--demo]``: create a file database, optionally seeded.

The demo venue is the reference demo ("The Copper Kettle", :mod:`epos_bridge.adapters.sqlite.demo`)
built in an in-memory SQLite database and written out as files, so both adapters demo the
same venue from one definition.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from epos_bridge.adapters.jsonfile import documents as docs
from epos_bridge.adapters.jsonfile.lockfile import FolderLock, LockTimeout
from epos_bridge.adapters.jsonfile.store import FORMAT_FILE, FORMAT_NAME, FORMAT_VERSION, JsonFolder, write_json_atomic
from epos_bridge.adapters.sqlite import rows
from epos_bridge.adapters.sqlite.demo import DemoSeedRefused, DemoSummary, seed_demo
from epos_bridge.adapters.sqlite.schema import migrate
from epos_bridge.protocol.base import to_wire


class FolderInitError(Exception):
    """Why the folder could not be created or seeded, in words for the installer."""


@dataclass(frozen=True)
class FolderInitReport:
    path: Path
    created: bool
    demo: DemoSummary | None


def init_folder(path: Path, *, demo: bool, now: datetime) -> FolderInitReport:
    """Create the layout of docs/file-database.md; repeatable; ``demo`` only fills an empty folder."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        marker = JsonFolder(path).load(path / FORMAT_FILE)
        created = marker is None
        if created and any(not name.startswith(".") for name in os.listdir(path)):
            raise FolderInitError(
                f"{path} already holds files but no {FORMAT_FILE}; refusing to add a file database to another "
                "program's folder"
            )
        if not created and (not isinstance(marker, dict) or marker.get("format") != FORMAT_NAME):
            raise FolderInitError(f"{path / FORMAT_FILE} belongs to another program")
        with FolderLock(path).hold():
            if created:
                write_json_atomic(path / FORMAT_FILE, {"format": FORMAT_NAME, "version": FORMAT_VERSION})
            for directory in (docs.ORDERS, docs.PARTIES, docs.RESERVATIONS, docs.PAYMENT_INTENTS):
                (path / directory).mkdir(exist_ok=True)
            for name in (docs.AREAS, docs.TABLES):
                if not (path / name).exists():
                    write_json_atomic(path / name, [])
            summary = _seed_demo(path, now) if demo else None
    except LockTimeout as exc:
        raise FolderInitError(f"{path} is locked by another program: {exc}") from exc
    except DemoSeedRefused as exc:
        raise FolderInitError(str(exc)) from exc
    except OSError as exc:
        raise FolderInitError(f"{path} cannot be set up: {exc.strerror or exc}") from exc
    return FolderInitReport(path, created, summary)


def _seed_demo(path: Path, now: datetime) -> DemoSummary:
    for directory in (docs.ORDERS, docs.PARTIES, docs.RESERVATIONS):
        if any(name.endswith(".json") for name in os.listdir(path / directory)):
            raise DemoSeedRefused(f"the folder already has {directory}; demo data only goes into an empty one")
    if (path / docs.VENUE).exists() or JsonFolder(path).load(path / docs.TABLES):
        raise DemoSeedRefused("the folder already has a venue or tables; demo data only goes into an empty one")
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    summary = seed_demo(db, now)
    export_reference_database(db, path)
    return summary


def export_reference_database(db: sqlite_utils.Database, path: Path) -> None:
    """Write every row of a reference database as the file layout (used for the demo and migrations)."""
    venue = rows.one(db, "SELECT * FROM venue WHERE id = 1")
    if venue is not None:
        details = rows.venue_details(db)
        assert details is not None
        write_json_atomic(
            path / docs.VENUE,
            {
                "name": details.name,
                "addressLines": list(details.address_lines),
                "postcode": details.postcode,
                "phoneNumber": details.phone_number,
                "emailAddress": details.email_address,
                "vatNumber": details.vat_number,
                "logoSvg": details.logo_svg,
                "websiteUrl": details.website_url,
                "websiteCaption": details.website_caption,
                "footerText": details.footer_text,
                "currencyCode": venue["currency_code"],
            },
        )
    write_json_atomic(path / docs.AREAS, [to_wire(a) for a in rows.load_areas(db)])
    table_ids = [r["id"] for r in db.query("SELECT id FROM tables ORDER BY id")]
    write_json_atomic(path / docs.TABLES, [to_wire(t) for t in rows.load_tables(db, table_ids)])
    sequences: dict[str, int] = {}
    sequences[docs.ORDERS] = _export_orders(db, path)
    sequences[docs.PARTIES] = _export_parties(db, path)
    sequences[docs.RESERVATIONS] = _export_reservations(db, path)
    _export_intent_events(db, path)
    write_json_atomic(path / docs.SEQUENCES, sequences)


def _export_orders(db: sqlite_utils.Database, path: Path) -> int:
    last = 0
    for row in db.query("SELECT * FROM orders ORDER BY id"):
        key = int(row["id"])
        last = key
        order = rows.load_orders(db, [key])[0]
        lock = rows.held_lock(db, key)
        payments = [
            {
                "paymentIntentId": p["payment_intent_id"],
                "tender": p["tender"],
                "paidAmount": p["paid_amount"],
                "tipsAmount": p["tips_amount"],
                "status": p["status"],
                "recordedAt": p["recorded_at"],
                "requester": {
                    k: v
                    for k, v in (
                        ("dojoRequestingProduct", p["dojo_requesting_product"]),
                        ("deviceId", p["device_id"]),
                        ("waiterId", p["waiter_id"]),
                    )
                    if v is not None
                },
            }
            for p in db.query("SELECT * FROM payments WHERE order_id = ? ORDER BY id", [key])
        ]
        wire = to_wire(order)
        document: dict[str, Any] = {
            "id": str(key),
            "dojoOrderId": row["dojo_order_id"],
            "reference": row["reference"],
            "displayName": row["display_name"],
            "status": row["status"],
            "details": wire["details"],
            "items": wire.get("items", []),
            "note": row["note"],
            "customer": wire.get("customer"),
            "discounts": wire.get("discounts", []),
            "taxLines": wire.get("taxLines", []),
            "currencyCode": row["currency_code"],
            "totalAmount": row["total_amount"],
            "serviceChargeAmount": row["service_charge_amount"],
            "openAtTill": row["open_at_till"],
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "payments": payments,
            "lock": docs.lock_doc(lock) if lock is not None else None,
        }
        write_json_atomic(path / docs.ORDERS / f"{key}.json", document)
    return last + 1


def _export_parties(db: sqlite_utils.Database, path: Path) -> int:
    last = 0
    for row in db.query("SELECT * FROM parties ORDER BY id"):
        key = int(row["id"])
        last = key
        wire = to_wire(rows.load_parties(db, [key])[0])
        wire.pop("id")
        document = {
            "id": str(key),
            "dojoPartyId": row["dojo_party_id"],
            "dojoReservationId": row["dojo_reservation_id"],
            **wire,
            "deletedAt": row["deleted_at"],
        }
        write_json_atomic(path / docs.PARTIES / f"{key}.json", document)
    return last + 1


def _export_reservations(db: sqlite_utils.Database, path: Path) -> int:
    last = 0
    for row in db.query("SELECT * FROM reservations ORDER BY id"):
        key = int(row["id"])
        last = key
        wire = to_wire(rows.load_reservations(db, [key])[0])
        wire.pop("id")
        document = {
            "id": str(key),
            "dojoReservationId": row["dojo_reservation_id"],
            **wire,
            "deletedAt": row["deleted_at"],
        }
        write_json_atomic(path / docs.RESERVATIONS / f"{key}.json", document)
    return last + 1


def _export_intent_events(db: sqlite_utils.Database, path: Path) -> None:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in db.query("SELECT * FROM payment_intent_events ORDER BY created_at, received_at"):
        grouped[e["payment_intent_id"]].append(
            {
                "eventId": e["event_id"],
                "accountId": e["account_id"],
                "event": e["event"],
                "paymentStatus": e["payment_status"],
                "captureMode": e["capture_mode"],
                "createdAt": e["created_at"],
                "receivedAt": e["received_at"],
            }
        )
    for intent, events in grouped.items():
        write_json_atomic(path / docs.intent_file(intent), {"paymentIntentId": intent, "events": events})
