"""A Floreant POS on PostgreSQL as the tests need one: the PostgreSQL twin of
:class:`tests.helpers.floreant.FloreantTill`. Its tables are the shipped demo DDL
(``mappings/floreant_pg.sql``, Floreant's Hibernate mappings on PostgreSQL) in a server database
named by a SQLAlchemy URL, attached by the bridge's own ``db attach`` for servers
(:func:`bridge_attach`); the till writes tickets as Floreant's Hibernate does (plain SQL on
TICKET, TICKET_ITEM and TRANSACTIONS through its own connections, a second program beside the
bridge, bumping MODIFIED_TIME, its optimistic-lock version, with Java's millisecond Dates in
UTC). :meth:`FloreantPgTill.ticket` and :meth:`FloreantPgTill.transactions` read what
Floreant's own screens read of a ticket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import URL, make_url, text

from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.mapping import Mapping as PosMapping
from epos_bridge.adapters.sqlmap.mapping import load
from epos_bridge.testing.contract_suite import StandardVenue
from tests.helpers.floreant import NO_OPEN_AT_TILL
from tests.helpers.server_till import AttachHook, ServerTill, attach_for, create_pos_database

__all__ = [
    "AttachHook",
    "FloreantPgTill",
    "Ticket",
    "Transaction",
    "bridge_attach",
    "create_floreant_pg_database",
    "floreant_pg",
    "floreant_pg_storage",
    "floreant_pg_time",
]


def floreant_pg() -> PosMapping:
    return load("floreant_pg")


def floreant_pg_time(moment: datetime | None = None) -> datetime:
    """A timestamp as Floreant's Hibernate writes it into PostgreSQL: a TIMESTAMP without time
    zone holding UTC, to the millisecond (a Java Date)."""
    utc = (moment or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def bridge_attach(url: str) -> None:
    """``epos-bridge db attach URL --mapping floreant_pg``, as an installer runs it."""
    attach_for(floreant_pg(), url)


def floreant_pg_storage(url: str | URL) -> SqlMapStorage:
    """The bridge's storage on that database, as the running bridge opens it."""
    return SqlMapStorage.open_server(make_url(url), floreant_pg())


def create_floreant_pg_database(url: str | URL, *, attach_hook: AttachHook | None = bridge_attach) -> None:
    """Floreant's tables in the empty database ``url`` names; then ``attach_hook`` (the bridge's
    ``db attach``), when given, with the URL."""
    create_pos_database(url, "floreant_pg.sql", attach_hook)


@dataclass(frozen=True)
class Ticket:
    """What Floreant's open-tickets list and settle screen show of a ticket (pounds, as stored)."""

    total: float
    paid_amount: float
    due_amount: float
    paid: bool
    settled: bool
    modified_time: datetime


@dataclass(frozen=True)
class Transaction:
    """One of the ticket's TRANSACTIONS rows, as the settle screen and the receipt list them."""

    transaction_type: str
    amount: float
    tender_amount: float
    additional_amount: float | None
    additional_amount_info: str | None
    card_type: str | None
    card_transaction_id: str | None
    captured: bool


class FloreantPgTill(ServerTill):
    """Acts as Floreant on PostgreSQL (and its installer, for the facts Floreant has no column for)."""

    def __init__(self, url: str | URL, *, attach_hook: AttachHook | None = bridge_attach) -> None:
        super().__init__(url, attach_hook=attach_hook)
        self.table_numbers: dict[str, int] = {}

    def _fact(self, kind: str, key: object, field: str, value: object) -> None:
        self._sql(
            "INSERT INTO EPOS_BRIDGE_FACTS (KIND, POS_KEY, FIELD, VALUE) VALUES (:kind, :key, :field, :value)"
            " ON CONFLICT (KIND, POS_KEY, FIELD) DO UPDATE SET VALUE = excluded.VALUE",
            {"kind": kind, "key": str(key), "field": field, "value": None if value is None else str(value)},
        )

    # --- the contract suite's Seeder ------------------------------------------------------------

    def seed(self, venue: StandardVenue) -> None:
        create_floreant_pg_database(self.url, attach_hook=self.attach_hook)
        lines = [*venue.address_lines[:2], None, None][:2]
        self._sql(
            "INSERT INTO RESTAURANT (ID, NAME, ADDRESS_LINE1, ADDRESS_LINE2, TICKET_FOOTER, CNAME)"
            " VALUES (1, :name, :line1, :line2, :footer, :currency)",
            {
                "name": venue.name,
                "line1": lines[0],
                "line2": lines[1],
                "footer": venue.footer_text,
                "currency": venue.currency,
            },
        )
        self._fact("venue", 1, "postcode", venue.postcode)
        self._fact("venue", 1, "vat_number", venue.vat_number)
        floors: dict[str, int] = {}
        for area in venue.areas:
            key = self._sql("INSERT INTO SHOP_FLOOR (NAME) VALUES (:name) RETURNING ID", {"name": area.name})
            assert key is not None
            floors[area.id] = key
            self._fact("area", key, "id", area.id)
            self._fact("area", key, "waiter_ids", json.dumps(list(area.waiter_ids)))
        for number, table in enumerate(venue.tables, start=1):
            key = self._sql(
                "INSERT INTO SHOP_TABLE (NUMBER, X, Y, SHOP_TABLE) VALUES (:number, 0, 0, :floor) RETURNING ID",
                {"number": number, "floor": floors[table.area_id]},
            )
            self.table_numbers[table.id] = number
            for field, value in (("id", table.id), ("name", table.name), ("max_covers", table.max_covers)):
                self._fact("table", key, field, value)
            self._fact("table", key, "waiter_ids", json.dumps(list(table.waiter_ids)))

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        now = floreant_pg_time()
        pounds = total_value / 100
        key = self._sql(
            "INSERT INTO TICKET (CREATE_DATE, ACTIVE_DATE, MODIFIED_TIME, PAID, VOIDED, SETTLED, SUB_TOTAL, TOTAL_PRICE,"
            " PAID_AMOUNT, DUE_AMOUNT, TABLE_NUMBER, TICKET_TYPE, OWNER_ID) VALUES (:now, :now, :now, false, false,"
            " false, :pounds, :pounds, 0, :pounds, :table, 'DINE_IN', NULL) RETURNING ID",
            {"now": now, "pounds": pounds, "table": self.table_numbers[table_id]},
        )
        self.add_item(str(key), "Meal", 1, total_value, change_total=False)
        return str(key)

    def add_item(self, order_id: str, name: str, count: int, unit_value: int, *, change_total: bool = True) -> None:
        """A waiter adds a line; Floreant recomputes the ticket's totals in the same transaction."""
        with self._engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO TICKET_ITEM (ITEM_COUNT, ITEM_QUANTITY, ITEM_NAME, ITEM_PRICE, TOTAL_PRICE, TICKET_ID,"
                    " ITEM_ORDER) VALUES (:count, :count, :name, :price, :total, :ticket,"
                    " (SELECT COUNT(*) FROM TICKET_ITEM WHERE TICKET_ID = :ticket))"
                ),
                {
                    "count": count,
                    "name": name,
                    "price": unit_value / 100,
                    "total": count * unit_value / 100,
                    "ticket": int(order_id),
                },
            )
            if change_total:
                conn.execute(
                    text(
                        "UPDATE TICKET SET TOTAL_PRICE = TOTAL_PRICE + :added, SUB_TOTAL = SUB_TOTAL + :added,"
                        " DUE_AMOUNT = DUE_AMOUNT + :added, MODIFIED_TIME = :now WHERE ID = :ticket"
                    ),
                    {"added": count * unit_value / 100, "now": floreant_pg_time(), "ticket": int(order_id)},
                )

    def settle_in_cash(self, order_id: str, value: int) -> None:
        """Staff take cash at the till: a CASH transaction and the ticket's paid/due columns."""
        now = floreant_pg_time()
        args = {"now": now, "pounds": value / 100, "ticket": int(order_id)}
        with self._engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO TRANSACTIONS (TRANSACTION_TYPE, TRANSACTION_TIME, MODIFIED_TIME, AMOUNT, TENDER_AMOUNT,"
                    " CAPTURED, TICKET_ID, TRAN_ORDER) VALUES ('CASH', :now, :now, :pounds, :pounds, true, :ticket,"
                    " (SELECT COUNT(*) FROM TRANSACTIONS WHERE TICKET_ID = :ticket))"
                ),
                args,
            )
            conn.execute(
                text(
                    "UPDATE TICKET SET PAID_AMOUNT = PAID_AMOUNT + :pounds, DUE_AMOUNT = DUE_AMOUNT - :pounds,"
                    " MODIFIED_TIME = :now WHERE ID = :ticket"
                ),
                args,
            )

    def set_order_status(self, order_id: str, status: str) -> None:
        args = {"now": floreant_pg_time(), "ticket": int(order_id), "status": status}
        if status == "Finalized":
            self._sql(
                "UPDATE TICKET SET SETTLED = true, CLOSING_DATE = :now, MODIFIED_TIME = :now WHERE ID = :ticket", args
            )
        elif status == "Canceled":
            self._sql(
                "UPDATE TICKET SET VOIDED = true, SETTLED = true, CLOSING_DATE = :now, MODIFIED_TIME = :now"
                " WHERE ID = :ticket",
                args,
            )
        else:
            self._sql("UPDATE TICKET SET STATUS = :status, MODIFIED_TIME = :now WHERE ID = :ticket", args)

    def open_order_at_till(self, order_id: str, till: str) -> None:
        pytest.skip(NO_OPEN_AT_TILL)  # as on SQLite: Floreant's tables have no such column

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._sql(
            "UPDATE TICKET SET MODIFIED_TIME = :time WHERE ID = :ticket",
            {"time": floreant_pg_time(moment), "ticket": int(order_id)},
        )

    def remove_order(self, order_id: str) -> None:
        """As Floreant purges a ticket: its transactions, modifiers, lines, then the ticket (the
        order PostgreSQL's foreign keys hold it to), in one transaction."""
        with self._engine.begin() as conn:
            for statement in (
                "DELETE FROM TRANSACTIONS WHERE TICKET_ID = :ticket",
                "DELETE FROM TICKET_ITEM_MODIFIER WHERE TICKET_ITEM_ID IN"
                " (SELECT ID FROM TICKET_ITEM WHERE TICKET_ID = :ticket)",
                "DELETE FROM TICKET_ITEM WHERE TICKET_ID = :ticket",
                "DELETE FROM TICKET WHERE ID = :ticket",
            ):
                conn.execute(text(statement), {"ticket": int(order_id)})

    # --- Floreant's own screens ------------------------------------------------------------------

    def ticket(self, order_id: str) -> Ticket:
        """The ticket's row as the open-tickets list reads it (TOTAL_PRICE, PAID_AMOUNT, DUE_AMOUNT)."""
        found = self._read(
            "SELECT TOTAL_PRICE, PAID_AMOUNT, DUE_AMOUNT, PAID, SETTLED, MODIFIED_TIME FROM TICKET WHERE ID = :ticket",
            {"ticket": int(order_id)},
        )
        total, paid_amount, due_amount, paid, settled, modified = found[0]
        return Ticket(float(total), float(paid_amount), float(due_amount), bool(paid), bool(settled), modified)

    def transactions(self, order_id: str) -> list[Transaction]:
        """The ticket's transactions in Floreant's own order (its <list> index, TRAN_ORDER)."""
        return [
            Transaction(str(kind), float(amount), float(tender), extra, info, card, card_id, bool(captured))
            for kind, amount, tender, extra, info, card, card_id, captured in self._read(
                "SELECT TRANSACTION_TYPE, AMOUNT, TENDER_AMOUNT, ADDITIONAL_AMOUNT, ADDITIONAL_AMOUNT_INFO, CARD_TYPE,"
                " CARD_TRANSACTION_ID, CAPTURED FROM TRANSACTIONS WHERE TICKET_ID = :ticket ORDER BY TRAN_ORDER, ID",
                {"ticket": int(order_id)},
            )
        ]
