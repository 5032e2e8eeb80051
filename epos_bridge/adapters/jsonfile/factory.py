"""A folder of JSON files as a kind of POS storage (:class:`epos_bridge.ports.AdapterFactory`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from epos_bridge.adapters.jsonfile.adapter import JsonFileStorage
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.ports import (
    AdapterFactory,
    LocationKind,
    PosLocation,
    ServerLocation,
    file_path,
    not_a_file,
    read_problem,
)

WHAT = "the jsonfile adapter"


class JsonFileFactory:
    description = "a folder of JSON files (docs/file-database.md); EPOS_BRIDGE_DB is the folder"
    location: LocationKind = "folder"
    mappings: tuple[str, ...] | None = None  # its layout is fixed: no mapping file

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        return self

    def init(self, location: PosLocation, *, demo: bool) -> list[str]:
        location = file_path(location, WHAT)
        report = init_folder(location, demo=demo, now=datetime.now(UTC))  # FolderInitError is an AdapterInitError
        lines = [f"{report.path}: file database {'created' if report.created else 'already a file database'}"]
        return lines + ([report.demo.words()] if report.demo is not None else [])

    async def problem(self, location: PosLocation) -> str | None:
        """Read-only: the folder and its format marker, through a real read."""
        if isinstance(location, ServerLocation):
            return not_a_file(location, WHAT)
        if await asyncio.to_thread(location.is_file):
            return f"{location} is a file; the file database is the folder that holds format.json."
        return await read_problem(JsonFileStorage.open(location))

    def open(self, location: PosLocation) -> JsonFileStorage:
        location = file_path(location, WHAT)
        return JsonFileStorage.open(location)
