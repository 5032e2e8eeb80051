"""Dates and times, once: what Dojo sends, what we store, what we send back (contract §4.4).

Three functions, and every method and adapter uses them:

* :func:`parse_wire_time` reads a date-time *from Dojo*: RFC 3339 with an offset, converted to
  timezone-aware UTC at millisecond precision, inside a sane window (:data:`EARLIEST` .. :data:`LATEST`). Anything else
  raises ``ValueError`` with a sentence, which the dispatcher answers as ``InvalidRequest``
  naming the field. (An ``expiry`` of year 9 or 9999 used to be stored and then break every
  later call on that order.)
* :func:`format_utc` writes one: always ``YYYY-MM-DDTHH:MM:SS.mmmZ`` — four-digit year, UTC,
  millisecond precision, fixed width — so that stored text sorts the way time does and SQL can
  compare it as text. It never raises for an aware datetime.
* :func:`parse_stored_time` reads one *back from a database* that other programs write too
  (the POS, an older bridge). It is lenient about the form and returns ``None`` for a value it
  cannot read, so that one bad cell is logged and worked around, never a bricked order.
  :func:`required_stored_time` is the same for a time the wire requires (a booking's start): it
  raises :class:`UnreadableTime`, and the caller decides (a search leaves that booking out).
"""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import UTC, datetime, tzinfo

log = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The window a date-time from Dojo must fall in. A till never sees a lock, booking or payment
outside it, and within it every value has a four-digit year in UTC."""

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def parse_wire_time(text: str) -> datetime:
    """An RFC 3339 date-time with an offset, as aware UTC; ``ValueError`` otherwise."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2026-12-01T18:30:00Z")
    date, clock, fraction, zone = match.groups()
    # Kept to the millisecond, the precision we store, so what we decide on is what we store.
    micro = f".{fraction[:3].ljust(3, '0')}" if fraction else ""
    outside = f"must lie between the years {EARLIEST.year} and {LATEST.year}"
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}{micro}{'+00:00' if zone in 'Zz' else zone}")
    except ValueError as exc:
        raise ValueError(f"is not a valid date-time ({exc})") from None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(outside) from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(outside)
    return utc


def format_utc(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC: fixed width, sorts as text, never raises."""
    offset = moment.utcoffset()
    if offset:
        # Year 1 or 9999 with an offset cannot move to UTC: keep the wall time, not a crash.
        with contextlib.suppress(OverflowError):
            moment = moment - offset
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def wall_clock_in(naive: datetime, zone: tzinfo) -> datetime:
    """A local wall-clock time (no offset) in ``zone``, as aware time. The autumn's repeated
    hour is read as its *later* occurrence (``fold=1``): an order's last change read later than
    it was makes it look changed, never untouched, so a lock is never re-taken over a till's edit.
    A time in the spring gap, which no clock showed, is read the same way: as the later of the
    two instants it could mean (the offset before the change)."""
    return max(naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))


def parse_stored_time(value: object, zone: tzinfo = UTC) -> datetime | None:
    """A stored date-time as aware UTC, or ``None`` when it cannot be read.

    Accepts what SQLite and POS programs commonly write: ISO 8601 with ``T`` or a space, with
    ``Z``, an offset or none. Naive text is wall-clock time in ``zone`` (UTC, the reference
    schema's rule, unless a mapping names the POS's zone: :func:`wall_clock_in`). Years outside
    1..9999 after the conversion to UTC, garbage and non-text give ``None``.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        text = value.strip()
        if text[-1:] in "Zz":
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = wall_clock_in(moment, zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


LONG_AGO = datetime(1, 1, 1, tzinfo=UTC)
"""Stands in for a stored time that cannot be read where one is needed: a lock whose expiry
cannot be read counts as expired, never as held for ever."""


def stored_time(value: object, what: str, zone: tzinfo = UTC) -> datetime | None:
    """:func:`parse_stored_time`, logging a value that is there but cannot be read.

    ``what`` names the cell for support ("the expiry of the lock on order 7").
    """
    moment = parse_stored_time(value, zone)
    if moment is None and value not in (None, ""):
        log.warning("ignored %s: %.60r is not a date-time the bridge can read", what, value)
    return moment


class UnreadableTime(Exception):
    """A stored time the wire requires cannot be read: the record it belongs to cannot be sent.

    Deliberately not a ``ValueError``: it is about one record, not the shape of a whole document,
    and whoever reads the record decides (a search leaves it out, a get answers an error).
    """

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"its {field} ({value!r:.60}) is not a date-time the bridge can read")
        self.field = field
        self.value = value


def required_stored_time(value: object, field: str, zone: tzinfo = UTC) -> datetime:
    """:func:`parse_stored_time` for a time the wire requires; :class:`UnreadableTime` naming the
    wire ``field`` when it cannot be read (not logged here: the caller logs it once, by the
    record's key)."""
    moment = parse_stored_time(value, zone)
    if moment is None:
        raise UnreadableTime(field, value)
    return moment
