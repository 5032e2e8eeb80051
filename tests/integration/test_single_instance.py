"""One Dojo connection per deployment: two real ``epos-bridge run --headless`` processes on the
same data folder, against the real Dojo simulator. The second exits at once with the message and
never opens a WebSocket; once the first stops, a new one starts normally."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from epos_bridge.host.instance import EXIT_ALREADY_SERVING
from epos_bridge.sim.simulator import DEMO_API_KEY, DojoSimulator
from epos_bridge.testing.processes import isolated_env, simulator_env
from tests.helpers.child import CliProcess, init_demo_venue

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is TerminateProcess on Windows"),
]


@pytest.fixture
async def simulator() -> AsyncIterator[DojoSimulator]:
    async with DojoSimulator() as sim:
        yield sim


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "bridge-data"


@pytest.fixture
def env(tmp_path: Path, simulator: DojoSimulator, data_dir: Path) -> dict[str, str]:
    env = isolated_env(tmp_path)
    db = init_demo_venue(tmp_path / "venue" / "demo-venue.db", env)
    return simulator_env(tmp_path, simulator, api_key=DEMO_API_KEY, db=db, data_dir=data_dir)


@pytest.fixture
def start(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[[str], CliProcess]]:
    started: list[CliProcess] = []
    folder = tmp_path / "output"
    folder.mkdir()

    def spawn(name: str) -> CliProcess:
        bridge = CliProcess(["run", "--headless"], env, folder, name)
        started.append(bridge)
        return bridge

    yield spawn
    for bridge in started:
        bridge.close()


async def test_second_bridge_on_the_same_data_folder_exits_without_connecting(
    simulator: DojoSimulator, data_dir: Path, start: Callable[[str], CliProcess]
) -> None:
    first = start("first")
    await simulator.gateway.wait_connected(timeout=30)
    assert simulator.gateway.connections_opened == 1

    second = start("second")
    code = await second.exited(timeout=30)

    assert code == EXIT_ALREADY_SERVING, second.stderr
    assert (
        f"another epos-bridge is already serving this venue from {data_dir} (pid {first.process.pid}); "
        "only one connection per deployment gets Dojo's traffic"
    ) in second.stderr
    await asyncio.sleep(1.0)  # a stray handshake from the second process would have landed by now
    assert simulator.gateway.connections_opened == 1
    assert first.process.poll() is None, "the first bridge must keep serving"

    assert (await first.terminate(20))[0] == 0, first.stderr
    await simulator.gateway.wait_until(lambda: simulator.gateway.connections_closed == 1, timeout=10)

    third = start("third")
    await simulator.gateway.wait_until(lambda: simulator.gateway.connections_opened == 2, timeout=30)
    assert third.process.poll() is None, third.stderr
    assert (await third.terminate(20))[0] == 0, third.stderr
    assert simulator.gateway.connections_opened == 2


async def test_a_second_bridge_on_the_same_pos_database_with_its_own_data_folder_exits_without_connecting(
    simulator: DojoSimulator, tmp_path: Path, env: dict[str, str], data_dir: Path
) -> None:
    """The lock is the venue's: another data folder does not make a second connection for the same POS."""
    folder = tmp_path / "output"
    folder.mkdir(exist_ok=True)
    first = CliProcess(["run", "--headless"], env, folder, "first")
    second: CliProcess | None = None
    try:
        await simulator.gateway.wait_connected(timeout=30)
        second_env = {**env, "EPOS_BRIDGE_DATA_DIR": str(tmp_path / "another-data-folder")}
        second = CliProcess(["run", "--headless"], second_env, folder, "second")
        code = await second.exited(timeout=30)
        assert code == EXIT_ALREADY_SERVING, second.stderr
        assert "another epos-bridge is already serving this venue" in second.stderr
        assert f"(pid {first.process.pid})" in second.stderr
        assert str(data_dir) in second.stderr  # where the first one serves it from
        await asyncio.sleep(1.0)
        assert simulator.gateway.connections_opened == 1
        assert first.process.poll() is None, "the first bridge must keep serving"
    finally:
        first.close()
        if second is not None:
            second.close()
