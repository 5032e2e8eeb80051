"""A POS's own SQLite file read through a mapping: the shared SQLite machinery
(:mod:`epos_bridge.adapters.sqlitedb`) plus what makes the file usable through this mapping.

A file is refused unless ``db attach`` has added the bridge's tables (:mod:`.bridge`) and every
statement of the mapping prepares against it; the refusal names the statement, the capability it
serves and what SQLite could not find.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from epos_bridge.adapters.sqlitedb import DEFAULT_BUSY_TIMEOUT_S, DEFAULT_WORKERS, SqliteFile
from epos_bridge.adapters.sqlmap import bridge
from epos_bridge.adapters.sqlmap.mapping import Mapping, statement_problems
from epos_bridge.domain.errors import PosUnavailable


def mapping_problem(mapping: Mapping, conn: sqlite3.Connection, path: Path) -> str | None:
    """A sentence naming why ``conn`` cannot be served through ``mapping``, or ``None``."""
    version = bridge.attached_version(conn)
    if version is None:
        return (
            f"{path} has not been attached to the bridge: run `epos-bridge db attach {path} --mapping {mapping.name}`"
        )
    if version != bridge.VERSION:
        if version < bridge.VERSION:
            return (
                f"{path} was attached by an older bridge (tables v{version}, this one v{bridge.VERSION}): run "
                f"`epos-bridge db attach {path} --mapping {mapping.name}` again (it keeps the bridge's payment record)"
            )
        return (
            f"{path} was attached by a newer bridge (tables v{version}, this one v{bridge.VERSION}); update epos-bridge"
        )
    problems = statement_problems(mapping, conn)
    if problems:
        listed = "; ".join(p.words() for p in problems)
        return f"the mapping {mapping.name} does not fit {path.name}: {listed}"
    missing = bridge.missing_triggers(mapping, conn)
    if missing:
        # Attaching again over an attached file adds them and keeps the payment record (setup.attach);
        # it never goes through a detach.
        return (
            f"{path.name} lacks the change triggers {', '.join(missing)}: run "
            f"`epos-bridge db attach {path} --mapping {mapping.name}` again (it keeps the bridge's payment record)"
        )
    return None


class MappedDatabase(SqliteFile):
    """One POS file, used from the event loop through a worker pool, checked against a mapping."""

    def __init__(
        self,
        path: Path,
        mapping: Mapping,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        super().__init__(path, busy_timeout_s=busy_timeout_s, workers=workers)
        self.mapping = mapping
        self.schema_hint = f"the mapping {mapping.name} does not fit it; check the mapping with Settings' Test"

    def check_schema(self, db: sqlite_utils.Database) -> None:
        problem = mapping_problem(self.mapping, db.conn, self.path)
        if problem is not None:
            public = (
                f"The POS database does not fit the mapping {self.mapping.name}; check the mapping with Settings' Test."
            )
            raise PosUnavailable(problem, public=public)  # the problem names the file: for the venue only
