"""The SQLite adapter searches in SQL for speed; the rule is the domain's. Over a grid of every
status, payment state, table, departure, deletion and time edge, the SQL keeps exactly the rows
the domain's filter keeps (domain/orders.py OrderFilter and is_payable, domain/bookings.py
PartyFilter and ReservationFilter)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlite import rows
from epos_bridge.adapters.sqlite.schema import OPEN_ORDERS_SQL
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.domain import bookings, orders
from epos_bridge.domain.orders import StoredPayment
from epos_bridge.ports import CallContext
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import OrderStatus
from epos_bridge.protocol.params import Cursor, SearchOrdersParams, SearchPartiesParams, SearchReservationsParams
from tests.helpers.pos import sqlite_pos

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TOTAL = 1000
PAYMENTS: dict[str, list[tuple[int, str]]] = {
    "unpaid": [],
    "part": [(400, "Captured")],
    "full": [(400, "Recorded"), (600, "Captured")],
    "full but reversed": [(1000, "Reversed")],
    "over refunded": [(1000, "Refunded"), (500, "Canceled"), (999, "Authorized")],
}
PLACES: list[dict[str, str | None]] = [
    {"table_id": "T1", "waiter_id": "w1", "party_id": "1", "reservation_id": None},
    {"table_id": "T1", "waiter_id": "w2", "party_id": None, "reservation_id": "3"},
    {"table_id": "T2", "waiter_id": "w1", "party_id": None, "reservation_id": None},
    {"table_id": None, "waiter_id": None, "party_id": None, "reservation_id": None},  # a collection
]


@dataclass(frozen=True)
class OrderSpec:
    status: OrderStatus
    payments: list[tuple[int, str]]
    dine_in: Mapping[str, object]
    collection: bool

    @property
    def total_value(self) -> int:
        return TOTAL

    @property
    def paid_value(self) -> int:
        return orders.paid_value(StoredPayment(value, None, None, status) for value, status in self.payments)


@dataclass(frozen=True)
class PartySpec:
    deleted: bool
    has_left: bool
    table_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReservationSpec:
    start_time: datetime
    end_time: datetime
    deleted: bool = False
    table_ids: tuple[str, ...] = field(default=("T1",))


def order_grid() -> Iterator[OrderSpec]:
    for status in OrderStatus:
        for payments in PAYMENTS.values():
            for place in PLACES:
                collection = place["table_id"] is None
                dine_in = {} if collection else {k: v for k, v in place.items()}
                yield OrderSpec(status, payments, dine_in, collection)


def party_grid() -> Iterator[PartySpec]:
    for deleted in (False, True):
        for has_left in (False, True):
            for tables in (("T1",), ("T2",), ("T1", "T2")):
                yield PartySpec(deleted, has_left, tables)


EDGES = [NOW - HOUR, NOW, NOW + timedelta(milliseconds=1), NOW + HOUR, NOW + 2 * HOUR, NOW + 3 * HOUR]


def reservation_grid() -> Iterator[ReservationSpec]:
    for start in EDGES:
        for end in EDGES:
            if end > start:
                yield ReservationSpec(start, end)
    yield ReservationSpec(NOW, NOW + HOUR, deleted=True)
    yield ReservationSpec(NOW, NOW + HOUR, table_ids=("T2",))


def seed(
    path: Path, order_specs: list[OrderSpec], parties: list[PartySpec], reservations: list[ReservationSpec]
) -> None:
    import sqlite_utils

    from epos_bridge.adapters.sqlite.schema import migrate

    db = sqlite_utils.Database(path)
    migrate(db)
    db.conn.close()
    stamp = format_utc(NOW)
    with closing(sqlite3.connect(path)) as conn:
        conn.executemany("INSERT INTO tables (id, name) VALUES (?, ?)", [("T1", "1"), ("T2", "2")])
        for key, spec in enumerate(order_specs, start=1):
            place = spec.dine_in
            conn.execute(
                "INSERT INTO orders (id, status, order_type, table_id, waiter_id, party_id, reservation_id,"
                " total_amount, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    key,
                    spec.status.value,
                    "Collection" if spec.collection else "DineIn",
                    place.get("table_id"),
                    place.get("waiter_id"),
                    place.get("party_id"),
                    place.get("reservation_id"),
                    TOTAL,
                    stamp,
                    stamp,
                ],
            )
            conn.executemany(
                "INSERT INTO payments (order_id, paid_amount, status, recorded_at) VALUES (?, ?, ?, ?)",
                [(key, value, status, stamp) for value, status in spec.payments],
            )
        for key, party in enumerate(parties, start=1):
            conn.execute(
                "INSERT INTO parties (id, status, start_time, end_time, deleted_at) VALUES (?, 'Seated', ?, ?, ?)",
                [key, stamp, stamp if party.has_left else None, stamp if party.deleted else None],
            )
            conn.executemany(
                "INSERT INTO party_tables (party_id, table_id, position) VALUES (?, ?, ?)",
                [(key, t, i) for i, t in enumerate(party.table_ids)],
            )
        for key, reservation in enumerate(reservations, start=1):
            conn.execute(
                "INSERT INTO reservations (id, name, covers, start_time, end_time, deleted_at) VALUES (?, 'G', 2, ?, ?, ?)",
                [
                    key,
                    format_utc(reservation.start_time),
                    format_utc(reservation.end_time),
                    stamp if reservation.deleted else None,
                ],
            )
            conn.executemany(
                "INSERT INTO reservation_tables (reservation_id, table_id, position) VALUES (?, ?, ?)",
                [(key, t, i) for i, t in enumerate(reservation.table_ids)],
            )
        conn.commit()


Grid = tuple[Path, list[OrderSpec], list[PartySpec], list[ReservationSpec]]


@pytest.fixture(scope="module")
def venue(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[OrderSpec], list[PartySpec], list[ReservationSpec]]:
    path = tmp_path_factory.mktemp("grid") / "pos.db"
    specs, parties, reservations = list(order_grid()), list(party_grid()), list(reservation_grid())
    seed(path, specs, parties, reservations)
    return path, specs, parties, reservations


async def every_id(path: Path, method: str, params: Any) -> list[int]:
    """Walk every page of one search, so the SQL is checked beyond the first hundred rows."""
    adapter = sqlite_pos(path)
    search: Callable[[Any, CallContext], Awaitable[Any]] = getattr(adapter, method)
    found: list[int] = []
    try:
        while True:
            page = await search(params, CallContext("grid"))
            found += [int(item.id) for item in page.data]
            if page.after is None:
                return found
            params = params.model_copy(update={"cursor": Cursor(after=page.after)})
    finally:
        await adapter.close()


ORDER_SEARCHES: list[dict[str, Any]] = [
    {},
    {"payableOnly": True},
    {"payableOnly": False},
    {"dineIn": {"tableId": "T1"}},
    {"dineIn": {"tableId": "T1", "waiterId": "w2"}, "payableOnly": True},
    {"dineIn": {"partyId": "1"}},
    {"dineIn": {"reservationId": "3"}},
    {"dineIn": {"waiterId": "w1"}, "payableOnly": True},
    {"dineIn": {}},
]


@pytest.mark.parametrize("search", ORDER_SEARCHES, ids=str)
async def test_search_orders_in_sql_keeps_what_the_order_filter_keeps(venue: Grid, search: dict[str, Any]) -> None:
    path, specs, _, _ = venue
    params = SearchOrdersParams.model_validate(search)
    wanted = orders.order_filter(params)
    expected = [key for key, spec in enumerate(specs, start=1) if wanted.matches(spec)]
    assert expected, "the grid must hold orders this search keeps"
    assert await every_id(path, "search_orders", params) == expected


def test_the_grid_has_payable_and_unpayable_orders_of_every_kind() -> None:
    specs = list(order_grid())
    payable = [s for s in specs if orders.is_payable(s.status, s.total_value, s.paid_value)]
    assert payable and len(payable) < len(specs)
    assert {s.status for s in specs} == set(OrderStatus)


@pytest.mark.parametrize(
    "search",
    [
        {},
        {"completedOnly": True},
        {"completedOnly": False},
        {"tableId": "T2"},
        {"completedOnly": True, "tableId": "T1"},
    ],
    ids=str,
)
async def test_search_parties_in_sql_keeps_what_the_party_filter_keeps(venue: Grid, search: dict[str, Any]) -> None:
    path, _, parties, _ = venue
    params = SearchPartiesParams.model_validate(search)
    wanted = bookings.party_filter(params)
    expected = [key for key, party in enumerate(parties, start=1) if wanted.matches(party)]
    assert await every_id(path, "search_parties", params) == expected


RESERVATION_SEARCHES: list[dict[str, Any]] = [
    {},
    {"tableId": "T2"},
    *({"fromTime": format_utc(edge)} for edge in EDGES),
    *({"toTime": format_utc(edge)} for edge in EDGES),
    *({"fromTime": format_utc(a), "toTime": format_utc(b)} for a in EDGES for b in EDGES if b > a),
]


@pytest.mark.parametrize("search", RESERVATION_SEARCHES, ids=str)
async def test_search_reservations_in_sql_keeps_what_the_reservation_filter_keeps(
    venue: Grid, search: dict[str, Any]
) -> None:
    path, _, _, reservations = venue
    params = SearchReservationsParams.model_validate(search)
    wanted = bookings.reservation_filter(params)
    assert await every_id(path, "search_reservations", params) == [
        key for key, r in enumerate(reservations, start=1) if wanted.matches(r)
    ]


# --- the searches use the open-order indexes ------------------------------------------------
# SQLite uses a partial index only when the query carries the index's WHERE word for word; a
# reordered status list once made every search on a big venue walk all of its closed orders.


def test_the_open_order_condition_is_the_partial_indexes_own_text() -> None:
    conditions, _ = rows.order_conditions(orders.order_filter(SearchOrdersParams()))
    assert conditions[0] == OPEN_ORDERS_SQL


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "orders_open_v4"),
        ({"dine_in": {"table_id": "T1"}}, "orders_open_by_table_v4"),
        ({"dine_in": {"waiter_id": "w1"}}, "orders_open_by_waiter_v4"),
        ({"payable_only": True}, "orders_open_v4"),
        ({"dine_in": {"table_id": "T1"}, "payable_only": True}, "orders_open_by_table_v4"),
    ],
)
def test_order_searches_read_only_open_orders_through_their_index(
    tmp_path: Path, filters: dict[str, Any], index: str
) -> None:
    path = tmp_path / "pos.db"
    init_database(path, demo=False, now=NOW)
    conditions, args = rows.order_conditions(orders.order_filter(SearchOrdersParams(**filters)))
    sql = f"SELECT id FROM orders WHERE {' AND '.join(conditions)} ORDER BY id LIMIT 10"
    with closing(sqlite3.connect(path)) as conn:
        plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    assert f"USING INDEX {index}" in plan, plan
