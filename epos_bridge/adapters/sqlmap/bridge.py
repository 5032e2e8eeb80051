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

import sqlite3

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
INDEXES = (
    "CREATE INDEX EPOS_BRIDGE_PAYMENTS_BY_ORDER ON EPOS_BRIDGE_PAYMENTS (ORDER_KEY)",
    "CREATE INDEX EPOS_BRIDGE_INTENT_EVENTS_BY_INTENT ON EPOS_BRIDGE_INTENT_EVENTS (PAYMENT_INTENT_ID)",
    "CREATE INDEX EPOS_BRIDGE_FACTS_BY_VALUE ON EPOS_BRIDGE_FACTS (KIND, FIELD, VALUE)",
)
TABLE_NAMES = tuple(name for name, _ in TABLES)


def _trigger_name(change: ChangeTrigger, operation: str) -> str:
    return f"EPOS_BRIDGE_{change.table.upper()}_{operation}"


def _triggers(mapping: Mapping) -> list[str]:
    """One trigger per table and operation; each only INSERTs into the change log, so it cannot
    fail the POS's own write, and a row naming no order records nothing."""
    statements = []
    for change in mapping.changes:
        for operation, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            kind = operation.lower() if change.own else "update"
            key = change.order_key.replace("R.", f"{row}.")
            statements.append(  # the mapping's own SQL (trusted installer configuration), no values
                f"CREATE TRIGGER {_trigger_name(change, operation)} AFTER {operation} ON {change.table} "  # noqa: S608
                f"WHEN ({key}) IS NOT NULL BEGIN INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, CHANGE) "
                f"VALUES ('{change.entity}', CAST(({key}) AS TEXT), '{kind}'); END"
            )
    return statements


def attach_sql(mapping: Mapping) -> list[str]:
    """Every statement ``db attach`` runs, in order (``--dry-run`` prints them)."""
    statements = [sql for _, sql in TABLES] + list(INDEXES) + _triggers(mapping)
    if mapping.lock_view:
        statements.append(
            f"CREATE VIEW {mapping.lock_view} AS SELECT ORDER_KEY, LOCK_ID, EXPIRES_AT, DEVICE_ID, WAITER_ID "  # noqa: S608 - a validated identifier
            "FROM EPOS_BRIDGE_ORDER_LOCKS"
        )
    # The mapping's name is validated as a plain identifier (mapping.Mapping.name).
    meta = f"INSERT INTO {META} (KEY, VALUE) VALUES ('version', '{VERSION}'), ('mapping', '{mapping.name}')"  # noqa: S608
    statements.append(meta)
    return statements


def detach_sql(conn: sqlite3.Connection) -> list[str]:
    """Every statement ``db detach`` runs: whatever ``attach`` created that is still there."""
    found = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE name LIKE 'EPOS_BRIDGE_%' AND type IN ('trigger', 'view', 'table')"
    ).fetchall()
    views = conn.execute("SELECT name FROM sqlite_master WHERE type = 'view' AND sql LIKE '%EPOS_BRIDGE_ORDER_LOCKS%'")
    order = {"trigger": 0, "view": 1, "table": 2}
    drops = [(order[kind], f"DROP {kind.upper()} {name}") for kind, name in found]
    drops += [(1, f"DROP VIEW {name}") for (name,) in views if not name.upper().startswith("EPOS_BRIDGE_")]
    return [sql for _, sql in sorted(drops)]


def attached_version(conn: sqlite3.Connection) -> int | None:
    """The version of the bridge's tables in this database, or ``None`` when not attached."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [META]).fetchone() is None:
        return None
    row = conn.execute(f"SELECT VALUE FROM {META} WHERE KEY = 'version'").fetchone()  # noqa: S608
    return int(row[0]) if row else None


def missing_triggers(mapping: Mapping, conn: sqlite3.Connection) -> list[str]:
    """The change triggers the mapping names that the database lacks (the mapping changed since attach)."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [
        _trigger_name(c, op)
        for c in mapping.changes
        for op in ("INSERT", "UPDATE", "DELETE")
        if _trigger_name(c, op) not in present
    ]
