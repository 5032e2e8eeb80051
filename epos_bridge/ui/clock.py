"""The clock widgets read "now" from: injected, so a test can fix the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns timezone-aware UTC (as the bridge's statuses and log entries are)."""


def utc_now() -> datetime:
    return datetime.now(UTC)
