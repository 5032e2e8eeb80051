"""One bridge per data folder: the single-instance lock.

Dojo routes a venue's EPOS Data traffic to one WebSocket connection per deployment; a second
bridge for the same venue would open a second connection, and which of the two gets Dojo's
requests is not ours to choose. The data folder is the bridge's identity for a venue (its
idempotency store and payment log live there), so the lock lives there too:
``<data dir>/instance.lock``, held with an OS file lock (:mod:`epos_bridge.filelock`) for the
whole life of the process and released by the OS even if the process is killed.

Who holds it is written next to it in ``instance-owner.json`` (pid, user, role, and for the tray
app the name of its "raise the window" channel), because on Windows the locked byte cannot be
read by a rival. The record is advisory: the lock decides, the record only explains.

How callers use it:

* ``run --headless``: :meth:`InstanceLock.acquire` before building the bridge; on
  :class:`AlreadyServing` print its message and exit :data:`EXIT_ALREADY_SERVING` without ever
  opening a WebSocket.
* the tray app: the same lock with ``role="gui"`` and ``raise_channel=raise_channel_name(dir)``
  (its ``QLocalServer`` listens there). A second launch that meets :class:`AlreadyServing` reads
  ``exc.owner.raise_channel``: when set it asks that window to come forward and exits quietly;
  when not (a headless bridge holds the folder) it shows the message instead.

See ``docs/single-instance.md`` for tills shared by several Windows users.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from epos_bridge.filelock import open_lock_file, try_lock, unlock

LOCK_FILE_NAME = "instance.lock"
OWNER_FILE_NAME = "instance-owner.json"
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


def raise_channel_name(data_dir: Path) -> str:
    """A ``QLocalServer`` name derived from the data folder, the same for every user of it, so
    any second launch against the same venue finds the window that serves it."""
    folder = os.path.normcase(str(Path(data_dir).expanduser().resolve()))
    return "epos-bridge-" + hashlib.sha256(folder.encode("utf-8")).hexdigest()[:16]


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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = open_lock_file(self.lock_path)
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
