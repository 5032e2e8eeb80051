"""With EPOS_BRIDGE_ALLOW_INSECURE=1, a plain-text endpoint on another host is refused before any
connection is tried: the real commands against a real listener on this machine's LAN address,
which must never see a connection (a refusal after connecting would already have sent the key).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import run_cli


def lan_address() -> str:
    """This machine's own non-loopback IPv4 address (the one a default route would use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            pytest.skip("this machine has no non-loopback IPv4 address")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


class Listener:
    """A TCP listener that counts every connection it is offered."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def lan_listener() -> AsyncIterator[tuple[str, Listener]]:
    host = lan_address()
    listener = Listener()
    listener.server = await asyncio.start_server(listener._accept, host, 0)
    try:
        yield host, listener
    finally:
        listener.server.close()
        await listener.server.wait_closed()


@pytest.mark.parametrize("command", [["doctor"], ["run", "--headless"], ["capabilities"]])
async def test_a_plain_text_endpoint_on_the_lan_is_refused_before_connecting(
    command: list[str], bridge_env: dict[str, str], api_key: str, lan_listener: tuple[str, Listener]
) -> None:
    host, listener = lan_listener
    env = dict(bridge_env)  # EPOS_BRIDGE_ALLOW_INSECURE=1 is set
    env["EPOS_BRIDGE_WS_URL"] = f"ws://{host}:{listener.port}/epos"
    env["EPOS_BRIDGE_API_URL"] = f"http://{host}:{listener.port}"

    result = await run_cli(command, env, timeout=30)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "allowed only on loopback" in output, output
    assert "EPOS_BRIDGE_WS_URL" in output and "EPOS_BRIDGE_API_URL" in output, output
    assert "Traceback" not in output
    assert api_key not in output
    assert listener.connections == 0


async def test_doctor_still_passes_on_a_loopback_simulator(bridge_env: dict[str, str]) -> None:
    result = await run_cli(["doctor"], bridge_env, timeout=60)

    assert "allowed only on loopback" not in result.stdout + result.stderr
    assert "PASS  gateway" in result.stdout, result.stdout + result.stderr
