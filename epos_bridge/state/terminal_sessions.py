"""Card-present sessions the bridge started on a Dojo terminal, kept until their outcome is
recorded, so a restart mid-session resumes following it and records the outcome once."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from epos_bridge.domain.terminal_sessions import CounterSession
from epos_bridge.state.database import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminal_sessions (
    session_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                -- Sale | MatchedRefund | UnlinkedRefund
    terminal_id TEXT NOT NULL,
    order_id TEXT,
    payment_intent_id TEXT,
    amount_value INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome_recorded INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    lock_id TEXT                       -- the counter's lock on the order while the card is taken
);
"""


class TerminalSessionStore(StateStore):
    schema = SCHEMA

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path)
        self._clock = clock

    async def add(self, session: CounterSession) -> CounterSession:
        """Store a new session; returns it with ``started_at`` as stored."""
        now = self._clock()
        await self._run(
            lambda: self._write(
                "INSERT OR IGNORE INTO terminal_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.session_id,
                    session.kind,
                    session.terminal_id,
                    session.order_id,
                    session.payment_intent_id,
                    session.amount_value,
                    session.currency,
                    session.status,
                    int(session.outcome_recorded),
                    now,
                    now,
                    session.lock_id,
                ),
            )
        )
        return replace(session, started_at=now)

    async def rename(self, old_id: str, new_id: str, status: str) -> None:
        """A pending sale got its session id from Dojo."""
        await self._run(
            lambda: self._write(
                "UPDATE terminal_sessions SET session_id = ?, status = ?, updated_at = ? WHERE session_id = ?",
                (new_id, status, self._clock(), old_id),
            )
        )

    async def set_status(self, session_id: str, status: str, *, outcome_recorded: bool = False) -> None:
        await self._run(
            lambda: self._write(
                "UPDATE terminal_sessions SET status = ?, outcome_recorded = MAX(outcome_recorded, ?), updated_at = ? "
                "WHERE session_id = ?",
                (status, int(outcome_recorded), self._clock(), session_id),
            )
        )

    async def unfinished(self) -> list[CounterSession]:
        """Sessions whose outcome has not been recorded yet: to be followed again after a restart."""

        def work() -> list[CounterSession]:
            rows = self._db().execute(
                "SELECT session_id, kind, terminal_id, order_id, payment_intent_id, amount_value, currency, status, "
                "0, lock_id, started_at FROM terminal_sessions WHERE outcome_recorded = 0 ORDER BY started_at"
            )
            return [
                CounterSession(
                    session_id=r[0],
                    kind=r[1],
                    terminal_id=r[2],
                    order_id=r[3],
                    payment_intent_id=r[4],
                    amount_value=r[5],
                    currency=r[6],
                    status=r[7],
                    outcome_recorded=bool(r[8]),
                    lock_id=r[9],
                    started_at=r[10],
                )
                for r in rows
            ]

        return await self._run(work)
