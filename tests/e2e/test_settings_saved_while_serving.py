"""Saving Settings while Dojo's requests are being served (issue 11, item 8).

An installer may press Save at any moment: on a busy evening, or while Dojo's API refuses
registration. No request may fail because of it, requests already running finish on the database
they started on, and only one registration loop ever runs.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.host.instance import AlreadyServing, InstanceLock, Venue
from epos_bridge.sim.simulator import DojoSimulator

pytestmark = pytest.mark.timeout(90)


def registration_loops() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "registration" and not t.done()]


async def test_saving_settings_twice_while_registration_fails_keeps_one_registration_loop(
    make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator
) -> None:
    simulator.rest.fail_registration(503)
    bridge = Bridge(make_settings())
    await bridge.start()
    try:
        await simulator.gateway.wait_connected(timeout=10)
        for reseller in ("r-1", "r-2", "r-3"):
            await bridge.apply_settings(bridge.settings.model_copy(update={"reseller_id": reseller}))
            await asyncio.sleep(0)
            assert len(registration_loops()) == 1
        simulator.rest.fail_registration(None)
        await bridge.apply_settings(bridge.settings.model_copy(update={"reseller_id": "r-4"}))
        await simulator.gateway.wait_until(lambda: bridge.registration.error is None and bridge.registration.at is not None,
                                           timeout=20, what="registration to succeed")  # fmt: skip
    finally:
        await bridge.stop()
    assert registration_loops() == []


async def test_switching_the_pos_database_while_requests_run_fails_none_of_them(
    make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator, demo_db: Path, tmp_path: Path
) -> None:
    other_db = tmp_path / "other-venue.db"
    shutil.copy(demo_db, other_db)
    bridge = Bridge(make_settings())
    await bridge.start()
    try:
        await simulator.gateway.wait_connected(timeout=10)
        venues = [demo_db, other_db]
        answers: list[dict[str, object]] = []

        async def burst(round_: int, n: int) -> None:
            # Payments (the idempotency store is consulted first) and reads, all at once.
            calls = [
                simulator.send("RecordOrderPaymentByIdV1", {"headers": {}, "orderId": "8",
                                                            "paymentIntentId": f"pi_save_{round_}_{i}",
                                                            "paidAmount": {"value": 1, "currencyCode": "GBP"}})
                if i % 2 else simulator.send("GetOrderByIdV1", {"headers": {}, "orderId": str(1 + i % 9)})
                for i in range(n)
            ]  # fmt: skip
            answers.extend(await asyncio.gather(*calls))

        for round_ in range(8):
            requests = asyncio.create_task(burst(round_, 60))
            await asyncio.sleep(0.002 * round_)
            target = venues[(round_ + 1) % 2]
            changed = await bridge.apply_settings(bridge.settings.model_copy(update={"db_path": target}))
            assert changed == ["POS database"]
            await requests
        errors = [a for a in answers if "error" in a]
        assert errors == [], errors[:3]
        assert len(answers) == 8 * 60
    finally:
        await bridge.stop()


async def test_settings_naming_a_pos_database_another_bridge_serves_are_not_applied(
    make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator, demo_db: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The single-instance lock follows Settings (issue 25, item 7): a bridge moved onto a venue
    another bridge serves refuses the move and keeps serving its own database."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))  # this user's key locks, in the test
    other_db = tmp_path / "other-venue.db"
    shutil.copy(demo_db, other_db)
    settings = make_settings()
    mine = InstanceLock(settings.data_dir)
    mine.acquire(role="headless")
    theirs = InstanceLock(tmp_path / "their-data", Venue(other_db, "sk_sandbox_someone_else"))
    theirs.acquire(role="headless")
    try:
        bridge = Bridge(settings, venue_lock=mine)  # a first-run lock: the venue is locked as it starts
        assert mine.venue is not None and mine.venue.database == demo_db
        await bridge.start()
        try:
            await simulator.gateway.wait_connected(timeout=10)
            with pytest.raises(AlreadyServing, match="already serving"):
                await bridge.apply_settings(settings.model_copy(update={"db_path": other_db}))
            assert bridge.settings.db_path == demo_db
            answer = await simulator.send("GetOrderByIdV1", {"headers": {}, "orderId": "8"})
            assert answer["result"]["id"] == "8"
        finally:
            await bridge.stop()
        with pytest.raises(AlreadyServing):
            Bridge(settings.model_copy(update={"db_path": other_db}), venue_lock=mine)
    finally:
        theirs.release()
        mine.release()
