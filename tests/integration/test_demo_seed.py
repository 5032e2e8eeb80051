"""The demo venue in a real SQLite file: enough of everything, and every number adds up; and the
file database's demo, written from the same description, answers exactly as the reference one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.sqlite.demo import seed_demo
from epos_bridge.adapters.sqlite.schema import migrate
from epos_bridge.demo_venue import T12_ORDER_ID, TILL_ORDER_ID, DemoSeedRefused, DemoSummary, demo_venue
from epos_bridge.domain.errors import EposFailure
from epos_bridge.ports import CallContext, PosAdapter
from epos_bridge.protocol import params
from epos_bridge.protocol.base import format_utc, to_wire
from tests.helpers.pos import jsonfile_pos, sqlite_pos

NOW = datetime(2025, 3, 14, 12, 7, 30, 250_000, tzinfo=UTC)
OPEN = "status NOT IN ('Finalized', 'Canceled')"
COUNTING = "status NOT IN ('Reversed', 'Refunded', 'Canceled')"
PAID = f"(SELECT coalesce(sum(paid_amount), 0) FROM payments p WHERE p.order_id = o.id AND p.{COUNTING})"
"""What order ``o`` has been paid, counting the payments that count (an SQL expression)."""


def _fresh(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path)
    migrate(db)
    return db


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[sqlite_utils.Database, DemoSummary]]:
    db = _fresh(tmp_path / "pos.sqlite")
    summary = seed_demo(db, NOW)
    yield db, summary
    db.close()


@pytest.fixture
def db(seeded: tuple[sqlite_utils.Database, DemoSummary]) -> sqlite_utils.Database:
    return seeded[0]


def scalar(db: sqlite_utils.Database, sql: str, params: tuple[object, ...] = ()) -> object:
    return db.execute(sql, params).fetchone()[0]


def count(db: sqlite_utils.Database, sql: str, params: tuple[object, ...] = ()) -> int:
    value = scalar(db, sql, params)
    assert isinstance(value, int)
    return value


def dump(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows; the change log is left out because its triggers stamp wall-clock time."""
    return {
        name: db.execute(f"SELECT * FROM [{name}] ORDER BY rowid").fetchall()
        for name in db.table_names()
        if name != "pos_changes"
    }


def test_counts_meet_the_minimums(seeded: tuple[sqlite_utils.Database, DemoSummary]) -> None:
    db, summary = seeded
    assert count(db, "SELECT count(*) FROM venue") == 1
    assert count(db, "SELECT count(*) FROM areas") >= 3
    assert count(db, "SELECT count(*) FROM tables") >= 20
    assert count(db, "SELECT count(*) FROM waiters") >= 6
    assert count(db, f"SELECT count(*) FROM orders WHERE {OPEN}") >= 12
    assert count(db, "SELECT count(*) FROM orders WHERE status = 'Finalized'") >= 5
    assert count(db, "SELECT count(*) FROM orders WHERE status = 'Canceled'") >= 1
    assert count(db, "SELECT count(*) FROM parties WHERE end_time IS NULL") >= 5
    assert count(db, "SELECT count(*) FROM parties WHERE end_time IS NOT NULL") >= 2
    assert count(db, "SELECT count(*) FROM reservations WHERE start_time > ?", (format_utc(NOW),)) >= 8
    assert summary == DemoSummary(
        waiters=count(db, "SELECT count(*) FROM waiters"),
        areas=count(db, "SELECT count(*) FROM areas"),
        tables=count(db, "SELECT count(*) FROM tables"),
        open_orders=count(db, f"SELECT count(*) FROM orders WHERE {OPEN}"),
        closed_orders=count(db, f"SELECT count(*) FROM orders WHERE NOT ({OPEN})"),
        seated_parties=count(db, "SELECT count(*) FROM parties WHERE end_time IS NULL"),
        departed_parties=count(db, "SELECT count(*) FROM parties WHERE end_time IS NOT NULL"),
        reservations=count(db, "SELECT count(*) FROM reservations"),
        payments=count(db, "SELECT count(*) FROM payments"),
    )


def test_venue_is_complete_and_in_pounds(db: sqlite_utils.Database) -> None:
    venue = db.execute(
        "SELECT name, address_lines, postcode, phone_number, email_address, vat_number, logo_svg, website_url,"
        " footer_text, currency_code FROM venue"
    ).fetchone()
    assert all(venue)
    assert json.loads(venue[1])
    assert venue[5].startswith("GB")
    assert venue[6].startswith("<svg")
    assert venue[9] == "GBP"
    assert count(db, "SELECT count(*) FROM orders WHERE currency_code <> 'GBP'") == 0


def _line_values(db: sqlite_utils.Database) -> dict[int, int]:
    """Per order: sum of quantity * (base + modifiers + sub-items with their modifiers), from raw rows."""
    item_mods = dict(
        db.execute(
            "SELECT item_id, sum(quantity * amount_per_modifier) FROM order_modifiers"
            " WHERE item_id IS NOT NULL GROUP BY item_id"
        ).fetchall()
    )
    sub_mods = dict(
        db.execute(
            "SELECT sub_item_id, sum(quantity * amount_per_modifier) FROM order_modifiers"
            " WHERE sub_item_id IS NOT NULL GROUP BY sub_item_id"
        ).fetchall()
    )
    subs: dict[int, int] = {}
    for sub_id, item_id, quantity, amount in db.execute(
        "SELECT id, item_id, quantity, amount_per_item FROM order_sub_items"
    ).fetchall():
        subs[item_id] = subs.get(item_id, 0) + quantity * (amount + sub_mods.get(sub_id, 0))
    values: dict[int, int] = {}
    for item_id, order_id, quantity, amount in db.execute(
        "SELECT id, order_id, quantity, amount_per_item FROM order_items"
    ).fetchall():
        unit = amount + item_mods.get(item_id, 0) + subs.get(item_id, 0)
        values[order_id] = values.get(order_id, 0) + quantity * unit
    return values


def test_every_total_adds_up_from_its_rows(db: sqlite_utils.Database) -> None:
    lines = _line_values(db)
    rows = db.execute(
        "SELECT o.id, o.total_amount, coalesce(o.service_charge_amount, 0),"
        " (SELECT coalesce(sum(amount_total), 0) FROM order_discounts d WHERE d.order_id = o.id)"
        " FROM orders o"
    ).fetchall()
    assert rows
    for order_id, total, service, discounts in rows:
        assert total == lines[order_id] - discounts + service, f"order {order_id}"
        assert 0 <= service <= total


def test_vat_is_the_inclusive_part_of_the_total(db: sqlite_utils.Database) -> None:
    rows = db.execute(
        "SELECT o.total_amount - coalesce(o.service_charge_amount, 0), t.amount_total, t.amount_percentage"
        " FROM orders o JOIN order_tax_lines t ON t.order_id = o.id"
    ).fetchall()
    assert rows
    for vatable, vat, percentage in rows:
        assert percentage == 2000
        assert abs(vat * 6 - vatable) <= 6  # 20 % inclusive is one sixth, to the penny


def test_payments_never_exceed_the_total(db: sqlite_utils.Database) -> None:
    rows = db.execute(f"SELECT o.id, o.status, o.total_amount, {PAID} FROM orders o").fetchall()
    for order_id, status, total, paid in rows:
        assert paid <= total, f"order {order_id}"
        if status == "Finalized":
            assert paid == total, f"finalized order {order_id} is fully paid"
        if status == "Canceled":
            assert paid == 0
    assert count(db, "SELECT count(*) FROM payments WHERE tender = 'cash' AND payment_intent_id IS NOT NULL") == 0
    assert count(db, "SELECT count(*) FROM payments WHERE tender = 'cash'") >= 1
    assert count(db, "SELECT count(*) FROM payments WHERE payment_intent_id LIKE 'pi_demo_%' AND status = 'Captured'")
    partly_paid = count(
        db,
        f"SELECT count(*) FROM orders o WHERE {OPEN} AND {PAID} BETWEEN 1 AND o.total_amount - 1",
    )
    assert partly_paid >= 2


def test_every_reference_resolves(db: sqlite_utils.Database) -> None:
    unresolved = {
        "orders.table_id": "SELECT count(*) FROM orders WHERE table_id IS NOT NULL"
        " AND table_id NOT IN (SELECT id FROM tables)",
        "orders.waiter_id": "SELECT count(*) FROM orders WHERE waiter_id IS NOT NULL"
        " AND waiter_id NOT IN (SELECT id FROM waiters)",
        "orders.party_id": "SELECT count(*) FROM orders WHERE party_id IS NOT NULL"
        " AND party_id NOT IN (SELECT CAST(id AS TEXT) FROM parties)",
        "orders.reservation_id": "SELECT count(*) FROM orders WHERE reservation_id IS NOT NULL"
        " AND reservation_id NOT IN (SELECT CAST(id AS TEXT) FROM reservations)",
        "parties.reservation_id": "SELECT count(*) FROM parties WHERE reservation_id IS NOT NULL"
        " AND reservation_id NOT IN (SELECT CAST(id AS TEXT) FROM reservations)",
        "party_tables.table_id": "SELECT count(*) FROM party_tables WHERE table_id NOT IN (SELECT id FROM tables)",
        "reservation_tables.table_id": "SELECT count(*) FROM reservation_tables"
        " WHERE table_id NOT IN (SELECT id FROM tables)",
        "table_waiters.waiter_id": "SELECT count(*) FROM table_waiters WHERE waiter_id NOT IN (SELECT id FROM waiters)",
        "area_waiters.waiter_id": "SELECT count(*) FROM area_waiters WHERE waiter_id NOT IN (SELECT id FROM waiters)",
        "payments.waiter_id": "SELECT count(*) FROM payments WHERE waiter_id IS NOT NULL"
        " AND waiter_id NOT IN (SELECT id FROM waiters)",
    }
    assert {name: count(db, sql) for name, sql in unresolved.items()} == dict.fromkeys(unresolved, 0)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_dine_in_and_collection_details_are_consistent(db: sqlite_utils.Database) -> None:
    assert count(db, "SELECT count(*) FROM orders WHERE order_type = 'DineIn' AND table_id IS NULL") == 0
    assert (
        count(
            db,
            "SELECT count(*) FROM orders WHERE order_type = 'Collection'"
            " AND (table_id IS NOT NULL OR (collection_asap IS NOT 1 AND collect_at IS NULL))",
        )
        == 0
    )
    assert count(db, "SELECT count(*) FROM orders WHERE order_type = 'Collection' AND collection_asap = 1")
    assert count(
        db, "SELECT count(*) FROM orders WHERE order_type = 'Collection' AND collect_at > ?", (format_utc(NOW),)
    )
    assert count(db, f"SELECT count(*) FROM orders WHERE {OPEN} AND order_type = 'DineIn' AND party_id IS NOT NULL")
    names = db.execute("SELECT area_id, name FROM tables").fetchall()
    assert len(names) == len(set(names)), "table names are unique within an area"


def test_the_interesting_cases_are_present(db: sqlite_utils.Database) -> None:
    assert count(db, "SELECT count(*) FROM order_modifiers WHERE item_id IS NOT NULL")
    assert count(
        db,
        "SELECT count(*) FROM order_sub_items s WHERE EXISTS"
        " (SELECT 1 FROM order_modifiers m WHERE m.sub_item_id = s.id)",
    )
    assert count(db, "SELECT count(*) FROM order_discounts WHERE amount_percentage = 1000")
    assert count(db, "SELECT count(*) FROM order_discounts WHERE code IS NOT NULL")
    assert count(db, "SELECT count(*) FROM orders WHERE service_charge_amount > 0")
    assert count(db, "SELECT count(*) FROM order_tax_lines WHERE amount_percentage = 2000 AND amount_total > 0")
    assert scalar(db, "SELECT open_at_till FROM orders WHERE id = ?", (TILL_ORDER_ID,)) == "TILL-2"


def test_table_12_has_two_open_orders_one_with_a_balance(db: sqlite_utils.Database) -> None:
    rows = db.execute(
        f"SELECT o.id, o.total_amount - {PAID} FROM orders o"
        f" WHERE table_id = 'T12' AND order_type = 'DineIn' AND {OPEN} ORDER BY id"
    ).fetchall()
    assert len(rows) >= 2
    outstanding = dict(rows)
    assert 0 < outstanding[T12_ORDER_ID] < scalar(db, "SELECT total_amount FROM orders WHERE id = ?", (T12_ORDER_ID,))


def test_parties_and_reservations(db: sqlite_utils.Database) -> None:
    now = format_utc(NOW)
    assert (
        count(
            db, "SELECT count(*) FROM parties p WHERE NOT EXISTS (SELECT 1 FROM party_tables t WHERE t.party_id = p.id)"
        )
        == 0
    )
    assert (
        count(
            db,
            "SELECT count(*) FROM reservations r WHERE NOT EXISTS (SELECT 1 FROM reservation_tables t"
            " WHERE t.reservation_id = r.id)",
        )
        == 0
    )
    linked = db.execute(
        "SELECT reservation_id, deposit_amount, deposit_payment_intent_ids FROM parties"
        " WHERE reservation_id IS NOT NULL AND end_time IS NULL"
    ).fetchall()
    assert linked
    assert all(deposit > 0 and json.loads(intents) for _, deposit, intents in linked)
    seated_from = {reservation_id for reservation_id, _, _ in linked}
    for reservation_id, start, end in db.execute("SELECT id, start_time, end_time FROM reservations").fetchall():
        if str(reservation_id) not in seated_from:
            assert start > now, f"reservation {reservation_id} is upcoming"
        assert end == format_utc(datetime.fromisoformat(start) + timedelta(hours=2))
    assert count(db, "SELECT count(*) FROM reservations WHERE guest_requests LIKE '%nut allergy%'")
    assert count(db, "SELECT count(*) FROM parties WHERE end_time IS NOT NULL AND end_time > ?", (now,)) == 0


def test_times_are_utc_text_with_milliseconds_before_now(db: sqlite_utils.Database) -> None:
    now = format_utc(NOW)
    for created, updated in db.execute("SELECT created_at, updated_at FROM orders").fetchall():
        assert created == format_utc(datetime.fromisoformat(created))
        assert created <= updated <= now
    assert count(db, "SELECT count(*) FROM payments WHERE recorded_at > ?", (now,)) == 0


def test_same_now_gives_the_same_rows(tmp_path: Path, db: sqlite_utils.Database) -> None:
    other = _fresh(tmp_path / "again.sqlite")
    try:
        seed_demo(other, NOW)
        assert dump(other) == dump(db)
    finally:
        other.close()


def test_a_database_with_data_is_refused(db: sqlite_utils.Database) -> None:
    before = dump(db)
    with pytest.raises(DemoSeedRefused, match="already has rows"):
        seed_demo(db, NOW)
    assert dump(db) == before


def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "empty.sqlite")
    try:
        with pytest.raises(DemoSeedRefused, match="schema version 0"):
            seed_demo(db, NOW)
    finally:
        db.close()


def test_naive_now_is_refused(tmp_path: Path) -> None:
    db = _fresh(tmp_path / "naive.sqlite")
    try:
        with pytest.raises(ValueError, match="timezone-aware"):
            seed_demo(db, datetime(2025, 3, 14, 12, 0))
    finally:
        db.close()


class _Fixed:
    def now(self) -> datetime:
        return NOW + timedelta(minutes=5)


async def _everything(adapter: PosAdapter) -> dict[str, object]:
    """What the adapter answers for every id the demo issued (and one past), and for a spread of
    searches: the whole venue as Dojo sees it."""
    ctx = CallContext("demo")
    seen: dict[str, object] = {}

    async def answer(name: str, call: Any) -> None:
        try:
            result = await call
        except EposFailure as failure:
            seen[name] = f"{type(failure).__name__}: {failure.message}"
            return
        seen[name] = [to_wire(r) for r in result] if isinstance(result, list) else to_wire(result)

    for i in range(23):
        await answer(f"order {i}", adapter.get_order(params.OrderIdParams(order_id=str(i)), ctx))
        await answer(f"bill {i}", adapter.get_order_bill(params.OrderIdParams(order_id=str(i)), ctx))
    for i in range(11):
        await answer(f"party {i}", adapter.get_party(params.PartyIdParams(party_id=str(i)), ctx))
        await answer(
            f"reservation {i}", adapter.get_reservation(params.ReservationIdParams(reservation_id=str(i)), ctx)
        )
    await answer("areas", adapter.list_areas(params.WithHeaders(), ctx))
    soon = format_utc(NOW + timedelta(hours=2))
    searches: list[tuple[str, Any]] = [
        ("orders", adapter.search_orders(params.SearchOrdersParams(), ctx)),
        ("payable", adapter.search_orders(params.SearchOrdersParams.model_validate({"payableOnly": True}), ctx)),
        ("T12", adapter.search_orders(params.SearchOrdersParams.model_validate({"dineIn": {"tableId": "T12"}}), ctx)),
        ("seated", adapter.search_parties(params.SearchPartiesParams(), ctx)),
        ("left", adapter.search_parties(params.SearchPartiesParams.model_validate({"completedOnly": True}), ctx)),
        ("window", adapter.search_reservations(params.SearchReservationsParams.model_validate({"toTime": soon}), ctx)),
        ("tables", adapter.search_tables(params.SearchTablesParams(), ctx)),
    ]
    for name, call in searches:
        await answer(name, call)
    await adapter.close()
    return seen


async def test_the_file_database_demo_answers_exactly_as_the_reference_one(tmp_path: Path) -> None:
    db = _fresh(tmp_path / "pos.sqlite")
    summary = seed_demo(db, NOW)
    db.close()
    report = init_folder(tmp_path / "pos", demo=True, now=NOW)
    assert report.demo == summary == demo_venue(NOW).summary()
    reference = await _everything(sqlite_pos(tmp_path / "pos.sqlite", _Fixed()))
    files = await _everything(jsonfile_pos(tmp_path / "pos", _Fixed()))
    assert isinstance(reference["order 7"], dict) and isinstance(reference["party 2"], dict)
    assert files == reference
