"""When to reconnect, and how long to wait first: pure functions and a small counter, no I/O.

Follows websockets' split (``backoff()`` + ``process_exception()``): the session asks
:func:`classify` what an exception means and asks :class:`Backoff` how long to pause, so both
can be unit-tested with a fake random source and no event loop.

Contract §1.2: reconnect with exponential backoff 1 s, 2 s, 4 s … capped at about 30 s, reset
after a *stable* connection. "Stable" is measured in connected time (``healthy_after_s``), so a
gateway that accepts the handshake and closes at once keeps growing the delay instead of
being hammered in a tight loop.

A rejected API key (HTTP 401/403 at the handshake) will not fix itself in seconds, so it has
its own slow schedule (5 min, 10 min, then every 15 min) until the key changes or staff press
Reconnect.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from websockets.exceptions import InvalidProxy, InvalidStatus, InvalidURI

Verdict = Literal["retry", "auth_failed", "fatal"]

AUTH_REJECTED_STATUSES = frozenset({401, 403})


class GatewayConfigError(ValueError):
    """The gateway settings cannot work as given (bad URL, insecure URL, missing id).

    Retrying with the same settings cannot help: the session waits for new settings.
    """


def classify(exc: BaseException) -> Verdict:
    """What a failed connection attempt (or a dropped connection) means for the next step.

    * ``auth_failed``: Dojo refused the handshake with 401/403, the API key or ids are wrong.
    * ``fatal``: the configuration itself is unusable (malformed URL or proxy, refused
      ``ws://``, a SOCKS proxy without python-socks); only a settings change can help.
    * ``retry``: everything else — network errors, timeouts, TLS failures (a captive portal
      or a clock that is wrong can recover), 5xx, odd proxy answers, closed connections.
      A till must keep trying rather than give up on an error we did not foresee.
    """
    if isinstance(exc, InvalidStatus) and exc.response.status_code in AUTH_REJECTED_STATUSES:
        return "auth_failed"
    # ImportError: a socks5:// proxy needs python-socks, which is not installed.
    if isinstance(exc, GatewayConfigError | InvalidURI | InvalidProxy | ImportError):
        return "fatal"
    # TLS verification failures (ssl.SSLCertVerificationError) deliberately fall through to
    # "retry": a captive portal or a wrong system clock cause them, and both can recover.
    return "retry"


@dataclass(frozen=True)
class BackoffPolicy:
    """The numbers behind :class:`Backoff`; defaults follow contract §1.2."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.2
    """Each delay is scaled by a factor in ``[1 - jitter, 1 + jitter]`` (then capped)."""
    healthy_after_s: float = 60.0
    auth_initial_s: float = 300.0
    auth_max_s: float = 900.0


class Backoff:
    """Counts consecutive failures and turns them into delays.

    Pure: the only outside input is the injected ``random`` (a float in ``[0, 1)``); with
    ``random=lambda: 0.5`` the delays are exactly 1, 2, 4, 8, 16, 30, 30 …
    """

    def __init__(self, policy: BackoffPolicy | None = None, random: Callable[[], float] = random_module.random) -> None:
        self.policy = policy or BackoffPolicy()
        self._random = random
        self.failures = 0
        """Consecutive retryable failures since the last healthy connection."""
        self.auth_failures = 0
        """Consecutive handshakes refused with 401/403 since the last accepted handshake."""

    def next_delay(self, verdict: Verdict = "retry") -> float:
        """The pause before the next attempt, and count this failure."""
        if verdict == "auth_failed":
            self.auth_failures += 1
            base = self.policy.auth_initial_s * self._growth(self.auth_failures)
            return self._jittered(base, self.policy.auth_max_s)
        self.failures += 1
        base = self.policy.initial_s * self._growth(self.failures)
        return self._jittered(base, self.policy.max_s)

    def handshake_accepted(self) -> None:
        """The key was accepted: the slow auth schedule starts over next time."""
        self.auth_failures = 0

    def connection_ended(self, connected_for_s: float) -> None:
        """Reset only after a connection that stayed up long enough to count as healthy."""
        if connected_for_s >= self.policy.healthy_after_s:
            self.failures = 0

    def reset(self) -> None:
        """Start over (staff pressed Reconnect, settings changed, the machine woke up)."""
        self.failures = 0
        self.auth_failures = 0

    def _growth(self, count: int) -> float:
        # A week-long outage means ~20 000 failures; bound the exponent so it cannot overflow.
        return float(self.policy.factor ** min(count - 1, 64))

    def _jittered(self, base: float, cap: float) -> float:
        base = min(base, cap)
        scale = 1.0 + self.policy.jitter * (2.0 * self._random() - 1.0)
        return max(0.0, min(cap, base * scale))
