"""A gateway session serving over a real loopback WebSocket, as the bridge connects to Dojo."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.sim.gateway import GatewaySimulator


@asynccontextmanager
async def serving_over_loopback(
    serve: Callable[[str | bytes], Awaitable[Any]], credentials: DojoCredentials
) -> AsyncIterator[GatewaySimulator]:
    """The simulator on 127.0.0.1 with one session connected to it, answering through ``serve``;
    stopped (within 10 s) when the block ends."""
    async with GatewaySimulator(
        expected_api_key=credentials.api_key, expected_software_house_id=credentials.software_house_id
    ) as sim:
        settings = GatewaySettings(
            credentials=credentials, ws_url=sim.url, allow_insecure=True, stop_deadline_s=2.0, close_timeout_s=1.0
        )
        session = GatewaySession(settings, serve)
        task = asyncio.create_task(session.run())
        try:
            await sim.wait_connected()
            yield sim
        finally:
            async with asyncio.timeout(10):
                await session.stop()
                await task
