"""The payment log's history in the bridge's state database: real SQLite file."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.state.payment_log import CSV_COLUMNS, PaymentLogStore

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def entry(intent: str, at: datetime, **changes: object) -> PaymentLogEntry:
    base = PaymentLogEntry(
        at, "7", intent, 4000, "GBP", "Recorded", 500, "T12-0007", "Table 12", "T12", "PayAtTable", "term-1"
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_entries_survive_a_restart_and_replays_add_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = PaymentLogStore(path)
    await store.open()
    await store.record(entry("pi_1", NOW))
    await store.record(entry("pi_1", NOW))
    await store.record(entry("pi_2", NOW - timedelta(days=1), table_id="B1", order_reference="B1-0003"))
    await store.close()

    reopened = PaymentLogStore(path)
    await reopened.open()
    try:
        everything = await reopened.entries()
        assert [e.payment_intent_id for e in everything] == ["pi_1", "pi_2"]
        today = await reopened.entries(since=NOW - timedelta(hours=1))
        assert [e.payment_intent_id for e in today] == ["pi_1"]
        assert [e.payment_intent_id for e in await reopened.entries(search="B1")] == ["pi_2"]
        updated = await reopened.set_status("pi_1", "Reversed")
        assert updated is not None and updated.status == "Reversed"
        assert await reopened.set_status("pi_unknown", "Captured") is None
    finally:
        await reopened.close()


async def test_export_csv_writes_a_header_and_one_row_per_payment(tmp_path: Path) -> None:
    store = PaymentLogStore(tmp_path / "state.db")
    await store.open()
    try:
        await store.record(entry("pi_1", NOW))
        destination = tmp_path / "payments.csv"
        count = await store.export_csv(destination, await store.entries())
    finally:
        await store.close()
    with destination.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert count == 1
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1][1:5] == ["T12-0007", "T12", "40.00", "5.00"]
