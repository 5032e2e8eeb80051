"""A key Dojo rejects for a while (an authentication blip, a new key still propagating) is tried
again on the normal backoff, so the till is serving card payments seconds after Dojo accepts it.

The real bridge in process against the simulator on 127.0.0.1; the simulator refuses every key
on both halves (the gateway handshake and ``PUT /epos/integrations/ws``) until told otherwise.
The waits are bounded by what the issue promises (the 30 s backoff cap), never by a guess of
how fast this machine is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.gateway.policy import BackoffPolicy
from epos_bridge.sim.simulator import DojoSimulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

BACKOFF_CAP_S = BackoffPolicy().max_s
EXPECTED_WARNINGS = ("gateway auth_failed", "capability registration failed")


def assert_only_expected_warnings(caplog: pytest.LogCaptureFixture) -> None:
    unexpected = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.getMessage().startswith(EXPECTED_WARNINGS)
    ]
    assert unexpected == []


async def test_a_bridge_started_during_five_seconds_of_401s_serves_within_30_s_of_acceptance(
    simulator: DojoSimulator, make_settings: Callable[..., BridgeSettings], caplog: pytest.LogCaptureFixture
) -> None:
    simulator.refuse_keys(401)
    bridge = Bridge(make_settings())
    refused_from = time.monotonic()
    await bridge.start()
    try:
        # "Key rejected" is shown at once, on both halves.
        await simulator.gateway.wait_until(
            lambda: bridge.session.status.state is ConnectionState.AUTH_FAILED, 10, "the key-rejected state"
        )
        await simulator.gateway.wait_until(
            lambda: bridge.registration.auth_rejected, 10, "the registration to meet the 401"
        )
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - refused_from)))
        refusals = len(simulator.gateway.handshakes)

        simulator.accept_keys()
        accepted_at = time.monotonic()
        await simulator.gateway.wait_until(
            lambda: bridge.session.status.state is ConnectionState.CONNECTED,
            BACKOFF_CAP_S,
            "the bridge to connect again within the backoff cap",
        )
        connected_after = time.monotonic() - accepted_at
        await simulator.gateway.wait_until(
            lambda: bridge.registration.at is not None and bridge.registration.error is None,
            BACKOFF_CAP_S,
            "the registration to succeed within the backoff cap",
        )
        registered_after = time.monotonic() - accepted_at
        answer = await simulator.gateway.request("SearchTablesV1", {"headers": {}})
    finally:
        await bridge.stop()

    assert "result" in answer
    # Retried on the 1 s → 30 s backoff during the 401s, not once every five minutes.
    assert refusals >= 3, [h.status for h in simulator.gateway.handshakes]
    assert all(h.status == 401 for h in simulator.gateway.handshakes[:refusals])
    logging.getLogger(__name__).info(
        "connected %.1f s and registered %.1f s after Dojo accepted the key (%d refusals first)",
        connected_after,
        registered_after,
        refusals,
    )
    assert connected_after <= BACKOFF_CAP_S and registered_after <= BACKOFF_CAP_S
    assert_only_expected_warnings(caplog)


async def test_a_gateway_that_answers_401_for_a_few_seconds_is_reconnected_within_the_cap(
    simulator: DojoSimulator, make_settings: Callable[..., BridgeSettings], caplog: pytest.LogCaptureFixture
) -> None:
    """A connected bridge whose link drops while Dojo's authentication has a blip."""
    bridge = Bridge(make_settings())
    await bridge.start()
    try:
        await simulator.gateway.wait_connected(10)
        simulator.gateway.refuse_keys(401)
        await simulator.gateway.drop_connections()
        await simulator.gateway.wait_until(
            lambda: bridge.session.status.state is ConnectionState.AUTH_FAILED, 10, "the key-rejected state"
        )
        await simulator.gateway.wait_until(
            lambda: sum(h.status == 401 for h in simulator.gateway.handshakes) >= 3, 15, "three quick retries"
        )
        simulator.gateway.accept_keys()
        await simulator.gateway.wait_until(
            lambda: bridge.session.status.state is ConnectionState.CONNECTED, BACKOFF_CAP_S, "connected again"
        )
    finally:
        await bridge.stop()
    assert_only_expected_warnings(caplog)
