"""Start the tray app when the user logs in, behind one small interface on every platform.

* Windows: the ``epos-bridge`` value under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``
  — the same value the installer's "Start at login" task writes, so the Settings toggle and the
  installer agree and the uninstaller removes it.
* Linux: an XDG autostart entry, ``$XDG_CONFIG_HOME/autostart/epos-bridge.desktop``.
* macOS: a LaunchAgent, ``~/Library/LaunchAgents/<label>.plist`` (loaded by launchd at the next login).

What each writes is computed by a pure function (:func:`windows_run_value`,
:func:`desktop_entry`, :func:`launch_agent_plist`); the classes only put it in place. The Windows
registry is reached through :class:`RunKey`, so tests run the Windows logic anywhere with a
dictionary. Per user only: nothing here needs administrator rights.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from epos_bridge.host.private_files import open_private

APP_ID = "epos-bridge"
DISPLAY_NAME = "EPOS Bridge"
RUN_KEY_PATH = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE_NAME = APP_ID
"""Also written by ``installer/windows/epos-bridge.iss``; change both together."""
DESKTOP_FILE_NAME = f"{APP_ID}.desktop"
LAUNCH_AGENT_LABEL = "org.epos-bridge.tray"


class AutostartError(Exception):
    """Start at login could not be changed; the message says where and why."""


def default_command() -> list[str]:
    """How to start the tray app from a login: the bundle's executable, or this interpreter.

    On Windows an unbundled run prefers ``pythonw.exe`` so no console window opens at login.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "run"]
    python = Path(sys.executable)
    if sys.platform == "win32" and python.name.lower() == "python.exe":
        windowless = python.with_name("pythonw.exe")
        if windowless.exists():
            python = windowless
    return [str(python), "-m", "epos_bridge", "run"]


def _check_command(command: Sequence[str]) -> list[str]:
    argv = [str(part) for part in command]
    if not argv or not argv[0]:
        raise ValueError("the start-at-login command must name a program")
    if any("\n" in part or "\r" in part or "\0" in part for part in argv):
        raise ValueError("the start-at-login command must not contain line breaks or NUL")
    return argv


# --- what would be written (pure) ------------------------------------------------------------


def windows_run_value(command: Sequence[str]) -> str:
    """The Run value: one command line, quoted the way Windows' own argument parser reads it."""
    return subprocess.list2cmdline(_check_command(command))


_EXEC_RESERVED = frozenset(" \t\"'\\><~|&;$*?#()`=")


def _exec_argument(argument: str) -> str:
    """Quote one argument for a desktop entry's ``Exec`` key (Desktop Entry Specification, "The
    Exec key"): ``%`` is doubled; an argument with a reserved character is double-quoted, with
    ``"`` `````` ``$`` ``\\`` backslash-escaped inside the quotes."""
    argument = argument.replace("%", "%%")
    if argument and not any(ch in _EXEC_RESERVED for ch in argument):
        return argument
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
    return f'"{escaped}"'


def desktop_exec_line(command: Sequence[str]) -> str:
    """The ``Exec`` value as it appears in the file. The spec's string-value escaping applies on
    top of the quoting, so every backslash is doubled once more."""
    line = " ".join(_exec_argument(part) for part in _check_command(command))
    return line.replace("\\", "\\\\")


def desktop_entry(command: Sequence[str], *, icon: str = APP_ID, autostart: bool = True) -> str:
    """A desktop entry for the tray app: the autostart file, or (``autostart=False``) the
    applications-menu file the Linux bundle ships."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        f"Name={DISPLAY_NAME}",
        "Comment=Connects this venue's POS to Dojo",
        f"Exec={desktop_exec_line(command)}",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Office;Finance;",
    ]
    if autostart:
        lines += ["X-GNOME-Autostart-enabled=true", "Hidden=false"]
    return "\n".join(lines) + "\n"


def launch_agent_plist(command: Sequence[str], *, label: str = LAUNCH_AGENT_LABEL) -> bytes:
    """A LaunchAgent started once at login in the user's GUI session (the tray needs one); not
    kept alive, so Quit in the tray means quit until the next login."""
    agent = {
        "Label": label,
        "ProgramArguments": _check_command(command),
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML, sort_keys=True)


# --- putting it in place ------------------------------------------------------------------------


class Autostart(Protocol):
    """Start at login for one user on one platform."""

    @property
    def location(self) -> str:
        """Where the entry lives, for the Settings dialog and for support."""
        ...

    def enable(self, command: Sequence[str]) -> None: ...
    def disable(self) -> None: ...
    def is_enabled(self) -> bool: ...


class RunKey(Protocol):
    """The values under one registry key, as strings (REG_SZ). A dict-backed fake serves tests."""

    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> None:
        """Deleting a value that is not there is not an error."""
        ...


class WinregRunKey:
    """``HKCU\\...\\Run`` through :mod:`winreg` (Windows only)."""

    def __init__(self, path: str = RUN_KEY_PATH) -> None:
        self.path = path

    def get(self, name: str) -> str | None:  # pragma: no cover - Windows only
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self.path) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:  # pragma: no cover - Windows only
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, self.path, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:  # pragma: no cover - Windows only
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self.path, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            return


class WindowsAutostart:
    def __init__(self, run_key: RunKey, *, value_name: str = RUN_VALUE_NAME) -> None:
        self.run_key = run_key
        self.value_name = value_name

    @property
    def location(self) -> str:
        return f"HKCU\\{RUN_KEY_PATH}\\{self.value_name}"

    def enable(self, command: Sequence[str]) -> None:
        value = windows_run_value(command)
        try:
            self.run_key.set(self.value_name, value)
        except OSError as exc:
            raise AutostartError(f"could not write {self.location}: {exc}") from exc

    def disable(self) -> None:
        try:
            self.run_key.delete(self.value_name)
        except OSError as exc:
            raise AutostartError(f"could not remove {self.location}: {exc}") from exc

    def is_enabled(self) -> bool:
        return bool(self.run_key.get(self.value_name))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open_private(temp, "wb") as handle:  # the user's session reads it; nobody else need
        handle.write(data)
    os.replace(temp, path)


class _Render(Protocol):
    def __call__(self, command: Sequence[str], /) -> bytes: ...


class FileAutostart:
    """An autostart file (XDG desktop entry or LaunchAgent plist): present means enabled."""

    def __init__(self, path: Path, render: _Render) -> None:
        self.path = path
        self._render = render

    @property
    def location(self) -> str:
        return str(self.path)

    def enable(self, command: Sequence[str]) -> None:
        data = self._render(command)
        try:
            _write_atomically(self.path, data)
        except OSError as exc:
            raise AutostartError(f"could not write {self.path}: {exc}") from exc

    def disable(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise AutostartError(f"could not remove {self.path}: {exc}") from exc

    def is_enabled(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        # A desktop environment's own "disable" sets Hidden=true rather than deleting the file.
        return "\nHidden=true" not in text


def xdg_autostart_dir(environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_CONFIG_HOME/autostart``; a relative or empty XDG_CONFIG_HOME is ignored, as the
    XDG Base Directory Specification says."""
    config_home = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if config_home and os.path.isabs(config_home) else home / ".config"
    return base / "autostart"


def xdg_autostart(environ: Mapping[str, str] | None = None, home: Path | None = None) -> FileAutostart:
    folder = xdg_autostart_dir(os.environ if environ is None else environ, home or Path.home())
    return FileAutostart(folder / DESKTOP_FILE_NAME, lambda command: desktop_entry(command).encode("utf-8"))


def macos_autostart(home: Path | None = None) -> FileAutostart:
    path = (home or Path.home()) / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    return FileAutostart(path, launch_agent_plist)


def autostart_for(
    platform: str | None = None, *, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Autostart:
    """The start-at-login mechanism of ``platform`` (default: this one)."""
    platform = platform or sys.platform
    if platform == "win32":
        return WindowsAutostart(WinregRunKey())
    if platform == "darwin":
        return macos_autostart(home)
    return xdg_autostart(environ, home)


# --- the one interface the app calls -------------------------------------------------------------


def enable(command: Sequence[str] | None = None) -> None:
    """Start ``command`` (default :func:`default_command`) at this user's next logins."""
    autostart_for().enable(command if command is not None else default_command())


def disable() -> None:
    autostart_for().disable()


def is_enabled() -> bool:
    return autostart_for().is_enabled()


def apply(start_at_login: bool, command: Sequence[str] | None = None) -> None:
    """Make the OS match the ``start_at_login`` setting (call after Settings → Save)."""
    if start_at_login:
        enable(command)
    else:
        disable()
