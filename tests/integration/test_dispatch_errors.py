"""What the dispatcher does with frames that are not well-formed requests (contract §1.2-1.4, §6 A3/A7).

Frames go straight into ``Dispatcher.handle_text`` because several of them cannot be sent through
the ``rpc`` fixture (no id, numeric id, unknown method, binary). Every answer that names a known
method is still checked against the published schema.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.services.dispatcher import Dispatcher, Served
from epos_bridge.services.pos_calls import PosCalls
from tests.conftest import Rpc
from tests.helpers.builders import (
    failed,
    new_order,
    order_id_params,
    payment_params,
    scalar,
)
from tests.helpers.contract import assert_valid_response, ws_schema


def frame(method: Any, params: Any = None, request_id: Any = "req-1", **extra: Any) -> str:
    document: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method, **extra}
    if params is not None:
        document["params"] = params
    return json.dumps(document)


async def serve(dispatcher: Dispatcher, text: str | bytes) -> dict[str, Any]:
    served = await dispatcher.handle_text(text)
    assert served is not None, "the frame was dropped instead of answered"
    response: dict[str, Any] = json.loads(served.response_text)
    assert response["jsonrpc"] == "2.0"
    if "error" in response:
        assert served.outcome == response["error"]["errorType"]
        assert served.trace_id == response["error"]["traceId"]
    method = response.get("method")
    if isinstance(method, str) and method in ws_schema()["methods"]:
        assert_valid_response(response["method"], response)
    return response


def nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth):
        document = {"a": document}
    return document


# --- frames that cannot be answered are dropped --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "[]",
        json.dumps([{"jsonrpc": "2.0", "id": "1", "method": "ListAreasV1"}]),
        '"GetOrderByIdV1"',
        "42",
        "null",
        json.dumps({"jsonrpc": "2.0", "method": "ListAreasV1", "params": {"headers": {}}}),
        json.dumps({"jsonrpc": "2.0", "id": None, "method": "ListAreasV1"}),
        "[" * 5000 + "]" * 5000,
    ],
    ids=[
        "invalid-json",
        "empty",
        "empty-array",
        "batch-array",
        "string",
        "number",
        "null",
        "missing-id",
        "null-id",
        "nested-too-deep-to-parse",
    ],
)
async def test_a_frame_without_an_addressable_id_is_dropped(
    dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="epos_bridge.services.dispatcher"):
        assert await dispatcher.handle_text(text) is None

    assert any("dropped" in record.getMessage() for record in caplog.records), "a dropped frame is logged"


@pytest.mark.logs_warnings("a dropped frame is logged")
async def test_a_binary_frame_is_dropped_even_when_it_holds_a_valid_request(dispatcher: Dispatcher) -> None:
    assert await dispatcher.handle_text(frame("ListAreasV1", {"headers": {}}).encode()) is None


# --- the envelope --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id", [42, 0, -7, "req-α", "0042"], ids=["int", "zero", "negative", "unicode", "digits"]
)
async def test_the_request_id_is_echoed_with_its_json_type(dispatcher: Dispatcher, request_id: Any) -> None:
    served = await dispatcher.handle_text(frame("ListAreasV1", {"headers": {}}, request_id=request_id))

    assert served is not None
    response = json.loads(served.response_text)
    assert response["id"] == request_id
    assert type(response["id"]) is type(request_id)
    assert response["method"] == "ListAreasV1"
    assert "result" in response


async def test_a_numeric_id_is_echoed_on_errors_too(dispatcher: Dispatcher) -> None:
    response = await serve(dispatcher, frame("GetOrderByIdV1", order_id_params("999"), request_id=7))

    assert response["id"] == 7
    assert response["error"]["errorType"] == "NotFound"


async def test_missing_headers_are_tolerated(dispatcher: Dispatcher, rpc: Rpc) -> None:
    order = await new_order(rpc, "dojo-1")

    response = await serve(dispatcher, frame("GetOrderByIdV1", {"orderId": order["id"]}))

    assert response["result"] == order


async def test_unknown_header_fields_are_ignored(dispatcher: Dispatcher, rpc: Rpc) -> None:
    order = await new_order(rpc, "dojo-1")

    response = await serve(
        dispatcher, frame("GetOrderByIdV1", {"headers": {"x-new": "1"}, "orderId": order["id"], "extra": True})
    )

    assert response["result"] == order


# --- methods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["GetOrderV1", "AddOrderItemsV1", "getorderbyidv1", "GetOrderById", "GetOrderBill"],
    ids=["unknown", "unregisterable", "wrong-case", "capability-not-method", "legacy-capability"],
)
async def test_an_unknown_method_is_an_invalid_request(dispatcher: Dispatcher, method: str) -> None:
    response = await serve(dispatcher, frame(method, {"headers": {}, "orderId": "1"}))

    assert response["method"] == method
    assert response["id"] == "req-1"
    assert response["error"]["errorType"] == "InvalidRequest"
    assert method in response["error"]["debugMessage"]
    assert "result" not in response


@pytest.mark.parametrize("method", [None, 5, ["GetOrderByIdV1"]], ids=["missing", "number", "array"])
async def test_a_method_that_is_not_a_string_is_an_invalid_request(dispatcher: Dispatcher, method: Any) -> None:
    text = frame(method, {"headers": {}}) if method is not None else json.dumps({"jsonrpc": "2.0", "id": "req-1"})

    response = await serve(dispatcher, text)

    assert response["error"]["errorType"] == "InvalidRequest"
    assert response["id"] == "req-1"


# --- params --------------------------------------------------------------------------------


async def test_a_field_of_the_wrong_type_is_an_invalid_request_naming_it(dispatcher: Dispatcher) -> None:
    response = await serve(dispatcher, frame("GetOrderByIdV1", {"headers": {}, "orderId": 5}))

    assert response["error"]["errorType"] == "InvalidRequest"
    assert "params.orderId" in response["error"]["debugMessage"]


@pytest.mark.parametrize(
    ("method", "params", "named"),
    [
        ("GetOrderByIdV1", {"headers": {}}, "params.orderId"),
        ("RecordOrderPaymentByIdV1", {"headers": {}, "orderId": "1", "paymentIntentId": "pi"}, "params.paidAmount"),
        ("CreateOrderLockV1", {"headers": {}, "orderId": "1", "lockId": "l"}, "params.expiry"),
        (
            "RecordOrderPaymentByIdV1",
            {"headers": {}, "orderId": "1", "paymentIntentId": "pi", "paidAmount": {"value": 100}},
            "params.paidAmount.currencyCode",
        ),
        ("CreateOrderLockV1", {"headers": {}, "orderId": "1", "lockId": "l", "expiry": "soon"}, "params.expiry"),
        ("SearchOrdersV1", {"headers": {}, "cursor": {"limit": "10"}}, "params.cursor.limit"),
        ("SearchOrdersV1", {"headers": {}, "payableOnly": "yes"}, "params.payableOnly"),
        ("CreatePartyV1", {"headers": {}, "dojoPartyId": "p", "tableIds": ["T1"]}, "params.startTime"),
    ],
    ids=[
        "order-id",
        "paid-amount",
        "expiry",
        "currency-code",
        "unreadable-date",
        "string-limit",
        "string-bool",
        "start-time",
    ],
)
async def test_a_missing_or_malformed_field_is_an_invalid_request_naming_it(
    dispatcher: Dispatcher, pos_db_path: Path, method: str, params: dict[str, Any], named: str
) -> None:
    response = await serve(dispatcher, frame(method, params))

    assert response["error"]["errorType"] == "InvalidRequest"
    assert named in response["error"]["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payments") == 0
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM order_locks") == 0


@pytest.mark.parametrize("params", [[], "orderId=1", 5], ids=["array", "string", "number"])
async def test_params_that_are_not_an_object_are_an_invalid_request(dispatcher: Dispatcher, params: Any) -> None:
    response = await serve(dispatcher, frame("GetOrderByIdV1", params))

    assert response["error"]["errorType"] == "InvalidRequest"
    assert "params" in response["error"]["debugMessage"]


async def test_missing_params_are_an_invalid_request_where_params_are_required(dispatcher: Dispatcher) -> None:
    response = await serve(dispatcher, frame("GetOrderByIdV1"))

    assert response["error"]["errorType"] == "InvalidRequest"
    assert "params" in response["error"]["debugMessage"]


@pytest.mark.parametrize("order_id", ["x" * 1_000_000, "9" * 1_000_000], ids=["letters", "digits"])
async def test_a_one_megabyte_order_id_is_answered_with_a_short_contract_error(
    dispatcher: Dispatcher, rpc: Rpc, order_id: str
) -> None:
    await new_order(rpc, "dojo-1")

    response = await serve(dispatcher, frame("GetOrderByIdV1", order_id_params(order_id)))

    assert response["error"]["errorType"] in {"NotFound", "InvalidRequest"}
    assert len(response["error"]["debugMessage"]) <= 300


async def test_a_200_deep_object_in_place_of_a_field_is_an_invalid_request(dispatcher: Dispatcher) -> None:
    response = await serve(dispatcher, frame("GetOrderByIdV1", {"headers": {}, "orderId": nested(200)}))

    assert response["error"]["errorType"] == "InvalidRequest"


async def test_a_200_deep_object_beside_the_fields_is_answered_with_a_contract_response(
    dispatcher: Dispatcher, rpc: Rpc
) -> None:
    order = await new_order(rpc, "dojo-1")

    response = await serve(
        dispatcher, frame("GetOrderByIdV1", {"headers": {}, "orderId": order["id"], "x": nested(200)})
    )

    if "error" in response:
        assert response["error"]["errorType"] == "InvalidRequest"
    else:
        assert response["result"] == order


async def test_a_200_deep_event_payload_is_an_invalid_request(dispatcher: Dispatcher, pos_db_path: Path) -> None:
    params = {
        "headers": {},
        "id": "evt_1",
        "accountId": "acc",
        "event": "payment_intent.status_updated",
        "createdAt": "2025-03-14T12:00:00Z",
        "data": nested(200),
    }

    response = await serve(dispatcher, frame("HandleEventV1", params))

    assert response["error"]["errorType"] == "InvalidRequest"
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0


# --- every error is traceable ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        frame("NoSuchMethodV1", {"headers": {}}),
        frame("GetOrderByIdV1", {"headers": {}, "orderId": 5}),
        frame("GetOrderByIdV1", order_id_params("404")),
        frame("SearchOrdersV1", {"headers": {}, "cursor": {"after": "garbage"}}),
        frame("DeletePartyByIdV1", {"headers": {}, "partyId": "404"}),
    ],
    ids=["unknown-method", "wrong-type", "not-found", "bad-cursor", "party-not-found"],
)
async def test_every_error_carries_a_fresh_trace_id(dispatcher: Dispatcher, text: str) -> None:
    first = await serve(dispatcher, text)
    second = await serve(dispatcher, text)

    assert first["error"]["traceId"]
    assert second["error"]["traceId"]
    assert first["error"]["traceId"] != second["error"]["traceId"]


# --- failures inside the adapter -------------------------------------------------------------


async def test_an_adapter_exception_is_an_unexpected_error_without_a_traceback(
    dispatcher: Dispatcher,
    adapter: PosCalls,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(params: Any, ctx: Any) -> Any:
        raise RuntimeError("secret detail: customer card 4111 at /srv/pos/internal.py line 12")

    monkeypatch.setattr(adapter, "get_order", broken)

    with caplog.at_level(logging.ERROR, logger="epos_bridge.services.dispatcher"):
        served = await dispatcher.handle_text(frame("GetOrderByIdV1", order_id_params("1")))

    assert isinstance(served, Served)
    response = json.loads(served.response_text)
    assert_valid_response("GetOrderByIdV1", response)
    error = response["error"]
    assert error["errorType"] == "UnexpectedError"
    for leak in ("Traceback", "RuntimeError", "secret", "4111", ".py", "line 12"):
        assert leak not in error["debugMessage"], leak
    assert error["traceId"] in error["debugMessage"], "support can quote the trace id"
    [record] = [r for r in caplog.records if error["traceId"] in r.getMessage()]
    assert record.exc_info is not None, "the traceback goes to the log, not the wire"


@pytest.mark.logs_warnings("an adapter bug is logged with its trace id")
async def test_an_adapter_exception_during_a_payment_records_nothing(
    dispatcher: Dispatcher,
    adapter: PosCalls,
    rpc: Rpc,
    pos_db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = await new_order(rpc, "dojo-1")

    async def broken(params: Any, ctx: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(adapter, "record_order_payment", broken)

    error = failed(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 500)), "UnexpectedError")

    assert "boom" not in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payments") == 0


@pytest.mark.logs_warnings("an adapter bug is logged with its trace id")
async def test_the_dispatcher_keeps_serving_after_an_adapter_exception(
    dispatcher: Dispatcher, adapter: PosCalls, rpc: Rpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await new_order(rpc, "dojo-1")
    real_get_order = adapter.get_order

    async def broken(params: Any, ctx: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(adapter, "get_order", broken)
    failed(await rpc("GetOrderByIdV1", order_id_params(order["id"])), "UnexpectedError")
    monkeypatch.setattr(adapter, "get_order", real_get_order)

    response = await serve(dispatcher, frame("GetOrderByIdV1", order_id_params(order["id"])))

    assert response["result"] == order
