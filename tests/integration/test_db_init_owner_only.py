"""What ``epos-bridge db init`` creates is its user's alone, whatever the umask: the reference
database file, the sqlmap demo's file and the file adapter's folder (every file 0600, every
folder 0700), and SQLite's -wal and -shm beside a database (SQLite gives them the database
file's mode). A file or folder that was already there is not init's to change."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap.mapping import SHIPPED
from epos_bridge.testing.processes import isolated_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes; Windows uses the installer's ACL")


def db(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``epos-bridge db ARGS`` under a permissive umask (022), as a till's login shell has."""
    return subprocess.run(
        [sys.executable, "-m", "epos_bridge", "db", *args],
        env=isolated_env(tmp_path / "env"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(0o022),
    )


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.lstat().st_mode))


def wal_and_shm_modes(path: Path) -> dict[str, str]:
    """-wal and -shm as SQLite creates them while a connection writes (and before it closes)."""
    previous = os.umask(0o022)
    try:
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            conn.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
            conn.execute("INSERT INTO scratch VALUES (1)")
            conn.commit()
            found = {suffix: mode(Path(f"{path}{suffix}")) for suffix in ("-wal", "-shm")}
            conn.execute("DROP TABLE scratch")
            conn.commit()
            return found
    finally:
        os.umask(previous)


def test_the_reference_database_and_the_folders_init_makes_are_owner_only(tmp_path: Path) -> None:
    (tmp_path / "venue").mkdir(mode=0o755)
    path = tmp_path / "venue" / "new" / "deeper" / "pos.db"
    result = db(tmp_path, "init", str(path), "--demo")
    assert result.returncode == 0, result.stderr

    assert mode(path) == oct(0o600)
    assert mode(path.parent) == mode(path.parent.parent) == oct(0o700)
    assert mode(tmp_path / "venue") == oct(0o755), "a folder that was there is left as it was"
    assert wal_and_shm_modes(path) == {"-wal": oct(0o600), "-shm": oct(0o600)}


def test_the_sqlmap_demo_database_is_owner_only(tmp_path: Path) -> None:
    (tmp_path / "floreant").mkdir(mode=0o755)
    path = tmp_path / "floreant" / "floreant.db"
    result = db(tmp_path, "init", str(path), "--demo", "--adapter", "sqlmap", "--mapping", "floreant")
    assert result.returncode == 0, result.stderr

    assert mode(path) == oct(0o600)
    assert mode(path.parent) == oct(0o755), "a folder that was there is left as it was"
    assert wal_and_shm_modes(path) == {"-wal": oct(0o600), "-shm": oct(0o600)}


def test_attaching_a_pos_database_leaves_its_mode_as_the_pos_made_it(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((SHIPPED / "floreant.sql").read_text(encoding="utf-8"))
    path.chmod(0o664)  # the POS's, shared with its group
    result = db(tmp_path, "init", str(path), "--adapter", "sqlmap", "--mapping", "floreant")
    assert result.returncode == 0, result.stderr
    assert mode(path) == oct(0o664)


def test_the_file_database_folder_is_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "pos-folder"
    result = db(tmp_path, "init", str(folder), "--demo", "--adapter", "jsonfile")
    assert result.returncode == 0, result.stderr

    found = {str(folder): mode(folder)} | {str(p): mode(p) for p in folder.rglob("*")}
    assert len(found) > 10
    wider = {p: m for p, m in found.items() if int(m, 8) != (0o700 if Path(p).is_dir() else 0o600)}
    assert wider == {}
