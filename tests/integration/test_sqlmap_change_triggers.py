"""A mapping's change triggers cannot break the POS's own writes: ``db attach`` prepares every
trigger against the real tables and refuses the whole attach, naming the ``[[changes]]`` entry
and SQLite's error, when one does not fit; and the mapping's key SQL is used as written (no text
rewriting), so an alias such as ``TR.`` means what it says."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, load
from epos_bridge.ports import AdapterInitError
from tests.helpers.child import db_cli

FLOREANT = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
TICKET_KEY = '[[changes]]\ntable = "TICKET"\norder_key = "R.ID"\n'
TRANSACTIONS_KEY = '[[changes]]\ntable = "TRANSACTIONS"\norder_key = "R.TICKET_ID"\n'


def mapping_file(tmp_path: Path, old: str, new: str) -> Path:
    assert old in FLOREANT
    path = tmp_path / "mine.toml"
    path.write_text(FLOREANT.replace(old, new, 1), encoding="utf-8")
    return path


def floreant_pos(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((SHIPPED / "floreant.sql").read_text(encoding="utf-8"))
    return path


def schema_objects(path: Path) -> set[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())


def changes_logged(path: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT ENTITY, ENTITY_ID, CHANGE FROM EPOS_BRIDGE_CHANGES ORDER BY SEQ").fetchall()


def test_a_typo_in_a_change_trigger_refuses_the_attach_and_the_pos_keeps_writing(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db")
    before = schema_objects(path)
    typo = mapping_file(tmp_path, TICKET_KEY, TICKET_KEY.replace("R.ID", "R.AUTOID"))

    with pytest.raises(AdapterInitError) as refused:
        setup.attach(path, load(str(typo)))
    words = str(refused.value)
    assert "nothing was changed" in words
    assert "[[changes]]" in words and "TICKET" in words and "R.AUTOID" in words, words
    assert "no such column" in words and "AUTOID" in words, words
    assert schema_objects(path) == before, "a refused attach creates nothing"
    with closing(sqlite3.connect(path)) as conn:  # and the POS's own insert still works
        conn.execute("INSERT INTO TICKET (TOTAL_PRICE) VALUES (10.0)")
        conn.commit()

    dry = db_cli(tmp_path, "attach", str(path), "--mapping", str(typo), "--dry-run")
    assert dry.returncode == 1, dry.stdout
    assert "[[changes]]" in dry.stderr and "AUTOID" in dry.stderr and "no such column" in dry.stderr, dry.stderr
    assert schema_objects(path) == before


def test_a_trigger_on_a_table_that_does_not_exist_names_the_entry(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db")
    before = schema_objects(path)
    missing = mapping_file(tmp_path, TRANSACTIONS_KEY, TRANSACTIONS_KEY.replace('"TRANSACTIONS"', '"TRANSACTIONZ"'))

    with pytest.raises(AdapterInitError) as refused:
        setup.attach(path, load(str(missing)))
    assert "[[changes]]" in str(refused.value) and "no such table" in str(refused.value), refused.value
    assert schema_objects(path) == before


def test_a_key_with_an_alias_ending_in_r_is_used_as_written(tmp_path: Path) -> None:
    """``TR.`` is an alias, not ``R.`` with a T in front: the key is the mapping's SQL, untouched."""
    path = floreant_pos(tmp_path / "pos.db")
    aliased = TRANSACTIONS_KEY.replace(
        '"R.TICKET_ID"', '"(SELECT TR.TICKET_ID FROM TRANSACTIONS TR WHERE TR.ID = R.ID AND TR.TICKET_ID > 0)"'
    )
    setup.attach(path, load(str(mapping_file(tmp_path, TRANSACTIONS_KEY, aliased))))

    with closing(sqlite3.connect(path)) as conn:
        ticket = conn.execute("INSERT INTO TICKET (TOTAL_PRICE) VALUES (10.0)").lastrowid
        pay = conn.execute(
            "INSERT INTO TRANSACTIONS (TRANSACTION_TYPE, TICKET_ID, AMOUNT) VALUES ('CASH', ?, 1.0)", (ticket,)
        ).lastrowid
        conn.execute("UPDATE TRANSACTIONS SET AMOUNT = 2.0 WHERE ID = ?", (pay,))
        conn.execute("DELETE FROM TRANSACTIONS WHERE ID = ?", (pay,))
        conn.commit()
    assert changes_logged(path) == [("order", str(ticket), "insert")] + [("order", str(ticket), "update")] * 3


def test_the_shipped_mapping_still_logs_every_change_and_a_deleted_row_names_its_order(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db")
    setup.attach(path, load("floreant"))
    with closing(sqlite3.connect(path)) as conn:
        ticket = conn.execute("INSERT INTO TICKET (TOTAL_PRICE) VALUES (10.0)").lastrowid
        item = conn.execute("INSERT INTO TICKET_ITEM (TICKET_ID, ITEM_NAME) VALUES (?, 'Tea')", (ticket,)).lastrowid
        conn.execute("INSERT INTO TICKET_ITEM_MODIFIER (TICKET_ITEM_ID, MODIFIER_NAME) VALUES (?, 'Milk')", (item,))
        conn.execute("DELETE FROM TICKET_ITEM_MODIFIER")
        conn.execute("DELETE FROM TICKET_ITEM")
        conn.execute("DELETE FROM TICKET")
        conn.commit()
    assert changes_logged(path) == [
        ("order", str(ticket), "insert"),
        ("order", str(ticket), "update"),  # the item
        ("order", str(ticket), "update"),  # the modifier, through its item
        ("order", str(ticket), "update"),  # the modifier deleted: its item still names the ticket
        ("order", str(ticket), "update"),  # the item deleted
        ("order", str(ticket), "delete"),
    ]


def test_attaching_again_replaces_triggers_an_older_bridge_wrote_by_rewriting_text(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db")
    setup.attach(path, load("floreant"))
    with closing(sqlite3.connect(path)) as conn:  # what the textual rewrite used to create
        conn.execute("DROP TRIGGER EPOS_BRIDGE_TICKET_INSERT")
        conn.execute(
            "CREATE TRIGGER EPOS_BRIDGE_TICKET_INSERT AFTER INSERT ON TICKET WHEN (NEW.ID) IS NOT NULL BEGIN "
            "INSERT INTO EPOS_BRIDGE_CHANGES (ENTITY, ENTITY_ID, CHANGE) VALUES ('order', CAST((NEW.ID) AS TEXT), "
            "'insert'); END"
        )
        conn.commit()
    lines = setup.attach(path, load("floreant"))
    assert any("replaced" in line for line in lines), lines
    with closing(sqlite3.connect(path)) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'EPOS_BRIDGE_TICKET_INSERT'").fetchone()[0]
    assert "NEW.ID" not in sql and "R.ID" in sql
