"""``db attach`` / ``db detach`` / ``db init`` for a POS read through a mapping.

Attaching is the only time the bridge changes a POS's schema, and only ever adds its own tables
(:mod:`.bridge`) and triggers; every statement runs in one transaction, and a mapping whose
statements do not prepare against the database is refused before anything is committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

from epos_bridge.adapters.sqlitedb import configure, connect, enable_wal
from epos_bridge.adapters.sqlmap import bridge
from epos_bridge.adapters.sqlmap.database import mapping_problem
from epos_bridge.adapters.sqlmap.demo import seed_demo
from epos_bridge.adapters.sqlmap.mapping import Mapping, MappingError
from epos_bridge.demo_venue import DemoSeedRefused
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
    (with ``dry_run``, the SQL that would run, and nothing is opened)."""
    if dry_run:
        return [f"{sql};" for sql in bridge.attach_sql(mapping)]
    with closing(_open(path)) as conn:
        _attach(conn, path, mapping)
        enable_wal(conn)
    return [f"{path}: attached for the mapping {mapping.name} ({len(mapping.changes)} tables send POS events)"]


def _journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def _attach(conn: sqlite3.Connection, path: Path, mapping: Mapping) -> None:
    """Create what the mapping needs and record in META exactly what was created and the
    journal mode found, in one transaction, so that detach can remove exactly that."""
    try:
        if bridge.attached_version(conn) is not None:
            raise AttachError(f"{path} is already attached; `epos-bridge db detach {path}` first to attach it again")
        statements = bridge.attach_sql(mapping, _journal_mode(conn))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql in statements:
                conn.execute(sql)
            problem = mapping_problem(mapping, conn, path)
            if problem is not None:
                raise AttachError(problem)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise AttachError(f"{path} could not be attached (nothing was changed): {exc}") from exc


def detach(path: Path, *, dry_run: bool = False) -> list[str]:
    """Remove exactly what ``attach`` created (by the record it kept in META), and put the
    journal mode back as attach found it. Nothing of the POS's is touched: a table whose name
    only looks like the bridge's stays, and when the POS's own triggers, views or indexes use
    what would go (the lock view, say), detach refuses and names them rather than drop them
    with it or leave them failing on the POS's next write."""
    with closing(_open(path)) as conn:
        try:
            dropping = bridge.recorded(conn)
            if not dropping:
                return [f"{path}: not attached; nothing to remove"]
            using = bridge.dependents(conn, dropping)
            if using:
                raise AttachError(
                    f"{path} cannot be detached (nothing was changed): the POS's own "
                    f"{'; '.join(using)} would be lost or fail without it; drop or change "
                    f"{'it' if len(using) == 1 else 'them'} first"
                )
            statements = bridge.detach_sql(dropping)
            journal = bridge.recorded_journal_mode(conn)
            if dry_run:
                restore = [f"PRAGMA journal_mode = {journal.upper()};"] if journal else []
                return [f"{sql};" for sql in statements] + restore
            _in_one_transaction(conn, statements)
        except sqlite3.Error as exc:
            raise AttachError(f"{path} could not be detached (nothing was changed): {exc}") from exc
        lines = [f"{path}: detached ({len(statements)} tables, indexes, views and triggers removed)"]
        lines.append(_restore_journal_mode(conn, journal))
    return lines


def _restore_journal_mode(conn: sqlite3.Connection, journal: str | None) -> str:
    if journal is None:
        return f"the journal mode stays {_journal_mode(conn)} (attached by a bridge that did not record what it found)"
    if journal == _journal_mode(conn):
        return f"the journal mode is {journal}, as attach found it"
    try:
        now = str(conn.execute(f"PRAGMA journal_mode = {journal}").fetchone()[0]).lower()
    except sqlite3.Error as exc:
        now = f"{_journal_mode(conn)} ({exc})"
    if now == journal:
        return f"the journal mode is {journal} again, as attach found it"
    return (
        f"the journal mode could not be put back to {journal} (another program has the database open?): it is {now}; "
        f"run `PRAGMA journal_mode = {journal.upper()}` once the POS is closed"
    )


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
    with closing(_open(path, create=True)) as conn:
        configure(conn, 5.0)
        try:
            conn.executescript(ddl)
        except sqlite3.Error as exc:
            raise AttachError(f"the demo schema {schema} does not run: {exc}") from exc
        _attach(conn, path, mapping)
        enable_wal(conn)
        try:
            summary = seed_demo(conn, mapping, now)
        except DemoSeedRefused as exc:
            raise AttachError(str(exc)) from exc
    return [f"{path}: a {mapping.name} database, attached", summary.words()]
