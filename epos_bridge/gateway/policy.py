"""When to reconnect, and how long to wait first: pure functions and a small counter, no I/O.

Follows websockets' split (``backoff()`` + ``process_exception()``): the session asks
:func:`classify` what an exception means and asks :class:`Backoff` how long to pause, so both
can be unit-tested with a fake random source and no event loop.

Contract §1.2: reconnect with exponential backoff 1 s, 2 s, 4 s … capped at about 30 s, reset
after a *stable* connection. "Stable" is measured in connected time (``healthy_after_s``), so a
gateway that accepts the handshake and closes at once keeps growing the delay instead of
being hammered in a tight loop.

The schedule itself (including how a rejected key is retried) is the bridge's one backoff
helper, :mod:`epos_bridge.services.retry`; this module adds what is the gateway's own: what a
websockets failure means.
"""

from __future__ import annotations

from websockets.exceptions import InvalidProxy, InvalidStatus, InvalidURI

from epos_bridge.services.retry import Backoff, BackoffPolicy, Verdict

__all__ = ["AUTH_REJECTED_STATUSES", "Backoff", "BackoffPolicy", "GatewayConfigError", "Verdict", "classify"]

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
