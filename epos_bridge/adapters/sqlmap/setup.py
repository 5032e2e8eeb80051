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
    statements = bridge.attach_sql(mapping)
    if dry_run:
        return [f"{sql};" for sql in statements]
    with closing(_open(path)) as conn:
        _attach(conn, path, mapping, statements)
        enable_wal(conn)
    return [f"{path}: attached for the mapping {mapping.name} ({len(mapping.changes)} tables send POS events)"]


def _attach(conn: sqlite3.Connection, path: Path, mapping: Mapping, statements: Sequence[str]) -> None:
    try:
        if bridge.attached_version(conn) is not None:
            raise AttachError(f"{path} is already attached; `epos-bridge db detach {path}` first to attach it again")
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
    """Remove everything ``attach`` added (locks, de-duplication rows and the change log go with it)."""
    with closing(_open(path)) as conn:
        try:
            statements = bridge.detach_sql(conn)
            if dry_run:
                return [f"{sql};" for sql in statements]
            if not statements:
                return [f"{path}: not attached; nothing to remove"]
            _in_one_transaction(conn, statements)
        except sqlite3.Error as exc:
            raise AttachError(f"{path} could not be detached (nothing was changed): {exc}") from exc
    return [f"{path}: detached ({len(statements)} tables, views and triggers removed)"]


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
        _attach(conn, path, mapping, bridge.attach_sql(mapping))
        enable_wal(conn)
        try:
            summary = seed_demo(conn, mapping, now)
        except DemoSeedRefused as exc:
            raise AttachError(str(exc)) from exc
    return [f"{path}: a {mapping.name} database, attached", summary.words()]
