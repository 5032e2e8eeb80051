"""The map in docs/architecture.md is the structure: no module imports a module on a higher layer,
and an adapter stores without deciding.

The layer list is read from the page itself (between ``<!-- layers -->`` markers), so the page
and the code cannot drift apart silently; every import of every module of ``epos_bridge`` is
read with ``ast`` (no import runs). ``lint-imports`` checks the same arrows with its own reading.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "epos_bridge"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

DECIDING = frozenset({"check_cancellable", "replay_of", "live", "check_tables", "active_lock", "is_redelivery"})
"""Besides every ``decide_*``: the domain functions that judge. Adapters hand facts to
``services/pos_calls``, which calls these; an adapter calling one is a call flow in the wrong place."""

ROW_STORE_MODULES = ("adapter.py", "rows.py", "writes.py", "documents.py", "kept_rows.py")


def layers_of(page: str) -> list[set[str]]:
    """The numbered list between the markers: one layer per item, top first."""
    block = page.split("<!-- layers -->", 1)[1].split("<!-- /layers -->", 1)[0]
    return [set(re.findall(r"`([a-z_]+)`", line)) for line in block.splitlines() if re.match(r"\s*\d+\.", line)]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, target
            for alias in node.names:  # ``from epos_bridge import app`` imports a module too
                yield node.lineno, f"{target}.{alias.name}"


def upward_imports(layers: list[set[str]], files: list[Path], root: Path = ROOT) -> list[str]:
    rank = {component: index for index, names in enumerate(layers) for component in names}
    found = []
    for path in files:
        own = module_name(path, root).split(".")
        if len(own) < 2 or own[1] not in rank:
            continue
        for line, target in imported_modules(path, root):
            parts = target.split(".")
            if parts[0] != "epos_bridge" or len(parts) < 2 or parts[1] not in rank:
                continue
            if rank[parts[1]] < rank[own[1]]:
                found.append(
                    f"{path.relative_to(root)}:{line} ({own[1]}) imports {target} ({parts[1]}, a higher layer)"
                )
    return found


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_page_lists_every_layer_of_the_package() -> None:
    layers = layers_of(ARCHITECTURE.read_text(encoding="utf-8"))
    listed = set().union(*layers)

    assert len(layers) >= 10
    components = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    components -= {"py", "demo_venue", "verify", "testing"}  # outside the layers, as the page says
    assert {c for c in components if (PACKAGE / c).is_dir() or (PACKAGE / f"{c}.py").is_file()} <= listed


def test_no_module_imports_a_module_on_a_higher_layer() -> None:
    layers = layers_of(ARCHITECTURE.read_text(encoding="utf-8"))

    assert upward_imports(layers, package_files()) == []


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    """The checker itself can fail: a domain module importing services is caught."""
    layers = layers_of(ARCHITECTURE.read_text(encoding="utf-8"))
    bad = tmp_path / "epos_bridge" / "domain" / "probe.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from epos_bridge.services import dispatcher\nfrom ..adapters import registry\n", encoding="utf-8")

    found = upward_imports(layers, [bad], root=tmp_path)

    assert len([f for f in found if "services" in f]) >= 1
    assert any("epos_bridge.adapters" in f for f in found)


def adapter_files() -> list[Path]:
    return sorted((PACKAGE / "adapters").rglob("*.py")) + sorted((ROOT / "examples").glob("*/src/**/*.py"))


def names_used(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.alias):
            yield 0, node.asname or node.name


@pytest.mark.parametrize("path", adapter_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_an_adapter_stores_and_never_decides(path: Path) -> None:
    deciding = [f"{line}: {name}" for line, name in names_used(path) if name.startswith("decide_") or name in DECIDING]

    assert deciding == [], "a rule's verdict belongs to services/pos_calls, not to storage"


@pytest.mark.parametrize(
    "path",
    [p for p in adapter_files() if p.name in ROW_STORE_MODULES or "sample" in p.parts[-2]],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_a_row_store_never_reads_the_clock(path: Path) -> None:
    """The call's time is handed in by the transaction, after it holds the POS's lock. In the
    sample, only its storage is checked: its in-memory till stands in for the POS, whose own
    edits carry the till's clock."""
    tree: ast.AST = ast.parse(path.read_text(encoding="utf-8"))
    if "examples" in path.parts:
        tree = ast.Module(
            body=[n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith(("Rows", "Storage"))],  # type: ignore[attr-defined]
            type_ignores=[],
        )
    reads = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"now", "utcnow"})
        or (isinstance(node, ast.Name) and node.id == "SystemClock")
    ]

    assert reads == [], "read the time the call is handed"
