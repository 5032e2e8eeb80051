"""Order locks through the real dispatcher and SQLite file (contract §2.2, §3.5-3.7, §6 A4/A5).

CreateOrderLockV1, ExtendOrderLockV1 and DeleteOrderLockV1, in each of the three ways Dojo
uses them depending on what the POS registered. Expiry is driven by timestamps in the past or
future against the adapter's real clock, never by sleeping. ``order_locks`` is read from the POS
file because the wire never shows a lock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.domain.events import DomainEvent, LockCreated, LockExpired, LockExtended, LockRefused, LockReleased
from tests.conftest import Rpc
from tests.helpers.builders import (
    extend_params,
    failed,
    get_order,
    iso,
    lock_params,
    minutes_from_now,
    money,
    new_order,
    ok,
    order_id_params,
    parse_time,
    payment_params,
    sql,
    unlock_params,
)


def held_lock(path: Path, order_id: str) -> dict[str, Any] | None:
    rows = sql(path, "SELECT * FROM order_locks WHERE order_id = ?", [order_id])
    return dict(rows[0]) if rows else None


def the_lock(path: Path, order_id: str) -> tuple[str, datetime]:
    """(lock id, expiry) of the lock ``order_id`` holds; fails the test when it holds none."""
    lock = held_lock(path, order_id)
    assert lock is not None, f"order {order_id} holds no lock"
    return lock["lock_id"], parse_time(lock["expires_at"])


def of_type(published: list[DomainEvent], kind: type[DomainEvent]) -> list[Any]:
    return [event for event in published if isinstance(event, kind)]


def age_order(path: Path, order_id: str, minutes: int) -> None:
    """Pretend nobody touched the order for ``minutes``: move its last change into the past."""
    stamp = iso(datetime.now(UTC) - timedelta(minutes=minutes))
    sql(path, "UPDATE orders SET updated_at = ? WHERE id = ?", [stamp, order_id])


def touch_order(path: Path, order_id: str) -> None:
    """A till edits the order now."""
    sql(path, "UPDATE orders SET updated_at = ? WHERE id = ?", [minutes_from_now(0), order_id])


@pytest.fixture
async def order(rpc: Rpc) -> dict[str, Any]:
    created: dict[str, Any] = await new_order(rpc, "dojo-lock", total=4000)
    return created


# --- the three registration modes (contract §2.2) ------------------------------------------


async def test_mode_payment_only_records_without_any_lock(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    paid = ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000)))

    assert paid["paidAmount"] == money(4000)
    assert paid["payable"] is False
    assert held_lock(pos_db_path, order["id"]) is None


async def test_mode_create_and_delete_with_a_long_expiry(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    expiry = minutes_from_now(60)

    locked = ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-long", expiry)))
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 1500, lock_id="lock-long")))
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_2", 2500, lock_id="lock-long")))
    released = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-long")))

    assert locked == order, "CreateOrderLock returns the full current order (contract §6 A5)"
    assert released["paidAmount"] == money(4000)
    assert released["payable"] is False
    assert released == await get_order(rpc, order["id"])
    assert held_lock(pos_db_path, order["id"]) is None
    assert [type(e).__name__ for e in published] == [
        "LockCreated",
        "PaymentRecorded",
        "PaymentRecorded",
        "LockReleased",
    ]


async def test_mode_create_extend_and_delete_with_a_short_expiry(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-short", minutes_from_now(1))))
    first_extension = minutes_from_now(2)
    assert ok(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-short", first_extension))) == {}
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_1", 4000, lock_id="lock-short")))
    second_extension = minutes_from_now(3)
    assert ok(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-short", second_extension))) == {}
    lock = held_lock(pos_db_path, order["id"])
    released = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-short")))

    assert lock is not None
    assert parse_time(lock["expires_at"]) == parse_time(second_extension)
    assert released["payable"] is False
    assert held_lock(pos_db_path, order["id"]) is None
    assert [type(e).__name__ for e in published] == [
        "LockCreated",
        "LockExtended",
        "PaymentRecorded",
        "LockExtended",
        "LockReleased",
    ]


# --- CreateOrderLockV1 ---------------------------------------------------------------------


async def test_create_lock_stores_the_lock_and_who_asked(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    expiry = minutes_from_now(10)

    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", expiry)))

    assert the_lock(pos_db_path, order["id"]) == ("lock-1", parse_time(expiry))
    assert (held_lock(pos_db_path, order["id"]) or {}).get("dojo_requesting_product") == "PayAtTable"
    [created] = of_type(published, LockCreated)
    assert (created.order_id, created.lock_id) == (order["id"], "lock-1")
    assert created.expires_at == parse_time(expiry)
    assert created.order.table_id == "T1"


async def test_create_lock_while_another_lock_holds_the_order_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))

    error = failed(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-2", minutes_from_now(10))), "Conflict")

    assert "lock-1" in error["debugMessage"]
    assert the_lock(pos_db_path, order["id"])[0] == "lock-1"
    [refused] = of_type(published, LockRefused)
    assert (refused.order_id, refused.lock_id) == (order["id"], "lock-2")
    assert len(of_type(published, LockCreated)) == 1


async def test_create_lock_again_with_the_same_lock_id_is_success(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    later = minutes_from_now(20)
    first = ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))

    again = ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", later)))

    assert again == first
    assert the_lock(pos_db_path, order["id"]) == ("lock-1", parse_time(later)), "a repeat keeps the later expiry"
    assert len(of_type(published, LockCreated)) == 1
    assert of_type(published, LockRefused) == []


async def test_an_expired_lock_counts_as_released_so_another_lock_id_can_take_the_order(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-stale", minutes_from_now(-5))))
    expiry = minutes_from_now(10)

    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-new", expiry)))

    assert the_lock(pos_db_path, order["id"]) == ("lock-new", parse_time(expiry))
    [expired] = of_type(published, LockExpired)
    assert (expired.order_id, expired.lock_id) == (order["id"], "lock-stale")
    assert [e.lock_id for e in of_type(published, LockCreated)] == ["lock-stale", "lock-new"]


async def test_create_lock_after_release_is_allowed_for_another_lock_id(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))
    ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-1")))

    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-2", minutes_from_now(10))))

    assert the_lock(pos_db_path, order["id"])[0] == "lock-2"


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ("UPDATE orders SET status = 'Finalized' WHERE id = ?", "Finalized"),
        ("UPDATE orders SET status = 'Canceled' WHERE id = ?", "Canceled"),
        ("UPDATE orders SET open_at_till = 'till-3' WHERE id = ?", "till-3"),
    ],
    ids=["finalized", "canceled", "open-at-till"],
)
async def test_create_lock_on_an_order_that_cannot_be_locked_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any], change: str, mentions: str
) -> None:
    sql(pos_db_path, change, [order["id"]])

    error = failed(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))), "Conflict")

    assert mentions in error["debugMessage"]
    assert held_lock(pos_db_path, order["id"]) is None
    [refused] = of_type(published, LockRefused)
    assert (refused.order_id, refused.lock_id) == (order["id"], "lock-1")


async def test_create_lock_on_an_order_canceled_through_the_wire_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    ok(await rpc("CancelOrderByIdV1", order_id_params(order["id"])))

    failed(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))), "Conflict")

    assert held_lock(pos_db_path, order["id"]) is None


@pytest.mark.parametrize("order_id", ["999", "abc"])
async def test_create_lock_on_an_unknown_order_is_not_found(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any], order_id: str
) -> None:
    failed(await rpc("CreateOrderLockV1", lock_params(order_id, "lock-1", minutes_from_now(10))), "NotFound")

    assert sql(pos_db_path, "SELECT * FROM order_locks") == []


# --- ExtendOrderLockV1 ---------------------------------------------------------------------


async def test_extend_lock_moves_the_expiry_and_returns_an_empty_object(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(1))))
    new_expiry = minutes_from_now(5)

    result = ok(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", new_expiry)))

    assert result == {}, "the schema returns {} (contract §6 A4)"
    assert the_lock(pos_db_path, order["id"]) == ("lock-1", parse_time(new_expiry))
    [extended] = of_type(published, LockExtended)
    assert (extended.order_id, extended.lock_id, extended.expires_at) == (
        order["id"],
        "lock-1",
        parse_time(new_expiry),
    )


async def test_extend_with_another_lock_id_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    expiry = minutes_from_now(5)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", expiry)))

    failed(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-2", minutes_from_now(30))), "Conflict")

    assert the_lock(pos_db_path, order["id"]) == ("lock-1", parse_time(expiry))
    [refused] = of_type(published, LockRefused)
    assert (refused.order_id, refused.lock_id) == (order["id"], "lock-2")


async def test_extend_a_lock_never_taken_is_a_conflict(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    failed(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", minutes_from_now(5))), "Conflict")

    assert held_lock(pos_db_path, order["id"]) is None


async def test_extend_an_expired_lock_on_an_untouched_order_retakes_it(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    age_order(pos_db_path, order["id"], minutes=120)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(-60))))
    new_expiry = minutes_from_now(5)

    assert ok(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", new_expiry))) == {}

    assert the_lock(pos_db_path, order["id"]) == ("lock-1", parse_time(new_expiry))
    assert [e.lock_id for e in of_type(published, LockExtended)] == ["lock-1"]
    failed(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-2", minutes_from_now(5))), "Conflict")


async def test_extend_an_expired_lock_after_the_order_changed_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    age_order(pos_db_path, order["id"], minutes=120)
    stale_expiry = minutes_from_now(-60)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", stale_expiry)))
    touch_order(pos_db_path, order["id"])

    error = failed(
        await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", minutes_from_now(5))), "Conflict"
    )

    assert "changed" in error["debugMessage"]
    lock = held_lock(pos_db_path, order["id"])
    assert lock is not None
    assert parse_time(lock["expires_at"]) == parse_time(stale_expiry), "the stale lock is not revived"
    assert of_type(published, LockExtended) == []
    [refused] = of_type(published, LockRefused)
    assert (refused.order_id, refused.lock_id) == (order["id"], "lock-1")


async def test_extend_an_expired_lock_after_a_payment_was_recorded_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    age_order(pos_db_path, order["id"], minutes=120)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(-60))))
    ok(await rpc("RecordOrderPaymentByIdV1", payment_params(order["id"], "pi_other", 1000)))

    failed(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", minutes_from_now(5))), "Conflict")


async def test_extend_an_expired_lock_once_another_lock_took_the_order_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    age_order(pos_db_path, order["id"], minutes=120)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(-60))))
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-2", minutes_from_now(10))))

    failed(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", minutes_from_now(5))), "Conflict")

    assert the_lock(pos_db_path, order["id"])[0] == "lock-2"


async def test_extend_an_expired_lock_on_an_order_now_open_at_a_till_is_a_conflict(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    age_order(pos_db_path, order["id"], minutes=120)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(-60))))
    sql(pos_db_path, "UPDATE orders SET open_at_till = 'till-1' WHERE id = ?", [order["id"]])

    failed(await rpc("ExtendOrderLockV1", extend_params(order["id"], "lock-1", minutes_from_now(5))), "Conflict")


@pytest.mark.parametrize("order_id", ["999", "abc"])
async def test_extend_lock_on_an_unknown_order_is_not_found(rpc: Rpc, order: dict[str, Any], order_id: str) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(5))))

    failed(await rpc("ExtendOrderLockV1", extend_params(order_id, "lock-1", minutes_from_now(10))), "NotFound")


# --- DeleteOrderLockV1 ---------------------------------------------------------------------


async def test_delete_lock_releases_it_and_returns_the_order(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))

    released = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-1")))

    assert released == await get_order(rpc, order["id"])
    assert held_lock(pos_db_path, order["id"]) is None
    [event] = of_type(published, LockReleased)
    assert (event.order_id, event.lock_id) == (order["id"], "lock-1")


async def test_delete_lock_twice_is_success(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(10))))
    first = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-1")))

    second = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-1")))

    assert second == first
    assert held_lock(pos_db_path, order["id"]) is None
    assert len(of_type(published, LockReleased)) == 1


async def test_delete_an_unknown_lock_id_is_success_and_leaves_the_holder_alone(
    rpc: Rpc, pos_db_path: Path, published: list[DomainEvent], order: dict[str, Any]
) -> None:
    expiry = minutes_from_now(10)
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", expiry)))

    result = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-someone-else")))

    assert result == await get_order(rpc, order["id"])
    assert the_lock(pos_db_path, order["id"]) == ("lock-1", parse_time(expiry))
    assert of_type(published, LockReleased) == []
    failed(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-2", minutes_from_now(10))), "Conflict")


async def test_delete_lock_on_an_order_never_locked_is_success(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any]
) -> None:
    result = ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-1")))

    assert result == order
    assert held_lock(pos_db_path, order["id"]) is None


async def test_delete_an_expired_lock_is_success(rpc: Rpc, pos_db_path: Path, order: dict[str, Any]) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(-5))))

    ok(await rpc("DeleteOrderLockV1", unlock_params(order["id"], "lock-1")))

    assert held_lock(pos_db_path, order["id"]) is None


@pytest.mark.parametrize("order_id", ["999", "abc"])
async def test_delete_lock_on_an_unknown_order_is_not_found(
    rpc: Rpc, pos_db_path: Path, order: dict[str, Any], order_id: str
) -> None:
    ok(await rpc("CreateOrderLockV1", lock_params(order["id"], "lock-1", minutes_from_now(5))))

    failed(await rpc("DeleteOrderLockV1", unlock_params(order_id, "lock-1")), "NotFound")

    assert held_lock(pos_db_path, order["id"]) is not None
