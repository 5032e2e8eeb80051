"""When to reconnect, and how long to wait first: pure functions and a small counter, no I/O.

Follows websockets' split (``backoff()`` + ``process_exception()``): the session asks
:func:`classify` what an exception means and asks :class:`Backoff` how long to pause, so both
can be unit-tested with a fake random source and no event loop.

Contract §1.2: reconnect with exponential backoff 1 s, 2 s, 4 s … capped at about 30 s, reset
after a *stable* connection. "Stable" is measured in connected time (``healthy_after_s``), so a
gateway that accepts the handshake and closes at once keeps growing the delay instead of
being hammered in a tight loop.

A rejected API key (HTTP 401/403 at the handshake, or from ``PUT /epos/integrations/ws``) is
often not wrong at all: Dojo's authentication has a blip, or a new key is still propagating. So
a rejection streak is retried on the normal schedule (1 s → 30 s with jitter) for its first
``auth_fast_for_s`` (5 minutes), and only then every ``auth_slow_s`` (5 minutes) until the key is
accepted, the settings change, staff press Reconnect, the machine wakes or the network changes
(each of which calls :meth:`Backoff.reset`). The streak is timed with the injected monotonic
``clock``, so the schedule is tested with fake time. The gateway session and the registration
loop both use :class:`Backoff`, so a key is retried the same way on both halves.
"""

from __future__ import annotations

import random as random_module
import time
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
    auth_fast_for_s: float = 300.0
    """For this long after the first rejection of a streak, a rejected key follows the normal delays."""
    auth_slow_s: float = 300.0
    """After that, the delay between tries of a still-rejected key (jittered downwards, never above)."""


class Backoff:
    """Counts consecutive failures and turns them into delays.

    Pure: the only outside inputs are the injected ``random`` (a float in ``[0, 1)``) and
    ``clock`` (monotonic seconds, read only to time a streak of rejected keys); with
    ``random=lambda: 0.5`` the delays are exactly 1, 2, 4, 8, 16, 30, 30 …
    """

    def __init__(
        self,
        policy: BackoffPolicy | None = None,
        random: Callable[[], float] = random_module.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self._random = random
        self._clock = clock
        self.failures = 0
        """Consecutive retryable failures since the last healthy connection."""
        self.auth_failures = 0
        """Consecutive rejections (401/403) since the key was last accepted."""
        self._auth_streak_since: float | None = None

    def next_delay(self, verdict: Verdict = "retry") -> float:
        """The pause before the next attempt, and count this failure."""
        if verdict == "auth_failed":
            return self._auth_delay()
        self.failures += 1
        base = self.policy.initial_s * self._growth(self.failures)
        return self._jittered(base, self.policy.max_s)

    def _auth_delay(self) -> float:
        now = self._clock()
        if self._auth_streak_since is None:
            self._auth_streak_since = now
        self.auth_failures += 1
        if now - self._auth_streak_since < self.policy.auth_fast_for_s:
            base = self.policy.initial_s * self._growth(self.auth_failures)
            return self._jittered(base, self.policy.max_s)
        return self._jittered(self.policy.auth_slow_s, self.policy.auth_slow_s)

    @property
    def rejected_for_s(self) -> float:
        """How long the current streak of rejected keys has lasted (0 when there is none)."""
        return 0.0 if self._auth_streak_since is None else self._clock() - self._auth_streak_since

    def handshake_accepted(self) -> None:
        """The key was accepted: a later rejection starts a new streak on the fast schedule."""
        self.auth_failures = 0
        self._auth_streak_since = None

    def connection_ended(self, connected_for_s: float) -> None:
        """Reset only after a connection that stayed up long enough to count as healthy."""
        if connected_for_s >= self.policy.healthy_after_s:
            self.failures = 0

    def reset(self) -> None:
        """Start over (staff pressed Reconnect, settings changed, the machine woke, the network changed)."""
        self.failures = 0
        self.handshake_accepted()

    def _growth(self, count: int) -> float:
        # A week-long outage means ~20 000 failures; bound the exponent so it cannot overflow.
        return float(self.policy.factor ** min(count - 1, 64))

    def _jittered(self, base: float, cap: float) -> float:
        base = min(base, cap)
        scale = 1.0 + self.policy.jitter * (2.0 * self._random() - 1.0)
        return max(0.0, min(cap, base * scale))
