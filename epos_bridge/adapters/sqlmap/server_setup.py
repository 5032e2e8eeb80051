"""The bridge's tables and triggers in a POS database on a MariaDB/MySQL server, and the check
that the database fits a mapping before the first call is served.

The same tables as in a SQLite file (:mod:`.bridge`), in the server's types:

* every text the bridge matches on (paymentIntentId, Dojo's ids, lock ids) is compared byte for
  byte (``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL): the server's default
  collation would call ``pi_A`` and ``pi_a `` the same payment and answer one with the other's
  record;
* the change log and the payment-intent events carry an ``AUTO_INCREMENT`` (``SEQ``, ``ARRIVAL``)
  for the order they arrived in, which SQLite's rowid gives.

Server DDL is not transactional: attach creates what is missing (``IF NOT EXISTS``: never a
table of the bridge's dropped, so the payment record survives attaching again), replaces only
the bridge's own triggers, by exact name, and when one cannot be created drops the ones this
attach created before saying which entry failed. A trigger only inserts into the change log;
the mapping's ``order_key`` is evaluated over the changed row named ``R`` (every column of it),
exactly as written, and is tried at attach over a row of NULLs so a typo fails the attach, not
the POS's own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def _binary_collation(db: ServerSession) -> str:
    version = str(db.execute("SELECT VERSION()").fetchone()[0]).lower()
    return "utf8mb4_nopad_bin" if "mariadb" in version else "utf8mb4_0900_bin"


def _columns(db: ServerSession, table: str) -> list[str]:
    found = db.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
        " ORDER BY ORDINAL_POSITION",
        [table],
    ).fetchall()
    return [str(r[0]) for r in found]


def _row_named_r(columns: Sequence[str], row: str | None) -> str:
    """The changed row as a derived table ``R``: each column of ``NEW`` / ``OLD``, or (``row``
    ``None``, for trying the key at attach) a row of NULLs."""
    picked = ", ".join(f"{row}.`{c}` AS `{c}`" if row else f"NULL AS `{c}`" for c in columns)
    return f"(SELECT {picked}) AS R"


def trigger_name(change: ChangeTrigger, operation: str) -> str:
    return f"EPOS_BRIDGE_{change.table}_{operation}"[:64]


def _trigger(change: ChangeTrigger, operation: str, columns: Sequence[str]) -> str:
    when, row = bridge.ROW_OF[operation]
    kind = operation.lower() if change.own else "update"
    return (  # the mapping's own SQL (trusted installer configuration), no values
        f"CREATE TRIGGER {trigger_name(change, operation)} {when} {operation} ON `{change.table}` FOR EACH ROW "  # noqa: S608
        "INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, `CHANGE`) "
        f"SELECT '{change.entity}', CAST(K AS CHAR), '{kind}' "
        f"FROM (SELECT ({change.order_key}) AS K FROM {_row_named_r(columns, row)}) AS X WHERE K IS NOT NULL"
    )


@dataclass(frozen=True)
class AttachReport:
    created_tables: list[str]
    triggers: list[str]

    def lines(self) -> list[str]:
        made = ", ".join(self.created_tables) or "none (all there)"
        return [f"bridge tables created: {made}", f"change triggers: {len(self.triggers)}"]


def attach(db: ServerSession, mapping: Mapping) -> AttachReport:
    """Add the bridge's tables and triggers to the server database (autocommitted, statement by
    statement, as server DDL is); raises :class:`ServerAttachError` naming what failed."""
    existing = {str(r[0]).upper() for r in db.execute("SHOW TABLES").fetchall()}
    created = []
    for name, sql in _tables(_binary_collation(db)):
        if name.upper() not in existing:
            db.execute(sql)
            created.append(name)
    made: list[str] = []
    for number, change in enumerate(mapping.changes):
        columns = _columns(db, change.table)
        entry = f"[[changes]] entry {number + 1} (table {change.table}, order_key {change.order_key!r})"
        if not columns:
            _drop(db, made)
            raise ServerAttachError(f"{entry}: the database has no table {change.table}")
        try:
            db.execute(f"SELECT ({change.order_key}) AS K FROM {_row_named_r(columns, None)}").fetchall()  # noqa: S608
        except Exception as exc:
            _drop(db, made)
            raise ServerAttachError(f"{entry}: {_said(exc)}") from exc
        for operation in bridge.OPERATIONS:
            name = trigger_name(change, operation)
            db.execute(f"DROP TRIGGER IF EXISTS {name}")
            try:
                db.execute(_trigger(change, operation, columns))
            except Exception as exc:
                _drop(db, made)
                raise ServerAttachError(f"{entry}, on {operation}: {_said(exc)}") from exc
            made.append(name)
    meta = {"version": str(bridge.VERSION), "mapping": mapping.name, bridge.STATE: "attached"}
    upsert = "INSERT INTO EPOS_BRIDGE_META (`KEY`, VALUE) VALUES (?, ?) ON DUPLICATE KEY UPDATE VALUE = VALUES(VALUE)"
    for key, value in meta.items():
        db.execute(upsert, [key, value])
    for name in made:
        db.execute(upsert, [f"{bridge.CREATED}trigger {name}", "trigger"])
    return AttachReport(created, made)


def _drop(db: ServerSession, triggers: Sequence[str]) -> None:
    for name in triggers:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")


def _said(exc: Exception) -> str:
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    return str(args[-1]) if args else str(orig)


def statement_problems(mapping: Mapping, db: ServerSession) -> list[StatementProblem]:
    """Prepare every statement (``EXPLAIN``, nothing run) and check each read returns the columns
    the bridge needs; the server's words name what it could not find."""
    problems: list[StatementProblem] = []
    for key, sql in mapping.statements():
        if key.startswith("demo."):
            continue
        blanks = dict.fromkeys(_parameters_in(sql))
        try:
            db.execute(f"EXPLAIN {sql}", blanks).fetchall()
        except Exception as exc:
            problems.append(StatementProblem(key, _said(exc)))
            continue
        needed = REQUIRED_COLUMNS.get(key)
        if needed:
            cursor = db.execute(f"SELECT * FROM ({sql}) AS found LIMIT 0", blanks)  # noqa: S608 - installer SQL
            returned = {d[0] for d in cursor.description or ()}
            missing = [c for c in needed if c not in returned]
            if missing:
                problems.append(StatementProblem(key, f"returns no column named {', '.join(missing)}"))
    return problems


def mapping_problem(mapping: Mapping, db: ServerSession, where: str) -> str | None:
    """A sentence naming why the database cannot be served through ``mapping``, or ``None``."""
    attach_words = f"run `epos-bridge db attach` for it with --mapping {mapping.name}"
    try:
        row = db.execute("SELECT VALUE FROM EPOS_BRIDGE_META WHERE `KEY` = 'version'").fetchone()
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
    present = {
        str(r[0]).upper()
        for r in db.execute(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        ).fetchall()
    }
    missing = [
        trigger_name(c, op)
        for c in mapping.changes
        for op in bridge.OPERATIONS
        if trigger_name(c, op).upper() not in present
    ]
    if missing:
        return f"the {where} lacks the change triggers {', '.join(missing)}: {attach_words} again"
    return None
