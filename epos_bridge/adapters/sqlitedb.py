"""Safe use of a SQLite file the POS writes at the same time: what every SQLite adapter shares.

* Every connection: WAL, ``busy_timeout``, foreign keys, ``synchronous=FULL`` (a recorded
  payment must survive a power cut once we have answered Dojo).
* Blocking work runs on a small worker pool with one connection per thread, never on the
  event loop.
* Reads run in a deferred transaction (one consistent snapshot for an order and its lines);
  read-modify-write runs in ``BEGIN IMMEDIATE`` so the write lock is taken before we read
  what we decide on, and transactions stay short.
* The transaction owns the answer's deadline (:class:`epos_bridge.ports.Deadline`): it refuses
  to start once the deadline has passed, waits for the write lock no longer than the time left,
  checks the deadline again just before ``COMMIT`` and rolls back when late. The caller waits
  for this verdict, so "failed" is only ever said of a write that did not commit.
* While someone else holds the write lock, a write call is first decided on a snapshot with
  ``PRAGMA query_only``: a replay (a payment already recorded, a lock already held) needs no
  write and is answered at once from what is committed, instead of failing after the busy
  timeout and making Dojo reverse money the till holds.
* Every SQLite failure a venue can meet (missing file, busy past the timeout, read-only,
  not a database) becomes :class:`PosUnavailable` with a sentence that says what to do: naming
  the file for the venue, and without its path or name for Dojo (:func:`unavailable`).
* The file is checked on every call, so a deleted or replaced database is noticed at once
  (SQLite would happily keep reading an unlinked file) and service resumes when it is back.

An adapter subclasses :class:`SqliteFile` for its own schema check (:meth:`SqliteFile.check_schema`,
run once per new connection) and its own words for a schema that does not fit
(:attr:`SqliteFile.schema_hint`). The reference adapter's ``adapters/sqlite/connection.py`` and
the mapped-SQL adapter ``adapters/sqlmap`` both do; neither imports the other.
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

from epos_bridge.domain.errors import EposFailure, PosUnavailable
from epos_bridge.ports import Deadline

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


def _is_read_only(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


DEFAULT_SCHEMA_HINT = "check that this file is the POS database the adapter expects"


def explain(exc: sqlite3.Error, path: Path, schema_hint: str = DEFAULT_SCHEMA_HINT) -> str:
    """A sentence for staff and support; never a raw traceback. ``schema_hint`` says what to do
    when a table or column the adapter needs is missing. It names the file: for the venue only
    (:func:`unavailable` is what a request answers with)."""
    return _explanations(exc, path, schema_hint)[0]


def unavailable(exc: sqlite3.Error, path: Path, schema_hint: str = DEFAULT_SCHEMA_HINT) -> PosUnavailable:
    """:class:`PosUnavailable` for ``exc``: :func:`explain`'s sentence for the venue, and the same
    without the file's path or name for Dojo."""
    local, public = _explanations(exc, path, schema_hint)
    return PosUnavailable(local, public=public)


BUSY_WORDS = (
    "is busy: another program held a write lock for longer than the timeout. Try again; if it persists, "
    "check the POS is not stuck."
)
READ_ONLY_WORDS = "is read-only; the bridge needs write access to record payments and locks."
NOT_A_DATABASE_WORDS = "is not a usable SQLite database (it may be damaged or the wrong file)."
CANNOT_OPEN_WORDS = "check the path in Settings and that the file exists."


def _explanations(exc: sqlite3.Error, path: Path, schema_hint: str) -> tuple[str, str]:
    """(for the venue, naming the file; for Dojo, naming the problem only)."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return f"The POS database {path.name} {BUSY_WORDS}", f"The POS database {BUSY_WORDS}"
    if "readonly" in text or "read-only" in text:
        return f"The POS database {path} {READ_ONLY_WORDS}", f"The POS database {READ_ONLY_WORDS}"
    if "not a database" in text or "malformed" in text:
        return f"{path} {NOT_A_DATABASE_WORDS}", f"The POS database could not be opened: it {NOT_A_DATABASE_WORDS}"
    if "unable to open" in text:
        return (
            f"The POS database {path} cannot be opened: {CANNOT_OPEN_WORDS}",
            f"The POS database could not be opened: {CANNOT_OPEN_WORDS}",
        )
    if "no such table" in text or "no such column" in text:
        return (
            f"The POS database {path} is missing what the adapter reads ({exc}): {schema_hint}.",
            f"The POS database is missing what the adapter reads ({exc}): {schema_hint}.",
        )
    return f"The POS database {path} failed: {exc}", f"The POS database failed: {exc}"


@dataclass
class _ThreadConnection:
    db: sqlite_utils.Database
    identity: tuple[int, int]
    generation: int


class SqliteFile:
    """One POS SQLite file, used from the event loop through a worker pool.

    Subclasses say what "the right file" means: :meth:`check_schema` runs on every new
    connection before its first use, and :attr:`schema_hint` finishes the sentence for a missing
    table or column.
    """

    schema_hint = DEFAULT_SCHEMA_HINT

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: dict[sqlite3.Connection, bool] = {}
        """Every open connection and whether a call is using it right now."""
        self._all_lock = threading.Lock()
        self._generation = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pos-db")
        self._write_turn = threading.Lock()
        """One of our own threads at a time asks SQLite for the write lock. Without it our
        writers competed inside SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms between
        tries however soon the lock is free: at 64 payments in flight most of a payment's time
        was that sleep, and each loser also decided its payment twice (snapshot, then for real).
        Another program (the POS) still meets exactly the old path."""

    async def read(self, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None = None) -> T:
        """Run ``work`` in a deferred transaction: one consistent snapshot."""
        return await self._submit(self._run_read, work, deadline)

    async def write(self, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None = None) -> T:
        """Run ``work`` in ``BEGIN IMMEDIATE``: read-modify-write without lost updates.

        Returns only once the change is committed; raises only when nothing was written.
        ``work`` may run twice (a snapshot attempt, then under the write lock): it must be a
        pure function of what it reads, and write only through ``db``.
        """
        return await self._submit(self._run_write, work, deadline)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._close_all)

    def _close_all(self) -> None:
        self._pool.shutdown(wait=True)
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    async def _submit(
        self,
        run: Callable[[Callable[[sqlite_utils.Database], T], Deadline | None], T],
        work: Callable[[sqlite_utils.Database], T],
        deadline: Deadline | None,
    ) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run, work, deadline)

    # --- on a worker thread ---------------------------------------------------------------

    def _run_read(self, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None) -> T:
        return self._in_transaction(work, deadline, write=False)

    def _run_write(self, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None) -> T:
        return self._in_transaction(work, deadline, write=True)

    def _in_transaction(
        self, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None, *, write: bool
    ) -> T:
        if not write:
            self._refuse_if_due(deadline)
        db = self._connection()
        conn = db.conn
        self._mark(conn, busy=True)
        my_turn = False
        try:
            if write:
                # Past the deadline no write starts: _begin_write answers a replay from a
                # snapshot or refuses, and needs no turn for that.
                due = deadline is not None and deadline.passed()
                my_turn = not due and self._take_write_turn(deadline)
                if not due and not my_turn:
                    return self._answer_without_turn(db, work, deadline)
                answered, early = self._begin_write(db, work, deadline)
                if answered:
                    return early  # type: ignore[return-value]
            else:
                self._set_busy_timeout(conn, deadline)
                conn.execute("BEGIN")
            try:
                result = work(db)
                if write and deadline is not None and deadline.passed():
                    late = "took longer than the answer allows; it was rolled back and nothing was written."
                    raise PosUnavailable(
                        f"Writing to the POS database {self.path.name} {late}",
                        public=f"Writing to the POS database {late}",
                    )
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
            if _is_read_only(exc):
                # SQLite opens a file it cannot write read-only, silently, for the connection's
                # life: every connection opened meanwhile must go, or writes keep failing on
                # some threads after write access is back.
                self._close_everywhere()
            if not isinstance(exc, sqlite3.IntegrityError):
                self._drop_connection()
            raise self.unavailable(exc) from exc
        finally:
            if my_turn:
                self._write_turn.release()
            self._mark(conn, busy=False)
            held: _ThreadConnection | None = getattr(self._local, "held", None)
            if held is not None and held.generation != self._generation:
                self._drop_connection()  # the file went away during this call

    def _take_write_turn(self, deadline: Deadline | None) -> bool:
        """Wait for our writers' turn no longer than SQLite would wait for its lock."""
        wait_s = self.busy_timeout_s if deadline is None else max(0.0, min(self.busy_timeout_s, deadline.remaining()))
        return self._write_turn.acquire(timeout=wait_s)

    def _answer_without_turn(
        self, db: sqlite_utils.Database, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None
    ) -> T:
        """Our own writers held the turn past the wait: a call that needs no write (a replay) is
        answered from the snapshot; any other is refused, nothing written."""
        answered, result = self._decide_on_snapshot(db, work, deadline)
        if answered:
            return result  # type: ignore[return-value]
        raise self.unavailable(sqlite3.OperationalError("database is locked"))

    def _begin_write(
        self, db: sqlite_utils.Database, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None
    ) -> tuple[bool, T | None]:
        """Take the write lock; ``(True, result)`` when a snapshot already answered the call.

        Once the deadline has passed no write starts, but a call that needs none (a retry that
        queued behind the attempt it repeats) is still answered from what that attempt committed.
        """
        conn = db.conn
        if deadline is None or not deadline.passed():
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
                return False, None
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
        answered, result = self._decide_on_snapshot(db, work, deadline)
        if answered:
            return True, result
        self._refuse_if_due(deadline)
        self._set_busy_timeout(conn, deadline)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc) and deadline is not None and deadline.passed():
                raise self._busy_until_due() from exc
            raise
        return False, None

    def _decide_on_snapshot(
        self, db: sqlite_utils.Database, work: Callable[[sqlite_utils.Database], T], deadline: Deadline | None
    ) -> tuple[bool, T | None]:
        """Run ``work`` read-only; ``(False, None)`` when it wants to write or fails.

        A failure is not answered from the snapshot: under the write lock the POS may have
        released the order by then, and an error makes Dojo reverse a payment.
        """
        conn = db.conn
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")  # readers seldom wait
        conn.execute("PRAGMA query_only = 1")
        try:
            conn.execute("BEGIN")
            try:
                result = work(db)
            except (EposFailure, sqlite3.Error):
                return False, None
            finally:
                conn.execute("ROLLBACK")
            return True, result
        finally:
            conn.execute("PRAGMA query_only = 0")

    def _set_busy_timeout(self, conn: sqlite3.Connection, deadline: Deadline | None) -> None:
        wait_s = self.busy_timeout_s if deadline is None else max(0.0, min(self.busy_timeout_s, deadline.remaining()))
        conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")

    def _refuse_if_due(self, deadline: Deadline | None) -> None:
        if deadline is not None and deadline.passed():
            raise self._busy_until_due()

    def _busy_until_due(self) -> PosUnavailable:
        words = (
            "stayed busy until the answer was due; nothing was written. "
            "Try again; if it persists, check the POS is not stuck."
        )
        return PosUnavailable(f"The POS database {self.path.name} {words}", public=f"The POS database {words}")

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
            conn = self.open_connection()
        except sqlite3.Error as exc:
            raise self.unavailable(exc) from exc
        db = sqlite_utils.Database(conn)
        try:
            self.check_schema(db)
            enable_wal(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self.unavailable(exc) from exc
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
                f"The POS database {self.path} is missing. Check the path in Settings, or that the POS is installed.",
                public="The POS database could not be opened: it is missing. Check the path in Settings, or that the "
                "POS is installed.",
            ) from None
        except OSError as exc:
            raise PosUnavailable(
                f"The POS database {self.path} cannot be read: {exc.strerror}",
                public=f"The POS database could not be opened: it cannot be read ({exc.strerror}).",
            ) from exc
        return (stat.st_dev, stat.st_ino)

    def open_connection(self) -> sqlite3.Connection:
        """A new connection to the file (never creating it); a subclass may open it its own way."""
        return connect(self.path, busy_timeout_s=self.busy_timeout_s)

    def check_schema(self, db: sqlite_utils.Database) -> None:
        """Refuse a file that is not the database this adapter serves (raise :class:`PosUnavailable`);
        runs on a worker thread, on each new connection, before its first use."""

    def explain(self, exc: sqlite3.Error) -> str:
        return explain(exc, self.path, self.schema_hint)

    def unavailable(self, exc: sqlite3.Error) -> PosUnavailable:
        return unavailable(exc, self.path, self.schema_hint)

    def _drop_connection(self) -> None:
        held: _ThreadConnection | None = getattr(self._local, "held", None)
        if held is None:
            return
        self._local.held = None
        with self._all_lock:
            self._all.pop(held.db.conn, None)
        held.db.conn.close()


def file_problem(location: Path, what: str) -> str | None:
    """What is wrong with ``location`` as a SQLite POS database before opening it, in words
    (``what``: "a reference POS database", "a POS database"); ``None`` when it may be one."""
    if location.is_dir():
        return f"{location} is a folder; choose the POS database file inside it."
    if location.is_file() and location.stat().st_size == 0:
        return f"{location} is empty: it is not {what}."
    return None
