"""Which POS adapters are installed: the built-ins plus any package declaring the entry point.

A third-party adapter package declares, in its ``pyproject.toml``::

    [project.entry-points."epos_bridge.adapters"]
    mypos = "mypos_bridge:factory"

where ``factory`` is an :class:`epos_bridge.ports.AdapterFactory` (or a zero-argument callable
returning one). An older factory with only ``description`` and ``open`` still works, as a
:class:`MinimalFactory`; one written before mappings, as a :class:`NeedsNoMapping`.
``EPOS_BRIDGE_ADAPTER=mypos`` then selects it. The built-ins (``sqlite``, ``jsonfile``, ``sqlmap``) are
always present, installed or not, so a source checkout works; an entry point cannot replace a
built-in name (a package must not silently take over where payments are recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from epos_bridge.domain.errors import EposFailure
from epos_bridge.ports import (
    AdapterFactory,
    AdapterInitError,
    ChangeSource,
    LocationKind,
    PosAdapter,
    PosLocation,
    ServerLocation,
    file_path,
    not_a_file,
    read_problem,
)

__all__ = ["BUILT_IN", "AdapterFactory", "BrokenAdapter", "MinimalFactory", "installed_adapters", "load_factory"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "epos_bridge.adapters"


class OpenOnly(Protocol):
    """What an older adapter package's factory offers: a description and ``open``."""

    @property
    def description(self) -> str: ...

    def open(self, location: Path) -> PosAdapter: ...


class OlderAdapter:
    """An adapter from a package written before adapters said what their storage can do (its
    change log, whether it can write): those answers come from its factory when it had them
    (``change_source``, ``check_writable``), else there is no change log and writing is not
    checked. Every call Dojo makes goes straight to the adapter it wraps."""

    def __init__(
        self,
        inner: object,
        changes: ChangeSource | None = None,
        check_writable: Callable[[PosAdapter], Awaitable[None]] | None = None,
    ) -> None:
        self._inner = inner
        self._changes = changes
        self._check_writable = check_writable

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def changes(self) -> ChangeSource | None:
        return self._changes

    async def check_writable(self) -> None:
        if self._check_writable is not None:
            await self._check_writable(cast(PosAdapter, self._inner))


class MinimalFactory:
    """A whole :class:`AdapterFactory` around one that only describes and opens: it cannot create
    its storage, checks it by reading, cannot prove it writable and sends no POS events."""

    location: LocationKind = "file"
    mappings: tuple[str, ...] | None = None

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        return self

    def __init__(self, inner: OpenOnly) -> None:
        self._inner = inner

    @property
    def description(self) -> str:
        return self._inner.description

    def init(self, location: PosLocation, *, demo: bool) -> list[str]:
        raise AdapterInitError("this adapter cannot create its database; use the POS's own tools")

    async def problem(self, location: PosLocation) -> str | None:
        if isinstance(location, ServerLocation):
            return not_a_file(location, "this adapter")
        try:
            return await read_problem(self.open(location))
        except EposFailure as exc:
            return exc.message
        except Exception as exc:
            return f"The POS database {location} could not be opened: {exc}"

    def open(self, location: PosLocation) -> PosAdapter:
        return OlderAdapter(self._inner.open(file_path(location)))


@runtime_checkable
class FactoryBeforeMappings(Protocol):
    """A whole factory as the port was before mappings (an installed package written then)."""

    @property
    def description(self) -> str: ...

    @property
    def location(self) -> LocationKind: ...

    def init(self, location: Path, *, demo: bool) -> list[str]: ...

    async def problem(self, location: Path) -> str | None: ...

    def open(self, location: Path) -> PosAdapter: ...

    async def check_writable(self, adapter: PosAdapter) -> None: ...

    def change_source(self, adapter: PosAdapter) -> ChangeSource | None: ...


class NeedsNoMapping:
    """A :class:`FactoryBeforeMappings` as a whole :class:`AdapterFactory`: it needs no mapping."""

    mappings: tuple[str, ...] | None = None

    def __init__(self, inner: FactoryBeforeMappings) -> None:
        self._inner = inner

    @property
    def description(self) -> str:
        return self._inner.description

    @property
    def location(self) -> LocationKind:
        return self._inner.location

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        return self

    def init(self, location: PosLocation, *, demo: bool) -> list[str]:
        return self._inner.init(file_path(location), demo=demo)

    async def problem(self, location: PosLocation) -> str | None:
        if isinstance(location, ServerLocation):
            return not_a_file(location, "this adapter")
        return await self._inner.problem(location)

    def open(self, location: PosLocation) -> PosAdapter:
        adapter = self._inner.open(file_path(location))
        return OlderAdapter(adapter, self._inner.change_source(adapter), self._inner.check_writable)


class AbilitiesOnFactory:
    """A whole :class:`AdapterFactory` from before adapters owned their abilities: its
    ``change_source`` and ``check_writable`` become the :class:`OlderAdapter`'s."""

    def __init__(self, inner: FactoryBeforeMappings) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        bound: object = cast(AdapterFactory, self._inner).with_mapping(mapping)
        return self if bound is self._inner else AbilitiesOnFactory(cast(FactoryBeforeMappings, bound))

    def open(self, location: PosLocation) -> PosAdapter:
        adapter = self._inner.open(file_path(location))
        return OlderAdapter(adapter, self._inner.change_source(adapter), self._inner.check_writable)


def _builtins() -> dict[str, AdapterFactory]:
    from epos_bridge.adapters.jsonfile.factory import JsonFileFactory
    from epos_bridge.adapters.sqlite.factory import SqliteFactory
    from epos_bridge.adapters.sqlmap.factory import SqlMapFactory

    return {"sqlite": SqliteFactory(), "jsonfile": JsonFileFactory(), "sqlmap": SqlMapFactory()}


BUILT_IN: dict[str, AdapterFactory] = _builtins()


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
                found[entry.name] = MinimalFactory(_Broken(f"cannot be loaded: {exc}", exc))
    return found


def load_factory(entry: EntryPoint) -> AdapterFactory:
    """The factory an entry point names; a factory class or function is called once to get one."""
    try:
        target = entry.load()
    except Exception as exc:
        raise BrokenAdapter(f"adapter {entry.name!r} ({entry.value}) failed to import: {exc}") from exc
    factory = target
    if not _opens(factory) and callable(target):
        try:
            factory = target()
        except Exception as exc:
            raise BrokenAdapter(f"adapter {entry.name!r} ({entry.value}) failed to start: {exc}") from exc
    if isinstance(factory, AdapterFactory) and isinstance(factory, FactoryBeforeMappings):
        return AbilitiesOnFactory(factory)  # the factory still says what its adapters can do
    if isinstance(factory, AdapterFactory):
        return factory
    if isinstance(factory, FactoryBeforeMappings):
        return NeedsNoMapping(factory)
    if _opens(factory):
        return MinimalFactory(factory)
    raise BrokenAdapter(
        f"adapter {entry.name!r} ({entry.value}) is not an adapter factory: it needs at least a 'description' "
        "and an 'open(location)' method (docs/writing-an-adapter.md)"
    )


def _opens(candidate: object) -> bool:
    return isinstance(getattr(candidate, "description", None), str) and callable(getattr(candidate, "open", None))


def _builtin_target(name: str) -> str:
    return f"epos_bridge.adapters.registry:BUILT_IN_{name.upper()}"


@dataclass(frozen=True)
class _Broken:
    description: str
    error: BrokenAdapter

    def open(self, location: PosLocation) -> PosAdapter:
        raise self.error


BUILT_IN_SQLITE = BUILT_IN["sqlite"]
BUILT_IN_JSONFILE = BUILT_IN["jsonfile"]
BUILT_IN_SQLMAP = BUILT_IN["sqlmap"]
