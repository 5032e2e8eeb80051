"""The real DojoClient against the real RestSimulator on 127.0.0.1 (no real Dojo endpoint, ever)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest

from epos_bridge.dojo_api import (
    AuthRejected,
    ConflictError,
    DojoClient,
    InvalidRequestError,
    MatchedRefundDetails,
    Money,
    NotFoundError,
    PosEventType,
    SaleDetails,
    ServerError,
    TerminalSession,
    TerminalStatus,
    UnlinkedRefundDetails,
)
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.sim.rest import RestSimulator
from tests.helpers.contract import contract_dir
from tests.helpers.fakes import Sleeps
from tests.helpers.waiting import until

API_KEY = "sk_sandbox_fake_SimIntegrationKey_77"
HOUSE = "sh_epos_bridge_tests"
GBP_12_50 = Money(value=1250, currency_code="GBP")


@pytest.fixture
async def sim() -> AsyncIterator[RestSimulator]:
    async with RestSimulator(API_KEY, HOUSE) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sim: RestSimulator, http: httpx.AsyncClient, sleeps: Sleeps) -> DojoClient:
    return DojoClient(
        http,
        credentials=DojoCredentials(API_KEY, HOUSE, reseller_id="rs_1"),
        base_url=sim.base_url,
        allow_insecure=True,  # the simulator speaks plain HTTP on 127.0.0.1
        sleep=sleeps,
    )


async def poll_until_final_or(client: DojoClient, session_id: str, stop_at: str | None = None) -> list[TerminalSession]:
    """Poll like the bridge does (without the 1 s wait) and keep every snapshot."""
    seen: list[TerminalSession] = []
    for _ in range(20):
        session = await client.get_terminal_session(session_id)
        seen.append(session)
        if session.is_final or session.status == stop_at:
            return seen
    raise AssertionError(f"session never finished: {[s.status for s in seen]}")


async def test_simulator_listens_on_loopback(sim: RestSimulator) -> None:
    assert sim.base_url.startswith("http://127.0.0.1:")
    assert not sim.base_url.endswith(":0")


async def test_a_client_that_goes_away_mid_body_is_not_a_server_error(sim: RestSimulator) -> None:
    """A bridge cancelling a call (its settings saved mid-registration) drops the connection before
    its body is sent: the simulator must take that quietly, or the suite's log check fails whichever
    test happened to cancel at that moment."""
    url = httpx.URL(sim.base_url)
    _, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"PUT /epos/integrations/ws HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"partial":'
    )
    await writer.drain()
    await until(lambda: sim.requests_begun == 1, "the simulator to start reading the body")
    writer.transport.abort()
    await until(lambda: sim.requests_abandoned == 1, "the simulator to see the client go away")
    assert sim.requests == []


async def test_register_then_read_back_and_compare(client: DojoClient, sim: RestSimulator) -> None:
    implemented = {Capability.GET_ORDER_BY_ID, Capability.SEARCH_ORDERS, Capability.RECORD_ORDER_PAYMENT_BY_ID}

    registered = await client.register_capabilities(implemented)
    integrations = await client.get_integrations()

    assert [c.name for c in registered[0].capabilities] == ["GetOrderById", "RecordOrderPaymentById", "SearchOrders"]
    report = integrations.compare(implemented)
    assert report.in_sync and report.matching == implemented
    put = sim.requests_to("PUT", "/epos/integrations/ws")[0]
    assert put.headers["Authorization"] == f"Basic {API_KEY}"
    assert put.headers["software-house-id"] == HOUSE and put.headers["version"] == "2026-02-27"


async def test_legacy_names_at_dojo_compare_equal(client: DojoClient, sim: RestSimulator) -> None:
    sim.set_registered_names(["GetOrderBill", "UpdatePartyById", "GetOrderById"])
    report = (await client.get_integrations()).compare(
        {Capability.GET_ORDER_BILL_BY_ID, Capability.UPDATE_PARTY, Capability.GET_ORDER_BY_ID}
    )
    assert report.in_sync


async def test_wrong_key_is_auth_rejected(sim: RestSimulator, http: httpx.AsyncClient) -> None:
    wrong = DojoClient(
        http, credentials=DojoCredentials("sk_sandbox_wrong_key_1", HOUSE), base_url=sim.base_url, allow_insecure=True
    )
    with pytest.raises(AuthRejected, match=r"rejected by Dojo \(401\)") as caught:
        await wrong.list_terminals()
    assert caught.value.trace_id is not None
    assert "sk_sandbox_wrong_key_1" not in str(caught.value)


async def test_terminals_and_status_filter(client: DojoClient, sim: RestSimulator) -> None:
    everything = await client.list_terminals()
    assert {t.status for t in everything} == {"Available", "InUse", "Offline"}

    available = await client.list_terminals([TerminalStatus.AVAILABLE, TerminalStatus.OFFLINE])
    assert {t.status for t in available} == {"Available", "Offline"}
    assert sim.requests[-1].query == [("statuses", "Available"), ("statuses", "Offline")]

    one = await client.get_terminal(available[0].id)
    assert one.id == available[0].id and one.tid
    with pytest.raises(NotFoundError):
        await client.get_terminal("tm_missing")


async def test_sale_is_polled_to_captured_and_the_intent_follows(client: DojoClient, sim: RestSimulator) -> None:
    intent = await client.create_payment_intent(
        GBP_12_50, "Table 12", metadata={"orderId": "O-1"}, order_external_id="O-1"
    )
    assert intent.id is not None and intent.id.startswith("pi_sim_") and intent.status == "Created"
    assert sim.payment_intents[intent.id]["metadata"] == {"orderId": "O-1"}

    started = await client.create_terminal_session("tm_sim_counter", SaleDetails(intent.id))
    assert started.status == "InitiateRequested"
    assert (await client.get_terminal("tm_sim_counter")).status == "InUse"

    seen = await poll_until_final_or(client, started.id)

    assert [s.latest_notification for s in seen] == ["PresentCard", "EnterPin", "PleaseWait", "Approved"]
    assert seen[-1].status == "Captured" and seen[-1].payment_details is not None
    assert [e.status for e in seen[-1].status_events] == ["InitiateRequested", "Initiated", "Captured"]
    captured = await client.get_payment_intent(intent.id)
    assert captured.status == "Captured" and captured.reference == "Table 12"
    assert (await client.get_terminal("tm_sim_counter")).status == "Available"

    refund = await client.create_terminal_session("tm_sim_counter", MatchedRefundDetails(intent.id))
    assert (await poll_until_final_or(client, refund.id))[-1].status == "Captured"
    refunded = await client.get_payment_intent(intent.id)
    assert refunded.status == "Refunded" and refunded.refunded_amount == 1250


async def test_declined_sale(client: DojoClient, sim: RestSimulator) -> None:
    intent = await client.create_payment_intent(GBP_12_50, "decline me")
    assert intent.id is not None
    sim.next_session_script("decline")

    session = await client.create_terminal_session("tm_sim_counter", SaleDetails(intent.id))
    seen = await poll_until_final_or(client, session.id)

    assert seen[-1].status == "Declined" and seen[-1].latest_notification == "Declined"
    assert (await client.get_payment_intent(intent.id)).status == "Created"  # still payable


@pytest.mark.parametrize(
    ("accepted", "final", "intent_status"),
    [(True, "SignatureVerificationAccepted", "Captured"), (False, "SignatureVerificationRejected", "Reversed")],
)
async def test_signature_accept_or_reject(
    client: DojoClient, sim: RestSimulator, accepted: bool, final: str, intent_status: str
) -> None:
    intent = await client.create_payment_intent(GBP_12_50, "signature")
    assert intent.id is not None
    sim.set_terminal_script("tm_sim_counter", "signature")
    session = await client.create_terminal_session("tm_sim_counter", SaleDetails(intent.id))

    seen = await poll_until_final_or(client, session.id, stop_at="SignatureVerificationRequired")
    assert seen[-1].awaiting_signature

    answered = await client.answer_signature(session.id, accepted)
    assert answered.status == final and answered.is_final
    assert (await client.get_payment_intent(intent.id)).status == intent_status
    with pytest.raises(InvalidRequestError, match="422"):
        await client.answer_signature(session.id, accepted)  # no longer awaiting


async def test_cancel_then_cancel_again_is_refused(client: DojoClient) -> None:
    intent = await client.create_payment_intent(GBP_12_50, "cancel")
    assert intent.id is not None
    session = await client.create_terminal_session("tm_sim_counter", SaleDetails(intent.id))
    await client.get_terminal_session(session.id)

    requested = await client.cancel_terminal_session(session.id)
    assert requested.status == "CancelRequested"
    assert (await client.get_terminal_session(session.id)).status == "Canceled"

    with pytest.raises(InvalidRequestError) as caught:
        await client.cancel_terminal_session(session.id)
    assert caught.value.status == 422 and caught.value.trace_id


async def test_expired_session_and_unlinked_refund(client: DojoClient, sim: RestSimulator) -> None:
    sim.next_session_script("expire")
    refund = await client.create_terminal_session(
        "tm_sim_counter", UnlinkedRefundDetails(Money(value=300, currency_code="GBP"))
    )
    assert (await poll_until_final_or(client, refund.id))[-1].status == "Expired"


async def test_busy_or_offline_terminal_is_refused(client: DojoClient) -> None:
    intent = await client.create_payment_intent(GBP_12_50, "busy")
    assert intent.id is not None
    with pytest.raises(InvalidRequestError, match="Offline"):
        await client.create_terminal_session("tm_sim_patio", SaleDetails(intent.id))


async def test_canceled_intent_needs_return_canceled_and_reversal_conflicts(
    client: DojoClient, sim: RestSimulator
) -> None:
    intent = await client.create_payment_intent(GBP_12_50, "void")
    assert intent.id is not None
    with pytest.raises(ConflictError):
        await client.reverse_payment_intent(intent.id)  # nothing taken yet
    sim.cancel_payment_intent(intent.id)
    with pytest.raises(NotFoundError):
        await client.get_payment_intent(intent.id)
    assert (await client.get_payment_intent(intent.id, return_canceled=True)).status == "Canceled"


async def test_reversal_of_a_captured_sale(client: DojoClient) -> None:
    intent = await client.create_payment_intent(GBP_12_50, "reverse")
    assert intent.id is not None
    session = await client.create_terminal_session("tm_sim_counter", SaleDetails(intent.id))
    await poll_until_final_or(client, session.id)
    reversal = await client.reverse_payment_intent(intent.id)
    assert reversal.effective_id and reversal.effective_id.startswith("rv_sim_")
    assert (await client.get_payment_intent(intent.id)).status == "Reversed"


async def test_events_fail_then_recover(client: DojoClient, sim: RestSimulator, sleeps: Sleeps) -> None:
    sim.fail_events(503)
    with pytest.raises(ServerError, match="503"):
        await client.post_event(PosEventType.ORDER_UPDATED, "orderId", "O-9")
    assert len(sim.requests_to("POST", "/epos/events")) == 4  # retried, then surfaced
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert sim.events == []

    sim.restore_events()
    await client.post_event(PosEventType.ORDER_UPDATED, "orderId", "O-9")
    await client.post_event(PosEventType.RESERVATION_UPDATED, "reservationId", "R-1")
    assert sim.events == [
        {"eventType": "OrderUpdated", "event": {"orderId": "O-9"}},
        {"eventType": "ReservationUpdated", "event": {"reservationId": "R-1"}},
    ]


async def test_refused_payment_intent_is_sent_once_and_explained(client: DojoClient, sim: RestSimulator) -> None:
    with pytest.raises(ValueError, match="1 to 60"):
        await client.create_payment_intent(GBP_12_50, "x" * 61)  # refused before sending
    with pytest.raises(InvalidRequestError) as caught:
        await client.create_payment_intent(Money(value=100, currency_code="NOT-A-CURRENCY"), "bad money")
    assert len(sim.requests_to("POST", "/payment-intents")) == 1
    assert caught.value.field_errors == {"amount": ["invalid"]}
    assert caught.value.trace_id is not None  # read from ProblemDetails.extensions


@cache
def rest_schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((contract_dir() / "dojo-rest.schema.json").read_text())
    return document


def assert_response_valid(endpoint: str, status: int, body: Any) -> None:
    """The simulator must answer in the published shapes, so the client is tested against the contract."""
    schema = {"$defs": rest_schema()["$defs"], **rest_schema()["endpoints"][endpoint]["responses"][str(status)]}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(body)


async def test_simulator_answers_match_the_published_schemas(sim: RestSimulator, http: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Basic {API_KEY}", "software-house-id": HOUSE, "version": "2026-02-27"}
    base = sim.base_url

    async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = await http.request(method, base + path, json=body, headers=headers)
        return response.status_code, response.json()

    checks: list[tuple[str, tuple[int, Any]]] = [
        (
            "PUT /epos/integrations/ws",
            await call("PUT", "/epos/integrations/ws", {"capabilities": [{"name": "GetOrderById", "version": "v1"}]}),
        ),
        ("GET /epos/integrations", await call("GET", "/epos/integrations")),
        ("GET /epos/integrations/ws", await call("GET", "/epos/integrations/ws")),
        ("GET /terminals", await call("GET", "/terminals")),
        ("GET /terminals/{terminalId}", await call("GET", "/terminals/tm_sim_counter")),
        ("GET /terminals/{terminalId}", await call("GET", "/terminals/tm_nope")),
        (
            "POST /payment-intents",
            await call("POST", "/payment-intents", {"amount": {"value": 1, "currencyCode": "GBP"}}),
        ),
        (
            "POST /epos/events",
            await call("POST", "/epos/events", {"eventType": "OrderUpdated", "event": {"orderId": "1"}}),
        ),
    ]
    status, intent = await call(
        "POST", "/payment-intents", {"amount": {"value": 1, "currencyCode": "GBP"}, "reference": "r"}
    )
    checks.append(("POST /payment-intents", (status, intent)))
    details = {"sessionType": "Sale", "sale": {"paymentIntentId": intent["id"]}}
    status, session = await call("POST", "/terminal-sessions", {"terminalId": "tm_sim_counter", "details": details})
    checks.append(("POST /terminal-sessions", (status, session)))
    for _ in range(5):
        checks.append(
            ("GET /terminal-sessions/{terminalSessionId}", await call("GET", f"/terminal-sessions/{session['id']}"))
        )
    checks += [
        (
            "PUT /terminal-sessions/{terminalSessionId}/cancel",
            await call("PUT", f"/terminal-sessions/{session['id']}/cancel"),
        ),
        ("GET /payment-intents/{paymentIntentId}", await call("GET", f"/payment-intents/{intent['id']}")),
        (
            "POST /payment-intents/{paymentIntentId}/reversal",
            await call("POST", f"/payment-intents/{intent['id']}/reversal"),
        ),
        (
            "POST /payment-intents/{paymentIntentId}/reversal",
            await call("POST", f"/payment-intents/{intent['id']}/reversal"),
        ),
    ]
    statuses = set()
    for endpoint, (status, body) in checks:
        assert_response_valid(endpoint, status, body)
        statuses.add(status)
    assert statuses == {200, 400, 404, 409, 422}


async def test_sessions_can_also_advance_with_time(http: httpx.AsyncClient) -> None:
    """Demo mode: one step per interval, however often the bridge polls."""
    now = [100.0]
    async with RestSimulator(API_KEY, HOUSE, step_interval=1.0, clock=lambda: now[0]) as timed:
        client = DojoClient(
            http, credentials=DojoCredentials(API_KEY, HOUSE), base_url=timed.base_url, allow_insecure=True
        )
        intent = await client.create_payment_intent(GBP_12_50, "timed")
        assert intent.id is not None
        session = await client.create_terminal_session("tm_sim_counter", SaleDetails(intent.id))
        assert (await client.get_terminal_session(session.id)).status == "InitiateRequested"
        assert (
            await client.get_terminal_session(session.id)
        ).status == "InitiateRequested"  # polls alone don't move it
        now[0] += 2.5
        assert (await client.get_terminal_session(session.id)).latest_notification == "EnterPin"
        now[0] += 10
        assert (await client.get_terminal_session(session.id)).status == "Captured"
