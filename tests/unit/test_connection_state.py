"""The status value and its observers: a failing subscriber never breaks the others."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.services.listeners import Listeners

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_states_have_stable_string_values() -> None:
    assert [state.value for state in ConnectionState] == [
        "disconnected",
        "connecting",
        "connected",
        "stalled",
        "auth_failed",
        "stopping",
    ]


def test_status_is_an_immutable_value() -> None:
    status = ConnectionStatus(ConnectionState.CONNECTED, T0, attempt=2)

    with pytest.raises(dataclasses.FrozenInstanceError):
        status.state = ConnectionState.DISCONNECTED  # type: ignore[misc]
    assert status == ConnectionStatus(ConnectionState.CONNECTED, T0, None, 2)


def test_subscribers_hear_every_status_until_they_unsubscribe() -> None:
    observers: Listeners[ConnectionStatus] = Listeners("connection-status")
    heard: list[ConnectionState] = []
    unsubscribe = observers.add(lambda status: heard.append(status.state))

    observers.emit(ConnectionStatus(ConnectionState.CONNECTING, T0))
    unsubscribe()
    observers.emit(ConnectionStatus(ConnectionState.CONNECTED, T0))
    unsubscribe()  # twice is harmless

    assert heard == [ConnectionState.CONNECTING]
    assert len(observers) == 0


def test_a_failing_subscriber_is_logged_and_the_others_still_hear(caplog: pytest.LogCaptureFixture) -> None:
    observers: Listeners[ConnectionStatus] = Listeners("connection-status")
    heard: list[ConnectionState] = []

    def broken(status: ConnectionStatus) -> None:
        raise RuntimeError("widget already deleted")

    observers.add(broken)
    observers.add(lambda status: heard.append(status.state))

    with caplog.at_level(logging.ERROR):
        observers.emit(ConnectionStatus(ConnectionState.AUTH_FAILED, T0, "Dojo rejected the API key (HTTP 401)."))

    assert heard == [ConnectionState.AUTH_FAILED]
    assert "connection-status listener failed on auth_failed" in caplog.text


def test_a_subscriber_may_unsubscribe_while_being_notified() -> None:
    observers: Listeners[ConnectionStatus] = Listeners("connection-status")
    heard: list[str] = []
    unsubscribe_first = observers.add(lambda status: (heard.append("first"), unsubscribe_first()))
    observers.add(lambda status: heard.append("second"))

    observers.emit(ConnectionStatus(ConnectionState.CONNECTED, T0))
    observers.emit(ConnectionStatus(ConnectionState.DISCONNECTED, T0))

    assert heard == ["first", "second", "second"]
