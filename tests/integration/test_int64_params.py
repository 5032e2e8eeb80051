"""Every integer in a request is an int64 (contract §4.1: ``Money.value`` is int64; the schema's
other integers are stored in the same 64-bit columns): one outside that range is an
``InvalidRequest`` naming the field, never an ``UnexpectedError`` from deep in a database driver,
and the bridge goes on serving, on the same connection.

One rule in one place: ``protocol.base.Int64``, the type of every integer field of the wire
models; the last test walks every method's params schema so a new integer field cannot miss it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.methods import PARAMS_MODEL
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.sim.gateway import GatewaySimulator
from tests.conftest import Rpc, money
from tests.helpers.builders import failed, item, new_order, ok
from tests.helpers.gateway import serving_over_loopback
from tests.helpers.pos import sqlite_pos

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OUT_OF_RANGE = [INT64_MAX + 1, INT64_MIN - 1, 10**30]
API_KEY = "sk_sandbox_fake_Int64RangeKey_5b1d"
HOUSE = "acme-pos"

Params = dict[str, Any]


def reservation() -> Params:
    return {
        "dojoReservationId": "dojo-r1",
        "name": "Ada",
        "covers": 2,
        "startTime": "2026-03-14T19:00:00Z",
        "endTime": "2026-03-14T21:00:00Z",
        "tableIds": ["T1"],
    }


def party() -> Params:
    return {"dojoPartyId": "dojo-p1", "startTime": "2026-03-14T19:00:00Z", "tableIds": ["T1"], "covers": 2}


def order() -> Params:
    return {
        "dojoOrderId": "dojo-o1",
        "items": [
            item(
                quantity=1,
                price=1000,
                modifiers=[{"name": "Cheese", "plu": "CH", "quantity": 1, "amountPerModifier": money(0)}],
                subItems=[{"name": "Fries", "plu": "FR", "quantity": 1, "amountPerItem": money(0)}],
            )
        ],
        "totalAmount": money(1000),
        "payments": [],
        "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}},
        "discounts": [{"name": "Staff", "amountTotal": money(0), "amountPercentage": 0}],
        "taxLines": [{"amountTotal": money(0), "amountPercentage": 2000}],
        "serviceChargeAmount": money(0),
    }


def payment(order_id: str = "1") -> Params:
    return {"orderId": order_id, "paymentIntentId": "pi_1", "paidAmount": money(100), "tipsAmount": money(0)}


# (method, params builder, path to the integer, the field the answer must name)
CASES: list[tuple[str, Callable[[], Params], tuple[Any, ...], str]] = [
    ("CreateReservationV1", reservation, ("covers",), "params.covers"),
    ("UpdateReservationV1", lambda: {**reservation(), "id": "1"}, ("covers",), "params.covers"),
    ("CreatePartyV1", party, ("covers",), "params.covers"),
    ("CreateOrderV1", order, ("totalAmount", "value"), "params.totalAmount.value"),
    ("CreateOrderV1", order, ("items", 0, "quantity"), "params.items.0.quantity"),
    ("CreateOrderV1", order, ("items", 0, "amountPerItem", "value"), "params.items.0.amountPerItem.value"),
    ("CreateOrderV1", order, ("items", 0, "modifiers", 0, "quantity"), "params.items.0.modifiers.0.quantity"),
    ("CreateOrderV1", order, ("items", 0, "subItems", 0, "quantity"), "params.items.0.subItems.0.quantity"),
    ("CreateOrderV1", order, ("discounts", 0, "amountPercentage"), "params.discounts.0.amountPercentage"),
    ("CreateOrderV1", order, ("taxLines", 0, "amountPercentage"), "params.taxLines.0.amountPercentage"),
    ("CreateOrderV1", order, ("serviceChargeAmount", "value"), "params.serviceChargeAmount.value"),
    ("RecordOrderPaymentByIdV1", payment, ("paidAmount", "value"), "params.paidAmount.value"),
    ("RecordOrderPaymentByIdV1", payment, ("tipsAmount", "value"), "params.tipsAmount.value"),
    ("SearchOrdersV1", lambda: {"cursor": {"limit": 10}}, ("cursor", "limit"), "params.cursor.limit"),
    ("SearchTablesV1", lambda: {"cursor": {"limit": 10}}, ("cursor", "limit"), "params.cursor.limit"),
    ("SearchPartiesV1", lambda: {"cursor": {"limit": 10}}, ("cursor", "limit"), "params.cursor.limit"),
    ("SearchReservationsV1", lambda: {"cursor": {"limit": 10}}, ("cursor", "limit"), "params.cursor.limit"),
]


def with_value(params: Params, path: tuple[Any, ...], value: int) -> Params:
    changed = copy.deepcopy(params)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=["2**63", "-2**63-1", "10**30"])
@pytest.mark.parametrize(
    ("method", "build", "path", "named"), CASES, ids=[f"{m}:{'.'.join(map(str, p))}" for m, _, p, _ in CASES]
)
async def test_an_integer_outside_int64_is_an_invalid_request_naming_the_field(
    rpc: Rpc, method: str, build: Callable[[], Params], path: tuple[Any, ...], named: str, value: int
) -> None:
    await new_order(rpc, "dojo-existing")  # order 1, for the payment
    answer = await rpc(method, with_value(build(), path, value))

    error = failed(answer, "InvalidRequest")
    assert error["debugMessage"].startswith(f"{named}:"), error
    assert ok(await rpc("ListAreasV1", {})), "the bridge goes on serving"


@pytest.mark.parametrize("value", [INT64_MAX, INT64_MIN], ids=["2**63-1", "-2**63"])
async def test_the_int64_bounds_themselves_are_valid_params(rpc: Rpc, value: int) -> None:
    """Validation takes the whole range; what a method then allows (covers, amounts that must not
    be negative) is its own rule, answered as a contract error too."""
    answer = await rpc("CreateReservationV1", with_value(reservation(), ("covers",), value))
    if "result" in answer:
        assert answer["result"]["covers"] == value
    else:
        assert failed(answer, "InvalidRequest")["debugMessage"].startswith("covers")


def _integers(
    schema: Any, defs: dict[str, Any], where: str, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                yield from _integers(defs[name], defs, where, seen | {name})
            return
        if schema.get("type") == "integer":
            yield where, schema
        for key, value in schema.items():
            if key != "$defs":
                yield from _integers(value, defs, f"{where}.{key}", seen)
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _integers(value, defs, f"{where}[{index}]", seen)


def test_every_integer_in_every_params_model_is_bounded_to_int64() -> None:
    found = []
    for method, model in PARAMS_MODEL.items():
        schema = model.model_json_schema(by_alias=True)
        for where, fragment in _integers(schema, schema.get("$defs", {}), method.value):
            found.append(where)
            assert fragment.get("minimum", INT64_MIN - 1) >= INT64_MIN, f"{where} has no int64 lower bound"
            assert fragment.get("maximum", INT64_MAX + 1) <= INT64_MAX, f"{where} has no int64 upper bound"
    assert any("covers" in where for where in found) and any("value" in where for where in found)


# --- over a real socket: the connection stays up ------------------------------------------------


@asynccontextmanager
async def serving(pos_db_path: Path) -> AsyncIterator[GatewaySimulator]:
    adapter = sqlite_pos(pos_db_path)
    try:
        async with serving_over_loopback(Dispatcher(adapter).handle_text, DojoCredentials(API_KEY, HOUSE)) as sim:
            yield sim
    finally:
        await adapter.close()


async def test_an_out_of_range_integer_over_the_socket_leaves_the_connection_up(pos_db_path: Path) -> None:
    async with serving(pos_db_path) as sim:
        for value in OUT_OF_RANGE:
            body = {"headers": {}, **with_value(reservation(), ("covers",), value)}
            answer = await sim.request("CreateReservationV1", body)
            assert answer["error"]["errorType"] == "InvalidRequest", answer
        after = await sim.request("CreateReservationV1", {"headers": {}, **reservation()})

        assert after["result"]["covers"] == 2
        assert sim.connections_opened == 1 and sim.connections_closed == 0, "one connection, never dropped"
        sent = [json.loads(frame) for frame in sim.received if isinstance(frame, str)]
        assert len(sent) == len(OUT_OF_RANGE) + 1, "every request answered, nothing else sent"
