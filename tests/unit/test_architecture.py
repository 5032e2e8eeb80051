"""The headless parts run without a display: importing them must not import Qt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CORE_MODULES = [
    "epos_bridge",
    "epos_bridge.protocol.entities",
    "epos_bridge.protocol.params",
    "epos_bridge.domain.locks",
    "epos_bridge.domain.payments",
    "epos_bridge.ports",
    "epos_bridge.services.dispatcher",
    "epos_bridge.adapters.sqlite.adapter",
    "epos_bridge.cli",
    "epos_bridge.verify",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_imports_no_qt(module: str) -> None:
    code = f"import sys, {module}; bad = [m for m in sys.modules if m.startswith(('PySide6', 'qasync'))]; print(bad); raise SystemExit(1 if bad else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold() -> None:
    """import-linter: layers point inwards, Qt only in ui/, the pure core does no I/O."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None, "import-linter is a test dependency"
    result = subprocess.run([lint_imports], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
