"""A POS's own shapes are mapped faithfully or refused, never silently changed: CreateOrder
through a mapping that has nowhere for a field (refused naming it, nothing stored), a fractional
quantity on the till (never truncated), a POS keeping local wall-clock time (read and written in
its zone).

The shipped Floreant mapping stores every field (the contract suite's
``test_create_order_stores_every_field_as_sent_or_refuses_it_by_name``); here its create
statement is changed as an installer might get it wrong, dropping the service charge and the
modifiers' quantities, and the bridge must say so rather than bill something else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, load
from epos_bridge.testing.contract_suite import STANDARD_VENUE, failed, money, ok, order_params, pay
from tests.helpers.builders import read_only
from tests.helpers.contract import rpc_over
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
    rpc = rpc_over(adapter)
    try:
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
    rpc = rpc_over(adapter)
    try:
        answer = await rpc("GetOrderByIdV1", {"orderId": order})
        if answered is None:
            assert failed(answer, "UnexpectedError")["debugMessage"].startswith("An order line's quantity")
        else:
            assert ok(answer)["items"][0]["quantity"] == answered
    finally:
        await adapter.close()


async def test_a_pos_that_keeps_local_time_is_read_and_written_in_its_zone(tmp_path: Path) -> None:
    """Floreant set up to write Europe/London wall-clock text: the mapping reads its columns as
    they are and names the zone; the bridge converts both ways."""
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    text = text.replace("strftime('%Y-%m-%dT%H:%M:%fZ', ", "(").replace(
        'timezone = "UTC"', 'timezone = "Europe/London"'
    )
    (tmp_path / "london.toml").write_text(text, encoding="utf-8")
    mapping = load(str(tmp_path / "london.toml"))
    path = tmp_path / "floreant.db"
    till = FloreantTill(path)
    till.seed(STANDARD_VENUE)
    setup.attach(path, mapping)
    order = till.add_open_order("T1", 1000, "GBP")
    till._sql("UPDATE TICKET SET MODIFIED_TIME = '2026-07-01 13:00:00.000' WHERE ID = ?", (order,))
    adapter = sqlmap_pos(path, mapping)
    rpc = rpc_over(adapter)
    try:
        assert ok(await rpc("GetOrderByIdV1", {"orderId": order}))["updatedAt"] == "2026-07-01T12:00:00.000Z"
        before = datetime.now(UTC)
        ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 1000)))
        [(written,)] = read_only(path, "SELECT TRANSACTION_TIME FROM TRANSACTIONS WHERE TICKET_ID = ?", [int(order)])
        local = datetime.fromisoformat(written).replace(tzinfo=ZoneInfo("Europe/London"))
        assert abs(local - before) < timedelta(minutes=1), f"{written} is not London time now"
    finally:
        await adapter.close()


@pytest.mark.logs_warnings("the replay is answered from the record, and says why")
async def test_a_recorded_payment_replayed_after_the_till_wrote_a_fraction_is_still_success(tmp_path: Path) -> None:
    """The order cannot be read now (0.5 of a line), but Dojo's retry must not be an error."""
    path = tmp_path / "floreant.db"
    till = FloreantTill(path)
    till.seed(STANDARD_VENUE)
    order = till.add_open_order("T1", 1000, "GBP")
    adapter = sqlmap_pos(path, floreant())
    rpc = rpc_over(adapter)
    try:
        first = ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 400)))
        till._sql("UPDATE TICKET_ITEM SET ITEM_COUNT = 0.5 WHERE TICKET_ID = ?", (order,))
        assert ok(await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_1", 400))) == first
        failed(
            await rpc("RecordOrderPaymentByIdV1", pay(order, "pi_2", 100)), "UnexpectedError"
        )  # a new one: not served
    finally:
        await adapter.close()
