"""Cold start: from the process being started to "Connected" and to the first answered request.

Each trial starts a new process (the echo peer, the headless bridge, or the tray app on
offscreen Qt: ``python -m epos_bridge run``, the command a till's autostart runs) and clocks,
from just before ``Popen``, when the gateway simulator sees the connection (the bridge reports
"Connected" at that handshake) and when the first ``GetOrderByIdV1`` is answered with a result.
The process is then stopped (SIGTERM, a clean stop) and the next trial starts. The state
database, logs and venue file stay between trials, as on a till that restarts; the files are in
the OS page cache after the first trial, which is what "cold" means here: a new process, not a
cold disk. Bytecode is compiled once before the trials, as the installed bundle ships it.

Baseline from the same run: the echo peer's cold start (Python, websockets, one connection).
"""

from __future__ import annotations

import asyncio
import compileall
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.wire import HEADERS, Peer
from epos_bridge.sim.gateway import SimulatorError
from epos_bridge.sim.simulator import DojoSimulator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ColdStart:
    to_connected_s: float
    to_first_answer_s: float


@dataclass
class ColdStarts:
    trials: list[ColdStart]

    @property
    def connected_median_s(self) -> float:
        return statistics.median(t.to_connected_s for t in self.trials)

    @property
    def answer_median_s(self) -> float:
        return statistics.median(t.to_first_answer_s for t in self.trials)

    @property
    def connected_max_s(self) -> float:
        return max(t.to_connected_s for t in self.trials)

    @property
    def answer_max_s(self) -> float:
        return max(t.to_first_answer_s for t in self.trials)


def compile_bytecode() -> None:
    """What the installed bundle ships: the trials must not time compiling the source."""
    compileall.compile_dir(str(ROOT / "epos_bridge"), quiet=1)
    compileall.compile_dir(str(ROOT / "benchmarks"), quiet=1)


async def trial(sim: DojoSimulator, start: Callable[[], Peer], order_id: str) -> ColdStart:
    began = time.monotonic()
    peer = start()
    try:
        while not sim.gateway.connected:
            if peer.process.poll() is not None:
                raise RuntimeError(f"the process exited ({peer.process.returncode}); see {peer.log_path}")
            if time.monotonic() - began > 60:
                raise RuntimeError(f"no connection within 60 s; see {peer.log_path}")
            await asyncio.sleep(0.001)
        connected = time.monotonic() - began
        while True:
            try:
                response = await sim.gateway.request(
                    "GetOrderByIdV1", {"headers": HEADERS, "orderId": order_id}, timeout=5
                )
            except SimulatorError:
                if time.monotonic() - began > 60:
                    raise
                await asyncio.sleep(0.001)
                continue
            if "result" in response:
                break
        answered = time.monotonic() - began
    finally:
        peer.stop()
        await sim.gateway.wait_until(lambda: not sim.gateway.connected, 20, "the process to disconnect")
    sim.gateway.received.clear()
    return ColdStart(connected, answered)


async def run(sim: DojoSimulator, start: Callable[[], Peer], order_id: str, trials: int) -> ColdStarts:
    return ColdStarts([await trial(sim, start, order_id) for _ in range(trials)])
