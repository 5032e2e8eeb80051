"""Venues for tests and benchmarks: the demo venue plus open, unpaid orders to pay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.protocol.base import format_utc


def venue_with_open_orders(
    path: Path, count: int, total: int, *, reference_prefix: str, item: tuple[str, str] = ("Tab", "TAB")
) -> list[str]:
    """A demo venue (SQLite) plus ``count`` open dine-in orders owing ``total`` each, one ``item``
    (name, PLU) apiece, referenced ``{reference_prefix}-{id}``; returns their ids."""
    now = datetime.now(UTC)
    init_database(path, demo=True, now=now)
    stamp = format_utc(now - timedelta(minutes=5))
    name, plu = item
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        (first,) = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM orders").fetchone()
        ids = list(range(first, first + count))
        conn.executemany(
            "INSERT INTO orders (id, reference, status, order_type, currency_code, total_amount, created_at,"
            " updated_at) VALUES (?, ?, 'Submitted', 'DineIn', 'GBP', ?, ?, ?)",
            [(i, f"{reference_prefix}-{i}", total, stamp, stamp) for i in ids],
        )
        conn.executemany(
            "INSERT INTO order_items (order_id, position, name, plu, quantity, amount_per_item)"
            " VALUES (?, 0, ?, ?, 1, ?)",
            [(i, name, plu, total) for i in ids],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return [str(i) for i in ids]
