"""The settings service against real things: the REST simulator on 127.0.0.1, real SQLite files,
a real keyring backend (see ``tests/helpers/keyring_backend.py``) and the real settings file."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from epos_bridge.config import ENV_VARS, BridgeSettings, KeyStore, load
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.services.settings_service import SettingsService
from epos_bridge.sim.rest import RestSimulator
from epos_bridge.ui.settings_dialog import build_settings_service
from tests.helpers.keyring_backend import (
    RealKeyring,
    run_under_secret_service,
    secret_service_tools,
)

HOUSE = "house-123"


@pytest.fixture
def api_key() -> str:
    """Unique per test, so finding it in a message cannot be a coincidence with the demo key."""
    return f"sk_sandbox_{uuid.uuid4().hex}"


@pytest.fixture
async def rest(api_key: str) -> AsyncIterator[RestSimulator]:
    async with RestSimulator(api_key, HOUSE) as simulator:
        yield simulator


class Applied:
    """Stands in for ``Bridge.apply_settings``; keeps what it was given."""

    def __init__(self) -> None:
        self.settings: list[BridgeSettings] = []

    async def __call__(self, new: BridgeSettings) -> list[str]:
        self.settings.append(new)
        return ["Dojo connection"]


@pytest.fixture
def applied() -> Applied:
    return Applied()


@pytest.fixture
def service(real_keyring: RealKeyring, settings_path: Path, applied: Applied) -> SettingsService[BridgeSettings]:
    return build_settings_service(KeyStore(real_keyring.backend), settings_path, apply=applied, environ={})


def read(path: Path) -> str:
    """Sync file reads (tiny test files) kept out of the async test bodies."""
    return path.read_text(encoding="utf-8")


def write_settings_file(path: Path, values: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values), encoding="utf-8")


def draft_for(rest: RestSimulator, tmp_path: Path, **changes: object) -> BridgeSettings:
    values: dict[str, object] = {
        "allow_insecure": True,  # the simulator is plain http on 127.0.0.1
        "software_house_id": HOUSE,
        "api_url": rest.base_url,
        "ws_url": "ws://127.0.0.1:9/epos",
        "data_dir": tmp_path / "data",
    }
    values.update(changes)
    return BridgeSettings.model_validate(values)


# --- Test button ------------------------------------------------------------------------------


async def test_a_good_key_is_accepted_in_words(
    service: SettingsService[BridgeSettings], rest: RestSimulator, tmp_path: Path, api_key: str
) -> None:
    rest.set_registered_names([c.value for c in Capability])
    result = await service.test_key(draft_for(rest, tmp_path), api_key)
    assert result.ok
    assert result.words == f"Dojo accepted the key (sandbox): {len(Capability)} capabilities registered"
    assert api_key not in result.words
    # It really asked Dojo: GET /epos/integrations with the draft's key.
    (request,) = rest.requests_to("GET", "/epos/integrations")
    assert request.headers["Authorization"] == f"Basic {api_key}"


async def test_a_bad_key_is_rejected_in_words_without_echoing_it(
    service: SettingsService[BridgeSettings], rest: RestSimulator, tmp_path: Path
) -> None:
    wrong = f"sk_sandbox_{uuid.uuid4().hex}"
    result = await service.test_key(draft_for(rest, tmp_path), wrong)
    assert not result.ok
    assert result.words == "Dojo rejected the key (401). Check it was copied whole."
    assert wrong not in result.words


async def test_the_stored_key_is_tested_when_none_is_typed(
    service: SettingsService[BridgeSettings], rest: RestSimulator, tmp_path: Path, api_key: str
) -> None:
    draft = draft_for(rest, tmp_path, api_key=SecretStr(api_key), api_key_source="keyring")
    result = await service.test_key(draft, None)
    assert result.ok, result.words
    assert (await service.test_key(draft_for(rest, tmp_path), None)).words == "Enter the API key first."


async def test_an_unreachable_dojo_is_said_so(
    service: SettingsService[BridgeSettings], rest: RestSimulator, tmp_path: Path, api_key: str
) -> None:
    base = rest.base_url
    await rest.stop()  # nothing listens on that port any more
    result = await service.test_key(draft_for(rest, tmp_path, api_url=base), api_key)
    assert not result.ok
    assert result.words.startswith("Dojo could not be reached: ")
    assert api_key not in result.words


async def test_a_key_with_spaces_is_refused_before_calling_dojo(
    service: SettingsService[BridgeSettings], rest: RestSimulator, tmp_path: Path
) -> None:
    result = await service.test_key(draft_for(rest, tmp_path), "sk_sandbox_half key")
    assert not result.ok
    assert "copied whole" in result.words
    assert rest.requests == []


# --- the POS database ------------------------------------------------------------------------------


async def test_a_reference_database_is_fine(service: SettingsService[BridgeSettings], pos_db_path: Path) -> None:
    assert await service.check_database("sqlite", pos_db_path) is None


async def test_a_missing_database_is_named(service: SettingsService[BridgeSettings], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pos.db"
    problem = await service.check_database("sqlite", missing)
    assert problem is not None
    assert str(missing) in problem
    assert "is missing" in problem
    assert not missing.exists()  # checking never creates it


async def test_a_garbage_file_is_not_a_usable_database(
    service: SettingsService[BridgeSettings], tmp_path: Path
) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"this is a shopping list, not a database\n" * 200)
    problem = await service.check_database("sqlite", garbage)
    assert problem == f"{garbage} is not a usable SQLite database (it may be damaged or the wrong file)."


async def test_an_empty_file_is_not_a_reference_database(
    service: SettingsService[BridgeSettings], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    problem = await service.check_database("sqlite", empty)
    assert problem is not None
    assert "is not a reference POS database" in problem
    assert empty.stat().st_size == 0  # left as it was


async def test_another_programs_sqlite_file_is_not_a_reference_database(
    service: SettingsService[BridgeSettings], tmp_path: Path
) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY)")
    conn.close()
    problem = await service.check_database("sqlite", other)
    assert problem is not None
    assert f"{other} is not a reference POS database" in problem


async def test_an_adapter_that_is_not_installed_is_named(
    service: SettingsService[BridgeSettings], pos_db_path: Path
) -> None:
    problem = await service.check_database("tevalis", pos_db_path)
    assert problem is not None
    assert problem.startswith("The tevalis adapter is not installed (installed: ")
    assert "jsonfile" in problem
    assert "sqlite" in problem
    assert await service.check_database("sqlite", None) == "Choose the POS database file."


# --- Save ------------------------------------------------------------------------------------------


async def test_save_keeps_the_key_in_the_keyring_only_and_applies_at_once(
    service: SettingsService[BridgeSettings],
    real_keyring: RealKeyring,
    settings_path: Path,
    applied: Applied,
    rest: RestSimulator,
    tmp_path: Path,
    api_key: str,
    pos_db_path: Path,
) -> None:
    new = draft_for(rest, tmp_path, db_path=pos_db_path, notify_each_payment=True)
    said = await service.save(new, api_key)

    assert real_keyring.stored_api_key() == api_key
    text = read(settings_path)
    assert api_key not in text
    assert "api_key" not in json.loads(text)
    assert json.loads(text)["notify_each_payment"] is True
    assert all(api_key not in line for line in said)
    assert said[0] == "API key saved in the OS keyring"
    assert f"Settings saved to {settings_path}" in said
    assert said[-1] == "Applied now: Dojo connection"
    # The running bridge got the new settings with the new key, without a restart.
    (given,) = applied.settings
    assert given.api_key is not None
    assert given.api_key.get_secret_value() == api_key
    assert given.api_key_source == "keyring"
    # And the file + keyring load back into the same settings.
    loaded = load(settings_path=settings_path, environ={}, keystore=KeyStore(real_keyring.backend))
    assert loaded.notify_each_payment is True
    assert loaded.api_key == given.api_key


async def test_save_without_a_typed_key_keeps_the_stored_one(
    service: SettingsService[BridgeSettings],
    real_keyring: RealKeyring,
    applied: Applied,
    rest: RestSimulator,
    tmp_path: Path,
    api_key: str,
) -> None:
    KeyStore(real_keyring.backend).set_api_key(api_key)
    current = draft_for(rest, tmp_path, api_key=SecretStr(api_key), api_key_source="keyring")
    said = await service.save(current.model_copy(update={"reseller_id": "resell-9"}), None)
    assert real_keyring.stored_api_key() == api_key
    assert "API key saved in the OS keyring" not in said
    assert applied.settings[0].api_key == SecretStr(api_key)
    assert applied.settings[0].reseller_id == "resell-9"


async def test_save_does_not_pin_values_that_came_from_the_environment(
    real_keyring: RealKeyring, settings_path: Path, applied: Applied, tmp_path: Path
) -> None:
    write_settings_file(settings_path, {"reseller_id": "from-file", "proxy": "http://proxy.local:3128"})
    environ = {
        ENV_VARS["ws_url"]: "wss://gateway.example.test/epos",
        ENV_VARS["software_house_id"]: "house-from-env",
    }
    store = KeyStore(real_keyring.backend)
    service = build_settings_service(store, settings_path, apply=applied, environ=environ)
    current = load(settings_path=settings_path, environ=environ, keystore=store)
    edited = current.model_copy(update={"notifications_enabled": False, "software_house_id": "house-typed"})

    said = await service.save(edited, None)

    written = json.loads(read(settings_path))
    assert "ws_url" not in written or written["ws_url"] != environ[ENV_VARS["ws_url"]]  # not pinned
    assert written["notifications_enabled"] is False
    assert written["proxy"] == "http://proxy.local:3128"  # a file value the dialog does not edit survives
    assert written["reseller_id"] == "from-file"
    # A typed value is the user's: written, with a warning that the environment still wins later.
    assert written["software_house_id"] == "house-typed"
    assert any("EPOS_BRIDGE_SOFTWARE_HOUSE_ID" in line for line in said)
    # The running bridge uses what the dialog showed, environment values included.
    assert applied.settings[0].ws_url == environ[ENV_VARS["ws_url"]]


async def test_save_without_a_running_bridge_says_when_it_applies(
    real_keyring: RealKeyring, settings_path: Path, rest: RestSimulator, tmp_path: Path
) -> None:
    service = build_settings_service(KeyStore(real_keyring.backend), settings_path, environ={})
    said = await service.save(draft_for(rest, tmp_path), None)
    assert said[-1] == "The bridge will use them when it starts"


@pytest.mark.logs_warnings("a failed apply is logged (redacted)")
async def test_a_failed_apply_is_reported_and_the_key_stays_hidden(
    real_keyring: RealKeyring, settings_path: Path, rest: RestSimulator, tmp_path: Path, api_key: str
) -> None:
    async def broken_apply(new: BridgeSettings) -> list[str]:
        raise ValueError(f"cannot use {api_key}")

    service = build_settings_service(KeyStore(real_keyring.backend), settings_path, apply=broken_apply, environ={})
    said = await service.save(draft_for(rest, tmp_path), api_key)
    assert said[-1].startswith("Saved, but not applied yet: cannot use ")
    assert all(api_key not in line for line in said)


# --- the OS keyring as the keyring library picks it -------------------------------------------------


@pytest.mark.skipif(secret_service_tools() is not None, reason=str(secret_service_tools()))
def test_keystore_uses_the_secret_service_on_a_desktop_session(tmp_path: Path, api_key: str) -> None:
    """No backend injected: in a session with gnome-keyring, ``KeyStore()`` stores in it."""
    code = f"""
import keyring
from epos_bridge.config import KeyStore
KeyStore().set_api_key({api_key!r})
from keyring.backends.SecretService import Keyring
print(type(keyring.get_keyring()).__name__)
print(Keyring().get_password("epos-bridge", "api-key") == {api_key!r})
"""
    result = run_under_secret_service(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ChainerBackend", "True"] or result.stdout.split()[-1] == "True"
    assert api_key not in result.stdout + result.stderr
