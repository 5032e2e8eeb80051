"""What the bridge keeps inside the POS's own database, next to the POS's tables.

A POS schema knows nothing of Dojo: no order locks, no paymentIntentId to de-duplicate on, no
change log for POS events. ``epos-bridge db attach PATH --mapping M`` creates these tables (and
the triggers on the POS tables the mapping names) once, explicitly; ``db detach`` removes them.
They live in the same file so that the POS's payment row and the bridge's de-duplication row are
written in ONE transaction: a paymentIntentId is recorded exactly once, or not at all.

* ``EPOS_BRIDGE_PAYMENTS``: one row per paymentIntentId (the primary key), with the POS payment
  row it wrote and its status as Dojo's events move it.
* ``EPOS_BRIDGE_ORDER_LOCKS``: who holds which order, until when (and the mapping's ``lock_view``
  over it, for the POS to read).
* ``EPOS_BRIDGE_INTENT_EVENTS``: payment-intent events received, for de-duplication and ordering.
* ``EPOS_BRIDGE_CHANGES``: the change log behind POS events, filled by triggers.
* ``EPOS_BRIDGE_FACTS``: facts Dojo needs that the POS has no column for (an order's Dojo id, a
  table's covers and waiters, the venue's VAT number), read by the mapping's own SQL.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from epos_bridge.adapters.kept_rows import KeptTables
from epos_bridge.adapters.sqlmap.mapping import ChangeTrigger, Mapping

VERSION = 1

KEPT = KeptTables(
    locks="EPOS_BRIDGE_ORDER_LOCKS",
    lock_order="ORDER_KEY",
    events="EPOS_BRIDGE_INTENT_EVENTS",
    payments="EPOS_BRIDGE_PAYMENTS",
    payment_order="ORDER_KEY",
    changes="EPOS_BRIDGE_CHANGES",
)
"""The tables below that every SQLite adapter reads and writes the same way (``adapters/kept_rows.py``)."""
META = "EPOS_BRIDGE_META"

TABLES: tuple[tuple[str, str], ...] = (
    (
        META,
        f"CREATE TABLE {META} (KEY TEXT PRIMARY KEY, VALUE TEXT NOT NULL)",
    ),
    (
        "EPOS_BRIDGE_PAYMENTS",
        "CREATE TABLE EPOS_BRIDGE_PAYMENTS (PAYMENT_INTENT_ID TEXT PRIMARY KEY, ORDER_KEY INTEGER NOT NULL,"
        " POS_PAYMENT_ID INTEGER, PAID_AMOUNT INTEGER NOT NULL, TIPS_AMOUNT INTEGER, STATUS TEXT NOT NULL,"
        " RECORDED_AT TEXT NOT NULL)",
    ),
    (
        "EPOS_BRIDGE_ORDER_LOCKS",
        "CREATE TABLE EPOS_BRIDGE_ORDER_LOCKS (ORDER_KEY INTEGER PRIMARY KEY, LOCK_ID TEXT NOT NULL,"
        " EXPIRES_AT TEXT NOT NULL, LOCKED_AT TEXT NOT NULL, DOJO_REQUESTING_PRODUCT TEXT, DEVICE_ID TEXT,"
        " DEVICE_TYPE TEXT, WAITER_ID TEXT)",
    ),
    (
        "EPOS_BRIDGE_INTENT_EVENTS",
        "CREATE TABLE EPOS_BRIDGE_INTENT_EVENTS (EVENT_ID TEXT PRIMARY KEY, ACCOUNT_ID TEXT, EVENT TEXT NOT NULL,"
        " PAYMENT_INTENT_ID TEXT NOT NULL, PAYMENT_STATUS TEXT NOT NULL, CAPTURE_MODE TEXT, CREATED_AT TEXT NOT NULL,"
        " RECEIVED_AT TEXT NOT NULL)",
    ),
    (
        "EPOS_BRIDGE_CHANGES",
        "CREATE TABLE EPOS_BRIDGE_CHANGES (SEQ INTEGER PRIMARY KEY AUTOINCREMENT,"
        " ENTITY TEXT NOT NULL CHECK (ENTITY IN ('order', 'party', 'reservation')), ENTITY_ID TEXT NOT NULL,"
        " CHANGE TEXT NOT NULL CHECK (CHANGE IN ('insert', 'update', 'delete')),"
        " CHANGED_AT TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
    ),
    (
        "EPOS_BRIDGE_FACTS",
        "CREATE TABLE EPOS_BRIDGE_FACTS (KIND TEXT NOT NULL, POS_KEY TEXT NOT NULL, FIELD TEXT NOT NULL,"
        " VALUE TEXT, PRIMARY KEY (KIND, POS_KEY, FIELD))",
    ),
)
INDEXES: tuple[tuple[str, str], ...] = (
    (
        "EPOS_BRIDGE_PAYMENTS_BY_ORDER",
        "CREATE INDEX EPOS_BRIDGE_PAYMENTS_BY_ORDER ON EPOS_BRIDGE_PAYMENTS (ORDER_KEY)",
    ),
    (
        "EPOS_BRIDGE_INTENT_EVENTS_BY_INTENT",
        "CREATE INDEX EPOS_BRIDGE_INTENT_EVENTS_BY_INTENT ON EPOS_BRIDGE_INTENT_EVENTS (PAYMENT_INTENT_ID)",
    ),
    (
        "EPOS_BRIDGE_FACTS_BY_VALUE",
        "CREATE INDEX EPOS_BRIDGE_FACTS_BY_VALUE ON EPOS_BRIDGE_FACTS (KIND, FIELD, VALUE)",
    ),
)
TABLE_NAMES = tuple(name for name, _ in TABLES)
INDEX_NAMES = tuple(name for name, _ in INDEXES)
OPERATIONS = ("INSERT", "UPDATE", "DELETE")
CREATED = "created "
"""META keys ``created <type> <name>``: one row per object ``attach`` created (value: its type)."""
JOURNAL_MODE = "journal_mode"
"""The META key holding the journal mode ``attach`` found, which ``detach`` puts back."""
DROP_ORDER = {"trigger": 0, "view": 1, "index": 2, "table": 3}


@dataclass(frozen=True)
class Created:
    """One object ``attach`` creates: its type and name (what the record in META names), its SQL,
    and the mapping entry it comes from (named when the POS's database refuses it)."""

    kind: str
    name: str
    sql: str
    entry: str


def _trigger_name(change: ChangeTrigger, operation: str) -> str:
    return f"EPOS_BRIDGE_{change.table.upper()}_{operation}"


def _triggers(mapping: Mapping) -> list[Created]:
    """One trigger per table and operation; each only INSERTs into the change log, so it cannot
    fail the POS's own write, and a row naming no order records nothing."""
    statements = []
    for number, change in enumerate(mapping.changes):
        for operation, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            kind = operation.lower() if change.own else "update"
            key = change.order_key.replace("R.", f"{row}.")
            name = _trigger_name(change, operation)
            sql = (  # the mapping's own SQL (trusted installer configuration), no values
                f"CREATE TRIGGER {name} AFTER {operation} ON {change.table} "  # noqa: S608
                f"WHEN ({key}) IS NOT NULL BEGIN INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, CHANGE) "
                f"VALUES ('{change.entity}', CAST(({key}) AS TEXT), '{kind}'); END"
            )
            statements.append(Created("trigger", name, sql, f"changes[{number}] (table {change.table}, on {kind})"))
    return statements


def _lock_view_sql(name: str) -> str:
    return (
        f"CREATE VIEW {name} AS SELECT ORDER_KEY, LOCK_ID, EXPIRES_AT, DEVICE_ID, WAITER_ID "  # noqa: S608 - a validated identifier
        "FROM EPOS_BRIDGE_ORDER_LOCKS"
    )


def planned(mapping: Mapping) -> list[Created]:
    """Everything ``db attach`` creates for ``mapping``, in order."""
    objects = [Created("table", name, sql, "the bridge's tables") for name, sql in TABLES]
    objects += [Created("index", name, sql, "the bridge's tables") for name, sql in INDEXES]
    objects += _triggers(mapping)
    if mapping.lock_view:
        objects.append(Created("view", mapping.lock_view, _lock_view_sql(mapping.lock_view), "lock_view"))
    return objects


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def record_sql(mapping: Mapping, objects: Sequence[Created], journal_mode: str | None) -> list[str]:
    """The rows of META saying what attach created (so that detach removes exactly that), the
    journal mode it found, and the version and mapping of the tables."""
    rows = [("version", str(VERSION)), ("mapping", mapping.name)]
    rows += [(f"{CREATED}{o.kind} {o.name}", o.kind) for o in objects]
    if journal_mode is not None:
        rows.append((JOURNAL_MODE, journal_mode))
    values = ", ".join(f"({_text(key)}, {_text(value)})" for key, value in rows)
    return [f"INSERT OR REPLACE INTO {META} (KEY, VALUE) VALUES {values}"]  # noqa: S608 - quoted literals


def attach_sql(mapping: Mapping, journal_mode: str | None = None) -> list[str]:
    """Every statement ``db attach`` runs, in order (``--dry-run`` prints them)."""
    objects = planned(mapping)
    return [o.sql for o in objects] + record_sql(mapping, objects, journal_mode)


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return [
        (str(kind), str(name), str(table), sql)
        for kind, name, table, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'index', 'trigger', 'view')"
        )
    ]


def _has_meta(conn: sqlite3.Connection) -> bool:
    # Exact name: a POS table "epos_bridge_meta" would have made attach fail, so it is never the POS's.
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [META]).fetchone()
    return row is not None


def recorded(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """What attach created that is still there, as ``(type, name)``; empty when not attached.

    From the record in META; a file attached before the record existed is read by the bridge's
    exact names and shapes instead (:func:`_by_exact_shape`), never by a pattern.
    """
    if not _has_meta(conn):
        return []
    present = {(kind, name) for kind, name, _, _ in _schema(conn)}
    keys = [str(k) for (k,) in conn.execute(f"SELECT KEY FROM {META} WHERE KEY LIKE 'created %'")]  # noqa: S608
    if not keys:
        return [found for found in _by_exact_shape(conn) if found in present]
    named = [tuple(key[len(CREATED) :].split(" ", 1)) for key in keys if key.startswith(CREATED)]
    return [(kind, name) for kind, name in named if (kind, name) in present]


def _by_exact_shape(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """What an attach without a record created: the bridge's tables and indexes by their exact
    (case-sensitive) names, its triggers by name, table and body, its lock view by its exact SQL."""
    return [(kind, name) for kind, name, table, sql in _schema(conn) if _shaped_like_ours(kind, name, table, sql or "")]


def _shaped_like_ours(kind: str, name: str, table: str, sql: str) -> bool:
    if kind == "table":
        return name in TABLE_NAMES
    if kind == "index":
        return name in INDEX_NAMES
    if kind == "trigger":
        return _is_change_trigger(name, table, sql)
    return kind == "view" and sql == _lock_view_sql(name)


def _is_change_trigger(name: str, table: str, sql: str) -> bool:
    return any(
        name == f"EPOS_BRIDGE_{table.upper()}_{operation}"
        and sql.startswith(f"CREATE TRIGGER {name} AFTER {operation} ON {table} ")
        and " BEGIN INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, CHANGE) " in sql
        for operation in OPERATIONS
    )


_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENTIFIER = re.compile(r'"((?:[^"]|"")*)"|`((?:[^`]|``)*)`|\[([^\]]*)\]|([A-Za-z_][A-Za-z0-9_$]*)')


def _names_in(sql: str) -> set[str]:
    """Every identifier in ``sql``, upper case (SQLite compares names without case)."""
    found = set()
    for match in _IDENTIFIER.finditer(_LITERAL.sub("''", sql)):
        quoted, backticked, bracketed, bare = match.groups()
        name = bare or bracketed or (quoted or "").replace('""', '"') or (backticked or "").replace("``", "`")
        found.add(name.upper())
    return found


def dependents(conn: sqlite3.Connection, dropping: Sequence[tuple[str, str]]) -> list[str]:
    """The POS's own objects that would be lost or left dangling if ``dropping`` went: triggers
    and indexes on them (SQLite drops those silently), and triggers and views whose SQL names
    them (which would fail on the POS's next write or read). Each named, with what it uses."""
    ours = set(dropping)
    names = {name.upper(): name for _, name in dropping}
    found = []
    for kind, name, table, sql in _schema(conn):
        if (kind, name) in ours or name.startswith("sqlite_"):
            continue
        if kind != "table" and table.upper() in names and table.upper() != name.upper():
            found.append(f"{kind} {name} (on {names[table.upper()]})")
        elif kind in ("trigger", "view"):
            used = sorted(names[n] for n in _names_in(sql or "") & names.keys())
            if used:
                found.append(f"{kind} {name} (uses {', '.join(used)})")
    return found


def detach_sql(dropping: Sequence[tuple[str, str]]) -> list[str]:
    """``DROP`` statements for exactly ``dropping``: triggers, views, indexes, then tables."""
    ordered = sorted(dropping, key=lambda found: (DROP_ORDER[found[0]], found[1]))
    return [f"DROP {kind.upper()} {_identifier(name)}" for kind, name in ordered]


def _identifier(name: str) -> str:
    """A name read back from the database, as SQL: bare when plain, else quoted."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def recorded_journal_mode(conn: sqlite3.Connection) -> str | None:
    """The journal mode attach found (``None``: attached before the record existed, or not attached)."""
    if not _has_meta(conn):
        return None
    row = conn.execute(f"SELECT VALUE FROM {META} WHERE KEY = ?", [JOURNAL_MODE]).fetchone()  # noqa: S608
    return str(row[0]) if row else None


def attached_version(conn: sqlite3.Connection) -> int | None:
    """The version of the bridge's tables in this database, or ``None`` when not attached."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [META]).fetchone() is None:
        return None
    row = conn.execute(f"SELECT VALUE FROM {META} WHERE KEY = 'version'").fetchone()  # noqa: S608
    return int(row[0]) if row else None


def missing_triggers(mapping: Mapping, conn: sqlite3.Connection) -> list[str]:
    """The change triggers the mapping names that the database lacks (the mapping changed since attach)."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [_trigger_name(c, op) for c in mapping.changes for op in OPERATIONS if _trigger_name(c, op) not in present]
