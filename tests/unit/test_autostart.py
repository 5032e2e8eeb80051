"""Start at login: Linux for real in a temporary XDG_CONFIG_HOME; Windows and macOS on exactly
what they would write (a dictionary stands in for the registry's Run key)."""

from __future__ import annotations

import plistlib
import re
import sys
from pathlib import Path

import pytest

from epos_bridge.host import autostart
from epos_bridge.host.autostart import (
    RUN_VALUE_NAME,
    WindowsAutostart,
    desktop_entry,
    desktop_exec_line,
    launch_agent_plist,
    macos_autostart,
    windows_run_value,
    xdg_autostart,
)

ROOT = Path(__file__).resolve().parents[2]
LINUX_COMMAND = ["/opt/epos bridge/epos-bridge", "run"]
WINDOWS_EXE = r"C:\Users\Till One\AppData\Local\Programs\EPOS Bridge\epos-bridge.exe"


class FakeRunKey:
    """HKCU\\...\\Run as a dictionary: the state a test asserts on."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def exec_line(text: str) -> str:
    match = re.search(r"^Exec=(.*)$", text, re.MULTILINE)
    assert match is not None, text
    return match.group(1)


# --- Linux, for real ------------------------------------------------------------------------


@pytest.fixture
def xdg_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return folder


def test_linux_enable_writes_a_desktop_entry_and_disable_removes_it(xdg_config: Path) -> None:
    entry = xdg_autostart()
    path = xdg_config / "autostart" / "epos-bridge.desktop"
    assert entry.location == str(path)
    assert not entry.is_enabled()

    entry.enable(LINUX_COMMAND)

    text = path.read_text(encoding="utf-8")
    assert text.startswith("[Desktop Entry]\n")
    assert 'Exec="/opt/epos bridge/epos-bridge" run' in text.splitlines()
    assert "Type=Application" in text
    assert "Hidden=false" in text
    assert entry.is_enabled()

    entry.disable()
    assert not path.exists()
    assert not entry.is_enabled()
    entry.disable()  # disabling twice is not an error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the module-level functions use this OS's mechanism")
def test_module_functions_use_xdg_on_linux(xdg_config: Path) -> None:
    command = [sys.executable, "-m", "epos_bridge", "run"]
    autostart.apply(True, command)
    path = xdg_config / "autostart" / "epos-bridge.desktop"
    assert autostart.is_enabled()
    assert exec_line(path.read_text(encoding="utf-8")) == desktop_exec_line(command)
    autostart.apply(False)
    assert not autostart.is_enabled()
    assert not path.exists()


def test_linux_entry_hidden_by_the_desktop_counts_as_disabled(xdg_config: Path) -> None:
    entry = xdg_autostart()
    entry.enable(LINUX_COMMAND)
    path = Path(entry.location)
    path.write_text(path.read_text(encoding="utf-8").replace("Hidden=false", "Hidden=true"), encoding="utf-8")
    assert not entry.is_enabled()


def test_relative_xdg_config_home_is_ignored(tmp_path: Path) -> None:
    entry = xdg_autostart({"XDG_CONFIG_HOME": "relative/config"}, tmp_path)
    assert Path(entry.location) == tmp_path / ".config" / "autostart" / "epos-bridge.desktop"


@pytest.mark.parametrize(
    ("argument", "quoted"),
    [
        ("run", "run"),
        ("/opt/epos bridge/epos-bridge", '"/opt/epos bridge/epos-bridge"'),
        ("50%", "50%%"),
        ("$HOME", '"\\\\$HOME"'),  # \$ inside quotes, then the backslash doubled by string escaping
        ('say "hi"', '"say \\\\"hi\\\\""'),
    ],
)
def test_exec_quoting_follows_the_desktop_entry_spec(argument: str, quoted: str) -> None:
    assert desktop_exec_line([argument]) == quoted


def test_command_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        desktop_entry(["/bin/epos-bridge", "run\nrm -rf ~"])


def test_menu_entry_has_no_autostart_keys() -> None:
    text = desktop_entry(["epos-bridge", "run"], autostart=False)
    assert exec_line(text) == "epos-bridge run"
    assert "Hidden" not in text
    assert "X-GNOME-Autostart-enabled" not in text


# --- Windows: what would be written -----------------------------------------------------------


def test_windows_enable_writes_the_run_value_quoted_for_windows() -> None:
    run_key = FakeRunKey()
    entry = WindowsAutostart(run_key)

    entry.enable([WINDOWS_EXE, "run"])

    assert run_key.values == {"epos-bridge": f'"{WINDOWS_EXE}" run'}
    assert entry.is_enabled()
    assert entry.location == r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\epos-bridge"


def test_windows_disable_removes_only_our_value() -> None:
    run_key = FakeRunKey()
    run_key.values["OneDrive"] = r'"C:\OneDrive.exe" /background'
    entry = WindowsAutostart(run_key)
    entry.enable([WINDOWS_EXE, "run"])

    entry.disable()
    entry.disable()

    assert run_key.values == {"OneDrive": r'"C:\OneDrive.exe" /background'}
    assert not entry.is_enabled()


def test_windows_value_matches_what_the_installer_writes() -> None:
    """The Settings toggle and the installer's "Start at login" task must write the same value,
    or unticking one would leave the other behind."""
    iss = (ROOT / "installer" / "windows" / "epos-bridge.iss").read_text(encoding="utf-8")
    for name, value in re.findall(r'^#define (\w+) "([^"]*)"$', iss, re.MULTILINE):
        iss = iss.replace("{#" + name + "}", value)
    assert f'ValueName: "{RUN_VALUE_NAME}"' in iss
    match = re.search(r'ValueName: "epos-bridge"; ValueData: "((?:[^"]|"")*)"', iss)
    assert match is not None
    # Inno's "" is a literal quote; {app} is the install folder, which has a space in it.
    app = str(Path(WINDOWS_EXE).parent) if sys.platform == "win32" else WINDOWS_EXE.rsplit("\\", 1)[0]
    installer_writes = match.group(1).replace('""', '"').replace("{app}", app)
    assert installer_writes == windows_run_value([WINDOWS_EXE, "run"])


def test_windows_value_quotes_arguments_with_spaces_and_quotes() -> None:
    assert windows_run_value([r"C:\A B\x.exe", "run", 'a "b"']) == r'"C:\A B\x.exe" run "a \"b\""'


# --- macOS: what would be written -------------------------------------------------------------


def test_macos_enable_writes_a_launch_agent(tmp_path: Path) -> None:
    command = ["/Applications/EPOS Bridge.app/Contents/MacOS/epos-bridge", "run"]
    entry = macos_autostart(tmp_path)

    entry.enable(command)

    path = tmp_path / "Library" / "LaunchAgents" / "org.epos-bridge.tray.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent == {
        "Label": "org.epos-bridge.tray",
        "ProgramArguments": command,
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    assert path.read_bytes() == launch_agent_plist(command)
    assert entry.is_enabled()
    entry.disable()
    assert not path.exists()


def test_platform_choice() -> None:
    assert isinstance(autostart.autostart_for("win32"), WindowsAutostart)
    assert autostart.autostart_for("darwin", home=Path("/Users/till")).location.endswith(
        "Library/LaunchAgents/org.epos-bridge.tray.plist"
    )
    linux = autostart.autostart_for("linux", environ={"XDG_CONFIG_HOME": "/x"}, home=Path("/home/till"))
    assert linux.location == "/x/autostart/epos-bridge.desktop"


# --- the command ------------------------------------------------------------------------------


def test_default_command_runs_this_interpreter_or_the_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    if sys.platform != "win32":
        assert autostart.default_command() == [sys.executable, "-m", "epos_bridge", "run"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert autostart.default_command() == [sys.executable, "run"]
