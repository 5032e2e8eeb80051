"""A POS's own SQLite database read through a mapping, as a kind of POS storage
(:class:`epos_bridge.ports.AdapterFactory` and :class:`epos_bridge.ports.AttachableFactory`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from epos_bridge.adapters.sqlitedb import file_problem
from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.database import MappedDatabase
from epos_bridge.adapters.sqlmap.mapping import Mapping, MappingError, load, payment_visibility_warnings, shipped_names
from epos_bridge.domain.errors import EposFailure
from epos_bridge.ports import AdapterFactory, LocationKind


class SqlMapFactory:
    location: LocationKind = "file"

    def __init__(self, mapping: Mapping | None = None) -> None:
        self._mapping = mapping

    @property
    def description(self) -> str:
        if self._mapping is None:
            return "a POS's own SQLite database, through a mapping (docs/mapping-a-pos.md); EPOS_BRIDGE_DB is the file"
        return f"{self._mapping.description} through the mapping {self._mapping.name}; EPOS_BRIDGE_DB is the file"

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

    def init(self, location: Path, *, demo: bool) -> list[str]:
        try:
            mapping = self._bound()
        except MappingError as exc:
            raise setup.AttachError(str(exc)) from exc
        return setup.init(location, mapping, demo=demo, now=datetime.now(UTC))

    def attach(self, location: Path, *, dry_run: bool) -> list[str]:
        return setup.attach(location, self._bound_for_setup(), dry_run=dry_run)

    def till_warnings(self) -> list[str]:
        """Where the mapping would leave a Dojo payment off the POS's own screens (none chosen: none)."""
        return payment_visibility_warnings(self._mapping) if self._mapping is not None else []

    def list_facts(self, location: Path, kind: str | None) -> list[str]:
        return setup.list_facts(location, self._bound_for_setup(), kind)

    def set_fact(self, location: Path, kind: str, key: str, field: str, value: str | None) -> list[str]:
        return setup.set_fact(location, self._bound_for_setup(), kind, key, field, value)

    def _bound_for_setup(self) -> Mapping:
        try:
            return self._bound()
        except MappingError as exc:
            raise setup.AttachError(str(exc)) from exc

    def detach(self, location: Path, *, dry_run: bool, forget_payments: bool = False) -> list[str]:
        """Everything attach added but the payment record, unless ``forget_payments`` (:func:`setup.detach`)."""
        return setup.detach(location, dry_run=dry_run, forget_payments=forget_payments)

    async def problem(self, location: Path) -> str | None:
        """Read-only: the file is attached and every statement of the mapping prepares against it."""
        try:
            mapping = self._bound()
        except MappingError as exc:
            return str(exc)
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

    def open(self, location: Path) -> SqlMapStorage:
        return SqlMapStorage.open(location, self._bound())
