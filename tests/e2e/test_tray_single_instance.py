"""The tray app: one per venue (data folder, POS database, API key). A second launch brings the first forward and exits,
and Dojo sees one connection. Real processes, offscreen Qt, the real simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from epos_bridge.sim.simulator import DojoSimulator
from tests.e2e.conftest import CliProcess, run_cli


async def test_a_second_launch_raises_the_first_and_exits(
    simulator: DojoSimulator, bridge_env: dict[str, str], spawn: Callable[..., CliProcess]
) -> None:
    env = {**bridge_env, "QT_QPA_PLATFORM": "offscreen"}
    first = spawn([], env, name="tray")
    await first.wait_for(lambda: simulator.gateway.connected, 30, "the tray app to connect")

    second = await run_cli([], env, timeout=60)

    assert second.returncode == 0, second.stderr
    await first.wait_for(lambda: "bringing it forward" in first.stderr, 10, "the first window to be raised")
    assert simulator.gateway.connections_opened == 1
    code, _ = await first.terminate()
    assert code == 0
    assert simulator.gateway.close_codes[-1] == 1001


async def test_a_second_launch_with_another_data_folder_for_the_same_venue_raises_the_first(
    simulator: DojoSimulator,
    bridge_env: dict[str, str],
    spawn: Callable[..., CliProcess],
    tmp_path: Path,
) -> None:
    """The lock is the venue's (its POS database and API key), so a second tray app pointed at
    another data folder still finds the first, brings its window forward and never connects."""
    env = {**bridge_env, "QT_QPA_PLATFORM": "offscreen"}
    first = spawn([], env, name="tray")
    await first.wait_for(lambda: simulator.gateway.connected, 30, "the tray app to connect")

    second = await run_cli([], {**env, "EPOS_BRIDGE_DATA_DIR": str(tmp_path / "another-data-folder")}, timeout=60)

    assert second.returncode == 0, second.stderr
    await first.wait_for(lambda: "bringing it forward" in first.stderr, 10, "the first window to be raised")
    assert simulator.gateway.connections_opened == 1
    code, _ = await first.terminate()
    assert code == 0
