"""The reference SQLite schema as a kind of POS storage (:class:`epos_bridge.ports.AdapterFactory`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from epos_bridge.adapters.sqlite.adapter import SqliteStorage
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.adapters.sqlitedb import file_problem
from epos_bridge.ports import (
    AdapterFactory,
    LocationKind,
    PosLocation,
    ServerLocation,
    file_path,
    not_a_file,
    read_problem,
)

WHAT = "the sqlite adapter"


class SqliteFactory:
    description = "the reference SQLite schema (docs/reference-schema.md); EPOS_BRIDGE_DB is the file"
    location: LocationKind = "file"
    mappings: tuple[str, ...] | None = None  # its layout is fixed: no mapping file

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        return self

    def init(self, location: PosLocation, *, demo: bool) -> list[str]:
        location = file_path(location, WHAT)
        report = init_database(location, demo=demo, now=datetime.now(UTC))  # DatabaseInitError is an AdapterInitError
        if report.from_version == report.to_version:
            lines = [f"{report.path}: reference schema v{report.to_version}, already current"]
        else:
            lines = [f"{report.path}: reference schema v{report.from_version} -> v{report.to_version}"]
        return lines + ([report.demo.words()] if report.demo is not None else [])

    async def problem(self, location: PosLocation) -> str | None:
        """Read-only: no migration, and what SQLite would not say plainly (a folder; an empty file,
        which SQLite would silently turn into a database)."""
        if isinstance(location, ServerLocation):
            return not_a_file(location, WHAT)
        found = await asyncio.to_thread(
            file_problem, location, "a reference POS database"
        )  # a network share can be slow to stat
        if found is not None:
            return found
        return await read_problem(SqliteStorage(PosDatabase(location, workers=1, migrate_on_open=False)))

    def open(self, location: PosLocation) -> SqliteStorage:
        location = file_path(location, WHAT)
        return SqliteStorage.open(location)
