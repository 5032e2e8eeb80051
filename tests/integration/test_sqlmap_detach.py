"""``db detach`` removes exactly what ``db attach`` created, nothing of the POS's: not its tables
that merely look like the bridge's (``LIKE 'EPOS_BRIDGE_%'`` is case-insensitive and ``_`` is a
wildcard), not its triggers and views on the lock view, and it puts the journal mode back."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED
from epos_bridge.ports import AdapterInitError
from tests.helpers.child import db_cli
from tests.helpers.floreant import floreant

LOOKALIKES = ("epos_bridge_config", "EPOS1BRIDGE2AUDIT", "Epos_Bridge_Payments_Old")


def schema_objects(path: Path) -> set[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())


def journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def floreant_pos(path: Path, *, lookalikes: bool = True) -> Path:
    """Floreant's tables in journal_mode=delete (SQLite's default), plus the POS's own tables whose
    names look like the bridge's, each holding a row that must survive."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((SHIPPED / "floreant.sql").read_text(encoding="utf-8"))
        assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
        if lookalikes:
            for name in LOOKALIKES:
                conn.execute(f'CREATE TABLE "{name}" (K TEXT PRIMARY KEY, V TEXT)')
                conn.execute(f'INSERT INTO "{name}" VALUES (?, ?)', ("kept", f"{name} is the POS's"))
            conn.execute("CREATE VIEW EPOS_BRIDGE_REPORT AS SELECT K, V FROM epos_bridge_config")
        conn.commit()
    return path


def lookalike_rows(path: Path) -> dict[str, list[tuple[str, str]]]:
    with closing(sqlite3.connect(path)) as conn:
        return {name: conn.execute(f'SELECT K, V FROM "{name}"').fetchall() for name in LOOKALIKES}


def bridge_names(path: Path, before: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return schema_objects(path) - before


def test_detach_leaves_the_pos_tables_that_look_like_the_bridges_and_their_rows(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db")
    before = schema_objects(path)
    rows = lookalike_rows(path)

    attached = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant")
    assert attached.returncode == 0, attached.stderr
    dry = db_cli(tmp_path, "detach", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for name in (*LOOKALIKES, "EPOS_BRIDGE_REPORT"):
        assert name.upper() not in dry.stdout.upper().replace("DROP TABLE EPOS_BRIDGE_", "-"), dry.stdout
    detached = db_cli(tmp_path, "detach", str(path), "--forget-payments")
    assert detached.returncode == 0, detached.stderr

    assert schema_objects(path) == before
    assert lookalike_rows(path) == rows


def test_detach_restores_the_journal_mode_attach_found(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db", lookalikes=False)
    assert journal_mode(path) == "delete"
    setup.attach(path, floreant())
    assert journal_mode(path) == "wal"

    lines = setup.detach(path)

    assert journal_mode(path) == "delete", lines
    assert any("journal mode" in line and "delete" in line for line in lines), lines


def test_a_pos_already_in_wal_stays_in_wal(tmp_path: Path) -> None:
    path = floreant_pos(tmp_path / "pos.db", lookalikes=False)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    setup.attach(path, floreant())
    setup.detach(path)
    assert journal_mode(path) == "wal"


@pytest.mark.parametrize(
    ("pos_sql", "named"),
    [
        (
            "CREATE TRIGGER POS_LOCK_AUDIT INSTEAD OF DELETE ON DOJO_TICKET_LOCKS"
            " BEGIN INSERT INTO epos_bridge_config VALUES ('unlocked', OLD.ORDER_KEY); END",
            "POS_LOCK_AUDIT",
        ),
        (
            "CREATE TRIGGER POS_NO_PAY_WHILE_LOCKED BEFORE INSERT ON TRANSACTIONS"
            " WHEN EXISTS (SELECT 1 FROM DOJO_TICKET_LOCKS l WHERE l.ORDER_KEY = NEW.TICKET_ID)"
            " BEGIN SELECT RAISE(ABORT, 'held by Dojo'); END",
            "POS_NO_PAY_WHILE_LOCKED",
        ),
        (
            "CREATE VIEW POS_HELD_TICKETS AS SELECT t.ID FROM TICKET t JOIN DOJO_TICKET_LOCKS l ON l.ORDER_KEY = t.ID",
            "POS_HELD_TICKETS",
        ),
    ],
    ids=["trigger-on-the-lock-view", "trigger-reading-the-lock-view", "view-reading-the-lock-view"],
)
def test_detach_refuses_while_the_pos_uses_the_lock_view_and_names_what(
    tmp_path: Path, pos_sql: str, named: str
) -> None:
    path = floreant_pos(tmp_path / "pos.db")
    setup.attach(path, floreant())
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(pos_sql)
        conn.commit()
    attached = schema_objects(path)

    with pytest.raises(AdapterInitError) as refused:
        setup.detach(path, forget_payments=True)
    assert named in str(refused.value) and "DOJO_TICKET_LOCKS" in str(refused.value)
    assert schema_objects(path) == attached, "a refused detach changes nothing"
    with pytest.raises(AdapterInitError, match=named):
        setup.detach(path, dry_run=True)

    # The POS still takes payments: nothing it relies on has gone.
    with closing(sqlite3.connect(path)) as conn:
        ticket = conn.execute("INSERT INTO TICKET (TOTAL_PRICE) VALUES (5.0)").lastrowid
        conn.execute(
            "INSERT INTO TRANSACTIONS (TRANSACTION_TYPE, TICKET_ID, AMOUNT) VALUES ('CASH', ?, 5.0)", (ticket,)
        )
        conn.commit()


def test_a_database_attached_before_the_record_detaches_only_the_bridges_exact_names(tmp_path: Path) -> None:
    """A file attached by an older bridge has no record of what it created: detach removes only
    the objects with the bridge's exact names and shapes, never a lookalike."""
    path = floreant_pos(tmp_path / "pos.db")
    before = schema_objects(path)
    rows = lookalike_rows(path)
    setup.attach(path, floreant())
    with closing(sqlite3.connect(path)) as conn:  # what an older attach left: no record in META
        conn.execute("DELETE FROM EPOS_BRIDGE_META WHERE KEY NOT IN ('version', 'mapping')")
        conn.commit()

    lines = setup.detach(path, forget_payments=True)

    assert schema_objects(path) == before, lines
    assert lookalike_rows(path) == rows
