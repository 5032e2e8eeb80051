"""What the bridge keeps inside the POS's own database, next to the POS's tables.

A POS schema knows nothing of Dojo: no order locks, no paymentIntentId to de-duplicate on, no
change log for POS events. ``epos-bridge db attach PATH --mapping M`` creates these tables (and
the triggers on the POS tables the mapping names), explicitly; ``db detach`` removes them again.
They live in the same file so that the POS's payment row and the bridge's de-duplication row are
written in ONE transaction: a paymentIntentId is recorded exactly once, or not at all.

* ``EPOS_BRIDGE_PAYMENTS``: one row per paymentIntentId (the primary key), with the POS payment
  row it wrote and its status as Dojo's events move it.
* ``EPOS_BRIDGE_ORDERS``: the orders Dojo wrote to: the POS key each was last found under and
  the last answer Dojo was given, so a POS that re-keys or deletes an order Dojo paid never makes
  the bridge forget the payment.
* ``EPOS_BRIDGE_ORDER_LOCKS``: who holds which order, until when (and the mapping's ``lock_view``
  over it, for the POS to read).
* ``EPOS_BRIDGE_INTENT_EVENTS``: payment-intent events received, for de-duplication and ordering.
* ``EPOS_BRIDGE_CHANGES``: the change log behind POS events, filled by triggers.
* ``EPOS_BRIDGE_FACTS``: facts Dojo needs that the POS has no column for (an order's Dojo id, a
  table's covers and waiters, the venue's VAT number), read by the mapping's own SQL.
* ``EPOS_BRIDGE_META``: the version and mapping, ``attached`` or ``detached``, the record of
  exactly what attach created (``created <type> <name>``) and the journal mode it found.

What attach and detach promise (``setup.py`` runs them):

* **Exactly what was created is removed.** Attach records each object it creates in META;
  detach drops exactly those (by exact name, never a pattern such as ``LIKE 'EPOS_BRIDGE_%'``,
  which is case-insensitive with ``_`` a wildcard and would take POS tables with it; a file
  attached before the record existed is read by the bridge's exact names and shapes), puts back
  the journal mode attach found (attach switches the file to WAL), and refuses, naming them,
  when the POS's own triggers, views or indexes are on or use what would go (:func:`dependents`).
* **A payment is never counted twice.** A plain detach keeps the payment record
  (:data:`KEPT_ON_DETACH`, which says why the record rather than a POS column); attach, again
  or after a detach, never drops a table of the bridge's (:func:`attach_plan`); detach refuses
  while a bridge serves the file (the venue lock, ``epos_bridge.host.instance``); forgetting the
  record is explicit and refused while Dojo may still retry any of it.
* **A trigger cannot break the POS's writes.** The mapping's key SQL is used as written, as a
  subquery over the changed row's table keyed on its rowid (:func:`_triggers`), never rewritten
  as text; attach prepares the POS's own INSERT, UPDATE and DELETE with every trigger in place
  and refuses the whole attach, naming the entry and SQLite's error, when one fails
  (:func:`trigger_problems`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from epos_bridge.adapters.kept_rows import KeptTables
from epos_bridge.adapters.sql_dialects import DIALECTS
from epos_bridge.adapters.sqlmap.mapping import ChangeTrigger, Mapping

VERSION = 2
"""2: ``EPOS_BRIDGE_ORDERS``, the registry of the orders Dojo wrote to (attach again to add it)."""

KEPT = KeptTables(
    locks="EPOS_BRIDGE_ORDER_LOCKS",
    lock_order="ORDER_KEY",
    events="EPOS_BRIDGE_INTENT_EVENTS",
    payments="EPOS_BRIDGE_PAYMENTS",
    payment_order="ORDER_KEY",
    changes="EPOS_BRIDGE_CHANGES",
    registry="EPOS_BRIDGE_ORDERS",
)
"""The tables below that every SQLite adapter reads and writes the same way (``adapters/kept_rows.py``)."""


def kept_in(mapping: Mapping) -> KeptTables:
    """The bridge's tables as the mapping's engine spells them."""
    return KEPT if mapping.engine == "sqlite" else replace(KEPT, dialect=DIALECTS[mapping.engine])


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
        "EPOS_BRIDGE_ORDERS",
        "CREATE TABLE EPOS_BRIDGE_ORDERS (ORDER_ID TEXT PRIMARY KEY, ORDER_KEY INTEGER NOT NULL, ANSWER TEXT,"
        " ANSWERED_AT TEXT NOT NULL)",
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
REGISTRY_FROM_RECORD = (
    "INSERT OR IGNORE INTO EPOS_BRIDGE_ORDERS (ORDER_ID, ORDER_KEY, ANSWER, ANSWERED_AT)"
    " SELECT CAST(ORDER_KEY AS TEXT), ORDER_KEY, NULL, MAX(RECORDED_AT) FROM EPOS_BRIDGE_PAYMENTS GROUP BY ORDER_KEY"
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
RECORD_TABLES = ("EPOS_BRIDGE_PAYMENTS", "EPOS_BRIDGE_ORDERS", "EPOS_BRIDGE_INTENT_EVENTS", "EPOS_BRIDGE_FACTS")
"""The payment record: every money fact the bridge wrote (which paymentIntentId is on which POS
payment row, and at what status), and the facts the POS has no column for (Dojo's order ids, the
floor's ids). ``db detach`` keeps them unless told to forget (:data:`KEPT_ON_DETACH`)."""
KEPT_ON_DETACH = frozenset(
    {("table", META), *(("table", name) for name in RECORD_TABLES), *(("index", name) for name in INDEX_NAMES)}
)
"""What a plain ``db detach`` leaves in the POS's file: the payment record, its indexes (all three
are on its tables) and META, which says it is detached and what it kept. Why keep rather than
drop: the paymentIntentId rows are the only thing that makes a payment Dojo sends again (a retry
after a lost answer, a replayed event) a replay instead of a second POS payment row. Dropped, a
later ``db attach`` would start from nothing and count that payment twice; kept, attach picks
them up again and a retried intent still answers from the first recording. De-duplicating on a
POS column instead (Floreant's CARD_TRANSACTION_ID) would need every mapping to name one and
every POS to keep it intact, and would still lose the intent's status; the record needs neither.
Forgetting is ``db detach --forget-payments``, refused while any of it is recent enough for Dojo
to retry (:data:`FORGET_AFTER_DAYS`)."""
FORGET_AFTER_DAYS = 30
"""``--forget-payments`` is refused while the record holds a payment or event newer than this."""
STATE = "state"
"""The META key saying ``attached`` or ``detached`` (only the payment record left)."""
DETACHED = "detached"
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


ROW_OF = {"INSERT": ("AFTER", "NEW"), "UPDATE": ("AFTER", "NEW"), "DELETE": ("BEFORE", "OLD")}
"""When each trigger fires and which row it keys on. A delete is logged just BEFORE it happens,
while the row can still be read (a failing delete rolls the log row back with it)."""


def _key_select(change: ChangeTrigger, rowid: str) -> str:
    """The mapping's ``order_key`` evaluated over one row of its table, named ``R``, exactly as
    the mapping wrote it: no text of it is rewritten. ``rowid`` is ``NEW.rowid`` / ``OLD.rowid``
    inside the trigger, a parameter when attach prepares it."""
    return f"SELECT ({change.order_key}) AS K FROM {change.table} AS R WHERE R.rowid = {rowid}"  # noqa: S608 - installer SQL


def _entry(number: int, change: ChangeTrigger) -> str:
    return f"[[changes]] entry {number + 1} (table {change.table}, order_key {change.order_key!r})"


def _triggers(mapping: Mapping) -> list[Created]:
    """One trigger per table and operation; each only INSERTs into the change log (so it cannot
    fail the POS's own write once attach has prepared it), and a row naming no order records
    nothing. The only thing a trigger reads of the row is its rowid: the mapping's key SQL is a
    subquery over the table (:func:`_key_select`), never spliced onto ``NEW.`` or ``OLD.``."""
    statements = []
    for number, change in enumerate(mapping.changes):
        for operation in OPERATIONS:
            when, row = ROW_OF[operation]
            kind = operation.lower() if change.own else "update"
            name = _trigger_name(change, operation)
            sql = (  # the mapping's own SQL (trusted installer configuration), no values
                f"CREATE TRIGGER {name} {when} {operation} ON {change.table} BEGIN "  # noqa: S608
                f"INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, CHANGE) "
                f"SELECT '{change.entity}', CAST(K AS TEXT), '{kind}' "
                f"FROM ({_key_select(change, f'{row}.rowid')}) WHERE K IS NOT NULL; END"
            )
            statements.append(Created("trigger", name, sql, f"{_entry(number, change)}, on {operation}"))
    return statements


def _pos_writes(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """The POS's own INSERT, UPDATE and DELETE on ``table``, to prepare (never run): SQLite
    compiles a table's triggers into each statement that fires them, so a trigger that does not
    fit fails exactly here, as it would fail every one of the POS's writes."""
    columns = [str(r[1]) for r in conn.execute("SELECT * FROM pragma_table_info(?)", [table])]
    column = _identifier(columns[0]) if columns else "rowid"
    return [
        ("INSERT", f"INSERT INTO {table} DEFAULT VALUES"),
        ("UPDATE", f"UPDATE {table} SET {column} = {column}"),  # noqa: S608 - a validated identifier
        ("DELETE", f"DELETE FROM {table}"),  # noqa: S608 - a validated identifier
    ]


def trigger_problems(conn: sqlite3.Connection, mapping: Mapping) -> list[str]:
    """Every ``[[changes]]`` entry whose triggers do not fit the database, with SQLite's error;
    run inside attach's transaction, after the triggers were created.

    The entry's key is prepared on its own over the table, then the POS's own writes to the
    table are prepared with every trigger in place. A write that fails only because of the
    bridge's triggers (it prepares with them dropped, inside a savepoint rolled back) is the
    entry's fault; one that fails anyway is the POS's own and is left to the POS.
    """
    problems = []
    for number, change in enumerate(mapping.changes):
        entry = _entry(number, change)
        try:
            conn.execute(f"EXPLAIN {_key_select(change, ':rowid')}", {"rowid": 0}).fetchall()
        except sqlite3.Error as exc:
            problems.append(f"{entry}: {exc}")
            continue
        for operation, sql in _pos_writes(conn, change.table):
            try:
                conn.execute(f"EXPLAIN {sql}").fetchall()
            except sqlite3.Error as exc:
                if _fails_without_ours(conn, change, sql):
                    continue
                problems.append(f"{entry}: the POS's {operation} on {change.table} would fail: {exc}")
    return problems


def _fails_without_ours(conn: sqlite3.Connection, change: ChangeTrigger, sql: str) -> bool:
    conn.execute("SAVEPOINT epos_bridge_without_ours")
    try:
        for operation in OPERATIONS:
            conn.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(change, operation)}")
        conn.execute(f"EXPLAIN {sql}").fetchall()
    except sqlite3.Error:
        return True
    finally:
        conn.execute("ROLLBACK TO epos_bridge_without_ours")
        conn.execute("RELEASE epos_bridge_without_ours")
    return False


LOCK_VIEW_SELECT = "SELECT ORDER_KEY, LOCK_ID, EXPIRES_AT, DEVICE_ID, WAITER_ID FROM EPOS_BRIDGE_ORDER_LOCKS"
"""What a mapping's ``lock_view`` shows the POS, in a file and on a server alike."""


def _lock_view_sql(name: str) -> str:
    return f"CREATE VIEW {name} AS {LOCK_VIEW_SELECT}"


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


def _created_key(kind: str, name: str) -> str:
    return f"{CREATED}{kind} {name}"


def record_sql(
    mapping: Mapping,
    created: Sequence[tuple[str, str]],
    journal_mode: str | None,
    forgotten: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The rows of META saying what attach created (so that detach removes exactly that), the
    journal mode it found, and the version and mapping of the tables."""
    statements = [
        f"DELETE FROM {META} WHERE KEY = {_text(_created_key(kind, name))}"  # noqa: S608 - quoted literals
        for kind, name in forgotten
    ]
    rows = [("version", str(VERSION)), ("mapping", mapping.name), (STATE, "attached")]
    rows += [(_created_key(kind, name), kind) for kind, name in created]
    if journal_mode is not None:
        rows.append((JOURNAL_MODE, journal_mode))
    values = ", ".join(f"({_text(key)}, {_text(value)})" for key, value in rows)
    statements.append(f"INSERT OR REPLACE INTO {META} (KEY, VALUE) VALUES {values}")  # noqa: S608 - quoted literals
    return statements


def attach_sql(mapping: Mapping, journal_mode: str | None = None) -> list[str]:
    """Every statement ``db attach`` runs on a database never attached, in order."""
    objects = planned(mapping)
    return [o.sql for o in objects] + record_sql(mapping, [(o.kind, o.name) for o in objects], journal_mode)


@dataclass(frozen=True)
class AttachPlan:
    """What ``db attach`` does to one database, given what is there already."""

    state: str
    """``new`` (never attached), ``detached`` (only the payment record left) or ``attached``."""
    dropping: tuple[tuple[str, str], ...]
    """Triggers and views of an earlier attach the mapping now wants otherwise (or not at all)."""
    creating: tuple[Created, ...]
    steps: tuple[tuple[str, str | None], ...]
    """Every statement, in order, with the mapping entry it comes from (``None``: the bridge's own)."""

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(sql for sql, _ in self.steps)


def attach_plan(conn: sqlite3.Connection, mapping: Mapping, journal_mode: str) -> AttachPlan:
    """Attach once, again after a detach, or again over an attached file (a changed mapping):
    whatever the bridge's record holds is kept as it is, only triggers and views the mapping now
    wants otherwise are replaced, and what is missing is created. So following "run db attach
    again" never goes through a detach and never loses a recorded payment."""
    present = recorded(conn)
    state = "new" if not _has_meta(conn) else DETACHED if is_detached(conn) else "attached"
    current = {(kind, name): sql for kind, name, _, sql in _schema(conn)}
    wanted = planned(mapping)
    wanted_sql = {(o.kind, o.name): o.sql for o in wanted}
    dropping = tuple(
        (kind, name)
        for kind, name in present
        if kind in ("trigger", "view") and wanted_sql.get((kind, name)) != current.get((kind, name))
    )
    creating = tuple(o for o in wanted if (o.kind, o.name) not in present or (o.kind, o.name) in dropping)
    forgotten = [found for found in dropping if found not in wanted_sql]
    after = [found for found in present if found not in forgotten]
    after += [(o.kind, o.name) for o in creating if (o.kind, o.name) not in after]
    # The journal mode found is recorded by the first attach (or the first after a detach, which
    # put it back); a file attached before the record existed is already in WAL, so never then.
    journal = journal_mode if state != "attached" else None
    # v1 -> v2: the registry starts with every order the payment record holds (Dojo's id is the
    # key's text, as :func:`epos_bridge.adapters.sqlmap.rows.order_key` reads it back); their
    # answers were never kept, so the rules answer a replay on them without one.
    registry = [(REGISTRY_FROM_RECORD, None)] if any(o.name == KEPT.registry for o in creating) else []
    steps = (
        *((sql, None) for sql in detach_sql(dropping)),
        *((o.sql, o.entry) for o in creating),
        *registry,
        *((sql, None) for sql in record_sql(mapping, after, journal, forgotten)),
    )
    return AttachPlan(state, dropping, creating, steps)


def is_detached(conn: sqlite3.Connection) -> bool:
    """Detached, with the payment record kept: only :data:`KEPT_ON_DETACH` is left."""
    if not _has_meta(conn):
        return False
    row = conn.execute(f"SELECT VALUE FROM {META} WHERE KEY = ?", [STATE]).fetchone()  # noqa: S608
    return row is not None and row[0] == DETACHED


def detached_record_sql(dropped: Sequence[tuple[str, str]]) -> list[str]:
    """META after a plain detach: what went is no longer recorded, and the file says detached."""
    statements = [
        f"DELETE FROM {META} WHERE KEY = {_text(_created_key(kind, name))}"  # noqa: S608 - quoted literals
        for kind, name in dropped
    ]
    statements.append(f"INSERT OR REPLACE INTO {META} (KEY, VALUE) VALUES ({_text(STATE)}, {_text(DETACHED)})")  # noqa: S608
    return statements


def forget_journal_mode_sql() -> str:
    return f"DELETE FROM {META} WHERE KEY = {_text(JOURNAL_MODE)}"  # noqa: S608 - quoted literals


def payments_kept(conn: sqlite3.Connection) -> int:
    """How many paymentIntentIds the record holds (0 without the table)."""
    if not _has_table(conn, "EPOS_BRIDGE_PAYMENTS"):
        return 0
    return int(conn.execute("SELECT COUNT(*) FROM EPOS_BRIDGE_PAYMENTS").fetchone()[0])


def latest_recent_money_fact(conn: sqlite3.Connection) -> str | None:
    """The newest payment or payment-intent event of the record younger than
    :data:`FORGET_AFTER_DAYS` (ISO 8601 UTC), or ``None`` when there is none that recent."""
    cutoff = f"strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{FORGET_AFTER_DAYS} days')"
    found = []
    for table, column in (
        ("EPOS_BRIDGE_PAYMENTS", "RECORDED_AT"),
        ("EPOS_BRIDGE_ORDERS", "ANSWERED_AT"),
        ("EPOS_BRIDGE_INTENT_EVENTS", "RECEIVED_AT"),
    ):
        if _has_table(conn, table):
            row = conn.execute(f"SELECT MAX({column}) FROM {table} WHERE {column} > {cutoff}").fetchone()  # noqa: S608
            if row and row[0]:
                found.append(str(row[0]))
    return max(found) if found else None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return [
        (str(kind), str(name), str(table), sql)
        for kind, name, table, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'index', 'trigger', 'view')"
        )
    ]


def _has_meta(conn: sqlite3.Connection) -> bool:
    # Exact name: a POS table "epos_bridge_meta" would have made attach fail, so it is never the POS's.
    return _has_table(conn, META)


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
    """A change trigger as this bridge or an older one wrote it (``AFTER`` ... ``WHEN`` ... ``VALUES``)."""
    return any(
        name == f"EPOS_BRIDGE_{table.upper()}_{operation}"
        and any(sql.startswith(f"CREATE TRIGGER {name} {when} {operation} ON {table} ") for when in ("AFTER", "BEFORE"))
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


def dependents(
    conn: sqlite3.Connection, dropping: Sequence[tuple[str, str]], recreating: Sequence[Created] = ()
) -> list[str]:
    """The POS's own objects that would be lost or left dangling if ``dropping`` went: triggers
    and indexes on them (SQLite drops those silently, even when the same name is created again),
    and triggers and views whose SQL names them (which would fail on the POS's next write or
    read; not when the name is created again). Each named, with what it uses."""
    ours = set(dropping) | {(o.kind, o.name) for o in recreating}
    names = {name.upper(): name for _, name in dropping}
    again = {o.name.upper() for o in recreating}
    found = []
    for kind, name, table, sql in _schema(conn):
        if (kind, name) in ours or name.startswith("sqlite_"):
            continue
        if kind != "table" and table.upper() in names and table.upper() != name.upper():
            found.append(f"{kind} {name} (on {names[table.upper()]})")
        elif kind in ("trigger", "view"):
            used = sorted(names[n] for n in (_names_in(sql or "") & names.keys()) - again)
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
    """The version of the bridge's tables in this database, or ``None`` when not attached
    (never, or detached with the payment record kept)."""
    if not _has_meta(conn) or is_detached(conn):
        return None
    row = conn.execute(f"SELECT VALUE FROM {META} WHERE KEY = 'version'").fetchone()  # noqa: S608
    return int(row[0]) if row else None


def missing_triggers(mapping: Mapping, conn: sqlite3.Connection) -> list[str]:
    """The change triggers the mapping names that the database lacks (the mapping changed since attach)."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [_trigger_name(c, op) for c in mapping.changes for op in OPERATIONS if _trigger_name(c, op) not in present]
