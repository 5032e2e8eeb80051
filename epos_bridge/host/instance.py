"""One bridge per data folder: the single-instance lock.

Dojo routes a venue's EPOS Data traffic to one WebSocket connection per deployment; a second
bridge for the same venue would open a second connection, and which of the two gets Dojo's
requests is not ours to choose. The data folder is the bridge's identity for a venue (its
idempotency store and payment log live there), so the lock lives there too:
``<data dir>/instance.lock``, held with an OS file lock (:mod:`epos_bridge.host.filelock`) for the
whole life of the process and released by the OS even if the process is killed.

Who holds it is written next to it in ``instance-owner.json`` (pid, user, role, and for the tray
app the name of its "raise the window" channel), because on Windows the locked byte cannot be
read by a rival. The record is advisory: the lock decides, the record only explains.

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
  nobody else can take the lock first, replace the owner record or read it.
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
import os
import secrets
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from epos_bridge.host.filelock import open_lock_file, try_lock, unlock
from epos_bridge.host.private_files import FILE_MODE, POSIX, private_dir, tighten

LOCK_FILE_NAME = "instance.lock"
OWNER_FILE_NAME = "instance-owner.json"
RUNTIME_FOLDER = "epos-bridge"
SOCKET_SUFFIX = ".sock"
MAX_SOCKET_PATH = 100
"""Bytes: ``sockaddr_un`` holds 108 on Linux and 104 on macOS, with the terminating NUL."""
EXIT_ALREADY_SERVING = 3
"""Exit status of ``epos-bridge run`` when another bridge serves the same data folder."""


@dataclass(frozen=True)
class InstanceOwner:
    """Who holds a data folder: enough to tell the user which process to look for."""

    pid: int
    user: str
    host: str
    role: str
    """``headless`` or ``gui``."""
    started_at: str
    """ISO 8601, UTC."""
    raise_channel: str | None = None
    """The tray app's ``QLocalServer`` name; a second launch asks it to show the window."""

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
            )
        except (ValueError, TypeError, KeyError):
            return None


class AlreadyServing(Exception):
    """Another bridge holds this data folder. ``owner`` is ``None`` when its record is unreadable."""

    def __init__(self, data_dir: Path, owner: InstanceOwner | None) -> None:
        self.data_dir = data_dir
        self.owner = owner
        super().__init__(already_serving_message(data_dir, owner))


def already_serving_message(data_dir: Path, owner: InstanceOwner | None) -> str:
    """The words every front end shows (stderr, a message box), so they cannot drift apart."""
    if owner is None:
        who = "pid unknown"
    else:
        who = f"pid {owner.pid}"
        if owner.user != current_user():
            who += f", user {owner.user}"
    return (
        f"another epos-bridge is already serving this venue from {data_dir} ({who}); "
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


class InstanceLock:
    """The data folder's lock. Not re-entrant: a second :meth:`acquire` on a held folder fails,
    even from the same process (each lock opens its own descriptor)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.lock_path = self.data_dir / LOCK_FILE_NAME
        self.owner_path = self.data_dir / OWNER_FILE_NAME
        self._fd: int | None = None
        self.owner: InstanceOwner | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, role: str, raise_channel: str | None = None) -> InstanceOwner:
        """Take the folder or raise :class:`AlreadyServing`; never waits."""
        if self._fd is not None:
            raise RuntimeError("this InstanceLock is already held")
        private_dir(self.data_dir)
        fd = open_lock_file(self.lock_path, FILE_MODE)
        tighten(self.lock_path)
        if not try_lock(fd):
            os.close(fd)
            raise AlreadyServing(self.data_dir, self.read_owner())
        self._fd = fd
        owner = InstanceOwner(
            pid=os.getpid(),
            user=current_user(),
            host=socket.gethostname(),
            role=role,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            raise_channel=raise_channel,
        )
        # The record only explains; the lock is what keeps a second bridge out.
        with contextlib.suppress(OSError):
            self._write_owner(owner)
        self.owner = owner
        return owner

    def release(self) -> None:
        """Idempotent. The record goes first, so a rival never reads ours after we let go."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.owner_path.unlink()
        try:
            with contextlib.suppress(OSError):
                unlock(fd)
        finally:
            os.close(fd)
        self.owner = None

    @contextlib.contextmanager
    def hold(self, *, role: str, raise_channel: str | None = None) -> Iterator[InstanceOwner]:
        owner = self.acquire(role=role, raise_channel=raise_channel)
        try:
            yield owner
        finally:
            self.release()

    def read_owner(self) -> InstanceOwner | None:
        """Who holds the folder, as they recorded it (``None`` when there is no readable record)."""
        try:
            return InstanceOwner.from_json(self.owner_path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def _write_owner(self, owner: InstanceOwner) -> None:
        fd, temp_name = tempfile.mkstemp(prefix=".instance-owner.", suffix=".tmp", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(owner.to_json())
            os.replace(temp_name, self.owner_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
