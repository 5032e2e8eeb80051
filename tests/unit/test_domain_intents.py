"""Pure rule tests for payment-intent events (domain/intents.py): fixed times, no storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from epos_bridge.domain import intents
from epos_bridge.domain.events import PaymentStatusChanged
from epos_bridge.domain.intents import StoredIntentEvent
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.protocol.entities import CaptureMode, PaymentIntentEvent, PaymentIntentStatus
from epos_bridge.protocol.params import HandleEventParams

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
CAPTURED, REVERSED, AUTHORIZED = (
    PaymentIntentStatus.CAPTURED,
    PaymentIntentStatus.REVERSED,
    PaymentIntentStatus.AUTHORIZED,
)


def stored(
    event_id: str, status: PaymentIntentStatus, created: datetime, received: datetime = NOW
) -> StoredIntentEvent:
    return StoredIntentEvent(event_id, status, created, received)


def sent(event_id: str, status: PaymentIntentStatus, created: datetime) -> tuple[HandleEventParams, PaymentIntentEvent]:
    data = PaymentIntentEvent(payment_intent_id="pi_1", payment_status=status, capture_mode=CaptureMode.AUTO)
    params = HandleEventParams(
        id=event_id,
        account_id="acc",
        event="payment_intent.status_updated",
        data=data.model_dump(by_alias=True, mode="json"),
        created_at=created,
    )
    return params, data


class TestNewestStatus:
    def test_no_events_no_status(self) -> None:
        assert intents.newest_status([]) is None

    def test_the_newest_by_created_then_received_wins_whatever_the_arrival_order(self) -> None:
        late_created = stored("e2", REVERSED, NOW + S)
        early_created = stored("e1", CAPTURED, NOW, received=NOW + 5 * S)
        assert intents.newest_status([late_created, early_created]) is REVERSED
        same_created = [stored("e1", CAPTURED, NOW, NOW + S), stored("e2", REVERSED, NOW, NOW)]
        assert intents.newest_status(same_created) is CAPTURED

    def test_on_the_very_same_times_the_first_kept_stays(self) -> None:
        assert intents.newest_status([stored("e1", CAPTURED, NOW), stored("e2", REVERSED, NOW)]) is CAPTURED


class TestHandleEvent:
    def test_a_redelivery_changes_nothing(self) -> None:
        params, event = sent("e1", REVERSED, NOW)
        decision = intents.decide_intent_event(
            params, event, [stored("e1", CAPTURED, NOW)], RecordedIntent("7", 1000, status="Captured"), NOW
        )
        assert decision == intents.IntentEventDecision(store=None)
        assert intents.is_redelivery(params, [stored("e1", CAPTURED, NOW)])

    def test_a_new_status_is_kept_and_applied_to_the_recorded_payment(self) -> None:
        params, event = sent("e2", REVERSED, NOW + S)
        decision = intents.decide_intent_event(
            params, event, [stored("e1", CAPTURED, NOW)], RecordedIntent("7", 1000, status="Captured"), NOW + 2 * S
        )
        assert decision.store == stored("e2", REVERSED, NOW + S, NOW + 2 * S)
        assert decision.payment_status is REVERSED
        assert decision.events == (PaymentStatusChanged("7", NOW + 2 * S, "pi_1", REVERSED),)

    def test_an_older_event_arriving_late_is_kept_but_changes_no_payment(self) -> None:
        params, event = sent("e1", AUTHORIZED, NOW - S)
        decision = intents.decide_intent_event(
            params, event, [stored("e2", CAPTURED, NOW)], RecordedIntent("7", 1000, status="Captured"), NOW + S
        )
        assert decision.store is not None
        assert decision.payment_status is None and decision.events == ()

    def test_an_event_before_its_payment_is_kept_for_when_it_arrives(self) -> None:
        params, event = sent("e1", CAPTURED, NOW)
        decision = intents.decide_intent_event(params, event, [], None, NOW)
        assert decision.store is not None and decision.payment_status is None
