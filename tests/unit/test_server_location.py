"""EPOS_BRIDGE_DB naming a database server: a URL without its password, the password in the OS
keyring (or EPOS_BRIDGE_DB_PASSWORD), never in the settings file, a repr or a log; a bad URL
refused naming the setting; a file adapter refusing a server in words."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from epos_bridge.adapters.jsonfile.factory import JsonFileFactory
from epos_bridge.adapters.sqlite.factory import SqliteFactory
from epos_bridge.adapters.sqlmap.factory import SqlMapFactory
from epos_bridge.adapters.sqlmap.mapping import load
from epos_bridge.cli import main
from epos_bridge.config import ConfigError, KeyStore, save, settings_secrets
from epos_bridge.config import load as load_settings
from epos_bridge.ports import AdapterInitError, ServerLocation, pos_location
from tests.helpers.keyring_backend import RealKeyring

URL = "mysql+pymysql://bridge@127.0.0.1:3306/ospos"
PASSWORD = "s3cret-pw-for-the-till"


def test_a_url_names_a_server_and_anything_else_a_path() -> None:
    location = pos_location(URL)
    assert isinstance(location, ServerLocation)
    assert (location.host, location.port, location.database, location.user) == ("127.0.0.1", 3306, "ospos", "bridge")
    assert pos_location("~/pos.db") == Path("~/pos.db").expanduser()
    assert pos_location("C:/POS/pos.db") == Path("C:/POS/pos.db")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://bridge:pw@127.0.0.1/ospos", "must not carry a password"),
        ("mysql://bridge@127.0.0.1/", "must name the server and the database"),
        ("mysql://127.0.0.1/ospos", "must name the database user"),
    ],
)
def test_a_url_that_cannot_be_a_server_is_refused_saying_why(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        pos_location(url)


def test_the_password_never_reaches_the_location_repr_or_its_equality() -> None:
    location = ServerLocation(URL).with_password(PASSWORD)
    assert PASSWORD not in repr(location) and PASSWORD not in str(location)
    assert location == ServerLocation(URL)


def test_the_setting_takes_a_url_and_its_password_from_the_environment_never_writing_it(
    tmp_path: Path, real_keyring: RealKeyring
) -> None:
    environ = {"EPOS_BRIDGE_DB": URL, "EPOS_BRIDGE_DB_PASSWORD": PASSWORD, "EPOS_BRIDGE_ADAPTER": "sqlmap"}
    path = tmp_path / "settings.json"
    settings = load_settings(environ=environ, settings_path=path, keystore=KeyStore(real_keyring.backend))
    assert settings.db_path == ServerLocation(URL)
    location = settings.pos_location
    assert isinstance(location, ServerLocation) and location.password == PASSWORD
    assert PASSWORD in settings_secrets(settings)  # redacted from every log like the key
    assert PASSWORD not in repr(settings)
    save(settings, path)
    text = path.read_text()
    assert json.loads(text)["db_path"] == URL and PASSWORD not in text


def test_the_password_comes_from_the_keyring_entry_of_that_url(tmp_path: Path, real_keyring: RealKeyring) -> None:
    store = KeyStore(real_keyring.backend)
    store.set_db_password(URL, PASSWORD)
    store.set_db_password("mysql://other@127.0.0.1/ospos", "not-this-one")
    settings = load_settings(environ={"EPOS_BRIDGE_DB": URL}, settings_path=tmp_path / "s.json", keystore=store)
    assert settings.db_password is not None and settings.db_password.get_secret_value() == PASSWORD


def test_a_password_in_the_setting_is_refused_naming_the_setting(tmp_path: Path, real_keyring: RealKeyring) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(
            environ={"EPOS_BRIDGE_DB": "mysql://bridge:hunter2@127.0.0.1/ospos"},
            settings_path=tmp_path / "s.json",
            keystore=KeyStore(real_keyring.backend),
        )
    words = str(refused.value)
    assert "EPOS_BRIDGE_DB" in words and "must not carry a password" in words and "hunter2" not in words


@pytest.mark.parametrize("factory", [SqliteFactory(), JsonFileFactory()], ids=["sqlite", "jsonfile"])
async def test_a_file_adapter_refuses_a_server_in_words(factory: SqliteFactory | JsonFileFactory) -> None:
    location = ServerLocation(URL)
    assert "not a database server" in (await factory.problem(location) or "")
    with pytest.raises(AdapterInitError, match="not a database server"):
        factory.open(location)


async def test_a_mapping_for_one_engine_refuses_the_other_kind_of_database(tmp_path: Path) -> None:
    sqlite_mapping = SqlMapFactory(load("ospos"))
    assert "is for a SQLite file" in (await sqlite_mapping.problem(ServerLocation(URL)) or "")
    assert sqlite_mapping.location == "file"
    postgres = ServerLocation("postgresql://bridge@127.0.0.1/ospos")
    mini = tmp_path / "m.toml"
    mini.write_text('name = "m"\nengine = "mysql"\ndescription = "m"\ncurrency = "GBP"\n')
    mysql_mapping = SqlMapFactory(load(str(mini)))
    assert mysql_mapping.location == "server"
    assert "written for mysql" in (await mysql_mapping.problem(postgres) or "")
    assert "must be a URL" in (await mysql_mapping.problem(tmp_path / "pos.db") or "")


def test_db_password_keeps_the_password_in_the_keyring_read_from_stdin(
    monkeypatch: pytest.MonkeyPatch, real_keyring: RealKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("keyring.get_keyring", lambda: real_keyring.backend)
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["db", "password", URL, "--stdin"]) == 0
    assert KeyStore(real_keyring.backend).get_db_password(URL) == PASSWORD
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
