"""``epos-bridge db init --adapter jsonfile PATH [--demo]``: create a file database, optionally seeded.

The demo venue ("The Copper Kettle", :mod:`epos_bridge.demo_venue`) is written as files with the
same document writers the adapter uses (:mod:`.documents`), so both adapters demo the same venue
from one description.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from epos_bridge.adapters.jsonfile import documents as docs
from epos_bridge.adapters.jsonfile.lockfile import FolderLock, LockTimeout
from epos_bridge.adapters.jsonfile.store import FORMAT_FILE, FORMAT_NAME, FORMAT_VERSION, JsonFolder, write_json_atomic
from epos_bridge.demo_venue import DemoSeedRefused, DemoSummary, DemoVenue, demo_venue
from epos_bridge.host.private_files import private_missing_folders
from epos_bridge.ports import AdapterInitError
from epos_bridge.protocol.base import to_wire


class FolderInitError(AdapterInitError):
    """Why the folder could not be created or seeded, in words for the installer."""


@dataclass(frozen=True)
class FolderInitReport:
    path: Path
    created: bool
    demo: DemoSummary | None


def init_folder(path: Path, *, demo: bool, now: datetime) -> FolderInitReport:
    """Create the layout of docs/file-database.md; repeatable; ``demo`` only fills an empty folder.

    What init creates is its user's alone: missing folders ``0700`` (the file database's own
    folder first, so nothing inside is ever reachable by another user), and every file and
    folder it added inside ``0600`` / ``0700``; what was already there keeps its mode. (The
    adapter's later writes are its own: docs/file-database.md.)
    """
    try:
        private_missing_folders(path)
        before = _everything_under(path)
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
                # A new folder's ledger starts complete: nothing to bring over from older order files.
                write_json_atomic(
                    path / docs.LEDGER_MARK, {"ledger": "every Dojo payment of this folder is in payment_intents/"}
                )
            for directory in (docs.ORDERS, docs.PARTIES, docs.RESERVATIONS, docs.PAYMENT_INTENTS):
                (path / directory).mkdir(mode=0o700, exist_ok=True)
            for name in (docs.AREAS, docs.TABLES):
                if not (path / name).exists():
                    write_json_atomic(path / name, [])
            summary = _seed_demo(path, now) if demo else None
        _owner_only(_everything_under(path) - before)
    except LockTimeout as exc:
        raise FolderInitError(f"{path} is locked by another program: {exc}") from exc
    except DemoSeedRefused as exc:
        raise FolderInitError(str(exc)) from exc
    except OSError as exc:
        raise FolderInitError(f"{path} cannot be set up: {exc.strerror or exc}") from exc
    return FolderInitReport(path, created, summary)


def _everything_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.is_dir() else set()


def _owner_only(created: set[Path]) -> None:
    """What init added: files ``0600``, folders ``0700`` (POSIX; Windows has the folder's ACL)."""
    if os.name != "posix":
        return
    for found in created:
        if not found.is_symlink():
            os.chmod(found, 0o700 if found.is_dir() else 0o600)


def _seed_demo(path: Path, now: datetime) -> DemoSummary:
    venue = demo_venue(now)
    for directory in (docs.ORDERS, docs.PARTIES, docs.RESERVATIONS):
        if any(name.endswith(".json") for name in os.listdir(path / directory)):
            raise DemoSeedRefused(f"the folder already has {directory}; demo data only goes into an empty one")
    if (path / docs.VENUE).exists() or JsonFolder(path).load(path / docs.TABLES):
        raise DemoSeedRefused("the folder already has a venue or tables; demo data only goes into an empty one")
    _write(path, venue)
    return venue.summary()


def _write(path: Path, venue: DemoVenue) -> None:
    """Every file of the venue; each record's own file before ``sequences.json`` (docs/file-database.md)."""
    write_json_atomic(path / docs.VENUE, docs.venue_doc(venue.venue, venue.currency))
    write_json_atomic(path / docs.AREAS, [to_wire(a) for a in venue.areas])
    write_json_atomic(path / docs.TABLES, [to_wire(t) for t in venue.tables])
    for reservation in venue.reservations:
        document = docs.reservation_doc(reservation.id, reservation.record)
        write_json_atomic(path / docs.RESERVATIONS / f"{reservation.id}.json", document)
    for party in venue.parties:
        write_json_atomic(path / docs.PARTIES / f"{party.id}.json", docs.party_doc(party.id, party.record))
    for order in venue.orders:
        write_json_atomic(path / docs.ORDERS / f"{order.id}.json", docs.order_doc(order.id, order.record))
    sequences = {
        docs.ORDERS: max((o.id for o in venue.orders), default=0) + 1,
        docs.PARTIES: max((p.id for p in venue.parties), default=0) + 1,
        docs.RESERVATIONS: max((r.id for r in venue.reservations), default=0) + 1,
    }
    write_json_atomic(path / docs.SEQUENCES, sequences)
