"""A write key may be several statements, run in order in the call's one transaction, each able
to use the row ids of the ones before (``:row_1`` …): CreateOrder writes the bill and the POS's
ticket-to-table row as the POS does, or nothing at all."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, Mapping, MappingError, load
from epos_bridge.testing.contract_suite import STANDARD_VENUE, failed, ok, order_params
from tests.helpers.builders import read_only
from tests.helpers.contract import rpc_over
from tests.helpers.floreant import FloreantTill
from tests.helpers.pos import sqlmap_pos

SEAT = """
INSERT INTO TICKET_TABLE_NUM (TICKET_ID, TABLE_ID)
SELECT :row_1, s.ID FROM SHOP_TABLE s WHERE COALESCE(
  (SELECT VALUE FROM EPOS_BRIDGE_FACTS WHERE KIND = 'table' AND POS_KEY = CAST(s.ID AS TEXT) AND FIELD = 'id'),
  CAST(s.NUMBER AS TEXT)) = :table_id
"""


def with_seat(tmp_path: Path, second: str) -> Mapping:
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    orders = text.index("\n[orders]\n")
    start = text.index('\ncreate = """\n', orders) + 1
    end = text.index('"""\n', start + len('create = """\n')) + len('"""')
    create = text[start + len("create = ") : end]
    text = text[:start] + f"create = [{create}, '''{second}''']" + text[end:]
    (tmp_path / "seats.toml").write_text(text, encoding="utf-8")
    return load(str(tmp_path / "seats.toml"))


@pytest.fixture
def till(tmp_path: Path) -> FloreantTill:
    till = FloreantTill(tmp_path / "floreant.db")
    till.seed(STANDARD_VENUE)
    with closing(sqlite3.connect(till.path)) as conn, conn:
        conn.execute("CREATE TABLE TICKET_TABLE_NUM (TICKET_ID INTEGER NOT NULL, TABLE_ID INTEGER NOT NULL)")
    return till


async def test_create_order_writes_the_bill_and_its_table_row_in_one_transaction(
    till: FloreantTill, tmp_path: Path
) -> None:
    mapping = with_seat(tmp_path, SEAT)
    assert len(mapping.parts("orders.create")) == 2
    setup.attach(till.path, mapping)
    adapter = sqlmap_pos(till.path, mapping)
    try:
        created = ok(await rpc_over(adapter)("CreateOrderV1", order_params("dojo-1", table_id="T12")))
    finally:
        await adapter.close()
    table = read_only(till.path, "SELECT ID FROM SHOP_TABLE WHERE NUMBER = ?", [till.table_numbers["T12"]])[0][0]
    assert read_only(till.path, "SELECT TICKET_ID, TABLE_ID FROM TICKET_TABLE_NUM") == [(int(created["id"]), table)]


async def test_a_failing_later_statement_stores_nothing(till: FloreantTill, tmp_path: Path) -> None:
    mapping = with_seat(tmp_path, "INSERT INTO TICKET_TABLE_NUM (TICKET_ID, TABLE_ID) VALUES (:row_1, NULL)")
    setup.attach(till.path, mapping)
    adapter = sqlmap_pos(till.path, mapping)
    try:
        rpc = rpc_over(adapter)
        failed(await rpc("CreateOrderV1", order_params("dojo-1")), "UnexpectedError")  # NOT NULL: the POS refused
        assert ok(await rpc("SearchOrdersV1", {}))["data"] == []
    finally:
        await adapter.close()
    assert read_only(till.path, "SELECT COUNT(*) FROM TICKET") == [(0,)]


def test_a_statement_may_use_only_the_row_ids_before_it(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"orders.create statement 2 uses :row_2"):
        with_seat(tmp_path, "INSERT INTO TICKET_TABLE_NUM (TICKET_ID, TABLE_ID) VALUES (:row_2, 1)")


async def test_a_new_orders_tax_line_and_discount_reach_the_pos_with_their_names_and_rates(
    till: FloreantTill, tmp_path: Path
) -> None:
    """A POS that keeps a tax's name and rate (and a discount's) in its own columns is given them."""
    with closing(sqlite3.connect(till.path)) as conn, conn:
        conn.execute("CREATE TABLE TICKET_TAX (TICKET_ID INTEGER, NAME TEXT, TAX_ID TEXT, RATE INTEGER, KIND TEXT)")
    keep = (
        "INSERT INTO TICKET_TAX (TICKET_ID, NAME, TAX_ID, RATE, KIND)"
        " SELECT :row_1, :tax_name, :tax_id, :tax_percentage, 'tax' WHERE :tax_name IS NOT NULL"
        " UNION ALL SELECT :row_1, :discount_name, :discount_code, :discount_percentage, 'discount'"
        " WHERE :discount_name IS NOT NULL"
    )
    mapping = with_seat(tmp_path, keep)
    setup.attach(till.path, mapping)
    adapter = sqlmap_pos(till.path, mapping)
    tax = {"name": "VAT", "id": "vat-20", "amountTotal": {"value": 167, "currencyCode": "GBP"}, "amountPercentage": 20}
    discount = {"name": "Happy hour", "code": "HH", "amountTotal": {"value": 100, "currencyCode": "GBP"},
                "amountPercentage": 10}  # fmt: skip
    try:
        created = ok(
            await rpc_over(adapter)("CreateOrderV1", order_params("dojo-1", taxLines=[tax], discounts=[discount]))
        )
    finally:
        await adapter.close()
    assert sorted(read_only(till.path, "SELECT TICKET_ID, NAME, TAX_ID, RATE, KIND FROM TICKET_TAX")) == [
        (int(created["id"]), "Happy hour", "HH", 10, "discount"),
        (int(created["id"]), "VAT", "vat-20", 20, "tax"),
    ]
