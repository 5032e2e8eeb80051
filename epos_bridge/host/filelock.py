"""Advisory file locks across platforms, for whoever needs one: the single-instance lock
(:mod:`epos_bridge.host.instance`) and the file database's folder lock can share these primitives.

``fcntl.flock`` on POSIX (shared or exclusive) and ``msvcrt.locking`` on Windows (always
exclusive, on the first byte: Windows byte-range locks have no shared mode). Both are released by
the operating system when the descriptor is closed or the process dies, so a crash never leaves
a stale lock behind. Neither blocks: callers that want to wait poll with their own timeout.

On Windows a locked byte cannot be read by another process, so never keep data a rival must read
in the first byte of a lock file; :mod:`epos_bridge.host.instance` keeps its owner record in a
separate file for this reason.
"""

from __future__ import annotations

import os
import sys

if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI only
    import msvcrt

    def try_lock(fd: int, *, exclusive: bool = True) -> bool:
        """Lock byte 0 of ``fd`` without waiting; ``False`` when another descriptor holds it."""
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def try_lock(fd: int, *, exclusive: bool = True) -> bool:
        """``flock`` without waiting; ``False`` when another open file description holds it."""
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def open_lock_file(path: str | os.PathLike[str], mode: int = 0o666) -> int:
    """Open (creating with ``mode``, less the umask) a lock file. Falls back to read-only when
    another user created it and we may not write it (a machine-wide data folder on a shared till):
    both primitives lock a read-only descriptor just as well."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, mode)
    except PermissionError:
        return os.open(path, os.O_RDONLY)
