"""The Windows installer cannot be built here, so its script is checked by reading it: every file
it packs or points a shortcut at exists in the repository or in the documented build layout, and
the layout agrees with the PyInstaller spec that produces it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path, PureWindowsPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
ISS = ROOT / "installer" / "windows" / "epos-bridge.iss"
SPEC = ROOT / "installer" / "epos-bridge.spec"
README = ROOT / "installer" / "README.md"


def defines(text: str) -> dict[str, str]:
    return dict(re.findall(r'^#define (\w+) "([^"]*)"$', text, re.MULTILINE))


def expand(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{#" + name + "}", value)
    return text


def sections(text: str) -> dict[str, list[str]]:
    """Section name (lower case) → its non-comment lines, ISPP defines expanded."""
    text = expand(text, defines(text))
    found: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = header.group(1).lower()
            found.setdefault(current, [])
        elif current:
            found[current].append(line)
    return found


def parameters(line: str) -> dict[str, str]:
    """``Name: "value"; Other: value`` → dict; Inno's ``""`` inside quotes is a literal quote."""
    found = {}
    for match in re.finditer(r'(\w+):\s*(?:"((?:[^"]|"")*)"|([^;]*))\s*(?:;|$)', line):
        found[match.group(1).lower()] = (match.group(2) or match.group(3) or "").replace('""', '"').strip()
    return found


def layout() -> set[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- windows-build-layout -->\s*```\n(.*?)```\s*<!-- /windows-build-layout -->", text, re.S)
    assert block is not None, "installer/README.md lost its windows-build-layout block"
    return {line.strip() for line in block.group(1).splitlines() if line.strip()}


def setup_value(name: str) -> str:
    for line in sections(ISS.read_text(encoding="utf-8"))["setup"]:
        key, _, value = line.partition("=")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise AssertionError(f"[Setup] has no {name}")


def source_root() -> Path:
    """``SourceDir`` is relative to the script's folder; Source paths are relative to it."""
    return (ISS.parent / PureWindowsPath(setup_value("SourceDir")).as_posix()).resolve()


def in_repo_or_layout(windows_path: str) -> bool:
    posix = PureWindowsPath(windows_path).as_posix()
    if posix.endswith("/*"):
        posix = posix[:-1]  # a folder's contents: the folder must be in the layout or the repo
    if posix in layout():
        return True
    return bool(list(source_root().glob(posix.rstrip("/")))) if posix else False


def app_relative(filename: str) -> str | None:
    """``{app}\\epos-bridge.exe`` → ``dist/epos-bridge/epos-bridge.exe`` (where [Files] copies from)."""
    if not filename.startswith("{app}\\"):
        return None
    return "dist/epos-bridge/" + PureWindowsPath(filename[len("{app}\\") :]).as_posix()


def test_source_dir_is_the_repository_root() -> None:
    assert source_root() == ROOT


def test_every_files_source_exists_in_the_repo_or_the_build_layout() -> None:
    entries = [parameters(line) for line in sections(ISS.read_text(encoding="utf-8"))["files"]]
    assert entries, "[Files] is empty"
    for entry in entries:
        assert in_repo_or_layout(entry["source"]), entry["source"]
        assert entry["destdir"].startswith("{app}")


def test_every_icon_points_at_something_installed() -> None:
    entries = [parameters(line) for line in sections(ISS.read_text(encoding="utf-8"))["icons"]]
    assert any(e["name"] == "{group}\\EPOS Bridge" for e in entries), "no Start-menu shortcut"
    for entry in entries:
        for key in ("filename", "iconfilename"):
            target = entry.get(key)
            if target is None or target in ("{uninstallexe}", "{cmd}"):
                continue
            relative = app_relative(target)
            assert relative is not None, f"{key} {target} is not inside {{app}}"
            assert relative in layout(), f"{target} is not in the documented build layout"


def test_run_and_registry_entries_start_an_installed_program() -> None:
    parts = sections(ISS.read_text(encoding="utf-8"))
    for line in parts["run"] + parts["registry"]:
        entry = parameters(line)
        command = entry.get("filename") or entry["valuedata"].split('"')[1]
        assert app_relative(command) in layout(), command


def test_setup_icon_is_a_documented_build_output() -> None:
    assert PureWindowsPath(setup_value("SetupIconFile")).as_posix() in layout()


def test_per_user_install() -> None:
    assert setup_value("PrivilegesRequired") == "lowest"
    assert setup_value("DefaultDirName").startswith("{localappdata}\\Programs\\")
    registry = sections(ISS.read_text(encoding="utf-8"))["registry"]
    assert all(parameters(line)["root"] == "HKCU" for line in registry)


def test_start_at_login_is_an_optional_task_removed_on_uninstall() -> None:
    text = ISS.read_text(encoding="utf-8")
    entry = parameters(sections(text)["registry"][0])
    assert entry["subkey"] == r"Software\Microsoft\Windows\CurrentVersion\Run"
    assert entry["tasks"] == "startatlogin"
    assert "uninsdeletevalue" in entry["flags"]
    # Old entries go on upgrade (ssInstall) and on uninstall (usUninstall).
    assert re.search(r"CurStep = ssInstall then\s+begin.*?RemoveStartAtLoginEntries", text, re.S)
    assert re.search(r"CurUninstallStep = usUninstall then\s+RemoveStartAtLoginEntries", text)


def test_layout_agrees_with_the_pyinstaller_spec() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    ast.parse(spec)
    assert 'name="epos-bridge",' in spec  # COLLECT → dist/epos-bridge/
    exes = set(re.findall(r'executable\("([\w-]+)"', spec))
    assert exes == {"epos-bridge", "epos-bridge-cli"}
    for name in exes:
        assert f"dist/epos-bridge/{name}.exe" in layout()
    build_assets = (ROOT / "installer" / "build_assets.py").read_text(encoding="utf-8")
    for output in ("app.ico", "version_info.txt"):
        assert f"installer/build/{output}" in layout()
        assert f'"{output}"' in build_assets


def test_build_assets_write_an_icon_and_a_version_resource(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "installer"))
    try:
        import build_assets
    finally:
        sys.path.remove(str(ROOT / "installer"))
    written = build_assets.build(tmp_path)
    ico = written["ico"].read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00"
    assert int.from_bytes(ico[4:6], "little") == len(build_assets.ICO_SIZES)
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    version_text = written["version"].read_text(encoding="utf-8")
    tree = ast.parse(version_text, mode="eval")
    assert isinstance(tree.body, ast.Call)
    from epos_bridge import __version__

    assert f"'ProductVersion', '{__version__}'" in version_text


@pytest.mark.skipif(not (ROOT / "dist" / "epos-bridge").is_dir(), reason="no bundle built in dist/")
def test_a_built_bundle_has_the_shared_library_folder() -> None:
    assert (ROOT / "dist" / "epos-bridge" / "_internal").is_dir()
