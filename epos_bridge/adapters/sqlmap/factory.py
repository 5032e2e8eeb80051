"""A POS's own database read through a mapping, as a kind of POS storage
(:class:`epos_bridge.ports.AdapterFactory` and :class:`epos_bridge.ports.AttachableFactory`): a
SQLite file, or a database on a MariaDB/MySQL or PostgreSQL server, as the mapping's ``engine``
says (its SQL is that engine's dialect)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from epos_bridge.adapters.sqlitedb import file_problem
from epos_bridge.adapters.sqlmap import server_admin, setup
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.database import MappedDatabase
from epos_bridge.adapters.sqlmap.mapping import Mapping, MappingError, load, payment_visibility_warnings, shipped_names
from epos_bridge.adapters.sqlmap.server import server_url
from epos_bridge.domain.errors import EposFailure, PosUnavailable
from epos_bridge.ports import AdapterFactory, LocationKind, PosLocation, ServerLocation


class SqlMapFactory:
    def __init__(self, mapping: Mapping | None = None) -> None:
        self._mapping = mapping

    @property
    def location(self) -> LocationKind:
        """A file, or a server for a mapping written for one."""
        return "server" if self._mapping is not None and self._mapping.engine != "sqlite" else "file"

    @property
    def description(self) -> str:
        where = "the server's database URL" if self.location == "server" else "the file"
        if self._mapping is None:
            return (
                "a POS's own database (a SQLite file, or MariaDB/MySQL or PostgreSQL), through a mapping "
                "(docs/mapping-a-pos.md); EPOS_BRIDGE_DB is the file or the server's database URL"
            )
        return f"{self._mapping.description} through the mapping {self._mapping.name}; EPOS_BRIDGE_DB is {where}"

    @property
    def mappings(self) -> tuple[str, ...]:
        return shipped_names()

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        return self if mapping is None else SqlMapFactory(load(mapping))

    def _bound(self) -> Mapping:
        if self._mapping is None:
            raise MappingError(
                "the sqlmap adapter needs a mapping (EPOS_BRIDGE_MAPPING): a file, or one of "
                + ", ".join(shipped_names())
            )
        return self._mapping

    def _bound_for_setup(self, location: PosLocation) -> Mapping:
        try:
            mapping = self._bound()
        except MappingError as exc:
            raise setup.AttachError(str(exc)) from exc
        if not isinstance(location, ServerLocation) and mapping.engine != "sqlite":
            raise setup.AttachError(
                f"the mapping {mapping.name} is written for a {mapping.engine} server: EPOS_BRIDGE_DB must be its "
                f"database URL ({mapping.engine}://user@host:port/database), not a file"
            )
        return mapping

    def init(self, location: PosLocation, *, demo: bool) -> list[str]:
        mapping = self._bound_for_setup(location)
        if isinstance(location, ServerLocation):
            return server_admin.init(location, mapping, demo=demo, now=datetime.now(UTC))
        return setup.init(location, mapping, demo=demo, now=datetime.now(UTC))

    def attach(self, location: PosLocation, *, dry_run: bool) -> list[str]:
        mapping = self._bound_for_setup(location)
        if isinstance(location, ServerLocation):
            return server_admin.attach(location, mapping, dry_run=dry_run)
        return setup.attach(location, mapping, dry_run=dry_run)

    def till_warnings(self) -> list[str]:
        """Where the mapping would leave a Dojo payment off the POS's own screens (none chosen: none)."""
        return payment_visibility_warnings(self._mapping) if self._mapping is not None else []

    def list_facts(self, location: PosLocation, kind: str | None) -> list[str]:
        mapping = self._bound_for_setup(location)
        if isinstance(location, ServerLocation):
            return server_admin.list_facts(location, mapping, kind)
        return setup.list_facts(location, mapping, kind)

    def set_fact(self, location: PosLocation, kind: str, key: str, field: str, value: str | None) -> list[str]:
        mapping = self._bound_for_setup(location)
        if isinstance(location, ServerLocation):
            return server_admin.set_fact(location, mapping, kind, key, field, value)
        return setup.set_fact(location, mapping, kind, key, field, value)

    def detach(self, location: PosLocation, *, dry_run: bool, forget_payments: bool = False) -> list[str]:
        """Everything attach added but the payment record, unless ``forget_payments`` (:func:`setup.detach`)."""
        if isinstance(location, ServerLocation):
            raise setup.AttachError(
                "db detach does not work on a database server yet: the bridge's triggers are EPOS_BRIDGE_<table>_"
                "INSERT/UPDATE/DELETE (DROP TRIGGER each); keep the EPOS_BRIDGE_ tables, they hold the payment record"
            )
        return setup.detach(location, dry_run=dry_run, forget_payments=forget_payments)

    async def problem(self, location: PosLocation) -> str | None:
        """Read-only: the database is reached, attached and every statement of the mapping prepares."""
        try:
            mapping = self._bound()
        except MappingError as exc:
            return str(exc)
        if isinstance(location, ServerLocation):
            return await server_admin.problem(location, mapping)
        if mapping.engine != "sqlite":
            return f"the mapping {mapping.name} is written for a {mapping.engine} server: EPOS_BRIDGE_DB must be a URL"
        found = await asyncio.to_thread(file_problem, location, "a POS database")
        if found is not None:
            return found
        database = MappedDatabase(location, mapping, workers=1)
        try:
            await database.read(lambda db: None)
        except EposFailure as exc:
            return exc.message
        finally:
            await database.close()
        return None

    def open(self, location: PosLocation) -> SqlMapStorage:
        mapping = self._bound()
        if isinstance(location, ServerLocation):
            problem = server_admin.engine_problem(mapping, location)
            if problem is not None:
                raise PosUnavailable(problem)
            return SqlMapStorage.open_server(server_url(location.url, location.password), mapping)
        if mapping.engine != "sqlite":
            raise PosUnavailable(f"the mapping {mapping.name} is written for a {mapping.engine} server, not a file")
        return SqlMapStorage.open(location, mapping)
