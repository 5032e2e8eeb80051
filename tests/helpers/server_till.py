"""What every test till on a database server shares: its own short-lived connections (a second
program beside the bridge), one statement per transaction with the new row's id, reads, and the
database handed to the bridge's CLI the way an installer types it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from epos_bridge.adapters.sqlmap import server_admin
from epos_bridge.adapters.sqlmap.mapping import SHIPPED
from epos_bridge.adapters.sqlmap.mapping import Mapping as PosMapping
from epos_bridge.ports import ServerLocation

Params = Mapping[str, Any]
AttachHook = Callable[[str], None]
"""Given the database's URL (password included), attaches it for the till's mapping (the bridge's
tables and triggers): ``epos-bridge db attach``."""


def location_of(url: str | URL) -> ServerLocation:
    """The database as the bridge's CLI is given it: the URL without its password, then the password."""
    full = make_url(url)
    bare = ServerLocation(full._replace(password=None).render_as_string(hide_password=False))
    return bare.with_password(full.password)


def attach_for(mapping: PosMapping, url: str) -> None:
    """``epos-bridge db attach URL --mapping <mapping>``, as an installer runs it."""
    server_admin.attach(location_of(url), mapping, dry_run=False)


def url_text(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=False)


def engine_for(url: str | URL) -> Engine:
    """Connections of their own, each opened for one step and closed, as a till's requests are."""
    return create_engine(url, poolclass=NullPool)


def create_pos_database(url: str | URL, schema_file: str, attach_hook: AttachHook | None) -> None:
    """A shipped demo schema (``mappings/<schema_file>``) in the empty database ``url`` names, then
    ``attach_hook`` with the URL when given."""
    statements = server_admin.schema_statements((SHIPPED / schema_file).read_text(encoding="utf-8"))
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    if attach_hook is not None:
        attach_hook(url_text(url))


def new_id(conn: Connection, statement: str, params: Params | None) -> int | None:
    """Run one statement; the id it issued: ``RETURNING ID`` (PostgreSQL reports no other) or the
    driver's ``lastrowid`` (MariaDB's AUTO_INCREMENT; psycopg has none)."""
    result = conn.execute(text(statement), dict(params or {}))
    if result.returns_rows:
        found = result.scalar_one_or_none()
        return None if found is None else int(found)
    return None if conn.dialect.name == "postgresql" else result.lastrowid or None


class ServerTill:
    """A POS's own program on its server: the plumbing its subclasses' writes go through."""

    def __init__(self, url: str | URL, *, attach_hook: AttachHook | None) -> None:
        self.url = make_url(url)
        self.attach_hook = attach_hook
        self._engine = engine_for(self.url)

    def close(self) -> None:
        self._engine.dispose()

    def _sql(self, statement: str, params: Params | None = None) -> int | None:
        """One statement in its own transaction; the new row's id of an INSERT, if any."""
        with self._engine.begin() as conn:
            return new_id(conn, statement, params)

    def _read(self, statement: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        with self._engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(statement), dict(params or {}))]
