"""A locked, missing or wrong POS database gets a clear error, never a hang or a crash.

Every answer here goes through the real dispatcher and is checked against the contract; the
failures are real files on disk (deleted, replaced, read-only, empty, too new) and a real
second process holding the write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlite import connection
from epos_bridge.adapters.sqlite.connection import explain
from epos_bridge.adapters.sqlite.schema import SCHEMA_VERSION
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import WireMethod
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import PosCalls
from tests.conftest import Rpc, money
from tests.helpers.contract import assert_valid_params, assert_valid_response
from tests.helpers.pos import sqlite_pos
from tests.helpers.pos_writer import PosProcess

Call = Callable[..., Awaitable[dict[str, Any]]]

START = datetime(2030, 6, 1, 19, 0, tzinfo=UTC)
"""Fixed times keep the requests valid without depending on the clock."""

RESERVATION: dict[str, Any] = {
    "dojoReservationId": "res-1",
    "name": "Ada",
    "covers": 2,
    "startTime": format_utc(START),
    "endTime": format_utc(START + timedelta(hours=2)),
    "tableIds": ["T1"],
}
"""What CreateReservation sends, and UpdateReservation with the POS id."""

VALID_PARAMS: dict[WireMethod, dict[str, Any]] = {
    WireMethod.SEARCH_ORDERS: {},
    WireMethod.GET_ORDER_BY_ID: {"orderId": "1"},
    WireMethod.CANCEL_ORDER_BY_ID: {"orderId": "1"},
    WireMethod.CREATE_ORDER: {
        "items": [{"name": "Burger", "plu": "B1", "quantity": 1, "amountPerItem": money(1000)}],
        "totalAmount": money(1000),
        "dojoOrderId": "dojo-missing-1",
        "payments": [],
        "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}},
    },
    WireMethod.CREATE_ORDER_LOCK: {"orderId": "1", "lockId": "lock-1", "expiry": format_utc(START)},
    WireMethod.DELETE_ORDER_LOCK: {"orderId": "1", "lockId": "lock-1"},
    WireMethod.EXTEND_ORDER_LOCK: {"orderId": "1", "lockId": "lock-1", "expiry": format_utc(START)},
    WireMethod.GET_ORDER_BILL_BY_ID: {"orderId": "1"},
    WireMethod.RECORD_ORDER_PAYMENT_BY_ID: {"orderId": "1", "paymentIntentId": "pi_1", "paidAmount": money(500)},
    WireMethod.LIST_AREAS: {},
    WireMethod.SEARCH_TABLES: {},
    WireMethod.CREATE_PARTY: {"startTime": format_utc(START), "tableIds": ["T1"], "dojoPartyId": "party-1"},
    WireMethod.GET_PARTY_BY_ID: {"partyId": "1"},
    WireMethod.UPDATE_PARTY: {
        "id": "1",
        "dojoPartyId": "party-1",
        "startTime": format_utc(START),
        "status": "Seated",
        "tableIds": ["T1"],
    },
    WireMethod.DELETE_PARTY_BY_ID: {"partyId": "1"},
    WireMethod.SEARCH_PARTIES: {},
    WireMethod.CREATE_RESERVATION: RESERVATION,
    WireMethod.GET_RESERVATION_BY_ID: {"reservationId": "1"},
    WireMethod.UPDATE_RESERVATION: {"id": "1", **RESERVATION},
    WireMethod.DELETE_RESERVATION_BY_ID: {"reservationId": "1"},
    WireMethod.SEARCH_RESERVATIONS: {},
    WireMethod.HANDLE_EVENT: {
        "id": "evt-1",
        "accountId": "acc-1",
        "event": "payment_intent.status_updated",
        "data": {"paymentIntentId": "pi_1", "paymentStatus": "Captured", "captureMode": "Auto"},
        "createdAt": format_utc(START),
    },
}

NEW_ORDER = VALID_PARAMS[WireMethod.CREATE_ORDER]


def caller(dispatcher: Dispatcher) -> Call:
    """Like the ``rpc`` fixture, for a dispatcher built by the test."""
    counter = iter(range(1, 1_000_000))

    async def call(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"headers": {}, **(params or {})}
        rid = f"req-{next(counter)}"
        served = await dispatcher.handle_text(
            json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": body})
        )
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response(method, response)
        return response

    return call


@pytest.fixture
async def open_adapter() -> AsyncIterator[Callable[..., PosCalls]]:
    """Adapters on files the test breaks; all closed at the end."""
    opened: list[PosCalls] = []

    def open_(path: Path, **kwargs: Any) -> PosCalls:
        adapter = sqlite_pos(path, **kwargs)
        opened.append(adapter)
        return adapter

    yield open_
    for adapter in opened:
        await adapter.close()


def backup(source: Path, target: Path) -> None:
    """A consistent copy, WAL included, as a venue's backup tool makes it."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def remove(path: Path) -> None:
    """Delete the database file only, as someone tidying the folder would; -wal and -shm stay."""
    path.unlink()


@pytest.fixture
async def backed_up_order(rpc: Rpc, pos_db_path: Path, tmp_path: Path) -> tuple[str, Path]:
    """An order created, then a backup of the database that holds it: (order id, backup)."""
    order_id = (await rpc("CreateOrderV1", NEW_ORDER))["result"]["id"]
    saved = tmp_path / "backup.db"
    backup(pos_db_path, saved)
    return order_id, saved


def payment(order_id: str, intent: str) -> dict[str, Any]:
    return {"orderId": order_id, "paymentIntentId": intent, "paidAmount": money(400)}


async def assert_reads_and_payments_fail(rpc: Rpc, order_id: str, intent: str, saying: str) -> None:
    """Both a read of ``order_id`` and a payment to it answer UnexpectedError, ``saying`` why."""
    for method, params in [
        ("GetOrderByIdV1", {"orderId": order_id}),
        ("RecordOrderPaymentByIdV1", payment(order_id, intent)),
    ]:
        error = error_of(await rpc(method, params))
        assert error["errorType"] == "UnexpectedError"
        assert saying in error["debugMessage"]
        assert "/" not in error["debugMessage"], "no POS path reaches Dojo"


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    assert "error" in response, response
    error: dict[str, Any] = response["error"]
    return error


# --- the file is not there ---------------------------------------------------------------


@pytest.mark.parametrize("method", list(WireMethod), ids=str)
async def test_a_missing_database_answers_every_method_with_an_error_saying_so_without_its_path(
    method: WireMethod, tmp_path: Path, open_adapter: Callable[..., PosCalls]
) -> None:
    missing = tmp_path / "till" / "pos.db"
    missing.parent.mkdir()
    call = caller(Dispatcher(open_adapter(missing)))
    assert_valid_params(method.value, {"headers": {}, **VALID_PARAMS[method]})

    started = time.perf_counter()
    error = error_of(await call(method.value, VALID_PARAMS[method]))

    assert error["errorType"] == "UnexpectedError"
    assert "could not be opened: it is missing" in error["debugMessage"]
    assert str(missing.parent) not in error["debugMessage"], "no POS path reaches Dojo"
    assert time.perf_counter() - started < 1.0
    assert list(missing.parent.iterdir()) == [], "a missing database must never be created"


@pytest.mark.logs_warnings("a missing database and its stale -wal set aside are logged")
async def test_a_database_deleted_while_open_errors_clearly_and_serves_again_once_restored(
    rpc: Rpc, pos_db_path: Path, backed_up_order: tuple[str, Path]
) -> None:
    order_id, saved = backed_up_order

    remove(pos_db_path)
    await assert_reads_and_payments_fail(
        rpc, order_id, "pi_gone", "The POS database could not be opened: it is missing"
    )

    shutil.copy(saved, pos_db_path)
    assert (await rpc("GetOrderByIdV1", {"orderId": order_id}))["result"]["paidAmount"] == money(0)
    paid = await rpc("RecordOrderPaymentByIdV1", payment(order_id, "pi_back"))
    assert paid["result"]["paidAmount"] == money(400)


@pytest.mark.logs_warnings("a missing database and its stale -wal set aside are logged")
async def test_a_restored_backup_is_served_as_it_was_backed_up(rpc: Rpc, pos_db_path: Path, tmp_path: Path) -> None:
    saved = tmp_path / "backup.db"
    backup(pos_db_path, saved)
    after_backup = (await rpc("CreateOrderV1", NEW_ORDER))["result"]["id"]

    remove(pos_db_path)
    assert error_of(await rpc("GetOrderByIdV1", {"orderId": after_backup}))["errorType"] == "UnexpectedError"
    shutil.copy(saved, pos_db_path)

    # The backup predates the order: it must not come back from the deleted file's WAL.
    response = await rpc("GetOrderByIdV1", {"orderId": after_backup})
    assert error_of(response)["errorType"] == "NotFound"


# --- the file is the wrong thing ---------------------------------------------------------


@pytest.mark.logs_warnings("a replaced database file is logged")
async def test_a_database_replaced_by_garbage_is_reported_unusable_then_recovers(
    rpc: Rpc, pos_db_path: Path, tmp_path: Path, backed_up_order: tuple[str, Path]
) -> None:
    order_id, saved = backed_up_order

    junk = tmp_path / "junk.tmp"
    junk.write_bytes(bytes(range(256)) * 64)
    os.replace(junk, pos_db_path)  # a new file at the path, as a sync tool or a bad restore leaves it
    await assert_reads_and_payments_fail(
        rpc, order_id, "pi_junk", "could not be opened: it is not a usable SQLite database"
    )

    shutil.copy(saved, pos_db_path)
    paid = await rpc("RecordOrderPaymentByIdV1", payment(order_id, "pi_junk"))
    assert paid["result"]["paidAmount"] == money(400)


async def test_an_empty_sqlite_file_asks_for_db_init(tmp_path: Path, open_adapter: Callable[..., PosCalls]) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a valid SQLite file with no schema version
    foreign = tmp_path / "other-app.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()

    for path in (empty, foreign):
        call = caller(Dispatcher(open_adapter(path)))
        for method in ("SearchOrdersV1", "RecordOrderPaymentByIdV1"):
            error = error_of(await call(method, VALID_PARAMS[WireMethod(method)]))
            assert error["errorType"] == "UnexpectedError"
            assert "not a reference POS database" in error["debugMessage"]
            assert "epos-bridge db init" in error["debugMessage"]
    assert sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


async def test_a_database_from_a_newer_bridge_asks_to_update(
    pos_db_path: Path, open_adapter: Callable[..., PosCalls]
) -> None:
    conn = sqlite3.connect(pos_db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    call = caller(Dispatcher(open_adapter(pos_db_path)))

    for method in ("GetOrderByIdV1", "RecordOrderPaymentByIdV1"):
        error = error_of(await call(method, VALID_PARAMS[WireMethod(method)]))
        assert error["errorType"] == "UnexpectedError"
        assert f"schema version {SCHEMA_VERSION + 1}" in error["debugMessage"]
        assert "update epos-bridge" in error["debugMessage"]
    conn = sqlite3.connect(pos_db_path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,), "never downgraded"
    conn.close()


# --- the file cannot be written ----------------------------------------------------------


def _writable(path: Path) -> bool:
    try:
        with path.open("r+b"):
            return True
    except PermissionError:
        return False


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """Make ``path`` read-only for the bridge; yields how it was done, restores write access after.

    ``chmod 0o444`` first. Root (CI containers) ignores file modes, so there the file is made
    immutable with ``chattr +i``; where that is not allowed either, the bridge's connections are
    opened with a ``mode=ro`` URI instead, which yields the same SQLITE_READONLY error.
    """
    path.chmod(0o444)
    immutable = False
    how = "chmod 0o444"
    monkeypatch = pytest.MonkeyPatch()
    try:
        if _writable(path):
            chattr = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
            immutable = chattr.returncode == 0
            how = "chattr +i"
        if _writable(path):

            def read_only_connect(target: Path, **kwargs: Any) -> sqlite3.Connection:
                ro = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
                connection.configure(ro, kwargs.get("busy_timeout_s", connection.DEFAULT_BUSY_TIMEOUT_S))
                return ro

            monkeypatch.setattr(connection, "connect", read_only_connect)
            how = "mode=ro URI"
        yield how
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)
        monkeypatch.undo()


async def test_a_read_only_database_still_answers_reads_and_refuses_writes_clearly(
    pos_db_path: Path, open_adapter: Callable[..., PosCalls]
) -> None:
    """See :func:`read_only` for how the file is made read-only when the tests run as root.

    The adapter under test opens its first connection only after the file became read-only.
    """
    seeding = sqlite_pos(pos_db_path)
    order_id = (await caller(Dispatcher(seeding))("CreateOrderV1", NEW_ORDER))["result"]["id"]
    await seeding.close()
    call = caller(Dispatcher(open_adapter(pos_db_path)))
    payment = {"orderId": order_id, "paymentIntentId": "pi_ro", "paidAmount": money(400)}

    with read_only(pos_db_path) as how:
        got = await call("GetOrderByIdV1", {"orderId": order_id})
        assert got["result"]["id"] == order_id, how
        error = error_of(await call("RecordOrderPaymentByIdV1", payment))
        assert error["errorType"] == "UnexpectedError", how
        assert "The POS database is read-only" in error["debugMessage"], how
        assert str(pos_db_path.parent) not in error["debugMessage"], how
        assert "needs write access" in error["debugMessage"], how
    print(f"\nmade read-only with {how}")

    paid = await call("RecordOrderPaymentByIdV1", payment)
    assert paid["result"]["paidAmount"] == money(400), f"write access back: normal service ({how})"


def test_explain_names_a_real_readonly_error(pos_db_path: Path) -> None:
    """The translation itself, from the exception SQLite really raises on a read-only connection."""
    conn = sqlite3.connect(f"{pos_db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            conn.execute("INSERT INTO waiters (id, name) VALUES ('w9', 'Nine')")
    finally:
        conn.close()
    assert str(raised.value) == "attempt to write a readonly database"
    assert explain(raised.value, pos_db_path) == (
        f"The POS database {pos_db_path} is read-only; the bridge needs write access to record payments and locks."
    )


# --- the file is busy --------------------------------------------------------------------


BUSY_TIMEOUT_S = 1.0


async def test_waiting_on_a_busy_database_never_blocks_the_event_loop(
    pos_db_path: Path, open_adapter: Callable[..., PosCalls]
) -> None:
    """More busy requests than pool workers, while another coroutine ticks every 5 ms.

    A busy wait on the loop's thread would stop the ticks for a whole busy timeout (1 s); the
    longest gap must stay well below that. Scheduling noise on a loaded machine is not a busy
    wait, so the bound is half the busy timeout, not a few milliseconds.
    """
    call = caller(Dispatcher(open_adapter(pos_db_path, busy_timeout_s=BUSY_TIMEOUT_S)))
    order_id = (await call("CreateOrderV1", NEW_ORDER))["result"]["id"]
    ticks: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    # The POS holds its lock until released on cue; 60 s is only its own failure guard.
    pos = await PosProcess.start("hold", str(pos_db_path), "--order", order_id, "--max-seconds", "60")
    try:
        await pos.expect("LOCKED")
        ticker = asyncio.create_task(tick())
        started = time.perf_counter()
        async with asyncio.timeout(30):
            answers = await asyncio.gather(
                *(
                    call(
                        "RecordOrderPaymentByIdV1",
                        {"orderId": order_id, "paymentIntentId": f"pi_busy_{n}", "paidAmount": money(10)},
                    )
                    for n in range(8)
                )
            )
        elapsed = time.perf_counter() - started
        stop.set()
        await ticker
        await pos.send("release")
        await pos.expect("RELEASED")
        await pos.finish()
    finally:
        await pos.kill()

    # From the first request to the last answer, ticks included: a loop that never ticked shows one long gap.
    gaps = [b - a for a, b in itertools.pairwise(sorted([started, *ticks, started + elapsed]))]
    print(
        f"\n8 busy requests answered in {elapsed:.2f} s; {len(ticks)} ticks, longest loop stall {max(gaps) * 1000:.1f} ms"
    )
    assert all(error_of(a)["errorType"] == "UnexpectedError" for a in answers)
    assert all("is busy" in error_of(a)["debugMessage"] for a in answers)
    assert elapsed >= BUSY_TIMEOUT_S, "the requests really waited on the POS's lock"
    assert max(gaps) < BUSY_TIMEOUT_S / 2, "the event loop stood still for a busy wait"
