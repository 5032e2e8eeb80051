"""One bridge per venue: the single-instance lock.

Dojo routes a venue's EPOS Data traffic to one WebSocket connection per deployment; a second
bridge for the same venue would open a second connection, and which of the two gets Dojo's
requests is not ours to choose. A venue is known three ways, and the lock takes all three, each
with an OS file lock (:mod:`epos_bridge.host.filelock`) held for the whole life of the process and
released by the OS even if the process is killed:

* the **data folder** (its idempotency store and payment log): ``<data dir>/instance.lock``;
* the **POS database** (:class:`Venue`), by its resolved path, so every spelling of it (a
  symlink, ``..``) is one venue: ``.<name>.epos-bridge-instance.lock`` beside a database file, or
  ``.epos-bridge-instance.lock`` inside a database folder (the file adapter's). It lives next to
  the POS because that is the one place every bridge serving it can see, whatever its data
  folder or OS user; ``db detach`` takes the same lock (:func:`database_lock`), so it refuses
  while a bridge serves the database and no bridge starts while it runs;
* the **Dojo account**, by a fingerprint of its API key (a truncated SHA-256 of the key, never
  the key itself, in a file name or a file): ``key-<fingerprint>.lock`` in this user's own
  ``0700`` folder (``<platform user data folder>/venues``), so two data folders of one user with
  one key cannot both connect. (Another OS user's bridge with the same key is kept out by the POS
  database's lock, or on a shared till by the shared data folder: docs/single-instance.md.)

A bridge that meets any of the three held gets :class:`AlreadyServing` and takes none of them.

Who holds each lock is written next to it (``instance-owner.json`` and the like: pid, user, role,
the data folder, and for the tray app the name of its "raise the window" channel), because on
Windows the locked byte cannot be read by a rival. The record is advisory: the lock decides, the
record only explains.

How callers use it:

* ``run --headless``: :meth:`InstanceLock.acquire` before building the bridge; on
  :class:`AlreadyServing` print its message and exit :data:`EXIT_ALREADY_SERVING` without ever
  opening a WebSocket.
* the tray app: the same lock with ``role="gui"`` and ``raise_channel=new_raise_channel(dir)``
  (its ``QLocalServer`` listens there). A second launch that meets :class:`AlreadyServing` reads
  ``exc.owner.raise_channel``: when set it asks that window to come forward and exits quietly;
  when not (a headless bridge holds the folder) it shows the message instead.

What another local user can do about it (the lock and the doorbell are a local attack surface):

* The data folder is ``0700`` and the lock file ``0600`` (:mod:`epos_bridge.host.private_files`), so
  nobody else can take the lock first, replace the owner record or read it. The key's lock is in
  this user's ``0700`` folder too. The POS database's lock file is empty and left readable
  (``0644``), so that another user's bridge for the same database can lock it too; its owner
  record is ``0600``. Whoever may create files beside the POS database could squat that lock, but
  they could equally damage the database itself.
* The doorbell is a fresh, unguessable name each run, found through the owner record, never a
  predictable name in a shared temporary folder. On Linux and macOS it is a socket file in a
  ``0700`` folder of this user (``$XDG_RUNTIME_DIR/epos-bridge``, else ``<data dir>/run``), so
  another user can neither create it first nor connect to it. On Windows it is a named pipe with
  a random part, created with an ACL for this user only (``QLocalServer.UserAccessOption``).

See ``docs/single-instance.md`` for tills shared by several Windows users.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from epos_bridge.host.filelock import open_lock_file, try_lock, unlock
from epos_bridge.host.private_files import FILE_MODE, POSIX, private_dir, tighten

log = logging.getLogger(__name__)

LOCK_FILE_NAME = "instance.lock"
OWNER_FILE_NAME = "instance-owner.json"
DATABASE_LOCK_SUFFIX = ".epos-bridge-instance.lock"
DATABASE_OWNER_SUFFIX = ".epos-bridge-instance-owner.json"
DATABASE_LOCK_MODE = 0o644
"""The POS database's lock file is empty; readable, so another OS user's bridge can lock it too."""
KEY_LOCK_FOLDER = "venues"
RUNTIME_FOLDER = "epos-bridge"
SOCKET_SUFFIX = ".sock"
MAX_SOCKET_PATH = 100
"""Bytes: ``sockaddr_un`` holds 108 on Linux and 104 on macOS, with the terminating NUL."""
EXIT_ALREADY_SERVING = 3
"""Exit status of ``epos-bridge run`` when another bridge serves the same venue."""
DETACH_ROLE = "db detach"
"""The role :func:`database_lock` records: ``epos-bridge db detach`` is changing the database."""


@dataclass(frozen=True)
class Venue:
    """What a bridge serves besides its data folder: the POS database (a file, or the file
    adapter's folder) and the Dojo account, known by its API key. Either may be unknown yet
    (a first run before Settings): what is unknown is not locked."""

    database: Path | None = None
    api_key: str | None = field(default=None, repr=False)


def key_fingerprint(api_key: str) -> str:
    """64 bits of a SHA-256 of the key: tells two keys apart, says nothing about either."""
    return hashlib.sha256(b"epos-bridge instance lock\0" + api_key.encode("utf-8")).hexdigest()[:16]


def database_lock_paths(database: Path) -> tuple[Path, Path]:
    """The lock file and owner record of a POS database, beside its resolved path (inside it,
    for a folder), so every spelling of the database is one lock."""
    resolved = Path(database).expanduser().resolve()
    if resolved.is_dir():
        return resolved / DATABASE_LOCK_SUFFIX, resolved / DATABASE_OWNER_SUFFIX
    return (
        resolved.parent / f".{resolved.name}{DATABASE_LOCK_SUFFIX}",
        resolved.parent / f".{resolved.name}{DATABASE_OWNER_SUFFIX}",
    )


def key_lock_folder() -> Path:
    """This user's own folder for the key's lock, whatever data folder a bridge uses."""
    return Path(user_data_dir("epos-bridge", appauthor=False)) / KEY_LOCK_FOLDER


@dataclass(frozen=True)
class InstanceOwner:
    """Who holds a lock: enough to tell the user which process to look for."""

    pid: int
    user: str
    host: str
    role: str
    """``headless`` or ``gui`` (or :data:`DETACH_ROLE`)."""
    started_at: str
    """ISO 8601, UTC."""
    raise_channel: str | None = None
    """The tray app's ``QLocalServer`` name; a second launch asks it to show the window."""
    data_dir: str | None = None
    """The data folder it serves from (a rival with another data folder is told where)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> InstanceOwner | None:
        """``None`` for a record that is missing fields or not ours: it only explains, never decides."""
        try:
            data: Any = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                user=str(data["user"]),
                host=str(data["host"]),
                role=str(data["role"]),
                started_at=str(data["started_at"]),
                raise_channel=None if data.get("raise_channel") is None else str(data["raise_channel"]),
                data_dir=None if data.get("data_dir") is None else str(data["data_dir"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class AlreadyServing(Exception):
    """Another bridge holds this venue. ``owner`` is ``None`` when its record is unreadable;
    ``shared`` names what the two have in common when it is not the data folder."""

    def __init__(self, data_dir: Path, owner: InstanceOwner | None, shared: str | None = None) -> None:
        self.data_dir = data_dir
        self.owner = owner
        self.shared = shared
        super().__init__(already_serving_message(data_dir, owner, shared))


class VenueLockError(OSError):
    """The venue's lock cannot be taken at all (not: it is held); the message says where and why."""


def already_serving_message(data_dir: Path, owner: InstanceOwner | None, shared: str | None = None) -> str:
    """The words every front end shows (stderr, a message box), so they cannot drift apart."""
    if owner is None:
        who = "pid unknown"
    else:
        who = f"pid {owner.pid}"
        if owner.user != current_user():
            who += f", user {owner.user}"
    if shared is None:
        where = f"from {data_dir}"
    else:
        where = f"({shared}) from {owner.data_dir if owner and owner.data_dir else 'another data folder'}"
    if owner is not None and owner.role == DETACH_ROLE:
        return (
            f"`epos-bridge db detach` is removing the bridge's tables from this venue's POS database ({who}); "
            "start the bridge again once it has finished (and the database is attached again)."
        )
    return (
        f"another epos-bridge is already serving this venue {where} ({who}); "
        "only one connection per deployment gets Dojo's traffic. "
        "Use the running one (its tray icon or service), or stop it before starting another."
    )


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container with an unnamed uid)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def folder_tag(data_dir: Path) -> str:
    """A short tag for the data folder (the same for every spelling of it): keeps two venues'
    doorbells apart and lets a bridge find its own stale ones."""
    folder = os.path.normcase(str(Path(data_dir).expanduser().resolve()))
    return hashlib.sha256(folder.encode("utf-8")).hexdigest()[:8]


def runtime_folder(data_dir: Path) -> Path:
    """This user's folder for the doorbell socket (POSIX): ``$XDG_RUNTIME_DIR/epos-bridge`` when
    the session has a private runtime folder (logind makes it ``0700``), else ``<data dir>/run``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime:
        try:
            info = os.stat(runtime)
        except OSError:
            pass
        else:
            if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077 == 0:
                return Path(runtime) / RUNTIME_FOLDER
    return Path(data_dir) / "run"


def new_raise_channel(data_dir: Path) -> str:
    """A fresh, unguessable name for the tray's ``QLocalServer`` (the second-launch doorbell).

    POSIX: a socket path in a ``0700`` folder of this user (:func:`runtime_folder`; a fresh
    private temporary folder if that path would be too long for a socket). Windows: a pipe name
    with a random part. Either way a second launch learns it from the owner record.
    """
    name = f"{folder_tag(data_dir)}-{secrets.token_hex(8)}"  # 64 random bits
    if not POSIX:  # pragma: no cover - Windows: a named pipe, protected by its ACL
        return f"epos-bridge-{name}"
    filename = f"{name}{SOCKET_SUFFIX}"
    path = private_dir(runtime_folder(data_dir)) / filename
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        # A fresh 0700 folder with a random name (mkdtemp): nobody can have made it first.
        base = tempfile.gettempdir()
        if len(os.fsencode(base)) + len("/epos-bridge-XXXXXXXX/") + len(filename) > MAX_SOCKET_PATH:
            base = "/tmp"  # noqa: S108 - see above
        path = Path(tempfile.mkdtemp(prefix="epos-bridge-", dir=base)) / filename
    return str(path)


def clear_stale_channels(data_dir: Path, keep: str | None = None) -> int:
    """Remove doorbell sockets a crashed tray app left for this data folder (call while holding
    the lock: then no other live process owns them). Returns how many were removed."""
    if not POSIX:  # pragma: no cover - pipes vanish with their process
        return 0
    removed = 0
    folder = runtime_folder(data_dir)
    for path in folder.glob(f"{folder_tag(data_dir)}-*{SOCKET_SUFFIX}") if folder.is_dir() else ():
        if str(path) != keep:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


class _OneLock:
    """One lock file and the owner record beside it."""

    def __init__(self, lock_path: Path, owner_path: Path, *, shared: str | None, mode: int = FILE_MODE) -> None:
        self.lock_path = lock_path
        self.owner_path = owner_path
        self.shared = shared
        """What a rival has in common with us when this lock refuses it (``None``: the data folder)."""
        self.mode = mode
        self.fd: int | None = None

    def take(self, data_dir: Path) -> None:
        """Lock without waiting, or raise :class:`AlreadyServing` naming who holds it."""
        fd = open_lock_file(self.lock_path, self.mode)
        try:
            if self.mode == FILE_MODE:
                tighten(self.lock_path)
            else:
                _loosen(self.lock_path, self.mode)
            locked = try_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            os.close(fd)
            raise AlreadyServing(data_dir, self.read_owner(), self.shared)
        self.fd = fd

    def release(self) -> None:
        """Idempotent. The record goes first, so a rival never reads ours after we let go."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.owner_path.unlink()
        try:
            with contextlib.suppress(OSError):
                unlock(fd)
        finally:
            os.close(fd)

    def read_owner(self) -> InstanceOwner | None:
        try:
            return InstanceOwner.from_json(self.owner_path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def write_owner(self, owner: InstanceOwner) -> None:
        folder = self.owner_path.parent
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.owner_path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(owner.to_json())
            os.replace(temp_name, self.owner_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise


def _loosen(path: Path, mode: int) -> None:
    """The POS database's (empty) lock file of ours gets exactly ``mode``, whatever the umask."""
    if not POSIX:
        return
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(path)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
            os.chmod(path, mode)


def _database_lock(database: Path) -> _OneLock | None:
    """The POS database's part of the venue lock; ``None`` when its folder does not exist (there
    is no database there to serve yet; a bridge says so itself)."""
    lock_path, owner_path = database_lock_paths(database)
    if not lock_path.parent.is_dir():
        log.warning("the POS database's folder %s does not exist; it is not locked for this bridge", lock_path.parent)
        return None
    return _OneLock(lock_path, owner_path, shared=f"the POS database {database}", mode=DATABASE_LOCK_MODE)


def _same_database(one: Path | None, other: Path | None) -> bool:
    if one is None or other is None:
        return one is other
    return database_lock_paths(one) == database_lock_paths(other)


def _key_lock(api_key: str) -> _OneLock:
    folder = private_dir(key_lock_folder())
    name = f"key-{key_fingerprint(api_key)}"
    return _OneLock(folder / f"{name}.lock", folder / f"{name}.owner.json", shared="the same Dojo API key")


def _new_owner(role: str, raise_channel: str | None, data_dir: Path | None) -> InstanceOwner:
    return InstanceOwner(
        pid=os.getpid(),
        user=current_user(),
        host=socket.gethostname(),
        role=role,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        raise_channel=raise_channel,
        data_dir=None if data_dir is None else str(data_dir),
    )


def _take_all(locks: list[_OneLock], data_dir: Path, owner: InstanceOwner) -> None:
    """Every lock or none: a bridge refused by one lets go of those it took."""
    taken: list[_OneLock] = []
    try:
        for lock in locks:
            try:
                lock.take(data_dir)
            except AlreadyServing:
                raise
            except OSError as exc:
                if lock.shared is None:
                    raise
                raise VenueLockError(
                    f"cannot lock {lock.shared} for this bridge at {lock.lock_path}: {exc.strerror or exc}"
                ) from exc
            taken.append(lock)
    except BaseException:
        for lock in reversed(taken):
            lock.release()
        raise
    # The records only explain; the locks are what keep a second bridge out.
    for lock in taken:
        with contextlib.suppress(OSError):
            lock.write_owner(owner)


@contextlib.contextmanager
def database_lock(database: Path, *, role: str = DETACH_ROLE) -> Iterator[InstanceOwner]:
    """Hold the POS database's part of the venue lock, or raise :class:`AlreadyServing` (with
    the serving bridge's record) when a bridge serves it. ``db detach`` holds it while it runs."""
    lock_path, owner_path = database_lock_paths(database)
    lock = _OneLock(lock_path, owner_path, shared=f"the POS database {database}", mode=DATABASE_LOCK_MODE)
    owner = _new_owner(role, None, None)
    _take_all([lock], Path(database), owner)
    try:
        yield owner
    finally:
        lock.release()


class InstanceLock:
    """The venue's lock: the data folder, and with a :class:`Venue` its POS database and API key.
    Not re-entrant: a second :meth:`acquire` on a held venue fails, even from the same process
    (each lock opens its own descriptor)."""

    def __init__(self, data_dir: Path, venue: Venue | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.venue = venue
        self.lock_path = self.data_dir / LOCK_FILE_NAME
        self.owner_path = self.data_dir / OWNER_FILE_NAME
        self._locks: list[_OneLock] = []
        self.owner: InstanceOwner | None = None

    @property
    def held(self) -> bool:
        return bool(self._locks)

    def acquire(self, *, role: str, raise_channel: str | None = None) -> InstanceOwner:
        """Take the data folder and the venue, or raise :class:`AlreadyServing` (taking none);
        never waits. :class:`VenueLockError` when the venue's lock cannot be made at all."""
        if self._locks:
            raise RuntimeError("this InstanceLock is already held")
        private_dir(self.data_dir)
        locks = [_OneLock(self.lock_path, self.owner_path, shared=None), *self._venue_locks(self.venue or Venue())]
        owner = _new_owner(role, raise_channel, self.data_dir)
        _take_all(locks, self.data_dir, owner)
        self._locks = locks
        self.owner = owner
        return owner

    def move_to(self, venue: Venue) -> None:
        """Serve another venue (Settings changed the POS database or the key) on the held data
        folder: the new venue's locks are taken first, then the old ones let go, so there is no
        moment when neither bridge holds either. Raises :class:`AlreadyServing` (changing
        nothing) when another bridge serves the new one. Idempotent for the same venue."""
        if not self._locks:
            raise RuntimeError("this InstanceLock is not held")
        current = self.venue or Venue()
        if _same_database(current.database, venue.database) and current.api_key == venue.api_key:
            self.venue = venue
            return
        folder, *old = self._locks
        held = {lock.lock_path: lock for lock in old}
        wanted = self._venue_locks(venue)
        new = [lock for lock in wanted if lock.lock_path not in held]
        assert self.owner is not None
        _take_all(new, self.data_dir, self.owner)
        kept = [held.get(lock.lock_path, lock) for lock in wanted]
        for lock in old:
            if lock not in kept:
                lock.release()
        self._locks = [folder, *kept]
        self.venue = venue

    @staticmethod
    def _venue_locks(venue: Venue) -> list[_OneLock]:
        locks = []
        if venue.database is not None:
            database = _database_lock(venue.database)
            if database is not None:
                locks.append(database)
        if venue.api_key:
            locks.append(_key_lock(venue.api_key))
        return locks

    def release(self) -> None:
        """Idempotent; the venue's locks go first, the data folder's last."""
        locks, self._locks = self._locks, []
        for lock in reversed(locks):
            lock.release()
        self.owner = None

    @contextlib.contextmanager
    def hold(self, *, role: str, raise_channel: str | None = None) -> Iterator[InstanceOwner]:
        owner = self.acquire(role=role, raise_channel=raise_channel)
        try:
            yield owner
        finally:
            self.release()

    def read_owner(self) -> InstanceOwner | None:
        """Who holds the data folder, as they recorded it (``None`` when there is no readable record)."""
        return _OneLock(self.lock_path, self.owner_path, shared=None).read_owner()
