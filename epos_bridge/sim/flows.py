"""Scripted flows that drive the bridge the way Dojo's products do (contract §2.2, §3).

* Pay at Table: find the table's payable orders → get → lock (short expiry, because
  ExtendOrderLock is registered) → pay in parts with tips, extending the lock between parts →
  tell the bridge each payment intent was captured → unlock.
* Bookings: search the coming reservations → seat a party from one → update it as they order
  → end it when they leave.

Each flow talks through a ``send(method, params)`` coroutine returning the whole JSON-RPC
response, so it runs against the gateway simulator (demo, end-to-end tests) or straight against
a dispatcher. A flow reports what it did; an error answer ends the flow and is reported too.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from epos_bridge.protocol.base import format_utc

Send = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
Clock = Callable[[], datetime]

PAY_AT_TABLE = "PayAtTable"
BOOKINGS = "Bookings"


@dataclass
class FlowReport:
    name: str
    steps: list[str] = field(default_factory=list)
    error: str | None = None
    payments: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(orderId, paymentIntentId, paid, tip) for each payment the bridge accepted."""

    @property
    def ok(self) -> bool:
        return self.error is None


class FlowFailed(Exception):
    pass


def _headers(product: str, device: str, waiter: str | None = None) -> dict[str, Any]:
    headers = {"dojoRequestingProduct": product, "deviceId": device, "deviceType": "terminal"}
    if waiter:
        headers["waiterId"] = waiter
    return headers


async def _call(send: Send, report: FlowReport, method: str, params: dict[str, Any]) -> Any:
    response = await send(method, params)
    if "error" in response:
        error = response["error"]
        report.steps.append(f"{method} → {error.get('errorType')}")
        raise FlowFailed(f"{method} answered {error.get('errorType')}: {error.get('debugMessage', '')}")
    report.steps.append(f"{method} → ok")
    return response["result"]


async def pay_at_table(
    send: Send,
    *,
    table_id: str | None = None,
    rng: random.Random | None = None,
    now: Clock = lambda: datetime.now(UTC),
    device_id: str = "sim-terminal-1",
    parts: int = 2,
    tip_percent: int = 10,
    on_captured: Callable[[str], Awaitable[None]] | None = None,
) -> FlowReport:
    """Settle one payable dine-in order in ``parts`` payments. ``on_captured`` lets the caller
    mark the payment intent captured at the simulated Dojo before the HandleEvent is sent."""
    rng = rng or random.Random()  # noqa: S311 - choosing a demo table, not a secret
    report = FlowReport("Pay at Table")
    headers = _headers(PAY_AT_TABLE, device_id)
    try:
        order = await _choose_order(send, report, headers, table_id, rng)
        if order is None:
            report.steps.append("no payable order at the table")
            return report
        order_id = order["id"]
        order = await _call(send, report, "GetOrderByIdV1", {"headers": headers, "orderId": order_id})
        lock_id = f"lock_{uuid.uuid4().hex[:12]}"

        def expiry() -> str:
            return format_utc(now() + timedelta(seconds=60))  # short expiry: ExtendOrderLock is registered

        await _call(
            send,
            report,
            "CreateOrderLockV1",
            {"headers": headers, "orderId": order_id, "lockId": lock_id, "expiry": expiry()},
        )
        try:
            outstanding = order["totalAmount"]["value"] - order["paidAmount"]["value"]
            currency = order["totalAmount"]["currencyCode"]
            for share in _split(outstanding, parts):
                intent = f"pi_sim_{uuid.uuid4().hex[:16]}"
                tip = share * tip_percent // 100
                await _call(
                    send,
                    report,
                    "ExtendOrderLockV1",
                    {"headers": headers, "orderId": order_id, "lockId": lock_id, "expiry": expiry()},
                )
                await _call(
                    send,
                    report,
                    "RecordOrderPaymentByIdV1",
                    {
                        "headers": headers,
                        "orderId": order_id,
                        "paymentIntentId": intent,
                        "paidAmount": {"value": share, "currencyCode": currency},
                        "tipsAmount": {"value": tip, "currencyCode": currency},
                        "lockId": lock_id,
                    },
                )
                report.payments.append((order_id, intent, share, tip))
                if on_captured is not None:
                    await on_captured(intent)
                await _call(send, report, "HandleEventV1", _captured_event(intent, now()))
        finally:
            await _call(send, report, "DeleteOrderLockV1", {"headers": headers, "orderId": order_id, "lockId": lock_id})
    except FlowFailed as failure:
        report.error = str(failure)
    return report


async def _choose_order(
    send: Send, report: FlowReport, headers: dict[str, Any], table_id: str | None, rng: random.Random
) -> dict[str, Any] | None:
    search: dict[str, Any] = {"headers": headers, "payableOnly": True, "cursor": {"limit": 100}}
    if table_id is not None:
        search["dineIn"] = {"tableId": table_id}
    page = await _call(send, report, "SearchOrdersV1", search)
    dine_in = [
        o for o in page["data"] if o["details"].get("dineIn") is not None and o["details"]["dineIn"].get("tableId")
    ]
    return rng.choice(dine_in) if dine_in else None


def _split(amount: int, parts: int) -> list[int]:
    """``amount`` in ``parts`` near-equal positive shares that add up exactly."""
    parts = max(1, min(parts, amount))
    share, rest = divmod(amount, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


def _captured_event(payment_intent_id: str, at: datetime) -> dict[str, Any]:
    return {
        "headers": {},
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "accountId": "acc_sim_demo",
        "event": "payment_intent.status_updated",
        "createdAt": format_utc(at),
        "data": {"paymentIntentId": payment_intent_id, "paymentStatus": "Captured", "captureMode": "Auto"},
    }


async def bookings(
    send: Send,
    *,
    rng: random.Random | None = None,
    now: Clock = lambda: datetime.now(UTC),
    device_id: str = "sim-bookings-1",
) -> FlowReport:
    """Seat the next reservation as a party, mark it ordering, then end it."""
    rng = rng or random.Random()  # noqa: S311 - choosing a demo reservation, not a secret
    report = FlowReport("Bookings")
    headers = _headers(BOOKINGS, device_id)
    try:
        page = await _call(send, report, "SearchReservationsV1", {"headers": headers, "fromTime": format_utc(now())})
        if not page["data"]:
            report.steps.append("no upcoming reservation")
            return report
        reservation = rng.choice(page["data"])
        seated_at = now()
        dojo_party_id = f"dojo_party_{uuid.uuid4().hex[:12]}"
        party = await _call(
            send,
            report,
            "CreatePartyV1",
            {
                "headers": headers,
                "startTime": format_utc(seated_at),
                "tableIds": reservation["tableIds"],
                "dojoPartyId": dojo_party_id,
                "name": reservation["name"],
                "covers": reservation["covers"],
                "status": "Seated",
                "reservationId": reservation["id"],
                "expectedEndTime": format_utc(seated_at + timedelta(hours=2)),
            },
        )
        base = {
            "headers": headers,
            "id": party["id"],
            "dojoPartyId": dojo_party_id,
            "startTime": party["startTime"],
            "tableIds": party["tableIds"],
            "name": party.get("name"),
            "covers": party.get("covers"),
            "expectedEndTime": party.get("expectedEndTime"),
        }
        base = {k: v for k, v in base.items() if v is not None}
        await _call(send, report, "UpdatePartyV1", {**base, "status": "Ordered"})
        await _call(send, report, "GetPartyByIdV1", {"headers": headers, "partyId": party["id"]})
        await _call(send, report, "UpdatePartyV1", {**base, "status": "Left", "endTime": format_utc(now())})
    except FlowFailed as failure:
        report.error = str(failure)
    return report


ORDER_AND_PAY = "OrderAndPay"

_MENU = (
    ("Kettle Burger", "BRG-01", 1295, ("Extra cheese", "MOD-CHS", 100)),
    ("Fish & Chips", "FSH-01", 1450, ("Mushy peas", "MOD-PEA", 150)),
    ("Caesar Salad", "SAL-02", 950, ("Add chicken", "MOD-CHK", 300)),
    ("Sticky Toffee Pudding", "DES-01", 695, ("Custard", "MOD-CUS", 75)),
)


async def order_and_pay(
    send: Send,
    *,
    rng: random.Random | None = None,
    device_id: str = "sim-phone-1",
    currency: str = "GBP",
) -> FlowReport:
    """A guest orders from their phone at a table: Dojo creates the order on the POS."""
    rng = rng or random.Random()  # noqa: S311 - choosing demo dishes, not a secret
    report = FlowReport("Order and Pay")
    headers = _headers(ORDER_AND_PAY, device_id)
    try:
        tables = await _call(send, report, "SearchTablesV1", {"headers": headers, "cursor": {"limit": 100}})
        if not tables["data"]:
            report.steps.append("the POS has no tables")
            return report
        table = rng.choice(tables["data"])
        items = []
        total = 0
        for name, plu, price, (mod_name, mod_plu, mod_price) in rng.sample(_MENU, k=2):
            quantity = rng.randint(1, 2)
            with_modifier = rng.random() < 0.5
            item: dict[str, Any] = {
                "name": name,
                "plu": plu,
                "quantity": quantity,
                "amountPerItem": {"value": price, "currencyCode": currency},
            }
            total += quantity * price
            if with_modifier:
                item["modifiers"] = [
                    {
                        "name": mod_name,
                        "plu": mod_plu,
                        "quantity": 1,
                        "amountPerModifier": {"value": mod_price, "currencyCode": currency},
                    }
                ]
                total += quantity * mod_price
            items.append(item)
        await _call(
            send,
            report,
            "CreateOrderV1",
            {
                "headers": headers,
                "items": items,
                "totalAmount": {"value": total, "currencyCode": currency},
                "dojoOrderId": f"dojo_order_{uuid.uuid4().hex[:12]}",
                "payments": [],
                "details": {"orderType": "DineIn", "dineIn": {"tableId": table["id"]}},
                "displayName": f"{table['name']} (phone order)",
            },
        )
    except FlowFailed as failure:
        report.error = str(failure)
    return report
