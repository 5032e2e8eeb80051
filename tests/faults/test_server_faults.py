"""Faults only a POS database on a server has, on a real MariaDB (tests/helpers/db_servers.py):
every answer agrees with what committed, and a retry of the same paymentIntentId is recorded once.

* the server restarted while a payment waits for the POS's row lock;
* the bridge's session KILLed by the server's admin while it waits;
* the server not up yet when the till starts: a clear, retryable answer, and service once it is;
* the server out of space while a payment is written: an error that says so, nothing written,
  reads still served, and the payment recorded once when space is back.
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


FULL_AT = ("--innodb-file-per-table=OFF", "--innodb-data-file-path=ibdata1:16M")
"""A server whose data lives in one 16 MB tablespace that does not grow: as full as a disk gets,
told as a disk full is (``The table … is full``, 1114), without filling the test machine's disk."""


@pytest.fixture
def small_server() -> Iterator[DbServer]:
    server = start_mariadb(options=FULL_AT)
    try:
        yield server
    finally:
        server.stop()


def fill_the_server(till: MiniTill, bill: str) -> None:
    """Everything else the server holds until nothing more fits (a table of filler by the
    thousand rows), then the till's own payments on another bill one at a time until not one more
    fits: the bridge's payment writes the same tables (and its change-log row) with rows as big."""
    with till.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE filler (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(2000))"))
    for statement in (
        "INSERT INTO filler (pad) SELECT REPEAT('x', 2000) FROM seq_1_to_1000",
        "INSERT INTO bill_payments (bill_id, amount) VALUES (:b, 1)",
    ):
        while True:
            try:
                with till.engine.begin() as conn:
                    conn.execute(sa.text(statement), {"b": bill})
            except sa.exc.OperationalError as exc:
                if exc.orig is None or exc.orig.args[0] != 1114:  # only "The table … is full" ends the fill
                    raise
                break


def till_can_write(till: MiniTill, bill: str) -> bool:
    """The till takes a payment of its own (and takes it back): the server has room again."""
    try:
        with till.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO bill_payments (bill_id, amount) VALUES (:b, 1)"), {"b": bill})
            conn.execute(sa.text("DELETE FROM bill_payments WHERE bill_id = :b"), {"b": bill})
    except sa.exc.OperationalError:
        return False
    return True


@pytest.mark.logs_warnings("the bridge logs the POS database out of space")
async def test_a_server_out_of_space_answers_an_error_writes_nothing_and_records_once_space_is_back(
    small_server: DbServer, mapping: Mapping
) -> None:
    till = MiniTill(small_server.create_database(), mapping)
    till.create()
    pos = mini_pos(till.url, mapping)
    rpc = rpc_over(pos)
    try:
        bill, other = till.add_bill(100_000), till.add_bill(10)
        assert "result" in await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_before", 100))
        fill_the_server(till, other)

        full = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_full", 400))
        assert full["error"]["errorType"] == "UnexpectedError", full
        assert "out of disk space; nothing was written" in full["error"]["debugMessage"]
        assert till.recorded("pi_full") == (0, 0)
        # What is there is still served: the bill reads, and the payment already recorded replays.
        read = await rpc("GetOrderByIdV1", {"orderId": bill})
        assert read["result"]["paidAmount"]["value"] == 100
        assert "result" in await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_before", 100))

        with till.engine.begin() as conn:  # the venue frees space (InnoDB's purge hands it back)
            conn.execute(sa.text("DELETE FROM filler"))
        await until(lambda: till_can_write(till, other), "the server has room again", timeout=60)
        again = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_full", 400))
        assert "result" in again and till.recorded("pi_full") == (1, 1)
        assert again["result"]["paidAmount"]["value"] == 500
    finally:
        await pos.close()
        till.close()
