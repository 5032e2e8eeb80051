"""A POS's tables on a database server (MariaDB/MySQL; PostgreSQL next), through SQLAlchemy Core.

The same promises as :mod:`epos_bridge.adapters.sqlitedb` makes of a SQLite file, kept the way a
server allows:

* **The transaction owns the deadline.** Every statement is bounded by the time left
  (``max_statement_time`` and ``innodb_lock_wait_timeout`` per session on MariaDB,
  ``innodb_lock_wait_timeout``/``max_execution_time`` on MySQL); no write starts once the
  deadline has passed, and one still running at it is rolled back before ``COMMIT``.
* **Decided on what is committed, under locks.** A write runs ``SERIALIZABLE``: InnoDB then reads
  every row the payable check looks at under a shared lock, so the POS cannot change the bill
  between the check and the payment row, and the paymentIntentId's primary key in
  ``EPOS_BRIDGE_PAYMENTS`` is written in the same transaction as the POS's payment row. A
  deadlock or serialisation failure rolls back everything and is retried while time is left.
* **A replay never waits for the POS.** When the POS holds a lock past the first short wait,
  the call is decided once more on a read-only consistent snapshot: a payment already recorded,
  a lock already held, is answered from it at once (the body must then write nothing).
* **A lost connection is answered from what committed.** When the link drops during
  ``COMMIT`` nobody knows whether it committed: the bridge reconnects and decides the call again
  on a snapshot, which finds the payment (it committed: the replay's answer) or wants to write it
  (it did not: the write is tried again while time is left). Dojo is never told "failed" of a
  write that may have committed (:data:`OUTCOME_WAIT_S`).
* **Every failure a venue meets** (server down, wrong password, unknown database, killed
  connection, disk full, a lock held too long) is :class:`PosUnavailable` with words that say
  what to do, naming the server for the venue and not for Dojo. The password is never in them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, CursorResult, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.domain.errors import EposFailure, PosUnavailable
from epos_bridge.ports import Deadline

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_WORKERS = 4
"""Connections in the pool: a till has a handful of requests in flight, never hundreds."""
DEFAULT_LOCK_WAIT_S = 5.0
"""How long a statement may wait for a lock when the call has no deadline of its own."""
FIRST_WAIT_S = 1.0
"""How long a write first waits for a lock the POS holds before the call is decided on a
snapshot (a replay answers at once from there); then it waits for the rest of the deadline."""
OUTCOME_WAIT_S = 60.0
"""How long, after a ``COMMIT`` whose answer was lost, the bridge keeps reconnecting to learn
whether it committed, before it gives up and says it could not tell (never "failed")."""
CONNECT_TIMEOUT_S = 5

SERVER_URL = re.compile(r"^(mysql|mariadb|postgresql)(\+\w+)?://", re.IGNORECASE)


def is_server_url(location: str | Path) -> bool:
    """``EPOS_BRIDGE_DB`` names a database server (a SQLAlchemy URL), not a file."""
    return bool(SERVER_URL.match(str(location)))


def server_url(location: str, password: str | None = None) -> URL:
    """The URL with the password from the keyring (a password in the URL itself is refused:
    settings files and logs would carry it)."""
    try:
        url = make_url(location)
    except (SQLAlchemyError, ValueError) as exc:
        raise PosUnavailable(f"the POS database address {location!r} is not a database URL: {exc}") from None
    if url.password is not None:
        raise PosUnavailable(
            "the POS database address must not carry a password: keep it in the OS keyring (Settings, or "
            "`epos-bridge db password`)",
        )
    backend = url.get_backend_name()
    if backend not in ("mysql", "mariadb"):
        raise PosUnavailable(f"the POS database server {backend} is not supported yet: MariaDB or MySQL")
    if url.get_driver_name() in ("", "mysqldb") and backend in ("mysql", "mariadb"):
        url = url.set(drivername=f"{backend}+pymysql")
    return url.set(password=password) if password else url


def where_of(url: URL) -> str:
    """The server and database as a venue reads them: no user's password, ever."""
    port = f":{url.port}" if url.port else ""
    return f"{url.get_backend_name()} server {url.host or 'localhost'}{port}, database {url.database or '?'}"


# --- statements ------------------------------------------------------------------------------

_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\?")


@lru_cache(maxsize=2048)
def _statement(sql: str, positional: bool) -> sa.TextClause:
    """``sql`` as SQLAlchemy text; the bridge's ``?`` placeholders (outside quotes) become
    ``:p0`` … in order. Cached: the bridge runs the same few hundred statements all day."""
    if positional:
        count = iter(range(10_000))
        sql = _QUOTED_OR_MARK.sub(lambda m: f":p{next(count)}" if m.group(0) == "?" else m.group(0), sql)
    return sa.text(sql)


class ServerCursor:
    """The :class:`~epos_bridge.adapters.sql_session.Cursor` of one statement's result."""

    def __init__(self, result: CursorResult[Any]) -> None:
        self._result = result

    @property
    def lastrowid(self) -> int | None:
        try:
            found = self._result.lastrowid
        except (SQLAlchemyError, AttributeError):
            return None
        return int(found) if found else None

    @property
    def rowcount(self) -> int:
        return int(self._result.rowcount)

    @property
    def description(self) -> Any:
        return self._result.cursor.description if self._result.returns_rows and self._result.cursor else None

    def fetchone(self) -> Any:
        return self._result.fetchone() if self._result.returns_rows else None

    def fetchall(self) -> list[Any]:
        return list(self._result.fetchall()) if self._result.returns_rows else []


class ServerSession:
    """One transaction on one server connection, as :class:`~epos_bridge.adapters.sql_session.Sql`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> ServerCursor:
        if parameters is None or isinstance(parameters, dict):
            return ServerCursor(self.conn.execute(_statement(sql, False), parameters or {}))
        bound = {f"p{n}": value for n, value in enumerate(parameters)}
        return ServerCursor(self.conn.execute(_statement(sql, True), bound))

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        for row in cursor.fetchall():
            yield dict(zip(names, row, strict=True))


# --- what went wrong ------------------------------------------------------------------------

RETRY = "retry"
"""Deadlock or serialisation failure: everything was rolled back; run the whole call again."""
LOCK_WAIT = "lock_wait"
"""A lock held (by the POS) longer than the statement could wait."""
LOST = "lost"
"""The connection dropped (killed, server restarted)."""

_MYSQL_KINDS = {1213: RETRY, 1205: LOCK_WAIT, 1969: LOCK_WAIT, 3024: LOCK_WAIT, 3572: LOCK_WAIT}


def error_code(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def kind_of(exc: DBAPIError) -> str | None:
    if exc.connection_invalidated:
        return LOST
    code = error_code(exc)
    if code in (2003, 2002):
        return None  # cannot connect at all: said as such (_explain)
    return _MYSQL_KINDS.get(code) if code is not None else None


def _explain(exc: DBAPIError, where: str) -> tuple[str, str]:
    """(for the venue, naming the server; for Dojo, the problem only). Never the password."""
    code = error_code(exc)
    detail = str(getattr(exc.orig, "args", ("",))[-1] if getattr(exc.orig, "args", None) else exc.orig)
    if code in (2003, 2002, 2005) or exc.connection_invalidated:
        words = "cannot be reached; check the server is running and the address in Settings."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if code == 1045:
        words = "refused the bridge's user name or password; check them in Settings."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if code == 1049:
        words = "has no such database; check the database name in Settings."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if code in (1205, 1969, 3024, 3572):
        return (
            f"The POS database ({where}) is busy: another program held a lock for longer than the answer allows.",
            "The POS database is busy: another program held a lock for longer than the answer allows.",
        )
    if code in (1021, 1114, 1030, 28):
        words = "is out of disk space; nothing was written. Free space on the server."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if code in (1142, 1143, 1044, 1290, 1792, 1836):
        words = "does not let the bridge write; it needs write access to record payments and locks."
        return f"The POS database ({where}) {words}", f"The POS database {words}"
    if code in (1146, 1054):
        return (
            f"The POS database ({where}) is missing what the mapping reads ({detail}); check the mapping with Test.",
            f"The POS database is missing what the mapping reads ({detail}).",
        )
    return f"The POS database ({where}) failed: {detail}", f"The POS database failed: {detail}"


def _engine_for(url: URL, **options: Any) -> sa.Engine:
    """The engine, or words naming the driver to install when it is missing."""
    try:
        return sa.create_engine(url, **options)
    except ModuleNotFoundError as exc:
        extra = "mysql" if url.get_backend_name() in ("mysql", "mariadb") else "postgres"
        raise PosUnavailable(
            f"the database driver {exc.name} for {url.get_backend_name()} is not installed: install "
            f"epos-bridge[{extra}] (the installer's bundle has it)"
        ) from None


def run_setup(url: URL, work: Callable[[ServerSession], T]) -> T:
    """``work`` on its own connection with every statement committed as it runs (server DDL is:
    ``db attach``); a failure is :class:`PosUnavailable` in the venue's words."""
    engine = _engine_for(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return work(ServerSession(conn))
    except DBAPIError as exc:
        local, public = _explain(exc, where_of(url))
        raise PosUnavailable(local, public=public) from exc
    finally:
        engine.dispose()


# --- the database -----------------------------------------------------------------------------


class ServerDatabase:
    """One POS database on a server, used from the event loop through a worker pool, checked
    against a mapping the first time it is used and again after it failed to fit."""

    def __init__(
        self,
        url: URL,
        mapping: Mapping,
        *,
        workers: int = DEFAULT_WORKERS,
        lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
        check: Callable[[ServerSession], str | None] | None = None,
    ) -> None:
        self.url = url
        self.mapping = mapping
        self.where = where_of(url)
        self.path = Path(url.render_as_string(hide_password=True))
        """What the venue's status shows as the POS database (never with a password)."""
        self.lock_wait_s = lock_wait_s
        self._mariadb: bool | None = None
        self._check = check
        self._fits = False
        self._fits_lock = threading.Lock()
        self._engine = _engine_for(
            url,
            pool_size=workers,
            max_overflow=workers,  # a lost COMMIT is looked up on a second connection
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pos-server")

    async def read(self, work: Callable[[ServerSession], T], deadline: Deadline | None = None) -> T:
        """``work`` on one consistent, read-only snapshot."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run_read, work, deadline)

    async def write(self, work: Callable[[ServerSession], T], deadline: Deadline | None = None) -> T:
        """``work`` in a serialisable transaction; returns once committed, raises only when nothing
        was written. ``work`` may run more than once: a pure function of what it reads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run_write, work, deadline)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._close)

    def _close(self) -> None:
        self._pool.shutdown(wait=True)
        self._engine.dispose()

    # --- on a worker thread -------------------------------------------------------------------

    def _run_read(self, work: Callable[[ServerSession], T], deadline: Deadline | None) -> T:
        self._refuse_if_due(deadline)
        try:
            answered, result = self._on_snapshot(work, deadline, failures_answer=True)
        except DBAPIError as exc:
            raise self.unavailable(exc) from exc
        assert answered
        return result  # type: ignore[return-value]

    def _run_write(self, work: Callable[[ServerSession], T], deadline: Deadline | None) -> T:
        first = True
        while True:
            self._refuse_if_due(deadline)
            wait_s = self._wait_s(deadline, FIRST_WAIT_S if first else None)
            first = False
            try:
                return self._attempt_write(work, deadline, wait_s)
            except DBAPIError as exc:
                kind = kind_of(exc)
                if kind == RETRY or (kind == LOST and not self._due(deadline)):
                    log.info("the POS database rolled back a write (%s); trying it again", kind)
                    continue
                if kind == LOCK_WAIT:
                    answered, result = self._decide_on_snapshot(work, deadline)
                    if answered:
                        return result  # type: ignore[return-value]
                    if not self._due(deadline):
                        continue
                    raise self._busy_until_due() from exc
                if error_code(exc) in (1146, 1054):
                    self._fits = False
                raise self.unavailable(exc) from exc

    def _attempt_write(self, work: Callable[[ServerSession], T], deadline: Deadline | None, wait_s: float) -> T:
        with self._engine.connect() as conn:
            self._ensure_fits(conn)
            self._limit(conn, wait_s)
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            conn.exec_driver_sql("START TRANSACTION")
            try:
                result = work(ServerSession(conn))
                if self._due(deadline):
                    late = "took longer than the answer allows; it was rolled back and nothing was written."
                    raise PosUnavailable(
                        f"Writing to the POS database ({self.where}) {late}",
                        public=f"Writing to the POS database {late}",
                    )
            except BaseException:
                if not conn.invalidated:
                    conn.rollback()
                raise
            try:
                conn.commit()
            except DBAPIError as exc:
                if kind_of(exc) != LOST:
                    raise
                return self._answer_after_lost_commit(work, deadline, exc)
            return result

    def _answer_after_lost_commit(
        self, work: Callable[[ServerSession], T], deadline: Deadline | None, lost: DBAPIError
    ) -> T:
        """The ``COMMIT`` went out and its answer never came: learn on a new connection whether
        it committed before saying anything. A snapshot that answers the call without writing
        (the payment is there) is the answer; one that wants to write means nothing committed,
        and the write is tried again while time is left."""
        log.warning("the POS database connection dropped during COMMIT (%s); finding out whether it committed", lost)
        given_up_at = time.monotonic() + OUTCOME_WAIT_S
        while True:
            try:
                answered, result = self._decide_on_snapshot(work, None, raise_lost=True)
            except DBAPIError as exc:
                if time.monotonic() >= given_up_at:
                    raise PosUnavailable(
                        f"The POS database ({self.where}) dropped the connection while committing and has not "
                        "come back: whether the last write was kept is not known yet. It is looked up again when "
                        "Dojo retries.",
                        public="The POS database dropped the connection while committing; the write is looked up "
                        "again when retried.",
                    ) from exc
                time.sleep(0.2)
                continue
            if answered:
                return result  # type: ignore[return-value]
            self._refuse_if_due(deadline)
            return self._run_write(work, deadline)

    def _decide_on_snapshot(
        self, work: Callable[[ServerSession], T], deadline: Deadline | None, *, raise_lost: bool = False
    ) -> tuple[bool, T | None]:
        """``work`` on a read-only snapshot: ``(False, None)`` when it wants to write or fails (a
        failure is not answered from a snapshot: under the lock the POS may have released the
        order by then, and an error makes Dojo reverse a payment)."""
        try:
            return self._on_snapshot(work, deadline, failures_answer=False)
        except DBAPIError as exc:
            if raise_lost and (exc.connection_invalidated or error_code(exc) in (2003, 2002, 2013, 2006)):
                raise
            return False, None

    def _on_snapshot(
        self, work: Callable[[ServerSession], T], deadline: Deadline | None, *, failures_answer: bool
    ) -> tuple[bool, T | None]:
        with self._engine.connect() as conn:
            self._ensure_fits(conn)
            self._limit(conn, self._wait_s(deadline, None))
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                result = work(ServerSession(conn))
            except EposFailure:
                if failures_answer:
                    raise
                return False, None
            except DBAPIError as exc:
                if failures_answer or exc.connection_invalidated:
                    raise
                return False, None  # it wanted to write (read-only transaction) or could not read
            finally:
                if not conn.invalidated:
                    conn.rollback()
            return True, result

    def _ensure_fits(self, conn: Connection) -> None:
        """The mapping checked against the database once (and again after it stopped fitting)."""
        if self._mariadb is None:
            self._mariadb = "mariadb" in str(conn.exec_driver_sql("SELECT VERSION()").scalar()).lower()
        if self._fits or self._check is None:
            return
        with self._fits_lock:
            if self._fits:
                return
            conn.exec_driver_sql("START TRANSACTION")  # EXPLAIN of a write, never run: rolled back
            try:
                problem = self._check(ServerSession(conn))
            finally:
                conn.rollback()
            if problem is not None:
                public = f"The POS database does not fit the mapping {self.mapping.name}; check it with Settings' Test."
                raise PosUnavailable(problem, public=public)
            self._fits = True

    def _limit(self, conn: Connection, wait_s: float) -> None:
        """Every statement of this transaction bounded by ``wait_s``, lock waits included."""
        seconds = max(0.05, wait_s)
        whole = max(1, math.ceil(seconds))
        if self._mariadb:
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {seconds:.3f}, innodb_lock_wait_timeout = {whole}")
        else:
            conn.exec_driver_sql(
                f"SET SESSION innodb_lock_wait_timeout = {whole}, max_execution_time = {int(seconds * 1000)},"
                " information_schema_stats_expiry = 0"
            )

    def _wait_s(self, deadline: Deadline | None, cap: float | None) -> float:
        left = self.lock_wait_s if deadline is None else max(0.0, deadline.remaining())
        return left if cap is None else min(left, cap)

    @staticmethod
    def _due(deadline: Deadline | None) -> bool:
        return deadline is not None and deadline.passed()

    def _refuse_if_due(self, deadline: Deadline | None) -> None:
        if self._due(deadline):
            raise self._busy_until_due()

    def _busy_until_due(self) -> PosUnavailable:
        words = (
            "stayed busy until the answer was due; nothing was written. "
            "Try again; if it persists, check the POS is not stuck."
        )
        return PosUnavailable(f"The POS database ({self.where}) {words}", public=f"The POS database {words}")

    def unavailable(self, exc: DBAPIError) -> PosUnavailable:
        local, public = _explain(exc, self.where)
        return PosUnavailable(local, public=public)
