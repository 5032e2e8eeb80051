"""Reconnect: from the gateway coming back to the first answered request, against the backoff step.

Each trial stops the simulator's gateway (close frames, then the port refuses), waits until the
bridge logs its next pause ("next gateway connection attempt in X s"), and starts the gateway
again on the same port at once. That is the worst moment to come back: the bridge has just
begun a full pause of X s, so the time to the first answer should be X plus a connect and one
round trip. The bridge's failure count only resets after 60 s connected, so successive trials
meet successive steps (about 1, 2, 4, 8 s, each with ±20 % jitter).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from benchmarks.wire import HEADERS, Peer
from epos_bridge.sim.gateway import SimulatorError
from epos_bridge.sim.simulator import DojoSimulator

SLACK_S = 0.2


@dataclass
class Trial:
    step_s: float
    """The pause the bridge logged (rounded to 0.1 s in its log line)."""
    down_s: float
    """How long the gateway was away."""
    to_first_answer_s: float
    """From the gateway listening again to the first answered request."""

    @property
    def over_step_s(self) -> float:
        return self.to_first_answer_s - self.step_s

    @property
    def met(self) -> bool:
        return self.to_first_answer_s <= self.step_s + SLACK_S


async def trial(sim: DojoSimulator, bridge: Peer, order_id: str) -> Trial:
    logged = len(bridge.retry_steps())
    stopped = time.monotonic()
    await sim.gateway.stop()
    while len(steps := bridge.retry_steps()) <= logged:
        if time.monotonic() - stopped > 60:
            raise RuntimeError("the bridge logged no reconnect pause within 60 s")
        await asyncio.sleep(0.002)
    step = steps[-1]
    await sim.gateway.start()
    back = time.monotonic()
    while True:
        while not sim.gateway.connected:  # noqa: ASYNC110 - the simulator has no event for this; polled like its wait_until()
            await asyncio.sleep(0.001)
        try:
            response = await sim.gateway.request("GetOrderByIdV1", {"headers": HEADERS, "orderId": order_id}, timeout=5)
        except SimulatorError:
            continue
        if "result" in response:
            break
    answered = time.monotonic()
    await asyncio.sleep(0.3)
    return Trial(step_s=step, down_s=back - stopped, to_first_answer_s=answered - back)


async def run(sim: DojoSimulator, bridge: Peer, order_id: str, trials: int) -> list[Trial]:
    return [await trial(sim, bridge, order_id) for _ in range(trials)]
