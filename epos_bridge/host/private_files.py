"""Files and folders the bridge creates are readable and writable by its own user alone.

The bridge's state database holds payments and the answers it gave Dojo, its logs hold order
references and table names, its diagnostics zip holds both, and its lock file and local socket
decide which process serves the venue. A till is shared by staff, other OS accounts and the POS,
so on Linux and macOS everything the bridge makes is created ``0600`` (files) or ``0700``
(folders) whatever the umask, and a folder or file of ours left wider by an older version is
tightened when the bridge next uses it. A folder the bridge needs that belongs to another user is
refused (:class:`NotOurFolder`): its owner could read or replace what the bridge keeps there.

Windows has no mode bits: the installer sets the data folder's ACL (``installer/README.md``), and
these functions only create what is missing there.
"""

from __future__ import annotations

import contextlib
import logging.handlers
import os
import stat
from pathlib import Path
from typing import IO, Any

POSIX = os.name == "posix"
FILE_MODE = 0o600
DIR_MODE = 0o700


class NotOurFolder(PermissionError):
    """A folder the bridge would keep private things in belongs to another user."""


def _ours(info: os.stat_result) -> bool:
    return not POSIX or info.st_uid == os.geteuid()


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and leave it ``0700``; returns it.

    Missing parents get the platform's usual mode (they are not the bridge's to lock down).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if POSIX:
        info = path.stat()
        if not _ours(info):
            raise NotOurFolder(
                f"{path} belongs to another user (uid {info.st_uid}), so they could read or change what the bridge"
                " keeps there. Use a folder of your own (EPOS_BRIDGE_DATA_DIR), or have an administrator give it"
                " to this user."
            )
        if stat.S_IMODE(info.st_mode) != DIR_MODE:
            os.chmod(path, DIR_MODE)
    return path


def private_missing_folders(folder: Path) -> None:
    """Create the folders missing down to ``folder``, each ``0700``; existing ones are left as
    they are (a POS's own folder is not the bridge's to change)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            new.mkdir(mode=DIR_MODE)


def tighten(path: Path) -> None:
    """An existing file of ours becomes ``0600`` (one another user owns is left to fail later)."""
    if not POSIX:
        return
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(path)
        if _ours(info) and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)


def private_file(path: Path) -> Path:
    """Create ``path`` empty as ``0600`` if it is missing, else tighten it; returns it."""
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    tighten(path)
    return path


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open()`` for a file created ``0600`` from its first byte (never briefly world-readable)."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)  # Windows: Python's io does the newlines
    flags |= os.O_APPEND if "a" in mode else os.O_TRUNC
    fd = os.open(path, flags, FILE_MODE)
    try:
        tighten(Path(path))
        return open(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


_PREFIX_BYTES = 128
"""More than the time stamp, level and logger name before a message (host/logs.py LOG_FORMAT)."""


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (the current one and each new one after a rollover) is ``0600``."""

    def __init__(self, filename: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        folder = Path(filename).parent
        if folder.is_dir():
            for old in folder.glob(Path(filename).name + "*"):  # rotations left by an older version
                tighten(old)
        super().__init__(filename, *args, **kwargs)

    def _open(self) -> Any:
        return open_private(Path(self.baseFilename), self.mode, encoding=self.encoding, errors=self.errors)

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802
        """The standard check stats the file twice and formats the record a second time for
        every line; the stream's position says the same (the file is opened for appending, and
        only this handler writes it). A line is counted at its message plus a generous prefix,
        so a rollover may come a few bytes early, never late."""
        if self.stream is None:
            self.stream = self._open()
        if self.maxBytes <= 0:
            return False
        return bool(self.stream.tell() + len(record.getMessage()) + _PREFIX_BYTES >= self.maxBytes)
