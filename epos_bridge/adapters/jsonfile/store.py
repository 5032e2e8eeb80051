"""Safe use of a folder of JSON files that the POS writes at the same time (docs/file-database.md).

* Every write is atomic: the new text goes to a temporary file in the same folder, is flushed
  and fsynced, replaces the old file with ``os.replace``, and the folder itself is fsynced. A
  reader therefore sees the old file or the new one, never half of one.
* Every read-modify-write runs under the exclusive folder lock (:mod:`.lockfile`), taken
  *before* the facts it decides on are read, so neither side loses the other's update. Reads run
  under the shared lock (a consistent snapshot across files).
* A write call owns the answer's deadline (:class:`epos_bridge.ports.Deadline`): it waits for
  the lock no longer than the time left, refuses to start once the deadline has passed, and
  checks it again just before its first file replacement — the point where a change becomes
  true. After that the call completes; its caller waits for the verdict and answers from it.
* While another program holds the folder lock, a write call is first decided on the committed
  files alone (each is replaced atomically, so every file read is one a writer finished): a
  replay (a payment already recorded, a lock already held) needs no write and is answered at
  once. A call that wants to write waits for the lock and decides again under it.
* Blocking work runs on a small worker pool, never on the event loop.
* Change detection is stat polling, no watcher: a parsed file is reused only while its identity
  (inode, size, mtime, ctime) is unchanged *and* its mtime is older than :data:`RACY_WINDOW_NS`.
  Atomic replace gives every write a new inode; the racy window covers inode reuse within one
  coarse filesystem timestamp tick (the "racy git" rule), so a reused parse is never stale.
* Every failure a venue can meet (missing folder, corrupt JSON, lock timeout, no permission)
  becomes :class:`PosUnavailable` with a sentence that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from epos_bridge.adapters.jsonfile.lockfile import DEFAULT_LOCK_TIMEOUT_S, FolderLock, LockTimeout
from epos_bridge.domain.errors import EposFailure, PosUnavailable
from epos_bridge.ports import Deadline

T = TypeVar("T")

FORMAT_FILE = "format.json"
FORMAT_NAME = "epos-bridge/jsonfile"
FORMAT_VERSION = 1
RACY_WINDOW_NS = 2_000_000_000
DEFAULT_WORKERS = 4

Document = dict[str, Any]


class CorruptDocument(PosUnavailable):
    """A file exists but is not the JSON document the layout promises. The message names the file
    (for the venue); Dojo hears only that one is damaged."""

    @classmethod
    def _public_default(cls, message: str) -> str:
        return (
            "A file in the POS folder is not the document the bridge expects (it may be damaged); "
            "the till's log names it."
        )


@dataclass(frozen=True)
class _Identity:
    ino: int
    dev: int
    size: int
    mtime_ns: int
    ctime_ns: int


@dataclass(frozen=True)
class _Cached:
    identity: _Identity
    document: Any


class DocumentCache:
    """Parsed files keyed on path, trusted only while the file's identity is unchanged and old."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, identity: _Identity) -> Any | None:
        with self._lock:
            entry = self._entries.get(path)
        if entry is None or entry.identity != identity:
            return None
        if time.time_ns() - identity.mtime_ns < RACY_WINDOW_NS:
            return None  # written too recently to rule out a same-tick rewrite
        return entry.document

    def put(self, path: Path, identity: _Identity, document: Any) -> None:
        with self._lock:
            self._entries[path] = _Cached(identity, document)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._entries.pop(path, None)


def write_json_atomic(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` so that no reader ever sees a partial file.

    The POS must write the same way; ``docs/file-database.md`` shows this function in full.
    """
    write_bytes_atomic(path, (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """:func:`write_json_atomic` of bytes already encoded (a file put back as it was)."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if sys.platform != "win32":
            os.chmod(temp_name, 0o644)  # mkstemp makes 0600; the POS may run as another user
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)


def fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); Windows has no directory handles to flush."""
    if sys.platform == "win32":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _WantsToWrite(Exception):
    """A snapshot attempt reached a write: the call must wait for the lock and decide again."""


@dataclass(eq=False)
class Snapshot:
    """What one call may read and write, valid only inside :meth:`JsonFolder.read`/``write``.

    ``probing``: a lock-free attempt that must not write; ``deadline``: checked before the
    first file replacement, the commit point of the call.
    """

    folder: JsonFolder
    _: KW_ONLY
    writable: bool
    probing: bool = False
    deadline: Deadline | None = None
    written: bool = field(default=False, init=False)
    _before: dict[Path, bytes | None] = field(default_factory=dict, init=False)
    """Each file this call replaced, as it was before (``None``: it did not exist)."""

    @property
    def root(self) -> Path:
        return self.folder.path

    def load(self, relative: str, *, fresh: bool = False) -> Any | None:
        """The parsed file, or ``None`` if it does not exist. ``fresh`` skips the cache."""
        return self.folder.load(self.folder.path / relative, fresh=fresh)

    def load_all(self, directory: str) -> Iterator[tuple[str, Document]]:
        """``(stem, document)`` for every ``*.json`` in ``directory``, in no particular order."""
        base = self.folder.path / directory
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue  # temporary files of a write in progress
            document = self.folder.load(base / name)
            if document is None:
                continue  # removed between listing and reading
            if not isinstance(document, dict):
                raise CorruptDocument(f"{directory}/{name} in the POS folder {self.root} is not a JSON object")
            yield name[: -len(".json")], document

    def save(self, relative: str, document: Any) -> None:
        if self.probing:
            raise _WantsToWrite
        if not self.writable:
            raise RuntimeError("a read snapshot cannot write")  # a bug in the adapter, not the POS
        if not self.written and self.deadline is not None and self.deadline.passed():
            late = "took longer than the answer allows; nothing was written."
            raise PosUnavailable(
                f"Writing to the POS folder {self.folder.path.name} {late}", public=f"Writing to the POS folder {late}"
            )
        self.written = True
        path = self.folder.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path not in self._before:
            try:
                self._before[path] = path.read_bytes()
            except FileNotFoundError:
                self._before[path] = None
        write_json_atomic(path, document)
        self.folder.cache.forget(path)

    def undo(self) -> None:
        """Put back every file this call replaced, newest first: a call that fails after it
        wrote leaves the folder as it found it (the port's all-or-nothing, short of a crash)."""
        for path, before in reversed(self._before.items()):
            if before is None:
                path.unlink(missing_ok=True)
            else:
                write_bytes_atomic(path, before)
            self.folder.cache.forget(path)
        self._before.clear()


def _undone_on_failure(work: Callable[[Snapshot], T], snap: Snapshot) -> T:
    try:
        return work(snap)
    except BaseException:
        snap.undo()
        raise


class JsonFolder:
    """One POS folder, used from the event loop through a worker pool."""

    def __init__(
        self, path: Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, workers: int = DEFAULT_WORKERS
    ) -> None:
        self.path = Path(path)
        self.lock = FolderLock(self.path, timeout_s=lock_timeout_s)
        self.cache = DocumentCache()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pos-folder")

    async def read(self, work: Callable[[Snapshot], T], deadline: Deadline | None = None) -> T:
        """Run ``work`` under the shared lock: one consistent view across files."""
        return await self._submit(work, writable=False, deadline=deadline)

    async def write(self, work: Callable[[Snapshot], T], deadline: Deadline | None = None) -> T:
        """Run ``work`` under the exclusive lock: read-modify-write without lost updates.

        Returns once its files are replaced; raises only when nothing was written. ``work`` may
        run twice (a lock-free attempt that must not write, then under the lock).
        """
        return await self._submit(work, writable=True, deadline=deadline)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)

    async def _submit(self, work: Callable[[Snapshot], T], *, writable: bool, deadline: Deadline | None) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run, work, writable, deadline)

    def run(self, work: Callable[[Snapshot], T], writable: bool, deadline: Deadline | None = None) -> T:
        """Synchronous form of :meth:`read`/:meth:`write` for setup tools and tests."""
        if not writable:
            self._refuse_if_due(deadline)
        self._check_folder()
        wait_s = self._wait_s(deadline)
        try:
            if writable:
                due = deadline is not None and deadline.passed()
                if not due:
                    try:
                        with self.lock.hold(exclusive=True, timeout_s=0):
                            self._check_format()
                            return _undone_on_failure(work, Snapshot(self, writable=True, deadline=deadline))
                    except LockTimeout:
                        pass
                # Busy, or already due: a call that needs no write is answered from the files.
                answered, result = self._decide_on_committed_files(work)
                if answered:
                    return result  # type: ignore[return-value]
                self._refuse_if_due(deadline)
                wait_s = self._wait_s(deadline)
            with self.lock.hold(exclusive=writable, timeout_s=wait_s):
                self._check_format()
                self._refuse_if_due(deadline)
                return _undone_on_failure(work, Snapshot(self, writable=writable, deadline=deadline))
        except EposFailure:
            raise
        except LockTimeout as exc:
            busy = (
                f"is busy: another program held its lock for more than {wait_s:g} s; nothing was written. "
                "Try again; if it persists, check the POS is not stuck."
            )
            raise PosUnavailable(f"The POS folder {self.path} {busy}", public=f"The POS folder {busy}") from exc
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except PermissionError as exc:
            denied = f"cannot be written ({exc.strerror}); the bridge needs write access to record payments and locks."
            raise PosUnavailable(f"The POS folder {self.path} {denied}", public=f"The POS folder {denied}") from exc
        except OSError as exc:
            raise PosUnavailable(
                f"The POS folder {self.path} failed: {exc.strerror or exc}",
                public=f"The POS folder failed: {exc.strerror or type(exc).__name__}",  # str(exc) names the file
            ) from exc

    def _decide_on_committed_files(self, work: Callable[[Snapshot], T]) -> tuple[bool, T | None]:
        """``work`` on the files as they are, without the lock and without writing.

        A failure is not answered from here: under the lock the POS may have released the
        order by then, and an error makes Dojo reverse a payment.
        """
        try:
            self._check_format()
            return True, work(Snapshot(self, writable=False, probing=True))
        except (_WantsToWrite, EposFailure):
            return False, None

    def _wait_s(self, deadline: Deadline | None) -> float:
        return self.lock.timeout_s if deadline is None else max(0.0, min(self.lock.timeout_s, deadline.remaining()))

    def _refuse_if_due(self, deadline: Deadline | None) -> None:
        if deadline is not None and deadline.passed():
            words = (
                "stayed busy until the answer was due; nothing was written. "
                "Try again; if it persists, check the POS is not stuck."
            )
            raise PosUnavailable(f"The POS folder {self.path.name} {words}", public=f"The POS folder {words}")

    def load(self, path: Path, *, fresh: bool = False) -> Any | None:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return None
        identity = _Identity(stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if not fresh:
            cached = self.cache.get(path, identity)
            if cached is not None:
                return cached
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            relative = path.relative_to(self.path).as_posix()
            where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise CorruptDocument(
                f"{relative} in the POS folder {self.path} is not valid JSON{where}. The POS must replace files "
                "atomically (docs/file-database.md); restore the file from a backup."
            ) from exc
        self.cache.put(path, identity, document)
        return document

    def _check_folder(self) -> None:
        if not self.path.is_dir():
            raise self._missing()

    def _missing(self) -> PosUnavailable:
        return PosUnavailable(
            f"The POS folder {self.path} is missing. Check the path in Settings, or that the POS is installed.",
            public="The POS folder could not be opened: it is missing. Check the path in Settings, or that the POS "
            "is installed.",
        )

    def _check_format(self) -> None:
        marker = self.load(self.path / FORMAT_FILE)
        if not isinstance(marker, dict) or marker.get("format") != FORMAT_NAME:
            words = (
                f"is not an epos-bridge file database (no valid {FORMAT_FILE}). Create one with "
                "`epos-bridge db init --adapter jsonfile PATH`, or choose the adapter that matches your POS."
            )
            raise PosUnavailable(f"{self.path} {words}", public=f"The POS folder {words}")
        version = marker.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            words = (
                f"uses file format version {version!r:.20}, newer than this bridge understands ({FORMAT_VERSION}). "
                "Update epos-bridge."
            )
            raise PosUnavailable(f"The POS folder {self.path} {words}", public=f"The POS folder {words}")
