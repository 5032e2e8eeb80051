"""Faults only a POS database on a server has, on a real MariaDB (tests/helpers/db_servers.py):
every answer agrees with what committed, and a retry of the same paymentIntentId is recorded once.

* the server restarted while a payment waits for the POS's row lock;
* the bridge's session KILLed by the server's admin while it waits;
* the server not up yet when the till starts: a clear, retryable answer, and service once it is.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from epos_bridge.adapters.sqlmap.mapping import Mapping
from tests.helpers.contract import rpc_over
from tests.helpers.cutting_proxy import CuttingProxy
from tests.helpers.db_servers import DbServer, mariadb_server, mariadb_url, start_mariadb  # noqa: F401 - fixtures
from tests.helpers.mini_till import MiniTill, mini_mapping, mini_pos
from tests.helpers.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def pay(order: str, intent: str, value: int) -> dict[str, Any]:
    return {"orderId": order, "paymentIntentId": intent, "paidAmount": {"value": value, "currencyCode": "GBP"}}


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    return mini_mapping(tmp_path)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[DbServer]:
    """A server of the test's own, to restart without cutting anyone else's."""
    server = start_mariadb()
    try:
        yield server
    finally:
        server.stop()


def hold_bill(till: MiniTill, bill: str, held: threading.Event, release: threading.Event) -> threading.Thread:
    """The POS saving the bill: its row locked until ``release`` (or its connection is cut)."""

    def run() -> None:
        try:
            with till.engine.connect() as conn:
                conn.execute(sa.text("START TRANSACTION"))
                conn.execute(sa.text("SELECT * FROM bills WHERE id = :b FOR UPDATE"), {"b": bill})
                held.set()
                release.wait(30)
                conn.rollback()
        except sa.exc.DBAPIError:
            held.set()  # the server went away under the POS too

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def until_waiting_for_a_lock(server: DbServer, till: MiniTill) -> None:
    """Until the bridge's read of the bill has been at the server for a while: a primary-key
    lookup takes microseconds, so it is waiting for the POS's row lock. (MariaDB does not always
    list a read waiting inside the optimizer as ``LOCK WAIT`` in INNODB_TRX; the process list
    always shows it.)"""
    engine = sa.create_engine(server.admin_url(), poolclass=sa.pool.NullPool)
    user = str(make_url(till.url).username)

    def waiting() -> bool:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = :user AND COMMAND = 'Query'"
                    " AND INFO LIKE '%FROM bills b%' AND TIME_MS > 200"
                ),
                {"user": user},
            )
            return bool(found.scalar())

    try:
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(waiting):
            assert time.monotonic() < deadline, "the payment never waited for the POS's lock"
            await asyncio.sleep(0.05)
    finally:
        engine.dispose()


def answered_as_committed(till: MiniTill, intent: str, answer: dict[str, Any]) -> None:
    assert till.recorded(intent) == ((1, 1) if "result" in answer else (0, 0)), answer


async def test_the_server_restarted_while_a_payment_waits_is_answered_as_committed(
    own_server: DbServer, mapping: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    till = MiniTill(own_server.create_database(), mapping)
    till.create()
    pos = mini_pos(till.url, mapping)
    rpc = rpc_over(pos)
    try:
        bill = till.add_bill(1000)
        held, release = threading.Event(), threading.Event()
        holder = hold_bill(till, bill, held, release)
        await asyncio.to_thread(held.wait, 10)
        paying = asyncio.create_task(rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_restart", 400)))
        await until_waiting_for_a_lock(own_server, till)
        await asyncio.to_thread(own_server.restart)
        release.set()
        answer = await paying
        await asyncio.to_thread(holder.join, 30)
        till.engine.dispose()  # the POS reconnects after its server's restart
        answered_as_committed(till, "pi_restart", answer)
        replay = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_restart", 400))
        assert "result" in replay and till.recorded("pi_restart") == (1, 1)
    finally:
        await pos.close()
        till.close()


async def test_the_bridges_session_killed_while_it_waits_is_answered_as_committed(
    mariadb_server: DbServer,  # noqa: F811 - the fixture
    mapping: Mapping,
    caplog: pytest.LogCaptureFixture,
) -> None:
    till = MiniTill(mariadb_server.create_database(), mapping)
    till.create()
    pos = mini_pos(till.url, mapping)
    rpc = rpc_over(pos)
    user = str(make_url(till.url).username)
    try:
        bill = till.add_bill(1000)
        assert "result" in await rpc("GetOrderByIdV1", {"orderId": bill})
        held, release = threading.Event(), threading.Event()
        holder = hold_bill(till, bill, held, release)
        await asyncio.to_thread(held.wait, 10)
        paying = asyncio.create_task(rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_killed", 400)))
        await until_waiting_for_a_lock(mariadb_server, till)
        killed = await asyncio.to_thread(mariadb_server.kill_connections, user)  # the POS's session too
        assert killed >= 1
        release.set()
        answer = await paying
        await asyncio.to_thread(holder.join, 30)
        till.engine.dispose()
        answered_as_committed(till, "pi_killed", answer)
        replay = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_killed", 400))
        assert "result" in replay and till.recorded("pi_killed") == (1, 1)
    finally:
        await pos.close()
        till.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_server_not_up_yet_is_a_clear_retryable_answer_and_service_follows_once_it_is(
    till: MiniTill,
    mariadb_server: DbServer,  # noqa: F811 - the fixture
) -> None:
    port = free_port()
    through = make_url(till.url).set(port=port).render_as_string(hide_password=False)
    pos = mini_pos(through, till.mapping)
    rpc = rpc_over(pos)
    bill = till.add_bill(1000)
    proxy = CuttingProxy(mariadb_server.host, mariadb_server.port)
    try:
        early = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_early", 400))
        assert early["error"]["errorType"] == "UnexpectedError"  # Dojo retries; nothing was recorded
        assert "cannot be reached" in early["error"]["debugMessage"]
        assert till.recorded("pi_early") == (0, 0)
        started = time.monotonic()
        await proxy.start_on(port)
        await until(lambda: proxy.port == port, "the server to be up")
        retried = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_early", 400))
        assert "result" in retried, (retried, time.monotonic() - started)
        assert till.recorded("pi_early") == (1, 1)
    finally:
        await pos.close()
        await proxy.stop()


@pytest.fixture
def till(mariadb_url: str, mapping: Mapping) -> Iterator[MiniTill]:  # noqa: F811 - the fixture
    made = MiniTill(mariadb_url, mapping)
    made.create()
    try:
        yield made
    finally:
        made.close()
