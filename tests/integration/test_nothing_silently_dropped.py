"""CreateOrder through a mapping that has nowhere for a field: refused naming it, nothing stored.

The shipped Floreant mapping stores every field (the contract suite's
``test_create_order_stores_every_field_as_sent_or_refuses_it_by_name``); here its create
statement is changed as an installer might get it wrong, dropping the service charge and the
modifiers' quantities, and the bridge must say so rather than bill something else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, load
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.testing.contract_suite import STANDARD_VENUE, failed, money, ok, order_params
from tests.helpers.floreant import FloreantTill, floreant
from tests.helpers.pos import sqlmap_pos


def mapping_with(tmp_path: Path, old: str, new: str) -> Any:
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "careless.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load(str(path))


@pytest.mark.parametrize(
    ("old", "new", "change", "field"),
    [
        (
            "COALESCE(:service_charge_amount, 0) / 100.0",
            "0",
            {"totalAmount": money(1100), "serviceChargeAmount": money(100)},
            "serviceChargeAmount",
        ),
        (
            "  m.ITEM_COUNT AS quantity,",
            "  1 AS quantity,",
            {"items": [{"name": "Burger", "plu": "BURG", "quantity": 1, "amountPerItem": money(900),
                        "modifiers": [{"name": "Cheese", "plu": "CHS", "quantity": 2, "amountPerModifier": money(50)}]}]},
            "items[0].modifiers[0].quantity",
        ),
    ],
)  # fmt: skip
async def test_a_field_the_mapping_drops_is_refused_by_name_and_nothing_is_stored(
    tmp_path: Path, old: str, new: str, change: dict[str, Any], field: str
) -> None:
    path = tmp_path / "floreant.db"
    FloreantTill(path).seed(STANDARD_VENUE)
    mapping = mapping_with(tmp_path, old, new)
    setup.attach(path, mapping)
    adapter = sqlmap_pos(path, mapping)
    dispatcher = Dispatcher(adapter)
    try:

        async def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
            frame = {"jsonrpc": "2.0", "id": "r1", "method": method, "params": {"headers": {}, **params}}
            served = await dispatcher.handle_text(json.dumps(frame))
            assert served is not None
            answer: dict[str, Any] = json.loads(served.response_text)
            return answer

        error = failed(await rpc("CreateOrderV1", {**order_params("dojo-1"), **change}), "InvalidRequest")
        assert error["debugMessage"].startswith(field), error
        assert ok(await rpc("SearchOrdersV1", {}))["data"] == []
        # The same order without the field goes through.
        assert ok(await rpc("CreateOrderV1", order_params("dojo-2")))["totalAmount"] == money(1000)
    finally:
        await adapter.close()


@pytest.mark.parametrize(("count", "answered"), [(2, 2), (2.0, 2), (0.5, None), ("3", 3)])
async def test_a_fractional_quantity_on_the_till_is_never_truncated(
    tmp_path: Path, count: object, answered: int | None
) -> None:
    path = tmp_path / "floreant.db"
    till = FloreantTill(path)
    till.seed(STANDARD_VENUE)
    order = till.add_open_order("T1", 1000, "GBP")
    till._sql("UPDATE TICKET_ITEM SET ITEM_COUNT = ? WHERE TICKET_ID = ?", (count, order))
    adapter = sqlmap_pos(path, floreant())
    dispatcher = Dispatcher(adapter)
    try:
        frame = {"jsonrpc": "2.0", "id": "r1", "method": "GetOrderByIdV1", "params": {"headers": {}, "orderId": order}}
        served = await dispatcher.handle_text(json.dumps(frame))
        assert served is not None
        answer = json.loads(served.response_text)
        if answered is None:
            assert failed(answer, "UnexpectedError")["debugMessage"].startswith("An order line's quantity")
        else:
            assert ok(answer)["items"][0]["quantity"] == answered
    finally:
        await adapter.close()
