"""The data-folder lock on its own: one holder at a time, a record that explains who, and a
clean hand-over when the holder lets go or dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from epos_bridge.instance import (
    AlreadyServing,
    InstanceLock,
    InstanceOwner,
    already_serving_message,
    raise_channel_name,
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
                from epos_bridge.instance import InstanceLock
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


def test_raise_channel_is_the_same_for_every_spelling_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    name = raise_channel_name(tmp_path / "data")
    assert name == raise_channel_name(tmp_path / "data" / ".." / "data")
    assert name != raise_channel_name(tmp_path / "other")
    assert name.startswith("epos-bridge-")
    assert len(name) < 40  # QLocalServer names become socket paths on Linux: keep them short
