"""What happened, recorded by the rules and published by the services.

The UI's payment log and lock view, and later the POS-event outbox, subscribe to these; the
rules never call any of them (cosmicpython's "record, don't call out").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from epos_bridge.protocol.entities import Money, PaymentIntentStatus
from epos_bridge.protocol.params import RequestHeaders


@dataclass(frozen=True)
class DomainEvent:
    order_id: str
    at: datetime


@dataclass(frozen=True)
class OrderFacts:
    """How staff recognise the order in the UI."""

    reference: str | None = None
    display_name: str | None = None
    table_id: str | None = None


@dataclass(frozen=True)
class LockCreated(DomainEvent):
    lock_id: str
    expires_at: datetime
    requester: RequestHeaders = field(default_factory=RequestHeaders)
    order: OrderFacts = field(default_factory=OrderFacts)


@dataclass(frozen=True)
class LockExtended(DomainEvent):
    lock_id: str
    expires_at: datetime


@dataclass(frozen=True)
class LockReleased(DomainEvent):
    lock_id: str


@dataclass(frozen=True)
class LockExpired(DomainEvent):
    """A stale lock was found and dropped when someone else needed the order."""

    lock_id: str


@dataclass(frozen=True)
class LockRefused(DomainEvent):
    """A lock or payment was refused because the order is held elsewhere."""

    lock_id: str | None
    reason: str
    requester: RequestHeaders = field(default_factory=RequestHeaders)


@dataclass(frozen=True)
class PaymentRecorded(DomainEvent):
    payment_intent_id: str
    amount: Money
    tips: Money | None
    requester: RequestHeaders = field(default_factory=RequestHeaders)
    order: OrderFacts = field(default_factory=OrderFacts)


@dataclass(frozen=True)
class PaymentStatusChanged(DomainEvent):
    """A Dojo payment-intent event changed a recorded payment (e.g. it was reversed)."""

    payment_intent_id: str
    status: PaymentIntentStatus
