"""A deflate bomb against the real ``epos-bridge run --headless`` process: the simulator sends a
half-mebibyte message that would inflate to 512 MiB. The bridge closes with 1009 (message too
big), reconnects and serves again, and its peak resident memory (the kernel's VmHWM) does not
move by more than a few MiB: it never inflated past its 1 MiB limit.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from epos_bridge.sim.simulator import DojoSimulator
from tests.e2e.conftest import CliProcess

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="reads the peak resident set from /proc"),
    pytest.mark.timeout(90),
]

MIB = 1024 * 1024
BOMB_BYTES = 512 * MIB


def peak_resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def test_a_deflate_bomb_is_refused_with_1009_and_the_bridge_reconnects_within_bounded_memory(
    spawn: Callable[..., CliProcess], bridge_env: dict[str, str], simulator: DojoSimulator
) -> None:
    bridge = spawn(["run", "--headless"], bridge_env, "bridge")
    gateway = simulator.gateway
    await bridge.wait_for(lambda: gateway.connected, 30, "the bridge to connect")
    await bridge.wait_for(lambda: "registered" in bridge.stderr, 30, "the registration")
    # A first request warms every code path the reconnect and the request below will use.
    first = await gateway.request("SearchTablesV1", {"headers": {}}, timeout=15)
    before = peak_resident_bytes(bridge.process.pid)

    compressed = await gateway.send_deflate_bomb(BOMB_BYTES)
    await bridge.wait_for(lambda: gateway.connections_opened == 2 and gateway.connected, 30, "a reconnection")
    again = await gateway.request("SearchTablesV1", {"headers": {}}, timeout=15)
    after = peak_resident_bytes(bridge.process.pid)
    code, _ = await bridge.terminate()

    grown = after - before
    logging.getLogger(__name__).info(
        "deflate bomb %d -> %d bytes: the bridge's peak RSS went from %.1f to %.1f MiB (+%.1f)",
        compressed,
        BOMB_BYTES,
        before / MIB,
        after / MIB,
        grown / MIB,
    )
    assert "result" in first and "result" in again
    assert gateway.close_codes[0] == 1009
    assert "EPOS_BRIDGE_MAX_FRAME_BYTES" in bridge.stderr
    assert code == 0
    assert grown < 16 * MIB, f"peak RSS grew by {grown / MIB:.1f} MiB during a {BOMB_BYTES // MIB} MiB bomb"
