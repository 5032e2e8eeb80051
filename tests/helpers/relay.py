"""Waiting for the bridge's POS-event relay instead of sleeping.

The relay takes its starting position in the POS's change log on its first poll: a change made
before that is history and is never announced. A test that edits the POS right after starting
the bridge must wait for that position, however long the machine takes to get there.
"""

from __future__ import annotations

import asyncio

from epos_bridge.app import Bridge
from epos_bridge.services.pos_events import PosEventRelay


async def relay_reading(bridge: Bridge, timeout_s: float = 30.0) -> PosEventRelay:
    """Until the relay has stored its starting position; the timeout is a failure guard only."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                relay = bridge.relay
                # The position is stored under the relay's source key, one per POS database.
                if relay is not None and await bridge.outbox.cursor(relay._source_key) is not None:
                    return relay
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"the POS-event relay took no starting position within {timeout_s} s") from None
