"""kill -9 while a captured counter card waits for the till, then the order changes hands (issue
25, item 3): a real bridge process, the simulator, a real SQLite POS file, and
``epos-bridge run --headless`` restarted on the same data folder.

* Its sale lock expires and Pay at Table locks the order: the restarted bridge records its own
  capture against the order all the same, once, and leaves Pay at Table's lock alone.
* The till finalizes the order: the restarted bridge keeps the capture as "captured, not on the
  till" in its own state database (payment log and session store), and a second kill and
  restart keep it so (one line, never done silently).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from epos_bridge.protocol.times import format_utc
from epos_bridge.sim.simulator import DojoSimulator
from tests.faults.helpers import BridgeProcess, bridge_env, integrity, venue_with_orders
from tests.faults.test_kill9_counter import SALE_SCRIPT, query, read_line
from tests.helpers.pos_writer import PosProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

AMOUNT = 2468
KEPT_LINE = "kept as captured, not on the till"
"""What the bridge logs each time it keeps a refused capture (services/counter_following.py)."""


async def killed_with_a_capture_waiting(tmp_path: Path, sim: DojoSimulator, env: dict[str, str], db: Path) -> str:
    """Start a sale in a bridge process, hold the POS so the capture cannot land, kill -9 the
    bridge, let the POS go. Returns the order id."""
    [order] = venue_with_orders(db, 1, total=10_000)
    sale = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SALE_SCRIPT, order, str(AMOUNT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    pos: PosProcess | None = None
    try:
        session = await read_line(sale, "SESSION", 30)
        pos = await PosProcess.start("control", str(db), "--kind", "sqlite")
        await pos.send("hold")
        await pos.expect("LOCKED")
        assert await read_line(sale, "UNRECORDED", 60) == session
        sale.send_signal(signal.SIGKILL)
        await sale.wait()
        await pos.send("release")
        await pos.expect("RELEASED")
    finally:
        if sale.returncode is None:
            sale.kill()
            await sale.wait()
        if pos is not None:
            await pos.finish()
    assert query(db, f"SELECT COUNT(*) FROM payments WHERE order_id = {int(order)}") == [(0,)]
    return order


async def until(condition: object, what: str, bridge: BridgeProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}:\n{bridge.log}"
        await asyncio.sleep(0.1)


async def test_a_capture_lands_after_a_restart_though_pay_at_table_locked_the_order(tmp_path: Path) -> None:
    """Failed before the fix: the restarted bridge refused its own capture ("held by another
    lock"), marked the session done and recorded nothing."""
    api_key = f"sk_sandbox_fault_{uuid.uuid4().hex}"
    db, data_dir = tmp_path / "venue.db", tmp_path / "bridge-data"
    async with DojoSimulator(api_key=api_key) as sim:
        env = bridge_env(tmp_path, sim, api_key, db, data_dir)
        order = await killed_with_a_capture_waiting(tmp_path, sim, env, db)
        # The sale lock expired while the bridge was down; Pay at Table locked the order since.
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE order_locks SET lock_id = 'pat-lock', dojo_requesting_product = 'PayAtTable',"
                " expires_at = ? WHERE order_id = ?",
                [format_utc(datetime.now(UTC) + timedelta(minutes=10)), int(order)],
            )
        resumed = BridgeProcess(env, tmp_path / "resumed.log")
        resumed.start()
        try:
            await until(
                lambda: query(db, f"SELECT COUNT(*) FROM payments WHERE order_id = {int(order)}") != [(0,)],
                "the resumed bridge did not land its capture",
                resumed,
            )
        finally:
            resumed.stop()
    card = query(db, f"SELECT order_id, paid_amount FROM payments WHERE order_id = {int(order)}")
    assert card == [(int(order), AMOUNT)], f"recorded {len(card)} times: {card}"
    assert query(db, f"SELECT lock_id FROM order_locks WHERE order_id = {int(order)}") == [("pat-lock",)]
    assert integrity(db) == "ok"
    assert integrity(data_dir / "bridge-state.db") == "ok"


async def test_a_capture_for_an_order_the_till_finalized_is_kept_not_on_the_till_across_restarts(
    tmp_path: Path,
) -> None:
    """Failed before the fix: the restarted bridge marked the session done, with nothing in its
    payment log."""
    api_key = f"sk_sandbox_fault_{uuid.uuid4().hex}"
    db, data_dir = tmp_path / "venue.db", tmp_path / "bridge-data"
    state = data_dir / "bridge-state.db"

    def kept() -> list[tuple[object, ...]]:
        return query(
            state,
            "SELECT l.order_id, l.amount_value, l.status, s.status, s.outcome_recorded FROM payment_log l"
            " JOIN terminal_sessions s ON s.payment_intent_id = l.payment_intent_id",
        )

    async with DojoSimulator(api_key=api_key) as sim:
        env = bridge_env(tmp_path, sim, api_key, db, data_dir)
        order = await killed_with_a_capture_waiting(tmp_path, sim, env, db)
        with sqlite3.connect(db) as conn:  # the till closes the order meanwhile
            conn.execute("UPDATE orders SET status = 'Finalized' WHERE id = ?", [int(order)])
        expected = [(order, AMOUNT, "CapturedNotOnTill", "CapturedNotOnTill", 0)]
        bridge = BridgeProcess(env, tmp_path / "resumed.log")
        bridge.start()
        try:
            await until(lambda: kept() == expected, "the capture was not kept as not on the till", bridge)
            bridge.kill9()
            bridge.start()  # and again: still kept, one line
            await until(lambda: bridge.log.count(KEPT_LINE) >= 2, "the second run did not keep it", bridge)
            assert kept() == expected
        finally:
            bridge.stop()
    assert query(db, f"SELECT COUNT(*) FROM payments WHERE order_id = {int(order)}") == [(0,)]
    assert integrity(db) == "ok"
    assert integrity(state) == "ok"
