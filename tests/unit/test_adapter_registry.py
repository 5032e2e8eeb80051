"""Adapter discovery: built-ins always present, entry points added, broken ones reported not fatal."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from epos_bridge.adapters import registry
from epos_bridge.adapters.jsonfile.adapter import JsonFileStorage
from epos_bridge.adapters.registry import (
    BrokenAdapter,
    MinimalFactory,
    NeedsNoMapping,
    installed_adapters,
    load_factory,
)
from epos_bridge.app import adapter_factory, open_adapter
from epos_bridge.config import BridgeSettings, ConfigError
from epos_bridge.ports import AdapterFactory, AdapterInitError, PosAdapter
from epos_bridge.services.pos_calls import PosCalls


class OldTill:
    """An adapter from an older package: the calls Dojo makes, nothing about its storage."""

    def __init__(self, location: Path) -> None:
        self.location = location

    def implemented_capabilities(self) -> frozenset[object]:
        return frozenset()


class FakeFactory:
    description = "a fake till"

    def open(self, location: Path) -> PosAdapter:
        return OldTill(location)  # type: ignore[return-value]


FAKE = FakeFactory()


def fake_factory_function() -> FakeFactory:
    return FAKE


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> list[EntryPoint]:
    entries: list[EntryPoint] = []
    monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in entries if e.group == group])
    return entries


def test_built_ins_are_there_without_any_installation(declared: list[EntryPoint]) -> None:
    adapters = installed_adapters()

    assert list(adapters) == ["sqlite", "jsonfile", "sqlmap"]
    assert "SQLite" in adapters["sqlite"].description
    assert "JSON" in adapters["jsonfile"].description
    assert "mapping" in adapters["sqlmap"].description
    assert adapters["sqlmap"].mappings == ("floreant", "floreant_pg", "ospos", "ospos_mysql")
    assert adapters["sqlite"].mappings is None


def test_an_entry_point_adds_an_adapter_from_an_object_or_a_factory_function(declared: list[EntryPoint]) -> None:
    declared += [entry("till", f"{__name__}:FAKE"), entry("made", f"{__name__}:fake_factory_function")]

    adapters = installed_adapters()

    # An older factory (description and open only) is completed with what such an adapter can do.
    for name in ("till", "made"):
        factory = adapters[name]
        assert isinstance(factory, MinimalFactory) and isinstance(factory, AdapterFactory)
        assert (factory.description, factory.location) == ("a fake till", "file")
        with pytest.raises(AdapterInitError, match="cannot create"):
            factory.init(Path("x"), demo=False)
        # Its adapter is completed too: no change log, writing not checked; the rest is its own.
        adapter = factory.open(Path("till.db"))
        assert adapter.changes is None
        assert adapter.implemented_capabilities() == frozenset()
        assert adapter.location == Path("till.db")  # type: ignore[attr-defined]


@pytest.mark.logs_warnings("an ignored entry point is logged")
def test_an_entry_point_cannot_take_over_a_built_in_name(declared: list[EntryPoint]) -> None:
    declared.append(entry("sqlite", f"{__name__}:FAKE"))

    assert installed_adapters()["sqlite"] is registry.BUILT_IN["sqlite"]


def test_a_broken_package_is_left_out_and_reported(
    declared: list[EntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    declared.append(entry("broken", "no_such_module_anywhere:factory"))

    with caplog.at_level("ERROR"):
        assert "broken" not in installed_adapters()
    listed = installed_adapters(include_broken=True)["broken"]
    assert "failed to import" in listed.description
    with pytest.raises(BrokenAdapter):
        listed.open(Path("x"))


def test_something_that_is_not_a_factory_is_refused() -> None:
    with pytest.raises(BrokenAdapter, match="not an adapter factory"):
        load_factory(entry("odd", "os.path:sep"))


def test_open_adapter_names_the_setting_and_what_is_installed_for_an_unknown_adapter(
    declared: list[EntryPoint],
) -> None:
    with pytest.raises(ConfigError) as raised:
        open_adapter(BridgeSettings(adapter="nosuch", db_path=Path("x")))

    text = str(raised.value)
    assert "EPOS_BRIDGE_ADAPTER" in text
    assert "installed: sqlite, jsonfile, sqlmap" in text


async def test_open_adapter_opens_the_file_database_adapter(declared: list[EntryPoint], tmp_path: Path) -> None:
    adapter = open_adapter(BridgeSettings(adapter="jsonfile", db_path=tmp_path))

    assert isinstance(adapter, PosCalls)
    assert isinstance(adapter.storage, JsonFileStorage)
    await adapter.close()


class WholeFactoryBeforeMappings:
    """A factory written against the port before ``mappings``/``with_mapping`` existed."""

    description = "an older whole factory"
    location = "folder"

    def init(self, location: Path, *, demo: bool) -> list[str]:
        return [f"made {location} demo={demo}"]

    async def problem(self, location: Path) -> str | None:
        return f"no POS at {location}"

    checked: list[object]

    def open(self, location: Path) -> PosAdapter:
        return OldTill(location)  # type: ignore[return-value]

    async def check_writable(self, adapter: PosAdapter) -> None:
        self.checked.append(adapter)

    def change_source(self, adapter: PosAdapter) -> object:
        return ("the change log of", adapter)


WHOLE = WholeFactoryBeforeMappings()
WHOLE.checked = []


async def test_a_whole_factory_from_before_mappings_still_loads_and_needs_no_mapping(
    declared: list[EntryPoint],
) -> None:
    declared.append(entry("older", f"{__name__}:WHOLE"))

    factory = installed_adapters()["older"]

    assert isinstance(factory, NeedsNoMapping) and isinstance(factory, AdapterFactory)
    assert (factory.description, factory.location, factory.mappings) == ("an older whole factory", "folder", None)
    assert factory.with_mapping("anything") is factory
    assert factory.init(Path("p"), demo=True) == ["made p demo=True"]
    assert await factory.problem(Path("p")) == "no POS at p"
    # What its factory said about the storage is now the adapter's own (issue 20, item 3).
    adapter = factory.open(Path("p"))
    inner = adapter._inner  # type: ignore[attr-defined]
    assert adapter.changes == ("the change log of", inner)
    await adapter.check_writable()
    assert WHOLE.checked == [inner]


def test_a_mapped_adapter_without_a_mapping_or_with_a_wrong_one_names_the_setting(
    declared: list[EntryPoint],
) -> None:
    with pytest.raises(ConfigError) as missing:
        adapter_factory(BridgeSettings(adapter="sqlmap", db_path=Path("x")))
    assert "EPOS_BRIDGE_MAPPING" in str(missing.value) and "floreant" in str(missing.value)
    with pytest.raises(ConfigError) as wrong:
        adapter_factory(BridgeSettings(adapter="sqlmap", db_path=Path("x"), mapping="aloha"))
    assert "EPOS_BRIDGE_MAPPING" in str(wrong.value) and "no mapping named 'aloha'" in str(wrong.value)
    bound = adapter_factory(BridgeSettings(adapter="sqlmap", db_path=Path("x"), mapping="floreant"))
    assert "through the mapping floreant" in bound.description
    assert adapter_factory(BridgeSettings(adapter="sqlite", mapping="floreant")) is registry.BUILT_IN_SQLITE
