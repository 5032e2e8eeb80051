"""An Open Source Point of Sale as the tests need one: its tables (the shipped demo DDL), attached
for the ``ospos`` mapping, a till that works as OSPOS's PHP does (Sale_suspended::save,
Sales::unsuspend, Sale::save, as plain SQL on its tables), and the queries OSPOS's own screens
run, from its source (opensourcepos/opensourcepos at 05ae4c0c): the bill a till unsuspends and
its amount due (Sale_lib), the free tables a till offers (Dinner_table::get_empty_tables) and the
day's payments (Sale::get_payments_summary, reports/Summary_payments)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, Mapping, load
from epos_bridge.testing.contract_suite import StandardVenue

CLOSED = 1_000_000_000
"""A completed sale's Dojo id is this plus its sale_id (the mapping's header says why)."""

MENU = (("Burger", "BURG", 1000), ("Cola", "COLA", 300), ("Fries", "FRY", 250), ("Cheese", "CHS", 50),
        ("Meal", "MEAL", 1000), ("B", "B", 1000))  # fmt: skip
"""The venue's items: every PLU the contract suite's orders sell is an OSPOS item number."""


def ospos() -> Mapping:
    return load("ospos")


def ospos_time(moment: datetime | None = None) -> str:
    """A timestamp as OSPOS's PHP writes it (date('Y-m-d H:i:s')) in the mapping's zone."""
    return (moment or datetime.now(UTC)).astimezone(ospos().zone).strftime("%Y-%m-%d %H:%M:%S")


def create_ospos_database(path: Path, *, menu: bool = True) -> None:
    """An empty OSPOS database with its menu, attached for the ``ospos`` mapping."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript((SHIPPED / "ospos.sql").read_text(encoding="utf-8"))
        if menu:
            conn.executemany(
                "INSERT INTO ospos_items (name, category, item_number, description, cost_price, unit_price,"
                " allow_alt_description, is_serialized) VALUES (?, 'Menu', ?, '', 0, ?, 1, 0)",
                [(name, plu, value / 100) for name, plu, value in MENU],
            )
    setup.attach(path, ospos())


@dataclass(frozen=True)
class Bill:
    """An open bill as OSPOS's register shows it once unsuspended: the cart's lines, payments,
    total and amount due (Sale_lib::get_total, get_payments_total, get_amount_due)."""

    payments: dict[str, Decimal]
    total: Decimal
    amount_due: Decimal

    @property
    def complete_shows(self) -> bool:
        """The register offers Complete (``payments_cover_total``): nothing is left to take."""
        return self.amount_due <= 0


class OsposTill:
    """Acts as OSPOS (and its installer, for the facts OSPOS has no column for)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table_keys: dict[str, int] = {}

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _sql(self, statement: str, args: list[Any] | tuple[Any, ...] = ()) -> int | None:
        with closing(self._connect()) as conn, conn:
            return conn.execute(statement, list(args)).lastrowid

    def _read(self, statement: str, args: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with closing(self._connect()) as conn:
            return conn.execute(statement, list(args)).fetchall()

    def _fact(self, kind: str, key: object, field: str, value: object) -> None:
        self._sql(
            "INSERT OR REPLACE INTO EPOS_BRIDGE_FACTS (KIND, POS_KEY, FIELD, VALUE) VALUES (?, ?, ?, ?)",
            (kind, str(key), field, value),
        )

    # --- the contract suite's Seeder ------------------------------------------------------------

    def seed(self, venue: StandardVenue) -> None:
        create_ospos_database(self.path)
        for key, value in (("company", venue.name), ("address", "\n".join(venue.address_lines)),
                           ("return_policy", venue.footer_text), ("phone", "")):  # fmt: skip
            self._sql('INSERT OR REPLACE INTO ospos_app_config ("key", value) VALUES (?, ?)', (key, value))
        self._fact("venue", 1, "postcode", venue.postcode)
        self._fact("venue", 1, "vat_number", venue.vat_number)
        for number, area in enumerate(venue.areas, start=1):
            self._fact("area", number, "id", area.id)
            self._fact("area", number, "name", area.name)
            self._fact("area", number, "waiter_ids", json.dumps(list(area.waiter_ids)))
        for table in venue.tables:
            key = self._sql("INSERT INTO ospos_dinner_tables (name, status, deleted) VALUES (?, 0, 0)", (table.name,))
            assert key is not None
            self.table_keys[table.id] = key
            for field, value in (("id", table.id), ("max_covers", table.max_covers), ("area_id", table.area_id)):
                self._fact("table", key, field, value)
            self._fact("table", key, "waiter_ids", json.dumps(list(table.waiter_ids)))

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        return str(self.suspend(self.table_keys[table_id], [("MEAL", 1, total_value)]))

    def set_order_status(self, order_id: str, status: str) -> str | None:
        """Finalized is OSPOS's checkout: the bill is unsuspended and completed under a new key
        (returned). OSPOS has no other status: the rest are the bridge's facts, as Dojo's own."""
        if status == "Finalized":
            return str(CLOSED + self.check_out(int(order_id)))
        self._fact("order", order_id, "status", status)
        self._sql("UPDATE ospos_sales_suspended SET sale_time = ? WHERE sale_id = ?", (ospos_time(), order_id))
        return None

    def open_order_at_till(self, order_id: str, till: str) -> None:
        pytest.skip(
            "OSPOS records no bill open at a till: a till that opens a bill deletes it from the database"
            " (tested as remove_order)"
        )

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._sql("UPDATE ospos_sales_suspended SET sale_time = ? WHERE sale_id = ?", (ospos_time(moment), order_id))

    def remove_order(self, order_id: str) -> None:
        """A till unsuspends the bill (into its cart) and never completes it."""
        self.unsuspend(int(order_id))

    # --- OSPOS's own writes ------------------------------------------------------------------------

    def suspend(self, table: int, lines: list[tuple[str, int, int]], payments: dict[str, int] | None = None) -> int:
        """Sale_suspended::save: the bill, its payments (by type), its lines, their item taxes,
        and the table occupied (unless it is Delivery or Take Away)."""
        with closing(self._connect()) as conn, conn:
            sale_id = conn.execute(
                "INSERT INTO ospos_sales_suspended (sale_time, customer_id, employee_id, comment, invoice_number,"
                " dinner_table_id) VALUES (?, NULL, 1, '', NULL, ?)",
                (ospos_time(), table),
            ).lastrowid
            for payment_type, value in (payments or {}).items():
                conn.execute(
                    "INSERT INTO ospos_sales_suspended_payments (sale_id, payment_type, payment_amount) VALUES (?, ?, ?)",
                    (sale_id, payment_type, value / 100),
                )
            for line, (plu, quantity, value) in enumerate(lines, start=1):
                conn.execute(
                    "INSERT INTO ospos_sales_suspended_items (sale_id, item_id, description, serialnumber, line,"
                    " quantity_purchased, item_cost_price, item_unit_price, discount_percent, item_location)"
                    " SELECT ?, item_id, '', '', ?, ?, cost_price, ?, 0, 1 FROM ospos_items WHERE item_number = ?",
                    (sale_id, line, quantity, value / 100, plu),
                )
                conn.execute(
                    "INSERT INTO ospos_sales_suspended_items_taxes (sale_id, item_id, line, name, percent)"
                    " SELECT ?, t.item_id, ?, t.name, t.percent FROM ospos_items_taxes t JOIN ospos_items i"
                    " ON i.item_id = t.item_id WHERE i.item_number = ?",
                    (sale_id, line, plu),
                )
            conn.execute("UPDATE ospos_dinner_tables SET status = ? WHERE dinner_table_id = ?", (int(table > 2), table))
        assert sale_id is not None
        return sale_id

    def unsuspend(self, sale_id: int) -> Cart:
        """Sales::unsuspend: the bill into a till's cart (Sale_lib::copy_entire_suspended_sale),
        then Sale_suspended::delete (the table freed, every row of the bill deleted)."""
        cart = Cart(
            lines=self._read(
                "SELECT item_id, line, quantity_purchased, item_unit_price, discount_percent, description"
                " FROM ospos_sales_suspended_items WHERE sale_id = ?",
                (sale_id,),
            ),
            payments=dict(
                self._read(
                    "SELECT payment_type, payment_amount FROM ospos_sales_suspended_payments WHERE sale_id = ?",
                    (sale_id,),
                )
            ),
            comment=self._read("SELECT comment FROM ospos_sales_suspended WHERE sale_id = ?", (sale_id,))[0][0],
            table=self._read("SELECT dinner_table_id FROM ospos_sales_suspended WHERE sale_id = ?", (sale_id,))[0][0],
        )
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "UPDATE ospos_dinner_tables SET status = 0 WHERE dinner_table_id ="
                " (SELECT dinner_table_id FROM ospos_sales_suspended WHERE sale_id = ?)",
                (sale_id,),
            )
            for table in ("ospos_sales_suspended_payments", "ospos_sales_suspended_items_taxes",
                          "ospos_sales_suspended_items", "ospos_sales_suspended"):  # fmt: skip
                conn.execute(f"DELETE FROM {table} WHERE sale_id = ?", (sale_id,))
        return cart

    def complete(self, cart: Cart, table: int = 1) -> int:
        """Sale::save: a new sale (its own sale_id), the cart's payments by type and amount, its
        lines and their item taxes. OSPOS does not restore the table on unsuspend: Delivery (1)."""
        return self._save_cart("ospos_sales", cart, table)

    def resuspend(self, cart: Cart, table: int = 1) -> int:
        """Sale_suspended::save of a cart a till unsuspended: the bill again, under a new sale_id."""
        return self._save_cart("ospos_sales_suspended", cart, table)

    def _save_cart(self, sales: str, cart: Cart, table: int) -> int:
        """The cart written as a sale (``ospos_sales``) or a bill (``ospos_sales_suspended``) and
        its ``_payments``, ``_items`` and ``_items_taxes`` rows, as both of OSPOS's saves do."""
        with closing(self._connect()) as conn, conn:
            sale_id = conn.execute(
                f"INSERT INTO {sales} (sale_time, customer_id, employee_id, comment, invoice_number,"
                " dinner_table_id) VALUES (?, NULL, 1, ?, NULL, ?)",
                (ospos_time(), cart.comment, table),
            ).lastrowid
            for payment_type, amount in cart.payments.items():
                conn.execute(
                    f"INSERT INTO {sales}_payments (sale_id, payment_type, payment_amount) VALUES (?, ?, ?)",
                    (sale_id, payment_type, amount),
                )
            for item_id, line, quantity, price, discount, description in cart.lines:
                conn.execute(
                    f"INSERT INTO {sales}_items (sale_id, item_id, description, serialnumber, line,"
                    " quantity_purchased, item_cost_price, item_unit_price, discount_percent, item_location)"
                    " VALUES (?, ?, ?, '', ?, ?, 0, ?, ?, 1)",
                    (sale_id, item_id, description, line, quantity, price, discount),
                )
                conn.execute(
                    f"INSERT INTO {sales}_items_taxes (sale_id, item_id, line, name, percent)"
                    " SELECT ?, item_id, ?, name, percent FROM ospos_items_taxes WHERE item_id = ?",
                    (sale_id, line, item_id),
                )
        assert sale_id is not None
        return sale_id

    def check_out(self, sale_id: int) -> int:
        """Staff unsuspend the bill and complete it at once; the completed sale's sale_id."""
        return self.complete(self.unsuspend(sale_id))

    def take_payment(self, sale_id: int, payment_type: str, value: int) -> int:
        """Staff add a payment to the bill (unsuspend, add_payment: a type already there adds up,
        suspend again): OSPOS re-keys the bill; the new bill's sale_id."""
        cart = self.unsuspend(sale_id)
        payments = {k: Decimal(str(v)) for k, v in cart.payments.items()}
        payments[payment_type] = payments.get(payment_type, Decimal(0)) + Decimal(value) / 100
        again = Cart(cart.lines, {k: float(v) for k, v in payments.items()}, cart.comment, cart.table)
        return self.resuspend(again, cart.table or 1)

    # --- OSPOS's own screens -----------------------------------------------------------------------

    def bill(self, sale_id: int) -> Bill:
        """What the register shows for the bill (Sale_suspended::get_sale_items / get_sale_payments,
        then Sale_lib's arithmetic: discounted lines, taxes on top unless prices include them)."""
        lines = self._read(
            "SELECT sale_id, item_id, line, quantity_purchased, item_unit_price, discount_percent"
            " FROM ospos_sales_suspended_items WHERE sale_id = ?",
            (sale_id,),
        )
        included = self._read("""SELECT value FROM ospos_app_config WHERE "key" = 'tax_included'""")[0][0] == "1"
        total = Decimal(0)
        for _sale, item_id, line, quantity, price, discount in lines:
            line_total = Decimal(str(quantity)) * Decimal(str(price))
            line_total -= line_total * Decimal(str(discount)) / 100
            total += line_total
            if not included:
                for (percent,) in self._read(
                    "SELECT percent FROM ospos_sales_suspended_items_taxes WHERE sale_id = ? AND item_id = ? AND line = ?",
                    (sale_id, item_id, line),
                ):
                    total += line_total * Decimal(str(percent)) / 100
        payments = {
            kind: Decimal(str(amount))
            for kind, amount in self._read(
                "SELECT payment_type, payment_amount FROM ospos_sales_suspended_payments WHERE sale_id = ?", (sale_id,)
            )
        }
        due = total - sum(payments.values(), Decimal(0))
        return Bill(payments=payments, total=total, amount_due=Decimal(0) if round(due, 2) == 0 else due)

    def suspended_list(self) -> list[tuple[int, str]]:
        """Sales::suspended (Sale_suspended::get_all): sale_id and comment of every open bill."""
        return [(r[0], r[1]) for r in self._read("SELECT sale_id, comment FROM ospos_sales_suspended ORDER BY sale_id")]

    def empty_tables(self) -> dict[int, str]:
        """Dinner_table::get_empty_tables: the tables a till may seat a new bill at."""
        return dict(
            self._read("SELECT dinner_table_id, name FROM ospos_dinner_tables WHERE status = 0 AND deleted = 0")
        )

    def payments_summary(self, day: str) -> list[tuple[str, int, Decimal]]:
        """Reports > Summary > Payments (Summary_payments::getData): the day's completed sales'
        payments, by payment type, with OSPOS's folding of gift cards left aside."""
        return [
            (kind, count, Decimal(str(amount)))
            for kind, count, amount in self._read(
                "SELECT ospos_sales_payments.payment_type, count(*) AS count, SUM(payment_amount) AS payment_amount"
                " FROM ospos_sales_payments JOIN ospos_sales ON ospos_sales.sale_id = ospos_sales_payments.sale_id"
                " WHERE date(sale_time) BETWEEN ? AND ? GROUP BY payment_type",
                (day, day),
            )
        ]


@dataclass(frozen=True)
class Cart:
    """A till's cart (the PHP session): what unsuspending a bill loads."""

    lines: list[tuple[Any, ...]]
    payments: dict[str, float]
    comment: str
    table: int | None = None
    """The bill's table. OSPOS's cart does not take it along (it falls back to Delivery): staff
    pick it again from the dropdown before suspending the bill again."""
