"""The reference SQLite schema as a kind of POS storage (:class:`epos_bridge.ports.AdapterFactory`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from epos_bridge.adapters.sqlite.adapter import SqliteChangeLog, SqlitePosAdapter
from epos_bridge.adapters.sqlite.connection import PosDatabase
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.ports import ChangeSource, LocationKind, PosAdapter, opened_by, read_problem


class SqliteFactory:
    description = "the reference SQLite schema (docs/reference-schema.md); EPOS_BRIDGE_DB is the file"
    location: LocationKind = "file"

    def init(self, location: Path, *, demo: bool) -> list[str]:
        report = init_database(location, demo=demo, now=datetime.now(UTC))  # DatabaseInitError is an AdapterInitError
        if report.from_version == report.to_version:
            lines = [f"{report.path}: reference schema v{report.to_version}, already current"]
        else:
            lines = [f"{report.path}: reference schema v{report.from_version} -> v{report.to_version}"]
        return lines + ([report.demo.words()] if report.demo is not None else [])

    async def problem(self, location: Path) -> str | None:
        """Read-only: no migration, and what SQLite would not say plainly (a folder; an empty file,
        which SQLite would silently turn into a database)."""
        found = await asyncio.to_thread(_file_problem, location)  # a network share can be slow to stat
        if found is not None:
            return found
        adapter = SqlitePosAdapter(PosDatabase(location, workers=1, migrate_on_open=False))
        return await read_problem(adapter)

    def open(self, location: Path) -> PosAdapter:
        return SqlitePosAdapter.open(location)

    async def check_writable(self, adapter: PosAdapter) -> None:
        await opened_by(adapter, SqlitePosAdapter).check_writable()

    def change_source(self, adapter: PosAdapter) -> ChangeSource | None:
        changes: SqliteChangeLog = opened_by(adapter, SqlitePosAdapter).changes
        return changes


def _file_problem(location: Path) -> str | None:
    if location.is_dir():
        return f"{location} is a folder; choose the POS database file inside it."
    if location.is_file() and location.stat().st_size == 0:
        return f"{location} is empty: it is not a reference POS database."
    return None
