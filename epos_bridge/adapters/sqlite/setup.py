"""``epos-bridge db init``: create or forward-migrate a reference database, optionally seeded."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from epos_bridge.adapters.sqlite.connection import connect, enable_wal, explain
from epos_bridge.adapters.sqlite.demo import DemoSeedRefused, DemoSummary, seed_demo
from epos_bridge.adapters.sqlite.schema import SchemaTooNew, migrate, schema_version
from epos_bridge.host.private_files import private_missing_folders
from epos_bridge.ports import AdapterInitError


class DatabaseInitError(AdapterInitError):
    """Why the database could not be created, migrated or seeded, in words for the installer."""


@dataclass(frozen=True)
class InitReport:
    path: Path
    from_version: int
    to_version: int
    demo: DemoSummary | None


def init_database(path: Path, *, demo: bool, now: datetime) -> InitReport:
    """Create (or forward-migrate) the database. What init creates is its user's alone: missing
    folders ``0700``, a new file ``0600`` from its first byte (SQLite gives its -wal and -shm the
    file's mode); a folder or file that was already there keeps its mode."""
    private_missing_folders(path.parent)
    _private_new_file(path)
    try:
        conn = connect(path, create=True)
    except sqlite3.Error as exc:
        raise DatabaseInitError(explain(exc, path)) from exc
    try:
        db = sqlite_utils.Database(conn)
        before = schema_version(db)
        if before == 0 and db.table_names():
            raise DatabaseInitError(
                f"{path} already holds tables that are not the reference schema; "
                "refusing to add ours to another program's database"
            )
        after = migrate(db)
        enable_wal(conn)
        summary = seed_demo(db, now) if demo else None
        return InitReport(path, before, after, summary)
    except (SchemaTooNew, DemoSeedRefused) as exc:
        raise DatabaseInitError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise DatabaseInitError(explain(exc, path)) from exc
    finally:
        conn.close()


def _private_new_file(path: Path) -> None:
    """``path`` created empty and ``0600`` if it is missing; an existing one is left alone (and
    one that cannot be made is explained when SQLite opens it)."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
