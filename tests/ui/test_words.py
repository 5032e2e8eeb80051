"""The words every widget renders through (``epos_bridge.ui.words``): pure, no widgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from epos_bridge.dojo_api import Terminal, TerminalSessionStatus, TerminalStatus
from epos_bridge.domain.errors import NotFound
from epos_bridge.domain.terminal_sessions import CREATING
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.protocol.dojo_errors import error_for_status, parse_problem
from epos_bridge.services import notifications
from epos_bridge.ui import words
from epos_bridge.ui.icons import state_icon_name


def test_every_connection_state_has_a_name_and_a_sentence() -> None:
    now = datetime.now(UTC)
    assert set(words.STATE_NAMES) == set(ConnectionState)
    for state in ConnectionState:
        assert words.describe_status(ConnectionStatus(state, now), now)
    retrying = ConnectionStatus(ConnectionState.DISCONNECTED, now, attempt=2, next_retry_at=now + timedelta(seconds=4))
    # The headline says what staff need to know; the countdown is the detail under it.
    assert words.describe_status(retrying, now) == "Card payments are down — reconnecting to Dojo (attempt 3)"
    assert words.describe_since(retrying, now).endswith("· next try in 4 s")
    stalled = ConnectionStatus(ConnectionState.STALLED, now, last_error="1 request(s) went unanswered for 30 s.")
    assert words.describe_status(stalled, now).startswith("Card payments are down")
    assert state_icon_name(ConnectionState.STALLED) == state_icon_name(ConnectionState.DISCONNECTED)  # red


def test_every_terminal_session_status_has_words_and_unknown_ones_show_as_sent() -> None:
    assert set(words.SESSION_STATUS_WORDS) == {*TerminalSessionStatus, CREATING}
    assert words.session_status_words("Captured") == "Approved"
    assert words.session_status_words("SomethingNew") == "SomethingNew"


def test_terminal_prompts_are_worded_from_dojos_codes() -> None:
    assert words.terminal_prompt_words("EnterPin") == "Enter PIN"
    assert words.terminal_prompt_words("BlinkTwice") == "BlinkTwice"  # notificationType is an open set
    # Words already made are shown unchanged: no prompt's words are another prompt's code.
    for worded in words.TERMINAL_PROMPT_WORDS.values():
        assert words.terminal_prompt_words(worded) == worded


def test_money_has_one_format_for_notices_and_widgets() -> None:
    assert words.format_money is notifications.format_money
    assert words.format_money(123456, "GBP") == "£1,234.56"
    assert (words.currency_symbol("eur"), words.currency_symbol("CHF")) == ("€", None)


def test_orders_terminals_and_countdowns() -> None:
    assert words.order_words("T12-0008", "Table 12", "8") == "T12-0008 (Table 12)"
    assert words.order_words(None, None, "8") == "Order 8"
    assert words.order_words(None, None, "8", prefix="") == "8"
    terminal = Terminal.model_validate({"id": "tm_1", "properties": {"tid": "10000001"}, "status": "InUse"})
    assert words.terminal_words(terminal) == "Terminal 10000001 — In use"
    assert words.terminal_words(Terminal(id="tm_2")) == "tm_2 — Status unknown"
    assert TerminalStatus.IN_USE in words.TERMINAL_STATUS_WORDS
    assert (words.minutes_seconds(65), words.minutes_seconds(-3)) == ("1:05", "0:00")
    assert (words.plural(1, "payment"), words.plural(2, "payment")) == ("1 payment", "2 payments")


def test_problems_reach_staff_without_paths_trace_ids_or_tracebacks() -> None:
    body = '{"title": "Bad terminal", "detail": "terminal is busy", "traceId": "00-abc123-01"}'
    refused = error_for_status(409, parse_problem(body), method="POST", path="/terminal-sessions")
    assert "/terminal-sessions" in str(refused) and "00-abc123-01" in str(refused)  # the log keeps both

    shown = words.problem_words(refused)
    assert "/terminal-sessions" not in shown and "abc123" not in shown and "POST" not in shown
    assert "terminal is busy" in shown
    assert words.problem_words(NotFound("no order '42' (trace 9f8e7d)")) == "no order '42'"
    assert words.problem_words(KeyError("order_id")) == words.UNEXPECTED_PROBLEM  # a bug reads as one
    assert words.problem_words(RuntimeError("Cannot enter into task <Task pending>")) == words.UNEXPECTED_PROBLEM
    assert words.problem_words(ValueError("first line\nTraceback (most recent call last):")) == "first line"
