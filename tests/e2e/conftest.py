"""End-to-end fixtures: the real bridge (in process or as ``python -m epos_bridge``) against the
real Dojo simulator on 127.0.0.1, over a demo venue created by ``epos-bridge db init --demo``.

Every subprocess gets an environment built from scratch: HOME and the XDG folders point into
``tmp_path`` and the keyring is the ``fail`` backend, so no test reads or writes the real
user's settings, logs or OS keyring. The API key is unique per test (``sk_sandbox_`` + a uuid)
so a search for it in output and files cannot be fooled by the well-known demo key.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.testing.processes import isolated_env, simulator_env
from tests.helpers.child import THIS_PYTHON, CliProcess, init_demo_venue

__all__ = ["REQUEST_LINE", "CliProcess", "posix_signals", "run_cli", "started"]  # what the e2e tests import from here

REQUEST_LINE = re.compile(r"(?P<method>\w+V1) id=(?P<id>\S+) (?P<outcome>\S+) (?P<ms>\d+\.\d) ms")
"""One request-log line as written by ``Bridge._served``: method, id, outcome, milliseconds."""

posix_signals = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is TerminateProcess on Windows")


@pytest.fixture
def api_key() -> str:
    return f"sk_sandbox_e2e_{uuid.uuid4().hex}"


@pytest.fixture
async def simulator(api_key: str) -> AsyncIterator[DojoSimulator]:
    sim = DojoSimulator(api_key=api_key, software_house_id=DEMO_SOFTWARE_HOUSE_ID)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """A demo venue created through the real CLI (``epos-bridge db init --demo``)."""
    return init_demo_venue(tmp_path / "venue" / "demo-venue.db", isolated_env(tmp_path))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "bridge-data"


@pytest.fixture
def bridge_env(tmp_path: Path, simulator: DojoSimulator, demo_db: Path, api_key: str, data_dir: Path) -> dict[str, str]:
    """The environment for ``python -m epos_bridge`` pointed at ``simulator`` and ``demo_db``."""
    return simulator_env(tmp_path, simulator, api_key=api_key, db=demo_db, data_dir=data_dir)


@pytest.fixture
def make_settings(
    simulator: DojoSimulator, demo_db: Path, api_key: str, data_dir: Path
) -> Callable[..., BridgeSettings]:
    """In-process settings for :class:`epos_bridge.app.Bridge`; keyword arguments override."""

    def build(**changes: object) -> BridgeSettings:
        values: dict[str, object] = {
            "allow_insecure": True,
            "software_house_id": DEMO_SOFTWARE_HOUSE_ID,
            "ws_url": simulator.ws_url,
            "api_url": simulator.api_url,
            "db_path": demo_db,
            "data_dir": data_dir,
            "api_key": SecretStr(api_key),
            "api_key_source": "environment",
        }
        values.update(changes)
        return BridgeSettings.model_validate(values)

    return build


# --- subprocesses -------------------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """Start CLI processes; every one is killed (if still running) and reaped after the test."""
    started: list[CliProcess] = []

    def start(args: list[str], env: dict[str, str], name: str = "cli") -> CliProcess:
        process = CliProcess(args, env, tmp_path / "output", f"{name}-{len(started)}")
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


async def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:  # noqa: ASYNC109
    """Run a short CLI command to completion without blocking the loop the simulator runs on."""
    return await asyncio.to_thread(
        subprocess.run,
        [*THIS_PYTHON, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def started(bridge: Bridge, simulator: DojoSimulator) -> None:
    """The in-process bridge started, connected to the simulator and registered."""
    await bridge.start()
    await simulator.gateway.wait_connected(timeout=10)
    await simulator.gateway.wait_until(
        lambda: bridge.registration.at is not None, timeout=10, what="the registration to finish"
    )
