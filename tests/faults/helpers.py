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

from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.protocol.base import format_utc
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.testing.processes import bridge_env as process_env

HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "fault-terminal", "deviceType": "terminal"}
ORDER_TOTAL = 1_000_000


def venue_with_orders(path: Path, count: int, total: int = ORDER_TOTAL) -> list[str]:
    """A demo venue plus ``count`` open, unpaid orders owing ``total`` each; returns their ids."""
    now = datetime.now(UTC)
    init_database(path, demo=True, now=now)
    stamp = format_utc(now - timedelta(minutes=5))
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        (first,) = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM orders").fetchone()
        ids = list(range(first, first + count))
        conn.executemany(
            "INSERT INTO orders (id, reference, status, order_type, currency_code, total_amount, created_at,"
            " updated_at) VALUES (?, ?, 'Submitted', 'DineIn', 'GBP', ?, ?, ?)",
            [(i, f"FAULT-{i}", total, stamp, stamp) for i in ids],
        )
        conn.executemany(
            "INSERT INTO order_items (order_id, position, name, plu, quantity, amount_per_item)"
            " VALUES (?, 0, 'Tab', 'TAB', 1, ?)",
            [(i, total) for i in ids],
        )
        conn.execute("COMMIT")
    conn.close()
    return [str(i) for i in ids]


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
    return process_env(
        tmp_path,
        ws_url=sim.ws_url,
        api_url=sim.api_url,
        api_key=api_key,
        software_house_id=DEMO_SOFTWARE_HOUSE_ID,
        db=db,
        data_dir=data_dir,
    )


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
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
