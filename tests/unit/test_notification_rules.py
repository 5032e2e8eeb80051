"""When staff get a desktop notification: every rule, driven by a fake clock (no Qt, no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from epos_bridge.config import BridgeSettings
from epos_bridge.domain.events import LockCreated, LockRefused, OrderFacts, PaymentRecorded
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.protocol.entities import Money
from epos_bridge.services.activity import PaymentLogEntry, payment_entry
from epos_bridge.services.notifications import Notice, NotificationRules, format_money, payment_message

START = datetime(2026, 11, 27, 12, tzinfo=UTC)
FACTS = OrderFacts(reference="T12-0007", display_name="Table 12", table_id="T12")


class FakeClock:
    """Time only moves when the test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Preferences:
    notifications_enabled: bool = True
    notify_each_payment: bool = True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prefs() -> Preferences:
    return Preferences()


@pytest.fixture
def rules(prefs: Preferences, clock: FakeClock) -> NotificationRules:
    return NotificationRules(prefs, clock)


def status(state: ConnectionState, clock: FakeClock, error: str | None = None) -> ConnectionStatus:
    return ConnectionStatus(state=state, since=clock(), last_error=error)


def payment(intent: str = "pi_1", tips: int | None = 500) -> PaymentRecorded:
    return PaymentRecorded(
        "7",
        START,
        intent,
        Money(value=4000, currency_code="GBP"),
        Money(value=tips, currency_code="GBP") if tips is not None else None,
        order=FACTS,
    )


# --- offline for more than 30 s ---------------------------------------------------------------


def test_a_short_blip_says_nothing(rules: NotificationRules, clock: FakeClock) -> None:
    assert rules.on_status(status(ConnectionState.CONNECTED, clock)) is None
    assert rules.on_status(status(ConnectionState.DISCONNECTED, clock, "connection reset")) is None
    clock.advance(5)
    assert rules.on_status(status(ConnectionState.CONNECTING, clock)) is None
    clock.advance(2)
    assert rules.tick(clock()) is None
    assert rules.on_status(status(ConnectionState.CONNECTED, clock)) is None  # no "back online" for a blip
    assert rules.attention is False


def test_offline_past_30_seconds_notifies_once_per_outage(rules: NotificationRules, clock: FakeClock) -> None:
    rules.on_status(status(ConnectionState.CONNECTED, clock))
    rules.on_status(status(ConnectionState.DISCONNECTED, clock, "connection refused"))
    assert rules.tick(clock.advance(30)) is None  # exactly 30 s is still within the grace time
    assert rules.attention is False
    notice = rules.tick(clock.advance(1))
    assert notice is not None
    assert notice.level == "warning"
    assert notice.title == "Dojo connection lost"
    assert "31 s" in notice.message
    assert "connection refused" in notice.message
    assert rules.attention is True
    # Reconnect attempts during the same outage do not notify again.
    rules.on_status(status(ConnectionState.CONNECTING, clock))
    rules.on_status(status(ConnectionState.DISCONNECTED, clock, "connection refused"))
    assert rules.tick(clock.advance(60)) is None


def test_back_online_after_an_outage_notice(rules: NotificationRules, clock: FakeClock) -> None:
    rules.on_status(status(ConnectionState.DISCONNECTED, clock))
    assert rules.tick(clock.advance(45)) is not None
    back = rules.on_status(status(ConnectionState.CONNECTED, clock))
    assert back is not None
    assert (back.title, back.level) == ("Back online", "info")
    assert rules.attention is False
    # A second outage is a new outage: told again.
    rules.on_status(status(ConnectionState.DISCONNECTED, clock))
    assert rules.tick(clock.advance(31)) is not None


def test_a_late_status_report_can_itself_carry_the_offline_notice(rules: NotificationRules, clock: FakeClock) -> None:
    rules.on_status(status(ConnectionState.DISCONNECTED, clock))
    clock.advance(40)
    notice = rules.on_status(status(ConnectionState.CONNECTING, clock))
    assert notice is not None
    assert notice.title == "Dojo connection lost"


def test_stopping_is_not_an_outage(rules: NotificationRules, clock: FakeClock) -> None:
    rules.on_status(status(ConnectionState.CONNECTED, clock))
    rules.on_status(status(ConnectionState.STOPPING, clock))
    assert rules.tick(clock.advance(120)) is None
    assert rules.attention is False


# --- key rejected -----------------------------------------------------------------------------------


def test_a_rejected_key_notifies_at_once_and_only_once(rules: NotificationRules, clock: FakeClock) -> None:
    notice = rules.on_status(status(ConnectionState.AUTH_FAILED, clock, "handshake refused (401)"))
    assert notice is not None
    assert notice.level == "critical"
    assert "API key" in notice.title
    assert "401" in notice.message
    assert rules.attention is True
    # The session retries slowly: connecting → auth_failed again must stay quiet,
    for _ in range(3):
        rules.on_status(status(ConnectionState.CONNECTING, clock))
        assert rules.on_status(status(ConnectionState.AUTH_FAILED, clock, "handshake refused (401)")) is None
        # and the outage rule does not repeat what the key notice already said.
        assert rules.tick(clock.advance(60)) is None
    back = rules.on_status(status(ConnectionState.CONNECTED, clock))
    assert back is not None
    assert back.title == "Back online"
    assert rules.attention is False
    # Once it has recovered, a new rejection is news again.
    assert rules.on_status(status(ConnectionState.AUTH_FAILED, clock)) is not None


def test_new_settings_let_a_still_rejected_key_be_told_again(
    rules: NotificationRules, clock: FakeClock, prefs: Preferences
) -> None:
    assert rules.on_status(status(ConnectionState.AUTH_FAILED, clock)) is not None
    rules.update_preferences(prefs)  # the user saved a new key in Settings
    rules.on_status(status(ConnectionState.CONNECTING, clock))
    assert rules.on_status(status(ConnectionState.AUTH_FAILED, clock)) is not None


# --- payments -----------------------------------------------------------------------------------


def test_each_recorded_payment_is_told_in_staff_words(rules: NotificationRules) -> None:
    notice = rules.on_domain_event(payment())
    assert notice == Notice("Payment recorded", "£40.00 + £5.00 tip — T12-0007 (Table 12)", "info")


def test_a_payment_is_told_once_even_when_event_and_log_entry_both_arrive(rules: NotificationRules) -> None:
    event = payment()
    assert rules.on_domain_event(event) is not None
    assert rules.on_payment(payment_entry(event)) is None
    # A later status change of the same payment (e.g. reversed) is not a new payment.
    reversed_entry = PaymentLogEntry(START, "7", "pi_1", 4000, "GBP", "Reversed")
    assert rules.on_payment(reversed_entry) is None
    assert rules.on_payment(payment_entry(payment("pi_2", tips=None))) == Notice(
        "Payment recorded", "£40.00 — T12-0007 (Table 12)", "info"
    )


def test_payment_notices_follow_the_per_payment_switch(rules: NotificationRules, prefs: Preferences) -> None:
    prefs.notify_each_payment = False
    assert rules.on_domain_event(payment("pi_1")) is None
    prefs.notify_each_payment = True  # applies at once, no restart
    assert rules.on_domain_event(payment("pi_2")) is not None


def test_payment_message_without_reference_names_the_order() -> None:
    entry = PaymentLogEntry(START, "42", "pi_9", 1250, "EUR", "Recorded")
    assert payment_message(entry) == "€12.50 — order 42"
    assert format_money(123456, "GBP") == "£1,234.56"
    assert format_money(500, "JPY") == "500 JPY"
    assert format_money(-250, "CHF") == "-2.50 CHF"


# --- lock conflicts ---------------------------------------------------------------------------


def test_a_lock_conflict_names_the_table_and_the_till(rules: NotificationRules) -> None:
    rules.on_domain_event(LockCreated("7", START, "L1", START + timedelta(seconds=60), order=FACTS))
    notice = rules.on_domain_event(LockRefused("7", START, "L2", "the order is open on till TILL-2"))
    assert notice == Notice(
        "Order could not be locked", "Table 12: Dojo could not lock the order — open on till TILL-2", "warning"
    )


def test_a_conflict_uses_the_injected_order_lookup(prefs: Preferences, clock: FakeClock) -> None:
    rules = NotificationRules(prefs, clock, order_facts={"9": FACTS}.get)
    notice = rules.on_domain_event(LockRefused("9", START, None, "the order is held by another lock (L1)"))
    assert notice is not None
    assert notice.message == "Table 12: Dojo could not lock the order — held by another lock (L1)"
    clock.advance(31)
    unknown = rules.on_domain_event(LockRefused("55", START, None, "the order is open on till TILL-1"))
    assert unknown is not None
    assert unknown.message.startswith("Order 55: ")


def test_a_card_machine_retrying_a_lock_tells_staff_once(rules: NotificationRules, clock: FakeClock) -> None:
    told = []
    for _ in range(20):  # Pay at Table retries every few seconds while the order is open on a till
        told.append(rules.on_domain_event(LockRefused("7", START, "L2", "the order is open on till TILL-2")))
        clock.advance(5)

    assert len([notice for notice in told if notice is not None]) == 1
    assert rules.attention is True  # every refusal still counts for the Locks tab
    clock.advance(5 * 60)
    assert rules.on_domain_event(LockRefused("7", START, "L3", "the order is open on till TILL-2")) is not None


def test_many_orders_refused_at_once_make_one_notice_then_a_summary(rules: NotificationRules, clock: FakeClock) -> None:
    told = [
        rules.on_domain_event(LockRefused(str(order), START, None, "the order is open on till TILL-2"))
        for order in range(1, 6)
    ]
    assert [notice is not None for notice in told] == [True, False, False, False, False]

    clock.advance(31)
    later = rules.on_domain_event(LockRefused("6", START, None, "the order is open on till TILL-2"))
    assert later is not None
    assert "(and 4 more order(s) since the last notice: see the Locks tab)" in later.message


def test_verifys_own_lock_conflicts_are_not_told(rules: NotificationRules) -> None:
    rules.verification_running(True)
    assert rules.on_domain_event(LockRefused("7", START, "L2", "the order is held by another lock (L1)")) is None
    assert rules.attention is False
    rules.verification_running(False)
    assert rules.on_domain_event(LockRefused("7", START, "L2", "the order is held by another lock (L1)")) is not None


def test_an_unseen_conflict_needs_attention_until_acknowledged(rules: NotificationRules) -> None:
    assert rules.attention is False
    rules.on_domain_event(LockRefused("7", START, "L2", "the order is open on till TILL-2"))
    assert rules.attention is True
    rules.acknowledge()
    assert rules.attention is False


def test_acknowledging_does_not_hide_an_ongoing_outage(rules: NotificationRules, clock: FakeClock) -> None:
    rules.on_status(status(ConnectionState.DISCONNECTED, clock))
    clock.advance(31)
    assert rules.attention is True
    rules.acknowledge()
    assert rules.attention is True


# --- switched off ---------------------------------------------------------------------------------


def test_notifications_off_silences_every_rule_but_attention_stays_truthful(
    rules: NotificationRules, clock: FakeClock, prefs: Preferences
) -> None:
    prefs.notifications_enabled = False
    assert rules.on_status(status(ConnectionState.AUTH_FAILED, clock)) is None
    assert rules.attention is True
    assert rules.on_status(status(ConnectionState.DISCONNECTED, clock)) is None
    assert rules.tick(clock.advance(60)) is None
    assert rules.on_domain_event(payment()) is None
    assert rules.on_domain_event(LockRefused("7", START, "L2", "the order is open on till TILL-2")) is None
    assert rules.attention is True
    # Nothing was told, so the recovery is not told either.
    assert rules.on_status(status(ConnectionState.CONNECTED, clock)) is None


def test_turning_notifications_back_on_mid_outage_tells_it(
    rules: NotificationRules, clock: FakeClock, prefs: Preferences
) -> None:
    prefs.notifications_enabled = False
    rules.on_status(status(ConnectionState.DISCONNECTED, clock))
    assert rules.tick(clock.advance(40)) is None
    prefs.notifications_enabled = True
    assert rules.tick(clock.advance(1)) is not None


def test_the_real_settings_model_is_accepted_as_preferences(clock: FakeClock) -> None:
    settings = BridgeSettings(notify_each_payment=True)
    rules = NotificationRules(settings, clock)
    assert rules.on_domain_event(payment()) is not None
