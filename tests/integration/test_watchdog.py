""" "Connected" means "serving" (issue 25, item 2): a stuck request or a frozen event loop turns
the state red and the session reconnects; a loop frozen for good has its socket shut down so
Dojo sees the till offline instead of sending payments into a link nobody reads.

Real parts: the simulator on 127.0.0.1, the real dispatcher and session. The thresholds are small
so the tests are quick, and every wait is for the thing claimed (a state, a connection), never a
fixed time; a slower machine only makes a freeze look longer, which the guards must catch anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.gateway.session import GatewaySession
from epos_bridge.gateway.watchdog import Unanswered, WatchdogPolicy
from epos_bridge.services.dispatcher import Served
from epos_bridge.sim.gateway import GatewaySimulator
from tests.integration.test_gateway_session import (
    API_KEY,
    SOFTWARE_HOUSE_ID,
    FakePos,
    dispatcher_for,
    get_order,
    running,
    settings_for,
    wait_for_state,
)

T = TypeVar("T")


@pytest.fixture
async def sim() -> AsyncIterator[GatewaySimulator]:
    async with GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=SOFTWARE_HOUSE_ID) as simulator:
        yield simulator


@pytest.fixture
def pos() -> FakePos:
    return FakePos()


QUICK = WatchdogPolicy(tick_s=0.05, stalled_after_s=30, answer_within_s=0.5, frozen_after_s=30)


class StuckServe:
    """The real dispatcher, except that a request whose id starts with ``stuck`` never finishes
    until :meth:`release` (a task blocked on something that does not come back)."""

    def __init__(self, pos: FakePos) -> None:
        self._dispatcher = dispatcher_for(pos)
        self._release = asyncio.Event()
        self.stuck = 0

    async def __call__(self, frame: str | bytes) -> Served | None:
        if '"id": "stuck' in str(frame):
            self.stuck += 1
            await self._release.wait()
        return await self._dispatcher.handle_text(frame)

    def release(self) -> None:
        self._release.set()


def states_of(session: GatewaySession) -> list[ConnectionStatus]:
    seen: list[ConnectionStatus] = []
    session.subscribe(seen.append)
    return seen


def test_each_request_is_reported_overdue_once() -> None:
    unanswered = Unanswered(answer_within_s=30)
    unanswered.read("a", now=0)
    unanswered.read("b", now=10)

    assert unanswered.newly_overdue(now=29) == []
    assert unanswered.newly_overdue(now=35) == [35]
    assert unanswered.newly_overdue(now=36) == []  # "a" was reported already
    unanswered.answered("a")
    assert unanswered.newly_overdue(now=45) == [35]  # now "b"
    unanswered.answered("b")
    assert len(unanswered) == 0


@pytest.mark.logs_warnings("the watchdog reports the stuck requests; their late answers find the link closed")
async def test_requests_stuck_in_every_slot_turn_the_state_red_and_the_next_link_serves(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    serve = StuckServe(pos)
    session = GatewaySession(settings_for(sim, max_in_flight=2), serve, watchdog=QUICK)
    seen = states_of(session)

    async with running(session):
        await sim.wait_connected()
        for n in range(2):  # both slots: before the watchdog, nothing more was ever read
            await sim.send_raw(f'{{"jsonrpc": "2.0", "id": "stuck-{n}", "method": "GetOrderByIdV1", "params": {{}}}}')
        await sim.wait_until(lambda: serve.stuck == 2, what="two stuck requests")

        await wait_for_state(session, ConnectionState.STALLED)
        assert session.status.last_error is not None
        assert "unanswered" in session.status.last_error
        await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected, what="a new connection")
        await wait_for_state(session, ConnectionState.CONNECTED)
        answer = await sim.request("GetOrderByIdV1", get_order(), id="after")
        serve.release()

    assert answer["result"]["id"] == "order-1"
    states = [status.state for status in seen]
    stalled = states.index(ConnectionState.STALLED)
    assert ConnectionState.CONNECTED in states[:stalled]
    assert ConnectionState.CONNECTED in states[stalled:]


@pytest.mark.logs_warnings("the watchdog reports the frozen loop")
async def test_a_loop_that_froze_turns_the_state_red_and_reconnects(sim: GatewaySimulator, pos: FakePos) -> None:
    policy = WatchdogPolicy(tick_s=0.05, stalled_after_s=0.3, answer_within_s=30, frozen_after_s=60)
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, watchdog=policy)
    seen = states_of(session)

    async with running(session):
        await sim.wait_connected()
        await wait_for_state(session, ConnectionState.CONNECTED)
        time.sleep(0.8)  # noqa: ASYNC251 - the point: a synchronous call blocks the event loop
        await wait_for_state(session, ConnectionState.STALLED)
        assert session.status.last_error is not None
        assert "frozen" in session.status.last_error
        await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected, what="a new connection")
        answer = await sim.request("GetOrderByIdV1", get_order())

    assert answer["result"]["id"] == "order-1"
    assert [s.state for s in seen].count(ConnectionState.CONNECTED) == 2


class SimulatorThread:
    """The simulator on its own thread and event loop: Dojo keeps running while ours is frozen."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="simulator", daemon=True)
        self.sim = GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=SOFTWARE_HOUSE_ID)

    def run(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        self.run(self.sim.start()).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.sim.stop()).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def sim_thread() -> Iterator[SimulatorThread]:
    with SimulatorThread() as running_sim:
        yield running_sim


@pytest.mark.logs_warnings("the freeze guard logs the frozen loop and where it is stuck")
async def test_a_loop_frozen_for_good_has_its_link_dropped_while_it_is_still_frozen(
    sim_thread: SimulatorThread, pos: FakePos
) -> None:
    sim = sim_thread.sim
    policy = WatchdogPolicy(tick_s=0.05, stalled_after_s=30, answer_within_s=30, frozen_after_s=0.5)
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, watchdog=policy)
    seen = states_of(session)

    async with running(session):
        await asyncio.wrap_future(sim_thread.run(sim.wait_connected()))
        await wait_for_state(session, ConnectionState.CONNECTED)

        # Freeze this loop until Dojo's side sees the link closed — or give up after 30 s.
        deadline = time.monotonic() + 30
        while sim.connections_closed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # noqa: ASYNC251 - the point: the event loop is blocked
        assert sim.connections_closed == 1, "the link stayed open while the bridge was frozen"

        await asyncio.wrap_future(
            sim_thread.run(sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected, 10))
        )
        answer = await asyncio.wrap_future(sim_thread.run(sim.request("GetOrderByIdV1", get_order())))

    assert answer["result"]["id"] == "order-1"
    dropped = next(s for s in seen[1:] if s.state is not ConnectionState.CONNECTED)
    assert dropped.last_error is not None
    assert "frozen" in dropped.last_error
