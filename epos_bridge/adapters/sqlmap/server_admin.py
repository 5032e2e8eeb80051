"""What ``epos-bridge db …``, ``facts`` and Settings' Test do to a POS database on a server:
the same commands as for a SQLite file (:mod:`.setup`), through the server's own connection.

Server DDL commits statement by statement (:func:`.server.run_setup`); the demo venue and a fact
are written in one transaction each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from epos_bridge.adapters.sqlmap import rows, server_setup
from epos_bridge.adapters.sqlmap.demo import write_demo
from epos_bridge.adapters.sqlmap.mapping import Mapping, MappingError, facts_read_by
from epos_bridge.adapters.sqlmap.server import ServerDatabase, ServerSession, run_setup, server_url, where_of
from epos_bridge.adapters.sqlmap.setup import FACT_KINDS, AttachError
from epos_bridge.demo_venue import DemoSeedRefused
from epos_bridge.domain.errors import EposFailure, PosUnavailable
from epos_bridge.ports import ServerLocation

ENGINE_OF_SCHEME = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql", "postgres": "postgresql"}


def engine_problem(mapping: Mapping, location: ServerLocation) -> str | None:
    """The mapping's SQL is one engine's dialect: a server of another kind is refused by name."""
    backend = location.scheme.split("+")[0]
    engine = ENGINE_OF_SCHEME.get(backend)
    if engine is None:
        return f"the database server {backend} is not supported: MariaDB/MySQL (mysql://), PostgreSQL (postgresql://)"
    if mapping.engine == "sqlite":
        return f"the mapping {mapping.name} is for a SQLite file, but EPOS_BRIDGE_DB names a database server"
    if engine != mapping.engine:
        return (
            f"the mapping {mapping.name} is written for {mapping.engine}, but EPOS_BRIDGE_DB names a {backend} server"
        )
    return None


def _checked(mapping: Mapping, location: ServerLocation) -> sa.URL:
    problem = engine_problem(mapping, location)
    if problem is not None:
        raise AttachError(problem)
    try:
        return server_url(location.url, location.password)
    except PosUnavailable as exc:
        raise AttachError(exc.message) from None


def attach(location: ServerLocation, mapping: Mapping, *, dry_run: bool) -> list[str]:
    """Add the bridge's tables and triggers (what exists is kept), then check every statement."""
    url = _checked(mapping, location)
    where = where_of(url)
    if dry_run:
        return [
            f"{where}: would create the bridge's tables that are missing and the change triggers of "
            f"{len(mapping.changes)} table(s), then prepare every statement of the mapping {mapping.name}"
        ]

    def work(db: ServerSession) -> list[str]:
        try:
            report = server_setup.attach(db, mapping)
        except server_setup.ServerAttachError as exc:
            raise AttachError(f"{where}: {exc}") from None
        problem = server_setup.mapping_problem(mapping, db, where)
        if problem is not None:
            raise AttachError(problem)
        return [f"{where}: attached for the mapping {mapping.name}", *report.lines()]

    return _run(url, work)


def _run(url: sa.URL, work: Callable[[ServerSession], list[str]]) -> list[str]:
    try:
        found = run_setup(url, work)
    except PosUnavailable as exc:
        raise AttachError(exc.message) from None
    return found


_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)


def schema_statements(ddl: str) -> list[str]:
    """A demo schema file split into statements: each ends with ``;`` at the end of a line."""
    return [part.strip() for part in _STATEMENT_END.split(ddl) if part.strip() and not _only_comments(part)]


def _only_comments(part: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in part.splitlines())


def init(location: ServerLocation, mapping: Mapping, *, demo: bool, now: datetime) -> list[str]:
    """Attach an existing POS database; with ``demo``, first create the POS's tables from the
    mapping's demo schema in an empty database, attach, and seed the demo venue."""
    if not demo:
        return attach(location, mapping, dry_run=False)
    url = _checked(mapping, location)
    where = where_of(url)
    schema = mapping.demo.schema_file
    if schema is None or mapping.source is None:
        raise AttachError(f"the mapping {mapping.name} has no demo schema (demo.schema_file)")
    try:
        ddl = (mapping.source.parent / schema).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"the demo schema {schema} of the mapping {mapping.name} cannot be read: {exc}") from exc

    def create(db: ServerSession) -> list[str]:
        if db.execute("SHOW TABLES" if mapping.engine == "mysql" else _PG_TABLES).fetchall():
            raise AttachError(f"{where} is not empty: a demo venue only goes into an empty database")
        for statement in schema_statements(ddl):
            try:
                db.execute(statement)
            except DBAPIError as exc:
                raise AttachError(f"the demo schema {schema} does not run on {where}: {exc.orig}") from None
        return []

    _run(url, create)
    lines = attach(location, mapping, dry_run=False)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            summary = write_demo(ServerSession(conn), mapping, now)
    except DemoSeedRefused as exc:
        raise AttachError(str(exc)) from None
    except DBAPIError as exc:
        raise AttachError(f"the demo venue could not be written to {where}: {exc.orig}") from None
    finally:
        engine.dispose()
    return [f"{where}: a POS database shaped for the mapping {mapping.name}", *lines, summary.words()]


_PG_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"


def list_facts(location: ServerLocation, mapping: Mapping, kind: str | None) -> list[str]:
    url = _checked(mapping, location)
    found = _run(
        url,
        lambda db: [
            f"{k} {key} {field} = {value!r}"
            for k, key, field, value in db.execute(
                "SELECT KIND, POS_KEY, FIELD, VALUE FROM EPOS_BRIDGE_FACTS WHERE (? IS NULL OR KIND = ?)"
                " ORDER BY KIND, POS_KEY, FIELD",
                [kind, kind],
            ).fetchall()
        ],
    )
    read = sorted(f"{k}.{f}" for k, f in facts_read_by(mapping) if kind in (None, k))
    return [*(found or ["no facts kept"]), f"the mapping {mapping.name} reads: {', '.join(read) or 'no facts'}"]


def set_fact(
    location: ServerLocation, mapping: Mapping, kind: str, key: str, field: str, value: str | None
) -> list[str]:
    if kind not in FACT_KINDS:
        raise AttachError(f"no such kind of fact {kind!r}: one of {', '.join(FACT_KINDS)}")
    url = _checked(mapping, location)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            db = ServerSession(conn)
            rows.forget_facts(db, kind, key, (field,))
            if value is not None:
                rows.keep_facts(db, mapping, kind, key, {field: value})
    except DBAPIError as exc:
        raise AttachError(f"{where_of(url)}: the fact could not be kept: {exc.orig}") from None
    finally:
        engine.dispose()
    return [f"{kind} {key} {field} = {value!r}" if value is not None else f"{kind} {key} {field} forgotten"]


async def problem(location: ServerLocation, mapping: Mapping) -> str | None:
    """Connects for real: reachable, credentials, attached, every statement prepared."""
    found = engine_problem(mapping, location)
    if found is not None:
        return found
    try:
        url = server_url(location.url, location.password)
    except PosUnavailable as exc:
        return exc.message
    where = where_of(url)
    check = lambda db: server_setup.mapping_problem(mapping, db, where)  # noqa: E731
    database = ServerDatabase(url, mapping, workers=1, check=check)
    try:
        await database.read(lambda db: None)
    except EposFailure as exc:
        return exc.message
    finally:
        await database.close()
    return None
