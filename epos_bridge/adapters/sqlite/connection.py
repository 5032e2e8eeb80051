"""Safe use of a SQLite file the POS writes at the same time.

* Every connection: WAL, ``busy_timeout``, foreign keys, ``synchronous=FULL`` (a recorded
  payment must survive a power cut once we have answered Dojo).
* Blocking work runs on a small worker pool with one connection per thread, never on the
  event loop.
* Reads run in a deferred transaction (one consistent snapshot for an order and its lines);
  read-modify-write runs in ``BEGIN IMMEDIATE`` so the write lock is taken before we read
  what we decide on, and transactions stay short.
* Every SQLite failure a venue can meet (missing file, busy past the timeout, read-only,
  not a database) becomes :class:`PosUnavailable` with a sentence that says what to do.
* The file is checked on every call, so a deleted or replaced database is noticed at once
  (SQLite would happily keep reading an unlinked file) and service resumes when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from epos_bridge.adapters.sqlite.schema import SCHEMA_VERSION, SchemaTooNew, migrate, schema_version
from epos_bridge.domain.errors import EposFailure, PosUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 5.0
DEFAULT_WORKERS = 4


def configure(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Settings that change nothing on disk; WAL is switched on only once the file is known
    to be ours (:func:`enable_wal`), so a wrong file picked in Settings is left untouched."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")


def enable_wal(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        log.warning("the POS database stays in %s journal mode; WAL could not be enabled", mode)


def connect(path: Path, *, create: bool = False, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open ``path``; without ``create`` a missing file is an error, never a new empty database."""
    mode = "rwc" if create else "rw"
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    # Each worker thread keeps its own connection; check_same_thread is off only so that
    # close() can run after the pool has stopped.
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False)
    try:
        configure(conn, busy_timeout_s)
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def explain(exc: sqlite3.Error, path: Path) -> str:
    """A sentence for staff and support; never a raw traceback."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return (
            f"The POS database {path.name} is busy: another program held a write lock for longer than the "
            "timeout. Try again; if it persists, check the POS is not stuck."
        )
    if "readonly" in text or "read-only" in text:
        return f"The POS database {path} is read-only; the bridge needs write access to record payments and locks."
    if "not a database" in text or "malformed" in text:
        return f"{path} is not a usable SQLite database (it may be damaged or the wrong file)."
    if "unable to open" in text:
        return f"The POS database {path} cannot be opened: check the path in Settings and that the file exists."
    if "no such table" in text or "no such column" in text:
        return f"The POS database {path} does not have the reference schema ({exc}); run `epos-bridge db init`."
    return f"The POS database {path} failed: {exc}"


@dataclass
class _ThreadConnection:
    db: sqlite_utils.Database
    identity: tuple[int, int]
    generation: int


class PosDatabase:
    """One POS SQLite file, used from the event loop through a worker pool."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        workers: int = DEFAULT_WORKERS,
        migrate_on_open: bool = True,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._migrate_on_open = migrate_on_open
        self._local = threading.local()
        self._all: dict[sqlite3.Connection, bool] = {}
        """Every open connection and whether a call is using it right now."""
        self._all_lock = threading.Lock()
        self._generation = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pos-db")
        self._schema_checked = False

    async def read(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``work`` in a deferred transaction: one consistent snapshot."""
        return await self._submit(work, "BEGIN")

    async def write(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``work`` in ``BEGIN IMMEDIATE``: read-modify-write without lost updates."""
        return await self._submit(work, "BEGIN IMMEDIATE")

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._close_all)

    def _close_all(self) -> None:
        self._pool.shutdown(wait=True)
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    async def _submit(self, work: Callable[[sqlite_utils.Database], T], begin: str) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, work, begin)

    def _run(self, work: Callable[[sqlite_utils.Database], T], begin: str) -> T:
        db = self._connection()
        conn = db.conn
        self._mark(conn, busy=True)
        try:
            conn.execute(begin)
            try:
                result = work(db)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except EposFailure:
            raise
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not isinstance(exc, sqlite3.IntegrityError):
                self._drop_connection()
            raise PosUnavailable(explain(exc, self.path)) from exc
        finally:
            self._mark(conn, busy=False)
            held: _ThreadConnection | None = getattr(self._local, "held", None)
            if held is not None and held.generation != self._generation:
                self._drop_connection()  # the file went away during this call

    def _mark(self, conn: sqlite3.Connection, *, busy: bool) -> None:
        with self._all_lock:
            if conn in self._all:
                self._all[conn] = busy

    def _connection(self) -> sqlite_utils.Database:
        identity = self._file_identity()
        held: _ThreadConnection | None = getattr(self._local, "held", None)
        if held is not None and held.identity == identity and held.generation == self._generation:
            return held.db
        if held is not None and held.identity != identity:
            log.warning("the POS database file %s was replaced; reopening it", self.path)
            self._close_everywhere()
        self._drop_connection()
        try:
            conn = connect(self.path, busy_timeout_s=self.busy_timeout_s)
        except sqlite3.Error as exc:
            raise PosUnavailable(explain(exc, self.path)) from exc
        db = sqlite_utils.Database(conn)
        try:
            self._check_schema(db)
            enable_wal(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise PosUnavailable(explain(exc, self.path)) from exc
        except BaseException:
            conn.close()
            raise
        with self._all_lock:
            self._all[conn] = False
        self._local.held = _ThreadConnection(db, identity, self._generation)
        return db

    def _close_everywhere(self) -> None:
        """Close every idle connection to the old file now; busy ones close after their call.

        Until our last handle on a deleted or replaced file is closed, SQLite keeps that file's
        ``-wal`` beside the path, and a database restored there would replay it.
        """
        with self._all_lock:
            self._generation += 1
            for conn, busy in list(self._all.items()):
                if not busy:
                    conn.close()
                    del self._all[conn]

    def _set_aside_orphaned_wal(self) -> None:
        """A ``-wal`` left beside a deleted database would be replayed into whatever file is put
        back at the path (a restored backup). Once none of our handles is open, move it aside."""
        with self._all_lock:
            if self._all:
                return
        for suffix in ("-wal", "-shm"):
            orphan = self.path.with_name(self.path.name + suffix)
            if orphan.exists() and not self.path.exists():
                target = orphan.with_name(orphan.name + ".orphaned")
                try:
                    os.replace(orphan, target)
                    log.warning("the POS database %s is gone; set its stale %s aside as %s", self.path, suffix, target)
                except OSError as exc:
                    log.warning("could not set aside %s: %s", orphan, exc)

    def _file_identity(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._close_everywhere()
            self._drop_connection()
            self._set_aside_orphaned_wal()
            raise PosUnavailable(
                f"The POS database {self.path} is missing. Check the path in Settings, or that the POS is installed."
            ) from None
        except OSError as exc:
            raise PosUnavailable(f"The POS database {self.path} cannot be read: {exc.strerror}") from exc
        return (stat.st_dev, stat.st_ino)

    def _check_schema(self, db: sqlite_utils.Database) -> None:
        """Forward-migrate an older reference database; refuse anything that is not one."""
        try:
            version = schema_version(db)
            if version == 0:
                raise PosUnavailable(
                    f"{self.path} is not a reference POS database (no schema version). "
                    "Create one with `epos-bridge db init PATH`, or choose the adapter that matches your POS."
                )
            if version < SCHEMA_VERSION:
                if not self._migrate_on_open:
                    raise PosUnavailable(
                        f"The POS database {self.path} is at an older schema; run `epos-bridge db init`."
                    )
                log.info("migrating the POS database %s from schema %d to %d", self.path, version, SCHEMA_VERSION)
                migrate(db)
            elif version > SCHEMA_VERSION:
                migrate(db)  # raises SchemaTooNew with the explanation
        except SchemaTooNew as exc:
            raise PosUnavailable(str(exc)) from exc
        except sqlite3.Error as exc:
            raise PosUnavailable(explain(exc, self.path)) from exc

    def _drop_connection(self) -> None:
        held: _ThreadConnection | None = getattr(self._local, "held", None)
        if held is None:
            return
        self._local.held = None
        with self._all_lock:
            self._all.pop(held.db.conn, None)
        held.db.conn.close()
