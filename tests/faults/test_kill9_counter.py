"""kill -9 while a card captured at the counter is waiting to be recorded on the till.

A real bridge process (the composition root, ``epos_bridge.app.Bridge``) starts a sale on the
simulator's terminal. Once the session exists, a second process takes the POS's write lock, so
when the card is captured the bridge cannot record it: it keeps the order locked and retries.
It is then SIGKILLed. The POS lets go, and ``epos-bridge run --headless`` is started on the same
data folder: it resumes the session from its state database, and the payment lands on the order
exactly once, after which the lock goes.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import pytest

from epos_bridge.sim.simulator import DojoSimulator
from tests.faults.helpers import BridgeProcess, bridge_env, integrity, venue_with_orders
from tests.helpers.pos_writer import PosProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

AMOUNT = 4321

SALE_SCRIPT = r"""
import asyncio, sys
from epos_bridge.app import Bridge
from epos_bridge.config import load
from epos_bridge.protocol.entities import Money

async def main(order: str, amount: int) -> None:
    bridge = Bridge(load())
    await bridge.start()
    bridge.counter.on_update(lambda u: print("UNRECORDED", u.session_id, flush=True) if u.unrecorded_capture else None)
    terminals = bridge.counter.available(await bridge.counter.terminals())
    session = await bridge.counter.start_sale(order, terminals[0].id, Money(value=amount, currency_code="GBP"))
    print("SESSION", session, flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def read_line(process: asyncio.subprocess.Process, prefix: str, timeout_s: float) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(timeout_s):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"the bridge process ended before saying {prefix!r}")
            if line.startswith(prefix):
                return line.split()[1]


async def test_a_capture_waiting_for_the_till_survives_kill_9_and_lands_once(tmp_path: Path) -> None:
    api_key = f"sk_sandbox_fault_{uuid.uuid4().hex}"
    db = tmp_path / "venue.db"
    data_dir = tmp_path / "bridge-data"
    [order] = venue_with_orders(db, 1, total=10_000)
    async with DojoSimulator(api_key=api_key) as sim:
        env = bridge_env(tmp_path, sim, api_key, db, data_dir)
        sale = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SALE_SCRIPT, order, str(AMOUNT), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        pos: PosProcess | None = None
        resumed: BridgeProcess | None = None
        try:
            session = await read_line(sale, "SESSION", 30)
            assert query(db, f"SELECT COUNT(*) FROM order_locks WHERE order_id = {int(order)}") == [(1,)]
            pos = await PosProcess.start("control", str(db), "--kind", "sqlite")
            await pos.send("hold")
            await pos.expect("LOCKED")
            assert await read_line(sale, "UNRECORDED", 60) == session
            sale.send_signal(signal.SIGKILL)
            await sale.wait()
            assert query(db, f"SELECT COUNT(*) FROM payments WHERE order_id = {int(order)}") == [(0,)]
            await pos.send("release")
            await pos.expect("RELEASED")

            resumed = BridgeProcess(env, tmp_path / "resumed.log")
            resumed.start()
            deadline = time.monotonic() + 60
            while query(db, f"SELECT COUNT(*) FROM order_locks WHERE order_id = {int(order)}") != [(0,)]:
                assert time.monotonic() < deadline, f"the resumed bridge did not land the payment:\n{resumed.log}"
                await asyncio.sleep(0.1)
        finally:
            if sale.returncode is None:
                sale.kill()
                await sale.wait()
            if pos is not None:
                await pos.finish()
            if resumed is not None:
                resumed.stop()
    card = query(db, f"SELECT payment_intent_id, order_id, paid_amount FROM payments WHERE order_id = {int(order)}")
    assert len(card) == 1, f"recorded {len(card)} times: {card}"
    assert (str(card[0][1]), card[0][2]) == (order, AMOUNT)
    assert integrity(db) == "ok"
    assert integrity(data_dir / "bridge-state.db") == "ok"
