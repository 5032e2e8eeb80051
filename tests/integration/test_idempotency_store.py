"""The idempotency store on a real SQLite file, and IdempotentServe over a fake serve function."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.ports import StoredAnswer
from epos_bridge.protocol.jsonrpc import IncomingRequest, encode, request_key
from epos_bridge.services.dispatcher import Served
from epos_bridge.services.idempotent_serve import MUTATING_METHODS, IdempotentServe
from epos_bridge.state.idempotency import IdempotencyStore
from tests.helpers.waiting import until


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingServe:
    """Answers like the dispatcher would; counts executions per (method, id)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.outcomes: list[str] = []  # popped per call; default "ok"
        self.gate: asyncio.Event | None = None
        self.threads: set[int] = set()

    async def __call__(self, request: IncomingRequest) -> Served | None:
        self.calls.append((request.method, request.id))
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request.id, "method": request.method}
        if outcome == "ok":
            body["result"] = {"n": len(self.calls), "echo": request.id}
        else:
            body["error"] = {"errorType": outcome, "traceId": f"t{len(self.calls)}"}
        return Served(request.id, request.method, outcome, 1.0, encode(body), f"t{len(self.calls)}")


def frame(method: str, request_id: Any, **params: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": {"headers": {}, **params}})


def held_serve(store: IdempotencyStore, *outcomes: str) -> tuple[CountingServe, IdempotentServe]:
    """A serve that holds every request at its gate until the test opens it, behind the store."""
    serve = CountingServe()
    serve.gate = asyncio.Event()
    serve.outcomes = list(outcomes)
    return serve, IdempotentServe(store, serve)


def the_same_request_twice(
    idempotent: IdempotentServe,
) -> tuple[asyncio.Task[Served | None], asyncio.Task[Served | None]]:
    """One CreateOrder request and its duplicate (the same id), both sent at once."""
    first = asyncio.create_task(idempotent(frame("CreateOrderV1", "o-1")))
    second = asyncio.create_task(idempotent(frame("CreateOrderV1", "o-1")))
    return first, second


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[IdempotencyStore]:
    async with IdempotencyStore(tmp_path / "state" / "bridge.sqlite3", clock=clock) as opened:
        yield opened


ANSWER = StoredAnswer('{"jsonrpc":"2.0","id":"a","method":"CreateOrderV1","result":{}}', "ok", "trace-1")


def test_every_mutating_wire_method_is_covered() -> None:
    assert sorted(MUTATING_METHODS) == sorted(
        [
            "CreateOrderV1",
            "CancelOrderByIdV1",
            "CreateOrderLockV1",
            "ExtendOrderLockV1",
            "DeleteOrderLockV1",
            "RecordOrderPaymentByIdV1",
            "CreatePartyV1",
            "UpdatePartyV1",
            "DeletePartyByIdV1",
            "CreateReservationV1",
            "UpdateReservationV1",
            "DeleteReservationByIdV1",
            "HandleEventV1",
        ]
    )


def test_ids_of_different_json_types_never_share_a_key() -> None:
    assert len({request_key(1), request_key("1"), request_key(1.5), request_key(True), request_key([1])}) == 5
    assert request_key({"b": 1, "a": 2}) == request_key({"a": 2, "b": 1})


async def test_an_answer_survives_closing_and_reopening_the_file(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "bridge.sqlite3"
    async with IdempotencyStore(path, clock=clock) as first:
        await first.put("CreateOrderV1", "a", ANSWER)

    async with IdempotencyStore(path, clock=clock) as second:
        assert await second.get("CreateOrderV1", "a") == ANSWER
        assert await second.get("CreateOrderV1", "b") is None
        assert await second.get("CancelOrderByIdV1", "a") is None


async def test_the_database_is_in_wal_mode(store: IdempotencyStore) -> None:
    await store.put("CreateOrderV1", "a", ANSWER)

    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_entries_expire_and_are_pruned(store: IdempotencyStore, clock: FakeClock) -> None:
    await store.put("CreateOrderV1", "old", ANSWER)
    clock.now += 23 * 3600
    await store.put("CreateOrderV1", "new", ANSWER)

    clock.now += 1.5 * 3600  # "old" is 24.5 h old, "new" 1.5 h
    assert await store.get("CreateOrderV1", "old") is None
    assert await store.get("CreateOrderV1", "new") == ANSWER
    assert await store.count() == 2

    assert await store.prune() == 1
    assert await store.count() == 1


async def test_storing_prunes_at_most_once_an_hour(store: IdempotencyStore, clock: FakeClock) -> None:
    await store.put("CreateOrderV1", "a", ANSWER)
    clock.now += 25 * 3600
    await store.put("CreateOrderV1", "b", ANSWER)  # an hour has passed: "a" is pruned on the way
    assert await store.count() == 1

    clock.now += 25 * 3600
    await store.put("CreateOrderV1", "c", ANSWER)  # prunes "b"
    clock.now += 24 * 3600 - 30
    await store.put("CreateOrderV1", "d", ANSWER)  # prunes, but "c" has 30 s left
    clock.now += 60  # "c" has expired now, yet the last prune was a minute ago: it stays on disk
    await store.put("CreateOrderV1", "e", ANSWER)
    assert await store.count() == 3
    assert await store.get("CreateOrderV1", "c") is None


async def test_the_store_refuses_work_before_it_is_opened(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "never-opened.sqlite3")

    with pytest.raises(RuntimeError, match="not open"):
        await store.get("CreateOrderV1", 1)


async def test_sqlite_work_runs_off_the_event_loop_thread(store: IdempotencyStore, monkeypatch: Any) -> None:
    seen: list[int] = []
    original = store._get_sync

    def spy(*args: Any) -> StoredAnswer | None:
        seen.append(threading.get_ident())
        return original(*args)

    monkeypatch.setattr(store, "_get_sync", spy)
    await store.put("CreateOrderV1", 1, StoredAnswer("{}", "ok", "t"))
    await store.get("CreateOrderV1", 1)

    assert seen
    assert threading.get_ident() not in seen


# --- IdempotentServe ------------------------------------------------------------------------


async def test_a_repeated_mutating_request_is_executed_once(store: IdempotencyStore) -> None:
    serve = CountingServe()
    idempotent = IdempotentServe(store, serve)

    first = await idempotent(frame("RecordOrderPaymentByIdV1", "pay-1", orderId="o1"))
    again = await idempotent(frame("RecordOrderPaymentByIdV1", "pay-1", orderId="o1"))

    assert first is not None and again is not None
    assert serve.calls == [("RecordOrderPaymentByIdV1", "pay-1")]
    assert json.loads(again.response_text) == json.loads(first.response_text)
    assert again.request_id == "pay-1"
    assert again.outcome == "ok"
    assert again.trace_id == first.trace_id


async def test_the_replay_is_addressed_to_the_new_request_by_json(store: IdempotencyStore) -> None:
    # The same id in a different spelling ("\\u0041" is "A"): the replay echoes the new request's id
    # as JSON, and the result (which contains the id text too) is left untouched.
    serve = CountingServe()
    idempotent = IdempotentServe(store, serve)
    await idempotent(frame("CreateOrderV1", "A"))

    replay = await idempotent('{"jsonrpc":"2.0","id":"\\u0041","method":"CreateOrderV1","params":{"headers":{}}}')

    assert replay is not None
    document = json.loads(replay.response_text)
    assert document["id"] == "A"
    assert document["result"] == {"n": 1, "echo": "A"}
    assert len(serve.calls) == 1


async def test_numeric_ids_stay_numbers_in_the_replay(store: IdempotencyStore) -> None:
    serve = CountingServe()
    idempotent = IdempotentServe(store, serve)
    await idempotent(frame("CreatePartyV1", 17))

    replay = await idempotent(frame("CreatePartyV1", 17))

    assert replay is not None
    assert json.loads(replay.response_text)["id"] == 17
    assert '"id":17' in replay.response_text


@pytest.mark.parametrize(
    ("error", "method", "request_id"),
    [("UnexpectedError", "CreateOrderLockV1", "lock-1"), ("Conflict", "RecordOrderPaymentByIdV1", "pay-9")],
)
async def test_error_answers_are_not_remembered_because_they_wrote_nothing(
    store: IdempotencyStore, error: str, method: str, request_id: str
) -> None:
    # An error answer wrote nothing, so a repeat is served afresh and tells the truth as it is now
    # (a stored Conflict replayed after the payment landed under another id would make Dojo reverse it).
    serve = CountingServe()
    serve.outcomes = [error, "ok"]
    idempotent = IdempotentServe(store, serve)

    failed = await idempotent(frame(method, request_id))
    retried = await idempotent(frame(method, request_id))
    replayed = await idempotent(frame(method, request_id))

    assert failed is not None and failed.outcome == error
    assert retried is not None and retried.outcome == "ok"
    assert replayed is not None and replayed.response_text == retried.response_text
    assert len(serve.calls) == 2
    assert await store.count() == 1


async def test_a_duplicate_in_flight_waits_for_the_first_answer(store: IdempotencyStore) -> None:
    serve, idempotent = held_serve(store)
    first, second = the_same_request_twice(idempotent)
    third = asyncio.create_task(idempotent(frame("CreateOrderV1", "o-2")))
    await until(lambda: len(serve.calls) >= 2, "the first and the third request being served")
    assert serve.calls == [("CreateOrderV1", "o-1"), ("CreateOrderV1", "o-2")], "the duplicate did not wait"
    assert not second.done()  # the duplicate arrived while the first is in flight, and waits
    serve.gate.set()
    async with asyncio.timeout(5):
        answers = await asyncio.gather(first, second, third)

    assert serve.calls == [("CreateOrderV1", "o-1"), ("CreateOrderV1", "o-2")]
    assert answers[0] is not None and answers[1] is not None
    assert json.loads(answers[1].response_text) == json.loads(answers[0].response_text)


async def test_a_duplicate_reexecutes_when_the_first_failed_transiently(store: IdempotencyStore) -> None:
    serve, idempotent = held_serve(store, "UnexpectedError", "ok")
    first, second = the_same_request_twice(idempotent)
    await until(lambda: len(serve.calls) >= 1, "the first request being served")
    assert len(serve.calls) == 1 and not second.done(), "the duplicate did not wait for the first"
    serve.gate.set()
    async with asyncio.timeout(5):
        answers = await asyncio.gather(first, second)

    assert [a.outcome for a in answers if a is not None] == ["UnexpectedError", "ok"]
    assert len(serve.calls) == 2


async def test_a_cancelled_first_request_lets_the_duplicate_run(store: IdempotencyStore) -> None:
    serve, idempotent = held_serve(store)
    first, second = the_same_request_twice(idempotent)
    await until(lambda: len(serve.calls) >= 1, "the first request being served")
    assert len(serve.calls) == 1, "the duplicate did not wait for the first"
    first.cancel()
    # The duplicate runs because the first was cancelled, while the gate is still closed.
    await until(lambda: len(serve.calls) >= 2, "the duplicate being served after the first was cancelled")
    serve.gate.set()
    async with asyncio.timeout(5):
        answer = await second

    assert answer is not None and answer.outcome == "ok"
    assert len(serve.calls) == 2


@pytest.mark.logs_warnings("dropped frames are logged")
async def test_reads_and_unaddressed_frames_pass_straight_through(store: IdempotencyStore) -> None:
    serve = CountingServe()
    idempotent = IdempotentServe(store, serve)

    await idempotent(frame("GetOrderByIdV1", "r1"))
    await idempotent(frame("GetOrderByIdV1", "r1"))
    assert await idempotent("{broken") is None
    assert await idempotent(b"binary") is None
    assert await idempotent(json.dumps({"method": "CreateOrderV1"})) is None
    await idempotent(json.dumps({"jsonrpc": "2.0", "id": 1, "method": {"not": "a string"}}))

    assert serve.calls == [("GetOrderByIdV1", "r1"), ("GetOrderByIdV1", "r1"), ({"not": "a string"}, 1)]
    assert await store.count() == 0


@pytest.mark.logs_warnings("a broken state database is logged")
async def test_a_broken_store_still_serves(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "closed.sqlite3")  # never opened: every call fails
    serve = CountingServe()
    idempotent = IdempotentServe(store, serve)

    answer = await idempotent(frame("CreateOrderV1", "o-1"))

    assert answer is not None and answer.outcome == "ok"


async def test_only_the_bridges_own_answers_skip_the_fsync_the_pos_write_keeps_it(tmp_path: Path) -> None:
    """state/idempotency.py SYNCHRONOUS says why NORMAL is safe for this table (a lost answer is
    re-derived from the POS's durable record); the payment log and the POS connection itself stay FULL (2)."""
    from epos_bridge.adapters.sqlite.connection import connect
    from epos_bridge.adapters.sqlite.setup import init_database
    from epos_bridge.state.payment_log import PaymentLogStore

    store = IdempotencyStore(tmp_path / "state.db")
    payment_log = PaymentLogStore(tmp_path / "state.db")
    await store.open()
    await payment_log.open()
    try:
        assert await store._run(lambda: store._conn().execute("PRAGMA synchronous").fetchone()[0]) == 1
        assert await payment_log._run(lambda: payment_log._db().execute("PRAGMA synchronous").fetchone()[0]) == 2
    finally:
        await payment_log.close()
        await store.close()
    init_database(tmp_path / "pos.db", demo=False, now=datetime.now(UTC))
    pos = connect(tmp_path / "pos.db")
    try:
        assert pos.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        pos.close()


async def test_a_request_never_stored_is_looked_up_without_the_worker_thread_and_pruning_forgets_keys(
    tmp_path: Path, monkeypatch: Any
) -> None:
    clock = FakeClock()
    store = IdempotencyStore(tmp_path / "state.db", lifetime_s=10, clock=clock)
    await store.open()
    try:
        await store.put("CreateOrderV1", "old", StoredAnswer("{}", "ok", "t1"))
        calls: list[tuple[Any, ...]] = []
        original = store._get_sync
        monkeypatch.setattr(store, "_get_sync", lambda *args: calls.append(args) or original(*args))

        assert await store.get("CreateOrderV1", "never") is None
        assert calls == []
        assert (await store.get("CreateOrderV1", "old")) is not None
        assert len(calls) == 1

        clock.now += 11
        await store.put("CreateOrderV1", "new", StoredAnswer("{}", "ok", "t2"))
        assert await store.prune() == 1
        assert await store.get("CreateOrderV1", "old") is None
        assert (await store.get("CreateOrderV1", "new")) is not None
        assert ("CreateOrderV1", request_key("old")) not in store._stored
    finally:
        await store.close()

    reopened = IdempotencyStore(tmp_path / "state.db", lifetime_s=10, clock=clock)
    await reopened.open()
    try:
        assert (await reopened.get("CreateOrderV1", "new")) is not None, "a stored answer outlives a restart"
    finally:
        await reopened.close()
