from tests.conftest import Rpc, money


async def test_create_then_get_order_round_trips(rpc: Rpc) -> None:
    created = await rpc(
        "CreateOrderV1",
        {
            "items": [{"name": "Burger", "plu": "B1", "quantity": 1, "amountPerItem": money(1000)}],
            "totalAmount": money(1000),
            "dojoOrderId": "dojo-1",
            "payments": [],
            "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}},
        },
    )
    order_id = created["result"]["id"]
    fetched = await rpc("GetOrderByIdV1", {"orderId": order_id})
    assert fetched["result"]["totalAmount"] == money(1000)
    assert fetched["result"]["payable"] is True
