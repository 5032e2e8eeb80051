"""``epos-bridge db init``: create or forward-migrate a reference database, optionally seeded."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from epos_bridge.adapters.sqlite.connection import connect, enable_wal, explain
from epos_bridge.adapters.sqlite.demo import DemoSeedRefused, DemoSummary, seed_demo
from epos_bridge.adapters.sqlite.schema import SchemaTooNew, migrate, schema_version
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
    path.parent.mkdir(parents=True, exist_ok=True)
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
