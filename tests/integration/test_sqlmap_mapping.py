"""A mapping file is checked twice: its keys against the schema (pydantic), naming the key, and
every statement prepared against the POS database, naming the capability, the statement and what
SQLite could not find. And ``db attach`` / ``detach`` change the POS's database only as they say."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from epos_bridge.adapters.registry import BUILT_IN_SQLMAP
from epos_bridge.adapters.sqlmap import bridge, setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, MappingError, capabilities, load
from epos_bridge.ports import AdapterInitError
from tests.helpers.child import db_cli
from tests.helpers.floreant import create_floreant_database

FLOREANT = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")


def mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    return path


def floreant_tables(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript((SHIPPED / "floreant.sql").read_text(encoding="utf-8"))


def schema_objects(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())


# --- the file against the schema ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (("[orders]", "[orders]\ncolour = 'red'"), "unknown key orders.colour"),
        (('currency = "GBP"', 'currency = "pounds"'), "currency"),
        (('name = "floreant"\n', ""), "missing key name"),
        (('table = "TICKET_ITEM"\n', 'table = "TICKET ITEM; DROP"\n'), "changes.1.table"),
        (('WHERE ID = :order_id\n"""\n\ncreate =', 'WHERE ID = :ticket\n"""\n\ncreate ='), ":ticket"),
    ],
    ids=["unknown-key", "bad-currency", "missing-name", "bad-table-name", "unknown-parameter"],
)
def test_a_mapping_that_does_not_fit_the_schema_is_refused_naming_the_key(
    tmp_path: Path, change: tuple[str, str], names: str
) -> None:
    old, new = change
    assert old in FLOREANT
    with pytest.raises(MappingError) as refused:
        load(str(mapping_file(tmp_path, FLOREANT.replace(old, new, 1))))
    assert names in str(refused.value)


def test_a_name_that_is_neither_a_file_nor_shipped_says_what_is_shipped() -> None:
    with pytest.raises(MappingError, match="no mapping named 'aloha'; shipped: floreant"):
        load("aloha")
    with pytest.raises(ValueError, match="does not exist"):
        BUILT_IN_SQLMAP.with_mapping("/no/such/mapping.toml")


# --- every statement against the database -------------------------------------------------------


async def test_a_typo_in_a_column_names_the_capability_the_statement_and_the_column(tmp_path: Path) -> None:
    typo = FLOREANT.replace("CAST(ROUND(tr.AMOUNT * 100) AS INTEGER) AS paid_amount", "tr.AMOUNTT AS paid_amount")
    path = tmp_path / "pos.db"
    floreant_tables(path)
    mapping = load(str(mapping_file(tmp_path, typo)))

    with pytest.raises(AdapterInitError) as refused:
        setup.attach(path, mapping)
    words = str(refused.value)
    assert "orders.payments" in words and "RecordOrderPaymentById" in words and "no such column: tr.AMOUNTT" in words
    assert ("table", "EPOS_BRIDGE_PAYMENTS") not in schema_objects(path), "a refused attach changes nothing"

    # Attached with the right mapping, the typo is still caught at start-up and by Settings' Test.
    setup.attach(path, load("floreant"))
    problem = await BUILT_IN_SQLMAP.with_mapping(str(mapping_file(tmp_path, typo))).problem(path)
    assert problem is not None
    assert "orders.payments" in problem and "RecordOrderPaymentById" in problem and "tr.AMOUNTT" in problem
    assert await BUILT_IN_SQLMAP.with_mapping("floreant").problem(path) is None


async def test_a_missing_table_and_a_missing_alias_are_named(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    create_floreant_database(path)
    no_table = FLOREANT.replace("FROM SHOP_FLOOR f", "FROM SHOP_FLOORS f")
    no_alias = FLOREANT.replace("i.ITEM_NAME AS name,", "i.ITEM_NAME AS item_name,")
    table_problem = await BUILT_IN_SQLMAP.with_mapping(str(mapping_file(tmp_path, no_table))).problem(path)
    alias_problem = await BUILT_IN_SQLMAP.with_mapping(str(mapping_file(tmp_path, no_alias))).problem(path)
    assert table_problem is not None and "floor.areas (for ListAreas)" in table_problem
    assert "no such table: SHOP_FLOORS" in table_problem
    assert alias_problem is not None and "orders.items" in alias_problem and "no column named name" in alias_problem


async def test_a_database_not_yet_attached_says_how_to_attach_it(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    floreant_tables(path)
    problem = await BUILT_IN_SQLMAP.with_mapping("floreant").problem(path)
    assert problem is not None and f"epos-bridge db attach {path} --mapping floreant" in problem


def test_capabilities_follow_the_statements_present(tmp_path: Path) -> None:
    without_cancel = FLOREANT.replace("\ncancel = ", "\n# cancel = ", 1)
    cut = without_cancel.index("# cancel = ")
    end = without_cancel.index('"""', without_cancel.index('"""', cut) + 3) + 3
    mapping = load(str(mapping_file(tmp_path, without_cancel[:cut] + without_cancel[end:])))
    assert "CancelOrderById" not in capabilities(mapping)
    assert "CancelOrderById" in capabilities(load("floreant"))
    assert "CreateParty" not in capabilities(load("floreant"))


# --- db attach / detach / init ------------------------------------------------------------------


def test_attach_dry_run_prints_the_sql_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    floreant_tables(path)
    before = schema_objects(path)
    result = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE EPOS_BRIDGE_PAYMENTS" in result.stdout
    assert "CREATE TRIGGER EPOS_BRIDGE_TRANSACTIONS_INSERT AFTER INSERT ON TRANSACTIONS" in result.stdout
    assert "CREATE VIEW DOJO_TICKET_LOCKS" in result.stdout
    assert schema_objects(path) == before


def test_attach_then_detach_leaves_the_pos_schema_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    floreant_tables(path)
    before = schema_objects(path)
    attached = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant")
    assert attached.returncode == 0, attached.stderr
    added = schema_objects(path) - before
    assert {("table", name) for name in bridge.TABLE_NAMES} <= added
    assert ("view", "DOJO_TICKET_LOCKS") in added
    assert len([n for kind, n in added if kind == "trigger"]) == 3 * len(load("floreant").changes) == 18
    again = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant")
    assert again.returncode == 0 and "already attached" in again.stdout and "nothing to change" in again.stdout
    assert schema_objects(path) - before == added
    dry = db_cli(tmp_path, "detach", str(path), "--dry-run")
    assert "DROP TABLE EPOS_BRIDGE_CHANGES;" in dry.stdout and schema_objects(path) - before == added
    assert "DROP TABLE EPOS_BRIDGE_PAYMENTS;" not in dry.stdout  # the payment record stays
    detached = db_cli(tmp_path, "detach", str(path))
    assert detached.returncode == 0, detached.stderr
    record = {("table", "EPOS_BRIDGE_META"), *bridge.KEPT_ON_DETACH}
    assert schema_objects(path) - before == record
    forgot = db_cli(tmp_path, "detach", str(path), "--forget-payments")
    assert forgot.returncode == 0, forgot.stderr
    assert schema_objects(path) == before


def test_db_commands_need_a_mapping_for_sqlmap_and_refuse_an_adapter_that_keeps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    no_mapping = db_cli(tmp_path, "init", str(path), "--demo", "--adapter", "sqlmap")
    assert no_mapping.returncode == 1 and "needs a mapping" in no_mapping.stderr
    reference = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant", "--adapter", "sqlite")
    assert reference.returncode == 2 and "keeps nothing" in reference.stderr
    assert not path.exists()


def test_a_change_by_the_pos_is_logged_by_its_trigger(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    create_floreant_database(path)
    with sqlite3.connect(path) as conn:
        ticket = conn.execute("INSERT INTO TICKET (TOTAL_PRICE) VALUES (10.0)").lastrowid
        item = conn.execute("INSERT INTO TICKET_ITEM (TICKET_ID, ITEM_NAME) VALUES (?, 'Tea')", (ticket,)).lastrowid
        conn.execute("INSERT INTO TICKET_ITEM_MODIFIER (TICKET_ITEM_ID, MODIFIER_NAME) VALUES (?, 'Milk')", (item,))
        conn.execute(
            "INSERT INTO TRANSACTIONS (TRANSACTION_TYPE, TICKET_ID, AMOUNT) VALUES ('CASH', ?, 1.0)", (ticket,)
        )
        conn.execute("INSERT INTO TRANSACTIONS (TRANSACTION_TYPE, AMOUNT) VALUES ('PAY_OUT', 5.0)")  # no ticket
        table = conn.execute("INSERT INTO SHOP_TABLE (NUMBER) VALUES (3)").lastrowid
        booking = conn.execute("INSERT INTO TABLE_BOOKING_INFO (GUEST_COUNT) VALUES (4)").lastrowid
        conn.execute("INSERT INTO TABLE_BOOKING_MAPPING (BOOKING_ID, TABLE_ID) VALUES (?, ?)", (booking, table))
        logged = conn.execute("SELECT ENTITY, ENTITY_ID, CHANGE FROM EPOS_BRIDGE_CHANGES ORDER BY SEQ").fetchall()
    assert logged == [("order", str(ticket), "insert")] + [("order", str(ticket), "update")] * 3 + [
        ("reservation", str(booking), "insert"),
        ("reservation", str(booking), "update"),
    ]
