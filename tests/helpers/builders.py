"""Request builders for the wire-method tests: each builds params the way Dojo would send them.

Every builder checks its own output with :func:`assert_valid_params`, so the tests speak the
contract. A test that needs a malformed request builds a valid one and then breaks it on
purpose, so the breakage is visible in the test itself.

Also here: small helpers to read the outcome of an ``rpc`` call, and to read or change the POS
file directly (for facts that are not visible on the wire, and for what a till would do).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.helpers.contract import assert_valid_params

Rpc = Callable[..., Awaitable[dict[str, Any]]]
Params = dict[str, Any]


def money(value: int, currency: str = "GBP") -> dict[str, Any]:
    return {"value": value, "currencyCode": currency}


# --- time ------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``, as Dojo sends date-times (contract §4.4)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def minutes_from_now(minutes: float) -> str:
    """A wire date-time relative to the real clock the adapter uses (negative: in the past)."""
    return iso(datetime.now(UTC) + timedelta(minutes=minutes))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- reading responses -----------------------------------------------------------------


def ok(response: dict[str, Any]) -> Any:
    """The result of a successful response; fails loudly with the error otherwise."""
    assert "error" not in response, f"expected success, got {response['error']}"
    return response["result"]


def failed(response: dict[str, Any], error_type: str) -> dict[str, Any]:
    """The EPOSError of a failed response, checked to be of ``error_type`` and traceable."""
    assert "result" not in response, f"expected {error_type}, got result {response.get('result')}"
    error: dict[str, Any] = response["error"]
    assert error["errorType"] == error_type, f"expected {error_type}, got {error}"
    assert error.get("traceId"), "every error carries a traceId"
    return error


# --- orders ----------------------------------------------------------------------------


def item(name: str = "Burger", plu: str = "BURG", quantity: int = 1, price: int = 1000, **extra: Any) -> Params:
    return {"name": name, "plu": plu, "quantity": quantity, "amountPerItem": money(price), **extra}


def create_order_params(
    dojo_order_id: str,
    *,
    total: int = 1000,
    currency: str = "GBP",
    table_id: str | None = "T1",
    waiter_id: str | None = None,
    party_id: str | None = None,
    reservation_id: str | None = None,
    items: Sequence[Params] | None = None,
    payments: Sequence[Params] = (),
    **extra: Any,
) -> Params:
    """A DineIn order whose single item costs ``total`` unless ``items`` says otherwise."""
    dine_in = {
        key: value
        for key, value in (
            ("tableId", table_id),
            ("waiterId", waiter_id),
            ("partyId", party_id),
            ("reservationId", reservation_id),
        )
        if value is not None
    }
    params: Params = {
        "headers": {},
        "items": list(items) if items is not None else [item(price=total)],
        "totalAmount": money(total, currency),
        "dojoOrderId": dojo_order_id,
        "payments": list(payments),
        "details": {"orderType": "DineIn", "dineIn": dine_in},
        **extra,
    }
    assert_valid_params("CreateOrderV1", params)
    return params


async def new_order(rpc: Rpc, dojo_order_id: str, **kwargs: Any) -> dict[str, Any]:
    """Create an order through the wire and return it as the EPOS stored it."""
    order: dict[str, Any] = ok(await rpc("CreateOrderV1", create_order_params(dojo_order_id, **kwargs)))
    return order


def checked_params(method: str, headers: Params | None = None, **fields: Any) -> Params:
    """``method``'s params: the headers and every field given a value (``None`` leaves it out, as
    an optional field is left out on the wire), checked against the contract's schema."""
    params: Params = {"headers": headers or {}, **{name: value for name, value in fields.items() if value is not None}}
    assert_valid_params(method, params)
    return params


def order_id_params(order_id: str) -> Params:
    return checked_params("GetOrderByIdV1", orderId=order_id)


async def get_order(rpc: Rpc, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = ok(await rpc("GetOrderByIdV1", order_id_params(order_id)))
    return order


def search_orders_params(
    *, dine_in: Params | None = None, payable_only: bool | None = None, cursor: Params | None = None
) -> Params:
    return checked_params("SearchOrdersV1", dineIn=dine_in, payableOnly=payable_only, cursor=cursor)


async def search_order_ids(rpc: Rpc, **kwargs: Any) -> list[str]:
    page = ok(await rpc("SearchOrdersV1", search_orders_params(**kwargs)))
    return [order["id"] for order in page["data"]]


# --- locks -----------------------------------------------------------------------------


def lock_params(order_id: str, lock_id: str, expiry: str, method: str = "CreateOrderLockV1") -> Params:
    return checked_params(
        method, {"dojoRequestingProduct": "PayAtTable"}, orderId=order_id, lockId=lock_id, expiry=expiry
    )


def extend_params(order_id: str, lock_id: str, expiry: str) -> Params:
    return lock_params(order_id, lock_id, expiry, "ExtendOrderLockV1")


def unlock_params(order_id: str, lock_id: str) -> Params:
    return checked_params("DeleteOrderLockV1", orderId=order_id, lockId=lock_id)


# --- payments and events ---------------------------------------------------------------


def payment_params(
    order_id: str,
    payment_intent_id: str,
    paid: int,
    *,
    tips: int | None = None,
    lock_id: str | None = None,
    currency: str = "GBP",
) -> Params:
    return checked_params(
        "RecordOrderPaymentByIdV1",
        {"dojoRequestingProduct": "PayAtTable", "deviceId": "term-1"},
        orderId=order_id,
        paymentIntentId=payment_intent_id,
        paidAmount=money(paid, currency),
        tipsAmount=None if tips is None else money(tips, currency),
        lockId=lock_id,
    )


def event_params(
    event_id: str,
    payment_intent_id: str,
    status: str,
    *,
    created_at: str | None = None,
    event: str = "payment_intent.status_updated",
    capture_mode: str = "Auto",
) -> Params:
    params: Params = {
        "headers": {},
        "id": event_id,
        "accountId": "acc_test",
        "event": event,
        "createdAt": created_at or minutes_from_now(0),
        "data": {"paymentIntentId": payment_intent_id, "paymentStatus": status, "captureMode": capture_mode},
    }
    assert_valid_params("HandleEventV1", params)
    return params


# --- parties and reservations ----------------------------------------------------------


def create_party_params(dojo_party_id: str, *, table_ids: Sequence[str] = ("T1",), **extra: Any) -> Params:
    params: Params = {
        "headers": {},
        "dojoPartyId": dojo_party_id,
        "startTime": "2025-03-14T19:00:00.000Z",
        "tableIds": list(table_ids),
        **extra,
    }
    assert_valid_params("CreatePartyV1", params)
    return params


def update_party_params(
    party_id: str, dojo_party_id: str, *, status: str = "Seated", table_ids: Sequence[str] = ("T1",), **extra: Any
) -> Params:
    params: Params = {
        "headers": {},
        "id": party_id,
        "dojoPartyId": dojo_party_id,
        "startTime": "2025-03-14T19:00:00.000Z",
        "status": status,
        "tableIds": list(table_ids),
        **extra,
    }
    assert_valid_params("UpdatePartyV1", params)
    return params


def party_id_params(party_id: str, method: str = "GetPartyByIdV1") -> Params:
    return checked_params(method, partyId=party_id)


def search_parties_params(
    *, table_id: str | None = None, completed_only: bool | None = None, cursor: Params | None = None
) -> Params:
    return checked_params("SearchPartiesV1", tableId=table_id, completedOnly=completed_only, cursor=cursor)


def create_reservation_params(
    dojo_reservation_id: str,
    *,
    start: str = "2025-03-14T19:00:00.000Z",
    end: str = "2025-03-14T21:00:00.000Z",
    table_ids: Sequence[str] = ("T1",),
    name: str = "Ada Lovelace",
    covers: int = 2,
    **extra: Any,
) -> Params:
    params: Params = {
        "headers": {},
        "dojoReservationId": dojo_reservation_id,
        "name": name,
        "covers": covers,
        "startTime": start,
        "endTime": end,
        "tableIds": list(table_ids),
        **extra,
    }
    assert_valid_params("CreateReservationV1", params)
    return params


def update_reservation_params(reservation_id: str, dojo_reservation_id: str, **kwargs: Any) -> Params:
    params = create_reservation_params(dojo_reservation_id, **kwargs)
    params["id"] = reservation_id
    assert_valid_params("UpdateReservationV1", params)
    return params


def reservation_id_params(reservation_id: str, method: str = "GetReservationByIdV1") -> Params:
    return checked_params(method, reservationId=reservation_id)


def search_reservations_params(
    *,
    table_id: str | None = None,
    from_time: str | None = None,
    to_time: str | None = None,
    cursor: Params | None = None,
) -> Params:
    return checked_params("SearchReservationsV1", tableId=table_id, fromTime=from_time, toTime=to_time, cursor=cursor)


def search_tables_params(
    *, area_id: str | None = None, waiter_id: str | None = None, cursor: Params | None = None
) -> Params:
    return checked_params("SearchTablesV1", areaId=area_id, waiterId=waiter_id, cursor=cursor)


# --- pagination ------------------------------------------------------------------------


async def walk_forward(rpc: Rpc, method: str, build: Callable[..., Params], limit: int) -> list[dict[str, Any]]:
    """Every page from the first, following ``after`` until it is omitted."""
    pages = [ok(await rpc(method, build(cursor={"limit": limit})))]
    while "after" in pages[-1]:
        pages.append(ok(await rpc(method, build(cursor={"limit": limit, "after": pages[-1]["after"]}))))
        assert len(pages) < 100, "pagination does not terminate"
    return pages


async def walk_back(rpc: Rpc, method: str, build: Callable[..., Params], limit: int, page: Params) -> list[Params]:
    """Pages before ``page``, nearest first, following ``before`` until it is omitted."""
    pages: list[Params] = []
    while "before" in page:
        page = ok(await rpc(method, build(cursor={"limit": limit, "before": page["before"]})))
        pages.append(page)
        assert len(pages) < 100, "pagination does not terminate"
    return pages


async def page_ids_both_ways(
    rpc: Rpc, method: str, build: Callable[..., Params], limit: int
) -> tuple[list[list[str]], list[list[str]]]:
    """The ids on every page walking forward from the first, then back from the last (nearest
    first); checks the two ends omit the cursor that would lead off the list."""
    forward = await walk_forward(rpc, method, build, limit)
    backward = await walk_back(rpc, method, build, limit, forward[-1])
    assert "before" not in forward[0] and "after" not in forward[-1]
    assert not backward or "before" not in backward[-1]
    return [[e["id"] for e in page["data"]] for page in forward], [[e["id"] for e in page["data"]] for page in backward]


def forged_cursor(document: Any) -> str:
    """A cursor in this POS's format (base64url JSON) with chosen content, as a tamperer would."""
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


# --- the POS file itself ---------------------------------------------------------------


def sql(path: Path, statement: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """Run one statement on the POS file, as the till or a support engineer would, and commit."""
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(statement, list(args)).fetchall()
        conn.commit()
        return rows


def scalar(path: Path, statement: str, args: Sequence[Any] = ()) -> Any:
    rows = sql(path, statement, args)
    assert len(rows) == 1, f"expected one row from {statement!r}, got {len(rows)}"
    return rows[0][0]
