"""The bridge's settings: where they come from, how they are checked, and where they are kept.

Precedence, highest first: command-line overrides > environment > settings file > defaults.

* The environment variables are a published interface (installers and service wrappers set
  them); :data:`ENV_VARS` lists them, and an empty value counts as unset.
* The settings file is JSON (``settings.json``) or TOML (``settings.toml``) in the user config
  directory of ``epos-bridge``; tests pass their own path.
* The API key is a secret. It comes from ``EPOS_BRIDGE_API_KEY`` or else the OS keyring
  (:class:`KeyStore`). It is never read from nor written to the settings file, and never shown
  by ``repr()``/``str()``.

A bad value raises :class:`ConfigError`, which names each offending field the way the user
set it (``EPOS_BRIDGE_WS_URL``, ``--ws-url`` or the settings-file key) so the message says
where to fix it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from platformdirs import user_config_dir, user_data_dir, user_log_dir
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from epos_bridge.host.private_files import private_dir
from epos_bridge.ports import ServerLocation, pos_location
from epos_bridge.protocol.dojo import (
    DEFAULT_API_URL,
    DEFAULT_WS_URL,
    DojoCredentials,
    check_api_key,
    environment_of,
    pasted_key,
)
from epos_bridge.protocol.endpoints import ENV_ALLOW_INSECURE as ENV_ALLOW_INSECURE
from epos_bridge.protocol.endpoints import plain_text_refusal
from epos_bridge.protocol.redaction import proxy_secrets

log = logging.getLogger(__name__)

APP_NAME = "epos-bridge"
KEYRING_SERVICE = "epos-bridge"
KEYRING_USERNAME = "api-key"

ENV_API_KEY = "EPOS_BRIDGE_API_KEY"
ENV_DB_PASSWORD = "EPOS_BRIDGE_DB_PASSWORD"  # noqa: S105 - the variable's name, not a password
"""The POS database server's password, for a headless till or CI; otherwise it is in the OS keyring."""
ENV_VARS: dict[str, str] = {
    "software_house_id": "EPOS_BRIDGE_SOFTWARE_HOUSE_ID",
    "reseller_id": "EPOS_BRIDGE_RESELLER_ID",
    "ws_url": "EPOS_BRIDGE_WS_URL",
    "api_url": "EPOS_BRIDGE_API_URL",
    "adapter": "EPOS_BRIDGE_ADAPTER",
    "db_path": "EPOS_BRIDGE_DB",
    "mapping": "EPOS_BRIDGE_MAPPING",
    "data_dir": "EPOS_BRIDGE_DATA_DIR",
    "allow_insecure": ENV_ALLOW_INSECURE,
    "max_frame_bytes": "EPOS_BRIDGE_MAX_FRAME_BYTES",
}
"""Setting name → environment variable. ``EPOS_BRIDGE_API_KEY`` is separate: it is a secret."""

SECRET_FIELDS = frozenset({"api_key", "api_key_source", "db_password"})
"""Never part of the settings file."""

MAX_FRAME_BYTES = 1024 * 1024
"""1 MiB: the contract names no limit (§1.2); the largest order or bill a venue has is far smaller."""
MIN_FRAME_BYTES = 64 * 1024
MAX_FRAME_BYTES_CEILING = 64 * 1024 * 1024

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def default_config_dir() -> Path:
    return Path(user_config_dir(APP_NAME, appauthor=False))


def default_data_dir() -> Path:
    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_log_dir() -> Path:
    return Path(user_log_dir(APP_NAME, appauthor=False))


def default_settings_path() -> Path:
    """``settings.json`` if present, else ``settings.toml`` if present, else ``settings.json``."""
    folder = default_config_dir()
    for name in ("settings.json", "settings.toml"):
        if (folder / name).exists():
            return folder / name
    return folder / "settings.json"


# --- errors -------------------------------------------------------------------------------


class ConfigError(Exception):
    """One or more settings are unusable. ``problems`` is a list of (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{where}: {message}" for where, message in problems))

    @property
    def fields(self) -> list[str]:
        return [where for where, _ in self.problems]


class KeyStoreError(Exception):
    """The OS keyring failed; the message says what to do instead."""


class KeyStoreUnavailable(KeyStoreError):
    """No keyring backend exists on this computer (``keyring.errors.NoKeyringError``)."""


# --- the settings model ---------------------------------------------------------------------


def _check_endpoint(value: str, secure: str, insecure: str, allow_insecure: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme == secure and parts.netloc:
        return value
    if parts.scheme == insecure and parts.netloc:
        # Plain text only to this machine's loopback, and only with the flag (protocol/endpoints.py).
        refusal = plain_text_refusal(value, secure, allow_insecure=allow_insecure)
        if refusal is None:
            return value
        raise ValueError(refusal)
    raise ValueError(f"must be a {secure}:// URL")


class BridgeSettings(BaseModel):
    """Everything the bridge is configured with. Edit a copy (``model_copy``) and :func:`save` it.

    ``allow_insecure`` is declared first because the URL checks read it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    allow_insecure: bool = False
    """Allow ``ws://`` and ``http://`` endpoints on this machine's loopback: for the local simulator only."""
    software_house_id: str | None = None
    reseller_id: str | None = None
    ws_url: str = DEFAULT_WS_URL
    api_url: str = DEFAULT_API_URL
    adapter: str = Field(default="sqlite", min_length=1, pattern=r"^[a-z][a-z0-9_.-]*$")
    db_path: Path | ServerLocation | None = None
    """The POS's file or folder, or its database on a server: a URL without the password
    (``mysql://bridge@127.0.0.1:3306/ospos``), whose password is :attr:`db_password`."""
    mapping: str | None = None
    """For an adapter that reads the POS through a mapping file (``sqlmap``): a path, or the name
    of a mapping shipped with it (``floreant``, ``ospos``); other adapters ignore it."""
    data_dir: Path = Field(default_factory=default_data_dir)
    proxy: str | None = None
    max_frame_bytes: int = Field(default=MAX_FRAME_BYTES, ge=MIN_FRAME_BYTES, le=MAX_FRAME_BYTES_CEILING)
    """The largest message accepted from the gateway, after decompression (default 1 MiB). A
    larger one (a deflate bomb, a runaway gateway) closes the connection with 1009 and the bridge
    reconnects, so memory stays bounded whatever the gateway sends."""
    start_at_login: bool = False
    notifications_enabled: bool = True
    notify_each_payment: bool = False

    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """From the environment or the keyring; excluded from every dump and from ``repr``."""
    api_key_source: Literal["environment", "keyring"] | None = Field(default=None, exclude=True, repr=False)
    db_password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """The POS database server's password, from ``EPOS_BRIDGE_DB_PASSWORD`` or the OS keyring;
    excluded from every dump and from ``repr``, like the API key."""

    @field_validator("db_path", mode="before")
    @classmethod
    def _path_or_server(cls, value: Any) -> Any:
        """A URL names a server (refused with a reason when it carries a password or lacks a part)."""
        return pos_location(value) if isinstance(value, str) and value.strip() else value

    @field_serializer("db_path")
    def _as_text(self, value: Path | ServerLocation | None) -> str | None:
        return None if value is None else str(value)

    @property
    def pos_location(self) -> Path | ServerLocation | None:
        """Where the POS's storage is, ready to open: a server's location carries its password."""
        if isinstance(self.db_path, ServerLocation):
            password = self.db_password.get_secret_value() if self.db_password else None
            return self.db_path.with_password(password)
        return self.db_path

    @field_validator("mapping")
    @classmethod
    def _blank_mapping_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("software_house_id", "reseller_id", "proxy")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain spaces")
        return value or None

    @field_validator("ws_url")
    @classmethod
    def _ws_url_is_secure(cls, value: str, info: ValidationInfo) -> str:
        return _check_endpoint(value.strip(), "wss", "ws", bool(info.data.get("allow_insecure")))

    @field_validator("api_url")
    @classmethod
    def _api_url_is_secure(cls, value: str, info: ValidationInfo) -> str:
        allowed = bool(info.data.get("allow_insecure"))
        return _check_endpoint(value.strip(), "https", "http", allowed).rstrip("/")

    @field_validator("proxy")
    @classmethod
    def _proxy_is_url(cls, value: str | None) -> str | None:
        # "system" follows the OS/environment proxy settings (the gateway session's opt-in).
        if value is not None and value != "system" and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError('must be an http:// or https:// proxy URL, or "system"')
        return value

    @field_validator("db_path", "data_dir")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return value.expanduser() if isinstance(value, Path) else value

    @field_validator("api_key")
    @classmethod
    def _key_has_no_spaces(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(ch.isspace() for ch in value.get_secret_value()):
            raise ValueError("must not contain spaces")  # never echo the key itself
        return value

    @property
    def environment(self) -> str:
        """``sandbox``, ``production`` or ``unknown``, decided by the key prefix (contract §1.1)."""
        return environment_of(self.api_key.get_secret_value() if self.api_key else None)

    @property
    def log_dir(self) -> Path:
        """Logs live with the bridge's state when EPOS_BRIDGE_DATA_DIR moves it (shared tills);
        otherwise in the platform's log folder."""
        return self.data_dir / "logs" if "data_dir" in self.model_fields_set else default_log_dir()

    def file_form(self) -> dict[str, Any]:
        """What :func:`save` writes: every setting except the secrets, JSON-ready."""
        data = self.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        for name in SECRET_FIELDS:
            data.pop(name, None)
        return data


def dojo_credentials(settings: BridgeSettings) -> DojoCredentials:
    """The one value the gateway and the REST client are both built with: the key unwrapped and
    checked here, once (``protocol.dojo.InvalidCredentials`` says what is wrong)."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return DojoCredentials.of(key, settings.software_house_id, settings.reseller_id)


def settings_secrets(settings: BridgeSettings) -> list[str]:
    """What must never appear in a log, report or child environment: the API key and the proxy's
    credentials (:mod:`epos_bridge.protocol.redaction` removes every form of each)."""
    found = [settings.api_key.get_secret_value()] if settings.api_key is not None else []
    if settings.db_password is not None:
        found.append(settings.db_password.get_secret_value())
    return found + proxy_secrets(settings.proxy)


# --- reading the sources --------------------------------------------------------------------


def _env_flag(raw: str) -> bool | str:
    """``1``/``0`` (and true/false, yes/no, on/off); anything else is returned for the model to refuse."""
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return raw


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot be read ({exc.strerror})")]) from None
    try:
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text) if text.strip() else {}
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError([(str(path), f"is not valid {kind} ({exc})")]) from None
    if not isinstance(data, dict):
        raise ConfigError([(str(path), "must hold a table/object of settings")])
    if "api_key" in data:
        raise ConfigError(
            [
                (
                    f"{path}: api_key",
                    "the API key must not be kept in the settings file; "
                    f"set {ENV_API_KEY} or save it in Settings → API key (OS keyring)",
                )
            ]
        )
    known = set(BridgeSettings.model_fields) - SECRET_FIELDS
    for key in sorted(set(data) - known):
        log.info("Ignoring unknown setting %r in %s (written by a newer version?)", key, path)
    return {key: value for key, value in data.items() if key in known}


def load(
    *,
    cli_overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    settings_path: Path | None = None,
    keystore: KeyStore | None = None,
) -> BridgeSettings:
    """Merge the sources (cli > environment > file > defaults), check them, and attach the API key.

    ``cli_overrides`` maps setting names to values; ``None`` values mean "not given".
    ``environ`` defaults to ``os.environ``; ``keystore`` to the OS keyring. A keyring that is
    missing or failing leaves ``api_key`` unset (the UI then asks for a key) rather than
    stopping the bridge.
    """
    environ = os.environ if environ is None else environ
    path = settings_path or default_settings_path()
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}

    for key, value in _read_file(path).items():
        values[key] = value
        origin[key] = f"{path.name}: {key}"
    for key, variable in ENV_VARS.items():
        raw = environ.get(variable, "")
        if raw.strip():
            values[key] = _env_flag(raw) if key == "allow_insecure" else raw.strip()
            origin[key] = variable
    known = set(BridgeSettings.model_fields) - SECRET_FIELDS
    problems: list[tuple[str, str]] = []
    for key, value in (cli_overrides or {}).items():
        if key not in known:
            problems.append((f"--{key.replace('_', '-')}", "is not a setting"))
        elif value is not None:
            values[key] = value
            origin[key] = f"--{key.replace('_', '-')}"

    key_source: Literal["environment", "keyring"] | None = None
    api_key: str | None = pasted_key(environ.get(ENV_API_KEY))
    if api_key is not None:
        key_source = "environment"
        origin["api_key"] = ENV_API_KEY
    else:
        store = keystore if keystore is not None else KeyStore()
        try:
            api_key = store.get_api_key()
        except KeyStoreError as exc:
            log.info("No API key from the OS keyring: %s", exc)
        if api_key is not None:
            key_source = "keyring"
            origin["api_key"] = "API key in the OS keyring"
    values["api_key"] = api_key
    values["api_key_source"] = key_source
    values["db_password"] = _db_password(values.get("db_path"), environ, keystore, origin)

    try:
        settings = BridgeSettings.model_validate(values)
    except ValidationError as exc:
        problems.extend(_problems_of(exc, origin))
    if problems:
        raise ConfigError(problems)
    return settings


def _db_password(
    db_path: Any, environ: Mapping[str, str], keystore: KeyStore | None, origin: dict[str, str]
) -> str | None:
    """A server's password: the environment's, else the keyring's entry for that URL."""
    try:
        location = pos_location(db_path) if isinstance(db_path, str) else db_path
    except ValueError:
        return None  # the db_path check says what is wrong with the URL
    if not isinstance(location, ServerLocation):
        return None
    given = environ.get(ENV_DB_PASSWORD)
    if given:
        origin["db_password"] = ENV_DB_PASSWORD
        return given
    store = keystore if keystore is not None else KeyStore()
    try:
        return store.get_db_password(location.url)
    except KeyStoreError as exc:
        log.info("No POS database password from the OS keyring: %s", exc)
        return None


def _problems_of(exc: ValidationError, origin: Mapping[str, str]) -> list[tuple[str, str]]:
    """pydantic errors → (where the user set it, plain message)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        name = str(error["loc"][0]) if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and name == "adapter":
            message = "must be an adapter name such as sqlite"
        if name == "allow_insecure":
            message = "must be 1 (allow ws:// and http:// endpoints on this machine's loopback) or 0"
        if name == "max_frame_bytes":
            message = (
                f"must be a number of bytes from {MIN_FRAME_BYTES} to {MAX_FRAME_BYTES_CEILING}"
                f" (default {MAX_FRAME_BYTES})"
            )
        problems.append((origin.get(name, name), message))
    return problems


def with_changes(settings: BridgeSettings, **changes: Any) -> BridgeSettings:
    """A checked copy with ``changes`` applied (for the settings dialog); raises :class:`ConfigError`."""
    data = settings.model_dump(exclude=set(SECRET_FIELDS))
    data.update(changes)
    data.setdefault("api_key", settings.api_key)
    data.setdefault("api_key_source", settings.api_key_source)
    data.setdefault("db_password", settings.db_password)
    try:
        return BridgeSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems_of(exc, {})) from None


# --- writing ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # JSON string escapes are valid TOML basic strings


def save(settings: BridgeSettings, path: Path | None = None) -> Path:
    """Write the settings file atomically (temp file + ``os.replace``); the API key is never written.

    JSON unless ``path`` ends in ``.toml``. Returns the path written.
    """
    path = path or default_settings_path()
    data = settings.file_form()
    data.pop("api_key", None)  # belt and braces: file_form already leaves it out
    if path.suffix.lower() == ".toml":
        text = "".join(f"{key} = {_toml_value(value)}\n" for key, value in data.items() if value is not None)
    else:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    private_dir(path.parent)  # mkstemp makes the file itself 0600
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return path


# --- the API key in the OS keyring -----------------------------------------------------------


def _db_username(url: str) -> str:
    return f"db-password {url}"


class KeyStore:
    """The API key in the OS keyring (service ``epos-bridge``, username ``api-key``).

    ``backend`` is injected by tests (a real ``keyrings.alt`` file backend in a temp folder);
    without it the keyring library picks the OS backend.
    """

    def __init__(
        self,
        backend: KeyringBackend | None = None,
        *,
        service: str = KEYRING_SERVICE,
        username: str = KEYRING_USERNAME,
    ) -> None:
        self._backend = backend
        self._service = service
        self._username = username

    def _keyring(self) -> KeyringBackend:
        return self._backend if self._backend is not None else keyring.get_keyring()

    def get_api_key(self) -> str | None:
        try:
            value = self._keyring().get_password(self._service, self._username)
        except keyring.errors.NoKeyringError:
            raise KeyStoreUnavailable(self._no_backend_message()) from None
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"Could not read the API key from the OS keyring ({type(exc).__name__}).") from None
        return value or None

    def set_api_key(self, api_key: str) -> None:
        check_api_key(api_key)
        try:
            self._keyring().set_password(self._service, self._username, api_key)
        except keyring.errors.NoKeyringError:
            raise KeyStoreUnavailable(self._no_backend_message()) from None
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"Could not save the API key in the OS keyring ({type(exc).__name__}).") from None

    def delete_api_key(self) -> None:
        """Forget the key; forgetting a key that is not there is not an error."""
        try:
            self._keyring().delete_password(self._service, self._username)
        except keyring.errors.PasswordDeleteError:
            return
        except keyring.errors.NoKeyringError:
            raise KeyStoreUnavailable(self._no_backend_message()) from None
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"Could not remove the API key from the OS keyring ({type(exc).__name__}).") from None

    def get_db_password(self, url: str) -> str | None:
        """The password of the POS database server at ``url`` (one keyring entry per URL)."""
        try:
            value = self._keyring().get_password(self._service, _db_username(url))
        except keyring.errors.NoKeyringError:
            raise KeyStoreUnavailable(self._no_backend_message()) from None
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(
                f"Could not read the database password from the OS keyring ({type(exc).__name__})."
            ) from None
        return value or None

    def set_db_password(self, url: str, password: str) -> None:
        try:
            self._keyring().set_password(self._service, _db_username(url), password)
        except keyring.errors.NoKeyringError:
            raise KeyStoreUnavailable(self._no_backend_message()) from None
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(
                f"Could not save the database password in the OS keyring ({type(exc).__name__})."
            ) from None

    @staticmethod
    def _no_backend_message() -> str:
        return (
            "No secure key storage (OS keyring) is available on this computer, so the API key cannot be "
            f"kept there. Set {ENV_API_KEY} instead, or install a keyring backend."
        )
