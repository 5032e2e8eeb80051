"""A network change reported by the OS makes the bridge retry at once (real widgets, a real Bridge
and the simulator; the OS's report is the real QNetworkInformation signal, emitted by the test)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from PySide6.QtNetwork import QNetworkInformation
from pytestqt.qtbot import QtBot

from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.ui.network_watch import NetworkWatch
from tests.ui.conftest import Gui


def network_information() -> QNetworkInformation:
    info = QNetworkInformation.instance()
    if info is None and QNetworkInformation.loadDefaultBackend():
        info = QNetworkInformation.instance()
    if info is None:
        pytest.skip("no QNetworkInformation backend loads on this system")
    return info


def test_only_a_network_that_comes_back_or_changes_medium_counts(qtbot: QtBot) -> None:
    info = network_information()
    calls: list[None] = []
    watch = NetworkWatch(lambda: calls.append(None))

    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Disconnected)
    assert calls == []
    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)
    info.transportMediumChanged.emit(QNetworkInformation.TransportMedium.Ethernet)
    assert len(calls) == 2

    watch.close()
    watch.close()
    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)
    assert len(calls) == 2


@pytest.mark.logs_warnings("a rejected key is logged")
def test_a_network_change_retries_a_rejected_key_at_once(
    qtbot: QtBot, start_gui: Callable[..., Gui], simulator: DojoSimulator
) -> None:
    info = network_information()
    simulator.gateway.refuse_keys(401)
    gui = start_gui(wait_connected=False)
    watch = NetworkWatch(gui.signals.network_changed)
    try:
        qtbot.waitUntil(lambda: gui.state is ConnectionState.AUTH_FAILED, timeout=10_000)
        # Let the quick retries grow past what the test waits below, so only the kick can explain
        # a connection inside it.
        # Wait for the pause after a refusal, not just the handshake: while an attempt is still in
        # flight there is no retry scheduled yet (that race failed CI once).
        qtbot.waitUntil(
            lambda: len(simulator.gateway.handshakes) >= 4 and gui.bridge.session.status.next_retry_at is not None,
            timeout=20_000,
        )
        simulator.gateway.accept_keys()
        refused = len(simulator.gateway.handshakes)
        due = gui.bridge.session.status.next_retry_at
        assert due is not None

        info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)

        qtbot.waitUntil(lambda: gui.state is ConnectionState.CONNECTED, timeout=5_000)
        assert datetime.now(UTC) < due  # the kick connected it, not the scheduled retry
        assert len(simulator.gateway.handshakes) == refused + 1
    finally:
        watch.close()
