"""What staff see happening: the lock board and the payment-log entries, built from domain events.

Pure bookkeeping, no I/O and no Qt: the app feeds it the events the rules recorded, the payment
log store persists its payment entries, and the UI renders both.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from epos_bridge.domain.captures import NOT_ON_TILL, CaptureNotOnTill
from epos_bridge.domain.events import (
    DomainEvent,
    LockCreated,
    LockExpired,
    LockExtended,
    LockRefused,
    LockReleased,
    OrderFacts,
    PaymentRecorded,
    PaymentStatusChanged,
)
from epos_bridge.domain.terminal_sessions import PAY_AT_COUNTER
from epos_bridge.protocol.entities import NON_COUNTING_INTENT_STATUSES
from epos_bridge.protocol.params import RequestHeaders


@dataclass(frozen=True)
class HeldLockView:
    order_id: str
    lock_id: str
    expires_at: datetime
    locked_at: datetime
    order: OrderFacts
    requester: RequestHeaders

    def seconds_left(self, now: datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))


class LockActivity(StrEnum):
    CREATED = "created"
    EXTENDED = "extended"
    RELEASED = "released"
    EXPIRED = "expired"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class LockHistoryEntry:
    at: datetime
    activity: LockActivity
    order_id: str
    lock_id: str | None
    detail: str = ""
    order: OrderFacts = field(default_factory=OrderFacts)


class LockBoard:
    """Current Dojo locks with their expiry, and a bounded history of what happened to them."""

    def __init__(self, history_size: int = 500) -> None:
        self.current: dict[str, HeldLockView] = {}
        self.history: deque[LockHistoryEntry] = deque(maxlen=history_size)

    def apply(self, event: DomainEvent) -> bool:
        """Returns True when the board changed."""
        if isinstance(event, LockCreated):
            self.current[event.order_id] = HeldLockView(
                event.order_id, event.lock_id, event.expires_at, event.at, event.order, event.requester
            )
            self._log(event, LockActivity.CREATED, event.lock_id, _who(event.requester), event.order)
        elif isinstance(event, LockExtended):
            held = self.current.get(event.order_id)
            if held is not None and held.lock_id == event.lock_id:
                self.current[event.order_id] = replace(held, expires_at=event.expires_at)
            self._log(event, LockActivity.EXTENDED, event.lock_id, "", self._facts(event.order_id))
        elif isinstance(event, LockReleased):
            facts = self._facts(event.order_id)
            self._drop(event.order_id, event.lock_id)
            self._log(event, LockActivity.RELEASED, event.lock_id, "", facts)
        elif isinstance(event, LockExpired):
            facts = self._facts(event.order_id)
            self._drop(event.order_id, event.lock_id)
            self._log(event, LockActivity.EXPIRED, event.lock_id, "replaced after expiry", facts)
        elif isinstance(event, LockRefused):
            self._log(event, LockActivity.CONFLICT, event.lock_id, event.reason, self._facts(event.order_id))
        else:
            return False
        return True

    def expire(self, now: datetime) -> list[HeldLockView]:
        """Move locks whose expiry passed to the history (an expired lock counts as released)."""
        gone = [held for held in self.current.values() if held.expires_at <= now]
        for held in gone:
            del self.current[held.order_id]
            self.history.append(
                LockHistoryEntry(now, LockActivity.EXPIRED, held.order_id, held.lock_id, "expiry passed", held.order)
            )
        return gone

    def _facts(self, order_id: str) -> OrderFacts:
        held = self.current.get(order_id)
        return held.order if held else OrderFacts()

    def _drop(self, order_id: str, lock_id: str) -> None:
        held = self.current.get(order_id)
        if held is not None and held.lock_id == lock_id:
            del self.current[order_id]

    def _log(
        self, event: DomainEvent, activity: LockActivity, lock_id: str | None, detail: str, facts: OrderFacts
    ) -> None:
        self.history.append(LockHistoryEntry(event.at, activity, event.order_id, lock_id, detail, facts))


def _who(requester: RequestHeaders) -> str:
    parts = [requester.dojo_requesting_product, requester.device_id, requester.waiter_id]
    return " · ".join(p for p in parts if p)


@dataclass(frozen=True)
class PaymentLogEntry:
    """One line of the live payment log; ``status`` follows Dojo's payment-intent events."""

    at: datetime
    order_id: str
    payment_intent_id: str
    amount_value: int
    currency: str
    status: str
    tips_value: int | None = None
    order_reference: str | None = None
    display_name: str | None = None
    table_id: str | None = None
    product: str | None = None
    device_id: str | None = None


def _entry(event: PaymentRecorded | CaptureNotOnTill, status: str) -> PaymentLogEntry:
    """What every payment event's line in the log says; each kind adds its own details."""
    amount = event.amount
    return PaymentLogEntry(
        event.at, event.order_id, event.payment_intent_id, amount.value, amount.currency_code, status
    )


def payment_entry(event: PaymentRecorded) -> PaymentLogEntry:
    order, requester = event.order, event.requester
    return replace(
        _entry(event, "Recorded"),
        tips_value=event.tips.value if event.tips else None,
        order_reference=order.reference,
        display_name=order.display_name,
        table_id=order.table_id,
        product=requester.dojo_requesting_product,
        device_id=requester.device_id,
    )


def not_on_till_entry(event: CaptureNotOnTill) -> PaymentLogEntry:
    """A captured card the POS refused (pay at counter): kept as :data:`NOT_ON_TILL`."""
    return replace(
        _entry(event, NOT_ON_TILL),
        order_reference=event.order_reference,
        display_name=event.display_name,
        product=PAY_AT_COUNTER,
        device_id=event.terminal_id,
    )


PaymentListener = Callable[[PaymentLogEntry], None]

_NOT_KEPT = frozenset({*(status.value for status in NON_COUNTING_INTENT_STATUSES), NOT_ON_TILL})
"""Payment-log statuses whose money is not the venue's takings: reversed, refunded, cancelled,
or captured but not on the till (refunded or landed later, it is counted where it ends up)."""


@dataclass(frozen=True)
class Takings:
    """What card payments through Dojo brought in, in one currency (minor units)."""

    currency: str
    amount: int
    tips: int
    payments: int


def takings(entries: Iterable[PaymentLogEntry]) -> list[Takings]:
    """The payment log's total: payments that still count, per currency (the largest first)."""
    totals: dict[str, list[int]] = {}
    for entry in entries:
        if entry.status in _NOT_KEPT:
            continue
        total = totals.setdefault(entry.currency.upper(), [0, 0, 0])
        total[0] += entry.amount_value
        total[1] += entry.tips_value or 0
        total[2] += 1
    found = [Takings(currency, amount, tips, count) for currency, (amount, tips, count) in totals.items()]
    return sorted(found, key=lambda t: (-t.payments, t.currency))


def status_change(event: PaymentStatusChanged) -> tuple[str, str]:
    """(paymentIntentId, new status) for the payment log."""
    return event.payment_intent_id, event.status.value
