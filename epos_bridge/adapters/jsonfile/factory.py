"""A folder of JSON files as a kind of POS storage (:class:`epos_bridge.ports.AdapterFactory`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from epos_bridge.adapters.jsonfile.adapter import JsonFilePosAdapter
from epos_bridge.adapters.jsonfile.changes import JsonFileChangeLog
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.domain.errors import PosUnavailable
from epos_bridge.ports import ChangeSource, LocationKind, PosAdapter, opened_by, read_problem


class JsonFileFactory:
    description = "a folder of JSON files (docs/file-database.md); EPOS_BRIDGE_DB is the folder"
    location: LocationKind = "folder"

    def init(self, location: Path, *, demo: bool) -> list[str]:
        report = init_folder(location, demo=demo, now=datetime.now(UTC))  # FolderInitError is an AdapterInitError
        lines = [f"{report.path}: file database {'created' if report.created else 'already a file database'}"]
        return lines + ([report.demo.words()] if report.demo is not None else [])

    async def problem(self, location: Path) -> str | None:
        """Read-only: the folder and its format marker, through a real read."""
        if await asyncio.to_thread(location.is_file):
            return f"{location} is a file; the file database is the folder that holds format.json."
        adapter = JsonFilePosAdapter.open(location)
        return await read_problem(adapter)

    def open(self, location: Path) -> PosAdapter:
        return JsonFilePosAdapter.open(location)

    async def check_writable(self, adapter: PosAdapter) -> None:
        """A real, harmless write: a temporary file created in the folder and removed again."""
        await asyncio.to_thread(_write_and_remove, opened_by(adapter, JsonFilePosAdapter).path)

    def change_source(self, adapter: PosAdapter) -> ChangeSource | None:
        changes: JsonFileChangeLog = opened_by(adapter, JsonFilePosAdapter).changes
        return changes


def _write_and_remove(folder: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".epos-bridge-check.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise PosUnavailable(
            f"The POS folder {folder} cannot be written ({exc.strerror or exc}); the bridge needs write access "
            "to record payments and locks."
        ) from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
