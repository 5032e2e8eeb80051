"""The fast JSON paths say exactly what the standard library said: frames are read by orjson
with json deciding every edge orjson refuses, and answers are serialised by pydantic-core and
escaped to the same ASCII ``json.dumps(ensure_ascii=True)`` writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from epos_bridge.protocol.entities import (
    DineInDetails,
    Money,
    Order,
    OrderDetails,
    OrderItem,
    OrderStatus,
    OrderType,
)
from epos_bridge.protocol.jsonrpc import (
    UnreadableFrame,
    ascii_json,
    encode,
    encode_success,
    peek_request,
    success_response,
)
from epos_bridge.protocol.params import EmptyResult, PagedOrders

ORDER = Order(
    id="7",
    status=OrderStatus.SUBMITTED,
    details=OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails(table_id="T1")),
    items=[
        OrderItem(name="Crème brûlée 🍮", plu="P1", quantity=2, amount_per_item=Money(value=650, currency_code="GBP"))
    ],
    note='tab\tand \u2028 line separator, "quotes" and \\ backslash',
    created_at=datetime(2026, 11, 27, 12, 0, 0, 123000, tzinfo=UTC),
    total_amount=Money(value=1300, currency_code="GBP"),
    payable=True,
)


@pytest.mark.parametrize(
    "result",
    [ORDER, PagedOrders(data=[ORDER, ORDER], before="b"), [ORDER], EmptyResult(), {"plain": ["dict", 1, None]}],
    ids=["model", "page", "list", "empty", "dict"],
)
@pytest.mark.parametrize("request_id", [1, "abc", "\ud800 lone", "é", 2**70, 1.5, {"odd": [1]}])
def test_an_answer_is_the_text_the_standard_library_wrote(result: Any, request_id: Any) -> None:
    fast = encode_success(request_id, "GetOrderByIdV1", result)
    assert fast.isascii()
    assert fast == encode(success_response(request_id, "GetOrderByIdV1", result))


@pytest.mark.parametrize("text", ["plain", "é", "£10", "🍮 and 𝄞", "\u2028", "mixed é 🍮 x"])
def test_ascii_json_escapes_as_json_dumps_does(text: str) -> None:
    assert ascii_json(json.dumps(text, ensure_ascii=False)) == json.dumps(text, ensure_ascii=True)


@pytest.mark.parametrize(
    "frame",
    [
        '{"jsonrpc":"2.0","id":1,"method":"GetOrderByIdV1","params":{"orderId":"1"}}',
        '{"id":"\\ud800","method":"m","params":{}}',  # a lone surrogate: orjson refuses, json keeps it
        '{"id":123456789012345678901234567890,"method":"m"}',  # past 64 bits
        '{"id":1,"method":"m","params":{"x":NaN}}',
        '{"id":1,"id":2,"method":"m"}',  # the last key wins in both
        '{"id":1,"method":"m","params":' + "[" * 2000 + "]" * 2000 + "}",
    ],
)
def test_a_frame_reads_as_the_standard_library_read_it(frame: str) -> None:
    try:
        expected = json.loads(frame)
    except RecursionError:
        with pytest.raises(UnreadableFrame):
            peek_request(frame)
        return
    request = peek_request(frame)
    seen = [request.id, request.method, request.params]
    # compared as JSON text: NaN is not equal to itself
    assert json.dumps(seen) == json.dumps([expected.get("id"), expected.get("method"), expected.get("params")])


@pytest.mark.parametrize("frame", ["", "{", "[1]", '"text"', '{"id": 1,}'])
def test_an_unreadable_frame_is_still_refused(frame: str) -> None:
    with pytest.raises(UnreadableFrame):
        peek_request(frame)
