"""The Dojo REST client over httpx.MockTransport: headers, bodies, error shapes, retry policy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest

from epos_bridge.dojo_api import (
    AuthRejected,
    ConflictError,
    DojoApiError,
    DojoClient,
    InsecureEndpointError,
    InvalidRequestError,
    MatchedRefundDetails,
    Money,
    NetworkError,
    NotFoundError,
    PosEventType,
    SaleDetails,
    ServerError,
    TerminalStatus,
    UnexpectedResponseError,
    UnlinkedRefundDetails,
    backoff_delay,
)
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.entities import Money as WireMoney
from tests.helpers.contract import contract_dir
from tests.helpers.fakes import Sleeps

API_KEY = "sk_sandbox_UnitTestKey_4f1c2e"
BASE = "https://api.dojo.tech"
Handler = Callable[[httpx.Request], httpx.Response]


@cache
def rest_schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((contract_dir() / "dojo-rest.schema.json").read_text())
    return document


def assert_request_body_valid(endpoint: str, body: Any) -> None:
    """What the client sends must pass the published request schema exactly (§5)."""
    ref = rest_schema()["endpoints"][endpoint]["requestBody"]["$ref"]
    jsonschema.Draft202012Validator({"$defs": rest_schema()["$defs"], "$ref": ref}).validate(body)


class Recorder:
    """A MockTransport handler that answers from a queue and keeps every request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_client(sleeps: Sleeps) -> AsyncIterator[Callable[..., DojoClient]]:
    clients: list[httpx.AsyncClient] = []

    def build(handler: Handler, **options: Any) -> DojoClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(http)
        ids: dict[str, Any] = {"api_key": API_KEY, "software_house_id": "sh_epos_bridge", "reseller_id": "rs_42"}
        ids.update((name, options.pop(name)) for name in list(options) if name in ids)
        settings: dict[str, Any] = {"credentials": DojoCredentials(**ids), "base_url": BASE, "sleep": sleeps}
        settings.update(options)
        return DojoClient(http, **settings)

    yield build
    for http in clients:
        await http.aclose()


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


TERMINAL = {"id": "tm_1", "properties": {"tid": "12345678"}, "status": "Available", "updatedAt": "2026-01-01T10:00:00Z"}
SESSION = {
    "id": "ts_1",
    "terminalId": "tm_1",
    "status": "Initiated",
    "createdAt": "2026-01-01T10:00:00Z",
    "updatedAt": "2026-01-01T10:00:01Z",
    "expireAt": "2026-01-01T10:05:00Z",
    "notificationEvents": [{"notificationType": "PresentCard", "createdAt": "2026-01-01T10:00:01Z"}],
    "statusEvents": [],
}


# --- headers -----------------------------------------------------------------------------------


async def test_every_call_carries_the_dojo_headers_byte_for_byte(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([TERMINAL]))
    client = make_client(recorder)

    await client.list_terminals()

    request = recorder.requests[0]
    raw = {name.decode(): value.decode() for name, value in request.headers.raw}
    assert raw["Authorization"] == "Basic sk_sandbox_UnitTestKey_4f1c2e"  # raw key, never base64
    assert raw["version"] == "2026-02-27"
    assert raw["software-house-id"] == "sh_epos_bridge"
    assert raw["reseller-id"] == "rs_42"
    assert raw["Accept"] == "application/json"
    assert raw["Content-Type"] == "application/json"
    assert str(request.url) == "https://api.dojo.tech/terminals"


async def test_reseller_id_is_left_out_when_not_configured(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok({"wsIntegrations": [], "restIntegrations": []}))
    client = make_client(recorder, reseller_id=None)
    await client.get_integrations()
    assert "reseller-id" not in recorder.requests[0].headers
    assert recorder.requests[0].headers["version"] == "2026-02-27"  # sent on /epos/* too (§5.1 rec)


def test_plain_http_base_url_is_refused_unless_allowed(make_client: Callable[..., DojoClient]) -> None:
    with pytest.raises(InsecureEndpointError, match="EPOS_BRIDGE_ALLOW_INSECURE=1"):
        make_client(Recorder(ok({})), base_url="http://127.0.0.1:9000")
    client = make_client(Recorder(ok({})), base_url="http://127.0.0.1:9000/", allow_insecure=True)
    assert client.base_url == "http://127.0.0.1:9000"
    assert client.environment == "sandbox"
    assert API_KEY not in repr(client)


# --- registration ------------------------------------------------------------------------------


async def test_registration_sends_exactly_the_given_capabilities_sorted(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([{"capabilities": [], "createdAt": "2026-01-01T00:00:00Z"}]))
    client = make_client(recorder)
    given = [Capability.SEARCH_ORDERS, Capability.GET_ORDER_BY_ID, Capability.HANDLE_PAYMENT_INTENT_CREATED]

    await client.register_capabilities(given)

    request = recorder.requests[0]
    assert (request.method, request.url.path) == ("PUT", "/epos/integrations/ws")
    assert recorder.body() == {
        "capabilities": [
            {"name": "GetOrderById", "version": "v1"},
            {"name": "HandleEvent:payment_intent.created", "version": "v1"},
            {"name": "SearchOrders", "version": "v1"},
        ]
    }
    assert_request_body_valid("PUT /epos/integrations/ws", recorder.body())


async def test_legacy_names_from_dojo_compare_equal(make_client: Callable[..., DojoClient]) -> None:
    registered = {
        "wsIntegrations": [
            {
                "capabilities": [
                    {"name": "GetOrderBill", "version": "v1", "updatedAt": "2026-01-01T00:00:00Z"},
                    {"name": "RecordOrderPayment", "version": "v1"},  # updatedAt missing, as in Dojo's examples
                    {"name": "GetOrderById", "version": "v1"},
                    {"name": "GetOrder", "version": "1.0.0"},  # §6 A2: exists nowhere else
                ],
                "createdAt": "2026-01-01T00:00:00Z",
            }
        ],
        "restIntegrations": [],
        "somethingNew": True,
    }
    client = make_client(Recorder(ok(registered)))

    integrations = await client.get_integrations()
    report = integrations.compare(
        {Capability.GET_ORDER_BILL_BY_ID, Capability.RECORD_ORDER_PAYMENT_BY_ID, Capability.SEARCH_ORDERS}
    )

    assert report.matching == {Capability.GET_ORDER_BILL_BY_ID, Capability.RECORD_ORDER_PAYMENT_BY_ID}
    assert report.missing_at_dojo == {Capability.SEARCH_ORDERS}
    assert report.extra_at_dojo == {Capability.GET_ORDER_BY_ID}
    assert report.unknown_at_dojo == {"GetOrder"}
    assert not report.in_sync


# --- POS events --------------------------------------------------------------------------------


async def test_post_event_pairs_type_and_id(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok({"eventType": "PartyUpdated", "event": {"partyId": "P1"}}))
    client = make_client(recorder)

    await client.post_event(PosEventType.PARTY_UPDATED, "partyId", "P1")

    assert recorder.body() == {"eventType": "PartyUpdated", "event": {"partyId": "P1"}}
    assert_request_body_valid("POST /epos/events", recorder.body())
    with pytest.raises(ValueError, match="OrderUpdated travels with orderId"):
        await client.post_event("OrderUpdated", "partyId", "P1")
    assert len(recorder.requests) == 1  # the mismatch never left the till


# --- terminals, payment intents, sessions: request shapes ------------------------------------


async def test_list_terminals_repeats_the_statuses_key(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([TERMINAL, {**TERMINAL, "id": "tm_2", "status": "Asleep", "extra": 1}]))
    client = make_client(recorder)

    terminals = await client.list_terminals([TerminalStatus.AVAILABLE, TerminalStatus.IN_USE])

    assert recorder.requests[0].url.query == b"statuses=Available&statuses=InUse"
    assert [t.id for t in terminals] == ["tm_1", "tm_2"]
    assert terminals[0].tid == "12345678"
    assert terminals[1].status == "Asleep"  # an unknown status never breaks the list (§6 E2)


async def test_create_payment_intent_body(make_client: Callable[..., DojoClient]) -> None:
    intent = {"id": "pi_1", "status": "Created", "amount": {"value": 1250, "currencyCode": "GBP"}, "paymentEvents": []}
    recorder = Recorder(ok(intent))
    client = make_client(recorder)

    created = await client.create_payment_intent(
        WireMoney(value=1250, currency_code="GBP"),
        "Table 12",
        metadata={"orderId": "O-77"},
        order_external_id="O-77",
        description="Dinner",
    )

    assert recorder.body() == {
        "amount": {"value": 1250, "currencyCode": "GBP"},
        "reference": "Table 12",
        "description": "Dinner",
        "metadata": {"orderId": "O-77"},
        "orderDetails": {"externalId": "O-77"},
    }
    assert_request_body_valid("POST /payment-intents", recorder.body())
    assert created.id == "pi_1" and created.amount == Money(value=1250, currency_code="GBP")


async def test_get_payment_intent_asks_for_canceled_only_when_told(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok({"id": "pi/1", "status": "Canceled"}))
    client = make_client(recorder)
    await client.get_payment_intent("pi/1")
    await client.get_payment_intent("pi/1", return_canceled=True)
    assert recorder.requests[0].url.raw_path == b"/payment-intents/pi%2F1"  # an id is one path segment
    assert recorder.requests[1].url.params["returnCanceled"] == "true"


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        (SaleDetails("pi_1"), {"sessionType": "Sale", "sale": {"paymentIntentId": "pi_1"}}),
        (
            MatchedRefundDetails("pi_1", Money(value=500, currency_code="GBP")),
            {
                "sessionType": "MatchedRefund",
                "matchedRefund": {"paymentIntentId": "pi_1", "amount": {"value": 500, "currencyCode": "GBP"}},
            },
        ),
        (
            UnlinkedRefundDetails(WireMoney(value=300, currency_code="GBP")),
            {"sessionType": "UnlinkedRefund", "unlinkedRefund": {"amount": {"value": 300, "currencyCode": "GBP"}}},
        ),
    ],
)
async def test_terminal_session_bodies(
    make_client: Callable[..., DojoClient], details: Any, expected: dict[str, Any]
) -> None:
    recorder = Recorder(ok(SESSION))
    client = make_client(recorder)

    session = await client.create_terminal_session("tm_1", details)

    assert recorder.body() == {"terminalId": "tm_1", "details": expected}
    assert_request_body_valid("POST /terminal-sessions", recorder.body())
    assert session.latest_notification == "PresentCard" and not session.is_final


async def test_signature_answer_body(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok({**SESSION, "status": "SignatureVerificationAccepted", "customerReceipt": ["x"]}))
    client = make_client(recorder)
    session = await client.answer_signature("ts_1", accepted=True)
    assert (recorder.requests[0].method, recorder.requests[0].url.path) == ("PUT", "/terminal-sessions/ts_1/signature")
    assert recorder.body() == {"accepted": True}
    assert session.is_final and session.customer_receipt == ["x"]


# --- errors ------------------------------------------------------------------------------------


async def test_401_is_auth_rejected_with_the_friendly_text(make_client: Callable[..., DojoClient]) -> None:
    client = make_client(Recorder(ok({"title": "Unauthorized", "detail": f"bad key {API_KEY}"}, 401)))
    with pytest.raises(AuthRejected) as caught:
        await client.get_terminal("tm_1")
    assert str(caught.value) == "The API key was rejected by Dojo (401). Check it in Settings → API key."
    assert caught.value.status == 401
    assert API_KEY not in (caught.value.detail or "")


async def test_terminals_error_shape_is_parsed(make_client: Callable[..., DojoClient]) -> None:
    body = {
        "code": "INVALID_REQUEST",
        "title": "Invalid request",
        "type": "https://docs.dojo.tech/errors",
        "status": 400,
        "traceId": "trace-terminals",
        "errors": {"statuses": ["'Sleeping' is not valid"]},
    }
    client = make_client(Recorder(ok(body, 400)))
    with pytest.raises(InvalidRequestError) as caught:
        await client.list_terminals(["Sleeping"])
    error = caught.value
    assert (error.status, error.code, error.trace_id) == (400, "INVALID_REQUEST", "trace-terminals")
    assert error.field_errors == {"statuses": ["'Sleeping' is not valid"]}
    assert "statuses: 'Sleeping' is not valid" in str(error) and "trace-terminals" in str(error)


async def test_terminal_sessions_error_shape_with_nulls_is_parsed(make_client: Callable[..., DojoClient]) -> None:
    body = {
        "type": None,
        "title": "Unprocessable",
        "status": None,
        "detail": "Session is final",
        "traceId": "t-ts",
        "errors": None,
    }
    client = make_client(Recorder(ok(body, 422)))
    with pytest.raises(InvalidRequestError) as caught:
        await client.cancel_terminal_session("ts_1")
    assert caught.value.status == 422  # taken from the HTTP line, not the null in the body
    assert caught.value.detail == "Session is final" and caught.value.trace_id == "t-ts"
    assert caught.value.field_errors == {}


async def test_problem_details_shape_is_parsed(make_client: Callable[..., DojoClient]) -> None:
    body = {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Cannot reverse",
        "instance": "/x",
        "extensions": {"traceId": "t-pd"},
    }
    client = make_client(Recorder(ok(body, 409)))
    with pytest.raises(ConflictError) as caught:
        await client.reverse_payment_intent("pi_1")
    assert (caught.value.title, caught.value.detail, caught.value.trace_id) == ("Conflict", "Cannot reverse", "t-pd")


async def test_not_found_and_non_json_error_bodies(make_client: Callable[..., DojoClient]) -> None:
    client = make_client(Recorder(httpx.Response(404, text="<html>nope</html>")))
    with pytest.raises(NotFoundError) as caught:
        await client.get_terminal_session("ts_x")
    assert caught.value.status == 404 and caught.value.title is None


async def test_unreadable_success_body_is_unexpected_response(make_client: Callable[..., DojoClient]) -> None:
    client = make_client(Recorder(ok({"status": "Captured"})))  # a session without an id
    with pytest.raises(UnexpectedResponseError, match="could not be read"):
        await client.get_terminal_session("ts_1")


# --- retry policy ------------------------------------------------------------------------------


async def test_5xx_is_retried_with_backoff_then_surfaced(
    make_client: Callable[..., DojoClient], sleeps: Sleeps
) -> None:
    recorder = Recorder(ok({"title": "Service Unavailable"}, 503))
    client = make_client(recorder)

    with pytest.raises(ServerError) as caught:
        await client.get_integrations()

    assert len(recorder.requests) == 4  # first try + max_retries=3
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert "(503)" in str(caught.value) and "Try again" in str(caught.value)


async def test_5xx_then_success_recovers(make_client: Callable[..., DojoClient], sleeps: Sleeps) -> None:
    recorder = Recorder(ok({}, 502), ok({}, 500), ok([TERMINAL]))
    client = make_client(recorder)
    terminals = await client.list_terminals()
    assert [t.id for t in terminals] == ["tm_1"]
    assert sleeps.delays == [0.5, 1.0]


async def test_4xx_is_not_retried(make_client: Callable[..., DojoClient], sleeps: Sleeps) -> None:
    recorder = Recorder(ok({"title": "Bad"}, 400))
    client = make_client(recorder)
    with pytest.raises(InvalidRequestError):
        await client.register_capabilities([Capability.GET_ORDER_BY_ID])
    assert len(recorder.requests) == 1 and sleeps.delays == []


async def test_timeouts_become_network_errors_after_retries(
    make_client: Callable[..., DojoClient], sleeps: Sleeps
) -> None:
    recorder = Recorder(httpx.ReadTimeout("timed out"))
    client = make_client(recorder, max_retries=2)
    with pytest.raises(NetworkError) as caught:
        await client.get_terminal("tm_1")
    assert len(recorder.requests) == 3 and sleeps.delays == [0.5, 1.0]
    assert caught.value.status is None and "in time" in str(caught.value)


async def test_connect_error_is_a_network_error(make_client: Callable[..., DojoClient]) -> None:
    client = make_client(Recorder(httpx.ConnectError("connection refused")), max_retries=0)
    with pytest.raises(NetworkError, match="Could not reach Dojo"):
        await client.list_terminals()


@pytest.mark.parametrize("failure", [ok({"title": "Gateway timeout"}, 504), httpx.ReadTimeout("timed out")])
async def test_create_payment_intent_is_never_retried(
    make_client: Callable[..., DojoClient], sleeps: Sleeps, failure: httpx.Response | Exception
) -> None:
    recorder = Recorder(failure)
    client = make_client(recorder)
    with pytest.raises((ServerError, NetworkError)):
        await client.create_payment_intent(Money(value=100, currency_code="GBP"), "ref")
    assert len(recorder.requests) == 1 and sleeps.delays == []


async def test_terminal_session_creation_is_never_retried(
    make_client: Callable[..., DojoClient], sleeps: Sleeps
) -> None:
    recorder = Recorder(ok({}, 503))
    client = make_client(recorder)
    with pytest.raises(ServerError):
        await client.create_terminal_session("tm_1", SaleDetails("pi_1"))
    assert len(recorder.requests) == 1 and sleeps.delays == []


async def test_events_are_retried_because_duplicates_are_harmless(
    make_client: Callable[..., DojoClient], sleeps: Sleeps
) -> None:
    recorder = Recorder(ok({}, 503), ok({"eventType": "OrderUpdated", "event": {"orderId": "O1"}}))
    client = make_client(recorder)
    await client.post_event(PosEventType.ORDER_UPDATED, "orderId", "O1")
    assert len(recorder.requests) == 2 and sleeps.delays == [0.5]


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


# --- the key never leaks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        ok({"title": f"Key {API_KEY} unknown", "detail": f"Authorization: Basic {API_KEY}"}, 401),
        ok({"title": f"Bad {API_KEY}", "errors": {API_KEY: [API_KEY]}, "traceId": API_KEY}, 400),
        ok({"detail": f"echo {API_KEY}"}, 404),
        ok({"detail": f"echo {API_KEY}"}, 409),
        ok({"detail": f"echo {API_KEY}"}, 500),
        ok({"detail": f"echo {API_KEY}"}, 418),
        httpx.ConnectError(f"refused while sending {API_KEY}"),
        httpx.ReadTimeout(f"timeout {API_KEY}"),
    ],
)
async def test_api_key_is_absent_from_every_error(
    make_client: Callable[..., DojoClient], answer: httpx.Response | Exception
) -> None:
    client = make_client(Recorder(answer), max_retries=0)
    with pytest.raises(DojoApiError) as caught:
        await client.get_terminal("tm_1")
    error = caught.value
    texts = [str(error), repr(error), error.title, error.detail, error.trace_id, error.code, str(error.field_errors)]
    assert all(API_KEY not in (text or "") for text in texts)
    assert error.__cause__ is None or API_KEY not in str(error.__cause__)
