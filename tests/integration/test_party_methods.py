"""Parties through the real dispatcher and SQLite file (contract §3.12-3.16, §4.4, §6 B6/C1/C4/C5).

CreatePartyV1, GetPartyByIdV1, UpdatePartyV1, DeletePartyByIdV1 and SearchPartiesV1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Rpc
from tests.helpers.builders import (
    create_order_params,
    create_party_params,
    create_reservation_params,
    failed,
    forged_cursor,
    money,
    ok,
    page_ids_both_ways,
    parse_time,
    party_id_params,
    scalar,
    search_orders_params,
    search_parties_params,
    search_tables_params,
    sql,
    update_party_params,
)

DEPOSIT = {"totalAmount": money(2000), "paymentIntentIds": ["pi_dep_1"], "description": "Booking deposit"}
ADA: dict[str, Any] = {
    "name": "Ada",
    "expectedEndTime": "2025-03-14T21:00:00.000Z",
    "guestRequests": "no nuts",
    "deposit": DEPOSIT,
}
"""The party fields most tests fill in, besides covers and notes."""


async def new_party(rpc: Rpc, dojo_party_id: str, **kwargs: Any) -> dict[str, Any]:
    party: dict[str, Any] = ok(await rpc("CreatePartyV1", create_party_params(dojo_party_id, **kwargs)))
    return party


async def get_party(rpc: Rpc, party_id: str) -> dict[str, Any]:
    party: dict[str, Any] = ok(await rpc("GetPartyByIdV1", party_id_params(party_id)))
    return party


async def search_party_ids(rpc: Rpc, **kwargs: Any) -> list[str]:
    page = ok(await rpc("SearchPartiesV1", search_parties_params(**kwargs)))
    return [party["id"] for party in page["data"]]


# --- CreatePartyV1 -------------------------------------------------------------------------


async def test_create_party_stores_every_field_and_defaults_the_status_to_seated(rpc: Rpc) -> None:
    request = create_party_params(
        "dojo-p1",
        table_ids=["T1", "T2"],
        covers=5,
        hostNotes="window seat",
        **ADA,
    )

    created = ok(await rpc("CreatePartyV1", request))

    assert created["status"] == "Seated"
    assert created["tableIds"] == ["T1", "T2"]
    for field in ("name", "covers", "hostNotes", "guestRequests", "deposit"):
        assert created[field] == request[field], field
    assert parse_time(created["startTime"]) == parse_time(request["startTime"])
    assert parse_time(created["expectedEndTime"]) == parse_time(request["expectedEndTime"])
    assert "endTime" not in created
    assert "reservationId" not in created
    assert await get_party(rpc, created["id"]) == created


async def test_create_party_keeps_a_status_that_was_sent(rpc: Rpc) -> None:
    created = await new_party(rpc, "dojo-p1", status="Ordered")

    assert (await get_party(rpc, created["id"]))["status"] == "Ordered"


async def test_create_party_is_idempotent_on_dojo_party_id(rpc: Rpc, pos_db_path: Path) -> None:
    first = await new_party(rpc, "dojo-p1", name="Ada")

    retry = await new_party(rpc, "dojo-p1", name="Someone else", table_ids=["B1"])

    assert retry == first
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM parties") == 1
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM party_tables") == 1


async def test_create_party_resolves_the_dojo_reservation_id_to_the_epos_reservation(rpc: Rpc) -> None:
    reservation = ok(await rpc("CreateReservationV1", create_reservation_params("dojo-r1")))

    party = await new_party(rpc, "dojo-p1", dojoReservationId="dojo-r1")

    assert party["reservationId"] == reservation["id"]
    assert (await get_party(rpc, party["id"]))["reservationId"] == reservation["id"]


async def test_create_party_keeps_an_epos_reservation_id_that_was_sent(rpc: Rpc) -> None:
    reservation = ok(await rpc("CreateReservationV1", create_reservation_params("dojo-r1")))

    party = await new_party(rpc, "dojo-p1", reservationId=reservation["id"], dojoReservationId="dojo-r1")

    assert party["reservationId"] == reservation["id"]


async def test_create_party_with_an_unknown_dojo_reservation_has_no_reservation(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1", dojoReservationId="dojo-r-unknown")

    assert "reservationId" not in party


async def test_create_party_on_an_unknown_table_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    error = failed(
        await rpc("CreatePartyV1", create_party_params("dojo-p1", table_ids=["T1", "T99"])), "InvalidRequest"
    )

    assert "T99" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM parties") == 0


async def test_create_party_without_tables_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    params = create_party_params("dojo-p1")
    params["tableIds"] = []

    error = failed(await rpc("CreatePartyV1", params), "InvalidRequest")

    assert "tableIds" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM parties") == 0


async def test_create_party_again_after_it_was_deleted_is_a_conflict(rpc: Rpc, pos_db_path: Path) -> None:
    party = await new_party(rpc, "dojo-p1")
    ok(await rpc("DeletePartyByIdV1", party_id_params(party["id"], "DeletePartyByIdV1")))

    failed(await rpc("CreatePartyV1", create_party_params("dojo-p1")), "Conflict")

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM parties") == 1


# --- GetPartyByIdV1 ------------------------------------------------------------------------


@pytest.mark.parametrize("party_id", ["999", "abc", "", "-1"])
async def test_get_unknown_party_is_not_found(rpc: Rpc, party_id: str) -> None:
    await new_party(rpc, "dojo-p1")

    failed(await rpc("GetPartyByIdV1", party_id_params(party_id)), "NotFound")


async def test_party_ids_are_not_order_ids(rpc: Rpc) -> None:
    ok(await rpc("CreateOrderV1", create_order_params("dojo-o1")))

    failed(await rpc("GetPartyByIdV1", party_id_params("1")), "NotFound")


# --- UpdatePartyV1 -------------------------------------------------------------------------


async def test_update_party_replaces_it_clearing_omitted_fields_but_keeping_the_reservation(rpc: Rpc) -> None:
    reservation = ok(await rpc("CreateReservationV1", create_reservation_params("dojo-r1")))
    party = await new_party(
        rpc,
        "dojo-p1",
        covers=4,
        hostNotes="VIP",
        dojoReservationId="dojo-r1",
        **ADA,
    )

    updated = ok(
        await rpc("UpdatePartyV1", update_party_params(party["id"], "dojo-p1", status="Paying", table_ids=["T2"]))
    )

    assert updated == {
        "id": party["id"],
        "startTime": "2025-03-14T19:00:00.000Z",
        "status": "Paying",
        "tableIds": ["T2"],
        "reservationId": reservation["id"],
    }
    assert await get_party(rpc, party["id"]) == updated


async def test_update_party_sets_every_field_sent(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1")
    request = update_party_params(
        party["id"],
        "dojo-p1",
        status="Ordered",
        table_ids=["T1", "T12"],
        name="Grace",
        covers=6,
        hostNotes="birthday",
        guestRequests="cake at 9",
        deposit=DEPOSIT,
    )

    updated = ok(await rpc("UpdatePartyV1", request))

    for field in ("status", "tableIds", "name", "covers", "hostNotes", "guestRequests", "deposit"):
        assert updated[field] == request[field], field


async def test_update_party_with_end_time_means_the_party_has_left(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1")

    left = ok(
        await rpc(
            "UpdatePartyV1",
            update_party_params(party["id"], "dojo-p1", status="Left", endTime="2025-03-14T21:30:00.000Z"),
        )
    )

    assert parse_time(left["endTime"]) == parse_time("2025-03-14T21:30:00Z")
    assert await search_party_ids(rpc) == []
    assert await search_party_ids(rpc, completed_only=True) == [party["id"]]


async def test_update_unknown_party_is_not_found(rpc: Rpc, pos_db_path: Path) -> None:
    await new_party(rpc, "dojo-p1")

    failed(await rpc("UpdatePartyV1", update_party_params("999", "dojo-p1")), "NotFound")

    assert scalar(pos_db_path, "SELECT status FROM parties") == "Seated"


async def test_update_deleted_party_is_not_found(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1")
    ok(await rpc("DeletePartyByIdV1", party_id_params(party["id"], "DeletePartyByIdV1")))

    failed(await rpc("UpdatePartyV1", update_party_params(party["id"], "dojo-p1", status="Paying")), "NotFound")


async def test_update_party_on_an_unknown_table_is_an_invalid_request(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1")

    error = failed(
        await rpc("UpdatePartyV1", update_party_params(party["id"], "dojo-p1", table_ids=["T99"])), "InvalidRequest"
    )

    assert "T99" in error["debugMessage"]
    assert (await get_party(rpc, party["id"]))["tableIds"] == ["T1"]


async def test_update_party_with_another_dojo_party_id_is_an_invalid_request(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1")

    failed(await rpc("UpdatePartyV1", update_party_params(party["id"], "dojo-p2", status="Paying")), "InvalidRequest")

    assert (await get_party(rpc, party["id"]))["status"] == "Seated"


@pytest.mark.parametrize(("field", "value"), [("tableIds", []), ("status", "")])
async def test_update_party_without_tables_or_status_is_an_invalid_request(rpc: Rpc, field: str, value: Any) -> None:
    party = await new_party(rpc, "dojo-p1")
    params = update_party_params(party["id"], "dojo-p1")
    params[field] = value

    error = failed(await rpc("UpdatePartyV1", params), "InvalidRequest")

    assert field in error["debugMessage"]
    assert await get_party(rpc, party["id"]) == party


# --- DeletePartyByIdV1 ---------------------------------------------------------------------


async def test_delete_party_removes_it_from_get_and_search(rpc: Rpc, pos_db_path: Path) -> None:
    party = await new_party(rpc, "dojo-p1")

    assert ok(await rpc("DeletePartyByIdV1", party_id_params(party["id"], "DeletePartyByIdV1"))) == {}

    failed(await rpc("GetPartyByIdV1", party_id_params(party["id"])), "NotFound")
    assert await search_party_ids(rpc) == []
    assert scalar(pos_db_path, "SELECT deleted_at IS NOT NULL FROM parties WHERE id = ?", [party["id"]]) == 1


async def test_delete_party_twice_is_success(rpc: Rpc) -> None:
    party = await new_party(rpc, "dojo-p1")
    ok(await rpc("DeletePartyByIdV1", party_id_params(party["id"], "DeletePartyByIdV1")))

    assert ok(await rpc("DeletePartyByIdV1", party_id_params(party["id"], "DeletePartyByIdV1"))) == {}

    failed(await rpc("GetPartyByIdV1", party_id_params(party["id"])), "NotFound")


@pytest.mark.parametrize("party_id", ["999", "abc"])
async def test_delete_a_party_that_never_existed_is_not_found(rpc: Rpc, pos_db_path: Path, party_id: str) -> None:
    party = await new_party(rpc, "dojo-p1")

    failed(await rpc("DeletePartyByIdV1", party_id_params(party_id, "DeletePartyByIdV1")), "NotFound")

    assert await get_party(rpc, party["id"]) == party
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM parties WHERE deleted_at IS NOT NULL") == 0


# --- SearchPartiesV1 -----------------------------------------------------------------------


@pytest.fixture
async def dining_room(rpc: Rpc) -> dict[str, str]:
    """Two seated parties (T1; T2+T12) and one that has left (T1)."""
    seated_t1 = await new_party(rpc, "dojo-seated-t1", table_ids=["T1"])
    seated_t2 = await new_party(rpc, "dojo-seated-t2", table_ids=["T2", "T12"])
    left_t1 = await new_party(rpc, "dojo-left-t1", table_ids=["T1"])
    ok(
        await rpc(
            "UpdatePartyV1",
            update_party_params(left_t1["id"], "dojo-left-t1", status="Left", endTime="2025-03-14T21:00:00.000Z"),
        )
    )
    return {"seated_t1": seated_t1["id"], "seated_t2": seated_t2["id"], "left_t1": left_t1["id"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["seated_t1", "seated_t2"]),
        ({"completed_only": False}, ["seated_t1", "seated_t2"]),
        ({"completed_only": True}, ["left_t1"]),
        ({"table_id": "T1"}, ["seated_t1"]),
        ({"table_id": "T12"}, ["seated_t2"]),
        ({"table_id": "T1", "completed_only": True}, ["left_t1"]),
        ({"table_id": "B1"}, []),
    ],
)
async def test_search_parties_returns_seated_parties_by_default_and_only_departed_with_completed_only(
    rpc: Rpc, dining_room: dict[str, str], filters: dict[str, Any], expected: list[str]
) -> None:
    assert await search_party_ids(rpc, **filters) == [dining_room[name] for name in expected]


async def test_search_parties_returns_whole_parties(rpc: Rpc, dining_room: dict[str, str]) -> None:
    page = ok(await rpc("SearchPartiesV1", search_parties_params(table_id="T12")))

    assert page == {"data": [await get_party(rpc, dining_room["seated_t2"])]}


async def test_search_parties_pages_through_every_party_once_each_way(rpc: Rpc) -> None:
    ids = [(await new_party(rpc, f"dojo-p{n}"))["id"] for n in range(7)]

    forward, backward = await page_ids_both_ways(rpc, "SearchPartiesV1", search_parties_params, 3)

    assert forward == [ids[0:3], ids[3:6], ids[6:]]
    assert backward == [ids[3:6], ids[0:3]]


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor", forged_cursor({"s": "orders", "k": 1}), forged_cursor({"s": "parties", "k": "1"})],
    ids=["garbage", "orders-cursor", "string-key"],
)
async def test_search_parties_with_a_foreign_cursor_is_an_invalid_request(rpc: Rpc, cursor: str) -> None:
    await new_party(rpc, "dojo-p1")

    failed(await rpc("SearchPartiesV1", search_parties_params(cursor={"after": cursor})), "InvalidRequest")


async def test_search_parties_refuses_cursors_issued_by_other_searches(rpc: Rpc) -> None:
    tables = ok(await rpc("SearchTablesV1", search_tables_params(cursor={"limit": 1})))
    for n in range(2):
        ok(await rpc("CreateOrderV1", create_order_params(f"dojo-o{n}")))
    orders = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": 1})))

    for foreign in (tables["after"], orders["after"]):
        failed(await rpc("SearchPartiesV1", search_parties_params(cursor={"after": foreign})), "InvalidRequest")


async def test_search_parties_with_limit_above_100_is_an_invalid_request(rpc: Rpc) -> None:
    params = search_parties_params()
    params["cursor"] = {"limit": 101}

    failed(await rpc("SearchPartiesV1", params), "InvalidRequest")


async def test_search_parties_with_both_cursors_is_an_invalid_request(rpc: Rpc) -> None:
    for n in range(3):
        await new_party(rpc, f"dojo-p{n}")
    page = ok(await rpc("SearchPartiesV1", search_parties_params(cursor={"limit": 1})))
    params = search_parties_params()
    params["cursor"] = {"before": page["after"], "after": page["after"]}

    failed(await rpc("SearchPartiesV1", params), "InvalidRequest")


async def test_parties_do_not_leak_their_tables_after_a_table_move(rpc: Rpc, pos_db_path: Path) -> None:
    party = await new_party(rpc, "dojo-p1", table_ids=["T1", "T2"])

    ok(await rpc("UpdatePartyV1", update_party_params(party["id"], "dojo-p1", table_ids=["B1"])))

    assert await search_party_ids(rpc, table_id="T1") == []
    assert await search_party_ids(rpc, table_id="B1") == [party["id"]]
    assert [r["table_id"] for r in sql(pos_db_path, "SELECT table_id FROM party_tables")] == ["B1"]
