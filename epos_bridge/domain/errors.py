"""The failures a capability can answer with, one per EPOSErrorType (contract §1.4).

Exception tree::

    EposFailure                 a request Dojo made cannot be served; becomes an EPOSError
    ├── NotFound                the entity does not exist (Dojo reads it as "deleted on the POS")
    ├── InvalidRequest          params malformed or inconsistent
    ├── Conflict                the order's state forbids it (Dojo reverses a payment on this)
    └── PosUnavailable          the POS database cannot be used now (UnexpectedError)

Anything else raised while serving is a bug and is answered as UnexpectedError with a trace id.
"""

from __future__ import annotations

from collections.abc import Iterable

from epos_bridge.domain.events import DomainEvent
from epos_bridge.protocol.jsonrpc import EPOSErrorType


class EposFailure(Exception):
    """``events`` are still published when the request fails (a refused lock is news too)."""

    error_type: EPOSErrorType = EPOSErrorType.UNEXPECTED_ERROR

    def __init__(self, message: str, events: Iterable[DomainEvent] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.events = tuple(events)


class NotFound(EposFailure):
    error_type = EPOSErrorType.NOT_FOUND


class InvalidRequest(EposFailure):
    error_type = EPOSErrorType.INVALID_REQUEST


class Conflict(EposFailure):
    error_type = EPOSErrorType.CONFLICT


class PosUnavailable(EposFailure):
    """The database is missing, locked past the busy timeout, read-only or not a database."""

    error_type = EPOSErrorType.UNEXPECTED_ERROR
