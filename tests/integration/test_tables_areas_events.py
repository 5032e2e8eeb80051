"""Tables, areas and the end-to-end event flow (contract §3.10, §3.11, §3.22, §3.23).

SearchTablesV1 (string sort keys in the cursor) and ListAreasV1 (a bare array, its ``params``
optional). HandleEventV1 is covered in detail next to payments; here only the acknowledgement
of what the POS does not act on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.services.dispatcher import Dispatcher
from tests.conftest import Rpc
from tests.helpers.builders import (
    event_params,
    failed,
    forged_cursor,
    new_order,
    ok,
    page_ids_both_ways,
    scalar,
    search_orders_params,
    search_tables_params,
    sql,
    walk_forward,
)
from tests.helpers.contract import assert_valid_response

ALL_TABLES = {
    "B1": {"id": "B1", "name": "Bar 1", "maxCovers": 2, "areaId": "bar", "waiterIds": []},
    "T1": {"id": "T1", "name": "1", "maxCovers": 4, "areaId": "main", "waiterIds": ["w1"]},
    "T12": {"id": "T12", "name": "12", "maxCovers": 6, "areaId": "main", "waiterIds": ["w1"]},
    "T2": {"id": "T2", "name": "2", "maxCovers": 2, "areaId": "main", "waiterIds": []},
}


async def search_table_ids(rpc: Rpc, **kwargs: Any) -> list[str]:
    page = ok(await rpc("SearchTablesV1", search_tables_params(**kwargs)))
    return [table["id"] for table in page["data"]]


# --- SearchTablesV1 ------------------------------------------------------------------------


async def test_search_tables_returns_every_table_with_its_area_and_waiters(rpc: Rpc) -> None:
    page = ok(await rpc("SearchTablesV1", search_tables_params()))

    assert page == {"data": list(ALL_TABLES.values())}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"area_id": "main"}, ["T1", "T12", "T2"]),
        ({"area_id": "bar"}, ["B1"]),
        ({"waiter_id": "w1"}, ["T1", "T12"]),
        ({"area_id": "bar", "waiter_id": "w1"}, []),
        ({"area_id": "main", "waiter_id": "w1"}, ["T1", "T12"]),
        ({"area_id": "terrace"}, []),
        ({"waiter_id": "w-nobody"}, []),
    ],
)
async def test_search_tables_filters_by_area_and_waiter(rpc: Rpc, filters: dict[str, str], expected: list[str]) -> None:
    assert await search_table_ids(rpc, **filters) == expected


async def test_search_tables_pages_by_string_key_both_ways(rpc: Rpc) -> None:
    forward, backward = await page_ids_both_ways(rpc, "SearchTablesV1", search_tables_params, 2)

    assert forward == [["B1", "T1"], ["T12", "T2"]]
    assert backward == [["B1", "T1"]]


async def test_search_tables_pages_within_an_area(rpc: Rpc) -> None:
    pages = await walk_forward(rpc, "SearchTablesV1", lambda **kw: search_tables_params(area_id="main", **kw), 1)

    assert [t["id"] for page in pages for t in page["data"]] == ["T1", "T12", "T2"]


async def test_search_tables_sees_a_table_added_on_the_pos(rpc: Rpc, pos_db_path: Path) -> None:
    sql(pos_db_path, "INSERT INTO tables (id, name, area_id, max_covers) VALUES ('A1', 'Alcove', 'main', 8)")

    assert await search_table_ids(rpc, area_id="main") == ["A1", "T1", "T12", "T2"]


@pytest.mark.parametrize(
    "cursor",
    ["!!", forged_cursor({"s": "tables", "k": 5}), forged_cursor({"s": "orders", "k": 1})],
    ids=["garbage", "integer-key", "orders-cursor"],
)
async def test_search_tables_with_a_foreign_cursor_is_an_invalid_request(rpc: Rpc, cursor: str) -> None:
    failed(await rpc("SearchTablesV1", search_tables_params(cursor={"after": cursor})), "InvalidRequest")


async def test_search_tables_refuses_a_real_orders_cursor(rpc: Rpc) -> None:
    for n in range(2):
        await new_order(rpc, f"dojo-{n}")
    orders = ok(await rpc("SearchOrdersV1", search_orders_params(cursor={"limit": 1})))

    failed(await rpc("SearchTablesV1", search_tables_params(cursor={"after": orders["after"]})), "InvalidRequest")


async def test_search_tables_with_both_cursors_is_an_invalid_request(rpc: Rpc) -> None:
    page = ok(await rpc("SearchTablesV1", search_tables_params(cursor={"limit": 1})))
    params = search_tables_params()
    params["cursor"] = {"after": page["after"], "before": page["after"]}

    failed(await rpc("SearchTablesV1", params), "InvalidRequest")


@pytest.mark.parametrize(("limit", "expected"), [(0, 1), (1, 1), (100, 4)])
async def test_search_tables_limit_is_clamped(rpc: Rpc, limit: int, expected: int) -> None:
    page = ok(await rpc("SearchTablesV1", search_tables_params(cursor={"limit": limit})))

    assert len(page["data"]) == expected


async def test_search_tables_limit_above_100_is_an_invalid_request(rpc: Rpc) -> None:
    params = search_tables_params()
    params["cursor"] = {"limit": 101}

    failed(await rpc("SearchTablesV1", params), "InvalidRequest")


# --- ListAreasV1 ---------------------------------------------------------------------------

AREAS = [{"id": "bar", "name": "Bar", "waiterIds": []}, {"id": "main", "name": "Main floor", "waiterIds": ["w1"]}]


async def test_list_areas_returns_a_bare_array(rpc: Rpc) -> None:
    areas = ok(await rpc("ListAreasV1", {"headers": {}}))

    assert areas == AREAS


async def test_list_areas_with_the_params_object_omitted_entirely(dispatcher: Dispatcher) -> None:
    served = await dispatcher.handle_text(json.dumps({"jsonrpc": "2.0", "id": "a-1", "method": "ListAreasV1"}))

    assert served is not None
    response = json.loads(served.response_text)
    assert_valid_response("ListAreasV1", response)
    assert response["result"] == AREAS


async def test_list_areas_with_params_but_no_headers(dispatcher: Dispatcher) -> None:
    served = await dispatcher.handle_text(
        json.dumps({"jsonrpc": "2.0", "id": "a-1", "method": "ListAreasV1", "params": {}})
    )

    assert served is not None
    assert json.loads(served.response_text)["result"] == AREAS


async def test_list_areas_sees_an_area_added_on_the_pos(rpc: Rpc, pos_db_path: Path) -> None:
    sql(pos_db_path, "INSERT INTO areas (id, name) VALUES ('terrace', 'Terrace')")

    areas = ok(await rpc("ListAreasV1", {"headers": {}}))

    assert [area["id"] for area in areas] == ["bar", "main", "terrace"]


async def test_list_areas_of_an_empty_venue_is_an_empty_array(rpc: Rpc, pos_db_path: Path) -> None:
    sql(pos_db_path, "DELETE FROM tables")
    sql(pos_db_path, "DELETE FROM areas")

    assert ok(await rpc("ListAreasV1", {"headers": {}})) == []


# --- HandleEventV1: what the POS acknowledges without acting --------------------------------


@pytest.mark.parametrize("event", ["payment_intent.succeeded", "order.updated", ""])
async def test_unknown_event_types_are_acknowledged_with_an_empty_object(
    rpc: Rpc, pos_db_path: Path, event: str
) -> None:
    params = event_params("evt_1", "pi_1", "Captured", event=event)

    assert ok(await rpc("HandleEventV1", params)) == {}

    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0


async def test_an_event_missing_its_id_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    params = event_params("evt_1", "pi_1", "Captured")
    del params["id"]

    error = failed(await rpc("HandleEventV1", params), "InvalidRequest")

    assert "params.id" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0


async def test_an_event_with_a_bad_capture_mode_is_an_invalid_request(rpc: Rpc, pos_db_path: Path) -> None:
    params = event_params("evt_1", "pi_1", "Captured")
    params["data"]["captureMode"] = "Sometimes"

    error = failed(await rpc("HandleEventV1", params), "InvalidRequest")

    assert "params.data.captureMode" in error["debugMessage"]
    assert scalar(pos_db_path, "SELECT COUNT(*) FROM payment_intent_events") == 0
