"""Payment-intent event rules (contract §3.22, §4.7).

Dojo delivers each event at least once, and not necessarily in order. The POS keeps every event
it was sent (so a redelivery is recognised by its id and changes nothing), and a recorded
payment carries the status of the *newest* event of its intent, so events that arrive out of
order still settle on the right status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from epos_bridge.domain.events import DomainEvent, PaymentStatusChanged
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.protocol.entities import PaymentIntentEvent, PaymentIntentStatus
from epos_bridge.protocol.params import HandleEventParams


@dataclass(frozen=True)
class StoredIntentEvent:
    """What the rules need of one event the POS keeps. A stored time the bridge cannot read is
    given as the earliest time there is (it never outranks a readable one)."""

    event_id: str
    payment_status: PaymentIntentStatus
    created_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class IntentEventDecision:
    """``store``: the event to keep, ``None`` for a redelivery (write nothing at all).

    ``payment_status``: the recorded payment's new status, ``None`` to leave it as it is.
    """

    store: StoredIntentEvent | None
    payment_status: PaymentIntentStatus | None = None
    events: tuple[DomainEvent, ...] = ()


def newest_status(events: Iterable[StoredIntentEvent]) -> PaymentIntentStatus | None:
    """The status of the newest event, by ``createdAt`` then ``receivedAt``.

    Among events with the very same times the first kept wins: a later one must be newer to
    change the status. ``None`` when there are no events.
    """
    newest: StoredIntentEvent | None = None
    for event in events:
        if newest is None or (event.created_at, event.received_at) > (newest.created_at, newest.received_at):
            newest = event
    return newest.payment_status if newest is not None else None


def is_redelivery(params: HandleEventParams, history: Sequence[StoredIntentEvent]) -> bool:
    """The POS already holds this event (Dojo delivers at least once): it changes nothing."""
    return any(stored.event_id == params.id for stored in history)


def decide_intent_event(
    params: HandleEventParams,
    event: PaymentIntentEvent,
    history: Sequence[StoredIntentEvent],
    payment: RecordedIntent | None,
    now: datetime,
) -> IntentEventDecision:
    """``history``: the events the POS holds for this intent (and any other holding this event id);
    ``payment``: the payment recorded under the intent, if there is one yet.

    A redelivery (its event id already held) changes nothing. Otherwise the event is kept, and a
    payment already recorded under the intent takes the newest status its events give; an event
    that arrives before its payment is kept and applied when the payment is recorded (it is then
    the known status :func:`epos_bridge.domain.payments.decide_payment` records).
    """
    if is_redelivery(params, history):
        return IntentEventDecision(store=None)
    received = StoredIntentEvent(params.id, event.payment_status, params.created_at, now)
    status = newest_status([*history, received])
    if payment is None or status is None or payment.status == status.value:
        return IntentEventDecision(store=received)
    changed = PaymentStatusChanged(payment.order_id, now, event.payment_intent_id, status)
    return IntentEventDecision(store=received, payment_status=status, events=(changed,))
