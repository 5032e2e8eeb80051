"""A stand-in ``xdg-open`` that writes down the environment the bridge gave it.

Put first on ``PATH``, it dumps its environment (NUL-separated, as ``env -0`` writes it) to
``dump``, renamed into place once complete so a test can wait for the file to appear.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def install_fake_opener(
    folder: Path, monkeypatch: pytest.MonkeyPatch, dump_name: str, *, keep_argument: bool = False
) -> Path:
    """Install the opener in ``folder/bin``; returns the dump's path. ``keep_argument`` also
    writes what it was asked to open to ``<dump>.arg``."""
    bin_folder = folder / "bin"
    bin_folder.mkdir()
    dump = folder / dump_name
    keep = f'printf "%s" "$1" > "{dump}.arg"\n' if keep_argument else ""
    script = bin_folder / "xdg-open"
    script.write_text(f'#!/bin/sh\n/usr/bin/env -0 > "{dump}.part"\n{keep}mv "{dump}.part" "{dump}"\n')
    script.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    return dump
