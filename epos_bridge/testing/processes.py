"""Environments for running ``python -m epos_bridge`` as a child process in tests and benchmarks.

The child sees no inherited ``EPOS_BRIDGE_*`` variable, proxy, user settings, keyring or user
folders: HOME, XDG folders and TMPDIR live under ``folder``, and the keyring is keyring's
``fail`` backend, so a run can never read or write the real user's configuration.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from epos_bridge.config import ENV_ALLOW_INSECURE, ENV_API_KEY, ENV_VARS
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

USER_FOLDERS = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "TMPDIR")


def isolated_env(folder: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
    }
    for name in USER_FOLDERS:
        path = folder / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    return env


def bridge_env(
    folder: Path,
    *,
    ws_url: str,
    api_url: str,
    api_key: str,
    software_house_id: str,
    db: Path,
    data_dir: Path,
) -> dict[str, str]:
    """:func:`isolated_env` plus the published variables pointing the bridge at a simulator."""
    env = isolated_env(folder)
    env.update(
        {
            ENV_API_KEY: api_key,
            ENV_VARS["software_house_id"]: software_house_id,
            ENV_VARS["ws_url"]: ws_url,
            ENV_VARS["api_url"]: api_url,
            ENV_ALLOW_INSECURE: "1",
            ENV_VARS["db_path"]: str(db),
            ENV_VARS["data_dir"]: str(data_dir),
        }
    )
    return env


def simulator_env(folder: Path, sim: DojoSimulator, *, api_key: str, db: Path, data_dir: Path) -> dict[str, str]:
    """:func:`bridge_env` pointed at a running simulator, serving as its demo software house."""
    return bridge_env(
        folder,
        ws_url=sim.ws_url,
        api_url=sim.api_url,
        api_key=api_key,
        software_house_id=DEMO_SOFTWARE_HOUSE_ID,
        db=db,
        data_dir=data_dir,
    )


class Child(Protocol):
    """What :func:`stop_process` uses of a started child (a ``Popen``): nothing in the
    package starts one (tests/unit/test_child_processes.py), the tests and benchmarks do."""

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


def stop_process(process: Child, timeout_s: float = 15) -> None:
    """Ask a child to stop (SIGTERM) and kill it if it has not exited within ``timeout_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
