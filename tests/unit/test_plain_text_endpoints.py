"""EPOS_BRIDGE_ALLOW_INSECURE allows plain text to this machine's loopback only: one pure rule
(protocol/endpoints.py) applied by the settings, the gateway session and the REST client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from epos_bridge.config import BridgeSettings, ConfigError, KeyStore, load
from epos_bridge.dojo_api import DojoClient
from epos_bridge.gateway.policy import GatewayConfigError
from epos_bridge.gateway.session import GatewaySettings
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.dojo_errors import InsecureEndpointError
from epos_bridge.protocol.endpoints import is_loopback_host, plain_text_refusal

API_KEY = "sk_prod_fake_0123456789abcdef"

LOOPBACK = ["127.0.0.1", "127.8.9.10", "127.255.255.254", "::1", "[::1]", "localhost", "LOCALHOST", "localhost."]
NOT_LOOPBACK = [
    "10.0.0.5",
    "192.168.1.20",
    "0.0.0.0",
    "::",
    "128.0.0.1",
    "2130706433",  # 127.0.0.1 as a decimal number: resolvers may accept it, the rule does not
    "127.1",  # inet_aton's shorthand, likewise
    "localhost.evil.example",
    "evil-localhost",
    "api.dojo.tech",
    "",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


def test_an_ipv4_mapped_loopback_address_is_loopback() -> None:
    assert is_loopback_host("::ffff:127.0.0.1")
    assert not is_loopback_host("::ffff:10.0.0.1")


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(("url", "secure"), [("ws://10.0.0.5:8765/epos", "wss"), ("http://10.0.0.5:9000", "https")])
def test_a_plain_text_url_to_another_host_is_refused_even_with_the_flag(url: str, secure: str) -> None:
    refusal = plain_text_refusal(url, secure, allow_insecure=True)

    assert refusal is not None
    assert "allowed only on loopback" in refusal
    assert "10.0.0.5" in refusal


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8765/epos", "ws://[::1]:8765/epos", "ws://localhost:8765/epos"])
def test_a_plain_text_url_to_loopback_is_allowed_with_the_flag_only(url: str) -> None:
    assert plain_text_refusal(url, "wss", allow_insecure=True) is None
    refusal = plain_text_refusal(url, "wss", allow_insecure=False)
    assert refusal is not None and "EPOS_BRIDGE_ALLOW_INSECURE=1" in refusal


def test_secure_urls_are_not_judged_here() -> None:
    assert plain_text_refusal("wss://10.0.0.5/epos", "wss", allow_insecure=False) is None
    assert plain_text_refusal("https://api.dojo.tech", "https", allow_insecure=True) is None


def test_the_settings_refuse_a_remote_plain_text_endpoint_naming_the_variable(tmp_path: Path) -> None:
    from keyring.backends.fail import Keyring

    env = {
        "EPOS_BRIDGE_ALLOW_INSECURE": "1",
        "EPOS_BRIDGE_WS_URL": "ws://10.0.0.5:8765/epos",
        "EPOS_BRIDGE_API_URL": "http://192.168.1.20:9000",
    }
    with pytest.raises(ConfigError) as caught:
        load(environ=env, settings_path=tmp_path / "settings.json", keystore=KeyStore(Keyring()))

    assert sorted(caught.value.fields) == ["EPOS_BRIDGE_API_URL", "EPOS_BRIDGE_WS_URL"]
    assert all("allowed only on loopback" in message for _, message in caught.value.problems)


def test_the_settings_accept_loopback_plain_text_with_the_flag() -> None:
    settings = BridgeSettings(allow_insecure=True, ws_url="ws://localhost:1/epos", api_url="http://[::1]:2")

    assert settings.ws_url == "ws://localhost:1/epos"


def test_the_gateway_session_settings_refuse_a_remote_ws_url() -> None:
    with pytest.raises(GatewayConfigError) as refused:
        GatewaySettings(credentials=DojoCredentials(API_KEY, "s"), ws_url="ws://10.0.0.5/epos", allow_insecure=True)

    message = str(refused.value)
    assert "allowed only on loopback" in message and "EPOS_BRIDGE_WS_URL" in message
    assert API_KEY not in message


def test_a_plain_text_gateway_url_is_never_sent_through_a_proxy() -> None:
    settings = GatewaySettings(
        credentials=DojoCredentials(API_KEY, "s"), ws_url="ws://127.0.0.1:1/epos", allow_insecure=True, proxy="system"
    )

    assert settings.connect_proxy() is None


async def test_the_rest_client_refuses_a_remote_http_url() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(InsecureEndpointError, match="allowed only on loopback"):
            DojoClient(http, credentials=DojoCredentials(API_KEY, "s"), base_url="http://10.0.0.5", allow_insecure=True)
