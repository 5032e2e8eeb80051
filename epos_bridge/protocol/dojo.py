"""Facts about talking to Dojo that the gateway session, the REST client and the simulator share.

Contract §1.1 and §5.1: the Authorization header is the literal ``Basic `` followed by the raw
API key — never base64 (§6 A10), so it is built by hand here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Redaction lives in protocol/redaction.py (every form of a key); re-exported here for its callers.
from epos_bridge.protocol.redaction import BASIC_PREFIX, REDACTED, redact

__all__ = ["REDACTED", "redact"]

DEFAULT_WS_URL = "wss://eu.ws.dojo.tech/epos"
DEFAULT_API_URL = "https://api.dojo.tech"
API_VERSION = "2026-02-27"

HEADER_AUTHORIZATION = "Authorization"
HEADER_SOFTWARE_HOUSE_ID = "software-house-id"
HEADER_RESELLER_ID = "reseller-id"
HEADER_VERSION = "version"

SANDBOX_KEY_PREFIX = "sk_sandbox_"
PRODUCTION_KEY_PREFIX = "sk_prod_"


def authorization_value(api_key: str) -> str:
    return f"{BASIC_PREFIX}{api_key}"


def dojo_headers(api_key: str, software_house_id: str | None, reseller_id: str | None) -> dict[str, str]:
    """Headers for the WebSocket handshake and every REST call; ``reseller-id`` only when set."""
    headers = {HEADER_AUTHORIZATION: authorization_value(api_key)}
    if software_house_id:
        headers[HEADER_SOFTWARE_HOUSE_ID] = software_house_id
    if reseller_id:
        headers[HEADER_RESELLER_ID] = reseller_id
    return headers


class InvalidCredentials(ValueError):
    """A key or id that cannot be sent to Dojo; ``field`` names the setting, the message what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def pasted_key(text: str | None) -> str | None:
    """A key as typed or pasted into Settings: without the whitespace around it, ``None`` if empty."""
    return (text or "").strip() or None


def check_api_key(api_key: str | None) -> str:
    """The one check of an API key, wherever it comes from (the keyring, the environment, Settings'
    paste): present, and no whitespace or control character (a half-copied key). Returns it."""
    if not api_key:
        raise InvalidCredentials("api_key", "No Dojo API key is configured. Enter it in Settings → API key.")
    if any(ch.isspace() or ord(ch) < 32 for ch in api_key):
        said = "The API key contains spaces or line breaks: check it was copied whole and paste it again."
        raise InvalidCredentials("api_key", said)
    return api_key


@dataclass(frozen=True)
class DojoCredentials:
    """Who the bridge is to Dojo, one value for the gateway and the REST client alike (contract
    §1.1). Built checked: an instance always holds a usable key. Its repr never shows the key."""

    api_key: str = field(repr=False)
    software_house_id: str | None = None
    reseller_id: str | None = None

    def __post_init__(self) -> None:
        check_api_key(self.api_key)

    @classmethod
    def of(cls, api_key: str | None, software_house_id: str | None, reseller_id: str | None = None) -> DojoCredentials:
        """From settings text: surrounding whitespace is dropped (a pasted key keeps its newline)
        and an empty id is none."""
        return cls(check_api_key(pasted_key(api_key)), _text(software_house_id), _text(reseller_id))

    def headers(self) -> dict[str, str]:
        """For the WebSocket handshake and every REST call."""
        return dojo_headers(self.api_key, self.software_house_id, self.reseller_id)

    @property
    def environment(self) -> str:
        return environment_of(self.api_key)


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def environment_of(api_key: str | None) -> str:
    """``sandbox``, ``production`` or ``unknown``: the key decides (contract §1.1)."""
    if not api_key:
        return "unknown"
    if api_key.startswith(SANDBOX_KEY_PREFIX):
        return "sandbox"
    if api_key.startswith(PRODUCTION_KEY_PREFIX):
        return "production"
    return "unknown"
