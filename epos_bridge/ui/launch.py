"""Everything the tray app launches (the file browser for the logs folder, a browser for a link)
goes through here, with an environment that holds no secret.

``QDesktopServices.openUrl`` would hand the child the bridge's whole environment, including
``EPOS_BRIDGE_API_KEY`` and any proxy password in ``HTTPS_PROXY``: whatever program the desktop
opens a folder or a link with would inherit them, and so would every process it starts. So the
platform's opener (``xdg-open``, ``open``, ``explorer``) is started detached, through
``QProcess`` with :func:`epos_bridge.protocol.redaction.child_environment`. Nothing else in the
bridge starts a program (``tests/unit/test_child_processes.py`` keeps it that way).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, QUrl

from epos_bridge.config import ENV_API_KEY
from epos_bridge.protocol.redaction import KnownSecrets, child_environment

log = logging.getLogger(__name__)

SECRET_VARIABLES = (ENV_API_KEY,)


def opener(target: str) -> tuple[str, list[str]]:
    """The program (and its arguments) that opens a folder or URL the way the desktop would."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return "explorer.exe", [target]
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        return "open", [target]
    return "xdg-open", [target]


def launch_detached(program: str, arguments: list[str], secrets: KnownSecrets) -> bool:
    """Start ``program`` on its own (it outlives the bridge) without the bridge's secrets."""
    environment = QProcessEnvironment()
    for name, value in child_environment(os.environ, secrets, drop=SECRET_VARIABLES).items():
        environment.insert(name, value)
    process = QProcess()
    process.setProgram(program)
    process.setArguments(arguments)
    process.setProcessEnvironment(environment)
    process.setStandardInputFile(QProcess.nullDevice())
    process.setStandardOutputFile(QProcess.nullDevice())
    process.setStandardErrorFile(QProcess.nullDevice())
    started = process.startDetached()
    if not started:
        log.warning("could not start %s: %s", program, process.errorString())
    return bool(started)


def open_folder(folder: Path, secrets: KnownSecrets) -> bool:
    program, arguments = opener(str(folder))
    return launch_detached(program, arguments, secrets)


def open_link(url: str, secrets: KnownSecrets) -> bool:
    """A web link, in the default browser; only http(s) links are ever opened."""
    if QUrl(url).scheme() not in ("http", "https"):
        log.warning("not opening %r: only http and https links are opened", url)
        return False
    program, arguments = opener(url)
    return launch_detached(program, arguments, secrets)
