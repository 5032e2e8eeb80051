"""A POS's tables on a database server (MariaDB, MySQL or PostgreSQL), through SQLAlchemy Core.

The same promises as :mod:`epos_bridge.adapters.sqlitedb` makes of a SQLite file, kept the way a
server allows. The transaction flow below is written once; what differs between the servers
(how a transaction starts, how a statement is bounded, what an error means) is one small
:class:`ServerEngine` each.

* **The transaction owns the deadline.** Every statement is bounded by the time left
  (``max_statement_time`` and ``innodb_lock_wait_timeout`` per session on MariaDB,
  ``innodb_lock_wait_timeout``/``max_execution_time`` on MySQL, ``SET LOCAL lock_timeout`` and
  ``statement_timeout`` inside the transaction on PostgreSQL); no write starts once the
  deadline has passed, and one still running at it is rolled back before ``COMMIT``.
* **Decided on what is committed.** A write runs ``SERIALIZABLE``. On InnoDB that reads every
  row the payable check looks at under a shared lock, so the POS cannot change the bill between
  the check and the payment row. PostgreSQL's is serialisable snapshot isolation: nothing is
  locked for a read, and a transaction that would break serial order with another serialisable
  one fails (40001) and is run again, so the POS's own serialisable transactions cannot change
  the bill unseen either. (PostgreSQL checks serial order among serialisable transactions
  only: a POS writing at READ COMMITTED can change the bill while the bridge's transaction
  runs without either seeing the other, as two of its own transactions can; where that
  matters, ``ALTER ROLE … SET default_transaction_isolation = 'serializable'`` for the POS.) The
  paymentIntentId's primary key in ``EPOS_BRIDGE_PAYMENTS`` is written in the same transaction
  as the POS's payment row. A deadlock or serialisation failure rolls back everything and is
  retried while time is left.
* **A replay never waits for the POS.** When the POS holds a lock past the first short wait,
  the call is decided once more on a read-only consistent snapshot: a payment already recorded,
  a lock already held, is answered from it at once (the body must then write nothing). The
  first wait takes at most half the time left, and the snapshot's reads are not cut short by
  the deadline (:data:`SNAPSHOT_STATEMENT_S`).
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, CursorResult, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

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
snapshot (a replay answers at once from there); then it waits for the rest of the deadline.
Never more than half the time left, so that the snapshot has the other half."""
SNAPSHOT_STATEMENT_S = 1.0
"""The least time each statement of that snapshot is given, even once the answer is due: it
waits for no lock and writes nothing, and the answer it finds (a payment the till holds) is the
one that agrees with the till, where running out of time would tell Dojo an error for it."""
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
    if backend not in ("mysql", "mariadb", "postgresql"):
        raise PosUnavailable(f"the POS database server {backend} is not supported: MariaDB, MySQL or PostgreSQL")
    if url.get_driver_name() in ("", "mysqldb") and backend in ("mysql", "mariadb"):
        url = url.set(drivername=f"{backend}+pymysql")
    if url.get_driver_name() in ("", "psycopg2") and backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the driver the bridge ships (epos-bridge[postgres])
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
UNREACHABLE = "unreachable"
"""No connection could be made (server down, wrong address)."""
REFUSED = "refused"
"""The server refused the user name or password."""
NO_DATABASE = "no_database"
"""The server has no database of that name."""
DISK_FULL = "disk_full"
READ_ONLY = "read_only"
"""The bridge may not write here (privileges, a read-only server), or a snapshot attempt wanted to."""
MISSING = "missing"
"""A table or column the mapping names is not there."""


class ServerEngine(ABC):
    """What differs between the database servers, and only that: how a transaction starts (a
    serialisable write, a read-only consistent snapshot, the mapping's check), how every
    statement in it is bounded by the time left, and what the server's errors mean. The
    transaction flow (:class:`ServerDatabase`) is written once, over these."""

    def identified(self, conn: Connection) -> ServerEngine:
        """This engine, told apart further where one protocol serves two servers."""
        return self

    @abstractmethod
    def begin_write(self, conn: Connection, seconds: float) -> None: ...

    @abstractmethod
    def begin_snapshot(self, conn: Connection, seconds: float) -> None: ...

    @abstractmethod
    def begin_check(self, conn: Connection) -> None:
        """A transaction for the mapping's check (``EXPLAIN`` of writes, never run: rolled back)."""

    @abstractmethod
    def problem(self, exc: DBAPIError) -> str | None:
        """What went wrong, as one of the names above; ``None`` when none of them."""

    @abstractmethod
    def detail(self, exc: DBAPIError) -> str:
        """The server's own words (never carrying the password)."""

    def kind(self, exc: DBAPIError) -> str | None:
        """What the transaction flow does about it: :data:`RETRY`, :data:`LOCK_WAIT`, :data:`LOST`."""
        if exc.connection_invalidated:
            return LOST
        found = self.problem(exc)
        return found if found in (RETRY, LOCK_WAIT, LOST) else None


def _seconds(wait_s: float) -> float:
    return max(0.05, wait_s)


_MYSQL_PROBLEMS: dict[int, str] = {
    **dict.fromkeys((2003, 2002, 2005), UNREACHABLE),
    1045: REFUSED,
    1049: NO_DATABASE,
    1213: RETRY,
    **dict.fromkeys((1205, 1969, 3024, 3572), LOCK_WAIT),
    **dict.fromkeys((1021, 1114, 1030, 28), DISK_FULL),
    **dict.fromkeys((1142, 1143, 1044, 1290, 1792, 1836), READ_ONLY),
    **dict.fromkeys((1146, 1054), MISSING),
}

_POSTGRESQL_PROBLEMS: dict[str, str] = {
    **dict.fromkeys(("40001", "40P01"), RETRY),  # serialization_failure, deadlock_detected
    **dict.fromkeys(("55P03", "57014"), LOCK_WAIT),  # lock_not_available, query_canceled (the bound)
    **dict.fromkeys(("25006", "42501"), READ_ONLY),  # read_only_sql_transaction, insufficient_privilege
    **dict.fromkeys(("28P01", "28000"), REFUSED),  # invalid_password, invalid_authorization_specification
    "3D000": NO_DATABASE,  # invalid_catalog_name
    **dict.fromkeys(("42P01", "42703"), MISSING),  # undefined_table, undefined_column
    "53100": DISK_FULL,
    **dict.fromkeys(("57P01", "57P02"), LOST),  # admin_shutdown (terminated), crash_shutdown
    "57P03": UNREACHABLE,  # cannot_connect_now: starting up or shutting down
}


class _MySqlFamily(ServerEngine):
    """MariaDB and MySQL: one protocol and one set of error numbers; told apart by ``VERSION()``
    (``mysql://`` may name either) for the session variables that bound a statement."""

    def identified(self, conn: Connection) -> ServerEngine:
        mariadb = "mariadb" in str(conn.exec_driver_sql("SELECT VERSION()").scalar()).lower()
        return MARIADB if mariadb else MYSQL

    def _limit(self, conn: Connection, seconds: float) -> None:
        """The bound both servers take: lock waits, in whole seconds. Before the first connection
        tells them apart (``identified``) nothing runs on this; each server bounds more finely."""
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {max(1, math.ceil(_seconds(seconds)))}")

    def begin_write(self, conn: Connection, seconds: float) -> None:
        self._limit(conn, seconds)
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        conn.exec_driver_sql("START TRANSACTION")

    def begin_snapshot(self, conn: Connection, seconds: float) -> None:
        self._limit(conn, seconds)
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def begin_check(self, conn: Connection) -> None:
        conn.exec_driver_sql("START TRANSACTION")

    @staticmethod
    def code(exc: DBAPIError) -> int | None:
        args = getattr(exc.orig, "args", ())
        return args[0] if args and isinstance(args[0], int) else None

    def problem(self, exc: DBAPIError) -> str | None:
        code = self.code(exc)
        return _MYSQL_PROBLEMS.get(code) if code is not None else None

    def detail(self, exc: DBAPIError) -> str:
        return str(getattr(exc.orig, "args", ("",))[-1] if getattr(exc.orig, "args", None) else exc.orig)


class _MariaDb(_MySqlFamily):
    def identified(self, conn: Connection) -> ServerEngine:
        return self

    def _limit(self, conn: Connection, seconds: float) -> None:
        seconds = _seconds(seconds)
        whole = max(1, math.ceil(seconds))
        conn.exec_driver_sql(f"SET SESSION max_statement_time = {seconds:.3f}, innodb_lock_wait_timeout = {whole}")


class _MySql(_MySqlFamily):
    def identified(self, conn: Connection) -> ServerEngine:
        return self

    def _limit(self, conn: Connection, seconds: float) -> None:
        seconds = _seconds(seconds)
        whole = max(1, math.ceil(seconds))
        conn.exec_driver_sql(
            f"SET SESSION innodb_lock_wait_timeout = {whole}, max_execution_time = {int(seconds * 1000)},"
            " information_schema_stats_expiry = 0"
        )


class _PostgreSql(ServerEngine):
    """PostgreSQL through psycopg 3: psycopg itself sends the ``BEGIN`` (``ISOLATION LEVEL …``,
    ``READ ONLY``) before the transaction's first statement, from the connection's settings;
    the pool puts them back when the connection returns. The bounds are ``SET LOCAL`` (through
    ``set_config(…, true)``, one statement): they end with the transaction."""

    # libpq reports a failed connection without its SQLSTATE, in words only (English here; a
    # server with another lc_messages says them otherwise, and is then "cannot be reached").
    _CONNECT_WORDS = (
        ("password authentication failed", REFUSED),
        ("no pg_hba.conf entry", REFUSED),
        ('role "', REFUSED),  # role "…" does not exist
        ('database "', NO_DATABASE),  # database "…" does not exist
    )

    def _begin(self, conn: Connection, level: str, read_only: bool, seconds: float) -> None:
        conn.execution_options(isolation_level=level, postgresql_readonly=read_only)
        ms = f"{int(_seconds(seconds) * 1000)}ms"
        conn.exec_driver_sql(
            f"SELECT set_config('lock_timeout', '{ms}', true), set_config('statement_timeout', '{ms}', true)"
        )

    def begin_write(self, conn: Connection, seconds: float) -> None:
        # SERIALIZABLE is SSI: nothing waits for a reader; a transaction that would break
        # serial order fails with 40001 (at any statement or at COMMIT), which is RETRY.
        self._begin(conn, "SERIALIZABLE", False, seconds)

    def begin_snapshot(self, conn: Connection, seconds: float) -> None:
        self._begin(conn, "REPEATABLE READ", True, seconds)

    def begin_check(self, conn: Connection) -> None:
        conn.execution_options(isolation_level="READ COMMITTED", postgresql_readonly=False)

    @staticmethod
    def sqlstate(exc: DBAPIError) -> str | None:
        found = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return str(found) if found else None

    def problem(self, exc: DBAPIError) -> str | None:
        state = self.sqlstate(exc)
        if state is not None:
            return _POSTGRESQL_PROBLEMS.get(state, LOST if state.startswith("08") else None)
        if isinstance(exc, OperationalError):  # no SQLSTATE: the connection failed or broke
            said = str(exc.orig)
            return next((problem for words, problem in self._CONNECT_WORDS if words in said), UNREACHABLE)
        return None

    def detail(self, exc: DBAPIError) -> str:
        primary = getattr(getattr(exc.orig, "diag", None), "message_primary", None)
        if primary:
            return str(primary)
        lines = str(exc.orig).strip().splitlines()
        return lines[0] if lines else ""


MARIADB: ServerEngine = _MariaDb()
MYSQL: ServerEngine = _MySql()
POSTGRESQL: ServerEngine = _PostgreSql()
_MYSQL_OR_MARIADB: ServerEngine = _MySqlFamily()


def engine_of(url: URL) -> ServerEngine:
    """The engine a URL names; MariaDB and MySQL are told apart on the first connection."""
    return POSTGRESQL if url.get_backend_name() == "postgresql" else _MYSQL_OR_MARIADB


def _explain(exc: DBAPIError, where: str, server: ServerEngine) -> tuple[str, str]:
    """(for the venue, naming the server; for Dojo, the problem only). Never the password."""
    problem = server.problem(exc)
    detail = server.detail(exc)
    if problem == UNREACHABLE or exc.connection_invalidated:
        words = "cannot be reached; check the server is running and the address in Settings."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if problem == REFUSED:
        words = "refused the bridge's user name or password; check them in Settings."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if problem == NO_DATABASE:
        words = "has no such database; check the database name in Settings."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if problem == LOCK_WAIT:
        return (
            f"The POS database ({where}) is busy: another program held a lock for longer than the answer allows.",
            "The POS database is busy: another program held a lock for longer than the answer allows.",
        )
    if problem == DISK_FULL:
        words = "is out of disk space; nothing was written. Free space on the server."
        return f"The POS database ({where}) {words}", f"The POS database server {words}"
    if problem == READ_ONLY:
        words = "does not let the bridge write; it needs write access to record payments and locks."
        return f"The POS database ({where}) {words}", f"The POS database {words}"
    if problem == MISSING:
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
        local, public = _explain(exc, where_of(url), engine_of(url))
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
        self.server = engine_of(url)
        """The engine's own pieces; MariaDB and MySQL told apart on the first connection."""
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
            left = self._time_left(deadline)
            wait_s = min(FIRST_WAIT_S, left / 2) if first else left
            first = False
            try:
                return self._attempt_write(work, deadline, wait_s)
            except DBAPIError as exc:
                kind = self.server.kind(exc)
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
                if self.server.problem(exc) == MISSING:
                    self._fits = False
                raise self.unavailable(exc) from exc

    def _attempt_write(self, work: Callable[[ServerSession], T], deadline: Deadline | None, wait_s: float) -> T:
        with self._engine.connect() as conn:
            self._ensure_fits(conn)
            self.server.begin_write(conn, wait_s)
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
                if self.server.kind(exc) != LOST:
                    raise
                return self._answer_after_lost_commit(work, deadline, exc)
            return result

    def _answer_after_lost_commit(
        self, work: Callable[[ServerSession], T], deadline: Deadline | None, lost: DBAPIError
    ) -> T:
        """The ``COMMIT`` went out and its answer never came: learn on a new connection whether
        it committed before saying anything. A snapshot that answers the call without writing
        (the payment is there) is the answer. Only two findings prove nothing committed: the
        call wanted to write (the read-only snapshot refused it), or the domain refused it on
        what is committed (a recorded payment is always answered as a replay). Anything else
        (the server still away, the POS database unreadable) says nothing, so the bridge keeps
        looking; only then is the write tried again, while time is left."""
        log.warning("the POS database connection dropped during COMMIT (%s); finding out whether it committed", lost)
        given_up_at = time.monotonic() + OUTCOME_WAIT_S
        while True:
            try:
                answered, result = self._on_snapshot(work, None, failures_answer=True)
            except PosUnavailable as exc:
                unknown: Exception = exc
            except EposFailure:
                answered, result = False, None  # refused on what committed: it did not
                break
            except DBAPIError as exc:
                if self.server.problem(exc) == READ_ONLY:
                    answered, result = False, None  # it wants to write: it did not commit
                    break
                unknown = exc
            else:
                break
            if time.monotonic() >= given_up_at:
                raise PosUnavailable(
                    f"The POS database ({self.where}) dropped the connection while committing and has not "
                    "come back: whether the last write was kept is not known yet. It is looked up again when "
                    "Dojo retries.",
                    public="The POS database dropped the connection while committing; the write is looked up "
                    "again when retried.",
                ) from unknown
            time.sleep(0.2)
        if answered:
            return result  # type: ignore[return-value]
        self._refuse_if_due(deadline)
        return self._run_write(work, deadline)

    def _decide_on_snapshot(
        self, work: Callable[[ServerSession], T], deadline: Deadline | None
    ) -> tuple[bool, T | None]:
        """``work`` on a read-only snapshot: ``(False, None)`` when it wants to write or fails (a
        failure is not answered from a snapshot: under the lock the POS may have released the
        order by then, and an error makes Dojo reverse a payment)."""
        try:
            return self._on_snapshot(work, deadline, failures_answer=False, at_least_s=SNAPSHOT_STATEMENT_S)
        except DBAPIError:
            return False, None

    def _on_snapshot(
        self,
        work: Callable[[ServerSession], T],
        deadline: Deadline | None,
        *,
        failures_answer: bool,
        at_least_s: float = 0.0,
    ) -> tuple[bool, T | None]:
        with self._engine.connect() as conn:
            self._ensure_fits(conn)
            self.server.begin_snapshot(conn, max(at_least_s, self._time_left(deadline)))
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
        self.server = self.server.identified(conn)
        if self._fits or self._check is None:
            return
        with self._fits_lock:
            if self._fits:
                return
            self.server.begin_check(conn)  # EXPLAIN of a write, never run: rolled back
            try:
                problem = self._check(ServerSession(conn))
            finally:
                conn.rollback()
            if problem is not None:
                public = f"The POS database does not fit the mapping {self.mapping.name}; check it with Settings' Test."
                raise PosUnavailable(problem, public=public)
            self._fits = True

    def _time_left(self, deadline: Deadline | None) -> float:
        """What a statement may wait: the call's time left, or the lock wait of one without a deadline."""
        return self.lock_wait_s if deadline is None else max(0.0, deadline.remaining())

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
        local, public = _explain(exc, self.where, self.server)
        return PosUnavailable(local, public=public)
