"""The plumbing every part of the bridge's own state database shares.

One SQLite connection per store, used only from its own worker thread, so the event loop
never waits on the disk; WAL, a busy timeout and ``synchronous=FULL`` (what we answered Dojo
must survive a power cut). ``close()`` is idempotent: the tray's Quit and a SIGTERM may both ask.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from epos_bridge.host.private_files import private_dir, private_file

T = TypeVar("T")


class StateStore:
    schema: str = ""
    """DDL run at open (``CREATE … IF NOT EXISTS``)."""
    synchronous: str = "FULL"
    """FULL unless a store says why less is safe for what it keeps (state/outbox.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def open(self) -> None:
        await self._run(self._open_sync)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._run(self._close_sync)
        self._pool.shutdown(wait=True)

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def _open_sync(self) -> None:
        # Owner-only before SQLite first opens it; its -wal and -shm files copy these modes.
        private_file(private_dir(self.path.parent) / self.path.name)
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.executescript(self.schema)
        self._conn = conn

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._conn

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        """One statement in its own transaction."""
        db = self._db()
        with db:
            db.execute(sql, args)
