"""What the bridge keeps in an SQLite POS file, stored one way by every SQLite adapter.

Order locks, the payment-intent events Dojo sent, and where a paymentIntentId is recorded live in
tables the reference schema names one way (``order_locks`` …) and a mapped POS another
(``EPOS_BRIDGE_ORDER_LOCKS`` …, created by ``db attach``). Their columns are the same (SQLite
compares names without case), so reading and writing them is written once here; each adapter
names its tables in a :class:`KeptTables`; every column is read under an alias, because SQLite
names an unaliased result column as the table declares it. Only storage: what to write is decided in ``domain/``.
Table and column names in the SQL below come from those constants, never from a request; every
value is bound.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from epos_bridge.adapters.sql_dialects import SQLITE, Dialect
from epos_bridge.adapters.sql_session import Sql
from epos_bridge.adapters.transactional import TransactionalStore
from epos_bridge.domain.intents import StoredIntentEvent
from epos_bridge.domain.locks import HeldLock, LockChange, stored_lock
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import PosChange, PosOrder
from epos_bridge.protocol import entities as wire
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.params import HandleEventParams, RequestHeaders
from epos_bridge.protocol.times import LONG_AGO, stored_time


@dataclass(frozen=True)
class KeptTables:
    """Where one schema keeps the bridge's rows. Names come from code, never from a request."""

    locks: str
    """One row per locked order: lock id, expiry, start and the requester's headers."""
    lock_order: str
    """The locks table's column holding the order's key."""
    events: str
    """Every payment-intent event received (``HandleEventV1``), in arrival order (rowid)."""
    payments: str
    """The bridge's ledger: one row per recorded Dojo payment (order key, paid and tip amounts,
    status), never deleted with the POS's order, so a recorded paymentIntentId is never forgotten."""
    payment_order: str
    """The payments table's column holding the order's key."""
    registry: str
    """The orders Dojo wrote to: Dojo's id, the POS key it was last found under, the last answer."""
    changes: str
    """The change log behind POS events (seq, entity, entity_id, change), filled by triggers."""
    dialect: Dialect = SQLITE
    """The engine the tables are in: its upsert, its reserved words, its arrival order."""


REGISTRY_COLUMNS = ("order_id", "order_key", "answer", "answered_at")


def _one(db: Sql, sql: str, args: Sequence[Any]) -> dict[str, Any] | None:
    return next(iter(db.query(sql, args)), None)


class KeptRows:
    """The part of an SQLite storage's :class:`~epos_bridge.ports.PosRows` kept in the bridge's
    own tables: order locks, payment-intent events, where a paymentIntentId is recorded."""

    def __init__(self, db: Sql, kept: KeptTables) -> None:
        self.db = db
        self.kept = kept

    def recorded_intent(self, payment_intent_id: str) -> RecordedIntent | None:
        kept = self.kept
        row = _one(
            self.db,
            f"SELECT {kept.payment_order} AS order_key, paid_amount AS paid_amount, tips_amount AS tips_amount,"  # noqa: S608 - names from KeptTables
            f" status AS status FROM {kept.payments}"
            f" WHERE payment_intent_id = ? ORDER BY {kept.dialect.arrival} LIMIT 1",
            [payment_intent_id],
        )
        if row is None:
            return None
        return RecordedIntent(str(row["order_key"]), row["paid_amount"], row["tips_amount"], row["status"])

    def set_recorded_status(self, payment_intent_id: str, status: str) -> None:
        """The ledger's status of a recorded intent (the POS's own payment row is the adapter's)."""
        self.db.execute(
            f"UPDATE {self.kept.payments} SET status = ? WHERE payment_intent_id = ?",  # noqa: S608 - names from KeptTables
            [status, payment_intent_id],
        )

    # --- the registry of orders Dojo wrote to ---------------------------------------------

    def registered_order(self, order_id: str) -> RegisteredOrder | None:
        row = _one(
            self.db,
            f"SELECT order_key AS order_key, answer AS answer FROM {self.kept.registry} WHERE order_id = ?",  # noqa: S608 - names from KeptTables
            [order_id],
        )
        if row is None:
            return None
        return RegisteredOrder.stored(order_id, int(row["order_key"]), row["answer"])

    def register_order(self, order_id: str, key: int, answer: wire.Order, now: datetime) -> None:
        self.db.execute(
            self.kept.dialect.upsert(self.kept.registry, REGISTRY_COLUMNS, REGISTRY_COLUMNS[:1]),
            [order_id, key, json.dumps(RegisteredOrder(order_id, key, answer).answer_document()), format_utc(now)],
        )

    def held_lock(self, order: PosOrder) -> HeldLock | None:
        kept = self.kept
        row = _one(
            self.db,
            f"SELECT lock_id AS lock_id, expires_at AS expires_at, locked_at AS locked_at,"  # noqa: S608 - names from KeptTables
            " dojo_requesting_product AS dojo_requesting_product, device_id AS device_id,"
            " device_type AS device_type, waiter_id AS waiter_id"
            f" FROM {kept.locks} WHERE {kept.lock_order} = ?",
            [order.key],
        )
        if row is None:
            return None
        where = f"the lock on order {order.key}"
        return stored_lock(
            row["lock_id"],
            stored_time(row["expires_at"], f"the expiry of {where}"),
            stored_time(row["locked_at"], f"the start of {where}"),
            RequestHeaders(
                dojo_requesting_product=row["dojo_requesting_product"],
                device_id=row["device_id"],
                device_type=row["device_type"],
                waiter_id=row["waiter_id"],
            ),
        )

    def expired_locks(self, now: datetime) -> list[tuple[int, str]]:
        """``(order key, expiry as stored)`` of every lock that is no longer held at ``now``;
        whether a lock is still held is the domain's (:meth:`HeldLock.is_active`)."""
        kept = self.kept
        found = []
        for row in self.db.query(
            f"SELECT {kept.lock_order} AS order_key, lock_id AS lock_id, expires_at AS expires_at,"  # noqa: S608 - names from KeptTables
            f" locked_at AS locked_at FROM {kept.locks}"
        ):
            where = f"the lock on order {row['order_key']}"
            lock = stored_lock(
                row["lock_id"],
                stored_time(row["expires_at"], f"the expiry of {where}"),
                stored_time(row["locked_at"], f"the start of {where}"),
                RequestHeaders(),
            )
            if not lock.is_active(now):
                found.append((int(row["order_key"]), str(row["expires_at"])))
        return found

    def store_lock(self, order: PosOrder, change: LockChange) -> None:
        """Plain SQL, not sqlite_utils' upsert: that one probes the database for ON CONFLICT
        support by creating a table, and when the probe cannot write (the snapshot attempt runs
        with query_only) it falls back for good to INSERT OR IGNORE + UPDATE, which silently
        stores nothing for a table with NOT NULL columns."""
        kept = self.kept
        if change.remove:
            self.db.execute(f"DELETE FROM {kept.locks} WHERE {kept.lock_order} = ?", [order.key])  # noqa: S608 - names from KeptTables
            return
        lock = change.store
        if lock is None:
            return
        columns = (kept.lock_order, "lock_id", "expires_at", "locked_at", "dojo_requesting_product", "device_id")
        self.db.execute(
            kept.dialect.upsert(kept.locks, (*columns, "device_type", "waiter_id"), (kept.lock_order,)),
            [
                order.key,
                lock.lock_id,
                format_utc(lock.expires_at),
                format_utc(lock.locked_at),
                lock.requester.dojo_requesting_product,
                lock.requester.device_id,
                lock.requester.device_type,
                lock.requester.waiter_id,
            ],
        )

    def intent_events(self, payment_intent_id: str, event_id: str | None = None) -> list[StoredIntentEvent]:
        rows = self.db.query(
            f"SELECT event_id AS event_id, payment_status AS payment_status, created_at AS created_at,"  # noqa: S608 - names from KeptTables
            f" received_at AS received_at FROM {self.kept.events}"
            f" WHERE payment_intent_id = ? OR event_id = ? ORDER BY {self.kept.dialect.arrival}",
            [payment_intent_id, event_id],
        )
        return [
            StoredIntentEvent(
                r["event_id"],
                wire.PaymentIntentStatus(r["payment_status"]),
                stored_time(r["created_at"], "createdAt of a payment-intent event") or LONG_AGO,
                stored_time(r["received_at"], "receivedAt of a payment-intent event") or LONG_AGO,
            )
            for r in rows
        ]

    def keep_intent_event(
        self, params: HandleEventParams, event: wire.PaymentIntentEvent, received_at: datetime
    ) -> None:
        self.db.execute(
            f"INSERT INTO {self.kept.events} (event_id, account_id, event, payment_intent_id, payment_status,"  # noqa: S608 - names from KeptTables
            " capture_mode, created_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                params.id,
                params.account_id,
                params.event,
                event.payment_intent_id,
                event.payment_status.value,
                event.capture_mode.value,
                format_utc(params.created_at),
                format_utc(received_at),
            ],
        )


GAP_GRACE_S = 30.0
"""How long a missing change-log number on a server is waited for (a POS transaction still
open) before it is taken for a rolled-back one; longer than any till's transaction."""


class KeptChangeLog:
    """``ports.ChangeSource`` over the change-log table the triggers fill, for the POS-event relay."""

    def __init__(self, store: TransactionalStore[Sql], kept: KeptTables, *, gap_grace_s: float = GAP_GRACE_S) -> None:
        self._store = store
        self._table = kept.changes
        self._change = kept.dialect.column("change")
        # SQLite writes one transaction at a time, so its sequence numbers commit in order and a
        # rolled-back one is handed out again. A server hands them out at INSERT: a POS
        # transaction still open holds a number below ones already committed, and a rolled-back
        # one leaves a hole for good.
        self._gaps_wait = kept.dialect.name != "sqlite"
        self._gap_grace_s = gap_grace_s
        self._gap_seen: dict[int, float] = {}

    async def latest_change(self) -> int:
        sql = f"SELECT COALESCE(MAX(seq), 0) FROM {self._table}"  # noqa: S608 - names from KeptTables
        return await self._store.read(lambda db: int(db.execute(sql).fetchone()[0]))

    async def changes_after(self, seq: int, limit: int) -> list[PosChange]:
        sql = f"SELECT seq, entity, entity_id, {self._change} FROM {self._table} WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608

        def work(db: Sql) -> list[PosChange]:
            found = db.execute(sql, [seq, limit]).fetchall()
            return [PosChange(int(r[0]), r[1], str(r[2]), r[3]) for r in found]

        changes = await self._store.read(work)
        return self._up_to_a_fresh_gap(seq, changes) if self._gaps_wait else changes

    def _up_to_a_fresh_gap(self, seq: int, changes: list[PosChange]) -> list[PosChange]:
        """The changes before the first missing number that went missing less than the grace
        ago: it may be a POS transaction that has not committed yet, and the relay's cursor
        must not pass it. A number missing for longer was rolled back."""
        now = time.monotonic()
        expected = seq + 1
        for index, change in enumerate(changes):
            if change.seq != expected:
                first_seen = self._gap_seen.setdefault(expected, now)
                if now - first_seen < self._gap_grace_s:
                    return changes[:index]
            expected = change.seq + 1
        self._gap_seen = {n: t for n, t in self._gap_seen.items() if n > seq and now - t < 10 * self._gap_grace_s}
        return changes

    async def forget_changes_through(self, seq: int) -> None:
        sql = f"DELETE FROM {self._table} WHERE seq <= ?"  # noqa: S608 - names from KeptTables
        await self._store.write(lambda db: db.execute(sql, [seq]))
