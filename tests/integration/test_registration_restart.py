"""``Registration.restart`` is serialized: settings saved twice quickly (two concurrent restarts),
or a restart racing ``stop``, never leave two registration loops, never run two registrations
at once, and never leave a loop running after ``stop``.

The real DojoClient against the real RestSimulator on 127.0.0.1. What is asserted is observed:
the registration loops alive (asyncio tasks named ``registration``), and how many
``PUT /epos/integrations/ws`` calls were in flight at once, counted where the client is called.
Registration is refused (503) so every loop keeps retrying; its pause between attempts parks
until the test ends, so a loop that exists stays visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from epos_bridge.dojo_api import DojoClient
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.dojo_rest import Integrations, WsIntegration
from epos_bridge.services.registration import Registration
from epos_bridge.sim.rest import RestSimulator
from tests.helpers.fakes import Sleeps
from tests.helpers.waiting import until

API_KEY = "sk_sandbox_fake_RegistrationRestart_31"
HOUSE = "sh_epos_bridge_tests"
IMPLEMENTED = frozenset({Capability.GET_ORDER_BY_ID, Capability.SEARCH_ORDERS})

pytestmark = pytest.mark.logs_warnings("each refused registration is logged")


class WatchedRegistry:
    """The real client, counting the registrations in flight at once."""

    def __init__(self, client: DojoClient) -> None:
        self.client = client
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls = 0

    async def register_capabilities(self, capabilities: Iterable[Capability]) -> list[WsIntegration]:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.client.register_capabilities(capabilities)
        finally:
            self.in_flight -= 1

    async def get_integrations(self) -> Integrations:
        return await self.client.get_integrations()


class ParkedPause:
    """The pause between attempts: parks until cancelled, remembering which loop is parked."""

    def __init__(self) -> None:
        self.parked: set[asyncio.Task[object]] = set()

    async def __call__(self, seconds: float) -> None:
        me = asyncio.current_task()
        assert me is not None
        self.parked.add(me)
        try:
            await asyncio.Event().wait()
        finally:
            self.parked.discard(me)


def loops() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "registration" and not t.done()]


@pytest.fixture
async def sim() -> AsyncIterator[RestSimulator]:
    async with RestSimulator(API_KEY, HOUSE) as simulator:
        simulator.fail_registration(503)
        yield simulator


@pytest.fixture
async def registry(sim: RestSimulator) -> AsyncIterator[WatchedRegistry]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        client = DojoClient(
            http,
            credentials=DojoCredentials(API_KEY, HOUSE),
            base_url=sim.base_url,
            allow_insecure=True,
            sleep=Sleeps(),  # the client's own retries of a 503 do not wait here
        )
        yield WatchedRegistry(client)


@pytest.fixture
async def pause() -> ParkedPause:
    return ParkedPause()


@pytest.fixture
async def registration(registry: WatchedRegistry, pause: ParkedPause) -> AsyncIterator[Registration]:
    registering = Registration(registry, lambda: IMPLEMENTED, sleep=pause)
    yield registering
    await registering.stop()
    for task in loops():  # a loop a buggy restart lost track of
        task.cancel()
    await asyncio.gather(*loops(), return_exceptions=True)


async def all_parked(pause: ParkedPause) -> None:
    await until(lambda: bool(loops()) and set(loops()) <= pause.parked, "every registration loop waiting to retry")


async def test_two_concurrent_restarts_leave_one_loop_and_never_two_registrations_at_once(
    registration: Registration, registry: WatchedRegistry, pause: ParkedPause, sim: RestSimulator
) -> None:
    await registration.restart()  # start-up: refused, so it waits to retry
    await all_parked(pause)

    await asyncio.gather(registration.restart(), registration.restart())  # settings saved twice quickly
    await all_parked(pause)

    assert len(loops()) == 1, f"one registration loop, not {len(loops())}"
    assert registry.most_in_flight == 1, "two registrations ran at once"
    assert registry.calls == 3, "the start-up attempt and one per restart, each refused once"


async def test_many_concurrent_restarts_leave_one_loop(
    registration: Registration, registry: WatchedRegistry, pause: ParkedPause
) -> None:
    await registration.restart()
    await all_parked(pause)

    await asyncio.gather(*(registration.restart() for _ in range(5)))
    await all_parked(pause)

    assert len(loops()) == 1
    assert registry.most_in_flight == 1


async def test_stop_racing_a_restart_leaves_no_loop(registration: Registration, pause: ParkedPause) -> None:
    await registration.restart()
    await all_parked(pause)

    await asyncio.gather(registration.restart(), registration.stop())  # a restart, then quitting

    await until(lambda: not any(t.get_name() == "registration" and not t.done() for t in asyncio.all_tasks()),
                "the loops to end")  # fmt: skip
    assert loops() == []


async def test_a_registration_asked_for_while_the_loop_registers_waits_its_turn(
    registration: Registration, registry: WatchedRegistry, pause: ParkedPause
) -> None:
    """``register()`` (Settings' Test, the tray) and the loop never register at the same moment."""
    await registration.restart()
    await asyncio.gather(registration.register(), registration.register())
    await all_parked(pause)

    assert registry.most_in_flight == 1
