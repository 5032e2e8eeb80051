"""The smallest till on a database server that the mapped-SQL adapter can serve: bills and their
payment rows, as a MariaDB POS keeps them, with a mapping that reads and pays them. For the
engine's own tests (transactions, deadlines, cut connections), apart from any real POS's schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from epos_bridge.adapters.sqlmap import server_setup
from epos_bridge.adapters.sqlmap.adapter import SqlMapStorage
from epos_bridge.adapters.sqlmap.mapping import Mapping, load
from epos_bridge.adapters.sqlmap.server import run_setup
from epos_bridge.services.pos_calls import PosCalls

SCHEMA = (
    "CREATE TABLE bills (id BIGINT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(20) NOT NULL, total BIGINT NOT NULL,"
    " updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB",
    "CREATE TABLE bill_payments (id BIGINT AUTO_INCREMENT PRIMARY KEY, bill_id BIGINT NOT NULL,"
    " amount BIGINT NOT NULL, INDEX (bill_id)) ENGINE=InnoDB",
)

MAPPING = '''
name = "mini_mysql"
engine = "mysql"
description = "a minimal till on MariaDB (bills, bill_payments)"
currency = "GBP"
timezone = "UTC"

[orders]
search = """
SELECT b.id AS id, b.status AS status, b.total AS total_amount, 'DineIn' AS order_type,
  DATE_FORMAT(b.updated_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS updated_at
FROM bills b ORDER BY b.id
"""
get = """
SELECT b.id AS id, b.status AS status, b.total AS total_amount, 'DineIn' AS order_type,
  DATE_FORMAT(b.updated_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS updated_at
FROM bills b WHERE b.id = :order_id
"""
payments = """
SELECT p.amount AS paid_amount, e.TIPS_AMOUNT AS tips_amount, e.PAYMENT_INTENT_ID AS payment_intent_id,
  COALESCE(e.STATUS, 'Recorded') AS status
FROM bill_payments p LEFT JOIN EPOS_BRIDGE_PAYMENTS e ON e.POS_PAYMENT_ID = p.id
WHERE p.bill_id = :order_id ORDER BY p.id
"""

[payments]
shown_by = ["bill_payments"]
insert = "INSERT INTO bill_payments (bill_id, amount) VALUES (:order_id, :paid_amount)"

[[changes]]
table = "bill_payments"
order_key = "R.bill_id"
'''


def mini_mapping(folder: Path) -> Mapping:
    path = folder / "mini_mysql.toml"
    path.write_text(MAPPING, encoding="utf-8")
    return load(str(path))


class MiniTill:
    """The POS: its own connection to its own tables, as a second program on the server."""

    def __init__(self, url: str, mapping: Mapping) -> None:
        self.url = url
        self.mapping = mapping
        self.engine = sa.create_engine(url, pool_size=2)

    def create(self) -> None:
        """The till's tables, then the bridge's (``db attach``)."""
        with self.engine.begin() as conn:
            for statement in SCHEMA:
                conn.execute(sa.text(statement))
        run_setup(make_url(self.url), lambda db: server_setup.attach(db, self.mapping))

    def add_bill(self, total: int) -> str:
        with self.engine.begin() as conn:
            return str(
                conn.execute(sa.text("INSERT INTO bills (status, total) VALUES ('New', :t)"), {"t": total}).lastrowid
            )

    def rows(self, sql: str, **values: object) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), values)]

    def recorded(self, intent: str) -> tuple[int, int]:
        """(bridge ledger rows, POS payment rows) of one paymentIntentId: 1/1 or 0/0 when they agree."""
        ledger = self.rows(
            "SELECT POS_PAYMENT_ID FROM EPOS_BRIDGE_PAYMENTS WHERE PAYMENT_INTENT_ID = :i COLLATE utf8mb4_nopad_bin",
            i=intent,
        )
        pos = [
            r for (payment_id,) in ledger for r in self.rows("SELECT id FROM bill_payments WHERE id = :p", p=payment_id)
        ]
        return len(ledger), len(pos)

    def close(self) -> None:
        self.engine.dispose()


def mini_pos(url: str, mapping: Mapping) -> PosCalls:
    return PosCalls(SqlMapStorage.open_server(make_url(url), mapping))
