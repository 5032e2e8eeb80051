"""Owner-only files and folders, whatever the umask (Linux and macOS; Windows relies on ACLs)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from epos_bridge.host.private_files import PrivateRotatingFileHandler, open_private, private_dir, private_file

pytestmark = [pytest.mark.skipif(os.name != "posix", reason="POSIX modes"), pytest.mark.usefixtures("permissive_umask")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_are_made_and_tightened_to_0700(tmp_path: Path) -> None:
    made = private_dir(tmp_path / "a" / "b")
    old = tmp_path / "old"
    old.mkdir(mode=0o755)

    assert mode(made) == 0o700
    assert mode(private_dir(old)) == 0o700


def test_files_are_made_and_tightened_to_0600(tmp_path: Path) -> None:
    new = private_file(tmp_path / "state.db")
    old = tmp_path / "old.db"
    old.write_text("x")
    old.chmod(0o644)
    with open_private(tmp_path / "export.csv", "w", newline="", encoding="utf-8") as handle:
        handle.write("a,b\r\n")

    assert mode(new) == 0o600 and new.read_bytes() == b""
    assert mode(private_file(old)) == 0o600 and old.read_text() == "x"
    assert mode(tmp_path / "export.csv") == 0o600
    assert (tmp_path / "export.csv").read_bytes() == b"a,b\r\n"


def test_every_rotation_of_the_log_is_0600(tmp_path: Path) -> None:
    leftover = tmp_path / "epos-bridge.log.3"
    leftover.write_text("an older version's rotation\n")
    leftover.chmod(0o644)
    handler = PrivateRotatingFileHandler(tmp_path / "epos-bridge.log", maxBytes=200, backupCount=2, encoding="utf-8")
    logger = logging.getLogger("test.private.rotation")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(20):
            logger.warning("line %d %s", n, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()

    files = sorted(tmp_path.glob("epos-bridge.log*"))
    assert {p.name for p in files} >= {"epos-bridge.log", "epos-bridge.log.1", "epos-bridge.log.2"}
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
