"""Credentials are one value, checked once (protocol/dojo.py), built by config.py and fed to both
the gateway and the REST client: no other module strips or checks the key."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

from epos_bridge.app import dojo_client, gateway_settings
from epos_bridge.config import BridgeSettings, dojo_credentials
from epos_bridge.gateway.policy import GatewayConfigError
from epos_bridge.protocol.dojo import DojoCredentials, InvalidCredentials
from epos_bridge.sim.simulator import DEMO_API_KEY

KEY = DEMO_API_KEY
PACKAGE = Path(__file__).resolve().parents[2] / "epos_bridge"
WHERE_THE_KEY_IS_CHECKED = {PACKAGE / "protocol" / "dojo.py"}


@pytest.mark.parametrize(
    ("key", "words"),
    [("", "No Dojo API key"), ("sk_sandbox_half key", "copied whole"), ("sk_sandbox_x\r\nX-Evil: 1", "line breaks")],
)
def test_a_key_that_cannot_be_sent_is_refused_naming_the_setting(key: str, words: str) -> None:
    with pytest.raises(InvalidCredentials, match=words) as refused:
        DojoCredentials(key, "shid")

    assert refused.value.field == "api_key"


def test_settings_text_is_trimmed_once_and_the_repr_never_shows_the_key() -> None:
    credentials = DojoCredentials.of(f"  {KEY}\n", " shid ", "  ")

    assert (credentials.api_key, credentials.software_house_id, credentials.reseller_id) == (KEY, "shid", None)
    assert KEY not in repr(credentials)
    assert credentials.headers()["Authorization"] == f"Basic {KEY}"


async def test_the_gateway_and_the_rest_client_are_built_from_the_same_value() -> None:
    settings = BridgeSettings(api_key=KEY, software_house_id="shid", reseller_id="rs_1")
    async with httpx.AsyncClient() as http:
        client = dojo_client(settings, http)

    assert gateway_settings(settings).credentials == dojo_credentials(settings)
    assert gateway_settings(settings).handshake_headers() == dojo_credentials(settings).headers()
    assert client.environment == "sandbox"


def test_a_missing_key_is_the_gateway_s_configuration_error() -> None:
    with pytest.raises(GatewayConfigError, match="No Dojo API key"):
        gateway_settings(BridgeSettings(software_house_id="shid"))


def _checks_a_key(path: Path) -> list[int]:
    """Lines that look at an API key's characters: ``.isspace()``/``ord()`` near a name with ``key``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "isspace")
            or (isinstance(node.func, ast.Name) and node.func.id == "ord")
        ):
            line = path.read_text(encoding="utf-8").splitlines()[node.lineno - 1]
            if "key" in line.lower():
                found.append(node.lineno)
    return found


def test_no_other_module_checks_the_key() -> None:
    checked = {
        str(p.relative_to(PACKAGE)): lines
        for p in sorted(PACKAGE.rglob("*.py"))
        if p not in WHERE_THE_KEY_IS_CHECKED and (lines := _checks_a_key(p))
    }

    assert checked == {}
    assert _checks_a_key(PACKAGE / "protocol" / "dojo.py"), "the check itself is found (the scan can fail)"
