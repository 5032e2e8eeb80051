"""Facts about talking to Dojo that the gateway session, the REST client and the simulator share.

Contract §1.1 and §5.1: the Authorization header is the literal ``Basic `` followed by the raw
API key — never base64 (§6 A10), so it is built by hand here and nowhere else.
"""

from __future__ import annotations

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


def environment_of(api_key: str | None) -> str:
    """``sandbox``, ``production`` or ``unknown``: the key decides (contract §1.1)."""
    if not api_key:
        return "unknown"
    if api_key.startswith(SANDBOX_KEY_PREFIX):
        return "sandbox"
    if api_key.startswith(PRODUCTION_KEY_PREFIX):
        return "production"
    return "unknown"
