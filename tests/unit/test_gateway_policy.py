"""The reconnect policy is pure: fake random, no event loop, exact numbers."""

from __future__ import annotations

import itertools
import ssl

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from epos_bridge.gateway.policy import Backoff, BackoffPolicy, GatewayConfigError, classify


def no_jitter() -> float:
    return 0.5


def status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers()))


def test_delays_double_from_one_second_and_cap_at_thirty() -> None:
    backoff = Backoff(random=no_jitter)

    delays = [backoff.next_delay() for _ in range(8)]

    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.parametrize(("random_value", "expected"), [(0.0, [0.8, 1.6, 3.2]), (0.999999, [1.2, 2.4, 4.8])])
def test_jitter_scales_each_delay_by_at_most_twenty_percent(random_value: float, expected: list[float]) -> None:
    backoff = Backoff(random=lambda: random_value)

    delays = [backoff.next_delay() for _ in range(3)]

    assert delays == pytest.approx(expected, rel=1e-5)


def test_jitter_never_exceeds_the_cap() -> None:
    backoff = Backoff(random=lambda: 0.999999)

    delays = [backoff.next_delay() for _ in range(10)]

    assert max(delays) == 30


def test_a_server_that_accepts_and_closes_at_once_keeps_growing_the_delay() -> None:
    backoff = Backoff(random=no_jitter)

    delays = []
    for _ in range(6):
        backoff.handshake_accepted()
        backoff.connection_ended(connected_for_s=0.01)
        delays.append(backoff.next_delay())

    assert delays == [1, 2, 4, 8, 16, 30]


def test_backoff_resets_only_after_a_healthy_connection() -> None:
    backoff = Backoff(BackoffPolicy(healthy_after_s=60), random=no_jitter)
    for _ in range(4):
        backoff.next_delay()

    backoff.connection_ended(connected_for_s=59.9)
    assert backoff.next_delay() == 16

    backoff.connection_ended(connected_for_s=60)
    assert backoff.next_delay() == 1


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def rejected_streak(backoff: Backoff, clock: FakeClock, tries: int) -> list[float]:
    """Each rejected try waits its delay (on the fake clock) before the next one."""
    delays = []
    for _ in range(tries):
        delay = backoff.next_delay("auth_failed")
        delays.append(delay)
        clock.now += delay
    return delays


def test_a_rejected_key_is_retried_on_the_normal_backoff_for_five_minutes_then_every_five() -> None:
    clock = FakeClock()
    backoff = Backoff(random=no_jitter, clock=clock)

    delays = rejected_streak(backoff, clock, 18)

    # 1+2+4+8+16 = 31 s, then 30 s steps: the try at 271 s is still inside the first five minutes.
    assert delays[:14] == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30, 30, 30]
    assert sum(delays[:14]) == 301
    assert delays[14:] == [300, 300, 300, 300]


def test_the_first_rejection_of_a_streak_is_retried_after_one_second() -> None:
    """A till that starts during an authentication blip is serving again seconds after it ends."""
    clock = FakeClock()
    backoff = Backoff(random=no_jitter, clock=clock)

    assert backoff.next_delay("auth_failed") == 1
    assert backoff.rejected_for_s == 0
    clock.now += 4
    assert backoff.rejected_for_s == 4


@pytest.mark.parametrize(("random_value", "slowest"), [(0.0, 240.0), (0.999999, 300.0)])
def test_the_five_minute_retry_is_jittered_but_never_later(random_value: float, slowest: float) -> None:
    clock = FakeClock()
    backoff = Backoff(random=lambda: random_value, clock=clock)
    backoff.next_delay("auth_failed")
    clock.now += 300

    assert backoff.next_delay("auth_failed") == pytest.approx(slowest)


def test_rejections_do_not_touch_the_network_failure_schedule() -> None:
    clock = FakeClock()
    backoff = Backoff(random=no_jitter, clock=clock)
    backoff.next_delay()

    assert rejected_streak(backoff, clock, 3) == [1, 2, 4]
    assert backoff.next_delay() == 2


def test_an_accepted_key_starts_a_new_streak_on_the_fast_schedule() -> None:
    clock = FakeClock()
    backoff = Backoff(random=no_jitter, clock=clock)
    rejected_streak(backoff, clock, 16)
    assert backoff.next_delay("auth_failed") == 300

    backoff.handshake_accepted()
    clock.now += 3600

    assert rejected_streak(backoff, clock, 3) == [1, 2, 4]


def test_reset_starts_both_schedules_over() -> None:
    """Reconnect now, a settings save, a wake from sleep and a network change all reset."""
    clock = FakeClock()
    backoff = Backoff(random=no_jitter, clock=clock)
    backoff.next_delay()
    backoff.next_delay()
    rejected_streak(backoff, clock, 16)

    backoff.reset()

    assert (backoff.next_delay(), backoff.next_delay("auth_failed")) == (1, 1)
    assert backoff.rejected_for_s == 0


def test_a_week_long_outage_cannot_overflow() -> None:
    backoff = Backoff(random=no_jitter)

    for _ in itertools.repeat(None, 25_000):
        delay = backoff.next_delay()

    assert delay == 30


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (status(401), "auth_failed"),
        (status(403), "auth_failed"),
        (status(500), "retry"),
        (status(404), "retry"),
        (status(429), "retry"),
        (OSError("connection refused"), "retry"),
        (TimeoutError("timed out during opening handshake"), "retry"),
        (ssl.SSLCertVerificationError("certificate verify failed"), "retry"),
        (ConnectionClosedError(None, None), "retry"),
        (ConnectionClosedOK(Close(1001, "bye"), Close(1001, "bye"), rcvd_then_sent=True), "retry"),
        (InvalidURI("nope://", "not a WebSocket URI"), "fatal"),
        (GatewayConfigError("ws:// refused"), "fatal"),
        (ImportError("connecting through a SOCKS proxy requires python-socks"), "fatal"),
        (RuntimeError("something nobody foresaw"), "retry"),
    ],
)
def test_classify(exc: Exception, verdict: str) -> None:
    assert classify(exc) == verdict
