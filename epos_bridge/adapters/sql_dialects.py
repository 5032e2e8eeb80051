"""The few places the bridge's own SQL differs between the databases a POS keeps its tables in.

Pure text: no connection, no I/O. Everything else the bridge writes to its own tables is the
SQL the three engines share (``SELECT``, ``INSERT … VALUES``, ``UPDATE``, ``DELETE``, with bound
values). What differs, and only that, is here:

* an insert-or-replace on a key (``ON CONFLICT … DO UPDATE`` in SQLite and PostgreSQL,
  ``ON DUPLICATE KEY UPDATE`` in MariaDB/MySQL);
* a column name that is a reserved word in one engine (MariaDB/MySQL reserve ``KEY`` and ``CHANGE``);
* the order rows arrived in (SQLite's ``rowid``; a server table has an ``ARRIVAL`` column);
* where the change log's sequence stands, even after its rows are forgotten.

A POS's own statements (the mapping) are written in the engine's own dialect by the installer
and never rewritten; these are only the bridge's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

EngineName = Literal["sqlite", "mysql", "postgresql"]


@dataclass(frozen=True)
class Dialect:
    """One engine's spelling of what the bridge's own SQL needs."""

    name: EngineName
    reserved: frozenset[str] = frozenset()
    """Column names of the bridge's tables that must be quoted in this engine."""
    open_quote: str = '"'
    close_quote: str = '"'
    arrival: str = "rowid"
    """The column giving a bridge table's rows in the order they were written."""
    change_mark: str = "SELECT seq FROM sqlite_sequence WHERE name = 'EPOS_BRIDGE_CHANGES'"
    """One row, one column: the change log's last sequence number, which only ever grows (its
    rows are forgotten once relayed, so the largest one left would go back); no row when none
    was ever written."""

    def column(self, name: str) -> str:
        """A column of the bridge's tables, quoted where the engine reserves the word."""
        if name.upper() in self.reserved:
            return f"{self.open_quote}{name}{self.close_quote}"
        return name

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """``INSERT`` one row (``?`` placeholders, in ``columns`` order), replacing the columns
        outside ``key`` of the row already holding that key."""
        names = ", ".join(self.column(c) for c in columns)
        values = ", ".join("?" for _ in columns)
        rest = [c for c in columns if c not in key]
        insert = f"INSERT INTO {table} ({names}) VALUES ({values})"  # noqa: S608 - names from code
        if self.name == "mysql":
            updates = ", ".join(f"{self.column(c)} = VALUES({self.column(c)})" for c in rest)
            return f"{insert} ON DUPLICATE KEY UPDATE {updates}"
        updates = ", ".join(f"{self.column(c)} = excluded.{self.column(c)}" for c in rest)
        return f"{insert} ON CONFLICT ({', '.join(self.column(c) for c in key)}) DO UPDATE SET {updates}"


SQLITE = Dialect("sqlite")
MYSQL = Dialect(
    "mysql",
    reserved=frozenset({"KEY", "CHANGE"}),
    open_quote="`",
    close_quote="`",
    arrival="ARRIVAL",
    # Live in MariaDB; MySQL 8 caches it unless information_schema_stats_expiry = 0 (set per session).
    change_mark="SELECT AUTO_INCREMENT - 1 FROM information_schema.TABLES"
    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'EPOS_BRIDGE_CHANGES'",
)
POSTGRESQL = Dialect(
    "postgresql",
    arrival="ARRIVAL",
    # EPOS_BRIDGE_CHANGES.SEQ's own sequence, named by attach (server_setup): read as a relation,
    # it is live (not of the snapshot), one row, and last_value is only "called" once it was used.
    change_mark="SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM EPOS_BRIDGE_CHANGES_SEQ",
)
DIALECTS: dict[str, Dialect] = {d.name: d for d in (SQLITE, MYSQL, POSTGRESQL)}
