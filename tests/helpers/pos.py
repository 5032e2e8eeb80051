"""The built-in storages served as the bridge serves them: ``services.pos_calls.PosCalls`` over
each adapter's row store, so a test drives the same call code Dojo's requests reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epos_bridge.adapters.jsonfile.adapter import JsonFileStorage
from epos_bridge.adapters.sqlite.adapter import SqliteStorage
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.ports import Clock
from epos_bridge.services.pos_calls import PosCalls


def sqlite_pos(path: Path, clock: Clock | None = None, **options: Any) -> PosCalls:
    return PosCalls(SqliteStorage.open(path, **options), clock)


def sqlmap_pos(path: Path, mapping: Mapping, clock: Clock | None = None) -> PosCalls:
    return PosCalls(SqlMapStorage.open(path, mapping), clock)


def jsonfile_pos(path: Path, clock: Clock | None = None, **options: Any) -> PosCalls:
    return PosCalls(JsonFileStorage.open(path, **options), clock)
