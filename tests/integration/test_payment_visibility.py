"""A mapping says where the POS's own screens read a payment (``payments.shown_by``), and
``db attach`` warns when a Dojo payment would not show there: a payment staff cannot see on the
bill is taken again in cash."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap import setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED, Mapping, load, payment_visibility_warnings
from epos_bridge.app import till_warnings
from epos_bridge.config import BridgeSettings


def floreant_with(tmp_path: Path, old: str, new: str) -> Mapping:
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    (tmp_path / "m.toml").write_text(text.replace(old, new), encoding="utf-8")
    return load(str(tmp_path / "m.toml"))


def test_the_shipped_floreant_mapping_shows_every_dojo_payment_where_floreant_reads_it() -> None:
    assert payment_visibility_warnings(load("floreant")) == []


@pytest.mark.parametrize(
    ("old", "new", "warned"),
    [
        ('shown_by = ["TRANSACTIONS", "TICKET"]\n', "", "payments.shown_by is not set"),
        # An installer who invented a payments table the POS never reads.
        ("INSERT INTO TRANSACTIONS (", "INSERT INTO DOJO_CARD_PAYMENTS (", "write DOJO_CARD_PAYMENTS, which the POS"),
        ('shown_by = ["TRANSACTIONS", "TICKET"]', 'shown_by = ["TRANSACTIONS", "TICKET", "SHOP_TABLE_STATUS"]',
         "read SHOP_TABLE_STATUS (payments.shown_by), but no payment statement writes it"),
    ],
)  # fmt: skip
def test_a_payment_the_till_would_not_show_is_warned_of(tmp_path: Path, old: str, new: str, warned: str) -> None:
    warnings = payment_visibility_warnings(floreant_with(tmp_path, old, new))
    assert any(warned in w for w in warnings), warnings


def test_db_attach_and_its_dry_run_say_so(tmp_path: Path) -> None:
    path = tmp_path / "floreant.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((SHIPPED / "floreant.sql").read_text(encoding="utf-8"))
    mapping = floreant_with(tmp_path, 'shown_by = ["TRANSACTIONS", "TICKET"]\n', "")
    dry = setup.attach(path, mapping, dry_run=True)
    assert any(line.startswith("-- warning: payments.shown_by is not set") for line in dry)
    done = setup.attach(path, mapping)
    assert done[0].endswith("tables send POS events)")
    assert any(line.startswith("warning: payments.shown_by is not set") for line in done)


def test_the_shipped_ospos_mapping_shows_every_dojo_payment_where_ospos_reads_it() -> None:
    assert payment_visibility_warnings(load("ospos")) == []


def test_the_verify_report_gets_the_warnings_of_the_configured_mapping(tmp_path: Path) -> None:
    """``epos-bridge verify --report`` and the Verify dialog write them (app.till_warnings)."""
    mapping = tmp_path / "m.toml"
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    mapping.write_text(text.replace('shown_by = ["TRANSACTIONS", "TICKET"]\n', ""), encoding="utf-8")
    settings = BridgeSettings(adapter="sqlmap", mapping=str(mapping), db_path=tmp_path / "pos.db")
    assert any("payments.shown_by is not set" in w for w in till_warnings(settings))
    assert till_warnings(BridgeSettings(adapter="sqlmap", mapping="floreant", db_path=tmp_path / "pos.db")) == []
    assert till_warnings(BridgeSettings(adapter="sqlite", db_path=tmp_path / "pos.db")) == []
