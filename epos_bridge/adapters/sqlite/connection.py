"""The reference schema's file: the shared SQLite machinery (:mod:`epos_bridge.adapters.sqlitedb`)
plus what makes a file a reference POS database.

Everything about WAL, the busy timeout, the worker pool, the deadline owned by the transaction
and the snapshot attempt lives in ``sqlitedb``; this module adds the schema check: an older
reference database is forward-migrated on open, anything else is refused.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import sqlite_utils

from epos_bridge.adapters.sqlite.schema import SCHEMA_VERSION, SchemaTooNew, migrate, schema_version
from epos_bridge.adapters.sqlitedb import (
    DEFAULT_BUSY_TIMEOUT_S,
    DEFAULT_WORKERS,
    SqliteFile,
    configure,
    connect,
    enable_wal,
)
from epos_bridge.adapters.sqlitedb import explain as explain_sqlite
from epos_bridge.adapters.sqlitedb import unavailable as unavailable_sqlite
from epos_bridge.domain.errors import PosUnavailable

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "DEFAULT_WORKERS", "PosDatabase", "configure", "connect", "enable_wal", "explain"]

log = logging.getLogger(__name__)

SCHEMA_HINT = "it does not have the reference schema; run `epos-bridge db init`"


def explain(exc: sqlite3.Error, path: Path) -> str:
    """A sentence for staff and support, in the reference schema's words."""
    return explain_sqlite(exc, path, SCHEMA_HINT)


class PosDatabase(SqliteFile):
    """One reference POS file, used from the event loop through a worker pool."""

    schema_hint = SCHEMA_HINT

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        workers: int = DEFAULT_WORKERS,
        migrate_on_open: bool = True,
    ) -> None:
        super().__init__(path, busy_timeout_s=busy_timeout_s, workers=workers)
        self._migrate_on_open = migrate_on_open

    def open_connection(self) -> sqlite3.Connection:
        # Through this module's name, so a test can trace or replace how connections are opened.
        return connect(self.path, busy_timeout_s=self.busy_timeout_s)

    def check_schema(self, db: sqlite_utils.Database) -> None:
        """Forward-migrate an older reference database; refuse anything that is not one."""
        try:
            version = schema_version(db)
            if version == 0:
                words = (
                    "is not a reference POS database (no schema version). "
                    "Create one with `epos-bridge db init PATH`, or choose the adapter that matches your POS."
                )
                raise PosUnavailable(f"{self.path} {words}", public=f"The POS database {words}")
            if version < SCHEMA_VERSION:
                if not self._migrate_on_open:
                    words = "is at an older schema; run `epos-bridge db init`."
                    raise PosUnavailable(f"The POS database {self.path} {words}", public=f"The POS database {words}")
                log.info("migrating the POS database %s from schema %d to %d", self.path, version, SCHEMA_VERSION)
                migrate(db)
            elif version > SCHEMA_VERSION:
                migrate(db)  # raises SchemaTooNew with the explanation
        except SchemaTooNew as exc:
            raise PosUnavailable(str(exc), public=str(exc)) from exc  # names no file
        except sqlite3.Error as exc:
            raise unavailable_sqlite(exc, self.path, SCHEMA_HINT) from exc
