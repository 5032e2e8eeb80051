"""A Floreant POS as the tests need one: its tables (the shipped demo DDL), attached for the
``floreant`` mapping, and a till that writes tickets the way Floreant does (plain SQL on TICKET,
TICKET_ITEM and TRANSACTIONS, bumping MODIFIED_TIME, its optimistic-lock version)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, Mapping, load
from epos_bridge.testing.contract_suite import StandardVenue

NO_OPEN_AT_TILL = "Floreant records no ticket being open at a terminal, so its mapping cannot say so"
"""Why the contract tests of a ticket open at a till skip on Floreant: the mapping format has an
``open_at_till`` alias for a POS that records this; Floreant's tables have no such column."""


def floreant() -> Mapping:
    return load("floreant")


def floreant_time(moment: datetime | None = None) -> str:
    """A timestamp as Floreant's Hibernate writes it into SQLite: UTC, a space, milliseconds."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def create_floreant_database(path: Path) -> None:
    """An empty Floreant database, attached for the ``floreant`` mapping."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((SHIPPED / "floreant.sql").read_text(encoding="utf-8"))
    setup.attach(path, floreant())


class FloreantTill:
    """Acts as Floreant (and its installer, for the facts Floreant has no column for)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table_numbers: dict[str, int] = {}

    def _sql(self, statement: str, args: list[Any] | tuple[Any, ...] = ()) -> int | None:
        with closing(sqlite3.connect(self.path, timeout=5)) as conn:
            cursor = conn.execute(statement, list(args))
            conn.commit()
            return cursor.lastrowid

    def _fact(self, kind: str, key: object, field: str, value: object) -> None:
        self._sql(
            "INSERT OR REPLACE INTO EPOS_BRIDGE_FACTS (KIND, POS_KEY, FIELD, VALUE) VALUES (?, ?, ?, ?)",
            (kind, str(key), field, value),
        )

    def seed(self, venue: StandardVenue) -> None:
        create_floreant_database(self.path)
        self._sql(
            "INSERT INTO RESTAURANT (ID, NAME, ADDRESS_LINE1, ADDRESS_LINE2, TICKET_FOOTER, CNAME) VALUES (1, ?, ?, ?, ?, ?)",
            (venue.name, *venue.address_lines[:2], venue.footer_text, venue.currency),
        )
        self._fact("venue", 1, "postcode", venue.postcode)
        self._fact("venue", 1, "vat_number", venue.vat_number)
        floors = {}
        for area in venue.areas:
            floors[area.id] = key = self._sql("INSERT INTO SHOP_FLOOR (NAME) VALUES (?)", (area.name,))
            self._fact("area", key, "id", area.id)
            self._fact("area", key, "waiter_ids", json.dumps(list(area.waiter_ids)))
        for number, table in enumerate(venue.tables, start=1):
            key = self._sql(
                "INSERT INTO SHOP_TABLE (NUMBER, X, Y, SHOP_TABLE) VALUES (?, 0, 0, ?)", (number, floors[table.area_id])
            )
            self.table_numbers[table.id] = number
            for field, value in (("id", table.id), ("name", table.name), ("max_covers", table.max_covers)):
                self._fact("table", key, field, value)
            self._fact("table", key, "waiter_ids", json.dumps(list(table.waiter_ids)))

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        now = floreant_time()
        pounds = total_value / 100
        key = self._sql(
            "INSERT INTO TICKET (CREATE_DATE, ACTIVE_DATE, MODIFIED_TIME, PAID, VOIDED, SETTLED, SUB_TOTAL, TOTAL_PRICE,"
            " PAID_AMOUNT, DUE_AMOUNT, TABLE_NUMBER, TICKET_TYPE, OWNER_ID) VALUES (?, ?, ?, 0, 0, 0, ?, ?, 0, ?, ?,"
            " 'DINE_IN', NULL)",
            (now, now, now, pounds, pounds, pounds, self.table_numbers[table_id]),
        )
        self.add_item(str(key), "Meal", 1, total_value, change_total=False)
        return str(key)

    def add_item(self, order_id: str, name: str, count: int, unit_value: int, *, change_total: bool = True) -> None:
        """A waiter adds a line; Floreant recomputes the ticket's totals in the same transaction."""
        with closing(sqlite3.connect(self.path, timeout=5)) as conn, conn:
            conn.execute(
                "INSERT INTO TICKET_ITEM (ITEM_COUNT, ITEM_QUANTITY, ITEM_NAME, ITEM_PRICE, TOTAL_PRICE, TICKET_ID,"
                " ITEM_ORDER) VALUES (?, ?, ?, ?, ?, ?, (SELECT COUNT(*) FROM TICKET_ITEM WHERE TICKET_ID = ?))",
                (count, count, name, unit_value / 100, count * unit_value / 100, order_id, order_id),
            )
            if change_total:
                added = count * unit_value / 100
                conn.execute(
                    "UPDATE TICKET SET TOTAL_PRICE = TOTAL_PRICE + ?, SUB_TOTAL = SUB_TOTAL + ?,"
                    " DUE_AMOUNT = DUE_AMOUNT + ?, MODIFIED_TIME = ? WHERE ID = ?",
                    (added, added, added, floreant_time(), order_id),
                )

    def settle_in_cash(self, order_id: str, value: int) -> None:
        """Staff take cash at the till: a CASH transaction and the ticket's paid/due columns."""
        with closing(sqlite3.connect(self.path, timeout=5)) as conn, conn:
            now = floreant_time()
            conn.execute(
                "INSERT INTO TRANSACTIONS (TRANSACTION_TYPE, TRANSACTION_TIME, MODIFIED_TIME, AMOUNT, TENDER_AMOUNT,"
                " CAPTURED, TICKET_ID, TRAN_ORDER) VALUES ('CASH', ?, ?, ?, ?, 1, ?,"
                " (SELECT COUNT(*) FROM TRANSACTIONS WHERE TICKET_ID = ?))",
                (now, now, value / 100, value / 100, order_id, order_id),
            )
            conn.execute(
                "UPDATE TICKET SET PAID_AMOUNT = PAID_AMOUNT + ?, DUE_AMOUNT = DUE_AMOUNT - ?, MODIFIED_TIME = ?"
                " WHERE ID = ?",
                (value / 100, value / 100, now, order_id),
            )

    def set_order_status(self, order_id: str, status: str) -> None:
        now = floreant_time()
        if status == "Finalized":
            self._sql(
                "UPDATE TICKET SET SETTLED = 1, CLOSING_DATE = ?, MODIFIED_TIME = ? WHERE ID = ?", (now, now, order_id)
            )
        elif status == "Canceled":
            self._sql(
                "UPDATE TICKET SET VOIDED = 1, SETTLED = 1, CLOSING_DATE = ?, MODIFIED_TIME = ? WHERE ID = ?",
                (now, now, order_id),
            )
        else:
            self._sql("UPDATE TICKET SET STATUS = ?, MODIFIED_TIME = ? WHERE ID = ?", (status, now, order_id))

    def open_order_at_till(self, order_id: str, till: str) -> None:
        pytest.skip(NO_OPEN_AT_TILL)

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._sql("UPDATE TICKET SET MODIFIED_TIME = ? WHERE ID = ?", (floreant_time(moment), order_id))

    def remove_order(self, order_id: str) -> None:
        """As Floreant purges a ticket: its transactions, modifiers, lines, then the ticket."""
        for statement in (
            "DELETE FROM TRANSACTIONS WHERE TICKET_ID = ?",
            "DELETE FROM TICKET_ITEM_MODIFIER WHERE TICKET_ITEM_ID IN (SELECT ID FROM TICKET_ITEM WHERE TICKET_ID = ?)",
            "DELETE FROM TICKET_ITEM WHERE TICKET_ID = ?",
            "DELETE FROM TICKET WHERE ID = ?",
        ):
            self._sql(statement, (order_id,))
