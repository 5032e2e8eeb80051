"""The folder lock every writer of a file database takes: the bridge, the POS, a support tool.

The operating-system primitives live in :mod:`epos_bridge.host.filelock` (``fcntl.flock`` on POSIX,
shared or exclusive; ``msvcrt.locking`` on Windows, always exclusive, so readers there simply wait
their turn). Both are advisory between programs that
agree to take them, which is exactly the agreement ``docs/file-database.md`` asks of the POS.

The lock is taken on ``<folder>/.lock``, never on a data file: data files are replaced with
``os.replace`` on every write, and a lock on a file that is about to be replaced protects nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from epos_bridge.host.filelock import try_lock, unlock

LOCK_FILE_NAME = ".lock"
DEFAULT_LOCK_TIMEOUT_S = 5.0


class LockTimeout(Exception):
    """Someone held the folder lock for longer than the timeout."""


class FolderLock:
    """``with lock.hold():`` for a read-modify-write; ``hold(exclusive=False)`` for a snapshot read.

    Each ``hold`` opens its own descriptor, so two threads of one process exclude each other just
    as two processes do (``flock`` locks belong to the open file description).
    """

    def __init__(self, folder: Path, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = Path(folder) / LOCK_FILE_NAME
        self.timeout_s = timeout_s

    @contextmanager
    def hold(self, *, exclusive: bool = True, timeout_s: float | None = None) -> Iterator[None]:
        """Raises :class:`LockTimeout` after ``timeout_s`` (default: the folder's); a timeout of
        0 tries once. ``FileNotFoundError`` if the folder is gone."""
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            deadline = time.monotonic() + wait_s
            pause = 0.002
            while not try_lock(fd, exclusive=exclusive):
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{self.path} was held by another program for more than {wait_s:g} s")
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            try:
                yield
            finally:
                unlock(fd)
        finally:
            os.close(fd)
