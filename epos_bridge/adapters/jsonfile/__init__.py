"""The file-database POS adapter: a POS that keeps its data as JSON files in one folder.

Layout, locking and what the POS must do are in ``docs/file-database.md``. The rules are the
reference adapter's, shared through :mod:`epos_bridge.domain`.
"""

from __future__ import annotations

from epos_bridge.adapters.jsonfile.adapter import JsonFileStorage
from epos_bridge.adapters.jsonfile.lockfile import FolderLock
from epos_bridge.adapters.jsonfile.store import write_json_atomic

__all__ = ["FolderLock", "JsonFileStorage", "write_json_atomic"]
