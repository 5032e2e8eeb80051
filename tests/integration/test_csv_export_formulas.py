"""The payment-log CSV never hands a spreadsheet a formula: any field from the POS or Dojo that
starts with =, +, -, @, a tab or a carriage return is prefixed with ' (real SQLite, real file)."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.state.payment_log import CSV_COLUMNS, PaymentLogStore, spreadsheet_safe

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        ('=HYPERLINK("https://evil.example","Refund")', '\'=HYPERLINK("https://evil.example","Refund")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("T12-0007", "T12-0007"),
        ("a=b", "a=b"),
        ("-12.50", "-12.50"),  # a refund's amount is a number, not a formula
        ("-", "'-"),
        ("", ""),
    ],
)
def test_spreadsheet_safe(field: str, shown: str) -> None:
    assert spreadsheet_safe(field) == shown


async def test_the_export_neutralises_formulas_from_the_pos_and_dojo(tmp_path: Path) -> None:
    store = PaymentLogStore(tmp_path / "state.db")
    hostile = PaymentLogEntry(
        NOW,
        "7",
        "@pi_hostile",
        -1250,
        "GBP",
        "=cmd|' /C calc'!A0",
        None,
        '=HYPERLINK("https://evil.example","Refund")',
        "+Table",
        "-T12",
        "\tPayAtTable",
        "\rterm-1",
    )
    plain = replace(
        hostile,
        payment_intent_id="pi_plain",
        status="Captured",
        order_reference="T12-0007",
        table_id="T12",
        product="PayAtTable",
        device_id="term-1",
        amount_value=4000,
    )
    await store.open()
    try:
        await store.record(hostile)
        await store.record(plain)
        destination = tmp_path / "payments.csv"
        assert await store.export_csv(destination, await store.entries()) == 2
    finally:
        await store.close()

    with destination.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_intent = {row["paymentIntentId"]: row for row in rows}
    bad = by_intent["'@pi_hostile"]
    assert bad["order"] == '\'=HYPERLINK("https://evil.example","Refund")'
    assert bad["status"] == "'=cmd|' /C calc'!A0"
    assert (bad["table"], bad["product"], bad["device"]) == ("'-T12", "'\tPayAtTable", "'\rterm-1")
    assert bad["amount"] == "-12.50"
    good = by_intent["pi_plain"]
    assert (good["order"], good["table"], good["amount"], good["status"]) == ("T12-0007", "T12", "40.00", "Captured")
    for row in rows:
        assert not any(value.startswith(("=", "+", "@", "\t", "\r")) for value in row.values())
