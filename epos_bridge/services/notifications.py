"""When staff get a desktop notification, decided without Qt, I/O or a real clock.

The tray app feeds :class:`NotificationRules` what the bridge reports (connection statuses,
domain events, payment-log entries) and a timer tick; each call answers with the one
:class:`Notice` to show, or ``None``. The rules keep the promises staff rely on:

* **Offline** — only after the connection has been down for more than 30 s, once per outage,
  and a "back online" notice when it recovers after such a notice (a 2 s blip says nothing).
* **Key rejected** (``auth_failed``) — at once, once, until the connection recovers or new
  settings are applied (the session keeps retrying; each retry must not notify again).
* **Each payment** — only when ``notify_each_payment`` is on; once per payment intent even if
  both the domain event and the payment-log entry arrive.
* **Lock conflict** — a card machine could not lock an order (e.g. open on a till): once per
  order per 5 minutes (a card machine retrying every few seconds tells it once), and at most one
  notice per 30 s for the venue (the next one says how many more were held back). None while
  Verify runs: the EPOS tester locks orders on purpose.
* **A captured card not on the till** — at once, once per terminal session, critical, and
  :attr:`NotificationRules.attention` stays on until it lands; then a notice that it did.
* ``notifications_enabled`` off silences everything; the state is still followed, so
  :attr:`NotificationRules.attention` (the tray icon's "look at me") stays truthful.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from epos_bridge.domain.events import DomainEvent, LockCreated, LockRefused, OrderFacts, PaymentRecorded
from epos_bridge.services.activity import PaymentLogEntry, payment_entry

Level = Literal["info", "warning", "critical"]
Clock = Callable[[], datetime]

OFFLINE_GRACE = timedelta(seconds=30)
"""contract-free house rule: shorter outages are reconnects staff need not hear about."""
LOCK_NOTICE_PER_ORDER = timedelta(minutes=5)
LOCK_NOTICE_SPACING = timedelta(seconds=30)
"""House rules: a lock storm (a card machine retrying, a busy evening) is told once, not per retry."""

_REMEMBERED_PAYMENTS = 1000
_REMEMBERED_ORDERS = 500

CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}
"""How staff write a currency; any other is written as its code (``40.00 CHF``)."""
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "ISK", "HUF", "CLP", "VND"})


@dataclass(frozen=True)
class Notice:
    """One desktop notification: what the tray shows, already in staff's words."""

    title: str
    message: str
    level: Level = "info"


class ConnectionReport(Protocol):
    """What the rules read of a connection status (``gateway.connection_state.ConnectionStatus``).

    A protocol rather than an import: services sit below the gateway in the layering.
    """

    @property
    def state(self) -> str: ...  # a ConnectionState (a StrEnum): "connected", "auth_failed", …

    @property
    def since(self) -> datetime: ...

    @property
    def last_error(self) -> str | None: ...


CONNECTED = "connected"
AUTH_FAILED = "auth_failed"
STOPPING = "stopping"


class NotificationPreferences(Protocol):
    """The two settings the rules read (:class:`epos_bridge.config.BridgeSettings` has both)."""

    @property
    def notifications_enabled(self) -> bool: ...

    @property
    def notify_each_payment(self) -> bool: ...


def currency_symbol(currency: str) -> str | None:
    """``£`` for GBP; None for a currency without a known symbol."""
    return CURRENCY_SYMBOLS.get(currency.upper())


def format_money(value: int, currency: str) -> str:
    """Minor units → ``£40.00`` (or ``40.00 CHF`` for a currency without a known symbol).

    The one money format: notices, the verification report and every widget (through
    :mod:`epos_bridge.ui.words`, which re-exports it: services may not import the UI).
    """
    decimals = 0 if currency.upper() in _ZERO_DECIMAL_CURRENCIES else 2
    sign = "-" if value < 0 else ""
    whole, minor = divmod(abs(value), 10**decimals)
    number = f"{whole:,}.{minor:0{decimals}d}" if decimals else f"{whole:,}"
    symbol = currency_symbol(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def payment_message(entry: PaymentLogEntry) -> str:
    """``£40.00 + £5.00 tip — T12-0007 (Table 12)``: amount, tip, then how staff know the order."""
    text = format_money(entry.amount_value, entry.currency)
    if entry.tips_value:
        text += f" + {format_money(entry.tips_value, entry.currency)} tip"
    label = entry.order_reference or f"order {entry.order_id}"
    if entry.display_name:
        label += f" ({entry.display_name})"
    return f"{text} — {label}"


class CaptureReport(Protocol):
    """What the rules read of a terminal-session update (``counter.SessionUpdate``)."""

    @property
    def session_id(self) -> str: ...

    @property
    def unrecorded_capture(self) -> bool: ...

    @property
    def recorded(self) -> bool: ...

    @property
    def final(self) -> bool: ...

    @property
    def amount(self) -> Any: ...  # a Money, or None

    @property
    def order_id(self) -> str | None: ...

    @property
    def order_label(self) -> str | None: ...


def capture_not_on_till_words(update: CaptureReport) -> str:
    """``£79.83 for Table 12 is not on the till yet — do not charge it again.`` Staff find the
    order by how the till names it, never by a terminal number."""
    amount = update.amount
    money = format_money(amount.value, amount.currency_code) if amount is not None else "A card payment"
    order = update.order_label or (f"order {update.order_id}" if update.order_id else None)
    for_order = f" for {order}" if order else ""
    return (
        f"{money}{for_order} is not on the till yet — do not charge it again. "
        "It is added as soon as the POS database can be written."
    )


def _order_label(order_id: str, facts: OrderFacts | None) -> str:
    if facts is not None and facts.display_name:
        return facts.display_name
    if facts is not None and facts.reference:
        return facts.reference
    return f"Order {order_id}"


def _conflict_reason(reason: str) -> str:
    # The domain says "the order is open on till TILL-2"; the notice already names the order.
    return reason.removeprefix("the order is ").strip()


class NotificationRules:
    """Decides which notice (if any) each report deserves. Not thread-safe: feed it from one loop.

    ``clock`` must return timezone-aware UTC (as :class:`ConnectionStatus` ``since`` is).
    ``order_facts`` may look up how staff know an order (e.g. the lock board); the rules also
    remember the facts carried by lock and payment events they have seen.
    """

    def __init__(
        self,
        preferences: NotificationPreferences,
        clock: Clock,
        *,
        offline_grace: timedelta = OFFLINE_GRACE,
        order_facts: Callable[[str], OrderFacts | None] | None = None,
    ) -> None:
        self._preferences = preferences
        self._clock = clock
        self._grace = offline_grace
        self._lookup = order_facts
        self._state: str | None = None
        self._last_error: str | None = None
        self._offline_since: datetime | None = None
        self._outage_announced = False
        self._auth_announced = False
        self._unseen_conflicts = 0
        self._announced_payments: OrderedDict[str, None] = OrderedDict()
        self._facts: OrderedDict[str, OrderFacts] = OrderedDict()
        self._captures_off_till: set[str] = set()
        self._verifying = 0
        self._conflicts_told: OrderedDict[str, datetime] = OrderedDict()
        self._last_conflict_notice: datetime | None = None
        self._conflicts_held_back = 0

    # --- settings ---------------------------------------------------------------------------

    def update_preferences(self, preferences: NotificationPreferences) -> None:
        """New settings were applied: take them at once, and let a still-rejected key be told again."""
        self._preferences = preferences
        self._auth_announced = False

    @property
    def _enabled(self) -> bool:
        return bool(self._preferences.notifications_enabled)

    # --- connection ---------------------------------------------------------------------------

    def on_status(self, status: ConnectionReport) -> Notice | None:
        """Follow the connection; answers the key-rejected or back-online notice when due."""
        self._state = str(status.state)
        self._last_error = status.last_error
        if self._state == CONNECTED:
            return self._recovered()
        if self._state == STOPPING:
            # Quitting is not an outage: forget it without a "back online" later.
            self._offline_since = None
            self._outage_announced = False
            return None
        if self._offline_since is None:
            self._offline_since = status.since  # the outage began when the connection left "connected"
        if self._state == AUTH_FAILED:
            return self._auth_failed(status)
        return self.tick(self._clock())

    def tick(self, now: datetime) -> Notice | None:
        """Call every few seconds: answers the offline notice once the outage passes the grace time."""
        if not self._offline_too_long(now) or self._outage_announced or not self._enabled:
            return None
        if self._state == AUTH_FAILED and self._auth_announced:
            return None  # the key-rejected notice already told them why the bridge is offline
        self._outage_announced = True
        seconds = int((now - self._offline_since).total_seconds()) if self._offline_since else 0
        why = f" Last error: {self._last_error}" if self._last_error else ""
        return Notice(
            "Dojo connection lost",
            f"Not connected to Dojo for {seconds} s: card machines and Pay at Table cannot reach the till. "
            f"The bridge keeps retrying.{why}",
            "warning",
        )

    def _offline_too_long(self, now: datetime) -> bool:
        return self._offline_since is not None and now - self._offline_since > self._grace

    def _auth_failed(self, status: ConnectionReport) -> Notice | None:
        if self._auth_announced or not self._enabled:
            return None
        self._auth_announced = True
        detail = f" ({status.last_error})" if status.last_error else ""
        return Notice(
            "Dojo rejected the API key",
            f"Dojo refused the connection{detail}. Check the API key and software-house-id in Settings.",
            "critical",
        )

    def _recovered(self) -> Notice | None:
        told = self._outage_announced or self._auth_announced
        self._offline_since = None
        self._outage_announced = False
        self._auth_announced = False
        if told and self._enabled:
            return Notice("Back online", "Connected to Dojo again; card machines can reach the till.", "info")
        return None

    # --- domain events and payments ----------------------------------------------------------

    def verification_running(self, running: bool) -> None:
        """Verify opened (True) or closed (False): its flows' lock conflicts are not staff's business."""
        self._verifying = max(0, self._verifying + (1 if running else -1))

    def on_domain_event(self, event: DomainEvent) -> Notice | None:
        """A lock conflict always counts for :attr:`attention`; a recorded payment may notify."""
        if isinstance(event, LockCreated):
            self._remember(event.order_id, event.order)
        elif isinstance(event, PaymentRecorded):
            self._remember(event.order_id, event.order)
            return self._payment(event.payment_intent_id, payment_entry(event))
        elif isinstance(event, LockRefused):
            return self._lock_refused(event)
        return None

    def _lock_refused(self, event: LockRefused) -> Notice | None:
        if self._verifying:
            return None
        self._unseen_conflicts += 1
        if not self._enabled:
            return None
        now = self._clock()
        told = self._conflicts_told.get(event.order_id)
        if told is not None and now - told < LOCK_NOTICE_PER_ORDER:
            return None
        self._conflicts_told[event.order_id] = now
        self._conflicts_told.move_to_end(event.order_id)
        while len(self._conflicts_told) > _REMEMBERED_ORDERS:
            self._conflicts_told.popitem(last=False)
        if self._last_conflict_notice is not None and now - self._last_conflict_notice < LOCK_NOTICE_SPACING:
            self._conflicts_held_back += 1
            return None
        self._last_conflict_notice = now
        label = _order_label(event.order_id, self._facts_of(event.order_id))
        message = f"{label}: Dojo could not lock the order — {_conflict_reason(event.reason)}"
        if self._conflicts_held_back:
            message += f" (and {self._conflicts_held_back} more order(s) since the last notice: see the Locks tab)"
            self._conflicts_held_back = 0
        return Notice("Order could not be locked", message, "warning")

    def on_payment(self, entry: PaymentLogEntry) -> Notice | None:
        """A payment-log line (new, or a status change of one already told: not told again)."""
        self._remember(entry.order_id, OrderFacts(entry.order_reference, entry.display_name, entry.table_id))
        return self._payment(entry.payment_intent_id, entry)

    def _payment(self, payment_intent_id: str, entry: PaymentLogEntry) -> Notice | None:
        if payment_intent_id in self._announced_payments:
            return None
        self._announced_payments[payment_intent_id] = None
        while len(self._announced_payments) > _REMEMBERED_PAYMENTS:
            self._announced_payments.popitem(last=False)
        if not (self._enabled and self._preferences.notify_each_payment):
            return None
        return Notice("Payment recorded", payment_message(entry), "info")

    def _remember(self, order_id: str, facts: OrderFacts) -> None:
        if facts == OrderFacts():
            return
        self._facts[order_id] = facts
        self._facts.move_to_end(order_id)
        while len(self._facts) > _REMEMBERED_ORDERS:
            self._facts.popitem(last=False)

    def _facts_of(self, order_id: str) -> OrderFacts | None:
        found = self._lookup(order_id) if self._lookup is not None else None
        if found is not None and found != OrderFacts():
            return found
        return self._facts.get(order_id)

    # --- terminal sessions ---------------------------------------------------------------------

    def on_counter_update(self, update: CaptureReport) -> Notice | None:
        """A card taken at the counter that the POS does not hold yet: never silent."""
        if update.unrecorded_capture:
            if update.session_id in self._captures_off_till:
                return None
            self._captures_off_till.add(update.session_id)
            words = capture_not_on_till_words(update)
            # Not silenced by notifications_enabled: money may otherwise be taken twice.
            return Notice("Card payment not on the till yet", words, "critical")
        if update.session_id in self._captures_off_till and update.final:
            self._captures_off_till.discard(update.session_id)
            if update.recorded:
                return Notice("Card payment now on the till", "The card payment taken earlier is on the till.", "info")
        return None

    # --- attention -------------------------------------------------------------------------

    @property
    def attention(self) -> bool:
        """True while staff should look: offline past the grace time, key rejected, an unseen
        conflict, or a captured card not on the till yet."""
        return (
            self._state == AUTH_FAILED
            or self._offline_too_long(self._clock())
            or self._unseen_conflicts > 0
            or bool(self._captures_off_till)
        )

    def acknowledge(self) -> None:
        """Staff opened the activity view: conflicts are seen. Ongoing outages stay until they end."""
        self._unseen_conflicts = 0
