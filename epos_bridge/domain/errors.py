"""The failures a capability can answer with, one per EPOSErrorType (contract §1.4).

Exception tree::

    EposFailure                 a request Dojo made cannot be served; becomes an EPOSError
    ├── NotFound                the entity does not exist (Dojo reads it as "deleted on the POS")
    ├── InvalidRequest          params malformed or inconsistent
    ├── Conflict                the order's state forbids it (Dojo reverses a payment on this)
    └── PosUnavailable          the POS database cannot be used now (UnexpectedError)

Anything else raised while serving is a bug and is answered as UnexpectedError with a trace id.

Two texts per failure: ``message`` for the venue's own eyes (the request log, the status window,
Settings' Test) and ``public_message``, the ``debugMessage`` Dojo gets. They are the same except
for :class:`PosUnavailable`, whose message names the POS file or folder (the machine's user, the
venue, its folders): its public text names the problem only ("The POS database could not be
opened"), and is a generic sentence unless the raiser gives a path-free one (contract §1.4 (rec):
keep ``debugMessage`` short and free of personal data).
"""

from __future__ import annotations

from collections.abc import Iterable

from epos_bridge.domain.events import DomainEvent
from epos_bridge.protocol.jsonrpc import EPOSErrorType


class EposFailure(Exception):
    """``events`` are still published when the request fails (a refused lock is news too)."""

    error_type: EPOSErrorType = EPOSErrorType.UNEXPECTED_ERROR

    def __init__(self, message: str, events: Iterable[DomainEvent] = (), *, public: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        """For the venue: the local log and the bridge's own windows."""
        self.public_message = public if public is not None else self._public_default(message)
        """What Dojo is told (``debugMessage``)."""
        self.events = tuple(events)

    @classmethod
    def _public_default(cls, message: str) -> str:
        return message


class NotFound(EposFailure):
    error_type = EPOSErrorType.NOT_FOUND


class InvalidRequest(EposFailure):
    error_type = EPOSErrorType.INVALID_REQUEST


class Conflict(EposFailure):
    error_type = EPOSErrorType.CONFLICT


POS_UNUSABLE = "The POS database could not be used; the bridge's log on the till has the details."
"""What Dojo hears of a :class:`PosUnavailable` raised without a path-free ``public`` text."""


class PosUnavailable(EposFailure):
    """The database is missing, locked past the busy timeout, read-only or not a database.

    Its ``message`` may name the file (for the venue); Dojo gets ``public`` or :data:`POS_UNUSABLE`.
    """

    error_type = EPOSErrorType.UNEXPECTED_ERROR

    @classmethod
    def _public_default(cls, message: str) -> str:
        return POS_UNUSABLE
