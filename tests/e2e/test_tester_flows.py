"""The simulator's EPOS tester tool against a real bridge: the real REST client asks the simulated
Dojo to run each flow, and the flow drives the in-process bridge over a real WebSocket on
127.0.0.1, over a demo venue file made by ``epos-bridge db init --demo``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import DojoClient
from epos_bridge.domain.verification import FlowRun, FlowStatus, TesterToolUnavailable
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.services.verification import Verification
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from tests.helpers.contract import assert_tester_shape, assert_valid_params

pytestmark = pytest.mark.timeout(90)

NOT_FOUND = "GetOrder method not found"
PLEASE_REGISTER = "Please register the GetOrder method on an EPOS Data API adapter"


@pytest.fixture
def sent(simulator: DojoSimulator) -> list[tuple[str, dict[str, Any]]]:
    """Every request the tester sends the bridge, each checked against the EPOS Data schema."""
    calls: list[tuple[str, dict[str, Any]]] = []
    request = simulator.gateway.request

    async def checked(method: str, params: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        assert params is not None
        assert_valid_params(method, params)
        calls.append((method, params))
        return await request(method, params, **options)

    simulator.gateway.request = checked  # type: ignore[method-assign]
    return calls


@pytest.fixture
async def bridge(make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator) -> AsyncIterator[Bridge]:
    running = Bridge(make_settings())
    await running.start()
    try:
        await simulator.gateway.wait_connected(timeout=10)
        await simulator.gateway.wait_until(lambda: running.registration.at is not None, 10, "the registration")
        yield running
    finally:
        await running.stop()


@pytest.fixture
def verification(bridge: Bridge) -> Verification:
    # A short poll: the flows finish in milliseconds here, and the test waits for the answer, not a time.
    return Verification(bridge.client.tester_tool(), bridge.adapter, poll_interval=0.02)


async def run_flow(verification: Verification, name: str, **given: str) -> FlowRun:
    if not verification.available:
        await verification.load_flows()
    (flow,) = [f for f in verification.available if f.name == name]
    return await verification.run_one(flow, await verification.with_pos_defaults(flow, given))


def steps(run: FlowRun) -> list[tuple[str, FlowStatus]]:
    assert run.result is not None
    return [(step.name, step.status) for step in run.result.steps]


def information(run: FlowRun) -> str:
    assert run.result is not None
    return "\n".join(line for step in run.result.steps for line in step.additional_information)


def registered_without(*left_out: Capability) -> list[str]:
    return [c.value for c in Capability if c not in left_out]


# --- every flow, for real ---------------------------------------------------------------------


async def test_every_flow_succeeds_against_the_demo_venue(
    verification: Verification, simulator: DojoSimulator, sent: list[tuple[str, dict[str, Any]]], demo_db: Path
) -> None:
    flows = await verification.load_flows()
    assert [f.name for f in flows] == [
        "Get Order",
        "Get Order Bill",
        "Search Orders",
        "Tables and Areas",
        "Lock Conflict",
        "Pay at Table",
        "Bookings",
        "Payment Intent Events",
    ]
    runs = [await run_flow(verification, flow.name) for flow in flows]

    for run in runs:
        assert run.status is FlowStatus.SUCCESS, (run.name, run.why_not(), information(run))
        assert run.name == f"{run.flow} through EPOS Data API"
        assert run.result is not None and run.result.steps
        for step in run.result.steps:
            assert step.started_at is not None and step.finished_at is not None
            assert step.started_at <= step.finished_at
    methods = {method for method, _ in sent}
    assert methods >= {
        "GetOrderByIdV1",
        "GetOrderBillByIdV1",
        "SearchOrdersV1",
        "ListAreasV1",
        "SearchTablesV1",
        "CreateOrderLockV1",
        "ExtendOrderLockV1",
        "RecordOrderPaymentByIdV1",
        "DeleteOrderLockV1",
        "CreateReservationV1",
        "UpdateReservationV1",
        "DeleteReservationByIdV1",
        "CreatePartyV1",
        "UpdatePartyV1",
        "SearchPartiesV1",
        "HandleEventV1",
    }
    pay = runs[5]
    with sqlite3.connect(demo_db) as conn:
        paid = conn.execute(
            "SELECT order_id, SUM(paid_amount), SUM(tips_amount), COUNT(*) FROM payments "
            "WHERE payment_intent_id LIKE 'pi_tester_%' GROUP BY order_id"
        ).fetchall()
        locks = conn.execute("SELECT COUNT(*) FROM order_locks").fetchone()[0]
    ((order_id, amount, tips, count),) = paid
    assert count == 2  # two parts, the default
    assert amount > 0 and tips > 0
    settled = await simulator.send("GetOrderByIdV1", {"headers": {}, "orderId": str(order_id)})
    assert settled["result"]["paidAmount"] == settled["result"]["totalAmount"]
    assert settled["result"]["payable"] is False
    assert locks == 0  # the lock conflict and Pay at Table flows both released theirs
    assert pay.params["tableId"]
    assert {s for _, s in steps(pay)} == {FlowStatus.SUCCESS}
    assert sum(1 for name, _ in steps(pay) if name.startswith("Extend the lock")) == 2


async def test_the_simulators_answers_have_the_published_shapes(
    bridge: Bridge, simulator: DojoSimulator, api_key: str
) -> None:
    headers = {"Authorization": f"Basic {api_key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=simulator.api_url, headers=headers) as http:
        listed = (await http.get("/epos-tester-tool/flows")).json()
        for flow in listed:
            assert_tester_shape("FlowDescription", flow)
        body = {"flow": "Tables and Areas", "params": {}}
        assert_tester_shape("RunFlowRequest", body)
        started = await http.post("/epos-tester-tool/flows", json=body)
        flow_id = started.json()
        assert started.text.startswith('"')  # a bare JSON string
        assert_tester_shape("FlowId", flow_id)
        await simulator.tester.wait_finished(flow_id)
        result = (await http.get(f"/epos-tester-tool/flows/{flow_id}")).json()
    assert_tester_shape("FlowResult", result)
    assert result["flowID"] == flow_id
    assert result["status"] == "SUCCESS"
    assert [step["name"] for step in result["steps"]] == ["List the areas", "Search the tables"]


# --- what Dojo would refuse to route -------------------------------------------------------------


async def test_a_step_needing_an_unregistered_capability_fails_with_the_published_words(
    verification: Verification, simulator: DojoSimulator, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    simulator.rest.set_registered_names(registered_without(Capability.GET_ORDER_BY_ID))

    run = await run_flow(verification, "Get Order")

    assert run.status is FlowStatus.FAILURE
    assert run.result is not None
    failing = run.result.failing_step
    assert failing is not None and failing.name == "Get the order by its id"
    assert failing.additional_information == (NOT_FOUND, PLEASE_REGISTER)
    assert len(run.result.steps) == 1  # the flow stops at the failing step
    assert [m for m, _ in sent if m == "GetOrderByIdV1"] == []  # Dojo never routes what is not registered


async def test_pay_at_table_follows_what_is_registered_as_dojo_does(
    verification: Verification, simulator: DojoSimulator, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    simulator.rest.set_registered_names(registered_without(Capability.EXTEND_ORDER_LOCK))
    long_lock = await run_flow(verification, "Pay at Table", parts="3")
    assert long_lock.status is FlowStatus.SUCCESS, long_lock.why_not()
    names = [name for name, _ in steps(long_lock)]
    assert "Lock the order (long expiry: ExtendOrderLock is not registered)" in names
    assert not any(name.startswith("Extend") for name in names)
    assert sum(1 for name in names if name.startswith("Pay part")) == 3

    simulator.rest.set_registered_names(
        registered_without(Capability.CREATE_ORDER_LOCK, Capability.DELETE_ORDER_LOCK, Capability.EXTEND_ORDER_LOCK)
    )
    sent.clear()
    no_lock = await run_flow(verification, "Pay at Table")
    assert no_lock.status is FlowStatus.SUCCESS, no_lock.why_not()
    assert "Dojo records payments without a lock" in information(no_lock)
    assert not any(method.endswith("LockV1") for method, _ in sent)
    assert all("lockId" not in params for method, params in sent if method == "RecordOrderPaymentByIdV1")


async def test_a_payment_event_type_that_is_not_registered_fails_its_step(
    verification: Verification, simulator: DojoSimulator
) -> None:
    simulator.rest.set_registered_names(registered_without(Capability.HANDLE_PAYMENT_INTENT_STATUS_UPDATED))
    run = await run_flow(verification, "Payment Intent Events")
    assert steps(run) == [
        ("payment_intent.created", FlowStatus.SUCCESS),
        ("payment_intent.status_updated (Captured)", FlowStatus.FAILURE),
    ]
    assert "HandleEvent:payment_intent.status_updated method not found" in information(run)


# --- faults ------------------------------------------------------------------------------------------


async def test_with_no_bridge_connected_the_first_step_says_so(
    make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator
) -> None:
    simulator.rest.set_registered_names([c.value for c in Capability])
    idle = Bridge(make_settings(ws_url="ws://127.0.0.1:9/epos"))  # its REST client only: never started
    try:
        verification = Verification(idle.client.tester_tool(), poll_interval=0.02)
        run = await run_flow(verification, "Tables and Areas")
    finally:
        await idle.stop()
    assert steps(run) == [("List the areas", FlowStatus.FAILURE)]
    assert "No EPOS is connected" in information(run)


async def test_a_bridge_that_stops_answering_times_the_step_out(
    verification: Verification, simulator: DojoSimulator
) -> None:
    simulator.tester.step_timeout = 0.3
    simulator.gateway.stop_answering_pings()  # the bridge's answers are never read: a dead link
    try:
        run = await run_flow(verification, "Tables and Areas")
    finally:
        simulator.gateway.answer_pings()
    assert run.status is FlowStatus.TIMED_OUT
    assert steps(run) == [("List the areas", FlowStatus.TIMED_OUT)]
    assert "did not answer ListAreasV1 within 0.3 s" in information(run)


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_an_account_without_the_tester_tool_is_told_plainly(
    verification: Verification, simulator: DojoSimulator, status: int
) -> None:
    simulator.tester.refuse(status)
    with pytest.raises(TesterToolUnavailable, match="ask your Partnership Development Manager"):
        await verification.load_flows()


async def test_a_flow_started_without_its_required_parameter_is_refused_by_dojo(
    bridge: Bridge, simulator: DojoSimulator
) -> None:
    tool = bridge.client.tester_tool()
    with pytest.raises(Exception, match="orderId is required"):
        await tool.start_flow("Get Order", {})
    with pytest.raises(Exception, match="Unknown flow 'Refunds'"):
        await tool.start_flow("Refunds", {})
    assert simulator.tester.records == {}


async def test_an_epos_that_lets_a_second_lock_through_fails_the_lock_conflict_flow(
    simulator: DojoSimulator, api_key: str
) -> None:
    """A careless EPOS (a raw WebSocket client that says yes to everything) is caught."""
    order = {"id": "ord_1", "status": "New", "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}}}
    order |= {"totalAmount": {"value": 1000, "currencyCode": "GBP"}, "paidAmount": {"value": 0, "currencyCode": "GBP"}}
    simulator.rest.set_registered_names([c.value for c in Capability])
    headers = {"Authorization": f"Basic {api_key}", "software-house-id": DEMO_SOFTWARE_HOUSE_ID}

    async def say_yes(connection: ClientConnection) -> None:
        async for frame in connection:
            request = json.loads(frame)
            answer = {"jsonrpc": "2.0", "id": request["id"], "method": request["method"], "result": order}
            await connection.send(json.dumps(answer))

    async with connect(simulator.ws_url, additional_headers=headers) as connection:
        answering = asyncio.create_task(say_yes(connection))
        await simulator.gateway.wait_connected()
        async with httpx.AsyncClient() as http:
            client = DojoClient(
                http,
                credentials=DojoCredentials(api_key, DEMO_SOFTWARE_HOUSE_ID),
                base_url=simulator.api_url,
                allow_insecure=True,
            )
            verification = Verification(client.tester_tool(), poll_interval=0.02)
            run = await run_flow(verification, "Lock Conflict", orderId="ord_1")
        answering.cancel()
        await asyncio.gather(answering, return_exceptions=True)
    assert run.status is FlowStatus.FAILURE
    assert steps(run)[:3] == [
        ("Lock the order (lock A)", FlowStatus.SUCCESS),
        ("Lock it again under another lock id (Conflict expected)", FlowStatus.FAILURE),
        ("Unlock lock A", FlowStatus.SUCCESS),
    ]
    assert "CreateOrderLockV1 succeeded, but the contract asks for Conflict" in information(run)
