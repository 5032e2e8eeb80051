"""The gateway session against a real WebSocket server on 127.0.0.1 (the simulator).

The POS side is a small in-test fake that holds state: the real SQLite adapter is being written
in parallel, and these tests are about the socket, not the database. The dispatcher is real.
Time between attempts is faked (``RecordingSleep``) so delays are asserted exactly, not timed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from epos_bridge.domain.errors import NotFound
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.gateway.policy import GatewayConfigError
from epos_bridge.gateway.session import GatewaySession, GatewaySettings, Serve
from epos_bridge.ports import CallContext, PosAdapter
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials, InvalidCredentials
from epos_bridge.protocol.entities import DineInDetails, Money, Order, OrderDetails, OrderType, Payment
from epos_bridge.protocol.params import OrderIdParams, RecordOrderPaymentParams
from epos_bridge.services.dispatcher import Dispatcher, Served
from epos_bridge.services.idempotent_serve import IdempotentServe
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.state.idempotency import IdempotencyStore

API_KEY = "sk_sandbox_fake_Zm9vYmFyYmF6cXV4"
SOFTWARE_HOUSE_ID = "acme-pos"
RESELLER_ID = "reseller-42"

HEADERS: dict[str, Any] = {"headers": {"waiterId": "w1"}}


class FakePos:
    """In-memory orders; records every payment it applies, keyed by paymentIntentId.

    It deliberately does NOT de-duplicate payments itself, so a payment applied twice shows.
    """

    def __init__(self, delay: Callable[[], float] = lambda: 0.0) -> None:
        self.delay = delay
        self.orders = {
            "order-1": Order(
                id="order-1",
                details=OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails(table_id="T1")),
                total_amount=Money(value=5000, currency_code="GBP"),
                payments=[],
            )
        }
        self.payments: dict[str, list[Money]] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate: asyncio.Event | None = None

    def implemented_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.GET_ORDER_BY_ID, Capability.RECORD_ORDER_PAYMENT_BY_ID})

    async def close(self) -> None:
        return None

    async def get_order(self, params: OrderIdParams, ctx: CallContext) -> Order:
        async with self._working():
            if params.order_id not in self.orders:
                raise NotFound(f"no order {params.order_id[:40]!r}")
            return self.orders[params.order_id]

    async def record_order_payment(self, params: RecordOrderPaymentParams, ctx: CallContext) -> Order:
        async with self._working():
            order = self.orders[params.order_id]
            self.payments.setdefault(params.payment_intent_id, []).append(params.paid_amount)
            payment = Payment(paid_amount=params.paid_amount, payment_intent_id=params.payment_intent_id)
            order = order.model_copy(update={"payments": [*(order.payments or []), payment]})
            self.orders[params.order_id] = order
            return order

    @asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay())
            yield
        finally:
            self.in_flight -= 1


class RecordingSleep:
    """The session's pause between attempts: records each delay, returns at once.

    After ``block_after`` delays it blocks (until the session cuts the pause short), so a test
    can look at the state while the session is waiting.
    """

    def __init__(self, block_after: int | None = None) -> None:
        self.delays: list[float] = []
        self.block_after = block_after

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.block_after is not None and len(self.delays) > self.block_after:
            await asyncio.Event().wait()
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[GatewaySimulator]:
    async with GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=SOFTWARE_HOUSE_ID) as simulator:
        yield simulator


@pytest.fixture
def pos() -> FakePos:
    return FakePos()


def settings_for(sim: GatewaySimulator, **changes: Any) -> GatewaySettings:
    base = GatewaySettings(
        credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID),
        ws_url=sim.url,
        allow_insecure=True,
        stop_deadline_s=2.0,
        close_timeout_s=1.0,
    )
    return replace(base, **changes)


def dispatcher_for(pos: FakePos) -> Dispatcher:
    return Dispatcher(cast(PosAdapter, pos))


@asynccontextmanager
async def running(session: GatewaySession) -> AsyncIterator[GatewaySession]:
    task = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        async with asyncio.timeout(10):
            await session.stop()
            await task


async def wait_for_state(session: GatewaySession, state: ConnectionState, within: float = 5) -> None:
    """Return once the session is in ``state`` (now or after a later change)."""
    reached = asyncio.Event()
    unsubscribe = session.subscribe(lambda status: reached.set() if status.state is state else None)
    try:
        if session.status.state is not state:
            async with asyncio.timeout(within):
                await reached.wait()
    finally:
        unsubscribe()


def get_order(order_id: str = "order-1") -> dict[str, Any]:
    return {**HEADERS, "orderId": order_id}


def payment(intent: str = "pi_1", value: int = 1500) -> dict[str, Any]:
    return {
        **HEADERS,
        "orderId": "order-1",
        "paymentIntentId": intent,
        "paidAmount": {"value": value, "currencyCode": "GBP"},
    }


# --- handshake ------------------------------------------------------------------------------


async def test_handshake_sends_the_contract_headers_byte_for_byte(sim: GatewaySimulator, pos: FakePos) -> None:
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text)

    async with running(session):
        await sim.wait_connected()

    (handshake,) = sim.handshakes
    assert handshake.status == 101
    assert handshake.path == "/epos"
    assert ("Authorization", "Basic sk_sandbox_fake_Zm9vYmFyYmF6cXV4") in handshake.raw_headers
    assert ("software-house-id", "acme-pos") in handshake.raw_headers
    assert handshake.values("Authorization") == ["Basic sk_sandbox_fake_Zm9vYmFyYmF6cXV4"]  # raw key, not base64
    assert handshake.values("software-house-id") == ["acme-pos"]
    assert handshake.values("reseller-id") == []
    assert handshake.values("User-Agent") == ["epos-bridge/0.1.0"]


async def test_handshake_sends_the_reseller_id_when_one_is_set(pos: FakePos) -> None:
    async with GatewaySimulator(
        expected_api_key=API_KEY, expected_software_house_id=SOFTWARE_HOUSE_ID, expected_reseller_id=RESELLER_ID
    ) as sim:
        session = GatewaySession(
            settings_for(sim, credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID, RESELLER_ID)),
            dispatcher_for(pos).handle_text,
        )
        async with running(session):
            await sim.wait_connected()

    assert sim.handshakes[0].values("reseller-id") == ["reseller-42"]
    assert ("reseller-id", "reseller-42") in sim.handshakes[0].raw_headers


def test_an_unencrypted_url_is_refused_without_the_insecure_flag() -> None:
    with pytest.raises(GatewayConfigError) as refused:
        GatewaySettings(credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID), ws_url="ws://127.0.0.1:9/epos")

    message = str(refused.value)
    assert "EPOS_BRIDGE_WS_URL" in message
    assert "EPOS_BRIDGE_ALLOW_INSECURE" in message
    assert "wss://" in message
    assert API_KEY not in message


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"ws_url": "https://eu.ws.dojo.tech/epos"}, "not a WebSocket URL"),
        ({"api_key": ""}, "No Dojo API key"),
        ({"api_key": "sk_sandbox_abc\r\nX-Evil: 1"}, "spaces or line breaks"),
        ({"software_house_id": ""}, "software-house-id"),
    ],
)
def test_unusable_settings_say_what_to_fix(changes: dict[str, Any], fragment: str) -> None:
    values: dict[str, Any] = {"ws_url": "wss://eu.ws.dojo.tech/epos", "api_key": API_KEY, "software_house_id": "s"}
    values |= changes
    with pytest.raises((GatewayConfigError, InvalidCredentials), match=fragment):
        GatewaySettings(
            credentials=DojoCredentials(values["api_key"], values["software_house_id"]), ws_url=values["ws_url"]
        )


def test_settings_never_show_the_api_key_in_their_repr() -> None:
    settings = GatewaySettings(credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID))

    assert API_KEY not in repr(settings)


def test_no_proxy_means_a_direct_connection_and_system_opts_in() -> None:
    settings = GatewaySettings(credentials=DojoCredentials(API_KEY, SOFTWARE_HOUSE_ID))

    assert settings.connect_proxy() is None
    assert replace(settings, proxy="system").connect_proxy() is True
    assert replace(settings, proxy="http://proxy.local:3128").connect_proxy() == "http://proxy.local:3128"


def self_signed_context(tmp_path: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.helpers.certificates import server_context_for, valid_for_a_day

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        valid_for_a_day(name, name, key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return server_context_for(cert, key, tmp_path)


async def test_tls_certificates_are_verified(tmp_path: Path, pos: FakePos) -> None:
    async with GatewaySimulator(
        expected_api_key=API_KEY,
        expected_software_house_id=SOFTWARE_HOUSE_ID,
        ssl_context=self_signed_context(tmp_path),
    ) as sim:
        assert sim.url.startswith("wss://")
        sleep = RecordingSleep(block_after=0)
        session = GatewaySession(
            settings_for(sim, allow_insecure=False), dispatcher_for(pos).handle_text, sleep=sleep, random=lambda: 0.5
        )
        async with running(session):
            await wait_for_state(session, ConnectionState.DISCONNECTED)
            await sim.wait_until(lambda: bool(sleep.delays))

    assert sim.handshakes == []  # the bridge refused the self-signed certificate before any HTTP
    assert sleep.delays == [1.0]
    assert session.status.last_error is not None
    assert "certificate" in session.status.last_error


# --- serving ---------------------------------------------------------------------------------


async def test_two_hundred_concurrent_requests_are_each_answered_with_their_own_id(sim: GatewaySimulator) -> None:
    pos = FakePos(delay=lambda: random.uniform(0, 0.02))
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text)

    async with running(session):
        await sim.wait_connected()
        ids = [f"req-{n}" for n in range(200)]
        answers = await asyncio.gather(*(sim.request("GetOrderByIdV1", get_order(), id=i) for i in ids))

    assert [answer["id"] for answer in answers] == ids
    assert all(answer["result"]["id"] == "order-1" for answer in answers)
    arrival = [json.loads(frame)["id"] for frame in sim.received]
    assert sorted(arrival) == sorted(ids)
    assert arrival != ids, "answers should be sent as soon as ready, not in request order"
    assert pos.most_in_flight > 1


async def test_in_flight_requests_are_bounded_and_the_socket_is_not_read_beyond(sim: GatewaySimulator) -> None:
    pos = FakePos()
    pos.gate = asyncio.Event()
    session = GatewaySession(settings_for(sim, max_in_flight=3), dispatcher_for(pos).handle_text)

    async with running(session):
        await sim.wait_connected()
        pending = [asyncio.create_task(sim.request("GetOrderByIdV1", get_order(), id=n)) for n in range(10)]
        await sim.wait_until(lambda: pos.in_flight == 3)
        await asyncio.sleep(0.1)
        assert pos.in_flight == 3
        pos.gate.set()
        answers = await asyncio.gather(*pending)

    assert [answer["id"] for answer in answers] == list(range(10))
    assert pos.most_in_flight == 3


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.logs_warnings("dropped frames are logged")
async def test_malformed_frames_are_answered_or_dropped_and_the_link_keeps_serving(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text)
    dropped: list[str | bytes] = [
        "{not json",
        "[1, 2, 3]",
        '"just a string"',
        json.dumps({"jsonrpc": "2.0", "id": "bin", "method": "GetOrderByIdV1", "params": get_order()}).encode(),
        json.dumps({"jsonrpc": "2.0", "method": "GetOrderByIdV1", "params": get_order()}),
        json.dumps({"jsonrpc": "2.0", "id": None, "method": "GetOrderByIdV1", "params": get_order()}),
        "[" * 100_000 + "]" * 100_000,
    ]
    answered: dict[str, tuple[dict[str, Any], str]] = {
        "unknown-method": ({"method": "DropTablesV1", "params": HEADERS}, "InvalidRequest"),
        "not-implemented": ({"method": "SearchTablesV1", "params": HEADERS}, "InvalidRequest"),
        "method-not-string": ({"method": 42, "params": HEADERS}, "InvalidRequest"),
        "params-string": ({"method": "GetOrderByIdV1", "params": "order-1"}, "InvalidRequest"),
        "params-missing": ({"method": "GetOrderByIdV1"}, "InvalidRequest"),
        "order-id-number": ({"method": "GetOrderByIdV1", "params": {**HEADERS, "orderId": 42}}, "InvalidRequest"),
        "one-megabyte": ({"method": "GetOrderByIdV1", "params": get_order("x" * 1_000_000)}, "NotFound"),
        "deep": ({"method": "GetOrderByIdV1", "params": {**HEADERS, "orderId": nested(200)}}, "InvalidRequest"),
    }

    async with running(session):
        await sim.wait_connected()
        for frame in dropped:
            await sim.send_raw(frame)
        futures = {}
        for request_id, (body, _) in answered.items():
            futures[request_id] = sim.expect(request_id)
            await sim.send_raw(json.dumps({"jsonrpc": "2.0", "id": request_id, **body}))
        async with asyncio.timeout(5):
            responses = {request_id: await future for request_id, future in futures.items()}
        after = await sim.request("GetOrderByIdV1", get_order(), id="still-serving")

    for request_id, (_, error_type) in answered.items():
        response = responses[request_id]
        assert response["id"] == request_id
        assert "result" not in response
        assert response["error"]["errorType"] == error_type, (request_id, response)
        assert response["error"]["traceId"]
        assert len(response["error"].get("debugMessage", "")) <= 300
    assert after["result"]["id"] == "order-1"
    assert len(sim.received) == len(answered) + 1, "frames without an id must not be answered"
    assert sim.connections_opened == 1


# --- reconnecting ----------------------------------------------------------------------------


async def test_after_a_drop_the_session_reconnects_and_delays_follow_the_policy(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    sleep, clock = RecordingSleep(), FakeClock()
    session = GatewaySession(
        settings_for(sim), dispatcher_for(pos).handle_text, sleep=sleep, clock=clock, random=lambda: 0.5
    )

    async with running(session):
        for connections in (1, 2, 3, 4):
            await sim.wait_until(lambda n=connections: sim.connections_opened == n and sim.connected)  # type: ignore[misc]
            await wait_for_state(session, ConnectionState.CONNECTED)
            await sim.drop_connections()
        assert sleep.delays == [1, 2, 4]

        # A connection that stays up for the healthy period resets the schedule.
        await sim.wait_until(lambda: sim.connections_opened == 5 and sim.connected)
        await wait_for_state(session, ConnectionState.CONNECTED)
        clock.now += 60
        await sim.drop_connections()
        await sim.wait_until(lambda: sim.connections_opened == 6 and sim.connected)
        answer = await sim.request("GetOrderByIdV1", get_order())

    assert sleep.delays == [1, 2, 4, 8, 1]
    assert answer["result"]["id"] == "order-1"


async def test_a_gateway_that_accepts_and_closes_at_once_never_gets_a_tight_loop(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    sim.accept_then_close = True
    sleep = RecordingSleep(block_after=7)
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, sleep=sleep, random=lambda: 0.5)

    async with running(session):
        await sim.wait_until(lambda: len(sleep.delays) == 8)

    assert sleep.delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert sim.connections_opened == 8


async def test_a_gateway_that_stops_answering_pings_is_detected_and_left(
    sim: GatewaySimulator, pos: FakePos, caplog: pytest.LogCaptureFixture
) -> None:
    # Pings every 0.1 s; a pong later than 1 s means a dead link (far beyond a loaded machine's stalls).
    settings = settings_for(sim, ping_interval_s=0.1, ping_timeout_s=1.0, close_timeout_s=0.2)
    caplog.set_level("DEBUG", logger="websockets.client")  # frames the bridge receives: "< PONG …"
    sleep = RecordingSleep(block_after=0)
    session = GatewaySession(settings, dispatcher_for(pos).handle_text, sleep=sleep, random=lambda: 0.5)
    seen: list[ConnectionStatus] = []
    session.subscribe(seen.append)

    def pongs() -> int:
        return sum(1 for record in caplog.records if record.getMessage().startswith("< PONG"))

    async with running(session):
        await wait_for_state(session, ConnectionState.CONNECTED)
        await sim.wait_until(lambda: pongs() >= 3, timeout=10, what="three ping/pong rounds")
        assert session.status.state is ConnectionState.CONNECTED  # several rounds passed while the server answers

        sim.stop_answering_pings()
        await sim.wait_until(lambda: sleep.delays == [1.0], timeout=10, what="the dead link to be noticed")
        status = session.status
        assert status.state is ConnectionState.DISCONNECTED
        assert status.last_error is not None
        assert "keepalive ping timeout" in status.last_error

        sim.answer_pings()
        session.reconnect_now()
        await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected)
        await wait_for_state(session, ConnectionState.CONNECTED)
        answer = await sim.request("GetOrderByIdV1", get_order())

    assert answer["result"]["id"] == "order-1"
    assert [s.state for s in seen][:4] == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.DISCONNECTED,
        ConnectionState.CONNECTING,
    ]


@pytest.mark.logs_warnings("a rejected key is logged")
async def test_a_rejected_key_means_auth_failed_at_once_and_a_quick_first_retry(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    sleep = RecordingSleep(block_after=0)
    session = GatewaySession(
        settings_for(sim, credentials=DojoCredentials("sk_sandbox_WRONGKEY123", SOFTWARE_HOUSE_ID)),
        dispatcher_for(pos).handle_text,
        sleep=sleep,
        random=lambda: 0.5,
    )
    seen: list[ConnectionStatus] = []
    session.subscribe(seen.append)

    async with running(session):
        await wait_for_state(session, ConnectionState.AUTH_FAILED)
        await sim.wait_until(lambda: len(sleep.delays) == 1)
        assert sleep.delays == [1.0]
        status = session.status
        assert status.last_error is not None
        assert "401" in status.last_error
        assert "sk_sandbox_WRONGKEY123" not in status.last_error
        assert status.next_retry_at is not None
        assert status.next_retry_at - status.since == dt.timedelta(seconds=1)

        # Staff fix the key in Settings: the session reconnects at once with the new headers.
        session.update_settings(settings_for(sim))
        await wait_for_state(session, ConnectionState.CONNECTED)
        answer = await sim.request("GetOrderByIdV1", get_order())

    assert [h.status for h in sim.handshakes] == [401, 101]
    assert sim.handshakes[1].values("Authorization") == [f"Basic {API_KEY}"]
    assert answer["result"]["id"] == "order-1"
    assert all("WRONGKEY" not in (s.last_error or "") for s in seen)


class ClockedSleep:
    """A pause that moves the fake monotonic clock by its delay and returns at once; blocks once
    ``block_after`` delays were taken, so the test can read what the session decided."""

    def __init__(self, clock: FakeClock, block_after: int) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.block_after = block_after

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) > self.block_after:
            await asyncio.Event().wait()
        self.clock.now += delay
        await asyncio.sleep(0)


def session_on_fake_time(
    sim: GatewaySimulator, pos: FakePos, *, block_after: int
) -> tuple[GatewaySession, ClockedSleep]:
    """A session whose pauses move a fake monotonic clock (see :class:`ClockedSleep`)."""
    sleep = ClockedSleep(FakeClock(), block_after=block_after)
    session = GatewaySession(
        settings_for(sim),
        dispatcher_for(pos).handle_text,
        sleep=sleep,
        clock=sleep.clock,
        random=lambda: 0.5,
        wake_check_s=3600,  # the fake clock leaps; the wake watchdog must not take that for a sleep
    )
    return session, sleep


@pytest.mark.logs_warnings("a rejected key is logged")
async def test_a_rejected_key_follows_the_backoff_for_five_minutes_then_every_five(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    sim.reject_next(1000, status=401)
    session, sleep = session_on_fake_time(sim, pos, block_after=16)
    seen: list[ConnectionState] = []
    session.subscribe(lambda status: seen.append(status.state))

    async with running(session):
        await sim.wait_until(lambda: len(sleep.delays) == 17, what="17 rejected handshakes")
        assert session.status.state is ConnectionState.AUTH_FAILED

    assert sleep.delays == [1, 2, 4, 8, 16, *[30] * 9, 300, 300, 300]
    assert len(sim.handshakes) == 17
    # "Key rejected" from the first refusal on, and not flickering to "connecting" between tries.
    assert seen[:2] == [ConnectionState.CONNECTING, ConnectionState.AUTH_FAILED]
    assert ConnectionState.CONNECTING not in seen[2:-1]


@pytest.mark.logs_warnings("a rejected key is logged")
async def test_reconnect_now_cuts_a_five_minute_auth_retry_short(sim: GatewaySimulator, pos: FakePos) -> None:
    sim.reject_next(15, status=403)
    session, sleep = session_on_fake_time(sim, pos, block_after=14)

    async with running(session):
        await sim.wait_until(lambda: len(sleep.delays) == 15)
        assert sleep.delays[-1] == 300.0
        session.reconnect_now()
        await wait_for_state(session, ConnectionState.CONNECTED)

    assert [h.status for h in sim.handshakes] == [403] * 15 + [101]


@pytest.mark.logs_warnings("a rejected key is logged")
async def test_a_network_change_retries_a_rejected_key_at_once(sim: GatewaySimulator, pos: FakePos) -> None:
    sim.reject_next(1, status=401)
    sleep = RecordingSleep(block_after=0)
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, sleep=sleep, random=lambda: 0.5)

    async with running(session):
        await sim.wait_until(lambda: sleep.delays == [1.0])
        session.network_changed()
        await wait_for_state(session, ConnectionState.CONNECTED)

    assert [h.status for h in sim.handshakes] == [401, 101]


async def test_waking_from_sleep_retries_at_once(sim: GatewaySimulator, pos: FakePos) -> None:
    sim.reject_next(1, status=503)
    sleep = RecordingSleep(block_after=0)
    wall = FakeClock()
    session = GatewaySession(
        settings_for(sim),
        dispatcher_for(pos).handle_text,
        sleep=sleep,
        wall_clock=wall,
        random=lambda: 0.5,
        wake_check_s=0.01,
        wake_jump_s=30,
    )

    async with running(session):
        await sim.wait_until(lambda: sleep.delays == [1.0])
        reads = wall.reads
        # The wake check looks at the wall clock a few times and, rightly, sees no jump.
        await sim.wait_until(lambda: wall.reads >= reads + 3, what="three wake checks")
        assert session.status.state is ConnectionState.DISCONNECTED  # blocked in the pause
        wall.now += 3600  # the laptop was closed for an hour: wall time leapt, monotonic did not
        await wait_for_state(session, ConnectionState.CONNECTED)

    assert [h.status for h in sim.handshakes] == [503, 101]


# --- idempotency across reconnects and restarts ----------------------------------------------


async def test_a_repeated_payment_is_applied_once_across_reconnect_and_restart(
    sim: GatewaySimulator, pos: FakePos, tmp_path: Path
) -> None:
    state_file = tmp_path / "bridge-state.sqlite3"

    async def serve_with_store() -> tuple[IdempotencyStore, Serve]:
        store = IdempotencyStore(state_file)
        await store.open()
        return store, IdempotentServe(store, dispatcher_for(pos).handle)

    store, serve = await serve_with_store()
    session = GatewaySession(settings_for(sim), serve, sleep=RecordingSleep())
    async with running(session):
        await sim.wait_connected()
        first = await sim.request("RecordOrderPaymentByIdV1", payment("pi_1"), id="pay-1")
        await sim.drop_connections()
        await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected)
        again = await sim.request("RecordOrderPaymentByIdV1", payment("pi_1"), id="pay-1")
    await store.close()

    store, serve = await serve_with_store()  # the bridge restarts: new store, new session
    session = GatewaySession(settings_for(sim), serve)
    async with running(session):
        await sim.wait_until(lambda: sim.connections_opened == 3 and sim.connected)
        after_restart = await sim.request("RecordOrderPaymentByIdV1", payment("pi_1"), id="pay-1")
        other = await sim.request("RecordOrderPaymentByIdV1", payment("pi_2", 500), id="pay-2")
    await store.close()

    assert first["result"]["payments"] == [
        {"paidAmount": {"value": 1500, "currencyCode": "GBP"}, "paymentIntentId": "pi_1"}
    ]
    assert again == first
    assert after_restart == first
    assert pos.payments == {
        "pi_1": [Money(value=1500, currency_code="GBP")],
        "pi_2": [Money(value=500, currency_code="GBP")],
    }
    assert len(other["result"]["payments"]) == 2


async def test_a_duplicate_arriving_while_the_first_is_served_waits_for_it(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    pos = FakePos()
    pos.gate = asyncio.Event()  # the POS holds the first payment until both have arrived
    arrived = 0
    async with IdempotencyStore(tmp_path / "state.sqlite3") as store:
        idempotent = IdempotentServe(store, dispatcher_for(pos).handle)

        async def serve(text: str | bytes) -> Served | None:
            nonlocal arrived
            arrived += 1
            return await idempotent(text)

        session = GatewaySession(settings_for(sim), serve)
        async with running(session):
            await sim.wait_connected()
            frame = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "RecordOrderPaymentByIdV1", "params": payment()})
            futures = [sim.expect(7), sim.expect(7)]
            await sim.send_raw(frame)
            await sim.send_raw(frame)
            await sim.wait_until(lambda: arrived == 2 and pos.in_flight == 1, what="the duplicate to arrive")
            pos.gate.set()
            async with asyncio.timeout(5):
                answers = [await future for future in futures]

    assert answers[0] == answers[1]
    assert answers[0]["id"] == 7
    assert len(pos.payments["pi_1"]) == 1


# --- stopping and observing -----------------------------------------------------------------


async def test_clean_stop_finishes_in_flight_requests_then_closes_with_1001(sim: GatewaySimulator) -> None:
    pos = FakePos()
    pos.gate = asyncio.Event()  # the request stays in flight until the session is stopping
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text)
    states: list[ConnectionState] = []
    session.subscribe(lambda status: states.append(status.state))
    task = asyncio.create_task(session.run())
    await sim.wait_connected()
    answer = sim.expect("slow")
    await sim.send_raw(json.dumps({"jsonrpc": "2.0", "id": "slow", "method": "GetOrderByIdV1", "params": get_order()}))
    await sim.wait_until(lambda: pos.in_flight == 1)

    async with asyncio.timeout(5):
        stopping = asyncio.create_task(session.stop())
        await wait_for_state(session, ConnectionState.STOPPING)
        assert not answer.done()
        pos.gate.set()  # the request finishes while the session is stopping
        await stopping
        await task

    assert answer.done() and answer.result()["result"]["id"] == "order-1"
    await sim.wait_until(lambda: sim.connections_closed == 1)
    assert sim.close_codes == [1001]
    assert session.status.state is ConnectionState.DISCONNECTED
    assert states[-2:] == [ConnectionState.STOPPING, ConnectionState.DISCONNECTED]


@pytest.mark.logs_warnings("requests cancelled at the stop deadline are logged")
async def test_stop_gives_up_on_requests_past_the_deadline(sim: GatewaySimulator) -> None:
    pos = FakePos()
    pos.gate = asyncio.Event()  # never opened: the POS hangs
    session = GatewaySession(settings_for(sim, stop_deadline_s=0.2), dispatcher_for(pos).handle_text)
    task = asyncio.create_task(session.run())
    await sim.wait_connected()
    await sim.send_raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetOrderByIdV1", "params": get_order()}))
    await sim.wait_until(lambda: pos.in_flight == 1)

    async with asyncio.timeout(3):
        await session.stop()
        await task

    assert pos.in_flight == 0
    await sim.wait_until(lambda: sim.connections_closed == 1)
    assert sim.close_codes == [1001]


@pytest.mark.logs_warnings("a failing subscriber is logged")
async def test_a_broken_status_subscriber_or_on_served_cannot_break_the_session(
    sim: GatewaySimulator, pos: FakePos
) -> None:
    served: list[Served] = []

    def broken(status: ConnectionStatus) -> None:
        raise RuntimeError("the window was closed")

    def log_line(item: Served) -> None:
        served.append(item)
        raise RuntimeError("log disk full")

    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, on_served=log_line)
    session.subscribe(broken)

    async with running(session):
        await sim.wait_connected()
        first = await sim.request("GetOrderByIdV1", get_order())
        second = await sim.request("GetOrderByIdV1", get_order("missing"))

    assert first["result"]["id"] == "order-1"
    assert second["error"]["errorType"] == "NotFound"
    assert [(s.method, s.outcome) for s in served] == [("GetOrderByIdV1", "ok"), ("GetOrderByIdV1", "NotFound")]


async def test_the_api_key_never_reaches_the_logs(
    sim: GatewaySimulator, pos: FakePos, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    sim.reject_next(1, status=401)
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, sleep=RecordingSleep())

    async with running(session):
        await wait_for_state(session, ConnectionState.CONNECTED)
        await sim.request("GetOrderByIdV1", get_order())

    assert "rejected the API key (HTTP 401)" in caplog.text
    assert API_KEY not in caplog.text


async def test_websockets_debug_logging_of_the_handshake_is_redacted(
    sim: GatewaySimulator, pos: FakePos, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="websockets")
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text)

    async with running(session):
        await sim.wait_connected()

    assert "> Authorization: Basic «redacted»" in caplog.text
    assert API_KEY not in caplog.text


async def test_unusable_settings_wait_for_new_ones_instead_of_retrying(sim: GatewaySimulator, pos: FakePos) -> None:
    # A SOCKS proxy needs python-socks, which the bridge does not ship: retrying cannot help.
    sleep = RecordingSleep()
    session = GatewaySession(
        # wss://: a plain-text (loopback) URL is never sent through a proxy at all.
        settings_for(sim, ws_url="wss://127.0.0.1:9/epos", proxy="socks5h://127.0.0.1:9"),
        dispatcher_for(pos).handle_text,
        sleep=sleep,
    )

    async with running(session):
        await sim.wait_until(lambda: session.status.last_error is not None)
        await asyncio.sleep(0.05)
        assert session.status.state is ConnectionState.DISCONNECTED
        assert "python-socks" in (session.status.last_error or "")
        assert sleep.delays == []

        session.update_settings(settings_for(sim))
        await wait_for_state(session, ConnectionState.CONNECTED)

    assert sim.connections_opened == 1


async def test_reconnect_now_closes_politely_and_connects_again(sim: GatewaySimulator, pos: FakePos) -> None:
    sleep = RecordingSleep()
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text, sleep=sleep)

    async with running(session):
        await wait_for_state(session, ConnectionState.CONNECTED)
        session.reconnect_now()
        await sim.wait_until(lambda: sim.connections_opened == 2 and sim.connected)
        answer = await sim.request("GetOrderByIdV1", get_order())

    assert sim.close_codes[0] == 1000
    assert sleep.delays == []  # a requested reconnect does not wait
    assert answer["result"]["id"] == "order-1"


async def test_cancelling_run_does_not_leave_the_socket_open(sim: GatewaySimulator, pos: FakePos) -> None:
    session = GatewaySession(settings_for(sim), dispatcher_for(pos).handle_text)
    task = asyncio.create_task(session.run())
    await wait_for_state(session, ConnectionState.CONNECTED)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await sim.wait_until(lambda: sim.connections_closed == 1)
    assert session.status.state is ConnectionState.DISCONNECTED
