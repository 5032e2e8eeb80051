"""An Open Source Point of Sale on MariaDB/MySQL as the tests need one: the MySQL twin of
:class:`tests.helpers.ospos.OsposTill`. Its tables are OSPOS's own MySQL DDL
(``mappings/ospos_mysql.sql``) in a server database named by a SQLAlchemy URL; the till works as
OSPOS's PHP does (Sale_suspended::save, Sales::unsuspend, Sale::save, as plain SQL through its
own SQLAlchemy Core connections, a second program beside the bridge), and the queries OSPOS's
own screens run are its MySQL ones (opensourcepos/opensourcepos at 05ae4c0c): the bill a till
unsuspends and its amount due (Sale_lib), the free tables a till offers
(Dinner_table::get_empty_tables) and the day's payments (Sale::get_payments_summary,
reports/Summary_payments).

The bridge's own tables come from the bridge's own ``db attach`` for servers
(:func:`bridge_attach`, the default ``attach_hook``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import URL, make_url, text

from epos_bridge.adapters.sqlmap import server_admin
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, load
from epos_bridge.adapters.sqlmap.mapping import Mapping as PosMapping
from epos_bridge.testing.contract_suite import StandardVenue
from tests.helpers.ospos import CLOSED, MENU, Bill, ospos_time
from tests.helpers.server_till import AttachHook, ServerTill, attach_for, engine_for, new_id, url_text

__all__ = [
    "CLOSED",
    "MENU",
    "AttachHook",
    "Bill",
    "Cart",
    "OsposMysqlTill",
    "create_ospos_mysql_database",
    "ospos_mysql",
    "ospos_mysql_statements",
]


def ospos_mysql() -> PosMapping:
    return load("ospos_mysql")


def bridge_attach(url: str) -> None:
    """``epos-bridge db attach URL --mapping ospos_mysql``, as an installer runs it."""
    attach_for(ospos_mysql(), url)


def ospos_mysql_storage(url: str | URL) -> SqlMapStorage:
    """The bridge's storage on that database, as the running bridge opens it."""
    return SqlMapStorage.open_server(make_url(url), ospos_mysql())


def ospos_mysql_statements() -> list[str]:
    """``ospos_mysql.sql`` as its statements, split at each ``;`` that ends a line."""
    return server_admin.schema_statements((SHIPPED / "ospos_mysql.sql").read_text(encoding="utf-8"))


def create_ospos_mysql_database(
    url: str | URL, *, menu: bool = True, attach_hook: AttachHook | None = bridge_attach
) -> None:
    """OSPOS's tables in the empty database ``url`` names, with its menu; then ``attach_hook``
    (the bridge's ``db attach``), when given, with the URL."""
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            for statement in ospos_mysql_statements():
                conn.execute(text(statement))
            if menu:
                for name, plu, value in MENU:
                    conn.execute(
                        text(
                            "INSERT INTO ospos_items (name, category, item_number, description, cost_price,"
                            " unit_price, allow_alt_description, is_serialized, custom1, custom2, custom3, custom4,"
                            " custom5, custom6, custom7, custom8, custom9, custom10)"
                            " VALUES (:name, 'Menu', :plu, '', 0, :price, 1, 0, '', '', '', '', '', '', '', '', '', '')"
                        ),
                        {"name": name, "plu": plu, "price": Decimal(value) / 100},
                    )
    finally:
        engine.dispose()
    if attach_hook is not None:
        attach_hook(url_text(url))


@dataclass(frozen=True)
class Cart:
    """A till's cart (the PHP session): what unsuspending a bill loads. Amounts are the DECIMAL
    values MySQL returns (ospos.py's cart holds SQLite's floats)."""

    lines: list[tuple[Any, ...]]
    payments: dict[str, Decimal]
    comment: str
    table: int | None = None
    """The bill's table. OSPOS's cart does not take it along (it falls back to Delivery): staff
    pick it again from the dropdown before suspending the bill again."""


class OsposMysqlTill(ServerTill):
    """Acts as OSPOS on MariaDB/MySQL (and its installer, for the facts OSPOS has no column for)."""

    def __init__(self, url: str | URL, *, attach_hook: AttachHook | None = bridge_attach) -> None:
        super().__init__(url, attach_hook=attach_hook)
        self.table_keys: dict[str, int] = {}

    def _fact(self, kind: str, key: object, field: str, value: object) -> None:
        self._sql(
            "INSERT INTO EPOS_BRIDGE_FACTS (KIND, POS_KEY, FIELD, VALUE) VALUES (:kind, :key, :field, :value)"
            " ON DUPLICATE KEY UPDATE VALUE = VALUES(VALUE)",
            {"kind": kind, "key": str(key), "field": field, "value": None if value is None else str(value)},
        )

    def _config(self, key: str, value: str) -> None:
        self._sql(
            "INSERT INTO ospos_app_config (`key`, value) VALUES (:key, :value)"
            " ON DUPLICATE KEY UPDATE value = VALUES(value)",
            {"key": key, "value": value},
        )

    # --- the contract suite's Seeder ------------------------------------------------------------

    def seed(self, venue: StandardVenue) -> None:
        create_ospos_mysql_database(self.url, attach_hook=self.attach_hook)
        for setting, text_value in (("company", venue.name), ("address", "\n".join(venue.address_lines)),
                                    ("return_policy", venue.footer_text), ("phone", "")):  # fmt: skip
            self._config(setting, text_value)
        self._fact("venue", 1, "postcode", venue.postcode)
        self._fact("venue", 1, "vat_number", venue.vat_number)
        for number, area in enumerate(venue.areas, start=1):
            self._fact("area", number, "id", area.id)
            self._fact("area", number, "name", area.name)
            self._fact("area", number, "waiter_ids", json.dumps(list(area.waiter_ids)))
        for table in venue.tables:
            key = self._sql(
                "INSERT INTO ospos_dinner_tables (name, status, deleted) VALUES (:name, 0, 0)", {"name": table.name}
            )
            assert key is not None
            self.table_keys[table.id] = key
            facts: tuple[tuple[str, object], ...] = (
                ("id", table.id),
                ("max_covers", table.max_covers),
                ("area_id", table.area_id),
            )
            for field, value in facts:
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
        self._sql(
            "UPDATE ospos_sales_suspended SET sale_time = :time WHERE sale_id = :sale_id",
            {"time": ospos_time(), "sale_id": int(order_id)},
        )
        return None

    def open_order_at_till(self, order_id: str, till: str) -> None:
        pytest.skip(
            "OSPOS records no bill open at a till: a till that opens a bill deletes it from the database"
            " (tested as remove_order)"
        )

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._sql(
            "UPDATE ospos_sales_suspended SET sale_time = :time WHERE sale_id = :sale_id",
            {"time": ospos_time(moment), "sale_id": int(order_id)},
        )

    def remove_order(self, order_id: str) -> None:
        """A till unsuspends the bill (into its cart) and never completes it."""
        self.unsuspend(int(order_id))

    # --- OSPOS's own writes ------------------------------------------------------------------------

    def suspend(self, table: int, lines: list[tuple[str, int, int]], payments: dict[str, int] | None = None) -> int:
        """Sale_suspended::save: the bill, its payments (by type), its lines, their item taxes,
        and the table occupied (unless it is Delivery or Take Away), in one transaction."""
        with self._engine.begin() as conn:
            sale_id = new_id(
                conn,
                "INSERT INTO ospos_sales_suspended (sale_time, customer_id, employee_id, comment, invoice_number,"
                " dinner_table_id) VALUES (:time, NULL, 1, '', NULL, :table)",
                {"time": ospos_time(), "table": table},
            )
            for payment_type, value in (payments or {}).items():
                conn.execute(
                    text(
                        "INSERT INTO ospos_sales_suspended_payments (sale_id, payment_type, payment_amount)"
                        " VALUES (:sale_id, :payment_type, :amount)"
                    ),
                    {"sale_id": sale_id, "payment_type": payment_type, "amount": Decimal(value) / 100},
                )
            for line, (plu, quantity, value) in enumerate(lines, start=1):
                args = {"sale_id": sale_id, "line": line, "quantity": quantity, "price": Decimal(value) / 100}
                conn.execute(
                    text(
                        "INSERT INTO ospos_sales_suspended_items (sale_id, item_id, description, serialnumber, line,"
                        " quantity_purchased, item_cost_price, item_unit_price, discount_percent, item_location)"
                        " SELECT :sale_id, item_id, '', '', :line, :quantity, cost_price, :price, 0, 1"
                        " FROM ospos_items WHERE item_number = :plu"
                    ),
                    {**args, "plu": plu},
                )
                conn.execute(
                    text(
                        "INSERT INTO ospos_sales_suspended_items_taxes (sale_id, item_id, line, name, percent)"
                        " SELECT :sale_id, t.item_id, :line, t.name, t.percent FROM ospos_items_taxes t"
                        " JOIN ospos_items i ON i.item_id = t.item_id WHERE i.item_number = :plu"
                    ),
                    {"sale_id": sale_id, "line": line, "plu": plu},
                )
            conn.execute(
                text("UPDATE ospos_dinner_tables SET status = :status WHERE dinner_table_id = :table"),
                {"status": int(table > 2), "table": table},
            )
        assert sale_id is not None
        return sale_id

    def unsuspend(self, sale_id: int) -> Cart:
        """Sales::unsuspend: the bill into a till's cart (Sale_lib::copy_entire_suspended_sale),
        then Sale_suspended::delete (the table freed, every row of the bill deleted): two steps,
        as OSPOS takes them."""
        key = {"sale_id": sale_id}
        cart = Cart(
            lines=self._read(
                "SELECT item_id, line, quantity_purchased, item_unit_price, discount_percent, description"
                " FROM ospos_sales_suspended_items WHERE sale_id = :sale_id",
                key,
            ),
            payments={
                str(kind): Decimal(amount)
                for kind, amount in self._read(
                    "SELECT payment_type, payment_amount FROM ospos_sales_suspended_payments WHERE sale_id = :sale_id",
                    key,
                )
            },
            comment=self._read("SELECT comment FROM ospos_sales_suspended WHERE sale_id = :sale_id", key)[0][0],
            table=self._read("SELECT dinner_table_id FROM ospos_sales_suspended WHERE sale_id = :sale_id", key)[0][0],
        )
        with self._engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE ospos_dinner_tables SET status = 0 WHERE dinner_table_id ="
                    " (SELECT dinner_table_id FROM ospos_sales_suspended WHERE sale_id = :sale_id)"
                ),
                key,
            )
            for table in ("ospos_sales_suspended_payments", "ospos_sales_suspended_items_taxes",
                          "ospos_sales_suspended_items", "ospos_sales_suspended"):  # fmt: skip
                conn.execute(text(f"DELETE FROM {table} WHERE sale_id = :sale_id"), key)
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
        with self._engine.begin() as conn:
            sale_id = new_id(
                conn,
                f"INSERT INTO {sales} (sale_time, customer_id, employee_id, comment, invoice_number,"
                " dinner_table_id) VALUES (:time, NULL, 1, :comment, NULL, :table)",
                {"time": ospos_time(), "comment": cart.comment, "table": table},
            )
            for payment_type, amount in cart.payments.items():
                conn.execute(
                    text(
                        f"INSERT INTO {sales}_payments (sale_id, payment_type, payment_amount)"
                        " VALUES (:sale_id, :payment_type, :amount)"
                    ),
                    {"sale_id": sale_id, "payment_type": payment_type, "amount": amount},
                )
            for item_id, line, quantity, price, discount, description in cart.lines:
                conn.execute(
                    text(
                        f"INSERT INTO {sales}_items (sale_id, item_id, description, serialnumber, line,"
                        " quantity_purchased, item_cost_price, item_unit_price, discount_percent, item_location)"
                        " VALUES (:sale_id, :item_id, :description, '', :line, :quantity, 0, :price, :discount, 1)"
                    ),
                    {
                        "sale_id": sale_id,
                        "item_id": item_id,
                        "description": description,
                        "line": line,
                        "quantity": quantity,
                        "price": price,
                        "discount": discount,
                    },
                )
                conn.execute(
                    text(
                        f"INSERT INTO {sales}_items_taxes (sale_id, item_id, line, name, percent)"
                        " SELECT :sale_id, item_id, :line, name, percent FROM ospos_items_taxes WHERE item_id = :item_id"
                    ),
                    {"sale_id": sale_id, "line": line, "item_id": item_id},
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
        payments = dict(cart.payments)
        payments[payment_type] = payments.get(payment_type, Decimal(0)) + Decimal(value) / 100
        return self.resuspend(Cart(cart.lines, payments, cart.comment, cart.table), cart.table or 1)

    # --- OSPOS's own screens -----------------------------------------------------------------------

    def bill(self, sale_id: int) -> Bill:
        """What the register shows for the bill (Sale_suspended::get_sale_items / get_sale_payments,
        then Sale_lib's arithmetic: discounted lines, taxes on top unless prices include them)."""
        key = {"sale_id": sale_id}
        lines = self._read(
            "SELECT sale_id, item_id, line, quantity_purchased, item_unit_price, discount_percent"
            " FROM ospos_sales_suspended_items WHERE sale_id = :sale_id",
            key,
        )
        included = self._read("SELECT value FROM ospos_app_config WHERE `key` = 'tax_included'")[0][0] == "1"
        total = Decimal(0)
        for _sale, item_id, line, quantity, price, discount in lines:
            line_total = Decimal(quantity) * Decimal(price)
            line_total -= line_total * Decimal(discount) / 100
            total += line_total
            if not included:
                for (percent,) in self._read(
                    "SELECT percent FROM ospos_sales_suspended_items_taxes"
                    " WHERE sale_id = :sale_id AND item_id = :item_id AND line = :line",
                    {"sale_id": sale_id, "item_id": item_id, "line": line},
                ):
                    total += line_total * Decimal(percent) / 100
        payments = {
            str(kind): Decimal(amount)
            for kind, amount in self._read(
                "SELECT payment_type, payment_amount FROM ospos_sales_suspended_payments WHERE sale_id = :sale_id", key
            )
        }
        due = total - sum(payments.values(), Decimal(0))
        return Bill(payments=payments, total=total, amount_due=Decimal(0) if round(due, 2) == 0 else due)

    def suspended_list(self) -> list[tuple[int, str]]:
        """Sales::suspended (Sale_suspended::get_all): sale_id and comment of every open bill."""
        return [(r[0], r[1]) for r in self._read("SELECT sale_id, comment FROM ospos_sales_suspended ORDER BY sale_id")]

    def empty_tables(self) -> dict[int, str]:
        """Dinner_table::get_empty_tables: the tables a till may seat a new bill at."""
        return {
            int(key): str(name)
            for key, name in self._read(
                "SELECT dinner_table_id, name FROM ospos_dinner_tables WHERE status = 0 AND deleted = 0"
            )
        }

    def payments_summary(self, day: str) -> list[tuple[str, int, Decimal]]:
        """Reports > Summary > Payments (Summary_payments::getData): the day's completed sales'
        payments, by payment type (grouped by the column's collation, as MySQL groups OSPOS's),
        with OSPOS's folding of gift cards left aside."""
        return [
            (str(kind), int(count), Decimal(amount))
            for kind, count, amount in self._read(
                "SELECT ospos_sales_payments.payment_type, count(*) AS count, SUM(payment_amount) AS payment_amount"
                " FROM ospos_sales_payments JOIN ospos_sales ON ospos_sales.sale_id = ospos_sales_payments.sale_id"
                " WHERE DATE(sale_time) BETWEEN :day AND :day GROUP BY payment_type",
                {"day": day},
            )
        ]
