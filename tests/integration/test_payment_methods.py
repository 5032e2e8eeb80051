"""Payments and payment-intent events through the real dispatcher and SQLite file.

RecordOrderPaymentByIdV1 (contract §3.9, §4.1) and HandleEventV1 (§3.22, §4.7). The rule that
matters most: a payment already recorded under its ``paymentIntentId`` is success, never
``Conflict``, because Conflict makes Dojo reverse money the customer really paid. Counts of
stored rows come from the POS file, since the wire cannot show a duplicate that was not stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from epos_bridge.domain.events import DomainEvent, LockRefused, PaymentRecorded, PaymentStatusChanged
from tests.conftest import Rpc
from tests.helpers.builders import (
    event_params,
    failed,
    get_order,
    lock_params,
    minutes_from_now,
    money,
    new_order,
    ok,
    order_id_params,
    payment_params,
    scalar,
    search_order_ids,
    sql,
)


def payment_rows(path: Path, payment_intent_id: str) -> int:
    return int(scalar(path, "SELECT COUNT(*) FROM payments WHERE payment_intent_id = ?", [payment_intent_id]))


def stored_status(path: Path, payment_intent_id: str) -> str:
    return str(scalar(path, "SELECT status FROM payments WHERE payment_intent_id = ?", [payment_intent_id]))


@pytest.fixture
async def order(rpc: Rpc) -> dict[str, Any]:
    """A £100.00 order on table T1."""
    created: dict[str, Any] = await new_order(rpc, "dojo-pay", total=10000)
    return created


# --- RecordOrderPaymentByIdV1: success -----------------------------------------------------


async def test_payment_with_tip_is_recorded_and_the_tip_is_kept_apart(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_40", 4000, tips=500)))

    assert paid["paidAmount"] == money(4000), "the tip is not inside paidAmount"
    assert paid["tipsAmount"] == money(500)
    assert paid["totalAmount"] == money(10000)
    assert paid["payments"] == [{"paymentIntentId": "pi_40", "paidAmount": money(4000), "tipsAmount": money(500)}]
    assert paid["payable"] is True
    assert await get_order(rpc, order["id"]) == paid
    [row] = sql(pos_db_path, "SELECT * FROM payments WHERE payment_intent_id = 'pi_40'")
    assert (row["paid_amount"], row["tips_amount"], row["status"]) == (4000, 500, "Recorded")
    assert (row["dojo_requesting_product"], row["device_id"]) == ("PayAtTable", "term-1")
    [event] = [e for e in published if isinstance(e, PaymentRecorded)]
    assert (event.order_id, event.payment_intent_id, event.amount.value) == (order["id"], "pi_40", 4000)


async def test_split_payments_until_fully_paid_make_the_order_not_payable(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    first = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_a", 3000, tips=300)))
    second = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_b", 3000)))
    last = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_c", 4000, tips=400)))

    assert (first["payable"], second["payable"], last["payable"]) == (True, True, False)
    assert last["paidAmount"] == money(10000)
    assert last["tipsAmount"] == money(700)
    assert [p["paymentIntentId"] for p in last["payments"]] == ["pi_a", "pi_b", "pi_c"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payments WHERE order_id = ?", [order["id"]]) == 3


async def test_payment_with_the_lock_id_of_the_holding_lock_is_accepted(rpc: Rpc, order: dict[str, Any]) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))

    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 2500, lock_id="lock-1")))

    assert paid["paidAmount"] == money(2500)


async def test_payment_without_lock_id_while_the_order_is_locked_is_accepted(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    # Dojo may leave lockId out even while it holds the lock, and any error here makes Dojo
    # reverse a payment the customer really made (contract §3.9). Refusing only when lockId
    # names a *different* active lock keeps a wrong Conflict from reversing real money.
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))

    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 2500)))

    assert paid["paidAmount"] == money(2500)
    assert payment_rows(pos_db_path, "pi_1") == 1


async def test_payment_with_the_lock_id_of_an_expired_lock_is_accepted_when_nobody_else_holds_it(
    rpc: Rpc, order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(-1))))

    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 2500, lock_id="lock-1")))

    assert paid["paidAmount"] == money(2500)


# --- RecordOrderPaymentByIdV1: de-duplication ----------------------------------------------


async def test_replayed_payment_returns_the_order_and_counts_once(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    first = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000, tips=500)))

    replay = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000, tips=500)))

    assert replay == first
    assert replay["paidAmount"] == money(4000)
    assert payment_rows(pos_db_path, "pi_1") == 1
    assert len([e for e in published if isinstance(e, PaymentRecorded)]) == 1


async def test_replayed_payment_after_the_order_is_fully_paid_is_success(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 6000)))
    full = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_2", 4000)))

    replay = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 6000)))

    assert replay == full
    assert replay["payable"] is False
    assert payment_rows(pos_db_path, "pi_1") == 1


@pytest.mark.parametrize("closed_status", ["Canceled", "Finalized"])
async def test_replayed_payment_after_the_order_was_closed_is_success_never_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any], closed_status: str
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))
    sql(pos_db_path, "UPDATE orders SET status = ? WHERE id = ?", [closed_status, order["id"]])

    replay = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))

    assert replay["status"] == closed_status
    assert replay["paidAmount"] == money(4000)
    assert payment_rows(pos_db_path, "pi_1") == 1


async def test_replayed_payment_while_another_lock_holds_the_order_is_success(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000, lock_id="lock-1")))
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-2", minutes_from_now(10))))

    replay = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000, lock_id="lock-1")))

    assert replay["paidAmount"] == money(4000)
    assert payment_rows(pos_db_path, "pi_1") == 1


# --- RecordOrderPaymentByIdV1: errors ------------------------------------------------------


async def test_payment_while_another_lock_holds_the_order_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))

    error = failed(
        await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 2500, lock_id="lock-2")),
        "Conflict",
    )

    assert "lock-1" in error["debugMessage"]
    assert payment_rows(pos_db_path, "pi_1") == 0
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(0)
    [refused] = [e for e in published if isinstance(e, LockRefused)]
    assert (refused.order_id, refused.lock_id) == (order["id"], "lock-2")


async def test_payment_on_a_canceled_order_is_a_conflict(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    ok(await rpc("CancelOrderByIdV1", order_id_params(order["id"])))

    error = failed(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 2500)), "Conflict")

    assert "Canceled" in error["debugMessage"]
    assert payment_rows(pos_db_path, "pi_1") == 0


@pytest.mark.parametrize(
    "pos_edit",
    ["UPDATE orders SET status = 'Finalized' WHERE id = ?", "UPDATE orders SET open_at_till = 'till-1' WHERE id = ?"],
    ids=["finalized", "open-at-a-till"],
)
async def test_payment_on_an_order_the_till_has_closed_or_holds_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any], pos_edit: str
) -> None:
    sql(pos_db_path, pos_edit, [order["id"]])

    failed(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 2500)), "Conflict")

    assert payment_rows(pos_db_path, "pi_1") == 0


async def test_payment_above_the_outstanding_amount_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 7000)))

    error = failed(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_2", 3001)), "Conflict")

    assert "3000" in error["debugMessage"]
    assert payment_rows(pos_db_path, "pi_2") == 0
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(7000)


async def test_payment_of_exactly_the_outstanding_amount_with_a_tip_is_accepted(
    rpc: Rpc, order: dict[str, Any]
) -> None:
    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 10000, tips=2000)))

    assert (paid["paidAmount"], paid["tipsAmount"], paid["payable"]) == (money(10000), money(2000), False)


@pytest.mark.parametrize(("paid_currency", "tips_currency"), [("EUR", None), ("GBP", "EUR")], ids=["amount", "tip"])
async def test_payment_in_another_currency_is_an_invalid_request(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any], paid_currency: str, tips_currency: str | None
) -> None:
    params = payment_params(order["id"], "pi_1", 2500, tips=100, currency=paid_currency)
    if tips_currency is not None:
        params["tipsAmount"] = money(100, tips_currency)

    error = failed(await rpc("RecordOrderPaymentByIdV1", params), "InvalidRequest")

    assert "currency" in error["debugMessage"]
    assert payment_rows(pos_db_path, "pi_1") == 0


@pytest.mark.parametrize("order_id", ["999", "abc"])
async def test_payment_on_an_unknown_order_is_not_found(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any], order_id: str
) -> None:
    failed(await rpc("RecordOrderPaymentByIdV1", payment_params(order_id, "pi_1", 2500)), "NotFound")

    assert payment_rows(pos_db_path, "pi_1") == 0


# --- HandleEventV1 -------------------------------------------------------------------------


async def test_payment_intent_created_event_is_stored(rpc: Rpc, pos_db_path: Path) -> None:
    params = event_params("evt_1", "pi_new", "Created", event="payment_intent.created", capture_mode="Manual")

    assert ok(await rpc("HandleEventV1", params)) == {}

    [row] = sql(pos_db_path, "SELECT * FROM payment_intent_events")
    assert (row["event_id"], row["account_id"], row["event"]) == ("evt_1", "acc_test", "payment_intent.created")
    assert (row["payment_intent_id"], row["payment_status"], row["capture_mode"]) == ("pi_new", "Created", "Manual")


async def test_status_updated_event_is_stored(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))

    assert ok(await rpc("HandleEventV1", event_params("evt_1", "pi_1", "Captured"))) == {}

    assert scalar(pos_db_path, "SELECT payment_status FROM payment_intent_events WHERE event_id = 'evt_1'") == (
        "Captured"
    )
    assert stored_status(pos_db_path, "pi_1") == "Captured"
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(4000), "a captured payment still counts"


@pytest.mark.parametrize("status", ["Reversed", "Refunded", "Canceled"])
async def test_a_reversed_refunded_or_canceled_payment_stops_counting(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any], status: str
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_keep", 3000, tips=300)))
    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_gone", 7000, tips=700)))
    assert paid["payable"] is False

    ok(await rpc("HandleEventV1", event_params("evt_1", "pi_gone", status)))

    after = await get_order(rpc, order["id"])
    assert after["paidAmount"] == money(3000)
    assert after["tipsAmount"] == money(300)
    assert after["payable"] is True
    assert [p["paymentIntentId"] for p in after["payments"]] == ["pi_keep"]
    assert stored_status(pos_db_path, "pi_gone") == status
    [changed] = [e for e in published if isinstance(e, PaymentStatusChanged)]
    assert (changed.order_id, changed.payment_intent_id, changed.status.value) == (order["id"], "pi_gone", status)
    assert await search_order_ids(rpc, payable_only=True) == [order["id"]]


async def test_a_replayed_event_changes_nothing(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))
    ok(await rpc("HandleEventV1", event_params("evt_1", "pi_1", "Captured")))

    # Same event id, different content: at-least-once delivery de-duplicates on the id alone.
    assert ok(await rpc("HandleEventV1", event_params("evt_1", "pi_1", "Reversed"))) == {}

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 1
    assert scalar(pos_db_path, "SELECT payment_status FROM payment_intent_events") == "Captured"
    assert stored_status(pos_db_path, "pi_1") == "Captured"
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(4000)


async def test_an_identical_replayed_event_is_stored_once(rpc: Rpc, pos_db_path: Path) -> None:
    params = event_params("evt_1", "pi_1", "Created", event="payment_intent.created")

    ok(await rpc("HandleEventV1", params))
    ok(await rpc("HandleEventV1", params))

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 1


async def test_events_out_of_order_settle_on_the_newest_status(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))
    newer_reversed = event_params("evt_2", "pi_1", "Reversed", created_at=minutes_from_now(-1))
    older_captured = event_params("evt_1", "pi_1", "Captured", created_at=minutes_from_now(-2))

    ok(await rpc("HandleEventV1", newer_reversed))
    ok(await rpc("HandleEventV1", older_captured))

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 2
    assert stored_status(pos_db_path, "pi_1") == "Reversed"
    after = await get_order(rpc, order["id"])
    assert after["paidAmount"] == money(0)
    assert after["payable"] is True


async def test_events_in_order_settle_on_the_newest_status(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))

    ok(await rpc("HandleEventV1", event_params("evt_1", "pi_1", "Authorized", created_at=minutes_from_now(-3))))
    ok(await rpc("HandleEventV1", event_params("evt_2", "pi_1", "Captured", created_at=minutes_from_now(-2))))
    ok(await rpc("HandleEventV1", event_params("evt_3", "pi_1", "Refunded", created_at=minutes_from_now(-1))))

    assert stored_status(pos_db_path, "pi_1") == "Refunded"
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(0)


async def test_an_unknown_event_type_is_acknowledged_and_not_stored(rpc: Rpc, pos_db_path: Path) -> None:
    params = event_params("evt_1", "pi_1", "Captured", event="terminal.session_updated")
    params["data"] = {"anything": ["goes", 1]}

    assert ok(await rpc("HandleEventV1", params)) == {}

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0


async def test_a_malformed_payment_status_is_an_invalid_request_naming_the_field(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))
    params = event_params("evt_1", "pi_1", "Reversed")
    params["data"]["paymentStatus"] = "Bounced"

    error = failed(await rpc("HandleEventV1", params), "InvalidRequest")

    assert "params.data.paymentStatus" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(4000)


async def test_event_data_missing_the_payment_intent_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    params = event_params("evt_1", "pi_1", "Captured")
    del params["data"]["paymentIntentId"]

    error = failed(await rpc("HandleEventV1", params), "InvalidRequest")

    assert "params.data.paymentIntentId" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0


async def test_an_event_for_an_unknown_intent_is_stored_and_a_later_reversed_payment_does_not_count(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("HandleEventV1", event_params("evt_1", "pi_early", "Reversed")))
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events WHERE payment_intent_id = 'pi_early'") == 1

    recorded = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_early", 4000, tips=400)))

    assert recorded["paidAmount"] == money(0)
    assert recorded["tipsAmount"] == money(0)
    assert recorded["payments"] == []
    assert recorded["payable"] is True
    assert stored_status(pos_db_path, "pi_early") == "Reversed"
    assert payment_rows(pos_db_path, "pi_early") == 1


async def test_an_event_for_an_unknown_intent_captured_first_counts_once_recorded(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("HandleEventV1", event_params("evt_1", "pi_early", "Captured")))

    recorded = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_early", 4000)))

    assert recorded["paidAmount"] == money(4000)
    assert stored_status(pos_db_path, "pi_early") == "Captured"


@pytest.mark.logs_warnings("a replay on another order is logged")
async def test_a_payment_intent_already_recorded_on_another_order_counts_once_and_is_not_reversed(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    # contract §3.9 (rec): an already-recorded paymentIntentId is answered with success. Any error
    # would make Dojo reverse pi_1, which the POS rightly holds on the first order; recording it
    # again on the second would count the money twice. So: success, nothing changes.
    other = await new_order(rpc, "dojo-other", total=10000)
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))

    response = await rpc("RecordOrderPaymentByIdV1", payment_params(other["id"], "pi_1", 4000))

    assert "result" in response
    assert response["result"]["id"] == other["id"]
    assert (await get_order(rpc, other["id"]))["paidAmount"] == money(0)
    assert (await get_order(rpc, order["id"]))["paidAmount"] == money(4000)
    assert payment_rows(pos_db_path, "pi_1") == 1
