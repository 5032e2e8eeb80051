"""Every retry schedule of the bridge, in one pure helper: how long to wait, and when to start over.

The gateway session (contract §1.2: 1 s, 2 s, 4 s … capped at about 30 s, reset after a *stable*
connection), capability registration, the Dojo REST client's safe retries, the POS-event outbox
and the pay-at-counter follower all take their delays from :class:`BackoffPolicy` /
:class:`Backoff`, with their own numbers. No I/O and no event loop: the only outside inputs are
an injected ``random`` and ``clock``, so every schedule is unit-tested with fake time.

A rejected API key (HTTP 401/403 at the handshake, or from ``PUT /epos/integrations/ws``) is
often not wrong at all: Dojo's authentication has a blip, or a new key is still propagating. So
a rejection streak is retried on the normal schedule (1 s → 30 s with jitter) for its first
``auth_fast_for_s`` (5 minutes), and only then every ``auth_slow_s`` (5 minutes) until the key is
accepted, the settings change, staff press Reconnect, the machine wakes or the network changes
(each of which calls :meth:`Backoff.reset`). The streak is timed with the injected monotonic
``clock``. The gateway session and the registration loop both use :class:`Backoff`, so a key is
retried the same way on both halves.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["retry", "auth_failed", "fatal"]
"""What a failure means for the next attempt (see ``gateway.policy.classify``)."""


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

    def delay_for(self, attempt: int, random: float = 0.5) -> float:
        """The pause after the ``attempt``-th consecutive failure (1-based); ``random`` in
        ``[0, 1)`` picks the jitter (0.5: none)."""
        # A week-long outage means ~20 000 failures; bound the exponent so it cannot overflow.
        base = min(self.initial_s * float(self.factor ** min(max(attempt, 1) - 1, 64)), self.max_s)
        return jittered(base, self.max_s, self.jitter, random)


def jittered(base: float, cap: float, jitter: float, random: float) -> float:
    scale = 1.0 + jitter * (2.0 * random - 1.0)
    return max(0.0, min(cap, min(base, cap) * scale))


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
        return self.policy.delay_for(self.failures, self._random())

    def _auth_delay(self) -> float:
        now = self._clock()
        if self._auth_streak_since is None:
            self._auth_streak_since = now
        self.auth_failures += 1
        if now - self._auth_streak_since < self.policy.auth_fast_for_s:
            return self.policy.delay_for(self.auth_failures, self._random())
        return jittered(self.policy.auth_slow_s, self.policy.auth_slow_s, self.policy.jitter, self._random())

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
