"""The words staff read, in one module every widget renders through. Pure: no Qt, no I/O.

* **Connection** — the state's short name (the tray's tooltip) and its sentence (the status
  window: does card payment work, and what happens next), since when, sandbox or production,
  capabilities implemented versus registered, the POS events still waiting.
* **Money** — :func:`format_money` and the currency symbols. They are *defined* in
  :mod:`epos_bridge.services.notifications`, because the notices and the verification report
  need the same format and the layers contract lets services import nothing of the UI; they are
  re-exported here so that a widget takes all its words from this one module.
* **Time** — the till's local clock time (the wire and the logs keep UTC), ``m:ss`` countdowns.
* **Orders** — how the till names an order.
* **Terminals and terminal sessions** — a terminal's availability, a session's kind, its status
  and what the terminal asks for. These are rendered from the codes Dojo sends (the session
  ``status`` and the raw ``notificationType`` values), never from words made elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from epos_bridge.dojo_api import RegistrationState, Terminal, TerminalSessionStatus, TerminalStatus
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.terminal_sessions import CREATING, SaleRefused
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.protocol.dojo_errors import DojoApiError
from epos_bridge.services.activity import Takings
from epos_bridge.services.notifications import (
    CURRENCY_SYMBOLS,
    capture_not_on_till_words,
    currency_symbol,
    format_money,
)
from epos_bridge.services.pos_events import RelayStatus

# --- connection ---------------------------------------------------------------------------------

STATE_NAMES = {
    ConnectionState.CONNECTED: "connected",
    ConnectionState.CONNECTING: "connecting",
    ConnectionState.DISCONNECTED: "not connected",
    ConnectionState.AUTH_FAILED: "API key rejected",
    ConnectionState.STOPPING: "stopping",
    ConnectionState.STALLED: "not answering",
}
"""The connection state in a word or two: ``Card payments: connected since 14:02``."""


def describe_status(status: ConnectionStatus, now: datetime) -> str:
    """One line that says whether card payments work, and what happens next."""
    state = status.state
    if state is ConnectionState.CONNECTED:
        return "Connected — card payments work"
    if state is ConnectionState.AUTH_FAILED:
        return "Dojo rejected the API key — open Settings"
    if state is ConnectionState.STALLED:
        return "Card payments are down — the bridge stopped answering Dojo; reconnecting"
    if state is ConnectionState.STOPPING:
        return "Stopping — finishing requests in progress"
    if state is ConnectionState.CONNECTING:
        return f"Connecting to Dojo (attempt {status.attempt})" if status.attempt > 1 else "Connecting to Dojo…"
    if status.next_retry_at is not None:
        return f"Card payments are down — reconnecting to Dojo (attempt {status.attempt + 1})"
    return "Card payments are down — not connected to Dojo"


def describe_since(status: ConnectionStatus, now: datetime | None = None) -> str:
    """``since 14:02``, and while waiting to retry ``since 14:02 · next try in 4 s``."""
    since = f"since {local_time(status.since)}"
    if status.next_retry_at is None or now is None:
        return since
    seconds = max(0, round((status.next_retry_at - now).total_seconds()))
    return f"{since} · next try in {seconds} s"


def describe_registration(registration: RegistrationState) -> str:
    """Capabilities implemented here versus registered at Dojo, in words."""
    report = registration.report
    if report is None:
        if registration.error:
            return f"Not checked: {registration.error}"
        return "Checking with Dojo…"
    if report.in_sync:
        return f"In sync — Dojo routes all {len(report.matching)} implemented capabilities here"
    parts = []
    if report.missing_at_dojo:
        names = ", ".join(sorted(c.value for c in report.missing_at_dojo))
        parts.append(f"Missing at Dojo (Dojo will not call these): {names}")
    if report.extra_at_dojo:
        names = ", ".join(sorted(c.value for c in report.extra_at_dojo))
        parts.append(f"Registered at Dojo but not implemented: {names}")
    return "\n".join(parts)


def describe_environment(environment: str) -> str:
    return {"sandbox": "Sandbox (test payments)", "production": "Production (real payments)"}.get(
        environment, "Unknown (check the API key)"
    )


def describe_adapter(adapter: str, mapping: str | None) -> str:
    """``sqlmap (mapping floreant)``: the adapter's entry-point name, and the mapping it reads."""
    return f"{adapter} (mapping {mapping})" if mapping else adapter


def describe_takings(totals: Sequence[Takings]) -> str:
    """``Today: £412.50 from 17 card payments (+ £23.00 tips)``; each currency once."""
    if not totals:
        return "Today: no card payments yet"
    parts = []
    for total in totals:
        text = f"{format_money(total.amount, total.currency)} from {plural(total.payments, 'card payment')}"
        if total.tips:
            text += f" (+ {format_money(total.tips, total.currency)} tips)"
        parts.append(text)
    return "Today: " + "; ".join(parts)


def describe_outbox_depth(status: RelayStatus) -> str:
    """Read after its form label: "POS events waiting: 3 (Dojo hears of these till changes once sent)"."""
    if status.depth == 0:
        return "0"
    return f"{status.depth} (Dojo hears of these changes on the till once they are sent)"


def describe_outbox_error(status: RelayStatus) -> str:
    """The last delivery problem in words, with what happens next (the relay retries by itself)."""
    if not status.last_error:
        return "none"
    return f"{status.last_error} — the bridge keeps retrying; nothing is lost"


# --- time -----------------------------------------------------------------------------------------


def local_time(at: datetime, *, seconds: bool = False) -> str:
    """``14:02`` (or ``14:02:37``) in the till's local time zone."""
    return at.astimezone().strftime("%H:%M:%S" if seconds else "%H:%M")


def local_date(at: datetime) -> str:
    """``2025-03-14`` in the till's local time zone (file names of exports and reports)."""
    return at.astimezone().strftime("%Y-%m-%d")


def local_timestamp(at: datetime) -> str:
    """``2025-03-14 14:02:37 GMT``: the full local time, for a tooltip."""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def minutes_seconds(seconds: int) -> str:
    """``1:05``: a countdown or a wait, never negative."""
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes}:{rest:02d}"


def plural(count: int, noun: str) -> str:
    """``1 payment``, ``2 payments``."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


# --- problems -------------------------------------------------------------------------------------

UNEXPECTED_PROBLEM = "an unexpected problem (the details are in the log; Export diagnostics… sends them to support)"
_TRACE_IDS = re.compile(r"\s*\((?:dojo )?trace(?: id)?[ :][^)]*\)", re.IGNORECASE)


def problem_words(exc: BaseException) -> str:
    """What staff read about a failure in a pop-up, a banner or the status bar: one sentence,
    never a traceback, a request path or a trace id (those are in the log, for support).

    Only failures whose text is written for people are shown as they are (Dojo's, the POS's,
    a refused sale, the operating system's); anything else is a bug and reads as such.
    """
    if isinstance(exc, DojoApiError):
        text = exc.staff_message
    elif isinstance(exc, EposFailure):
        text = exc.message
    elif isinstance(exc, SaleRefused | ValueError):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = exc.strerror or str(exc)
    else:
        return UNEXPECTED_PROBLEM
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return _TRACE_IDS.sub("", first_line).strip() or UNEXPECTED_PROBLEM


# --- orders ---------------------------------------------------------------------------------------


def order_words(reference: str | None, display_name: str | None, order_id: str, *, prefix: str = "Order ") -> str:
    """``T12-0008 (Table 12)``: what the order is called on the till; ``Order 7`` when it has no
    reference or name (a table's column passes ``prefix=""``: the header already says "Order")."""
    if reference and display_name:
        return f"{reference} ({display_name})"
    return reference or display_name or f"{prefix}{order_id}"


# --- terminals and terminal sessions --------------------------------------------------------------

TERMINAL_STATUS_WORDS: dict[str, str] = {
    TerminalStatus.AVAILABLE: "Available",
    TerminalStatus.IN_USE: "In use",
    TerminalStatus.OFFLINE: "Offline",
}


def terminal_name(terminal: Terminal) -> str:
    """``Terminal 10000001``: the TID is what is printed on the machine."""
    return f"Terminal {terminal.tid}" if terminal.tid else terminal.id


def terminal_words(terminal: Terminal) -> str:
    """``Terminal 10000001 — Available``."""
    status = TERMINAL_STATUS_WORDS.get(terminal.status or "", terminal.status or "Status unknown")
    return f"{terminal_name(terminal)} — {status}"


SALE, MATCHED_REFUND, UNLINKED_REFUND = "Sale", "MatchedRefund", "UnlinkedRefund"
"""The kinds of terminal session the counter runs (``SessionUpdate.kind``)."""

KIND_WORDS = {SALE: "Card payment", MATCHED_REFUND: "Refund", UNLINKED_REFUND: "Unlinked refund"}

SESSION_STATUS_WORDS: dict[str, str] = {
    TerminalSessionStatus.INITIATE_REQUESTED: "Sending to the terminal…",
    TerminalSessionStatus.INITIATED: "Waiting for the card",
    TerminalSessionStatus.AUTHORIZED: "Authorised, waiting for capture",
    TerminalSessionStatus.CAPTURED: "Approved",
    TerminalSessionStatus.CANCEL_REQUESTED: "Cancelling…",
    TerminalSessionStatus.CANCELED: "Cancelled",
    TerminalSessionStatus.SIGNATURE_VERIFICATION_REQUIRED: "Check the customer's signature",
    TerminalSessionStatus.SIGNATURE_VERIFICATION_ACCEPTED: "Approved (signature accepted)",
    TerminalSessionStatus.SIGNATURE_VERIFICATION_REJECTED: "Signature rejected: payment reversed",
    TerminalSessionStatus.EXPIRED: "Expired: nobody presented a card",
    TerminalSessionStatus.DECLINED: "Declined by the card issuer",
    CREATING: "Checking with Dojo whether the terminal started…",
}

TERMINAL_PROMPT_WORDS = {
    "PresentCard": "Present card",
    "InsertCard": "Insert card",
    "EnterPin": "Enter PIN",
    "PleaseWait": "Please wait",
    "Approved": "Approved",
    "Declined": "Declined",
    "PresentOnlyOneCard": "Present only one card",
    "RemoveCard": "Remove card",
    "CardUnsupported": "Card not supported",
    "CardError": "Card error: try again",
    "ReEnterCard": "Re-enter card",
}
"""What the terminal asks for, by Dojo's ``notificationType``."""


def session_status_words(status: str) -> str:
    """A terminal session's ``status`` in words; an unknown one is shown as Dojo sent it."""
    return SESSION_STATUS_WORDS.get(status, status)


def terminal_prompt_words(notification_type: str) -> str:
    """``notificationType`` is an open set (contract §5.5, §6 E2): unknown values shown as given.

    Also the identity on the words themselves, so an update that already carries words renders
    the same (no word is another prompt's code).
    """
    return TERMINAL_PROMPT_WORDS.get(notification_type, notification_type)


__all__ = [
    "CURRENCY_SYMBOLS",
    "KIND_WORDS",
    "MATCHED_REFUND",
    "SALE",
    "SESSION_STATUS_WORDS",
    "STATE_NAMES",
    "TERMINAL_PROMPT_WORDS",
    "TERMINAL_STATUS_WORDS",
    "UNEXPECTED_PROBLEM",
    "UNLINKED_REFUND",
    "capture_not_on_till_words",
    "currency_symbol",
    "describe_adapter",
    "describe_environment",
    "describe_outbox_depth",
    "describe_outbox_error",
    "describe_registration",
    "describe_since",
    "describe_status",
    "describe_takings",
    "format_money",
    "local_date",
    "local_time",
    "local_timestamp",
    "minutes_seconds",
    "order_words",
    "plural",
    "problem_words",
    "session_status_words",
    "terminal_name",
    "terminal_prompt_words",
    "terminal_words",
]
