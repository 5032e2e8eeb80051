"""The single-instance lock is keyed by the venue, not only by the data folder: two bridges with
different data folders must not both serve one POS database (however its path is spelled), nor
one Dojo account (its API key). The key never appears in a lock's file name or contents."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from epos_bridge.host.instance import AlreadyServing, InstanceLock, Venue, database_lock


@pytest.fixture(autouse=True)
def private_user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this user's key locks go (platformdirs' data folder), kept inside the test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    return home


def pos_file(tmp_path: Path, name: str = "pos.db") -> Path:
    path = tmp_path / "venue" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_two_data_folders_on_one_pos_database_do_not_both_serve(tmp_path: Path) -> None:
    db = pos_file(tmp_path)
    first = InstanceLock(tmp_path / "data-a", Venue(db, "key-a"))
    owner = first.acquire(role="gui", raise_channel="epos-bridge-abc")
    try:
        with pytest.raises(AlreadyServing) as refused:
            InstanceLock(tmp_path / "data-b", Venue(db, "key-b")).acquire(role="headless")
        assert refused.value.owner is not None
        assert refused.value.owner.pid == owner.pid
        assert refused.value.owner.raise_channel == "epos-bridge-abc"  # the tray still raises the first window
        words = str(refused.value)
        assert "another epos-bridge is already serving this venue" in words
        assert str(db) in words and str(tmp_path / "data-a") in words
        # The second bridge took nothing: its own data folder is free for another venue.
        other = InstanceLock(tmp_path / "data-b", Venue(pos_file(tmp_path, "other.db"), "key-c"))
        other.acquire(role="headless")
        other.release()
    finally:
        first.release()
    again = InstanceLock(tmp_path / "data-b", Venue(db, "key-b"))
    again.acquire(role="headless")
    again.release()


def test_every_spelling_of_the_pos_database_is_the_same_venue(tmp_path: Path) -> None:
    db = pos_file(tmp_path)
    link = tmp_path / "link.db"
    link.symlink_to(db)
    first = InstanceLock(tmp_path / "data-a", Venue(db, None))
    first.acquire(role="headless")
    try:
        for spelling in (link, tmp_path / "venue" / ".." / "venue" / "pos.db"):
            with pytest.raises(AlreadyServing):
                InstanceLock(tmp_path / "data-b", Venue(spelling, None)).acquire(role="headless")
    finally:
        first.release()


def test_two_bridges_with_one_api_key_do_not_both_serve(tmp_path: Path) -> None:
    key = "sk_sandbox_c0ffee-this-is-the-secret"
    first = InstanceLock(tmp_path / "data-a", Venue(pos_file(tmp_path, "a.db"), key))
    first.acquire(role="headless")
    try:
        with pytest.raises(AlreadyServing) as refused:
            InstanceLock(tmp_path / "data-b", Venue(pos_file(tmp_path, "b.db"), key)).acquire(role="headless")
        assert "the same Dojo API key" in str(refused.value)
        assert key not in str(refused.value)
        # Nowhere on disk: neither a file name nor a file's contents carry the key.
        for folder in (tmp_path,):
            for path in folder.rglob("*"):
                assert key not in path.name
                if path.is_file() and not path.is_symlink():
                    assert key.encode() not in path.read_bytes(), path
    finally:
        first.release()


def test_a_jsonfile_folder_is_a_venue_too(tmp_path: Path) -> None:
    folder = tmp_path / "pos-folder"
    folder.mkdir()
    first = InstanceLock(tmp_path / "data-a", Venue(folder, None))
    first.acquire(role="headless")
    try:
        with pytest.raises(AlreadyServing):
            InstanceLock(tmp_path / "data-b", Venue(folder, None)).acquire(role="headless")
    finally:
        first.release()


def test_database_lock_is_refused_while_a_bridge_serves_it(tmp_path: Path) -> None:
    """What ``db detach`` takes: the POS database's own part of the venue lock."""
    db = pos_file(tmp_path)
    serving = InstanceLock(tmp_path / "data", Venue(db, "key"))
    serving.acquire(role="headless")
    try:
        with pytest.raises(AlreadyServing) as refused, database_lock(db):
            pass
        assert refused.value.owner is not None and refused.value.owner.pid == os.getpid()
    finally:
        serving.release()
    # And a bridge cannot start while detach holds it; it is told what is going on.
    with database_lock(db):
        with pytest.raises(AlreadyServing, match="db detach"):
            InstanceLock(tmp_path / "data", Venue(db, "key")).acquire(role="headless")
        free = InstanceLock(tmp_path / "data")  # the refused bridge kept nothing it took
        free.acquire(role="headless")
        free.release()


@pytest.mark.skipif(os.name != "posix", reason="file modes on Linux and macOS")
def test_the_venue_owner_records_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    db = pos_file(tmp_path)
    try:
        lock = InstanceLock(tmp_path / "data", Venue(db, "key"))
        lock.acquire(role="headless")
    finally:
        os.umask(previous)
    try:
        records = [p for p in tmp_path.rglob("*owner*.json")]
        assert len(records) == 3  # the data folder's, the POS database's and the key's
        for record in records:
            assert stat.S_IMODE(record.stat().st_mode) == 0o600, record
    finally:
        lock.release()
    assert not [p for p in tmp_path.rglob("*owner*.json")]


def test_a_bridge_that_moves_to_another_venue_takes_it_first_and_lets_the_old_one_go(tmp_path: Path) -> None:
    """Settings changed the POS database or the key while running (or a first run locked
    neither): the lock follows, and a venue another bridge serves is refused, changing nothing."""
    first_db, second_db, third_db = (pos_file(tmp_path, name) for name in ("a.db", "b.db", "c.db"))
    running = InstanceLock(tmp_path / "data-a")
    running.acquire(role="gui")  # a first run: no database, no key yet
    other = InstanceLock(tmp_path / "data-b", Venue(second_db, "key-b"))
    other.acquire(role="headless")
    try:
        running.move_to(Venue(first_db, "key-a"))
        with pytest.raises(AlreadyServing):
            InstanceLock(tmp_path / "data-c", Venue(first_db, "key-c")).acquire(role="headless")

        with pytest.raises(AlreadyServing):
            running.move_to(Venue(second_db, "key-a"))  # served by the other bridge
        assert running.venue == Venue(first_db, "key-a")
        with pytest.raises(AlreadyServing):  # still ours: the refused move let nothing go
            InstanceLock(tmp_path / "data-c", Venue(first_db, "key-c")).acquire(role="headless")
        with pytest.raises(AlreadyServing):
            running.move_to(Venue(third_db, "key-b"))  # the other bridge's key

        running.move_to(Venue(third_db, "key-a"))
        freed = InstanceLock(tmp_path / "data-c", Venue(first_db, "key-c"))
        freed.acquire(role="headless")  # the old database is free now
        freed.release()
        with pytest.raises(AlreadyServing):
            InstanceLock(tmp_path / "data-c", Venue(third_db, "key-c")).acquire(role="headless")
        running.move_to(Venue(third_db, "key-a"))  # the same venue again: nothing to do
    finally:
        other.release()
        running.release()
