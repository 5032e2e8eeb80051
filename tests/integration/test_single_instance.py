"""One Dojo connection per deployment: two real ``epos-bridge run --headless`` processes on the
same data folder, against the real Dojo simulator. The second exits at once with the message and
never opens a WebSocket; once the first stops, a new one starts normally."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from epos_bridge.host.instance import EXIT_ALREADY_SERVING
from epos_bridge.sim.simulator import DEMO_API_KEY, DojoSimulator
from epos_bridge.testing.processes import isolated_env, simulator_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is TerminateProcess on Windows"),
]


class Bridge:
    """``python -m epos_bridge run --headless``, output to files so no pipe can fill up."""

    def __init__(self, env: dict[str, str], folder: Path, name: str) -> None:
        self.stderr_path = folder / f"{name}.stderr"
        self._out = (folder / f"{name}.stdout").open("wb")
        self._err = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "epos_bridge", "run", "--headless"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def exited(self, timeout: float) -> int:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s\nstderr:\n{self.stderr}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await self.exited(20)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._out.close()
        self._err.close()


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
    db = tmp_path / "venue" / "demo-venue.db"
    init = subprocess.run(
        [sys.executable, "-m", "epos_bridge", "db", "init", str(db), "--demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    return simulator_env(tmp_path, simulator, api_key=DEMO_API_KEY, db=db, data_dir=data_dir)


@pytest.fixture
def start(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[[str], Bridge]]:
    started: list[Bridge] = []
    folder = tmp_path / "output"
    folder.mkdir()

    def spawn(name: str) -> Bridge:
        bridge = Bridge(env, folder, name)
        started.append(bridge)
        return bridge

    yield spawn
    for bridge in started:
        bridge.close()


async def test_second_bridge_on_the_same_data_folder_exits_without_connecting(
    simulator: DojoSimulator, data_dir: Path, start: Callable[[str], Bridge]
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

    assert await first.terminate() == 0, first.stderr
    await simulator.gateway.wait_until(lambda: simulator.gateway.connections_closed == 1, timeout=10)

    third = start("third")
    await simulator.gateway.wait_until(lambda: simulator.gateway.connections_opened == 2, timeout=30)
    assert third.process.poll() is None, third.stderr
    assert await third.terminate() == 0, third.stderr
    assert simulator.gateway.connections_opened == 2
