"""The bridge's tables and triggers in a POS database on a MariaDB/MySQL or PostgreSQL server,
and the check that the database fits a mapping before the first call is served.

The same tables as in a SQLite file (:mod:`.bridge`), in the server's types:

* every text the bridge matches on (paymentIntentId, Dojo's ids, lock ids) is compared byte for
  byte (``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL): the server's default
  collation would call ``pi_A`` and ``pi_a `` the same payment and answer one with the other's
  record. On PostgreSQL a ``TEXT`` column already is: every collation a database can default to
  is deterministic (equal only when the bytes are), and ``TEXT`` keeps trailing spaces;
* the change log and the payment-intent events carry an ``AUTO_INCREMENT`` (``SEQ``, ``ARRIVAL``)
  for the order they arrived in, which SQLite's rowid gives; on PostgreSQL an identity column
  (``ARRIVAL``) and, for ``SEQ``, the sequence ``EPOS_BRIDGE_CHANGES_SEQ``, whose last value is
  the change mark (:data:`~epos_bridge.adapters.sql_dialects.POSTGRESQL`): it never goes back
  when the log's rows are deleted.

Server DDL is not transactional (PostgreSQL's is, but attach runs each statement on its own
there too): attach creates what is missing (``IF NOT EXISTS``: never a
table of the bridge's dropped, so the payment record survives attaching again), replaces only
the bridge's own triggers, by exact name, and when one cannot be created drops the ones this
attach created before saying which entry failed. A trigger only inserts into the change log;
the mapping's ``order_key`` is evaluated over the changed row named ``R`` (every column of it),
exactly as written, and is tried at attach over a row of NULLs so a typo fails the attach, not
the POS's own writes. On PostgreSQL each trigger runs a PL/pgSQL function of the same name (one
per table and operation), as the bridge's user (``SECURITY DEFINER``, like a MariaDB trigger's
definer), so a POS logging in as another user needs no rights on the bridge's tables.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from epos_bridge.adapters.sql_dialects import DIALECTS
from epos_bridge.adapters.sqlmap import bridge
from epos_bridge.adapters.sqlmap.mapping import REQUIRED_COLUMNS, ChangeTrigger, Mapping, StatementProblem
from epos_bridge.adapters.sqlmap.mapping import parameters_in as _parameters_in
from epos_bridge.adapters.sqlmap.server import ServerSession


class ServerAttachError(Exception):
    """Attach refused; the message names the entry and what the server said."""


def _tables(binary: str) -> tuple[tuple[str, str], ...]:
    tail = f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={binary}"
    return (
        (
            bridge.META,
            f"CREATE TABLE IF NOT EXISTS {bridge.META} (`KEY` VARCHAR(191) PRIMARY KEY, VALUE TEXT NOT NULL){tail}",
        ),
        (
            "EPOS_BRIDGE_PAYMENTS",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_PAYMENTS (PAYMENT_INTENT_ID VARCHAR(191) PRIMARY KEY,"
            " ARRIVAL BIGINT NOT NULL AUTO_INCREMENT UNIQUE, ORDER_KEY BIGINT NOT NULL, POS_PAYMENT_ID BIGINT,"
            " PAID_AMOUNT BIGINT NOT NULL, TIPS_AMOUNT BIGINT,"
            " STATUS VARCHAR(64) NOT NULL, RECORDED_AT VARCHAR(40) NOT NULL,"
            f" INDEX EPOS_BRIDGE_PAYMENTS_BY_ORDER (ORDER_KEY)){tail}",
        ),
        (
            "EPOS_BRIDGE_ORDERS",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_ORDERS (ORDER_ID VARCHAR(191) PRIMARY KEY,"
            f" ORDER_KEY BIGINT NOT NULL, ANSWER LONGTEXT, ANSWERED_AT VARCHAR(40) NOT NULL){tail}",
        ),
        (
            "EPOS_BRIDGE_ORDER_LOCKS",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_ORDER_LOCKS (ORDER_KEY BIGINT PRIMARY KEY,"
            " LOCK_ID VARCHAR(191) NOT NULL, EXPIRES_AT VARCHAR(40) NOT NULL, LOCKED_AT VARCHAR(40) NOT NULL,"
            " DOJO_REQUESTING_PRODUCT VARCHAR(191), DEVICE_ID VARCHAR(191), DEVICE_TYPE VARCHAR(191),"
            f" WAITER_ID VARCHAR(191)){tail}",
        ),
        (
            "EPOS_BRIDGE_INTENT_EVENTS",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_INTENT_EVENTS (EVENT_ID VARCHAR(191) PRIMARY KEY,"
            " ARRIVAL BIGINT NOT NULL AUTO_INCREMENT UNIQUE, ACCOUNT_ID VARCHAR(191), EVENT VARCHAR(191) NOT NULL,"
            " PAYMENT_INTENT_ID VARCHAR(191) NOT NULL, PAYMENT_STATUS VARCHAR(64) NOT NULL, CAPTURE_MODE VARCHAR(64),"
            " CREATED_AT VARCHAR(40) NOT NULL, RECEIVED_AT VARCHAR(40) NOT NULL,"
            f" INDEX EPOS_BRIDGE_INTENT_EVENTS_BY_INTENT (PAYMENT_INTENT_ID)){tail}",
        ),
        (
            "EPOS_BRIDGE_CHANGES",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_CHANGES (SEQ BIGINT AUTO_INCREMENT PRIMARY KEY,"
            " ENTITY VARCHAR(16) NOT NULL CHECK (ENTITY IN ('order', 'party', 'reservation')),"
            " ENTITY_ID VARCHAR(191) NOT NULL, `CHANGE` VARCHAR(8) NOT NULL CHECK (`CHANGE` IN ('insert', 'update',"
            f" 'delete')), CHANGED_AT TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)){tail}",
        ),
        (
            "EPOS_BRIDGE_FACTS",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_FACTS (KIND VARCHAR(32) NOT NULL, POS_KEY VARCHAR(191) NOT NULL,"
            " FIELD VARCHAR(64) NOT NULL, VALUE TEXT, PRIMARY KEY (KIND, POS_KEY, FIELD),"
            f" INDEX EPOS_BRIDGE_FACTS_BY_VALUE (KIND, FIELD, VALUE(191))){tail}",
        ),
    )


_PG_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (bridge.META, (f"CREATE TABLE IF NOT EXISTS {bridge.META} (KEY TEXT PRIMARY KEY, VALUE TEXT NOT NULL)",)),
    (
        "EPOS_BRIDGE_PAYMENTS",
        (
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_PAYMENTS (PAYMENT_INTENT_ID TEXT PRIMARY KEY,"
            " ARRIVAL BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, ORDER_KEY BIGINT NOT NULL, POS_PAYMENT_ID BIGINT,"
            " PAID_AMOUNT BIGINT NOT NULL, TIPS_AMOUNT BIGINT, STATUS TEXT NOT NULL, RECORDED_AT TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS EPOS_BRIDGE_PAYMENTS_BY_ORDER ON EPOS_BRIDGE_PAYMENTS (ORDER_KEY)",
        ),
    ),
    (
        "EPOS_BRIDGE_ORDERS",
        (
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_ORDERS (ORDER_ID TEXT PRIMARY KEY, ORDER_KEY BIGINT NOT NULL,"
            " ANSWER TEXT, ANSWERED_AT TEXT NOT NULL)",
        ),
    ),
    (
        "EPOS_BRIDGE_ORDER_LOCKS",
        (
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_ORDER_LOCKS (ORDER_KEY BIGINT PRIMARY KEY, LOCK_ID TEXT NOT NULL,"
            " EXPIRES_AT TEXT NOT NULL, LOCKED_AT TEXT NOT NULL, DOJO_REQUESTING_PRODUCT TEXT, DEVICE_ID TEXT,"
            " DEVICE_TYPE TEXT, WAITER_ID TEXT)",
        ),
    ),
    (
        "EPOS_BRIDGE_INTENT_EVENTS",
        (
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_INTENT_EVENTS (EVENT_ID TEXT PRIMARY KEY,"
            " ARRIVAL BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, ACCOUNT_ID TEXT, EVENT TEXT NOT NULL,"
            " PAYMENT_INTENT_ID TEXT NOT NULL, PAYMENT_STATUS TEXT NOT NULL, CAPTURE_MODE TEXT,"
            " CREATED_AT TEXT NOT NULL, RECEIVED_AT TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS EPOS_BRIDGE_INTENT_EVENTS_BY_INTENT ON EPOS_BRIDGE_INTENT_EVENTS"
            " (PAYMENT_INTENT_ID)",
        ),
    ),
    (
        "EPOS_BRIDGE_CHANGES",
        (
            # A sequence of its own, by a name the change mark reads (sql_dialects.POSTGRESQL),
            # owned by the column so it goes with the table.
            "CREATE SEQUENCE IF NOT EXISTS EPOS_BRIDGE_CHANGES_SEQ AS BIGINT",
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_CHANGES (SEQ BIGINT PRIMARY KEY"
            " DEFAULT nextval('EPOS_BRIDGE_CHANGES_SEQ'),"
            " ENTITY TEXT NOT NULL CHECK (ENTITY IN ('order', 'party', 'reservation')), ENTITY_ID TEXT NOT NULL,"
            " CHANGE TEXT NOT NULL CHECK (CHANGE IN ('insert', 'update', 'delete')),"
            " CHANGED_AT TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
            "ALTER SEQUENCE EPOS_BRIDGE_CHANGES_SEQ OWNED BY EPOS_BRIDGE_CHANGES.SEQ",
        ),
    ),
    (
        "EPOS_BRIDGE_FACTS",
        (
            "CREATE TABLE IF NOT EXISTS EPOS_BRIDGE_FACTS (KIND TEXT NOT NULL, POS_KEY TEXT NOT NULL,"
            " FIELD TEXT NOT NULL, VALUE TEXT, PRIMARY KEY (KIND, POS_KEY, FIELD))",
            # A hash index: a fact's text may be longer than a B-tree entry can hold (MariaDB
            # indexes its first 191 characters); the bridge only ever looks a value up by equality.
            "CREATE INDEX IF NOT EXISTS EPOS_BRIDGE_FACTS_BY_VALUE ON EPOS_BRIDGE_FACTS USING hash (VALUE)",
        ),
    ),
)


def trigger_name(change: ChangeTrigger, operation: str, limit: int = 64) -> str:
    """The trigger's name (MariaDB/MySQL allow 64 characters, PostgreSQL 63)."""
    return f"EPOS_BRIDGE_{change.table}_{operation}"[:limit]


@dataclass(frozen=True)
class Made:
    """A trigger this attach made, on its table."""

    name: str
    table: str


class _ServerSetup(ABC):
    """What attach and the fit check say differently on each server, and only that."""

    name_limit = 64

    @abstractmethod
    def tables(self, db: ServerSession) -> Iterator[tuple[str, Sequence[str]]]: ...

    @abstractmethod
    def existing_tables(self, db: ServerSession) -> set[str]: ...

    @abstractmethod
    def columns(self, db: ServerSession, table: str) -> list[str]: ...

    @abstractmethod
    def key_tried(self, change: ChangeTrigger, columns: Sequence[str]) -> str:
        """The mapping's ``order_key`` over a row of NULLs of the table."""

    @abstractmethod
    def trigger(
        self, db: ServerSession, change: ChangeTrigger, operation: str, columns: Sequence[str]
    ) -> Sequence[str]:
        """The statements creating one trigger (after its old one was dropped)."""

    @abstractmethod
    def drop(self, db: ServerSession, made: Made) -> None: ...

    def failed(self, db: ServerSession, trigger: Made) -> None:  # noqa: B027 - a hook, nothing by default
        """What a trigger that could not be created left behind goes (its old one went before)."""

    @abstractmethod
    def triggers_present(self, db: ServerSession) -> set[str]: ...

    @contextmanager
    def probe(self, db: ServerSession) -> Iterator[None]:
        """Around one statement of the check whose failure is a finding, not the end of it."""
        yield

    @abstractmethod
    def explained(self, db: ServerSession, sql: str) -> Any:
        """``EXPLAIN`` of ``sql`` with NULL for each parameter (nothing run); its rows."""

    @abstractmethod
    def returned(self, db: ServerSession, sql: str) -> set[str]:
        """The columns a read returns (run with NULLs for its parameters, no row fetched)."""

    def name(self, change: ChangeTrigger, operation: str) -> str:
        return trigger_name(change, operation, self.name_limit)


class _MySqlSetup(_ServerSetup):
    def tables(self, db: ServerSession) -> Iterator[tuple[str, Sequence[str]]]:
        for name, sql in _tables(_binary_collation(db)):
            yield name, (sql,)

    def existing_tables(self, db: ServerSession) -> set[str]:
        return {str(r[0]).upper() for r in db.execute("SHOW TABLES").fetchall()}

    def columns(self, db: ServerSession, table: str) -> list[str]:
        found = db.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
            " ORDER BY ORDINAL_POSITION",
            [table],
        ).fetchall()
        return [str(r[0]) for r in found]

    def key_tried(self, change: ChangeTrigger, columns: Sequence[str]) -> str:
        return f"SELECT ({change.order_key}) AS K FROM {_row_named_r(columns, None)}"  # noqa: S608

    def trigger(
        self, db: ServerSession, change: ChangeTrigger, operation: str, columns: Sequence[str]
    ) -> Sequence[str]:
        when, row = bridge.ROW_OF[operation]
        kind = operation.lower() if change.own else "update"
        return (  # the mapping's own SQL (trusted installer configuration), no values
            f"CREATE TRIGGER {self.name(change, operation)} {when} {operation} ON `{change.table}` FOR EACH ROW "  # noqa: S608
            "INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, `CHANGE`) "
            f"SELECT '{change.entity}', CAST(K AS CHAR), '{kind}' "
            f"FROM (SELECT ({change.order_key}) AS K FROM {_row_named_r(columns, row)}) AS X WHERE K IS NOT NULL",
        )

    def drop(self, db: ServerSession, made: Made) -> None:
        db.execute(f"DROP TRIGGER IF EXISTS {made.name}")

    def triggers_present(self, db: ServerSession) -> set[str]:
        return {
            str(r[0]).upper()
            for r in db.execute(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
            ).fetchall()
        }

    def explained(self, db: ServerSession, sql: str) -> Any:
        return db.execute(f"EXPLAIN {sql}", dict.fromkeys(_parameters_in(sql))).fetchall()

    def returned(self, db: ServerSession, sql: str) -> set[str]:
        blanks = dict.fromkeys(_parameters_in(sql))
        cursor = db.execute(f"SELECT * FROM ({sql}) AS found LIMIT 0", blanks)  # noqa: S608 - installer SQL
        return {d[0] for d in cursor.description or ()}


class _PostgreSqlSetup(_ServerSetup):
    name_limit = 63

    def tables(self, db: ServerSession) -> Iterator[tuple[str, Sequence[str]]]:
        yield from _PG_TABLES

    def existing_tables(self, db: ServerSession) -> set[str]:
        found = db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        return {str(r[0]).upper() for r in found.fetchall()}

    def columns(self, db: ServerSession, table: str) -> list[str]:
        # The trigger names the table unquoted, as the mapping writes it: PostgreSQL folds it.
        found = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? ORDER BY ordinal_position",
            [table.lower()],
        ).fetchall()
        return [str(r[0]) for r in found]

    @staticmethod
    def _key(change: ChangeTrigger, row: str) -> str:
        """The mapping's key over ``row`` (``NEW``, ``OLD``, or a NULL of the table's row type) as ``R``."""
        return f"SELECT ({change.order_key}) AS K FROM (SELECT {row}.*) AS R"  # noqa: S608

    def key_tried(self, change: ChangeTrigger, columns: Sequence[str]) -> str:
        return self._key(change, f"(NULL::{change.table})")

    def trigger(
        self, db: ServerSession, change: ChangeTrigger, operation: str, columns: Sequence[str]
    ) -> Sequence[str]:
        when, row = bridge.ROW_OF[operation]
        kind = operation.lower() if change.own else "update"
        name = self.name(change, operation)
        schema = str(db.execute("SELECT current_schema()").fetchone()[0]).replace('"', '""')
        # Run as the bridge's user, in the schema the bridge's tables are in (a SECURITY DEFINER
        # function must not take its search_path from whoever writes to the POS's table).
        function = (  # the mapping's own SQL (trusted installer configuration), no values
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"  # noqa: S608
            f' SET search_path = "{schema}", pg_temp AS $EPOS_BRIDGE$ BEGIN '
            "INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, CHANGE) "
            f"SELECT '{change.entity}', CAST(K AS TEXT), '{kind}' "
            f"FROM ({self._key(change, row)}) AS X WHERE K IS NOT NULL; "
            f"RETURN {row}; END $EPOS_BRIDGE$"
        )
        trigger = f"CREATE TRIGGER {name} {when} {operation} ON {change.table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        return function, trigger

    def drop(self, db: ServerSession, made: Made) -> None:
        db.execute(f"DROP TRIGGER IF EXISTS {made.name} ON {made.table}")
        db.execute(f"DROP FUNCTION IF EXISTS {made.name}()")

    def failed(self, db: ServerSession, trigger: Made) -> None:
        self.drop(db, trigger)  # its function may have been made before the trigger failed

    def triggers_present(self, db: ServerSession) -> set[str]:
        found = db.execute(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal AND t.tgenabled <> 'D'"
        )
        return {str(r[0]).upper() for r in found.fetchall()}

    @contextmanager
    def probe(self, db: ServerSession) -> Iterator[None]:
        # A failed statement ends a PostgreSQL transaction: each probe is a savepoint, so the
        # check goes on to the next statement. On an autocommit connection (``db attach``) each
        # statement is its own transaction already, and a savepoint is refused.
        if db.conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            yield
            return
        db.execute("SAVEPOINT EPOS_BRIDGE_PROBE")
        try:
            yield
        except Exception:
            db.execute("ROLLBACK TO SAVEPOINT EPOS_BRIDGE_PROBE")
            raise
        db.execute("RELEASE SAVEPOINT EPOS_BRIDGE_PROBE")

    @staticmethod
    def _with_nulls(sql: str) -> sa.TextClause:
        """``sql`` with each parameter written in as a literal ``NULL`` (SQLAlchemy renders it:
        ``literal_execute``), not bound. psycopg sends a bound ``None`` as a parameter of no
        type, and PostgreSQL refuses to prepare a statement where it cannot infer one
        (``:x IS NULL``: "could not determine data type of parameter"), although values of a
        type run it; a literal ``NULL`` is typed as the context wants, as on MariaDB. The
        parameters are SQLAlchemy's own reading of the text, as when the statement runs."""
        clause = sa.text(sql)
        names = clause.compile().params
        return clause.bindparams(*(sa.bindparam(n, None, literal_execute=True) for n in names))

    def explained(self, db: ServerSession, sql: str) -> Any:
        return db.conn.execute(self._with_nulls(f"EXPLAIN {sql}")).fetchall()

    def returned(self, db: ServerSession, sql: str) -> set[str]:
        found = db.conn.execute(self._with_nulls(f"SELECT * FROM ({sql}) AS found LIMIT 0"))  # noqa: S608
        return set(found.keys())


_SETUPS: dict[str, _ServerSetup] = {"mysql": _MySqlSetup(), "postgresql": _PostgreSqlSetup()}


def _setup_for(mapping: Mapping) -> _ServerSetup:
    found = _SETUPS.get(mapping.engine)
    if found is None:
        raise ServerAttachError(f"the mapping {mapping.name} is for {mapping.engine}, not a database server")
    return found


def _binary_collation(db: ServerSession) -> str:
    version = str(db.execute("SELECT VERSION()").fetchone()[0]).lower()
    return "utf8mb4_nopad_bin" if "mariadb" in version else "utf8mb4_0900_bin"


def _row_named_r(columns: Sequence[str], row: str | None) -> str:
    """The changed row as a derived table ``R``: each column of ``NEW`` / ``OLD``, or (``row``
    ``None``, for trying the key at attach) a row of NULLs."""
    picked = ", ".join(f"{row}.`{c}` AS `{c}`" if row else f"NULL AS `{c}`" for c in columns)
    return f"(SELECT {picked}) AS R"


@dataclass(frozen=True)
class AttachReport:
    created_tables: list[str]
    triggers: list[str]
    lock_view: str | None = None

    def lines(self) -> list[str]:
        made = ", ".join(self.created_tables) or "none (all there)"
        lines = [f"bridge tables created: {made}", f"change triggers: {len(self.triggers)}"]
        if self.lock_view:
            lines.append(f"lock view for the POS: {self.lock_view}")
        return lines


def attach(db: ServerSession, mapping: Mapping) -> AttachReport:
    """Add the bridge's tables and triggers to the server database (autocommitted, statement by
    statement, as server DDL is); raises :class:`ServerAttachError` naming what failed."""
    setup = _setup_for(mapping)
    existing = setup.existing_tables(db)
    created = []
    for name, statements in setup.tables(db):
        if name.upper() not in existing:
            for sql in statements:
                db.execute(sql)
            created.append(name)
    if mapping.lock_view:
        _make_lock_view(db, mapping, mapping.lock_view, existing)
    made: list[Made] = []
    for number, change in enumerate(mapping.changes):
        columns = setup.columns(db, change.table)
        entry = f"[[changes]] entry {number + 1} (table {change.table}, order_key {change.order_key!r})"
        if not columns:
            _drop(db, setup, made)
            raise ServerAttachError(f"{entry}: the database has no table {change.table}")
        try:
            db.execute(setup.key_tried(change, columns)).fetchall()
        except Exception as exc:
            _drop(db, setup, made)
            raise ServerAttachError(f"{entry}: {_said(exc)}") from exc
        for operation in bridge.OPERATIONS:
            trigger = Made(setup.name(change, operation), change.table)
            setup.drop(db, trigger)
            try:
                for sql in setup.trigger(db, change, operation, columns):
                    db.execute(sql)
            except Exception as exc:
                _drop(db, setup, made)
                setup.failed(db, trigger)
                raise ServerAttachError(f"{entry}, on {operation}: {_said(exc)}") from exc
            made.append(trigger)
    meta = {"version": str(bridge.VERSION), "mapping": mapping.name, bridge.STATE: "attached"}
    upsert = DIALECTS[mapping.engine].upsert(bridge.META, ("KEY", "VALUE"), ("KEY",))
    for key, value in meta.items():
        db.execute(upsert, [key, value])
    for trigger in made:
        db.execute(upsert, [f"{bridge.CREATED}trigger {trigger.name}", "trigger"])
    if mapping.lock_view:
        db.execute(upsert, [f"{bridge.CREATED}view {mapping.lock_view}", "lock_view"])
    return AttachReport(created, [t.name for t in made], mapping.lock_view)


def _make_lock_view(db: ServerSession, mapping: Mapping, name: str, existing: set[str]) -> None:
    """The locks as the POS reads them (docs/mapping-a-pos.md), as in a file. A table or view of
    that name the bridge did not make is the POS's own: it is refused, never replaced."""
    key = DIALECTS[mapping.engine].column("KEY")
    ours = db.execute(
        f"SELECT VALUE FROM {bridge.META} WHERE {key} = ?",  # noqa: S608 - the bridge's own names
        [f"{bridge.CREATED}view {name}"],
    ).fetchone()
    if name.upper() in existing and ours is None:
        raise ServerAttachError(
            f"lock_view {name}: the database already has a table or view of that name that the bridge did not "
            "make; name another lock_view in the mapping"
        )
    db.execute(f"CREATE OR REPLACE VIEW {name} AS {bridge.LOCK_VIEW_SELECT}")


def _drop(db: ServerSession, setup: _ServerSetup, triggers: Sequence[Made]) -> None:
    for made in triggers:
        setup.drop(db, made)


def _said(exc: Exception) -> str:
    orig = getattr(exc, "orig", exc)
    diag = getattr(getattr(orig, "diag", None), "message_primary", None)  # PostgreSQL's own words
    if diag:
        return str(diag)
    args = getattr(orig, "args", ())
    return str(args[-1]) if args else str(orig)


def statement_problems(mapping: Mapping, db: ServerSession) -> list[StatementProblem]:
    """Prepare every statement (``EXPLAIN``, nothing run) and check each read returns the columns
    the bridge needs; the server's words name what it could not find."""
    setup = _setup_for(mapping)
    problems: list[StatementProblem] = []
    for key, sql in mapping.statements():
        if key.startswith("demo."):
            continue
        try:
            with setup.probe(db):
                setup.explained(db, sql)
        except Exception as exc:
            problems.append(StatementProblem(key, _said(exc)))
            continue
        needed = REQUIRED_COLUMNS.get(key)
        if needed:
            with setup.probe(db):
                returned = setup.returned(db, sql)
            missing = [c for c in needed if c not in returned]
            if missing:
                problems.append(StatementProblem(key, f"returns no column named {', '.join(missing)}"))
    return problems


def mapping_problem(mapping: Mapping, db: ServerSession, where: str) -> str | None:
    """A sentence naming why the database cannot be served through ``mapping``, or ``None``."""
    setup = _setup_for(mapping)
    attach_words = f"run `epos-bridge db attach` for it with --mapping {mapping.name}"
    key = DIALECTS[mapping.engine].column("KEY")
    try:
        row = db.execute(f"SELECT VALUE FROM EPOS_BRIDGE_META WHERE {key} = 'version'").fetchone()  # noqa: S608
    except Exception:
        return f"the {where} has not been attached to the bridge: {attach_words}"
    if row is None:
        return f"the {where} has not been attached to the bridge: {attach_words}"
    version = int(row[0])
    if version < bridge.VERSION:
        return f"the {where} was attached by an older bridge (tables v{version}): {attach_words} again"
    if version > bridge.VERSION:
        return f"the {where} was attached by a newer bridge (tables v{version}); update epos-bridge"
    problems = statement_problems(mapping, db)
    if problems:
        return f"the mapping {mapping.name} does not fit the {where}: " + "; ".join(p.words() for p in problems)
    present = setup.triggers_present(db)
    missing = [
        setup.name(c, op)
        for c in mapping.changes
        for op in bridge.OPERATIONS
        if setup.name(c, op).upper() not in present
    ]
    if missing:
        return f"the {where} lacks the change triggers {', '.join(missing)}: {attach_words} again"
    return None
