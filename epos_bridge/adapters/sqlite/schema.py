"""The reference POS schema, versioned with ``PRAGMA user_version`` (docs/reference-schema.md).

Migrations only move forward: ``MIGRATIONS[n]`` takes a database from version ``n`` to
``n + 1``. A database newer than this code is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from epos_bridge.adapters.kept_rows import KeptTables

# --- change capture -------------------------------------------------------------------------
# Which row change means which entity changed. Frozen: migration 2 is built from it, so edit
# only by adding a new migration (tests/unit/test_reference_schema_triggers.py pins its text).


@dataclass(frozen=True)
class RowChange:
    """A table whose row changes are an entity's changes. ``entity_id`` and ``rest`` are given
    the changed row's name (``NEW`` or ``OLD``) and return SQL: the entity id's expression and
    what follows the SELECT (a FROM/WHERE; a child row whose entity is gone records nothing).
    The row is a value passed in, never text replaced in SQL."""

    table: str
    entity: str
    entity_id: Callable[[str], str]
    rest: Callable[[str], str] = lambda row: ""


def _of_order(row: str, column: str) -> str:
    return f" WHERE EXISTS (SELECT 1 FROM orders WHERE id = {row}.{column})"  # noqa: S608 - NEW or OLD


_ENTITY_OF_ROW: tuple[RowChange, ...] = (
    RowChange("orders", "order", lambda row: f"{row}.id"),
    RowChange("order_items", "order", lambda row: f"{row}.order_id", lambda row: _of_order(row, "order_id")),
    RowChange("order_discounts", "order", lambda row: f"{row}.order_id", lambda row: _of_order(row, "order_id")),
    RowChange("order_tax_lines", "order", lambda row: f"{row}.order_id", lambda row: _of_order(row, "order_id")),
    RowChange("payments", "order", lambda row: f"{row}.order_id", lambda row: _of_order(row, "order_id")),
    RowChange(
        "order_sub_items",
        "order",
        lambda row: "i.order_id",
        lambda row: f" FROM order_items i WHERE i.id = {row}.item_id",
    ),
    RowChange(
        "order_modifiers",
        "order",
        lambda row: "i.order_id",
        lambda row: (
            f" FROM order_items i WHERE i.id = {row}.item_id "  # noqa: S608 - NEW or OLD
            f"OR i.id = (SELECT s.item_id FROM order_sub_items s WHERE s.id = {row}.sub_item_id)"
        ),
    ),
    RowChange("parties", "party", lambda row: f"{row}.id"),
    RowChange(
        "party_tables",
        "party",
        lambda row: f"{row}.party_id",
        lambda row: f" WHERE EXISTS (SELECT 1 FROM parties WHERE id = {row}.party_id)",  # noqa: S608 - NEW or OLD
    ),
    RowChange("reservations", "reservation", lambda row: f"{row}.id"),
    RowChange(
        "reservation_tables",
        "reservation",
        lambda row: f"{row}.reservation_id",
        lambda row: f" WHERE EXISTS (SELECT 1 FROM reservations WHERE id = {row}.reservation_id)",  # noqa: S608 - NEW or OLD
    ),
)
_OWN_TABLES = ("orders", "parties", "reservations")
"""An entity's own table: its inserts and deletes are the entity's (a child row's are updates)."""


def change_trigger_sql(change: RowChange, operation: str) -> str:
    """The trigger logging ``operation`` (``INSERT``, ``UPDATE``, ``DELETE``) on ``change.table``."""
    row = "OLD" if operation == "DELETE" else "NEW"
    kind = operation.lower() if change.table in _OWN_TABLES else "update"
    select = f"SELECT '{change.entity}', CAST({change.entity_id(row)} AS TEXT), '{kind}'{change.rest(row)}"
    return (
        f"CREATE TRIGGER {change.table}_changed_on_{operation.lower()} AFTER {operation} ON {change.table} BEGIN\n"
        f"    INSERT INTO pos_changes (entity, entity_id, change) {select};\nEND;"
    )


def _change_capture_migration() -> str:
    """The change-log table and one trigger per table and operation.

    Triggers only ever INSERT into ``pos_changes`` and cannot fail the POS's own write: a child
    row whose order is already gone records nothing (the order's own delete is recorded).
    """
    statements = [
        """CREATE TABLE pos_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL CHECK (entity IN ('order', 'party', 'reservation')),
            entity_id TEXT NOT NULL,
            change TEXT NOT NULL CHECK (change IN ('insert', 'update', 'delete')),
            changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );"""
    ]
    for change in _ENTITY_OF_ROW:
        for operation in ("INSERT", "UPDATE", "DELETE"):
            statements.append(change_trigger_sql(change, operation))
    return "\n".join(statements)


OPEN_ORDERS_SQL = "status NOT IN ('Canceled', 'Finalized')"
"""The open-order condition exactly as the order searches write it (migration 4's partial
indexes are used only for this very text). Frozen with migration 4."""


_LEDGER_ROW = (
    "INSERT INTO dojo_payments"
    " (payment_intent_id, order_key, pos_payment_id, paid_amount, tips_amount, status, recorded_at)"
    " VALUES (NEW.payment_intent_id, NEW.order_id, NEW.id, NEW.paid_amount, NEW.tips_amount, NEW.status,"
    " NEW.recorded_at)"
    " ON CONFLICT (payment_intent_id) DO UPDATE SET order_key = excluded.order_key,"
    " pos_payment_id = excluded.pos_payment_id"
)
"""A Dojo payment row into the bridge's ledger, or the ledger following it to another order (schema v5)."""

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the reference schema.
    """
    CREATE TABLE venue (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        address_lines TEXT NOT NULL DEFAULT '[]',      -- JSON array of strings
        postcode TEXT NOT NULL DEFAULT '',
        phone_number TEXT,
        email_address TEXT,
        vat_number TEXT,
        logo_svg TEXT,
        website_url TEXT,
        website_caption TEXT,
        footer_text TEXT,
        currency_code TEXT NOT NULL DEFAULT 'GBP'
    );

    CREATE TABLE waiters (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );

    CREATE TABLE areas (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );

    CREATE TABLE area_waiters (
        area_id TEXT NOT NULL REFERENCES areas(id) ON DELETE CASCADE,
        waiter_id TEXT NOT NULL,
        PRIMARY KEY (area_id, waiter_id)
    );

    CREATE TABLE tables (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        area_id TEXT REFERENCES areas(id),
        max_covers INTEGER
    );
    CREATE INDEX tables_by_area ON tables(area_id);

    CREATE TABLE table_waiters (
        table_id TEXT NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
        waiter_id TEXT NOT NULL,
        PRIMARY KEY (table_id, waiter_id)
    );
    CREATE INDEX table_waiters_by_waiter ON table_waiters(waiter_id);

    CREATE TABLE orders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dojo_order_id TEXT UNIQUE,
        reference TEXT,
        display_name TEXT,
        status TEXT NOT NULL DEFAULT 'New' CHECK (status IN ('New', 'Submitted', 'Confirmed',
            'Accepted', 'Preparing', 'Prepared', 'Ready', 'Finalized', 'Canceled', 'Failed')),
        order_type TEXT NOT NULL DEFAULT 'DineIn' CHECK (order_type IN ('DineIn', 'Collection')),
        table_id TEXT,
        waiter_id TEXT,
        party_id TEXT,
        reservation_id TEXT,
        ready_at TEXT,
        collection_asap INTEGER,
        collect_at TEXT,
        note TEXT,
        customer_id TEXT,
        customer_name TEXT,
        customer_email TEXT,
        customer_phone TEXT,
        currency_code TEXT NOT NULL DEFAULT 'GBP',
        total_amount INTEGER NOT NULL DEFAULT 0,
        service_charge_amount INTEGER,
        open_at_till TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX orders_by_table ON orders(table_id, id);
    CREATE INDEX orders_by_waiter ON orders(waiter_id, id);
    CREATE INDEX orders_by_party ON orders(party_id, id);
    CREATE INDEX orders_by_reservation ON orders(reservation_id, id);
    CREATE INDEX orders_by_status ON orders(status, id);

    CREATE TABLE order_items (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        position INTEGER NOT NULL DEFAULT 0,
        name TEXT NOT NULL,
        plu TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount_per_item INTEGER NOT NULL,
        note TEXT
    );
    CREATE INDEX order_items_by_order ON order_items(order_id, position);

    CREATE TABLE order_sub_items (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES order_items(id) ON DELETE CASCADE,
        position INTEGER NOT NULL DEFAULT 0,
        name TEXT NOT NULL,
        plu TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount_per_item INTEGER NOT NULL,
        note TEXT
    );
    CREATE INDEX order_sub_items_by_item ON order_sub_items(item_id, position);

    CREATE TABLE order_modifiers (
        id INTEGER PRIMARY KEY,
        item_id INTEGER REFERENCES order_items(id) ON DELETE CASCADE,
        sub_item_id INTEGER REFERENCES order_sub_items(id) ON DELETE CASCADE,
        position INTEGER NOT NULL DEFAULT 0,
        name TEXT NOT NULL,
        plu TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount_per_modifier INTEGER NOT NULL,
        CHECK ((item_id IS NULL) <> (sub_item_id IS NULL))
    );
    CREATE INDEX order_modifiers_by_item ON order_modifiers(item_id, position);
    CREATE INDEX order_modifiers_by_sub_item ON order_modifiers(sub_item_id, position);

    CREATE TABLE order_discounts (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        position INTEGER NOT NULL DEFAULT 0,
        name TEXT NOT NULL,
        amount_total INTEGER NOT NULL,
        affected_plu TEXT,
        discount_reference TEXT,
        code TEXT,
        amount_percentage INTEGER
    );
    CREATE INDEX order_discounts_by_order ON order_discounts(order_id, position);

    CREATE TABLE order_tax_lines (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        position INTEGER NOT NULL DEFAULT 0,
        tax_id TEXT,
        name TEXT,
        affected_plu TEXT,
        amount_percentage INTEGER,
        amount_total INTEGER NOT NULL
    );
    CREATE INDEX order_tax_lines_by_order ON order_tax_lines(order_id, position);

    CREATE TABLE payments (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        payment_intent_id TEXT UNIQUE,
        tender TEXT NOT NULL DEFAULT 'card',
        paid_amount INTEGER NOT NULL,
        tips_amount INTEGER,
        status TEXT NOT NULL DEFAULT 'Recorded',
        recorded_at TEXT NOT NULL,
        dojo_requesting_product TEXT,
        device_id TEXT,
        waiter_id TEXT
    );
    CREATE INDEX payments_by_order ON payments(order_id);

    CREATE TABLE order_locks (
        order_id INTEGER PRIMARY KEY REFERENCES orders(id) ON DELETE CASCADE,
        lock_id TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        locked_at TEXT NOT NULL,
        dojo_requesting_product TEXT,
        device_id TEXT,
        device_type TEXT,
        waiter_id TEXT
    );

    CREATE TABLE payment_intent_events (
        event_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        event TEXT NOT NULL,
        payment_intent_id TEXT NOT NULL,
        payment_status TEXT NOT NULL,
        capture_mode TEXT NOT NULL,
        created_at TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX payment_intent_events_by_intent ON payment_intent_events(payment_intent_id, created_at);

    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dojo_reservation_id TEXT UNIQUE,
        name TEXT NOT NULL,
        covers INTEGER NOT NULL,
        start_time TEXT NOT NULL,
        end_time TEXT NOT NULL,
        host_notes TEXT,
        guest_requests TEXT,
        deleted_at TEXT
    );
    CREATE INDEX reservations_by_time ON reservations(start_time, end_time);

    CREATE TABLE reservation_tables (
        reservation_id INTEGER NOT NULL REFERENCES reservations(id) ON DELETE CASCADE,
        table_id TEXT NOT NULL,
        position INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (reservation_id, table_id)
    );
    CREATE INDEX reservation_tables_by_table ON reservation_tables(table_id, reservation_id);

    CREATE TABLE parties (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dojo_party_id TEXT UNIQUE,
        name TEXT,
        covers INTEGER,
        status TEXT NOT NULL DEFAULT 'Seated' CHECK (length(status) > 0),
        start_time TEXT NOT NULL,
        expected_end_time TEXT,
        end_time TEXT,
        host_notes TEXT,
        guest_requests TEXT,
        reservation_id TEXT,
        dojo_reservation_id TEXT,
        deposit_amount INTEGER,
        deposit_currency TEXT,
        deposit_description TEXT,
        deposit_payment_intent_ids TEXT,              -- JSON array of strings
        deleted_at TEXT
    );
    CREATE INDEX parties_by_end ON parties(end_time, id);

    CREATE TABLE party_tables (
        party_id INTEGER NOT NULL REFERENCES parties(id) ON DELETE CASCADE,
        table_id TEXT NOT NULL,
        position INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (party_id, table_id)
    );
    CREATE INDEX party_tables_by_table ON party_tables(table_id, party_id);
    """,
    # 1 -> 2: change capture for POS events (docs/reference-schema.md, "Change log").
    _change_capture_migration(),
    # 2 -> 3: searches read only open orders; on a venue with years of history the plain
    # indexes walked every closed order too (docs/performance.md, 100,000 orders).
    """
    CREATE INDEX orders_open_by_table ON orders(table_id, id) WHERE status NOT IN ('Finalized', 'Canceled');
    CREATE INDEX orders_open ON orders(id) WHERE status NOT IN ('Finalized', 'Canceled');
    """,
    # 3 -> 4: SQLite uses a partial index only when the query's term is the index's WHERE
    # *word for word*; the searches came to list the statuses sorted ('Canceled', 'Finalized')
    # and on 1,000,000 orders fell back to walking every order a table ever had (or the whole
    # table). The open-order indexes now carry the searches' own text (OPEN_ORDERS_SQL, checked
    # against rows.order_conditions by tests), and a waiter's open orders get one too.
    # IF [NOT] EXISTS: safe on a POS file whose owner added or dropped indexes of their own.
    f"""
    DROP INDEX IF EXISTS orders_open_by_table;
    DROP INDEX IF EXISTS orders_open;
    CREATE INDEX IF NOT EXISTS orders_open_by_table_v4 ON orders(table_id, id) WHERE {OPEN_ORDERS_SQL};
    CREATE INDEX IF NOT EXISTS orders_open_by_waiter_v4 ON orders(waiter_id, id) WHERE {OPEN_ORDERS_SQL};
    CREATE INDEX IF NOT EXISTS orders_open_v4 ON orders(id) WHERE {OPEN_ORDERS_SQL};
    """,
    # 4 -> 5: the bridge's own record, never deleted with a POS order (docs/reference-schema.md,
    # "The bridge's record"). A payment row cascades away with its order and a POS may delete an
    # order Dojo paid; a retried paymentIntentId must still be a replay. The ledger is filled by a
    # trigger, so every Dojo payment row (a payment call's or a new order's) lands there in the
    # same transaction (and follows it when the POS moves the row to another order); the registry
    # keeps what Dojo was last told of each order it wrote to. (No values: _LEDGER_ROW is code.)
    f"""
    CREATE TABLE dojo_payments (
        payment_intent_id TEXT PRIMARY KEY,
        order_key INTEGER NOT NULL,
        pos_payment_id INTEGER,
        paid_amount INTEGER NOT NULL,
        tips_amount INTEGER,
        status TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX dojo_payments_by_order ON dojo_payments(order_key);
    INSERT INTO dojo_payments
        (payment_intent_id, order_key, pos_payment_id, paid_amount, tips_amount, status, recorded_at)
        SELECT payment_intent_id, order_id, id, paid_amount, tips_amount, status, recorded_at
        FROM payments WHERE payment_intent_id IS NOT NULL;
    CREATE TRIGGER dojo_payments_ledger AFTER INSERT ON payments WHEN NEW.payment_intent_id IS NOT NULL BEGIN
        {_LEDGER_ROW};
    END;
    CREATE TRIGGER dojo_payments_ledger_moved AFTER UPDATE OF order_id, payment_intent_id ON payments
    WHEN NEW.payment_intent_id IS NOT NULL BEGIN
        {_LEDGER_ROW};
    END;
    CREATE TABLE dojo_orders (
        order_id TEXT PRIMARY KEY,
        order_key INTEGER NOT NULL,
        answer TEXT,
        answered_at TEXT NOT NULL
    );
    INSERT INTO dojo_orders (order_id, order_key, answer, answered_at)
        SELECT CAST(order_key AS TEXT), order_key, NULL, MAX(recorded_at) FROM dojo_payments GROUP BY order_key;
    """,  # noqa: S608
)

SCHEMA_VERSION = len(MIGRATIONS)

KEPT = KeptTables(
    locks="order_locks",
    lock_order="order_id",
    events="payment_intent_events",
    payments="dojo_payments",
    payment_order="order_key",
    changes="pos_changes",
    registry="dojo_orders",
)
"""The tables above that every SQLite adapter reads and writes the same way (``adapters/kept_rows.py``)."""


class SchemaTooNew(Exception):
    """The database was written by a newer epos-bridge."""


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every pending migration, each in its own transaction; returns the new version."""
    current = schema_version(db)
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the POS database is at schema version {current}, newer than this bridge understands "
            f"({SCHEMA_VERSION}); update epos-bridge"
        )
    conn: sqlite3.Connection = db.conn
    for version in range(current, SCHEMA_VERSION):
        # executescript commits first; the migration runs in its own explicit transaction.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION
