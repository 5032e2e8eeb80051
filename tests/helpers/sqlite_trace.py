"""The SQL statements the bridge's own SQLite connections have started, for tests to wait on.

A test that needs the bridge to be *inside* a statement (say its ``BEGIN IMMEDIATE`` waiting on
the POS's write lock) waits for that statement to start instead of sleeping and hoping. SQLite
calls the trace callback when a statement begins to run, before it takes any lock, so once
``BEGIN IMMEDIATE`` has started while the POS holds the write lock the bridge is waiting on it.

Use :func:`trace_bridge_statements` before the adapter opens its first connection (connections
are opened lazily, by the first request)::

    statements = trace_bridge_statements(monkeypatch)
    ...
    await statements.wait_for("BEGIN IMMEDIATE")
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import Any

import pytest

from epos_bridge.adapters.sqlite import connection


class StatementLog:
    """Every statement started on a traced connection, in order; safe to fill from worker threads."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.started: list[str] = []

    def record(self, sql: str) -> None:
        with self._changed:
            self.started.append(sql)
            self._changed.notify_all()

    def count(self, prefix: str) -> int:
        with self._changed:
            return self._count_locked(prefix)

    async def wait_for(self, prefix: str, count: int = 1, timeout_s: float = 30.0) -> None:
        """Until ``count`` statements starting with ``prefix`` have started (a failure guard bounds it)."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: self._count_locked(prefix) >= count, timeout_s)

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"{count} statement(s) starting {prefix!r} not started within {timeout_s} s")

    def _count_locked(self, prefix: str) -> int:
        return sum(1 for sql in self.started if sql.lstrip().upper().startswith(prefix.upper()))


def trace_bridge_statements(monkeypatch: pytest.MonkeyPatch) -> StatementLog:
    """Trace every connection the SQLite adapter opens from now on (the test's monkeypatch undoes it)."""
    log = StatementLog()
    real_connect = connection.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(log.record)
        return conn

    monkeypatch.setattr(connection, "connect", connect)
    return log
