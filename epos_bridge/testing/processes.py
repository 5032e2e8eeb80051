"""Environments for running ``python -m epos_bridge`` as a child process in tests and benchmarks.

The child sees no inherited ``EPOS_BRIDGE_*`` variable, proxy, user settings, keyring or user
folders: HOME, XDG folders and TMPDIR live under ``folder``, and the keyring is keyring's
``fail`` backend, so a run can never read or write the real user's configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

from epos_bridge.config import ENV_ALLOW_INSECURE, ENV_API_KEY, ENV_VARS

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
