"""The payment log's history, kept in the bridge's own state database (not the POS's).

Every payment Dojo records through the bridge is written here as it happens, and its status
follows Dojo's payment-intent events, so staff can look back at the day after a restart.
All SQLite work runs on one worker thread; the event loop never waits on the disk.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from epos_bridge.host.private_files import open_private
from epos_bridge.protocol.base import format_utc
from epos_bridge.services.activity import PaymentLogEntry
from epos_bridge.state.database import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS payment_log (
    payment_intent_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    order_id TEXT NOT NULL,
    order_reference TEXT,
    display_name TEXT,
    table_id TEXT,
    amount_value INTEGER NOT NULL,
    tips_value INTEGER,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    product TEXT,
    device_id TEXT
);
CREATE INDEX IF NOT EXISTS payment_log_by_time ON payment_log(at);
"""

CSV_COLUMNS = (
    "time",
    "order",
    "table",
    "amount",
    "tip",
    "currency",
    "paymentIntentId",
    "status",
    "product",
    "device",
)


class PaymentLogStore(StateStore):
    schema = SCHEMA

    async def record(self, entry: PaymentLogEntry) -> None:
        """Idempotent per payment intent: a replayed payment does not add a second line."""
        await self._run(
            lambda: self._write(
                "INSERT OR IGNORE INTO payment_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.payment_intent_id,
                    format_utc(entry.at),
                    entry.order_id,
                    entry.order_reference,
                    entry.display_name,
                    entry.table_id,
                    entry.amount_value,
                    entry.tips_value,
                    entry.currency,
                    entry.status,
                    entry.product,
                    entry.device_id,
                ),
            )
        )

    async def set_status(self, payment_intent_id: str, status: str) -> PaymentLogEntry | None:
        def work() -> PaymentLogEntry | None:
            self._write("UPDATE payment_log SET status = ? WHERE payment_intent_id = ?", (status, payment_intent_id))
            rows = self._select("WHERE payment_intent_id = ?", (payment_intent_id,), 1)
            return rows[0] if rows else None

        return await self._run(work)

    async def entries(
        self, *, since: datetime | None = None, search: str | None = None, limit: int = 1000
    ) -> list[PaymentLogEntry]:
        """Newest first. ``search`` matches order, table, intent id, status, product or device."""
        conditions: list[str] = []
        args: list[Any] = []
        if since is not None:
            conditions.append("at >= ?")
            args.append(format_utc(since))
        if search:
            like = f"%{search.strip()}%"
            conditions.append(
                "(order_reference LIKE ? OR display_name LIKE ? OR table_id LIKE ? OR payment_intent_id LIKE ? "
                "OR status LIKE ? OR product LIKE ? OR device_id LIKE ? OR order_id = ?)"
            )
            args += [like] * 7 + [search.strip()]
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return await self._run(lambda: self._select(where, tuple(args), limit))

    async def export_csv(self, destination: Path, entries: Iterable[PaymentLogEntry]) -> int:
        rows = list(entries)
        await self._run(lambda: _write_csv(destination, rows))
        return len(rows)

    def _select(self, where: str, args: tuple[Any, ...], limit: int) -> list[PaymentLogEntry]:
        columns = (
            "at, order_id, payment_intent_id, amount_value, currency, status, tips_value, order_reference, "
            "display_name, table_id, product, device_id"
        )
        sql = f"SELECT {columns} FROM payment_log {where} ORDER BY at DESC LIMIT ?"  # noqa: S608 (fixed fragments)
        return [_entry(row) for row in self._db().execute(sql, (*args, limit))]


def _entry(row: tuple[Any, ...]) -> PaymentLogEntry:
    return PaymentLogEntry(datetime.fromisoformat(row[0]), *row[1:])


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP "CSV injection")."""
_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def spreadsheet_safe(field: str) -> str:
    """A field a spreadsheet shows as text: one that starts like a formula gets a leading ``'``.

    Order references, table names, ids and statuses come from the POS or Dojo; an order named
    ``=HYPERLINK("https://…")`` must not become a link (or a command) on the manager's PC. A
    plain decimal number (a refund's ``-12.50``) cannot be a formula and stays a number.
    """
    if field.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(field):
        return "'" + field
    return field


def _write_csv(destination: Path, rows: list[PaymentLogEntry]) -> None:
    temporary = destination.with_name(destination.name + ".part")
    with open_private(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for e in rows:
            fields = (
                format_utc(e.at),
                e.order_reference or e.order_id,
                e.table_id or "",
                f"{e.amount_value / 100:.2f}",
                f"{(e.tips_value or 0) / 100:.2f}",
                e.currency,
                e.payment_intent_id,
                e.status,
                e.product or "",
                e.device_id or "",
            )
            writer.writerow([spreadsheet_safe(str(field)) for field in fields])
    temporary.replace(destination)
