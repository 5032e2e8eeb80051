"""The gateway connection's lifecycle as one observable value (STYLE: httpx-style state enum).

The session is the only writer. Readers (the tray icon, the status window through a Qt signal
bridge, the log) subscribe and receive every new :class:`ConnectionStatus`; a failing reader is
logged and skipped, it can never break the session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

log = logging.getLogger(__name__)


class ConnectionState(StrEnum):
    # Not connected: before the first attempt, after a drop while waiting for the next try,
    # after stop(), or when the settings cannot work (last_error says why).
    DISCONNECTED = "disconnected"
    # A TCP/TLS connection and the WebSocket handshake are in progress.
    CONNECTING = "connecting"
    # The handshake was accepted; Dojo's requests are being served.
    CONNECTED = "connected"
    # Connected, but not serving: a request went unanswered too long or the event loop froze
    # (gateway/watchdog.py). Card payments do not work; the session is reconnecting.
    STALLED = "stalled"
    # Dojo refused the handshake with 401/403 (API key or ids wrong, or a blip at Dojo). Retried on
    # the normal backoff for 5 minutes, then every 5 minutes; the state stays here while retrying.
    AUTH_FAILED = "auth_failed"
    # stop() was called: no new requests are read, in-flight ones are finishing.
    STOPPING = "stopping"


@dataclass(frozen=True)
class ConnectionStatus:
    """A snapshot the UI can render without asking anything else."""

    state: ConnectionState
    since: datetime
    """When the session entered ``state`` (timezone-aware UTC)."""
    last_error: str | None = None
    """Why the last attempt or connection failed, already redacted (never holds the API key)."""
    attempt: int = 0
    """Connection attempts since the last healthy connection (1 = the first try)."""
    next_retry_at: datetime | None = None
    """When the next attempt is due, while waiting between attempts."""


StatusCallback = Callable[[ConnectionStatus], None]
