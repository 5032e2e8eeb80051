"""Reservations through the real dispatcher and SQLite file (contract §3.17-3.21, §4.5, §6 C1/C6).

CreateReservationV1, GetReservationByIdV1, UpdateReservationV1, DeleteReservationByIdV1 and
SearchReservationsV1. The time window follows the recommended overlap rule: a reservation
``[startTime, endTime)`` is returned when it overlaps ``[fromTime, toTime)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Rpc
from tests.helpers.builders import (
    create_reservation_params,
    failed,
    forged_cursor,
    ok,
    page_ids_both_ways,
    parse_time,
    reservation_id_params,
    scalar,
    search_reservations_params,
    update_reservation_params,
    walk_forward,
)


async def new_reservation(rpc: Rpc, dojo_reservation_id: str, **kwargs: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(
        await rpc("CreateReservationV1", create_reservation_params(dojo_reservation_id, **kwargs))
    )
    return created


async def get_reservation(rpc: Rpc, reservation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(await rpc("GetReservationByIdV1", reservation_id_params(reservation_id)))
    return found


async def search_reservation_ids(rpc: Rpc, **kwargs: Any) -> list[str]:
    page = ok(await rpc("SearchReservationsV1", search_reservations_params(**kwargs)))
    return [reservation["id"] for reservation in page["data"]]


def delete_params(reservation_id: str) -> dict[str, Any]:
    return reservation_id_params(reservation_id, "DeleteReservationByIdV1")


# --- CreateReservationV1 -------------------------------------------------------------------


async def test_create_reservation_stores_every_field(rpc: Rpc) -> None:
    request = create_reservation_params(
        "dojo-r1",
        name="Ada Lovelace",
        covers=6,
        start="2025-03-14T19:00:00+01:00",
        end="2025-03-14T21:00:00+01:00",
        table_ids=["T1", "T12"],
        hostNotes="regulars",
        guestRequests="high chair",
    )

    created = ok(await rpc("CreateReservationV1", request))

    assert created["name"] == "Ada Lovelace"
    assert created["covers"] == 6
    assert created["tableIds"] == ["T1", "T12"]
    assert (created["hostNotes"], created["guestRequests"]) == ("regulars", "high chair")
    assert created["startTime"] == "2025-03-14T18:00:00.000Z", "times go back out in UTC with Z"
    assert created["endTime"] == "2025-03-14T20:00:00.000Z"
    assert await get_reservation(rpc, created["id"]) == created


async def test_create_reservation_is_idempotent_on_dojo_reservation_id(rpc: Rpc, pos_db_path: Path) -> None:
    first = await new_reservation(rpc, "dojo-r1", name="Ada")

    retry = await new_reservation(rpc, "dojo-r1", name="Someone else", table_ids=["B1"])

    assert retry == first
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservations") == 1
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservation_tables") == 1


@pytest.mark.parametrize(
    "end",
    ["2025-03-14T19:00:00.000Z", "2025-03-14T18:59:59.999Z", "2025-03-14T20:00:00+02:00"],
    ids=["equal", "before", "equal-in-another-offset"],
)
async def test_create_reservation_ending_before_it_starts_is_an_invalid_request(
    rpc: Rpc, pos_db_path: Path, end: str
) -> None:
    error = failed(
        await rpc(
            "CreateReservationV1", create_reservation_params("dojo-r1", start="2025-03-14T19:00:00.000Z", end=end)
        ),
        "InvalidRequest",
    )

    assert "endTime" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservations") == 0


async def test_create_reservation_on_an_unknown_table_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    error = failed(
        await rpc("CreateReservationV1", create_reservation_params("dojo-r1", table_ids=["T99"])), "InvalidRequest"
    )

    assert "T99" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservations") == 0


async def test_create_reservation_without_tables_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    # contract §6 C1: the schema lets an empty list through; this POS cannot hold one.
    params = create_reservation_params("dojo-r1", table_ids=[])

    failed(await rpc("CreateReservationV1", params), "InvalidRequest")

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservations") == 0


async def test_create_reservation_again_after_it_was_deleted_is_a_conflict(rpc: Rpc, pos_db_path: Path) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")
    ok(await rpc("DeleteReservationByIdV1", delete_params(reservation["id"])))

    failed(await rpc("CreateReservationV1", create_reservation_params("dojo-r1")), "Conflict")

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservations") == 1


# --- GetReservationByIdV1 ------------------------------------------------------------------


@pytest.mark.parametrize("reservation_id", ["999", "abc", ""])
async def test_get_unknown_reservation_is_not_found(rpc: Rpc, reservation_id: str) -> None:
    await new_reservation(rpc, "dojo-r1")

    failed(await rpc("GetReservationByIdV1", reservation_id_params(reservation_id)), "NotFound")


# --- UpdateReservationV1 -------------------------------------------------------------------


async def test_update_reservation_replaces_it(rpc: Rpc) -> None:
    reservation = await new_reservation(rpc, "dojo-r1", hostNotes="regulars", guestRequests="high chair")

    updated = ok(
        await rpc(
            "UpdateReservationV1",
            update_reservation_params(
                reservation["id"],
                "dojo-r1",
                name="Ada L.",
                covers=3,
                start="2025-03-14T20:00:00.000Z",
                end="2025-03-14T22:00:00.000Z",
                table_ids=["B1"],
            ),
        )
    )

    assert updated == {
        "id": reservation["id"],
        "name": "Ada L.",
        "covers": 3,
        "startTime": "2025-03-14T20:00:00.000Z",
        "endTime": "2025-03-14T22:00:00.000Z",
        "tableIds": ["B1"],
    }, "omitted optional fields are cleared"
    assert await get_reservation(rpc, reservation["id"]) == updated
    assert await search_reservation_ids(rpc, table_id="T1") == []


async def test_update_reservation_ending_before_it_starts_is_an_invalid_request(rpc: Rpc) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")

    failed(
        await rpc(
            "UpdateReservationV1",
            update_reservation_params(
                reservation["id"], "dojo-r1", start="2025-03-14T20:00:00.000Z", end="2025-03-14T20:00:00.000Z"
            ),
        ),
        "InvalidRequest",
    )

    assert await get_reservation(rpc, reservation["id"]) == reservation


async def test_update_reservation_on_an_unknown_table_is_an_invalid_request(rpc: Rpc) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")

    failed(
        await rpc("UpdateReservationV1", update_reservation_params(reservation["id"], "dojo-r1", table_ids=["T99"])),
        "InvalidRequest",
    )

    assert await get_reservation(rpc, reservation["id"]) == reservation


async def test_update_reservation_with_another_dojo_reservation_id_is_an_invalid_request(rpc: Rpc) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")

    failed(
        await rpc("UpdateReservationV1", update_reservation_params(reservation["id"], "dojo-r2", covers=9)),
        "InvalidRequest",
    )

    assert await get_reservation(rpc, reservation["id"]) == reservation


@pytest.mark.parametrize("reservation_id", ["999", "abc"])
async def test_update_unknown_reservation_is_not_found(rpc: Rpc, pos_db_path: Path, reservation_id: str) -> None:
    await new_reservation(rpc, "dojo-r1")

    failed(await rpc("UpdateReservationV1", update_reservation_params(reservation_id, "dojo-r1")), "NotFound")

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM reservations") == 1


async def test_update_deleted_reservation_is_not_found(rpc: Rpc) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")
    ok(await rpc("DeleteReservationByIdV1", delete_params(reservation["id"])))

    failed(await rpc("UpdateReservationV1", update_reservation_params(reservation["id"], "dojo-r1")), "NotFound")


# --- DeleteReservationByIdV1 ---------------------------------------------------------------


async def test_delete_reservation_removes_it_from_get_and_search(rpc: Rpc, pos_db_path: Path) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")

    assert ok(await rpc("DeleteReservationByIdV1", delete_params(reservation["id"]))) == {}

    failed(await rpc("GetReservationByIdV1", reservation_id_params(reservation["id"])), "NotFound")
    assert await search_reservation_ids(rpc) == []
    assert scalar(pos_db_path, "SELECT deleted_at IS NOT NULL FROM reservations") == 1


async def test_delete_reservation_twice_is_success(rpc: Rpc) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")
    ok(await rpc("DeleteReservationByIdV1", delete_params(reservation["id"])))

    assert ok(await rpc("DeleteReservationByIdV1", delete_params(reservation["id"]))) == {}


@pytest.mark.parametrize("reservation_id", ["999", "abc"])
async def test_delete_a_reservation_that_never_existed_is_not_found(
    rpc: Rpc, pos_db_path: Path, reservation_id: str
) -> None:
    reservation = await new_reservation(rpc, "dojo-r1")

    failed(await rpc("DeleteReservationByIdV1", delete_params(reservation_id)), "NotFound")

    assert await get_reservation(rpc, reservation["id"]) == reservation


# --- SearchReservationsV1 ------------------------------------------------------------------


@pytest.fixture
async def evening(rpc: Rpc) -> dict[str, str]:
    """Three reservations on 14 March 2025 (UTC): early 17-19 on T1, late 19-21 on T1, bar 18-20 on B1."""
    slots = {
        "early": ("17:00", "19:00", ["T1"]),
        "late": ("19:00", "21:00", ["T1", "T2"]),
        "bar": ("18:00", "20:00", ["B1"]),
    }
    ids = {}
    for name, (start, end, tables) in slots.items():
        reservation = await new_reservation(
            rpc, f"dojo-{name}", start=f"2025-03-14T{start}:00.000Z", end=f"2025-03-14T{end}:00.000Z", table_ids=tables
        )
        ids[name] = reservation["id"]
    return ids


def at(hhmm: str) -> str:
    return f"2025-03-14T{hhmm}:00.000Z"


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({}, ["early", "late", "bar"]),
        ({"from_time": at("19:00")}, ["late", "bar"]),  # early ends exactly at fromTime: excluded
        ({"to_time": at("19:00")}, ["early", "bar"]),  # late starts exactly at toTime: excluded
        ({"from_time": at("18:59"), "to_time": at("19:01")}, ["early", "late", "bar"]),
        ({"from_time": at("20:00"), "to_time": at("23:00")}, ["late"]),  # bar ends exactly at 20:00
        ({"from_time": at("21:00")}, []),
        ({"to_time": at("17:00")}, []),
        ({"from_time": "2025-03-14T20:30:00+01:00"}, ["late", "bar"]),  # 19:30 UTC
    ],
    ids=[
        "unbounded",
        "ends-at-from-excluded",
        "starts-at-to-excluded",
        "straddling-boundary",
        "late-evening",
        "after-all",
        "before-all",
        "offset-from-time",
    ],
)
async def test_search_reservations_returns_those_overlapping_the_window(
    rpc: Rpc, evening: dict[str, str], window: dict[str, str], expected: list[str]
) -> None:
    assert await search_reservation_ids(rpc, **window) == [evening[name] for name in expected]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"table_id": "T1"}, ["early", "late"]),
        ({"table_id": "T2"}, ["late"]),
        ({"table_id": "T1", "from_time": at("19:00")}, ["late"]),
        ({"table_id": "B1", "to_time": at("18:00")}, []),
        ({"table_id": "T12"}, []),
    ],
)
async def test_search_reservations_by_table_combines_with_the_window(
    rpc: Rpc, evening: dict[str, str], filters: dict[str, str], expected: list[str]
) -> None:
    assert await search_reservation_ids(rpc, **filters) == [evening[name] for name in expected]


async def test_search_reservations_returns_whole_reservations(rpc: Rpc, evening: dict[str, str]) -> None:
    page = ok(await rpc("SearchReservationsV1", search_reservations_params(table_id="T2")))

    assert page == {"data": [await get_reservation(rpc, evening["late"])]}


async def test_search_reservations_pages_through_every_reservation_once_each_way(rpc: Rpc) -> None:
    ids = [(await new_reservation(rpc, f"dojo-r{n}"))["id"] for n in range(5)]

    forward, backward = await page_ids_both_ways(rpc, "SearchReservationsV1", search_reservations_params, 2)

    assert forward == [ids[0:2], ids[2:4], ids[4:]]
    assert backward == [ids[2:4], ids[0:2]]


async def test_search_reservations_pages_within_the_window(rpc: Rpc, evening: dict[str, str]) -> None:
    def build(**kwargs: Any) -> dict[str, Any]:
        return search_reservations_params(from_time=at("18:30"), **kwargs)

    pages = await walk_forward(rpc, "SearchReservationsV1", build, limit=1)

    assert [r["id"] for page in pages for r in page["data"]] == [evening["early"], evening["late"], evening["bar"]]


@pytest.mark.parametrize(
    "cursor",
    ["%%%", forged_cursor({"s": "parties", "k": 1}), forged_cursor({"s": "reservations", "k": None})],
    ids=["garbage", "parties-cursor", "null-key"],
)
async def test_search_reservations_with_a_foreign_cursor_is_an_invalid_request(rpc: Rpc, cursor: str) -> None:
    failed(await rpc("SearchReservationsV1", search_reservations_params(cursor={"before": cursor})), "InvalidRequest")


async def test_search_reservations_limit_is_capped_at_100(rpc: Rpc) -> None:
    params = search_reservations_params()
    params["cursor"] = {"limit": 101}

    failed(await rpc("SearchReservationsV1", params), "InvalidRequest")


async def test_search_reservations_with_a_malformed_time_is_an_invalid_request(rpc: Rpc) -> None:
    params = search_reservations_params()
    params["fromTime"] = "tomorrow evening"

    error = failed(await rpc("SearchReservationsV1", params), "InvalidRequest")

    assert "fromTime" in error["debugMessage"]


async def test_search_reservations_with_a_time_without_offset_is_an_invalid_request(rpc: Rpc) -> None:
    # contract §4.4: times are timezone-aware; a naive time cannot be placed on the timeline.
    params = search_reservations_params()
    params["toTime"] = "2025-03-14T19:00:00"

    failed(await rpc("SearchReservationsV1", params), "InvalidRequest")


async def test_stored_times_are_parsed_as_utc(rpc: Rpc, evening: dict[str, str]) -> None:
    late = await get_reservation(rpc, evening["late"])

    assert parse_time(late["startTime"]) == parse_time("2025-03-14T20:00:00+01:00")
