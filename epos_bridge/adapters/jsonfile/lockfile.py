"""The folder lock every writer of a file database takes: the bridge, the POS, a support tool.

One small class hides the two operating-system primitives: ``fcntl.flock`` on POSIX (shared or
exclusive) and ``msvcrt.locking`` on Windows (always exclusive: Windows byte-range locks have no
shared mode, so readers there simply wait their turn). Both are advisory between programs that
agree to take them, which is exactly the agreement ``docs/file-database.md`` asks of the POS.

The lock is taken on ``<folder>/.lock``, never on a data file: data files are replaced with
``os.replace`` on every write, and a lock on a file that is about to be replaced protects nothing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE_NAME = ".lock"
DEFAULT_LOCK_TIMEOUT_S = 5.0


class LockTimeout(Exception):
    """Someone held the folder lock for longer than the timeout."""


if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI only
    import msvcrt

    def _try_lock(fd: int, exclusive: bool) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int, exclusive: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FolderLock:
    """``with lock.hold():`` for a read-modify-write; ``hold(exclusive=False)`` for a snapshot read.

    Each ``hold`` opens its own descriptor, so two threads of one process exclude each other just
    as two processes do (``flock`` locks belong to the open file description).
    """

    def __init__(self, folder: Path, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = Path(folder) / LOCK_FILE_NAME
        self.timeout_s = timeout_s

    @contextmanager
    def hold(self, *, exclusive: bool = True) -> Iterator[None]:
        """Raises :class:`LockTimeout` after ``timeout_s``; ``FileNotFoundError`` if the folder is gone."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            deadline = time.monotonic() + self.timeout_s
            pause = 0.002
            while not _try_lock(fd, exclusive):
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{self.path} was held by another program for more than {self.timeout_s:g} s")
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            try:
                yield
            finally:
                _unlock(fd)
        finally:
            os.close(fd)
