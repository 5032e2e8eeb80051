"""Settings: precedence, the published environment variables, validation, and keeping the key secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest
from keyrings.alt.file import PlaintextKeyring

from epos_bridge import config
from epos_bridge.config import (
    ENV_VARS,
    BridgeSettings,
    ConfigError,
    KeyStore,
    KeyStoreUnavailable,
    load,
    save,
    with_changes,
)
from epos_bridge.protocol.dojo import DEFAULT_API_URL, DEFAULT_WS_URL

SANDBOX_KEY = "sk_sandbox_c0nfigTestKey123"
PROD_KEY = "sk_prod_fake_AnotherSecretKey987"


@pytest.fixture
def file_keyring(tmp_path: Path) -> PlaintextKeyring:
    """A REAL keyring backend (keyrings.alt's plaintext file keyring), not a fake.

    Only its storage file is redirected into tmp_path so tests never touch the user's keyring.
    """
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    return backend


@pytest.fixture
def keystore(file_keyring: PlaintextKeyring) -> KeyStore:
    return KeyStore(file_keyring)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def load_with(settings_path: Path, keystore: KeyStore, env: dict[str, str] | None = None, **cli: Any) -> BridgeSettings:
    return load(cli_overrides=cli, environ=env or {}, settings_path=settings_path, keystore=keystore)


# --- defaults and precedence ------------------------------------------------------------------


def test_defaults_when_nothing_is_set(settings_path: Path, keystore: KeyStore) -> None:
    settings = load_with(settings_path, keystore)
    assert settings.ws_url == DEFAULT_WS_URL == "wss://eu.ws.dojo.tech/epos"
    assert settings.api_url == DEFAULT_API_URL == "https://api.dojo.tech"
    assert settings.adapter == "sqlite"
    assert settings.allow_insecure is False
    assert settings.data_dir == config.default_data_dir()
    assert "epos-bridge" in str(settings.data_dir)
    assert "epos-bridge" in str(settings.log_dir)
    assert settings.api_key is None
    assert settings.environment == "unknown"


def test_cli_beats_environment_beats_file_beats_defaults(settings_path: Path, keystore: KeyStore) -> None:
    write_json(settings_path, {"software_house_id": "from-file", "reseller_id": "file-reseller", "adapter": "filedb"})
    env = {"EPOS_BRIDGE_SOFTWARE_HOUSE_ID": "from-env", "EPOS_BRIDGE_ADAPTER": "envdb"}

    settings = load_with(settings_path, keystore, env, software_house_id="from-cli", adapter=None)

    assert settings.software_house_id == "from-cli"  # cli over env over file
    assert settings.adapter == "envdb"  # cli None means "not given": env over file
    assert settings.reseller_id == "file-reseller"  # only the file set it
    assert settings.notifications_enabled is True  # nobody set it: default


@pytest.mark.parametrize(
    ("field", "variable", "raw", "expected"),
    [
        ("software_house_id", "EPOS_BRIDGE_SOFTWARE_HOUSE_ID", "sh_123", "sh_123"),
        ("reseller_id", "EPOS_BRIDGE_RESELLER_ID", "rs_9", "rs_9"),
        ("ws_url", "EPOS_BRIDGE_WS_URL", "wss://ws.example.test/epos", "wss://ws.example.test/epos"),
        ("api_url", "EPOS_BRIDGE_API_URL", "https://api.example.test/", "https://api.example.test"),
        ("adapter", "EPOS_BRIDGE_ADAPTER", "mapped", "mapped"),
        ("db_path", "EPOS_BRIDGE_DB", "/srv/pos/pos.db", Path("/srv/pos/pos.db")),
        ("data_dir", "EPOS_BRIDGE_DATA_DIR", "/srv/bridge", Path("/srv/bridge")),
        ("allow_insecure", "EPOS_BRIDGE_ALLOW_INSECURE", "1", True),
        ("allow_insecure", "EPOS_BRIDGE_ALLOW_INSECURE", "0", False),
        ("max_frame_bytes", "EPOS_BRIDGE_MAX_FRAME_BYTES", "2097152", 2097152),
    ],
)
def test_each_published_environment_variable(
    settings_path: Path, keystore: KeyStore, field: str, variable: str, raw: str, expected: Any
) -> None:
    assert ENV_VARS[field] == variable
    settings = load_with(settings_path, keystore, {variable: raw})
    assert getattr(settings, field) == expected


def test_the_published_names_are_exactly_these() -> None:
    assert set(ENV_VARS.values()) | {config.ENV_API_KEY} == {
        "EPOS_BRIDGE_API_KEY",
        "EPOS_BRIDGE_SOFTWARE_HOUSE_ID",
        "EPOS_BRIDGE_RESELLER_ID",
        "EPOS_BRIDGE_WS_URL",
        "EPOS_BRIDGE_API_URL",
        "EPOS_BRIDGE_ADAPTER",
        "EPOS_BRIDGE_DB",
        "EPOS_BRIDGE_DATA_DIR",
        "EPOS_BRIDGE_ALLOW_INSECURE",
        "EPOS_BRIDGE_MAX_FRAME_BYTES",
    }


def test_empty_environment_value_counts_as_unset(settings_path: Path, keystore: KeyStore) -> None:
    write_json(settings_path, {"reseller_id": "file-reseller"})
    settings = load_with(settings_path, keystore, {"EPOS_BRIDGE_RESELLER_ID": ""})
    assert settings.reseller_id == "file-reseller"


def test_toml_settings_file_is_read(tmp_path: Path, keystore: KeyStore) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('software_house_id = "toml-house"\nnotify_each_payment = true\n', encoding="utf-8")
    settings = load_with(path, keystore)
    assert settings.software_house_id == "toml-house"
    assert settings.notify_each_payment is True


# --- validation names the field ---------------------------------------------------------------


def test_ws_url_refused_without_the_insecure_flag(settings_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore, {"EPOS_BRIDGE_WS_URL": "ws://127.0.0.1:8765/epos"})
    assert caught.value.problems == [
        (
            "EPOS_BRIDGE_WS_URL",
            "must be a wss:// URL, because a ws:// endpoint would carry the API key in clear text"
            " (set EPOS_BRIDGE_ALLOW_INSECURE=1 to allow ws:// to this machine's loopback, for the simulator)",
        )
    ]
    assert str(caught.value).startswith("EPOS_BRIDGE_WS_URL: must be a wss:// URL")


def test_http_api_url_refused_without_the_insecure_flag(settings_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore, {"EPOS_BRIDGE_API_URL": "http://127.0.0.1:9000"})
    assert caught.value.fields == ["EPOS_BRIDGE_API_URL"]
    assert "https://" in str(caught.value) and "EPOS_BRIDGE_ALLOW_INSECURE=1" in str(caught.value)


def test_insecure_endpoints_accepted_with_the_flag(settings_path: Path, keystore: KeyStore) -> None:
    env = {
        "EPOS_BRIDGE_ALLOW_INSECURE": "1",
        "EPOS_BRIDGE_WS_URL": "ws://127.0.0.1:8765/epos",
        "EPOS_BRIDGE_API_URL": "http://127.0.0.1:9000",
    }
    settings = load_with(settings_path, keystore, env)
    assert settings.ws_url == "ws://127.0.0.1:8765/epos"
    assert settings.api_url == "http://127.0.0.1:9000"


def test_bad_value_in_the_file_names_the_file_key(settings_path: Path, keystore: KeyStore) -> None:
    write_json(settings_path, {"start_at_login": "sometimes", "ws_url": "https://not-a-websocket"})
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore)
    assert sorted(caught.value.fields) == ["settings.json: start_at_login", "settings.json: ws_url"]


def test_bad_cli_value_names_the_option(settings_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore, adapter="Not An Adapter!")
    assert caught.value.problems == [("--adapter", "must be an adapter name such as sqlite")]


def test_bad_insecure_flag_names_the_variable(settings_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore, {"EPOS_BRIDGE_ALLOW_INSECURE": "perhaps"})
    assert caught.value.problems[0] == (
        "EPOS_BRIDGE_ALLOW_INSECURE",
        "must be 1 (allow ws:// and http:// endpoints on this machine's loopback) or 0",
    )


def test_broken_json_file_is_a_clear_error(settings_path: Path, keystore: KeyStore) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_with(settings_path, keystore)


def test_with_changes_checks_the_copy() -> None:
    settings = BridgeSettings()
    changed = with_changes(settings, notify_each_payment=True)
    assert changed.notify_each_payment is True and settings.notify_each_payment is False
    with pytest.raises(ConfigError) as caught:
        with_changes(settings, api_url="http://plain.example")
    assert caught.value.fields == ["api_url"]


# --- the API key ------------------------------------------------------------------------------


def test_api_key_from_environment_wins_over_keyring(settings_path: Path, keystore: KeyStore) -> None:
    keystore.set_api_key(PROD_KEY)
    settings = load_with(settings_path, keystore, {"EPOS_BRIDGE_API_KEY": SANDBOX_KEY})
    assert settings.api_key is not None and settings.api_key.get_secret_value() == SANDBOX_KEY
    assert settings.api_key_source == "environment"
    assert settings.environment == "sandbox"


def test_api_key_from_keyring_when_not_in_environment(settings_path: Path, keystore: KeyStore) -> None:
    keystore.set_api_key(PROD_KEY)
    settings = load_with(settings_path, keystore)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == PROD_KEY
    assert settings.api_key_source == "keyring"
    assert settings.environment == "production"


def test_key_never_in_repr_or_str(settings_path: Path, keystore: KeyStore) -> None:
    settings = load_with(settings_path, keystore, {"EPOS_BRIDGE_API_KEY": SANDBOX_KEY})
    for text in (repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert SANDBOX_KEY not in text
        assert "c0nfigTestKey" not in text


def test_saving_strips_the_key_and_round_trips(settings_path: Path, keystore: KeyStore) -> None:
    env = {"EPOS_BRIDGE_API_KEY": SANDBOX_KEY, "EPOS_BRIDGE_SOFTWARE_HOUSE_ID": "sh_1"}
    settings = with_changes(load_with(settings_path, keystore, env), start_at_login=True, proxy="http://proxy:3128")

    written = save(settings, settings_path)

    text = written.read_text(encoding="utf-8")
    assert SANDBOX_KEY not in text
    assert "api_key" not in text
    stored = json.loads(text)
    assert stored["software_house_id"] == "sh_1" and stored["start_at_login"] is True
    again = load_with(settings_path, keystore)
    assert again.software_house_id == "sh_1"
    assert again.proxy == "http://proxy:3128"
    assert again.api_key is None  # the key did not travel through the file
    assert list(settings_path.parent.iterdir()) == [settings_path]  # no temp file left behind


def test_saving_as_toml_round_trips(tmp_path: Path, keystore: KeyStore) -> None:
    path = tmp_path / "settings.toml"
    settings = with_changes(BridgeSettings(api_key=SANDBOX_KEY), software_house_id='quote"d', notify_each_payment=True)
    save(settings, path)
    assert SANDBOX_KEY not in path.read_text(encoding="utf-8")
    again = load_with(path, keystore)
    assert again.software_house_id == 'quote"d' and again.notify_each_payment is True


def test_a_key_placed_in_the_file_is_refused(settings_path: Path, keystore: KeyStore) -> None:
    write_json(settings_path, {"api_key": SANDBOX_KEY})
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore)
    assert caught.value.fields == [f"{settings_path}: api_key"]
    assert SANDBOX_KEY not in str(caught.value)


def test_key_with_spaces_is_refused_without_echoing_it(settings_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(settings_path, keystore, {"EPOS_BRIDGE_API_KEY": "sk_sandbox_has space"})
    assert caught.value.problems == [("EPOS_BRIDGE_API_KEY", "must not contain spaces")]
    assert "has space" not in str(caught.value)


# --- KeyStore on a real backend ----------------------------------------------------------------


def test_keystore_round_trip_on_the_file_backend(keystore: KeyStore, file_keyring: PlaintextKeyring) -> None:
    assert keystore.get_api_key() is None
    keystore.set_api_key(SANDBOX_KEY)
    assert keystore.get_api_key() == SANDBOX_KEY
    # stored under the documented service and username, in the redirected file
    assert file_keyring.get_password("epos-bridge", "api-key") == SANDBOX_KEY
    reopened = PlaintextKeyring()  # a second instance over the same file: the key really persisted
    reopened.file_path = file_keyring.file_path
    assert KeyStore(reopened).get_api_key() == SANDBOX_KEY
    keystore.delete_api_key()
    assert keystore.get_api_key() is None
    keystore.delete_api_key()  # deleting twice is fine


def test_keystore_uses_the_process_keyring_when_no_backend_given(file_keyring: PlaintextKeyring) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(file_keyring)  # the real file backend again, installed process-wide
    try:
        KeyStore().set_api_key(PROD_KEY)
        assert file_keyring.get_password("epos-bridge", "api-key") == PROD_KEY
    finally:
        keyring.set_keyring(previous)


def test_keystore_without_a_backend_says_what_to_do(settings_path: Path) -> None:
    # keyring's own "fail" backend is what keyring installs when no OS keyring exists.
    store = KeyStore(keyring.backends.fail.Keyring())
    with pytest.raises(KeyStoreUnavailable, match="Set EPOS_BRIDGE_API_KEY instead"):
        store.set_api_key(SANDBOX_KEY)
    with pytest.raises(KeyStoreUnavailable):
        store.get_api_key()
    # loading still works: no key, and the UI asks for one
    settings = load(environ={}, settings_path=settings_path, keystore=store)
    assert settings.api_key is None and settings.api_key_source is None


def test_the_inbound_message_limit_defaults_to_one_mib_and_refuses_nonsense(
    settings_path: Path, keystore: KeyStore
) -> None:
    assert load_with(settings_path, keystore).max_frame_bytes == 1024 * 1024
    for raw in ("0", "lots", "999999999999"):
        with pytest.raises(ConfigError) as caught:
            load_with(settings_path, keystore, {"EPOS_BRIDGE_MAX_FRAME_BYTES": raw})
        assert caught.value.fields == ["EPOS_BRIDGE_MAX_FRAME_BYTES"]
        assert "number of bytes" in str(caught.value)
