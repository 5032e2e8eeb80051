"""``db attach`` / ``db detach`` / ``db init`` for a POS read through a mapping.

Attaching is the only time the bridge changes a POS's schema, and only ever adds its own tables
(:mod:`.bridge`), triggers and lock view; every statement runs in one transaction, and a mapping
whose statements or change triggers do not prepare against the database is refused before
anything is committed (``--dry-run`` runs the same checks and rolls back). Detaching removes
exactly what attach recorded, keeps the payment record unless told to forget it, and is refused
while a bridge serves the database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from epos_bridge.adapters.sqlitedb import configure, connect, enable_wal
from epos_bridge.adapters.sqlmap import bridge
from epos_bridge.adapters.sqlmap.database import mapping_problem
from epos_bridge.adapters.sqlmap.demo import seed_demo
from epos_bridge.adapters.sqlmap.mapping import Mapping, MappingError, facts_read_by, payment_visibility_warnings
from epos_bridge.demo_venue import DemoSeedRefused
from epos_bridge.host.instance import DETACH_ROLE, AlreadyServing, VenueLockError, database_lock
from epos_bridge.ports import AdapterInitError


class AttachError(AdapterInitError):
    """The database cannot be attached, detached or created; the message says why."""


def _open(path: Path, *, create: bool = False) -> sqlite3.Connection:
    if path.is_dir():
        raise AttachError(f"{path} is a folder; choose the POS database file inside it")
    if not create and not path.is_file():
        raise AttachError(f"{path} does not exist: choose the POS's database file")
    try:
        return connect(path, create=create)
    except sqlite3.Error as exc:
        raise AttachError(f"{path} cannot be opened: {exc}") from exc


def _in_one_transaction(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql in statements:
            conn.execute(sql)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def attach(path: Path, mapping: Mapping, *, dry_run: bool = False) -> list[str]:
    """Add the bridge's tables and the mapping's change triggers; lines saying what was done
    (with ``dry_run``, the SQL that would run, after running it and every check in a
    transaction that is rolled back, so it reports the same problems and changes nothing).

    Attaching again is safe at any time: over a detached file it takes up the payment record
    detach kept; over an attached one (the mapping changed, a trigger is missing) it only
    replaces the triggers and views the mapping now wants otherwise. It never drops a table of
    the bridge's, so no recorded payment is ever forgotten by attaching (:mod:`.bridge`).
    """
    with closing(_open(path)) as conn:
        plan = _plan(conn, path, mapping)
        warnings = [f"warning: {w}" for w in payment_visibility_warnings(mapping)]
        if dry_run:
            _apply(conn, path, mapping, plan, commit=False)  # the same checks; rolled back
            return [f"{sql};" for sql in plan.statements] + [f"-- {w}" for w in warnings]
        _apply(conn, path, mapping, plan)
        enable_wal(conn)
    return _attached_words(path, mapping, plan) + warnings


def _attached_words(path: Path, mapping: Mapping, plan: bridge.AttachPlan) -> list[str]:
    events = f"{len(mapping.changes)} tables send POS events"
    if plan.state == "new":
        return [f"{path}: attached for the mapping {mapping.name} ({events})"]
    if plan.state == bridge.DETACHED:
        return [
            f"{path}: attached again for the mapping {mapping.name} ({events}); the payment record detach kept is "
            "in use again, so a payment Dojo sends again is still recorded once"
        ]
    if not plan.creating and not plan.dropping:
        return [f"{path}: already attached for the mapping {mapping.name}; nothing to change"]
    return [
        f"{path}: attached again for the mapping {mapping.name}: {len(plan.creating)} triggers or views added or "
        "replaced; the bridge's tables and its payment record are kept as they were"
    ]


def _journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def _plan(conn: sqlite3.Connection, path: Path, mapping: Mapping) -> bridge.AttachPlan:
    try:
        version = bridge.attached_version(conn)
        # An older attach is upgraded in place: attach_plan creates what the newer tables add and
        # keeps every row of the payment record. A newer one is not guessed at.
        if version is not None and version > bridge.VERSION:
            raise AttachError(
                f"{path} was attached by a newer bridge (tables v{version}, this one v{bridge.VERSION}): "
                "update epos-bridge"
            )
        plan = bridge.attach_plan(conn, mapping, _journal_mode(conn))
        using = bridge.dependents(conn, plan.dropping, plan.creating)
    except sqlite3.Error as exc:
        raise AttachError(f"{path} could not be attached (nothing was changed): {exc}") from exc
    if using:
        raise AttachError(
            f"{path} cannot be attached again (nothing was changed): the POS's own {'; '.join(using)} would be lost "
            "with the bridge's objects the mapping now wants otherwise; drop or change them first"
        )
    return plan


def _apply(
    conn: sqlite3.Connection, path: Path, mapping: Mapping, plan: bridge.AttachPlan, *, commit: bool = True
) -> None:
    """Run the plan, recording in META exactly what exists of the bridge's and the journal mode
    found, in one transaction, so that detach can remove exactly that; committed only when every
    trigger prepares against the real tables (:func:`bridge.trigger_problems`) and every
    statement of the mapping fits. A refusal names the mapping entry and SQLite's error."""
    refused = f"{path} could not be attached (nothing was changed)"
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, entry in plan.steps:
                try:
                    conn.execute(sql)
                except sqlite3.Error as exc:
                    what = entry or "the bridge's own tables"
                    raise AttachError(f"{refused}: {what}: {exc}") from exc
            problems = bridge.trigger_problems(conn, mapping)
            if problems:
                raise AttachError(f"{refused}: a change trigger does not fit: {'; '.join(problems)}")
            problem = mapping_problem(mapping, conn, path)
            if problem is not None:
                raise AttachError(f"{refused}: {problem}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT" if commit else "ROLLBACK")
    except sqlite3.Error as exc:
        raise AttachError(f"{refused}: {exc}") from exc


def detach(path: Path, *, dry_run: bool = False, forget_payments: bool = False) -> list[str]:
    """Remove exactly what ``attach`` created (by the record it kept in META) except the payment
    record, and put the journal mode back as attach found it.

    * Refused while a bridge serves the database (the venue lock, :func:`database_lock`), and
      no bridge starts while it runs: a bridge losing its tables mid-payment could record a
      payment on the POS without its paymentIntentId row.
    * The payment record (:data:`bridge.KEPT_ON_DETACH`) stays unless ``forget_payments``, so a
      later attach picks it up and a payment Dojo sends again is not counted twice; forgetting is
      refused while the record is recent enough for Dojo to retry any of it.
    * Nothing of the POS's is touched: a table whose name only looks like the bridge's stays,
      and when the POS's own triggers, views or indexes use what would go (the lock view, say),
      detach refuses and names them rather than drop them with it or leave them failing.
    """
    with closing(_open(path)) as conn:
        try:
            with database_lock(path):
                return _detach(conn, path, dry_run=dry_run, forget=forget_payments)
        except AlreadyServing as exc:
            raise AttachError(_serving(path, exc)) from exc
        except VenueLockError as exc:
            raise AttachError(f"{path} cannot be detached (nothing was changed): {exc}") from exc


def _serving(path: Path, exc: AlreadyServing) -> str:
    owner = exc.owner
    if owner is not None and owner.role == DETACH_ROLE:
        return f"{path} cannot be detached now: another `epos-bridge db detach` is running on it (pid {owner.pid})"
    who = "pid unknown" if owner is None else f"pid {owner.pid}, user {owner.user}"
    where = f", data folder {owner.data_dir}" if owner is not None and owner.data_dir else ""
    return (
        f"{path} cannot be detached (nothing was changed): a bridge is serving this database ({who}{where}); "
        "stop it first (Quit in its tray menu, or stop its service), then detach"
    )


def _detach(conn: sqlite3.Connection, path: Path, *, dry_run: bool, forget: bool) -> list[str]:
    try:
        record = bridge.recorded(conn)
        if not record:
            return [f"{path}: not attached; nothing to remove"]
        was_detached = bridge.is_detached(conn)
        dropping = record if forget else [found for found in record if found not in bridge.KEPT_ON_DETACH]
        kept = bridge.payments_kept(conn)
        if not dropping:
            return [f"{path}: already detached; {_kept_words(kept)}"]
        using = bridge.dependents(conn, dropping)
        if using:
            raise AttachError(
                f"{path} cannot be detached (nothing was changed): the POS's own "
                f"{'; '.join(using)} would be lost or fail without it; drop or change "
                f"{'it' if len(using) == 1 else 'them'} first"
            )
        if forget:
            recent = bridge.latest_recent_money_fact(conn)
            if recent is not None:
                raise AttachError(
                    f"{path}: the payment record is not forgotten (nothing was changed): it holds payments recorded "
                    f"in the last {bridge.FORGET_AFTER_DAYS} days (the latest at {recent}), which Dojo may still send "
                    "again; forgotten, such a payment would be counted a second time. Detach without "
                    "--forget-payments (the record stays, harmless), and forget it later"
                )
        statements = bridge.detach_sql(dropping) + ([] if forget else bridge.detached_record_sql(dropping))
        journal = bridge.recorded_journal_mode(conn)
        legacy = not was_detached and journal is None
        if dry_run:
            restore = [f"PRAGMA journal_mode = {journal.upper()};"] if journal else []
            return [f"{sql};" for sql in statements] + restore
        _in_one_transaction(conn, statements)
    except sqlite3.Error as exc:
        raise AttachError(f"{path} could not be detached (nothing was changed): {exc}") from exc
    lines = [f"{path}: detached ({len(dropping)} tables, indexes, views and triggers removed)"]
    lines.append("the payment record is forgotten" if forget else _kept_words(kept))
    if journal is not None or legacy:
        lines.append(_restore_journal_mode(conn, journal, keep_record=not forget))
    return lines


def _kept_words(kept: int) -> str:
    return (
        f"the bridge's payment record ({kept} payments) is kept, so attaching again counts no payment twice; "
        f"`epos-bridge db detach --forget-payments` removes it too (refused while any of it is younger than "
        f"{bridge.FORGET_AFTER_DAYS} days)"
    )


def _restore_journal_mode(conn: sqlite3.Connection, journal: str | None, *, keep_record: bool) -> str:
    if journal is None:
        return f"the journal mode stays {_journal_mode(conn)} (attached by a bridge that did not record what it found)"
    try:
        now = _journal_mode(conn)
        if now != journal:
            now = str(conn.execute(f"PRAGMA journal_mode = {journal}").fetchone()[0]).lower()
    except sqlite3.Error as exc:
        now = f"unchanged ({exc})"
    if now != journal:
        return (
            f"the journal mode could not be put back to {journal} (another program has the database open?): it is "
            f"{now}; run `PRAGMA journal_mode = {journal.upper()}` once the POS is closed"
        )
    if keep_record:
        with contextlib.suppress(sqlite3.Error):
            conn.execute(bridge.forget_journal_mode_sql())
    return f"the journal mode is {journal}, as attach found it"


def init(path: Path, mapping: Mapping, *, demo: bool, now: datetime) -> list[str]:
    """Attach an existing POS database; with ``demo``, first create an empty one from the
    mapping's demo schema and afterwards seed the demo venue into it."""
    if not demo:
        return attach(path, mapping)
    schema = mapping.demo.schema_file
    if schema is None or mapping.source is None:
        raise AttachError(f"the mapping {mapping.name} has no demo schema (demo.schema_file)")
    if path.exists() and path.stat().st_size > 0:
        raise AttachError(f"{path} already exists: a demo venue only goes into a new file")
    try:
        ddl = (mapping.source.parent / schema).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"the demo schema {schema} of the mapping {mapping.name} cannot be read: {exc}") from exc
    # A new file is this user's alone from its first byte (SQLite gives -wal and -shm its mode);
    # one that cannot be made is explained by _open.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with closing(_open(path, create=True)) as conn:
        configure(conn, 5.0)
        try:
            conn.executescript(ddl)
        except sqlite3.Error as exc:
            raise AttachError(f"the demo schema {schema} does not run: {exc}") from exc
        _apply(conn, path, mapping, _plan(conn, path, mapping))
        enable_wal(conn)
        try:
            summary = seed_demo(conn, mapping, now)
        except DemoSeedRefused as exc:
            raise AttachError(str(exc)) from exc
    return [f"{path}: a POS database shaped for the mapping {mapping.name}, attached", summary.words()]


FACT_KINDS = ("order", "item", "modifier", "table", "area", "venue", "reservation")
"""What ``EPOS_BRIDGE_FACTS`` rows are about (its ``KIND``); ``POS_KEY`` is the POS's own key."""


def list_facts(path: Path, mapping: Mapping, kind: str | None = None) -> list[str]:
    """The facts kept for the POS (``KIND POS_KEY FIELD = VALUE``), then the facts the mapping's
    SQL reads, so an installer knows the names to set."""
    with closing(_open(path)) as conn:
        _require_attached(conn, path)
        try:
            rows = conn.execute(
                "SELECT KIND, POS_KEY, FIELD, VALUE FROM EPOS_BRIDGE_FACTS WHERE (? IS NULL OR KIND = ?)"
                " ORDER BY KIND, POS_KEY, FIELD",
                [kind, kind],
            ).fetchall()
        except sqlite3.Error as exc:
            raise AttachError(f"{path}: the facts cannot be read: {exc}") from exc
    lines = [f"{k} {key} {field} = {value!r}" for k, key, field, value in rows] or ["no facts kept"]
    read = sorted(f"{k}.{f}" for k, f in facts_read_by(mapping) if kind in (None, k))
    return [*lines, f"the mapping {mapping.name} reads: {', '.join(read) or 'no facts'}"]


def set_fact(path: Path, mapping: Mapping, kind: str, key: str, field: str, value: str | None) -> list[str]:
    """Keep (or, with ``value`` ``None``, forget) one fact in one short transaction; safe while a
    bridge serves the file (SQLite waits for its write lock, at most the busy timeout)."""
    if kind not in FACT_KINDS:
        raise AttachError(f"kind {kind!r} is not one of {', '.join(FACT_KINDS)}")
    if not key or not field:
        raise AttachError("a fact needs the POS's key and a field name")
    with closing(_open(path)) as conn:
        _require_attached(conn, path)
        if value is None:
            statement = "DELETE FROM EPOS_BRIDGE_FACTS WHERE KIND = ? AND POS_KEY = ? AND FIELD = ?"
            _in_one_transaction_with(conn, statement, [kind, key, field])
            done = f"forgot {kind} {key} {field}"
        else:
            statement = (
                "INSERT INTO EPOS_BRIDGE_FACTS (KIND, POS_KEY, FIELD, VALUE) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (KIND, POS_KEY, FIELD) DO UPDATE SET VALUE = excluded.VALUE"
            )
            _in_one_transaction_with(conn, statement, [kind, key, field, value])
            done = f"kept {kind} {key} {field} = {value!r}"
    if (kind, field) not in facts_read_by(mapping):
        return [done, f"warning: the mapping {mapping.name} never reads {kind}.{field}, so Dojo will not see it"]
    return [done]


def _require_attached(conn: sqlite3.Connection, path: Path) -> None:
    if bridge.attached_version(conn) is None:
        raise AttachError(f"{path} is not attached: run `epos-bridge db attach {path} --mapping M` first")


def _in_one_transaction_with(conn: sqlite3.Connection, statement: str, values: Sequence[Any]) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(statement, values)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:  # busy past the timeout, read-only, not a database
        raise AttachError(f"the fact was not kept (nothing was changed): {exc}") from exc
