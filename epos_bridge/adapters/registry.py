"""Which POS adapters are installed: the built-ins plus any package declaring the entry point.

A third-party adapter package declares, in its ``pyproject.toml``::

    [project.entry-points."epos_bridge.adapters"]
    mypos = "mypos_bridge:factory"

where ``factory`` is an :class:`AdapterFactory` (or a zero-argument callable returning one).
``EPOS_BRIDGE_ADAPTER=mypos`` then selects it. The built-ins (``sqlite``, ``jsonfile``) are
always present, installed or not, so a source checkout works; an entry point cannot replace a
built-in name (a package must not silently take over where payments are recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from epos_bridge.ports import PosAdapter

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "epos_bridge.adapters"


@runtime_checkable
class AdapterFactory(Protocol):
    """Opens one kind of POS storage. ``open`` must not block: do I/O later, on a worker thread."""

    @property
    def description(self) -> str:
        """One line for ``epos-bridge capabilities``: what storage, what EPOS_BRIDGE_DB names."""
        ...

    def open(self, location: Path) -> PosAdapter: ...


@dataclass(frozen=True)
class SimpleFactory:
    """An :class:`AdapterFactory` from a description and an ``open`` function."""

    description: str
    opener: Callable[[Path], PosAdapter]

    def open(self, location: Path) -> PosAdapter:
        return self.opener(location)


def _open_sqlite(location: Path) -> PosAdapter:
    from epos_bridge.adapters.sqlite.adapter import SqlitePosAdapter

    return SqlitePosAdapter.open(location)


def _open_jsonfile(location: Path) -> PosAdapter:
    from epos_bridge.adapters.jsonfile.adapter import JsonFilePosAdapter

    return JsonFilePosAdapter.open(location)


BUILT_IN: dict[str, AdapterFactory] = {
    "sqlite": SimpleFactory(
        "the reference SQLite schema (docs/reference-schema.md); EPOS_BRIDGE_DB is the file", _open_sqlite
    ),
    "jsonfile": SimpleFactory(
        "a folder of JSON files (docs/file-database.md); EPOS_BRIDGE_DB is the folder", _open_jsonfile
    ),
}


class BrokenAdapter(Exception):
    """An installed adapter package could not be loaded."""


def installed_adapters(*, include_broken: bool = False) -> dict[str, AdapterFactory]:
    """Adapter name -> factory, built-ins first, then entry points sorted by name.

    An entry point that fails to load is logged and left out, so one broken package never stops
    the bridge from serving with another adapter (``include_broken`` lists it with a factory
    whose ``open`` raises :class:`BrokenAdapter`, for ``epos-bridge capabilities``).
    """
    found: dict[str, AdapterFactory] = dict(BUILT_IN)
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in BUILT_IN:
            if entry.value != _builtin_target(entry.name):
                log.warning("ignored adapter entry point %r (%s): the name is built in", entry.name, entry.value)
            continue
        if entry.name in found:
            log.warning("ignored a second adapter entry point named %r (%s)", entry.name, entry.value)
            continue
        try:
            found[entry.name] = load_factory(entry)
        except BrokenAdapter as exc:
            log.warning("%s", exc)
            if include_broken:
                found[entry.name] = SimpleFactory(f"cannot be loaded: {exc}", _raiser(exc))
    return found


def load_factory(entry: EntryPoint) -> AdapterFactory:
    """The factory an entry point names; a factory class or function is called once to get one."""
    try:
        target = entry.load()
    except Exception as exc:
        raise BrokenAdapter(f"adapter {entry.name!r} ({entry.value}) failed to import: {exc}") from exc
    factory = target
    if not isinstance(factory, AdapterFactory) and callable(target):
        try:
            factory = target()
        except Exception as exc:
            raise BrokenAdapter(f"adapter {entry.name!r} ({entry.value}) failed to start: {exc}") from exc
    if not isinstance(factory, AdapterFactory):
        raise BrokenAdapter(
            f"adapter {entry.name!r} ({entry.value}) is not an adapter factory: it needs a 'description' "
            "and an 'open(location)' method"
        )
    return factory


def _builtin_target(name: str) -> str:
    return f"epos_bridge.adapters.registry:BUILT_IN_{name.upper()}"


def _raiser(exc: BrokenAdapter) -> Callable[[Path], PosAdapter]:
    def open_broken(location: Path) -> PosAdapter:
        raise exc

    return open_broken


BUILT_IN_SQLITE = BUILT_IN["sqlite"]
BUILT_IN_JSONFILE = BUILT_IN["jsonfile"]
