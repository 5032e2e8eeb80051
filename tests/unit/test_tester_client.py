"""The EPOS tester tool client and the verification service over httpx.MockTransport (contract §5.7).

Every answer the mock gives is first checked against the published shapes in
``epos-tester.schema.json``; every body the client sends is validated against ``RunFlowRequest``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from epos_bridge.dojo_api import DojoClient
from epos_bridge.domain.verification import (
    TESTER_NOT_ENABLED,
    FlowDescription,
    FlowParam,
    FlowStatus,
    TesterToolError,
    TesterToolUnavailable,
)
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.services.verification import Verification, follow_flow
from tests.helpers.contract import assert_tester_shape

SANDBOX_KEY = "sk_sandbox_FakeTesterKey_not_real"
PRODUCTION_KEY = "sk_prod_FakeTesterKey_not_real"
FLOW_ID = "d00aa12a-7fb8-46a2-a22d-f4b560298353"
Handler = Callable[[httpx.Request], httpx.Response]


GET_ORDER = assert_tester_shape(
    "FlowDescription",
    {
        "name": "Get Order",
        "params": [{"name": "orderId", "type": "string", "required": True, "description": "The order to read"}],
    },
)
PAY_AT_TABLE = assert_tester_shape(
    "FlowDescription",
    {
        "name": "Pay at Table",
        "params": [
            {"name": "tableId", "type": "string", "required": True, "description": "A table"},
            {"name": "parts", "type": "integer", "required": False, "description": "Payments", "default": "2"},
        ],
    },
)


def result(status: str, *steps: dict[str, Any], finished: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flowID": FLOW_ID,
        "flowName": "Get Order through EPOS Data API",
        "status": status,
        "startedAt": "2026-03-02T12:00:00.000Z",
        "steps": list(steps),
    }
    if finished:
        body["finishedAt"] = "2026-03-02T12:00:02.000Z"
    return assert_tester_shape("FlowResult", body)


def step_body(name: str, status: str, *information: str) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "startedAt": "2026-03-02T12:00:00.500Z",
        "finishedAt": "2026-03-02T12:00:01.000Z",
        "additionalInformation": list(information),
    }


class Recorder:
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


class FakeTime:
    """Injected sleep and monotonic clock: a poll loop runs instantly and its waits are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., DojoClient]]:
    clients: list[httpx.AsyncClient] = []

    def build(handler: Handler, api_key: str = SANDBOX_KEY) -> DojoClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(http)

        async def no_wait(_: float) -> None:
            return None

        return DojoClient(http, credentials=DojoCredentials(api_key, "sh_epos_bridge"), sleep=no_wait)

    yield build
    for http in clients:
        await http.aclose()


# --- the three calls -------------------------------------------------------------------------------


async def test_the_flow_list_is_read_as_a_list_with_params_and_defaults(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([GET_ORDER, PAY_AT_TABLE]))
    tool = make_client(recorder).tester_tool()

    flows = await tool.list_flows()

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("GET", "https://api.dojo.tech/epos-tester-tool/flows")
    assert request.headers["Authorization"] == f"Basic {SANDBOX_KEY}"
    assert request.headers["software-house-id"] == "sh_epos_bridge"
    assert flows == [
        FlowDescription("Get Order", (FlowParam("orderId", "string", True, "The order to read"),)),
        FlowDescription(
            "Pay at Table",
            (FlowParam("tableId", "string", True, "A table"), FlowParam("parts", "integer", False, "Payments", "2")),
        ),
    ]


async def test_a_single_flow_description_as_the_schema_declares_it_is_accepted(
    make_client: Callable[..., DojoClient],
) -> None:
    tool = make_client(Recorder(ok({**GET_ORDER, "somethingNew": 1}))).tester_tool()
    assert [f.name for f in await tool.list_flows()] == ["Get Order"]


async def test_a_flow_without_params_and_lenient_defaults_are_read(make_client: Callable[..., DojoClient]) -> None:
    body = [{"name": "Bookings"}, {"name": "X", "params": [{"name": "n", "default": 3}]}]
    tool = make_client(Recorder(ok(body))).tester_tool()
    flows = await tool.list_flows()
    assert flows[0] == FlowDescription("Bookings")
    assert flows[1].params == (FlowParam("n", "string", False, "", "3"),)


async def test_starting_a_flow_sends_the_published_request_and_reads_the_bare_string_id(
    make_client: Callable[..., DojoClient],
) -> None:
    recorder = Recorder(ok(assert_tester_shape("FlowId", FLOW_ID)))
    tool = make_client(recorder).tester_tool()

    flow_id = await tool.start_flow("Get Order", {"orderId": "ord_1"})

    assert flow_id == FLOW_ID
    request = recorder.requests[0]
    assert (request.method, request.url.path) == ("POST", "/epos-tester-tool/flows")
    body = json.loads(request.content)
    assert body == {"flow": "Get Order", "params": {"orderId": "ord_1"}}
    assert_tester_shape("RunFlowRequest", body)


async def test_a_start_that_fails_on_dojos_side_is_never_repeated(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok({"title": "Service Unavailable"}, 503))
    tool = make_client(recorder).tester_tool()
    with pytest.raises(TesterToolError, match="503"):
        await tool.start_flow("Pay at Table", {"tableId": "T4"})
    assert len(recorder.requests) == 1  # a flow takes payments: a repeat would run it twice


async def test_reading_a_result_is_retried_after_a_server_error(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok({}, 502), ok(result("SUCCESS")))
    tool = make_client(recorder).tester_tool()
    read = await tool.flow_result(FLOW_ID)
    assert read.status is FlowStatus.SUCCESS
    assert [r.url.path for r in recorder.requests] == [f"/epos-tester-tool/flows/{FLOW_ID}"] * 2


async def test_a_result_is_read_with_its_steps_times_and_information(make_client: Callable[..., DojoClient]) -> None:
    body = result(
        "FAILURE",
        step_body(
            "Get the order",
            "FAILURE",
            "GetOrder method not found",
            "Please register the GetOrder method on an EPOS Data API adapter",
        ),
    )
    tool = make_client(Recorder(ok(body))).tester_tool()

    read = await tool.flow_result(FLOW_ID)

    assert read.flow_id == FLOW_ID  # flowID, not flowId (§5.7)
    assert read.flow_name == "Get Order through EPOS Data API"
    assert read.status is FlowStatus.FAILURE
    (only,) = read.steps
    assert only.name == "Get the order"
    assert only.additional_information == (
        "GetOrder method not found",
        "Please register the GetOrder method on an EPOS Data API adapter",
    )
    assert only.seconds == 0.5
    assert read.failing_step is only


async def test_a_sparse_result_with_an_unknown_status_reads_as_a_failure(
    make_client: Callable[..., DojoClient],
) -> None:
    body = {"status": "PAUSED", "steps": [{"status": "SUCCESS"}], "extra": True}
    tool = make_client(Recorder(ok(body))).tester_tool()
    read = await tool.flow_result(FLOW_ID)
    assert read.flow_id == FLOW_ID
    assert read.status is FlowStatus.FAILURE
    assert "PAUSED" in read.notes[0]
    assert read.steps[0].name == "Step 1" and read.steps[0].started_at is None


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("call", ["list", "start", "result"])
async def test_401_403_404_mean_the_tester_tool_is_not_enabled(
    make_client: Callable[..., DojoClient], status: int, call: str
) -> None:
    recorder = Recorder(ok({"title": "Nope"}, status))
    tool = make_client(recorder).tester_tool()
    calls = {
        "list": tool.list_flows,
        "start": lambda: tool.start_flow("Get Order", {}),
        "result": lambda: tool.flow_result(FLOW_ID),
    }
    with pytest.raises(TesterToolUnavailable) as raised:
        await calls[call]()
    message = str(raised.value)
    assert message.startswith(TESTER_NOT_ENABLED)
    assert "ask your Partnership Development Manager" in message
    assert str(status) in message
    assert SANDBOX_KEY not in message


async def test_a_production_key_sends_nothing_and_says_why(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([GET_ORDER]))
    tool = make_client(recorder, api_key=PRODUCTION_KEY).tester_tool()
    assert tool.refusal() is not None and "production" in str(tool.refusal())
    with pytest.raises(TesterToolUnavailable, match="create orders and record payments"):
        await tool.list_flows()
    with pytest.raises(TesterToolUnavailable):
        await tool.start_flow("Get Order", {"orderId": "1"})
    assert recorder.requests == []


async def test_an_answer_without_a_flow_id_is_an_error(make_client: Callable[..., DojoClient]) -> None:
    tool = make_client(Recorder(ok({"message": "started"}))).tester_tool()
    with pytest.raises(TesterToolError, match="no flow id"):
        await tool.start_flow("Get Order", {})


# --- following a flow ------------------------------------------------------------------------------


async def test_a_flow_is_polled_about_once_a_second_until_it_is_no_longer_in_progress(
    make_client: Callable[..., DojoClient],
) -> None:
    running = result("IN_PROGRESS", step_body("Get the order", "SUCCESS"), finished=False)
    recorder = Recorder(
        ok(FLOW_ID), ok(running), ok(running), ok(result("SUCCESS", step_body("Get the order", "SUCCESS")))
    )
    time = FakeTime()
    seen: list[FlowStatus] = []

    run = await follow_flow(
        make_client(recorder).tester_tool(),
        "Get Order",
        {"orderId": "ord_1"},
        on_progress=lambda r: seen.append(r.status),
        sleep=time.sleep,
        monotonic=time.monotonic,
    )

    assert run.status is FlowStatus.SUCCESS
    assert run.params == {"orderId": "ord_1"}
    assert time.sleeps == [1.0, 1.0]
    assert seen == [FlowStatus.IN_PROGRESS, FlowStatus.IN_PROGRESS]
    assert [r.method for r in recorder.requests] == ["POST", "GET", "GET", "GET"]


async def test_a_flow_that_never_finishes_is_shown_as_timed_out(make_client: Callable[..., DojoClient]) -> None:
    running = result("IN_PROGRESS", step_body("Lock the order", "SUCCESS"), finished=False)
    recorder = Recorder(ok(FLOW_ID), ok(running))
    time = FakeTime()

    run = await follow_flow(
        make_client(recorder).tester_tool(),
        "Pay at Table",
        {"tableId": "T4"},
        sleep=time.sleep,
        monotonic=time.monotonic,
        timeout_s=5.0,
    )

    assert run.status is FlowStatus.TIMED_OUT
    assert run.result is not None and [s.name for s in run.result.steps] == ["Lock the order"]
    assert "after 5 s" in (run.why_not() or "")
    assert sum(time.sleeps) == pytest.approx(5.0)
    assert len(recorder.requests) == 1 + 6  # the POST, then one read a second for five seconds and a last one


async def test_a_refused_start_is_a_failed_run_and_the_next_flow_still_runs(
    make_client: Callable[..., DojoClient],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/flows"):
            return ok([GET_ORDER, PAY_AT_TABLE])
        if request.method == "POST":
            body = json.loads(request.content)
            assert_tester_shape("RunFlowRequest", body)
            if body["flow"] == "Get Order":
                return ok({"title": "Bad Request", "detail": "orderId unknown"}, 400)
            return ok(FLOW_ID)
        return ok(result("SUCCESS"))

    time = FakeTime()
    verification = Verification(make_client(handler).tester_tool(), sleep=time.sleep, monotonic=time.monotonic)
    flows = await verification.load_flows()
    finished: list[str] = []
    verification.on_finished(lambda run: finished.append(run.status.value))

    runs = await verification.run([(flows[0], {"orderId": "nope"}), (flows[1], {"tableId": "T4"})])

    assert [run.status for run in runs] == [FlowStatus.FAILURE, FlowStatus.SUCCESS]
    assert "Dojo did not start the flow" in (runs[0].error or "") and "orderId unknown" in (runs[0].error or "")
    assert runs[1].params == {"tableId": "T4", "parts": "2"}  # the default was sent
    assert finished == ["FAILURE", "SUCCESS"]
    assert [run.flow for run in verification.latest_runs()] == ["Get Order", "Pay at Table"]


async def test_a_flow_missing_a_required_value_is_not_started(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([GET_ORDER]))
    verification = Verification(make_client(recorder).tester_tool())
    (flow,) = await verification.load_flows()
    run = await verification.run_one(flow, {})
    assert run.error == "Not started: orderId is required"
    assert [r.method for r in recorder.requests] == ["GET"]


async def test_the_tester_tool_going_away_mid_run_stops_the_run(make_client: Callable[..., DojoClient]) -> None:
    recorder = Recorder(ok([GET_ORDER]), ok({}, 403))
    verification = Verification(make_client(recorder).tester_tool())
    (flow,) = await verification.load_flows()
    with pytest.raises(TesterToolUnavailable, match="not enabled"):
        await verification.run([(flow, {"orderId": "1"}), (flow, {"orderId": "2"})])
    assert len(recorder.requests) == 2
