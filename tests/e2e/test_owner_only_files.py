"""On Linux every file and folder the bridge creates is its user's alone (0600 / 0700), whatever
the umask: the state database (with its WAL and shared-memory files), the payment log, the
logs and their rotations, the settings file and its folder, the lock and owner record, the
diagnostics zip, a CSV export, the autostart entry. A real bridge against the simulator, with a
payment taken, under a permissive umask (022); folders an older version left at 0755 are
tightened.
"""

from __future__ import annotations

import logging
import os
import random
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from epos_bridge import config
from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.diagnostics import build_diagnostics, gather
from epos_bridge.host import autostart
from epos_bridge.host.instance import InstanceLock
from epos_bridge.sim import flows
from epos_bridge.sim.simulator import DojoSimulator
from tests.helpers.logging_setup import bridge_logging

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX modes; Windows uses the installer's ACL")


def modes_under(folder: Path) -> dict[str, int]:
    found = {str(folder): stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def not_owner_only(modes: dict[str, int]) -> dict[str, str]:
    return {path: oct(mode) for path, mode in modes.items() if mode & 0o077}


async def test_everything_the_bridge_creates_is_owner_only(
    permissive_umask: None,
    make_settings: Callable[..., BridgeSettings],
    simulator: DojoSimulator,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    # What an older version left behind: a 0755 data folder and a 0644 log.
    (data_dir / "logs").mkdir(parents=True)
    data_dir.chmod(0o755)
    (data_dir / "logs").chmod(0o755)
    old_log = data_dir / "logs" / "epos-bridge.log.1"
    old_log.write_text("an older run\n")
    old_log.chmod(0o644)

    settings = make_settings()
    lock = InstanceLock(settings.data_dir)
    lock.acquire(role="headless")
    bridge = Bridge(settings)
    try:
        with bridge_logging(bridge.secrets, settings.log_dir):
            await bridge.start()
            await simulator.gateway.wait_connected(10)
            report = await flows.pay_at_table(simulator.send, rng=random.Random(3), parts=1)
            assert report.ok, report.error
            await simulator.gateway.wait_until(lambda: bool(bridge.recent_requests.snapshot()), 10, "a request")
            logging.getLogger("epos_bridge.test").info("a line for the log file")

            settings_path = config.save(settings, tmp_path / "config" / "epos-bridge" / "settings.json")
            zip_path = build_diagnostics(
                tmp_path / "support" / "diagnostics.zip",
                await gather(bridge, requests=bridge.recent_requests, secrets=bridge.secrets.all()),
            )
            exported = tmp_path / "exports" / "payments.csv"
            exported.parent.mkdir()
            entries = await bridge.payment_log.entries()
            assert entries
            await bridge.payment_log.export_csv(exported, entries)
            entry = autostart.xdg_autostart({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, tmp_path)
            entry.enable(["epos-bridge", "run"])
            await bridge.stop()
    finally:
        lock.release()

    data_modes = modes_under(settings.data_dir)
    names = {Path(p).name for p in data_modes}
    assert {"bridge-state.db", "logs", "epos-bridge.log", "epos-bridge.log.1", "instance.lock"} <= names
    assert not_owner_only(data_modes) == {}
    assert not_owner_only(modes_under(settings_path.parent)) == {}
    for path in (zip_path, exported, entry.path):
        assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(0o600), path
    assert stat.S_IMODE((tmp_path / "support").stat().st_mode) == 0o700  # a folder the export made
    assert stat.S_IMODE(exported.parent.stat().st_mode) == 0o755  # one the user chose is left alone


async def test_the_wal_and_shared_memory_files_are_owner_only_while_the_bridge_runs(
    permissive_umask: None, make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator
) -> None:
    settings = make_settings()
    bridge = Bridge(settings)
    await bridge.start()
    try:
        await simulator.gateway.wait_connected(10)
        await flows.pay_at_table(simulator.send, rng=random.Random(5), parts=1)
        live = modes_under(settings.data_dir)
    finally:
        await bridge.stop()

    assert {"bridge-state.db-wal", "bridge-state.db-shm"} <= {Path(p).name for p in live}
    assert not_owner_only(live) == {}


def test_a_data_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a folder another user owns needs root")
    from epos_bridge.host.private_files import NotOurFolder, private_dir

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 54321, 54321)

    with pytest.raises(NotOurFolder, match="belongs to another user"):
        private_dir(foreign)
