"""The store behind answering a repeated mutating request once (``services/idempotent_serve.py``
serves through it): by (method, JSON-RPC id), durably, across restarts.

Contract §1.2 "No replay": requests in flight when the socket drops are not re-sent; Dojo
retries from its side, possibly with the same ``id``. A payment recorded twice is real money
on the wrong bill, so every mutating method is made idempotent on its id here, before the
dispatcher sees it (business-key de-duplication — ``paymentIntentId`` and friends — is the
adapter's job and complements this, because the spec does not promise that a retry reuses
the id).

What the caller may rely on:

* A repeat of an answered request — the same method, id *and* params (a digest is stored with
  the answer) — gets the stored response text with the repeat's own ``id`` (rewritten through
  JSON, never by string replacement) and does not reach the POS again.
* The same id with different params is a different request: it is served as new and logged as
  a warning (a reused id must never make Dojo believe a payment the till never recorded).
* Only successes are stored. An error answer wrote nothing (the adapters' transactions roll
  back on every failure), so serving a repeat again is safe and tells Dojo the truth as it is
  now — a stored "Conflict" replayed after the same payment landed under another id would not.
* A duplicate arriving while the first is still being served waits for the first's answer.
* Entries expire after ``lifetime_s`` (24 h by default); the table is pruned every hour.
* All SQLite work runs on one dedicated worker thread; the event loop never blocks on disk.
  Neither the lookup nor the store makes an answer wait more than :data:`STORE_WAIT_S`: past
  that the request is served without the lookup, or answered while its store write finishes in
  the background. Both are safe because the adapters also de-duplicate on business keys
  (paymentIntentId, lockId, Dojo ids, event id), which is what a retry meets if the bridge
  dies before the answer reached this table.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from epos_bridge.ports import StoredAnswer
from epos_bridge.protocol.jsonrpc import request_key

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNCHRONOUS = "NORMAL"
"""WAL without an fsync per answer, for this table only (the POS write stays ``FULL``).

* kill -9, a crash, a Windows update restart: nothing is lost. A commit is in the WAL file (the
  OS page cache) before :meth:`IdempotencyStore.put` returns; only the OS or power failing can
  drop it.
* Power loss: the last answers committed before it may be rolled back (never a torn table:
  WAL with NORMAL stays consistent). A retry of one of them finds no stored answer and is
  served again, and the adapter answers it from the POS's own durable record: the payment's
  paymentIntentId is already recorded (``domain/payments.decide_payment`` replays it, no second
  payment), a lock by its lockId, a created order by its Dojo id. That is the path every retry
  already takes when the bridge dies between the POS commit and this table, which FULL never
  closed. So FULL here bought no money guarantee, only an fsync per mutating request.
* The outbox and the payment log keep ``FULL`` (state/database.py): the outbox's cursor lets the
  relay forget POS changes, and must not be rolled back behind a forget.
"""

DEFAULT_LIFETIME_S = 24 * 3600.0
DEFAULT_PRUNE_EVERY_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answered_requests (
    method TEXT NOT NULL,
    request_key TEXT NOT NULL,      -- canonical JSON of the JSON-RPC id ("1" and 1 differ)
    response_text TEXT NOT NULL,    -- exactly what was sent, with the original id
    outcome TEXT NOT NULL,          -- "ok" or the EPOSErrorType
    trace_id TEXT NOT NULL,
    debug_message TEXT,
    answered_at REAL NOT NULL,      -- Unix seconds (wall clock: entries outlive restarts)
    PRIMARY KEY (method, request_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS answered_requests_by_time ON answered_requests (answered_at);
"""

_ADD_DIGEST = "ALTER TABLE answered_requests ADD COLUMN params_digest TEXT"
"""sha256 of (method, params); rows from before it have none and never match."""


class IdempotencyStore:
    """The durable (method, id) → answer table in the bridge's own state database."""

    def __init__(
        self,
        path: str | Path,
        *,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        prune_every_s: float = DEFAULT_PRUNE_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.lifetime_s = lifetime_s
        self.prune_every_s = prune_every_s
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None  # used only on the executor's one thread
        self._next_prune = 0.0
        self._stored: set[tuple[str, str]] = set()
        """Every (method, key) the table may hold: read at open and at each prune, added to
        before each put (only this process writes the table: one bridge per data folder). A
        request not in it, nearly every one, is looked up without a trip to the worker thread;
        one in it is looked up in the table as before."""
        self._added_meanwhile: set[tuple[str, str]] | None = None

    async def open(self) -> None:
        """Create the table if needed and drop expired entries."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idempotency-store")
        await self._run(self._open_sync)
        await self.prune()  # and reads the keys that are left (_forget_pruned_keys)

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._run(self._close_sync)
        finally:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def __aenter__(self) -> IdempotencyStore:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def get(self, method: str, request_id: Any) -> StoredAnswer | None:
        """The stored answer, or ``None`` if never answered (or expired)."""
        key = request_key(request_id)
        if self._executor is not None and (method, key) not in self._stored:
            return None
        oldest = self._clock() - self.lifetime_s
        return await self._run(lambda: self._get_sync(method, key, oldest))

    async def put(self, method: str, request_id: Any, answer: StoredAnswer) -> None:
        """Store an answer durably (committed before this returns); prunes once an hour."""
        key = request_key(request_id)
        now = self._clock()
        prune_before = None
        if now >= self._next_prune:
            self._next_prune = now + self.prune_every_s
            prune_before = now - self.lifetime_s
        self._remember_key(method, key)
        await self._run(lambda: self._put_sync(method, key, answer, now, prune_before))
        if prune_before is not None:
            await self._forget_pruned_keys()

    async def prune(self) -> int:
        """Delete expired entries; returns how many went."""
        now = self._clock()
        self._next_prune = now + self.prune_every_s
        pruned = await self._run(lambda: self._prune_sync(now - self.lifetime_s))
        await self._forget_pruned_keys()
        return pruned

    def _remember_key(self, method: str, key: str) -> None:
        self._stored.add((method, key))
        if self._added_meanwhile is not None:
            self._added_meanwhile.add((method, key))

    async def _forget_pruned_keys(self) -> None:
        """Shrink :attr:`_stored` to the table's keys. The worker reads them after every put
        queued before (one thread, in order); a put queued while it reads is added back."""
        if self._added_meanwhile is not None:
            return  # a shrink is already under way; a superset is always safe
        self._added_meanwhile = set()
        try:
            keys = await self._run(self._keys_sync)
            self._stored = keys | self._added_meanwhile
        finally:
            self._added_meanwhile = None

    async def count(self) -> int:
        """Entries currently stored, expired or not (for diagnostics and tests)."""
        return await self._run(self._count_sync)

    async def _run(self, work: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("the idempotency store is not open: call open() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    # --- on the worker thread ------------------------------------------------------------

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(answered_requests)")}
        if "params_digest" not in columns:
            db.execute(_ADD_DIGEST)
        self._db = db  # the keys it holds are read by the prune that follows (open)

    def _keys_sync(self) -> set[tuple[str, str]]:
        return {
            (method, key) for method, key in self._conn().execute("SELECT method, request_key FROM answered_requests")
        }

    def _close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the idempotency store is closed")
        return self._db

    def _get_sync(self, method: str, key: str, oldest: float) -> StoredAnswer | None:
        row = (
            self._conn()
            .execute(
                "SELECT response_text, outcome, trace_id, debug_message, params_digest FROM answered_requests"
                " WHERE method = ? AND request_key = ? AND answered_at > ?",
                (method, key, oldest),
            )
            .fetchone()
        )
        return None if row is None else StoredAnswer(*row)

    def _put_sync(self, method: str, key: str, answer: StoredAnswer, now: float, prune_before: float | None) -> None:
        db = self._conn()
        with db:  # one transaction: BEGIN … COMMIT
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO answered_requests"
                " (method, request_key, response_text, outcome, trace_id, debug_message, answered_at, params_digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (method, request_key) DO UPDATE SET response_text = excluded.response_text,"
                " outcome = excluded.outcome, trace_id = excluded.trace_id,"
                " debug_message = excluded.debug_message, answered_at = excluded.answered_at,"
                " params_digest = excluded.params_digest",
                (
                    method,
                    key,
                    answer.response_text,
                    answer.outcome,
                    answer.trace_id,
                    answer.debug_message,
                    now,
                    answer.params_digest,
                ),
            )
            if prune_before is not None:
                db.execute("DELETE FROM answered_requests WHERE answered_at <= ?", (prune_before,))

    def _prune_sync(self, before: float) -> int:
        return int(self._conn().execute("DELETE FROM answered_requests WHERE answered_at <= ?", (before,)).rowcount)

    def _count_sync(self) -> int:
        (count,) = self._conn().execute("SELECT count(*) FROM answered_requests").fetchone()
        return int(count)
