"""The data-folder lock on its own: one holder at a time, a record that explains who, and a
clean hand-over when the holder lets go or dies."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from epos_bridge.host.instance import (
    AlreadyServing,
    InstanceLock,
    InstanceOwner,
    already_serving_message,
    clear_stale_channels,
    folder_tag,
    new_raise_channel,
)


def test_second_lock_on_the_same_folder_is_refused_with_the_owner(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "data")
    owner = first.acquire(role="gui", raise_channel="epos-bridge-abc")

    with pytest.raises(AlreadyServing) as refused:
        InstanceLock(tmp_path / "data").acquire(role="headless")

    assert refused.value.owner == owner
    assert refused.value.owner is not None
    assert refused.value.owner.raise_channel == "epos-bridge-abc"  # the GUI's way to raise the window
    assert str(refused.value).startswith(
        f"another epos-bridge is already serving this venue from {tmp_path / 'data'} (pid {owner.pid}); "
        "only one connection per deployment gets Dojo's traffic"
    )
    first.release()


def test_release_hands_the_folder_over_and_removes_the_record(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path)
    with first.hold(role="headless"):
        assert first.held
        assert first.read_owner() is not None
    assert not first.held
    assert not (tmp_path / "instance-owner.json").exists()
    second = InstanceLock(tmp_path)
    second.acquire(role="headless")
    second.release()
    second.release()  # idempotent


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from epos_bridge.host.instance import InstanceLock
                InstanceLock({str(tmp_path)!r}).acquire(role="headless")
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyServing) as refused:
            InstanceLock(tmp_path).acquire(role="headless")
        assert refused.value.owner is not None
        assert refused.value.owner.pid == holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    # The OS dropped the lock with the process; its record is stale but only explains.
    lock = InstanceLock(tmp_path)
    owner = lock.acquire(role="headless")
    assert lock.read_owner() == owner
    lock.release()


def test_unreadable_record_still_gives_a_clear_message(tmp_path: Path) -> None:
    assert InstanceOwner.from_json("{not json") is None
    assert InstanceOwner.from_json('{"pid": 1}') is None
    assert "(pid unknown)" in already_serving_message(tmp_path, None)


def test_message_names_another_user(tmp_path: Path) -> None:
    owner = InstanceOwner(pid=42, user="someone-else-entirely", host="till", role="gui", started_at="2026-01-01")
    assert "(pid 42, user someone-else-entirely)" in already_serving_message(tmp_path, owner)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder: pytest's own are too deep for a socket path (sockaddr_un is ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="eb-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_folder_tag_is_the_same_for_every_spelling_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    tag = folder_tag(tmp_path / "data")
    assert tag == folder_tag(tmp_path / "data" / ".." / "data")
    assert tag != folder_tag(tmp_path / "other")


@pytest.mark.skipif(os.name != "posix", reason="a socket path on Linux and macOS")
def test_each_raise_channel_is_fresh_and_in_a_private_folder_of_this_user(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    data = short_tmp / "data"

    first, second = new_raise_channel(data), new_raise_channel(data)

    assert first != second  # nobody can create it before the bridge does: it is not known in advance
    for channel in (first, second):
        path = Path(channel)
        assert path.parent == data / "run"
        assert path.name.startswith(folder_tag(data) + "-") and path.suffix == ".sock"
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert len(os.fsencode(channel)) <= 100  # fits a sockaddr_un on Linux and macOS


@pytest.mark.skipif(os.name != "posix", reason="a socket path on Linux and macOS")
def test_the_session_runtime_folder_is_used_when_it_is_private(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = short_tmp / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert Path(new_raise_channel(short_tmp / "data")).parent == runtime / "epos-bridge"

    runtime.chmod(0o755)  # not a private runtime folder: the data folder is used instead
    assert Path(new_raise_channel(short_tmp / "data")).parent == short_tmp / "data" / "run"


@pytest.mark.skipif(os.name != "posix", reason="a socket path on Linux and macOS")
def test_a_path_too_long_for_a_socket_falls_back_to_a_fresh_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    deep = tmp_path / ("d" * 90)

    channel = Path(new_raise_channel(deep))

    assert len(os.fsencode(channel)) <= 100
    assert stat.S_IMODE(channel.parent.stat().st_mode) == 0o700
    channel.parent.rmdir()


@pytest.mark.skipif(os.name != "posix", reason="a socket path on Linux and macOS")
def test_stale_channels_of_this_folder_are_cleared_and_others_kept(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    data, other = short_tmp / "data", short_tmp / "other"
    stale, mine = Path(new_raise_channel(data)), new_raise_channel(data)
    stale.touch()
    Path(mine).touch()
    (data / "run" / "unrelated.txt").touch()

    assert clear_stale_channels(data, keep=mine) == 1
    assert not stale.exists() and Path(mine).exists() and (data / "run" / "unrelated.txt").exists()
    assert clear_stale_channels(other) == 0


@pytest.mark.skipif(os.name != "posix", reason="file modes on Linux and macOS")
def test_the_data_folder_and_lock_file_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        lock = InstanceLock(tmp_path / "data")
        lock.acquire(role="headless")
    finally:
        os.umask(previous)
    try:
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE(lock.lock_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.owner_path.stat().st_mode) == 0o600
    finally:
        lock.release()
