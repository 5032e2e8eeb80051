"""What the settings dialog asks for: test a key against Dojo, check a POS database, save and apply.

The dialog edits a copy of the settings and does no I/O; this service does it, and answers in
words an installer can act on. Its collaborators are injected (STYLE: ports and adapters) —
services sit below ``config``, ``dojo_api`` and ``adapters`` in the import layers, so this module
names them only through the small protocols below. :func:`epos_bridge.ui.settings_dialog.
build_settings_service` wires the real ones (the OS keyring, ``config.save``, a ``DojoClient``
over an httpx client from the draft settings, the SQLite adapter).

Promises:

* The API key is never in a returned sentence, an exception message built here, or the
  settings file: it goes to the keyring only.
* ``save`` writes only what the dialog edits, and not a value that merely came from the
  environment (an installer's ``EPOS_BRIDGE_WS_URL`` must not be frozen into the file), then
  applies the result to the running bridge at once — no "restart to apply".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from pydantic import SecretStr

from epos_bridge.domain.errors import EposFailure
from epos_bridge.ports import AdapterFactory, LocationKind, PosLocation, ServerLocation, not_a_file
from epos_bridge.protocol.dojo import DojoCredentials, InvalidCredentials, environment_of, pasted_key, redact

log = logging.getLogger(__name__)

DIALOG_FIELDS = (
    "software_house_id",
    "reseller_id",
    "ws_url",
    "api_url",
    "adapter",
    "db_path",
    "mapping",
    "start_at_login",
    "notifications_enabled",
    "notify_each_payment",
)
"""The settings the dialog edits; ``save`` writes these and leaves every other file value alone."""

FIELD_WORDS = {
    "software_house_id": "software-house-id",
    "reseller_id": "reseller-id",
    "ws_url": "gateway URL",
    "api_url": "API URL",
    "adapter": "POS adapter",
    "db_path": "POS database",
    "mapping": "POS mapping",
    "start_at_login": "start at login",
    "notifications_enabled": "notifications",
    "notify_each_payment": "notify on each payment",
}

ENV_API_KEY = "EPOS_BRIDGE_API_KEY"  # config.ENV_API_KEY; repeated because services sit below config

REJECTED_WORDS = "Dojo rejected the key"
"""How a key test that Dojo refused (401/403) begins: the dialog then asks before saving that key."""


# --- ports ------------------------------------------------------------------------------------


class EditableSettings(Protocol):
    """What the service reads of the settings model (``config.BridgeSettings``)."""

    software_house_id: str | None
    reseller_id: str | None
    ws_url: str
    api_url: str
    adapter: str
    db_path: Path | ServerLocation | None
    mapping: str | None
    allow_insecure: bool
    api_key: SecretStr | None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


S = TypeVar("S", bound=EditableSettings)


class KeyVault(Protocol):
    """The OS keyring (``config.KeyStore``). Its errors carry sentences safe to show."""

    def get_api_key(self) -> str | None: ...

    def set_api_key(self, api_key: str) -> None: ...

    def get_db_password(self, url: str) -> str | None: ...

    def set_db_password(self, url: str, password: str) -> None: ...


class SettingsFile(Protocol[S]):
    """The settings file (``config.save``/``config.load``) at ``path``."""

    @property
    def path(self) -> Path: ...

    def read(self) -> S:
        """The file's values over the defaults, without the environment; raises if unreadable."""
        ...

    def write(self, settings: S) -> Path: ...


class IntegrationsReader(Protocol):
    """The one call a key test needs (``dojo_api.DojoClient``)."""

    async def get_integrations(self) -> Any: ...


DojoFactory = Callable[[S, DojoCredentials], AbstractAsyncContextManager[IntegrationsReader]]
"""(draft settings, API key) → a Dojo client for them, its HTTP client closed on exit."""
Apply = Callable[[S], Awaitable[list[str]]]
"""``Bridge.apply_settings``: reconnect/re-register now; returns what changed, in words."""


@dataclass(frozen=True)
class TestResult:
    """A key test's answer: ``words`` is the sentence shown next to the Test button."""

    __test__ = False  # not a pytest test class, whatever the name says

    ok: bool
    words: str


# --- the service ----------------------------------------------------------------------------------


class SettingsService(Generic[S]):
    """The dialog's only door to the outside world. Safe to call from the Qt thread's event loop."""

    def __init__(
        self,
        keystore: KeyVault,
        settings_file: SettingsFile[S],
        *,
        dojo: DojoFactory[S],
        adapters: Mapping[str, AdapterFactory],
        apply: Apply[S] | None = None,
        environ: Mapping[str, str] | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> None:
        """``adapters`` maps each installed adapter name to its factory (``adapters.registry``).
        ``environ``/``env_vars`` (``config.ENV_VARS``) tell which values came from the environment."""
        self._keystore = keystore
        self._file = settings_file
        self._dojo = dojo
        self._adapters = dict(adapters)
        self._apply = apply
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._env_vars: Mapping[str, str] = env_vars if env_vars is not None else {}

    @property
    def installed_adapters(self) -> list[str]:
        return sorted(self._adapters)

    def location_of(self, adapter: str) -> LocationKind:
        """Whether the adapter's database is a file or a folder (what Browse… picks)."""
        factory = self._adapters.get(adapter)
        return factory.location if factory is not None else "file"

    @property
    def settings_path(self) -> Path:
        return self._file.path

    def has_stored_key(self) -> bool:
        """Whether the keyring holds a key (the dialog then says so instead of showing it)."""
        try:
            return self._keystore.get_api_key() is not None
        except Exception:  # keyring missing or locked: the dialog just asks for a key
            return False

    def set_apply(self, apply: Apply[S] | None) -> None:
        """Point ``save`` at the running bridge (or at none while it is stopped)."""
        self._apply = apply

    # --- Test button ---------------------------------------------------------------------------

    async def test_key(self, draft: S, api_key: str | None) -> TestResult:
        """Call ``GET /epos/integrations`` with ``api_key`` (or the draft's current key) and the
        draft's ids and URL; answer in words that never contain the key."""
        pasted = pasted_key(api_key) or (draft.api_key.get_secret_value() if draft.api_key else "")
        if not pasted:
            return TestResult(False, "Enter the API key first.")
        try:
            credentials = DojoCredentials.of(pasted, draft.software_house_id, draft.reseller_id)
        except InvalidCredentials as exc:
            return TestResult(False, str(exc))
        key = credentials.api_key
        try:
            async with self._dojo(draft, credentials) as client:
                integrations = await client.get_integrations()
        except ValueError as exc:  # an endpoint the client refuses to use (InsecureEndpointError)
            return TestResult(False, redact(f"Not tested: {exc}", key))
        except Exception as exc:
            return TestResult(False, _dojo_failure_words(exc, key))
        count = len(getattr(integrations, "registered_capabilities", ()))
        environment = environment_of(key)
        where = f" ({environment})" if environment != "unknown" else ""
        noun = "capability" if count == 1 else "capabilities"
        return TestResult(True, f"Dojo accepted the key{where}: {count} {noun} registered")

    # --- database --------------------------------------------------------------------------------

    def mappings_of(self, adapter: str) -> tuple[str, ...] | None:
        """``None`` when the adapter needs no mapping; else the mappings shipped with it."""
        factory = self._adapters.get(adapter)
        return factory.mappings if factory is not None else None

    def has_stored_db_password(self, location: PosLocation | None) -> bool:
        """Whether the keyring holds the password of this database server (the dialog says so)."""
        if not isinstance(location, ServerLocation):
            return False
        try:
            return self._keystore.get_db_password(location.url) is not None
        except Exception:  # keyring missing or locked: the dialog just asks for it
            return False

    async def check_database(
        self, adapter: str, path: PosLocation | None, mapping: str | None = None, password: str | None = None
    ) -> str | None:
        """``None`` when ``path`` can be served by ``adapter`` (through ``mapping``, for one that
        needs it), else a sentence naming the problem.

        The adapter's own check (``AdapterFactory.problem``), which creates and migrates nothing;
        for a mapping, that every statement prepares against the database.
        """
        factory = self._adapters.get(adapter)
        if path is None or not str(path).strip():
            return f"Choose the POS database {factory.location if factory is not None else 'file'}."
        if factory is None:
            installed = ", ".join(self.installed_adapters) or "none"
            return f"The {adapter} adapter is not installed (installed: {installed})."
        if factory.mappings is not None and not (mapping or "").strip():
            shipped = ", ".join(factory.mappings) or "none"
            return f"Choose the mapping the {adapter} adapter reads the POS through (shipped: {shipped}), or a file."
        try:
            factory = factory.with_mapping(mapping)
        except ValueError as exc:
            return str(exc)
        if isinstance(path, ServerLocation):
            if factory.location != "server" and factory.mappings is not None:
                return f"The mapping {mapping} is for a SQLite file; choose one written for that database server."
            if factory.location != "server":
                return not_a_file(path, f"The {adapter} adapter")
            path = path.with_password(password or self._stored_db_password(path))
        try:
            return await factory.problem(path)  # BridgeSettings already expanded "~"
        except EposFailure as exc:
            return exc.message
        except Exception as exc:
            return f"The POS database {path} could not be opened: {exc}"

    def _stored_db_password(self, location: ServerLocation) -> str | None:
        try:
            return self._keystore.get_db_password(location.url)
        except Exception:
            return None

    # --- Save ------------------------------------------------------------------------------------

    async def save(self, new: S, api_key: str | None, db_password: str | None = None) -> list[str]:
        """Keyring (the key only), then the settings file (never the key), then the running bridge.

        ``api_key`` ``None`` keeps the stored key. Raises the keystore's error (a sentence safe to
        show) or ``OSError`` when the file cannot be written; nothing is applied then.
        """
        said: list[str] = []
        key = pasted_key(api_key)
        if key is not None:
            self._keystore.set_api_key(key)
            said.append("API key saved in the OS keyring")
            if pasted_key(self._environ.get(ENV_API_KEY)):
                said.append(f"{ENV_API_KEY} is also set; it will be used instead when the bridge restarts")
            new = new.model_copy(update={"api_key": SecretStr(key), "api_key_source": "keyring"})

        if db_password and isinstance(new.db_path, ServerLocation):
            self._keystore.set_db_password(new.db_path.url, db_password)
            said.append("Database password saved in the OS keyring")
            new = new.model_copy(update={"db_password": SecretStr(db_password)})

        to_write, notes = self._file_form(new)
        written = self._file.write(to_write)
        said.append(f"Settings saved to {written}")
        said.extend(notes)

        if self._apply is None:
            said.append("The bridge will use them when it starts")
            return [redact(line, key) for line in said]
        try:
            changed = await self._apply(new)
        except Exception as exc:
            log.warning("the saved settings could not be applied: %s", redact(str(exc), key))
            said.append(redact(f"Saved, but not applied yet: {exc}", key))
        else:
            said.append(f"Applied now: {', '.join(changed)}" if changed else "Nothing the bridge uses changed")
        return [redact(line, key) for line in said]

    def _file_form(self, new: S) -> tuple[S, list[str]]:
        """The file's own values with the dialog's fields on top, minus values that only echo the
        environment (they stay the environment's business)."""
        notes: list[str] = []
        try:
            stored: S | None = self._file.read()
        except Exception as exc:
            log.info("the settings file could not be read before saving: %s", exc)
            stored = None
        updates: dict[str, Any] = {}
        for field in DIALOG_FIELDS:
            value = getattr(new, field)
            variable = self._env_vars.get(field)
            from_env = self._environ.get(variable, "").strip() if variable else ""
            if from_env:
                if _same(value, from_env):
                    continue  # not the user's edit: do not pin the environment into the file
                notes.append(
                    f"{FIELD_WORDS[field]} is also set by {variable}; that value wins when the bridge restarts"
                )
            updates[field] = value
        if stored is None:
            notes.append("The old settings file could not be read; it was rewritten")
            return new, notes
        insecure = any(str(updates.get(f, "")).startswith(("ws://", "http://")) for f in ("ws_url", "api_url"))
        if insecure and not stored.allow_insecure:
            updates["allow_insecure"] = new.allow_insecure  # else the file could not be loaded back
        return stored.model_copy(update=updates), notes


def _same(value: Any, raw: str) -> bool:
    """Does a setting's value equal what the environment variable holds?"""
    if value is None:
        return False
    if isinstance(value, bool):
        return raw.strip().lower() in ({"1", "true", "yes", "on"} if value else {"0", "false", "no", "off"})
    if isinstance(value, Path):
        return value == Path(raw.strip()).expanduser()
    return str(value) == raw.strip() or str(value) == raw.strip().rstrip("/")


def _dojo_failure_words(exc: BaseException, key: str) -> str:
    """A failed key test in words. ``status`` is ``DojoApiError.status`` (duck-typed: layering)."""
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return f"{REJECTED_WORDS} ({status}). Check it was copied whole."
    if isinstance(status, int):
        return redact(f"Dojo answered with an error ({status}): {exc}", key)
    detail = str(exc) or type(exc).__name__
    return redact(f"Dojo could not be reached: {detail}", key)
