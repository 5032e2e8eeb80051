"""Nothing in the bridge starts a program except epos_bridge/ui/launch.py, which gives it an
environment without secrets: a new way to launch something must go through it."""

from __future__ import annotations

import re
from pathlib import Path

import epos_bridge

PACKAGE = Path(epos_bridge.__file__).parent
LAUNCHER = PACKAGE / "ui" / "launch.py"
LAUNCHING = re.compile(
    r"QDesktopServices|QProcess|subprocess\.(Popen|run|call|check_)|create_subprocess_|os\.(system|startfile|exec|spawn|posix_spawn|popen)"
    r"|\bwebbrowser\b|OpenExternalLinks"
)


def test_only_the_launcher_starts_programs() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): [m.group(0) for m in LAUNCHING.finditer(path.read_text(encoding="utf-8"))]
        for path in PACKAGE.rglob("*.py")
        if path != LAUNCHER
    }
    assert {name: found for name, found in offenders.items() if found} == {}
