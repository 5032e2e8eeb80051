"""Inbound messages are limited (1 MiB by default, ``EPOS_BRIDGE_MAX_FRAME_BYTES``), after
permessage-deflate decompression: a deflate bomb from the simulator closes the link with 1009,
the session reconnects and serves again, and memory stays bounded while it happens.

In process: the real session and the simulator on 127.0.0.1; memory is what tracemalloc saw
allocated at the peak (Python's allocator is where an inflated message would live). The bridge
as a separate process is measured by its peak resident set in tests/e2e/test_deflate_bomb.py.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.sim.gateway import GatewaySimulator
from tests.integration.test_gateway_session import (
    API_KEY,
    SOFTWARE_HOUSE_ID,
    FakePos,
    RecordingSleep,
    dispatcher_for,
    get_order,
    running,
    settings_for,
    wait_for_state,
)

MIB = 1024 * 1024
BOMB_BYTES = 512 * MIB


@pytest.fixture
async def sim() -> AsyncIterator[GatewaySimulator]:
    async with GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=SOFTWARE_HOUSE_ID) as simulator:
        yield simulator


def test_the_default_limit_is_one_mib() -> None:
    assert GatewaySettings(credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID)).max_frame_bytes == MIB


async def test_a_deflate_bomb_closes_with_1009_reconnects_and_memory_stays_bounded(
    sim: GatewaySimulator, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = RecordingSleep()
    session = GatewaySession(settings_for(sim), dispatcher_for(FakePos()).handle_text, sleep=sleep, random=lambda: 0.5)

    async with running(session):
        await wait_for_state(session, ConnectionState.CONNECTED)
        await sim.wait_connected()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            compressed = await sim.send_deflate_bomb(BOMB_BYTES)
            await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected, 10, "the bridge to reconnect")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await wait_for_state(session, ConnectionState.CONNECTED)
        answer = await sim.request("GetOrderByIdV1", get_order())

    grown = peak - before
    logging.getLogger(__name__).info(
        "deflate bomb: %d bytes on the wire inflating to %d; peak traced allocation %.1f MiB",
        compressed,
        BOMB_BYTES,
        grown / MIB,
    )
    assert compressed < MIB  # small enough to pass the wire limit: only inflating reveals it
    assert sim.close_codes[0] == 1009
    assert sleep.delays == [1.0]  # reconnected on the normal backoff
    assert answer["result"]["id"] == "order-1"
    assert grown < 8 * MIB, f"{grown / MIB:.1f} MiB allocated while a {BOMB_BYTES // MIB} MiB bomb arrived"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "EPOS_BRIDGE_MAX_FRAME_BYTES" in warnings[0] and "1009" in warnings[0]


@pytest.mark.logs_warnings("a frame over the limit is logged")
async def test_a_message_within_the_limit_is_served_and_one_past_it_is_refused(sim: GatewaySimulator) -> None:
    limit = 256 * 1024
    sleep = RecordingSleep()
    session = GatewaySession(
        settings_for(sim, max_frame_bytes=limit), dispatcher_for(FakePos()).handle_text, sleep=sleep
    )

    def request_of_size(size: int, request_id: str) -> str:
        frame = {"jsonrpc": "2.0", "id": request_id, "method": "GetOrderByIdV1", "params": {**get_order(), "pad": ""}}
        padding = size - len(json.dumps(frame))
        frame["params"]["pad"] = "x" * padding
        text = json.dumps(frame)
        assert len(text) == size
        return text

    async with running(session):
        await wait_for_state(session, ConnectionState.CONNECTED)
        within = sim.expect("at-limit")
        await sim.send_raw(request_of_size(limit, "at-limit"))
        answer = await within
        await sim.send_raw(request_of_size(limit + 1, "past-limit"))
        await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected, 10, "the bridge to reconnect")

    assert answer["id"] == "at-limit"  # answered (with whatever the dispatcher says of the padding)
    assert sim.close_codes[0] == 1009
