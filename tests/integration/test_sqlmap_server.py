"""The mapped-SQL adapter on real MariaDB and PostgreSQL servers (tests/helpers/db_servers.py):
the same promises as on a SQLite file, kept through a server's transactions. Every test runs on
both, through the mini till's twin for the server (tests/helpers/mini_till.py).

* attach creates the bridge's tables and triggers, and attaching again keeps the payment record;
  the change mark never goes back when the change log's rows are forgotten;
* a paymentIntentId is recorded once, compared byte for byte (MariaDB's default collation
  would take ``pi_A`` for ``pi_a``);
* payments racing for the rest of a bill: one is recorded, the others are refused (a
  serialisation failure or deadlock is run again);
* a database that does not fit, a wrong password, a server that is not there: an answer that
  says so, never the password;
* the POS holding a row lock past the deadline: every answer agrees with what committed, and a
  replay is answered at once from a snapshot;
* the connection cut at every statement of a payment's transaction, before the statement
  reaches the server and after the server answered it (COMMIT included), on either wire
  protocol (tests/helpers/cutting_proxy.py): every answer agrees with what committed, and a
  cut COMMIT is answered "recorded" once the bridge has looked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from epos_bridge.adapters.kept_rows import KeptChangeLog
from epos_bridge.adapters.sql_dialects import DIALECTS
from epos_bridge.adapters.sqlmap import server_setup
from epos_bridge.adapters.sqlmap.bridge import kept_in
from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.adapters.sqlmap.mapping import load as load_mapping
from epos_bridge.adapters.sqlmap.server import ServerDatabase, run_setup
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import PosCalls
from tests.helpers.contract import assert_valid_response, rpc_over
from tests.helpers.cutting_proxy import Cut, CuttingProxy
from tests.helpers.db_servers import (  # noqa: F401 - fixtures, found by name
    DbServer,
    mariadb_server,
    mariadb_url,
    postgresql_server,
    postgresql_url,
)
from tests.helpers.mini_till import MiniTill, TillKind, create_schema, mini_mapping, mini_pos, till_kind

pytestmark = pytest.mark.timeout(180)


def money(value: int) -> dict[str, Any]:
    return {"value": value, "currencyCode": "GBP"}


def pay(order: str, intent: str, value: int) -> dict[str, Any]:
    return {"orderId": order, "paymentIntentId": intent, "paidAmount": money(value)}


@pytest.fixture(params=["mariadb", "postgresql"])
def server_name(request: pytest.FixtureRequest) -> str:
    """The server every test below runs on, once each."""
    return str(request.param)


@pytest.fixture
def database_url(server_name: str, request: pytest.FixtureRequest) -> str:
    """A fresh database and its owner on that server (``mariadb_url``, ``postgresql_url``)."""
    return str(request.getfixturevalue(f"{server_name}_url"))


@pytest.fixture
def database_server(server_name: str, request: pytest.FixtureRequest) -> DbServer:
    """The server itself (``mariadb_server``, ``postgresql_server``), for a proxy in front of it."""
    server = request.getfixturevalue(f"{server_name}_server")
    assert isinstance(server, DbServer)
    return server


@pytest.fixture
def kind(database_url: str) -> TillKind:
    return till_kind(database_url)


@pytest.fixture
def mapping(tmp_path: Path, kind: TillKind) -> Mapping:
    return mini_mapping(tmp_path, kind)


@pytest.fixture
def till(database_url: str, mapping: Mapping) -> Iterator[MiniTill]:
    made = MiniTill(database_url, mapping)
    made.create()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
async def pos(till: MiniTill) -> AsyncIterator[PosCalls]:
    calls = mini_pos(till.url, till.mapping)
    try:
        yield calls
    finally:
        await calls.close()


async def test_a_payment_is_recorded_once_and_its_replay_answers_from_the_record(till: MiniTill, pos: PosCalls) -> None:
    bill = till.add_bill(3000)
    rpc = rpc_over(pos)
    first = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_once", 1000))
    again = await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_once", 1000))
    assert first["result"]["paidAmount"]["value"] == 1000
    assert again["result"] == first["result"]
    assert till.recorded("pi_once") == (1, 1)
    assert till.rows("SELECT COUNT(*) FROM bill_payments") == [(1,)]
    assert (await rpc("RecordOrderPaymentByIdV1", pay(bill, "pi_more", 2500)))["error"]["errorType"] == "Conflict"
    assert till.recorded("pi_more") == (0, 0)


async def test_intent_ids_differing_only_in_case_or_a_trailing_space_are_different_payments(
    till: MiniTill, pos: PosCalls
) -> None:
    bill = till.add_bill(3000)
    rpc = rpc_over(pos)
    for intent in ("pi_Case", "pi_case", "pi_case "):
        assert "result" in await rpc("RecordOrderPaymentByIdV1", pay(bill, intent, 1000)), intent
    assert [till.recorded(i) for i in ("pi_Case", "pi_case", "pi_case ")] == [(1, 1)] * 3
    assert till.rows("SELECT SUM(amount) FROM bill_payments") == [(3000,)]


async def test_attaching_again_keeps_the_payment_record_and_the_triggers_log_the_pos_writes(
    till: MiniTill, pos: PosCalls
) -> None:
    bill = till.add_bill(3000)
    assert "result" in await rpc_over(pos)("RecordOrderPaymentByIdV1", pay(bill, "pi_kept", 1000))
    report = run_setup(make_url(till.url), lambda db: server_setup.attach(db, till.mapping))
    assert report.created_tables == []
    assert till.recorded("pi_kept") == (1, 1)
    assert "result" in await rpc_over(pos)("RecordOrderPaymentByIdV1", pay(bill, "pi_kept", 1000))
    assert till.rows("SELECT COUNT(*) FROM bill_payments") == [(1,)]
    with till.engine.begin() as conn:  # the POS takes a cash payment itself
        conn.execute(sa.text("INSERT INTO bill_payments (bill_id, amount) VALUES (:b, 500)"), {"b": bill})
    changes = pos.changes
    assert changes is not None
    logged = await changes.changes_after(0, 10)
    assert [(c.entity, c.entity_id) for c in logged] == [("order", bill), ("order", bill)]
    mark = DIALECTS[till.mapping.engine].change_mark
    assert till.rows(mark) == [(logged[-1].seq,)]
    await changes.forget_changes_through(logged[-1].seq)
    assert await changes.changes_after(0, 10) == []
    assert till.rows(mark) == [(logged[-1].seq,)]  # the mark never goes back with the log's rows


async def test_payments_racing_for_the_rest_of_a_bill_record_only_what_it_can_take(
    till: MiniTill, pos: PosCalls
) -> None:
    """Serialisable writes: InnoDB's shared locks deadlock one of them, PostgreSQL's SSI fails one
    (40001); it is run again, sees the other's payment, and is refused. Never both."""
    rpc = rpc_over(pos)
    for round_ in range(5):
        bill = till.add_bill(1000)
        intents = [f"pi_race_{round_}_{n}" for n in range(3)]
        answers = await asyncio.gather(*(rpc("RecordOrderPaymentByIdV1", pay(bill, i, 1000)) for i in intents))
        assert ["result" in a for a in answers].count(True) == 1, answers
        assert [till.recorded(i) for i in intents].count((1, 1)) == 1
        assert till.rows("SELECT SUM(amount) FROM bill_payments WHERE bill_id = :b", b=bill) == [(1000,)]
        for answer in answers:
            if "error" in answer:
                assert answer["error"]["errorType"] == "Conflict", answer


async def test_a_database_not_attached_is_refused_naming_the_command(database_url: str, mapping: Mapping) -> None:
    create_schema(database_url)
    pos = mini_pos(database_url, mapping)
    try:
        answer = await rpc_over(pos)("GetOrderByIdV1", {"orderId": "1"})
    finally:
        await pos.close()
    assert answer["error"]["errorType"] == "UnexpectedError"
    assert f"does not fit the mapping {mapping.name}" in answer["error"]["debugMessage"]


async def test_a_wrong_password_or_no_server_says_so_and_never_shows_the_password(
    till: MiniTill, mapping: Mapping
) -> None:
    right = make_url(till.url)
    for url, words in (
        (right.set(password="not-the-password-xyz"), "refused the bridge's user name or password"),
        (right.set(port=1), "cannot be reached"),
    ):
        pos = mini_pos(url.render_as_string(hide_password=False), mapping)
        try:
            answer = await rpc_over(pos)("GetOrderByIdV1", {"orderId": "1"})
        finally:
            await pos.close()
        message = answer["error"]["debugMessage"]
        assert words in message
        assert "not-the-password-xyz" not in json.dumps(answer) and str(right.password) not in json.dumps(answer)


def hold_row_lock(till: MiniTill, bill: str, seconds: float, held: threading.Event) -> threading.Thread:
    """The POS saving the bill: its row locked (``SELECT … FOR UPDATE``; on PostgreSQL its
    payments too, :data:`~tests.helpers.mini_till.TillKind.hold_bill`) for ``seconds``."""

    def run() -> None:
        with till.engine.connect() as conn:
            for statement in till.kind.hold_bill:
                conn.execute(sa.text(statement), {"b": bill} if ":b" in statement else {})
            held.set()
            time.sleep(seconds)
            conn.rollback()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_the_pos_holding_the_bill_past_the_deadline_gets_answers_that_agree_and_replays_at_once(
    till: MiniTill, pos: PosCalls
) -> None:
    bill = till.add_bill(100_000)
    dispatcher = Dispatcher(pos, deadline_s=3.0)

    async def record(intent: str, value: int) -> dict[str, Any]:
        frame = {"jsonrpc": "2.0", "id": intent, "method": "RecordOrderPaymentByIdV1",
                 "params": {"headers": {}, **pay(bill, intent, value)}}  # fmt: skip
        served = await dispatcher.handle_text(json.dumps(frame))
        assert served is not None
        answer: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response("RecordOrderPaymentByIdV1", answer)
        return answer

    assert "result" in await record("pi_before", 100)
    held = threading.Event()
    holder = hold_row_lock(till, bill, 5.0, held)
    await asyncio.to_thread(held.wait, 10)
    replay = await record("pi_before", 100)
    answered_while_held = holder.is_alive()  # from the snapshot, not once the POS let go
    during = await asyncio.gather(*(record(f"pi_held_{n}", 200 + n) for n in range(3)))
    await asyncio.to_thread(holder.join, 30)
    after = await record("pi_after", 300)
    assert "result" in replay and answered_while_held
    assert "result" in after
    for n, answer in enumerate(during):
        counted = till.recorded(f"pi_held_{n}")
        assert counted == ((1, 1) if "result" in answer else (0, 0)), (n, answer)
        if "error" in answer:
            assert answer["error"]["errorType"] == "UnexpectedError"


SLOW_READ = {
    # One tenth of a second inside the payments read, as a busy server's slow disk would take.
    "mysql": "WHERE p.bill_id = :order_id AND (SELECT SLEEP(0.1)) = 0 ORDER BY p.id",
    "postgresql": "WHERE p.bill_id = :order_id AND (SELECT 1 FROM (SELECT pg_sleep(0.1)) s) = 1 ORDER BY p.id",
}


async def test_a_replay_is_answered_from_the_record_when_the_answer_is_due_sooner_than_the_first_wait(
    tmp_path: Path, database_url: str, kind: TillKind
) -> None:
    """The first wait for the POS's lock leaves the snapshot time to read: with an answer due in
    0.5 s (less than the 1 s first wait) and a read that takes 0.1 s, a recorded payment's replay
    while the POS holds the bill is still answered success. Before the fix the wait took all of
    the deadline and the snapshot's statements were cut at 50 ms: an error for a payment the till
    holds, which Dojo reverses."""
    path = tmp_path / f"{kind.name}_slow.toml"
    path.write_text(kind.mapping.replace("WHERE p.bill_id = :order_id ORDER BY p.id", SLOW_READ[kind.engine]))
    slow = load_mapping(str(path))
    till = MiniTill(database_url, slow)
    till.create()
    pos = mini_pos(database_url, slow)
    try:
        bill = till.add_bill(100_000)
        assert "result" in await rpc_over(pos)("RecordOrderPaymentByIdV1", pay(bill, "pi_slow", 100))
        held = threading.Event()
        holder = hold_row_lock(till, bill, 5.0, held)
        await asyncio.to_thread(held.wait, 10)
        dispatcher = Dispatcher(pos, deadline_s=0.5)
        frame = {"jsonrpc": "2.0", "id": "again", "method": "RecordOrderPaymentByIdV1",
                 "params": {"headers": {}, **pay(bill, "pi_slow", 100)}}  # fmt: skip
        served = await dispatcher.handle_text(json.dumps(frame))
        answered_while_held = holder.is_alive()
        assert served is not None
        replay = json.loads(served.response_text)
        assert "result" in replay, replay
        assert answered_while_held and till.recorded("pi_slow") == (1, 1)
        await asyncio.to_thread(holder.join, 30)
    finally:
        await pos.close()
        till.close()


async def test_a_connection_cut_at_every_point_of_a_payment_is_answered_as_committed(
    till: MiniTill,
    database_server: DbServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = await CuttingProxy(database_server.host, database_server.port, database_server.engine).start()
    starts = till.kind.starts_write
    through = make_url(till.url).set(port=proxy.port).render_as_string(hide_password=False)
    pos = mini_pos(through, till.mapping)
    rpc = rpc_over(pos)
    try:
        learn = till.add_bill(1000)
        assert "result" in await rpc("GetOrderByIdV1", {"orderId": learn})  # the mapping checked, once
        proxy.statements.clear()
        assert "result" in await rpc("RecordOrderPaymentByIdV1", pay(learn, "pi_learn", 100))
        start = next(i for i, s in enumerate(proxy.statements) if s.startswith(starts))
        end = next(i for i, s in enumerate(proxy.statements) if s == "COMMIT")
        points = proxy.statements[start : end + 1]
        assert len(points) >= 5, points  # start, the bill, its payments, the two inserts, commit
        for at, statement in enumerate(points):
            for before in (True, False):
                bill = till.add_bill(1000)
                intent = f"pi_cut_{at}_{'before' if before else 'after'}"
                proxy.cut_next(Cut(at=at, before=before, starts=lambda sql: sql.startswith(starts)))
                answer = await rpc("RecordOrderPaymentByIdV1", pay(bill, intent, 400))
                assert not proxy.armed, f"no cut happened at {statement!r}"
                recorded = till.recorded(intent)
                where = f"cut {'before' if before else 'after'} {statement!r}"
                assert recorded == ((1, 1) if "result" in answer else (0, 0)), (where, answer)
                if statement == "COMMIT" and not before:
                    assert "result" in answer, where  # it committed: the bridge looked before answering
                replay = await rpc("RecordOrderPaymentByIdV1", pay(bill, intent, 400))
                assert till.recorded(intent) == (1, 1) and "result" in replay, where  # Dojo's retry: recorded once
        assert proxy.cuts_made == 2 * len(points)
        lost_commits = [r for r in caplog.records if "dropped during COMMIT" in r.getMessage()]
        # A COMMIT cut before it reached the server or after it answered: the bridge cannot tell
        # which, and looked both times; every other cut is plainly "not committed".
        assert len(lost_commits) == 2
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        await pos.close()
        await proxy.stop()


async def test_a_commit_whose_answer_was_lost_is_looked_up_even_when_the_server_stays_away_past_the_deadline(
    till: MiniTill,
    database_server: DbServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The COMMIT went through and its answer was lost, then the server could not be reached for
    longer than the answer's deadline: saying "failed" would make Dojo reverse a payment the till
    holds, so the bridge keeps looking until it knows."""
    proxy = await CuttingProxy(database_server.host, database_server.port, database_server.engine).start()
    through = make_url(till.url).set(port=proxy.port).render_as_string(hide_password=False)
    pos = mini_pos(through, till.mapping)
    dispatcher = Dispatcher(pos, deadline_s=2.0)
    try:
        bill = till.add_bill(1000)
        frame = {"jsonrpc": "2.0", "id": "r1", "method": "RecordOrderPaymentByIdV1",
                 "params": {"headers": {}, **pay(bill, "pi_lost_commit", 400)}}  # fmt: skip
        proxy.cut_next(Cut(at=0, before=False, starts=lambda sql: sql == "COMMIT", then_refuse_s=4.0))
        served = await dispatcher.handle_text(json.dumps(frame))
        assert served is not None
        answer = json.loads(served.response_text)
        assert proxy.cuts_made == 1
        assert till.recorded("pi_lost_commit") == (1, 1)
        assert "result" in answer, answer
        assert any("dropped during COMMIT" in r.getMessage() for r in caplog.records)
    finally:
        await pos.close()
        await proxy.stop()


async def test_the_change_relay_never_passes_a_pos_transaction_still_open_and_skips_a_rolled_back_one(
    till: MiniTill,
) -> None:
    """A server hands a change-log number out at INSERT: an open POS transaction holds a number
    below ones already committed. The relay's cursor must wait for it (else its change is never
    sent); a number whose transaction rolled back is taken as gone after the grace."""
    database = ServerDatabase(make_url(till.url), till.mapping)
    changes = KeptChangeLog(database, kept_in(till.mapping), gap_grace_s=0.5)
    bill = till.add_bill(5000)
    insert = sa.text("INSERT INTO bill_payments (bill_id, amount) VALUES (:b, 100)")
    try:
        start = await changes.latest_change()
        slow = till.engine.connect()
        slow.execute(insert, {"b": bill})  # a POS transaction, still open: it holds start + 1
        with till.engine.begin() as fast:
            fast.execute(insert, {"b": bill})  # start + 2, committed
        assert await changes.changes_after(start, 10) == []
        slow.commit()
        slow.close()
        assert [c.seq for c in await changes.changes_after(start, 10)] == [start + 1, start + 2]

        with till.engine.connect() as undone:
            undone.execute(insert, {"b": bill})  # start + 3, rolled back: a hole for good
            undone.rollback()
        with till.engine.begin() as fast:
            fast.execute(insert, {"b": bill})  # start + 4
        assert await changes.changes_after(start + 2, 10) == []
        await until_async(lambda: changes.changes_after(start + 2, 10), "the hole to be taken for a rollback")
        assert [c.seq for c in await changes.changes_after(start + 2, 10)] == [start + 4]
    finally:
        await database.close()


async def until_async(read: Any, what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await read():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
