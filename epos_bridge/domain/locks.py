"""Order-lock rules (contract §2.2, §3.5-3.7).

While a lock is active only Dojo may change the order. An expired lock counts as released.
Each ``decide_*`` function takes the facts an adapter read inside its write transaction and
returns what to write plus the events to publish; it raises the contract error otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from epos_bridge.domain.errors import Conflict
from epos_bridge.domain.events import (
    DomainEvent,
    LockCreated,
    LockExpired,
    LockExtended,
    LockRefused,
    LockReleased,
    OrderFacts,
)
from epos_bridge.protocol.entities import CLOSED_ORDER_STATUSES, OrderStatus
from epos_bridge.protocol.params import RequestHeaders
from epos_bridge.protocol.times import LONG_AGO


@dataclass(frozen=True)
class HeldLock:
    """The lock row an adapter stores: at most one per order."""

    lock_id: str
    expires_at: datetime
    locked_at: datetime
    requester: RequestHeaders = field(default_factory=RequestHeaders)

    def is_active(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class LockableOrder:
    """``updated_at`` is ``None`` when the stored time cannot be read: treated as changed."""

    order_id: str
    status: OrderStatus
    updated_at: datetime | None
    open_at_till: str | None = None
    facts: OrderFacts = field(default_factory=OrderFacts)


@dataclass(frozen=True)
class LockChange:
    """``store`` replaces the order's lock row; ``remove`` deletes it; neither: leave it."""

    store: HeldLock | None = None
    remove: bool = False
    events: tuple[DomainEvent, ...] = ()

    @property
    def changes_anything(self) -> bool:
        return self.store is not None or self.remove


def stored_lock(
    lock_id: str, expires_at: datetime | None, locked_at: datetime | None, requester: RequestHeaders
) -> HeldLock:
    """The lock an adapter read. A time the bridge cannot read is given as ``None``: an
    unreadable expiry counts as expired (never a lock held for ever, never a bricked order), and
    an unreadable start as the expiry."""
    expires = expires_at if expires_at is not None else LONG_AGO
    return HeldLock(lock_id, expires, locked_at if locked_at is not None else expires, requester)


def active_lock(current: HeldLock | None, now: datetime) -> HeldLock | None:
    return current if current is not None and current.is_active(now) else None


def decide_create(
    order: LockableOrder,
    current: HeldLock | None,
    lock_id: str,
    expiry: datetime,
    now: datetime,
    requester: RequestHeaders,
) -> LockChange:
    holder = active_lock(current, now)
    if holder is not None and holder.lock_id == lock_id:
        # contract §3.5 (rec): a repeat of the same lockId is success; take the newer expiry.
        # Nothing to write when it is not newer: a replay is answered from what is stored.
        if expiry <= holder.expires_at:
            return LockChange()
        return LockChange(store=HeldLock(lock_id, expiry, holder.locked_at, holder.requester))
    refusal = _refusal_reason(order, holder)
    if refusal is not None:
        raise _refused(order, lock_id, refusal, requester, now)
    events: list[DomainEvent] = []
    if current is not None and current.lock_id != lock_id:
        events.append(LockExpired(order.order_id, now, current.lock_id))
    new_lock = HeldLock(lock_id, expiry, now, requester)
    events.append(LockCreated(order.order_id, now, lock_id, expiry, requester, order.facts))
    return LockChange(store=new_lock, events=tuple(events))


def decide_extend(
    order: LockableOrder,
    current: HeldLock | None,
    lock_id: str,
    expiry: datetime,
    now: datetime,
    requester: RequestHeaders,
) -> LockChange:
    if current is not None and current.lock_id == lock_id:
        if current.is_active(now):
            if expiry == current.expires_at:
                return LockChange()  # a replay: nothing to write
            return LockChange(
                store=HeldLock(lock_id, expiry, current.locked_at, current.requester),
                events=(LockExtended(order.order_id, now, lock_id, expiry),),
            )
        # contract §3.7 (rec): expired but nobody touched the order since -> re-take it.
        untouched = order.updated_at is not None and order.updated_at <= current.expires_at
        if untouched and order.open_at_till is None:
            return LockChange(
                store=HeldLock(lock_id, expiry, now, current.requester),
                events=(LockExtended(order.order_id, now, lock_id, expiry),),
            )
        raise _refused(order, lock_id, "the lock expired and the order was changed since", requester, now)
    holder = active_lock(current, now)
    if holder is not None:
        raise _refused(order, lock_id, f"the order is held by another lock ({holder.lock_id})", requester, now)
    raise _refused(order, lock_id, f"lock {lock_id} is not held on this order", requester, now)


LockDecision = Callable[[LockableOrder, HeldLock | None, str, datetime, datetime, RequestHeaders], LockChange]
""":func:`decide_create` or :func:`decide_extend`: adapters run either through one write path."""


def decide_delete(order_id: str, current: HeldLock | None, lock_id: str, now: datetime) -> LockChange:
    """Idempotent (contract §3.6 (rec)): an unknown or released lock still succeeds."""
    if current is not None and current.lock_id == lock_id:
        return LockChange(remove=True, events=(LockReleased(order_id, now, lock_id),))
    return LockChange()


def _refusal_reason(order: LockableOrder, holder: HeldLock | None) -> str | None:
    if order.status in CLOSED_ORDER_STATUSES:
        return f"the order is {order.status.value}"
    if order.open_at_till:
        return f"the order is open on till {order.open_at_till}"
    if holder is not None:
        return f"the order is held by another lock ({holder.lock_id})"
    return None


def _refused(
    order: LockableOrder, lock_id: str | None, reason: str, requester: RequestHeaders, now: datetime
) -> Conflict:
    return Conflict(
        f"order {order.order_id} cannot be locked: {reason}",
        events=(LockRefused(order.order_id, now, lock_id, reason, requester),),
    )
