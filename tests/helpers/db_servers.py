"""Real, throwaway MariaDB and PostgreSQL servers for tests, started from the OS packages.

Why real servers: the bridge talks to a POS's own MariaDB or PostgreSQL, and what matters there
(privileges, triggers, a killed session, a server that restarts under the bridge) no fake can
show. Each server is an unprivileged instance in a temporary folder of its own: its data, its log
and its unix socket live there, it listens only on 127.0.0.1 on a free port, it reads no system
configuration, and the folder is removed when the server stops.

PostgreSQL refuses to run as root, so when the tests run as root (as in CI) every server process
runs as ``nobody`` (through ``setpriv``), in a folder owned by ``nobody`` and readable by it
alone. The servers stop at the end of the session, on interpreter exit (``atexit``), and, should
the test process die without either, by themselves (``setpriv --pdeathsig``).

Fixtures, for a test module to import: ``mariadb_server`` and ``postgresql_server`` (one server
each per session), ``mariadb_url`` and ``postgresql_url`` (a fresh database and owner per test).
When a server's binaries are missing they skip, unless ``EPOS_BRIDGE_TEST_SERVERS=required``
(as CI sets it): then they fail, naming the binary and the Debian package to install.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest
from psycopg import sql
from sqlalchemy import URL

REQUIRED_ENV = "EPOS_BRIDGE_TEST_SERVERS"
"""Set to ``required`` (CI does) and a missing server fails the tests instead of skipping them."""

ADMIN_USER = "epos_admin"
READY_TIMEOUT = 60.0
"""Seconds a server may take to accept connections: generous, a loaded CI box can be slow."""
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 5
"""A free port can be taken by someone else between our probe and the server's bind: retry."""

UNPRIVILEGED_ACCOUNT = "nobody"
"""Who runs the servers when the tests run as root (PostgreSQL refuses root; MariaDB should)."""

_SUN_PATH_MAX = 107
"""A unix socket's path must fit ``sockaddr_un.sun_path`` (108 bytes with its NUL)."""

_MARIADB_ER_NO_SUCH_THREAD = 1094


class ServerUnavailable(RuntimeError):
    """A server binary is not installed: the fixtures skip, or fail where servers are required."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(f"{binary!r} not found: install the Debian package {package!r} to run these tests")
        self.binary = binary
        self.package = package


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class _Account:
    """The unprivileged account the servers run as when the test process is root."""

    name: str
    uid: int
    gid: int


class _PortClash(Exception):
    """The server could not bind its port (someone took it after we probed it)."""


# --- finding binaries and choosing where and as whom to run ---------------------------------------


def _find(binary: str, package: str, extra_dirs: list[Path]) -> str:
    """``binary`` on PATH or in ``extra_dirs`` (``/usr/sbin`` is not on a normal user's PATH)."""
    for folder in extra_dirs:
        candidate = folder / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(binary)
    if found is None:
        raise ServerUnavailable(binary, package)
    return found


def _postgresql_bin_dirs() -> list[Path]:
    """Debian keeps each major's binaries in /usr/lib/postgresql/MAJOR/bin, off PATH: newest first."""
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return []
    majors = [p for p in root.iterdir() if p.name.isdigit() and (p / "bin").is_dir()]
    return [p / "bin" for p in sorted(majors, key=lambda p: int(p.name), reverse=True)]


def _account() -> _Account | None:
    """``None`` when the tests do not run as root: the servers then run as the test's own user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    except KeyError:
        raise RuntimeError(
            f"the tests run as root and there is no {UNPRIVILEGED_ACCOUNT!r} account to run the database servers as"
        ) from None
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _runner(account: _Account | None) -> list[str]:
    """The command prefix that runs a server process as ``account`` and ends it if we die.

    ``setpriv`` executes the server in place (its pid is the server's, so we signal the server
    itself), unlike ``runuser``, which forks under PAM. ``--pdeathsig`` makes the kernel send the
    server SIGTERM when the thread that started it dies without stopping it: start servers from
    the main thread (session fixtures are)."""
    setpriv = shutil.which("setpriv") or next(
        (str(p) for p in (Path("/usr/bin/setpriv"), Path("/bin/setpriv")) if p.is_file()), None
    )
    if setpriv is None:
        if account is not None:
            raise ServerUnavailable("setpriv", "util-linux")
        return []
    prefix = [setpriv]
    if account is not None:
        prefix += [f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups"]
    return [*prefix, "--pdeathsig=TERM", "--"]


def _can_traverse(path: Path, account: _Account) -> Path | None:
    """The first directory above ``path`` (inclusive) that ``account`` cannot enter, or ``None``."""
    for folder in [path, *path.parents]:
        st = folder.stat()
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return folder
    return None


def _make_folder(base: Path | None, prefix: str, account: _Account | None) -> Path:
    """An owner-only temporary folder for one server, owned by the account that runs it.

    Without ``base``: under the system temp dir, or /tmp if the account cannot reach that (a
    TMPDIR under /root, say). With ``base``: there, or a clear error naming what blocks it."""
    parent = Path(base) if base is not None else Path(tempfile.gettempdir())
    parent = parent.resolve()
    if account is not None:
        blocked = _can_traverse(parent, account)
        if blocked is not None and base is None:
            parent, blocked = Path("/tmp"), _can_traverse(Path("/tmp"), account)
        if blocked is not None:
            raise RuntimeError(
                f"{account.name!r} (who runs the database server) cannot enter {blocked}; "
                f"choose a base folder it can reach (every directory above it needs o+x)"
            )
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))  # mode 0700
    if account is not None:
        os.chown(folder, account.uid, account.gid)
    return folder


def _free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for port 0); the caller retries on a clash."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_env(folder: Path) -> dict[str, str]:
    """A small, predictable environment: no user's config files (HOME is the server's folder), UTC."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(folder),
        "LC_ALL": "C",
        "TZ": "UTC",
    }


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _random_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _check_name(kind: str, name: str) -> str:
    """Plain identifiers only: the same name then means the same thing to both servers and in a URL."""
    if not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r}: use letters, digits and underscores (at most 63)")
    return name


# --- the servers ------------------------------------------------------------------------------------

_LIVE: list[DbServer] = []
"""Servers started and not yet stopped: what the ``atexit`` hook stops."""


@dataclass(eq=False)
class DbServer(ABC):
    """One running throwaway server; made by :func:`start_mariadb` or :func:`start_postgresql`."""

    engine: str
    """``"mysql"`` (MariaDB) or ``"postgresql"``: the SQLAlchemy dialect name."""
    host: str
    port: int
    folder: Path = field(repr=False)
    """The server's own temporary folder: data, log, socket. Removed by :meth:`stop`."""
    admin_password: str = field(repr=False)
    admin_user: str = ADMIN_USER
    startup_seconds: float = 0.0
    """How long the last start took until the server accepted connections."""
    _account: _Account | None = field(default=None, repr=False)
    _runner: list[str] = field(default_factory=list, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    driver: ClassVar[str] = ""
    _stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- what the tests use

    def create_database(self, name: str | None = None, *, user: str | None = None, password: str | None = None) -> str:
        """Create a fresh empty database plus a login role/user that owns it (all privileges on it,
        including TRIGGER / CREATE for MariaDB); return a SQLAlchemy URL:
        mysql+pymysql://user:pw@127.0.0.1:port/db or postgresql+psycopg://user:pw@127.0.0.1:port/db.
        Names random and unique when not given; a given user must not exist yet."""
        database = _check_name("database", name or _random_name("db"))
        owner = _check_name("user", user or _random_name("u"))
        secret = password if password is not None else secrets.token_urlsafe(18)
        self._create(database, owner, secret)
        return self._url(owner, secret, database)

    def admin_url(self, database: str | None = None) -> str:
        """A SQLAlchemy URL for the server's superuser (over TCP, with its password)."""
        return self._url(self.admin_user, self.admin_password, database or self._admin_database)

    @abstractmethod
    def kill_connections(self, user: str) -> int:
        """Kill every session of `user` (MariaDB KILL CONNECTION, PostgreSQL pg_terminate_backend);
        return how many. Returns once they are gone, so a new connection is a new session."""

    def restart(self) -> None:
        """Stop (fast shutdown) and start again on the same port and data: a POS server restarting
        under the bridge. Every open connection is cut."""
        self._halt()
        try:
            self._launch()
        except _PortClash:
            raise ServerStartError(f"{self.engine}: port {self.port} was taken while the server restarted") from None

    def stop(self) -> None:
        """Stop the server and remove its folder; safe to call twice."""
        self._halt()
        with suppress(ValueError):
            _LIVE.remove(self)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the engine's part

    _admin_database: ClassVar[str | None] = None

    @abstractmethod
    def _create(self, database: str, owner: str, password: str) -> None: ...

    @abstractmethod
    def _argv(self) -> list[str]: ...

    @abstractmethod
    def _probe(self) -> None:
        """Connect once through the unix socket (ours for sure, unlike whoever holds a TCP port); raise if not ready."""

    @abstractmethod
    def _ready_errors(self) -> tuple[type[BaseException], ...]: ...

    def _after_first_start(self) -> None:  # noqa: B027 - a hook, nothing by default
        """Anything to do once, the first time the server is up (MariaDB: secure the accounts)."""

    @abstractmethod
    def _check_tcp(self) -> None:
        """Connect as the admin over TCP, as the tests will."""

    # -- shared machinery

    def _url(self, user: str, password: str, database: str | None) -> str:
        return URL.create(
            f"{self.engine}+{self.driver}",
            username=user,
            password=password,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def _start_first(self) -> None:
        """The first start: on a fresh free port, trying another when the port is taken under us."""
        for _attempt in range(PORT_ATTEMPTS):
            self.port = _free_port()
            try:
                self._launch()
            except _PortClash:
                continue
            _LIVE.append(self)
            self._after_first_start()
            self._check_tcp()
            return
        raise ServerStartError(f"{self.engine}: every one of {PORT_ATTEMPTS} free ports was taken before it could bind")

    def _launch(self) -> None:
        """Start the server process and wait, by connecting, until it accepts connections."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*self._runner, *self._argv()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_server_env(self.folder),
                cwd=self.folder,
                start_new_session=True,  # a Ctrl-C at the terminal reaches pytest, which stops us in order
            )
        process = self._process
        deadline = started + READY_TIMEOUT
        last_error: BaseException | None = None
        while True:
            if process.poll() is not None:
                self._process = None
                new_log = self.log_path.read_bytes()[offset:].decode("utf-8", errors="replace")
                if "Address already in use" in new_log:
                    raise _PortClash(self.port)
                raise ServerStartError(
                    f"{self.engine} server exited with status {process.returncode} before accepting connections; "
                    f"its log ends:\n{_tail(self.log_path)}"
                )
            try:
                self._probe()
            except self._ready_errors() as exc:
                last_error = exc
            else:
                self.startup_seconds = time.monotonic() - started
                return
            if time.monotonic() > deadline:
                self._halt()
                raise ServerStartError(
                    f"{self.engine} server did not accept connections within {READY_TIMEOUT:.0f}s "
                    f"(last error: {last_error}); its log ends:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)  # polling: the server gives no other sign that it is ready

    def _halt(self) -> None:
        """Stop the process: a clean, fast shutdown, then SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with suppress(ProcessLookupError):
                process.send_signal(self._stop_signal)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(eq=False)
class _MariaDb(DbServer):
    driver: ClassVar[str] = "pymysql"
    _stop_signal: ClassVar[signal.Signals] = signal.SIGTERM  # MariaDB's normal (fast) shutdown
    _bootstrapped: bool = field(default=False, init=False, repr=False)
    _binary: str = field(default="mariadbd", repr=False)
    _options: tuple[str, ...] = field(default=(), repr=False)

    @property
    def socket_path(self) -> Path:
        return self.folder / "mysql.sock"

    def _argv(self) -> list[str]:
        return [
            self._binary,
            *_mariadb_options(self.folder),
            *self._options,
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.folder / 'mariadbd.pid'}",
            f"--tmpdir={self.folder / 'tmp'}",
            "--max-connections=60",
            "--character-set-server=utf8mb4",
        ]

    def _ready_errors(self) -> tuple[type[BaseException], ...]:
        return (pymysql.err.Error, OSError)

    def _probe(self) -> None:
        # Before the bootstrap, root@localhost has no password (mariadb-install-db "normal" auth)
        # and can be reached only through the socket, in a folder no one else can enter.
        user, password = (self.admin_user, self.admin_password) if self._bootstrapped else ("root", "")
        conn = pymysql.connect(
            unix_socket=str(self.socket_path), user=user, password=password, connect_timeout=2, defer_connect=True
        )
        # Our own socket: pymysql leaks the one it makes when the socket file is not there yet.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(2)
            sock.connect(str(self.socket_path))
        except OSError:
            sock.close()
            raise
        conn.connect(sock)  # closes the socket itself if the handshake fails
        conn.close()

    def _after_first_start(self) -> None:
        """Make the admin account; give root a password and drop every other root and anonymous account."""
        root = pymysql.connect(unix_socket=str(self.socket_path), user="root", password="")
        with closing(root) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (self.admin_user, self.admin_password))
            cursor.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (self.admin_user,))
            cursor.execute("SELECT user, host FROM mysql.user WHERE user IN ('root', '')")
            for account_user, account_host in cursor.fetchall():
                if (account_user, account_host) == ("root", "localhost"):
                    cursor.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (self.admin_password,))
                else:
                    cursor.execute("DROP USER %s@%s", (account_user, account_host))
        self._bootstrapped = True

    def _admin(self) -> Any:
        """A pymysql connection as the admin, over TCP (what :meth:`admin_url` names)."""
        return pymysql.connect(
            host=self.host, port=self.port, user=self.admin_user, password=self.admin_password, autocommit=True
        )

    def _check_tcp(self) -> None:
        self._admin().close()

    def _create(self, database: str, owner: str, password: str) -> None:
        with closing(self._admin()) as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (owner, password))
            # ALL on the database: CREATE, ALTER, DROP, INDEX, TRIGGER, CREATE ROUTINE, LOCK TABLES...
            # With binary logging off, creating a trigger needs no SUPER.
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%'", (owner,))

    def kill_connections(self, user: str) -> int:
        killed: list[int] = []
        with closing(self._admin()) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE user = %s AND id <> CONNECTION_ID()", (user,)
            )
            for (session,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL CONNECTION {int(session)}")
                except pymysql.err.MySQLError as exc:
                    if exc.args and exc.args[0] == _MARIADB_ER_NO_SUCH_THREAD:
                        continue  # it ended on its own meanwhile
                    raise
                killed.append(int(session))
            # KILL only flags the session; wait until it has gone, bounded.
            deadline = time.monotonic() + STOP_TIMEOUT
            while killed:
                marks = ", ".join(["%s"] * len(killed))
                cursor.execute(f"SELECT COUNT(*) FROM information_schema.processlist WHERE id IN ({marks})", killed)
                (left,) = cursor.fetchone()
                if not left:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"MariaDB sessions of {user!r} still there {STOP_TIMEOUT:.0f}s after KILL")
                time.sleep(0.01)
        return len(killed)


def _mariadb_options(folder: Path) -> list[str]:
    """The options both mariadb-install-db and mariadbd get: no system config, no binary log, small."""
    return [
        "--no-defaults",
        f"--datadir={folder / 'data'}",
        "--skip-log-bin",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=16M",
    ]


@dataclass(eq=False)
class _PostgreSql(DbServer):
    driver: ClassVar[str] = "psycopg"
    _stop_signal: ClassVar[signal.Signals] = signal.SIGINT  # PostgreSQL's "fast" shutdown
    _admin_database: ClassVar[str | None] = "postgres"
    _binary: str = field(default="postgres", repr=False)

    def _argv(self) -> list[str]:
        return [
            self._binary,
            "-D",
            str(self.folder / "data"),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.folder}",
            "-c",
            "unix_socket_permissions=0700",
            "-c",
            "max_connections=60",
            "-c",
            "shared_buffers=16MB",
        ]

    def _ready_errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error, OSError)

    def _probe(self) -> None:
        # The local socket trusts the admin (pg_hba below); the folder is the server account's alone.
        psycopg.connect(
            host=str(self.folder), port=self.port, user=self.admin_user, dbname="postgres", connect_timeout=2
        ).close()

    def _admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A psycopg connection as the admin, over TCP with its password (what :meth:`admin_url` names)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.admin_user,
            password=self.admin_password,
            dbname="postgres",
            autocommit=True,
        )

    def _check_tcp(self) -> None:
        self._admin().close()

    def _create(self, database: str, owner: str, password: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(owner), sql.Literal(password))
            )
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
            # New databases let PUBLIC connect; this one is its owner's alone.
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))

    def kill_connections(self, user: str) -> int:
        with self._admin() as conn:
            # With a timeout, pg_terminate_backend waits until the backend has exited.
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE usename = %s AND pid <> pg_backend_pid()",
                (user,),
            ).fetchall()
        return sum(1 for (done,) in rows if done)


# --- starting them ------------------------------------------------------------------------------------


def _run_setup(argv: list[str], folder: Path, what: str) -> None:
    """Run a one-off setup command (the data directory's creation) with its output in the folder's log."""
    log_path = folder / "server.log"
    with log_path.open("ab") as log:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_env(folder),
            cwd=folder,
            timeout=READY_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise ServerStartError(f"{what} failed with status {result.returncode}; its output ends:\n{_tail(log_path)}")


def _check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise RuntimeError(f"the server's socket path is too long for a unix socket ({path}); choose a shorter base")


def start_mariadb(base: Path | None = None, options: Sequence[str] = ()) -> DbServer:
    """A fresh MariaDB server (``mysql`` engine) with an admin account; ``base`` is where its temporary
    folder goes (default: the system temp dir); ``options`` more server options, at install and at
    every start. Raises :class:`ServerUnavailable` if not installed."""
    install = _find("mariadb-install-db", "mariadb-server", [Path("/usr/bin"), Path("/usr/sbin")])
    binary = _find("mariadbd", "mariadb-server", [Path("/usr/sbin"), Path("/usr/bin")])
    account = _account()
    runner = _runner(account)
    folder = _make_folder(base, "epos-bridge-mariadb-", account)
    server = _MariaDb(
        engine="mysql",
        host="127.0.0.1",
        port=0,
        folder=folder,
        admin_password=secrets.token_urlsafe(18),
        _account=account,
        _runner=runner,
        _binary=binary,
        _options=tuple(options),
    )
    try:
        _check_socket_path(server.socket_path)
        tmp = folder / "tmp"
        tmp.mkdir(mode=0o700)
        if account is not None:
            os.chown(tmp, account.uid, account.gid)
        _run_setup(
            [
                *runner,
                install,
                *_mariadb_options(folder),
                *options,
                "--skip-test-db",
                # root@localhost without a password, for the bootstrap over the owner-only socket;
                # _after_first_start gives it one before anything listens for the tests.
                "--auth-root-authentication-method=normal",
            ],
            folder,
            "mariadb-install-db",
        )
        server._start_first()
    except BaseException:
        server.stop()
        raise
    return server


def start_postgresql(base: Path | None = None) -> DbServer:
    """A fresh PostgreSQL server with an admin role (password, scram-sha-256 over TCP); ``base`` is where
    its temporary folder goes (default: the system temp dir). Raises :class:`ServerUnavailable` if not installed."""
    bin_dirs = _postgresql_bin_dirs()
    initdb = _find("initdb", "postgresql", bin_dirs)
    binary = _find("postgres", "postgresql", [Path(initdb).parent])
    account = _account()
    runner = _runner(account)
    folder = _make_folder(base, "epos-bridge-pg-", account)
    server = _PostgreSql(
        engine="postgresql",
        host="127.0.0.1",
        port=0,
        folder=folder,
        admin_password=secrets.token_urlsafe(18),
        _account=account,
        _runner=runner,
        _binary=binary,
    )
    try:
        _check_socket_path(folder / ".s.PGSQL.65535")
        password_file = folder / "admin-password"
        password_file.write_text(server.admin_password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        if account is not None:
            os.chown(password_file, account.uid, account.gid)
        data = folder / "data"
        try:
            _run_setup(
                [
                    *runner,
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    server.admin_user,
                    f"--pwfile={password_file}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-locale",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                folder,
                "initdb",
            )
        finally:
            password_file.unlink(missing_ok=True)
        # Our own pg_hba: the admin alone is trusted, on the socket only (the bootstrap and the
        # readiness probe); everyone else, and the admin over TCP, gives a password.
        hba = data / "pg_hba.conf"
        hba.write_text(
            f"local all {server.admin_user} trust\nhost all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8"
        )
        hba.chmod(0o600)
        if account is not None:
            os.chown(hba, account.uid, account.gid)
        server._start_first()
    except BaseException:
        server.stop()
        raise
    return server


@atexit.register
def _stop_all() -> None:
    """Whatever the session did not stop (it crashed, or a test started a server itself)."""
    for server in list(_LIVE):
        with suppress(Exception):
            server.stop()


# --- pytest fixtures -------------------------------------------------------------------------------


def _started(start: Callable[[], DbServer]) -> DbServer:
    """``start()``, or skip (fail, where servers are required) when its binaries are not installed."""
    try:
        server = start()
    except ServerUnavailable as missing:
        if os.environ.get(REQUIRED_ENV) == "required":
            pytest.fail(f"{missing} ({REQUIRED_ENV}=required)", pytrace=False)
        pytest.skip(str(missing))
    return server


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[DbServer]:
    """One MariaDB server for the session; stopped (and its folder removed) at the end, pass or fail."""
    server = _started(start_mariadb)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[DbServer]:
    """One PostgreSQL server for the session; stopped (and its folder removed) at the end, pass or fail."""
    server = _started(start_postgresql)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mariadb_url(mariadb_server: DbServer) -> str:
    """A fresh MariaDB database and its owner, for one test: a ``mysql+pymysql://`` URL."""
    return mariadb_server.create_database()


@pytest.fixture
def postgresql_url(postgresql_server: DbServer) -> str:
    """A fresh PostgreSQL database and its owner, for one test: a ``postgresql+psycopg://`` URL."""
    return postgresql_server.create_database()
