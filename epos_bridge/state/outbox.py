"""The durable POS-event outbox, in the bridge's own state database.

Changes read from the POS's change log are queued here together with how far the log was read,
in one transaction: a crash can make the bridge read a change twice (harmless: it coalesces),
never lose one. One row per entity: repeated changes waiting in the queue coalesce into one
event; ``version`` tells a delivery that raced with a newer change not to delete it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from epos_bridge.ports import PosChange, QueuedEvent
from epos_bridge.state.database import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS pos_event_outbox (
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    first_queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (entity, entity_id)
);
CREATE INDEX IF NOT EXISTS pos_event_outbox_due ON pos_event_outbox(next_attempt_at);
CREATE TABLE IF NOT EXISTS pos_change_cursor (
    source TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""


class OutboxStore(StateStore):
    schema = SCHEMA
    synchronous = "NORMAL"
    """No fsync per queued or delivered event. After a power loss (kill -9 loses nothing: the WAL
    is in the OS's cache) the last commits may be rolled back, and each way is safe: a delivered
    event comes back and is sent again (OrderUpdated says "read it again", twice is harmless); a
    queued batch goes with the cursor that covered it, so the relay reads those changes from the
    POS's change log again. The one thing that must not happen, the POS forgetting changes
    whose queueing was rolled back, cannot: the enqueue before a forget is ``durable`` (FULL)."""

    async def cursor(self, source: str) -> int | None:
        def work() -> int | None:
            row = self._db().execute("SELECT seq FROM pos_change_cursor WHERE source = ?", (source,)).fetchone()
            return int(row[0]) if row else None

        return await self._run(work)

    async def enqueue(
        self, source: str, changes: Sequence[PosChange], through_seq: int, due_at: float, *, durable: bool = False
    ) -> None:
        """Queue the changes and move the cursor in one transaction; ``durable``: with an fsync,
        which also makes every earlier commit of this WAL durable."""

        def work() -> None:
            db = self._db()
            if durable:
                db.execute("PRAGMA synchronous = FULL")
            try:
                self._enqueue_sync(db, changes, through_seq, due_at, source)
            finally:
                if durable:
                    db.execute(f"PRAGMA synchronous = {self.synchronous}")

        await self._run(work)

    @staticmethod
    def _enqueue_sync(
        db: sqlite3.Connection, changes: Sequence[PosChange], through_seq: int, due_at: float, source: str
    ) -> None:
        with db:
            db.executemany(
                "INSERT INTO pos_event_outbox (entity, entity_id, first_queued_at, next_attempt_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (entity, entity_id) DO UPDATE SET version = version + 1",
                [(c.entity, c.entity_id, due_at, due_at) for c in changes],
            )
            db.execute(
                "INSERT INTO pos_change_cursor (source, seq) VALUES (?, ?) "
                "ON CONFLICT (source) DO UPDATE SET seq = excluded.seq",
                (source, through_seq),
            )

    async def due(self, now: float, limit: int = 50) -> list[QueuedEvent]:
        def work() -> list[QueuedEvent]:
            rows = self._db().execute(
                "SELECT entity, entity_id, version, attempts, first_queued_at FROM pos_event_outbox "
                "WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                (now, limit),
            )
            return [QueuedEvent(*row) for row in rows]

        return await self._run(work)

    async def delivered(self, event: QueuedEvent) -> None:
        """Remove it, unless a newer change arrived while it was being sent."""
        await self._run(
            lambda: self._write(
                "DELETE FROM pos_event_outbox WHERE entity = ? AND entity_id = ? AND version = ?",
                (event.entity, event.entity_id, event.version),
            )
        )

    async def failed(self, event: QueuedEvent, error: str, retry_at: float) -> None:
        await self._run(
            lambda: self._write(
                "UPDATE pos_event_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE entity = ? AND entity_id = ?",
                (error, retry_at, event.entity, event.entity_id),
            )
        )

    async def depth(self) -> int:
        return await self._run(lambda: int(self._db().execute("SELECT COUNT(*) FROM pos_event_outbox").fetchone()[0]))

    async def last_error(self) -> str | None:
        def work() -> str | None:
            row = (
                self._db()
                .execute(
                    "SELECT last_error FROM pos_event_outbox WHERE last_error IS NOT NULL "
                    "ORDER BY next_attempt_at DESC LIMIT 1"
                )
                .fetchone()
            )
            return str(row[0]) if row else None

        return await self._run(work)
