"""POS events: every change by any process reaches Dojo, coalesced, and nothing is lost.

Real parts throughout: the reference SQLite file with its triggers, a second OS process as the
POS, the durable outbox in a real state database, and the REST simulator on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.app import Bridge, demo_settings
from epos_bridge.ports import PosChange
from epos_bridge.services.pos_events import (
    COALESCE_S,
    FORGET_AFTER,
    POLL_S,
    READ_BATCH,
    PosEventRelay,
    retry_delay,
)
from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.state.outbox import OutboxStore
from tests.helpers.pos import sqlite_pos
from tests.helpers.relay import relay_reading


@pytest.fixture
async def simulator() -> AsyncIterator[DojoSimulator]:
    async with DojoSimulator() as sim:
        yield sim


def received(simulator: DojoSimulator) -> list[tuple[str, str]]:
    """(eventType, entity id) for every event the simulated Dojo accepted."""
    out = []
    for event in simulator.rest.events:
        body = event if isinstance(event, dict) else {}
        entity = body.get("event", {})
        out.append((body.get("eventType", ""), next(iter(entity.values()), "")))
    return out


async def wait_for(condition: object, timeout: float) -> float:  # noqa: ASYNC109 - a bound per wait
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


POS_EDITS = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
    conn.execute("PRAGMA foreign_keys = ON")
    for sql in (
        "UPDATE order_items SET quantity = quantity + 1 WHERE id = (SELECT MIN(id) FROM order_items WHERE order_id = 7)",
        "UPDATE parties SET end_time = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), status = 'Left' WHERE id = 1",
        "UPDATE reservations SET start_time = '2030-01-01T19:00:00.000Z', end_time = '2030-01-01T21:00:00.000Z' WHERE id = 4",
    ):
        conn.execute("BEGIN IMMEDIATE"); conn.execute(sql); conn.execute("COMMIT")
    print("DONE", flush=True)
    """
)


class CountedPolls:
    """Counts the relay's delivery rounds (one per poll) and notes the first after which ``seen`` held."""

    def __init__(self, relay: PosEventRelay, seen: Callable[[], bool]) -> None:
        self.rounds = 0
        self.seen_after: int | None = None
        deliver = relay.deliver_once

        async def counted() -> int:
            self.rounds += 1
            try:
                return await deliver()
            finally:
                if self.seen_after is None and seen():
                    self.seen_after = self.rounds

        relay.deliver_once = counted  # type: ignore[method-assign]


POLLS_TO_DELIVER = math.ceil(COALESCE_S / POLL_S) + 3
"""Polls from a commit to its event: one may have begun before the commit, the next captures the
change, the coalescing window lasts COALESCE_S / POLL_S more, and one spare. Counted in polls,
not seconds, so a slow machine's longer polls do not count against it."""


async def test_changes_by_another_process_reach_dojo_within_a_few_polls(
    demo_db: Path, simulator: DojoSimulator, tmp_path: Path
) -> None:
    """Within two seconds: the relay's timing promises it, the polls counted below prove it keeps it."""
    assert COALESCE_S + 2 * POLL_S < 2.0
    bridge = Bridge(
        demo_settings(tmp_path, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID).model_copy(
            update={"db_path": demo_db}
        )
    )
    expected = {("OrderUpdated", "7"), ("PartyUpdated", "1"), ("ReservationUpdated", "4")}
    await bridge.start()
    try:
        relay = await relay_reading(bridge)  # the relay has taken its starting position in the change log
        polls = CountedPolls(relay, lambda: expected <= set(received(simulator)))
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", POS_EDITS, str(demo_db)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert "DONE" in done.stdout
        committed_at_poll = polls.rounds
        await wait_for(lambda: polls.seen_after is not None, 30)
        assert polls.seen_after is not None
        assert polls.seen_after - committed_at_poll <= POLLS_TO_DELIVER, (
            f"delivered {polls.seen_after - committed_at_poll} polls after the POS committed"
        )
        # Coalescing: one event per entity for this burst.
        assert sorted(received(simulator)).count(("OrderUpdated", "7")) == 1
    finally:
        await bridge.stop()


async def test_changes_made_through_dojo_are_announced_too(
    demo_db: Path, simulator: DojoSimulator, tmp_path: Path
) -> None:
    """Other Dojo products on the venue must hear about a payment taken by Pay at Table."""
    bridge = Bridge(
        demo_settings(tmp_path, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID).model_copy(
            update={"db_path": demo_db}
        )
    )
    await bridge.start()
    try:
        await simulator.gateway.wait_connected()
        await relay_reading(bridge)
        response = await simulator.send(
            "RecordOrderPaymentByIdV1",
            {
                "headers": {},
                "orderId": "8",
                "paymentIntentId": "pi_evt_1",
                "paidAmount": {"value": 100, "currencyCode": "GBP"},
            },
        )
        assert "result" in response
        await wait_for(lambda: ("OrderUpdated", "8") in received(simulator), 30)  # a failure guard only
    finally:
        await bridge.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.logs_warnings("undelivered POS events are logged")
async def test_an_outage_with_a_restart_in_the_middle_loses_nothing(
    demo_db: Path, simulator: DojoSimulator, tmp_path: Path
) -> None:
    """The events endpoint fails for 60 s (fake time) and the bridge restarts meanwhile."""
    state = tmp_path / "state.db"
    clock = FakeClock()
    adapter = sqlite_pos(demo_db)
    sent: list[tuple[str, str]] = []

    async def send(event_type: str, field: str, entity_id: str) -> None:
        if clock.now < outage_ends:
            raise ConnectionError("503 from the events endpoint")
        sent.append((event_type, entity_id))

    outage_ends = clock.now + 60
    outbox = OutboxStore(state)
    await outbox.open()
    relay = PosEventRelay(adapter.changes, "sqlite:demo", outbox, send, clock=clock)
    await relay.capture_once()  # starting position
    edit = sqlite3.connect(demo_db, isolation_level=None)
    for order in (7, 8, 9):
        edit.execute("UPDATE orders SET note = 'edited' WHERE id = ?", [order])
    edit.execute("UPDATE parties SET status = 'Paying' WHERE id = 2")
    await relay.capture_once()
    clock.now += 1
    assert await relay.deliver_once() == 0
    assert relay.status.depth == 4
    assert relay.status.last_error is not None and "503" in relay.status.last_error
    await outbox.close()  # the bridge stops mid-outage

    clock.now += 20
    edit.execute("UPDATE reservations SET covers = covers + 1 WHERE id = 3")
    edit.close()
    outbox = OutboxStore(state)  # ...and starts again
    await outbox.open()
    relay = PosEventRelay(adapter.changes, "sqlite:demo", outbox, send, clock=clock)
    await relay.capture_once()
    assert await outbox.depth() == 5
    while clock.now < outage_ends + 61:
        clock.now += 5
        await relay.deliver_once()
    assert sorted(sent) == sorted(
        [
            ("OrderUpdated", "7"),
            ("OrderUpdated", "8"),
            ("OrderUpdated", "9"),
            ("PartyUpdated", "2"),
            ("ReservationUpdated", "3"),
        ]
    )
    assert await outbox.depth() == 0
    await outbox.close()
    await adapter.close()


def test_retries_double_up_to_a_minute() -> None:
    assert [retry_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


async def test_a_change_that_arrives_while_its_event_is_being_sent_is_sent_again(tmp_path: Path) -> None:
    outbox = OutboxStore(tmp_path / "state.db")
    await outbox.open()
    try:
        change = PosChange(1, "order", "7", "update")
        await outbox.enqueue("src", [change], 1, due_at=0)
        (in_flight,) = await outbox.due(now=1)
        await outbox.enqueue("src", [PosChange(2, "order", "7", "update")], 2, due_at=0)  # coalesces: version 2
        await outbox.delivered(in_flight)
        (again,) = await outbox.due(now=1)
        assert (again.entity_id, again.version) == ("7", 2)
        assert await outbox.cursor("src") == 2
    finally:
        await outbox.close()


@pytest.mark.logs_warnings("undelivered POS events are logged")
async def test_a_bridge_restart_keeps_the_queue_and_the_simulator_gets_it_after_recovery(
    demo_db: Path, simulator: DojoSimulator, tmp_path: Path
) -> None:
    settings = demo_settings(
        tmp_path, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID
    ).model_copy(update={"db_path": demo_db})
    simulator.rest.fail_events(503)
    bridge = Bridge(settings)
    await bridge.start()
    await relay_reading(bridge)
    with sqlite3.connect(demo_db, isolation_level=None) as edit:
        edit.execute("UPDATE orders SET note = 'during outage' WHERE id = 10")
    await wait_for(lambda: bridge.relay is not None and bridge.relay.status.last_error is not None, 30)
    await bridge.stop()

    simulator.rest.restore_events()
    again = Bridge(settings)
    await again.start()
    try:
        await wait_for(lambda: ("OrderUpdated", "10") in received(simulator), 30)  # failure guards only
    finally:
        await again.stop()


class ForgetfulSource:
    """A change log with more than FORGET_AFTER changes waiting, that records what it forgets."""

    def __init__(self, count: int) -> None:
        self.changes = [PosChange(seq, "order", str(seq % 7), "update") for seq in range(1, count + 1)]
        self.forgotten: list[int] = []

    async def latest_change(self) -> int:
        return 0

    async def changes_after(self, seq: int, limit: int) -> list[PosChange]:
        return [c for c in self.changes if c.seq > seq][:limit]

    async def forget_changes_through(self, seq: int) -> None:
        self.forgotten.append(seq)


async def test_the_pos_forgets_changes_only_after_their_queueing_is_on_disk(tmp_path: Path) -> None:
    """The outbox commits without an fsync (state/outbox.py says why that is safe); the one
    commit that must survive a power cut, the one before the POS forgets, is durable."""
    outbox = OutboxStore(tmp_path / "state.db")
    await outbox.open()
    durable: list[tuple[int, bool]] = []
    enqueue = outbox.enqueue

    async def recording(*args: Any, durable: bool = False) -> None:
        calls.append((args[2], durable))
        await enqueue(*args, durable=durable)

    calls = durable
    outbox.enqueue = recording  # type: ignore[method-assign]
    source = ForgetfulSource(FORGET_AFTER + READ_BATCH)
    relay = PosEventRelay(source, "src", outbox, lambda *args: asyncio.sleep(0))
    try:
        await outbox.enqueue("src", [], 0, 0.0)  # the cursor at the start of the log
        while await relay.capture_once():
            pass
        assert source.forgotten, "the relay asked the POS to forget what it queued"
        forgot_through = source.forgotten[0]
        assert (forgot_through, True) in durable, durable
        assert all(not flag for through, flag in durable if through < forgot_through), durable
        assert await outbox._run(lambda: outbox._db().execute("PRAGMA synchronous").fetchone()[0]) == 1
    finally:
        await outbox.close()
