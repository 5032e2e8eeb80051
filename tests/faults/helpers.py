"""Shared pieces of the fault suite: Dojo's retry loop, a venue with payable orders, the bridge
as a subprocess that can be SIGKILLed and restarted."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from epos_bridge.protocol.base import format_utc
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.testing.processes import simulator_env, stop_process
from epos_bridge.testing.venues import venue_with_open_orders

HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "fault-terminal", "deviceType": "terminal"}
ORDER_TOTAL = 1_000_000


def venue_with_orders(path: Path, count: int, total: int = ORDER_TOTAL) -> list[str]:
    """A demo venue plus ``count`` open, unpaid orders owing ``total`` each; returns their ids."""
    return venue_with_open_orders(path, count, total, reference_prefix="FAULT")


def expiry(minutes: int = 30) -> str:
    return format_utc(datetime.now(UTC) + timedelta(minutes=minutes))


async def call_until_answered(
    gateway: GatewaySimulator,
    method: str,
    params: dict[str, Any],
    request_id: str,
    *,
    answer_timeout_s: float = 3.0,
    give_up_s: float = 60.0,
) -> tuple[dict[str, Any], int]:
    """Dojo's retry loop: send; on timeout or a lost connection wait for the bridge to be back and
    send again with the SAME id. Returns the answer and how many times it was sent."""
    frame = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    deadline = time.monotonic() + give_up_s
    sends = 0
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} id {request_id} unanswered after {give_up_s} s and {sends} sends")
        while not gateway.connected:
            if time.monotonic() > deadline:
                raise AssertionError(f"no bridge connected to retry {method} id {request_id}")
            await asyncio.sleep(0.01)
        closed_before = gateway.connections_closed
        answer = gateway.expect(request_id)
        try:
            await gateway.send_raw(frame)
        except Exception:  # the link went between the check and the send: retry
            answer.cancel()
            await asyncio.sleep(0.01)  # let the server notice the closed connection
            continue
        sends += 1
        waited = time.monotonic()
        while not answer.done():
            if gateway.connections_closed != closed_before or time.monotonic() - waited > answer_timeout_s:
                break
            await asyncio.sleep(0.005)
        if answer.done() and not answer.cancelled():
            return answer.result(), sends
        answer.cancel()


def bridge_env(tmp_path: Path, sim: DojoSimulator, api_key: str, db: Path, data_dir: Path) -> dict[str, str]:
    return simulator_env(tmp_path, sim, api_key=api_key, db=db, data_dir=data_dir)


class BridgeProcess:
    """``python -m epos_bridge run --headless``, output appended to one log file across restarts."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "epos_bridge", "run", "--headless"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
