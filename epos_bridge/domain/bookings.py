"""Party and reservation rules (contract §3.12-§3.21, §4.4, §4.5).

What a party or reservation Dojo sends becomes on the POS, and which ones a search returns.
Idempotent creates, soft deletes and the Dojo-id check are :mod:`epos_bridge.domain.records`;
the adapters store the records these functions return and load what the filters ask about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from epos_bridge.domain.errors import PosUnavailable
from epos_bridge.domain.records import check_tables, check_window
from epos_bridge.protocol.entities import PartyDeposit
from epos_bridge.protocol.params import (
    CreatePartyParams,
    CreateReservationParams,
    SearchPartiesParams,
    SearchReservationsParams,
    UpdatePartyParams,
    UpdateReservationParams,
)
from epos_bridge.protocol.times import UnreadableTime

log = logging.getLogger(__name__)

_TOLD_UNREADABLE: set[tuple[str, str, str]] = set()
"""The unreadable bookings already logged (noun, POS key, problem): logged once per process."""
_TOLD_LIMIT = 1000

T = TypeVar("T")

DEFAULT_PARTY_STATUS = "Seated"
"""Contract §3.12 (rec), §6 C4: ``Party.status`` is required but optional in CreateParty."""


@dataclass(frozen=True)
class PartyRecord:
    """A party as the POS keeps it: exactly what was last sent (replace semantics, §3.14)."""

    dojo_party_id: str | None
    start_time: datetime
    status: str
    table_ids: tuple[str, ...]
    name: str | None = None
    covers: int | None = None
    expected_end_time: datetime | None = None
    end_time: datetime | None = None
    host_notes: str | None = None
    guest_requests: str | None = None
    deposit: PartyDeposit | None = None


@dataclass(frozen=True)
class NewParty(PartyRecord):
    """A party CreateParty stores, with the reservation it came from: set once and kept after,
    because an UpdateParty does not carry it (contract §6 B6)."""

    reservation_id: str | None = None
    dojo_reservation_id: str | None = None


@dataclass(frozen=True)
class ReservationRecord:
    """A reservation as the POS keeps it (replace semantics, §3.19)."""

    dojo_reservation_id: str | None
    name: str
    covers: int
    start_time: datetime
    end_time: datetime
    table_ids: tuple[str, ...]
    host_notes: str | None = None
    guest_requests: str | None = None


def _tables(table_ids: Sequence[str]) -> tuple[str, ...]:
    """Each table once, in the order Dojo sent them."""
    return tuple(dict.fromkeys(table_ids))


def _party(params: CreatePartyParams | UpdatePartyParams, status: str, end_time: datetime | None) -> dict[str, Any]:
    """The fields of :class:`PartyRecord` both requests carry."""
    return {
        "dojo_party_id": params.dojo_party_id,
        "start_time": params.start_time,
        "status": status,
        "table_ids": _tables(params.table_ids),
        "name": params.name,
        "covers": params.covers,
        "expected_end_time": params.expected_end_time,
        "end_time": end_time,
        "host_notes": params.host_notes,
        "guest_requests": params.guest_requests,
        "deposit": params.deposit,
    }


def decide_new_party(
    params: CreatePartyParams, known_tables: Container[str], reservation_of_dojo_id: str | None
) -> NewParty:
    """What to store for a party Dojo creates, once no party holds its ``dojoPartyId``.

    ``reservation_of_dojo_id``: the POS's reservation holding ``params.dojo_reservation_id``, if
    any. The EPOS reservation id Dojo names wins; otherwise the party is linked through Dojo's id.
    A new party has not left yet.
    """
    check_tables(params.table_ids, known_tables)
    return NewParty(
        **_party(params, params.status or DEFAULT_PARTY_STATUS, None),
        reservation_id=params.reservation_id or reservation_of_dojo_id,
        dojo_reservation_id=params.dojo_reservation_id,
    )


def updated_party(params: UpdatePartyParams) -> PartyRecord:
    """The party an UpdateParty leaves: absent optional fields are cleared (contract §3.14).

    Apply it to the key :func:`epos_bridge.domain.records.decide_update` returns; the reservation
    link is not part of it and stays as it was.
    """
    return PartyRecord(**_party(params, params.status, params.end_time))


def reservation_record(params: CreateReservationParams | UpdateReservationParams) -> ReservationRecord:
    """The reservation a Create- or UpdateReservation asks for, judged before anything is read:
    it must end after it starts."""
    check_window(params.start_time, params.end_time)
    return ReservationRecord(
        dojo_reservation_id=params.dojo_reservation_id,
        name=params.name,
        covers=params.covers,
        start_time=params.start_time,
        end_time=params.end_time,
        table_ids=_tables(params.table_ids),
        host_notes=params.host_notes,
        guest_requests=params.guest_requests,
    )


# --- which parties and reservations a search returns ----------------------------------------


class SearchedParty(Protocol):
    @property
    def deleted(self) -> bool: ...

    @property
    def has_left(self) -> bool:
        """``endTime`` is set: the party has left."""
        ...

    @property
    def table_ids(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class PartyFilter:
    """Which parties SearchParties returns (contract §3.16). The SQLite adapter says the same
    in SQL, built from these fields and tested against :meth:`matches`."""

    departed: bool
    table_id: str | None = None

    def matches(self, party: SearchedParty) -> bool:
        if party.deleted or party.has_left != self.departed:
            return False
        return self.table_id is None or self.table_id in party.table_ids


def party_filter(params: SearchPartiesParams) -> PartyFilter:
    """Seated parties by default; with ``completedOnly``, only those that have left (§3.16, and
    §6 C5 (rec): "only", as the name says)."""
    return PartyFilter(departed=bool(params.completed_only), table_id=params.table_id)


class SearchedReservation(Protocol):
    """What SearchReservations filters on; the times are read only when a window asks."""

    @property
    def deleted(self) -> bool: ...

    @property
    def table_ids(self) -> Sequence[str]: ...

    @property
    def start_time(self) -> datetime: ...

    @property
    def end_time(self) -> datetime: ...


@dataclass(frozen=True)
class ReservationFilter:
    """Which reservations SearchReservations returns.

    Contract §3.21 (rec): ``[startTime, endTime)`` overlaps ``[fromTime, toTime)``, a missing
    bound is open: the visit starts before ``starts_before`` (toTime) and ends after
    ``ends_after`` (fromTime). The SQLite adapter says the same in SQL, tested against
    :meth:`matches`.
    """

    table_id: str | None = None
    starts_before: datetime | None = None
    ends_after: datetime | None = None

    def matches(self, reservation: SearchedReservation) -> bool:
        if reservation.deleted:
            return False
        if self.table_id is not None and self.table_id not in reservation.table_ids:
            return False
        if self.starts_before is not None and not reservation.start_time < self.starts_before:
            return False
        return self.ends_after is None or reservation.end_time > self.ends_after


def reservation_filter(params: SearchReservationsParams) -> ReservationFilter:
    return ReservationFilter(table_id=params.table_id, starts_before=params.to_time, ends_after=params.from_time)


# --- a booking whose required time cannot be read --------------------------------------------
#
# Party.startTime and Reservation.startTime/endTime are required on the wire (contract §4.4,
# §4.5): a booking whose stored one cannot be read cannot be sent. One such row must not fail
# every search, so a search leaves it out and says so once, by its POS key (never the guest's
# name); asked for by its id, it is an error about that one booking. The adapters read their
# rows through these two functions.


def searched(noun: str, key: object, read: Callable[[], T]) -> T | None:
    """``read()`` for a search: ``None`` (logged once, naming ``noun`` and its POS ``key``) when
    the booking's required time cannot be read, so the search answers the others."""
    try:
        return read()
    except UnreadableTime as exc:
        told = (noun, str(key), str(exc))
        if told not in _TOLD_UNREADABLE:  # a till polled all evening says it once, not every search
            if len(_TOLD_UNREADABLE) >= _TOLD_LIMIT:
                _TOLD_UNREADABLE.clear()
            _TOLD_UNREADABLE.add(told)
            log.warning("a booking search left out %s %s: %s; correct it on the POS", noun, key, exc)
        return None


def read_booking(noun: str, key: object, read: Callable[[], T]) -> T:
    """``read()`` for one booking asked for by id: a required time that cannot be read is
    :class:`PosUnavailable` about that booking (not a bug of the bridge's)."""
    try:
        return read()
    except UnreadableTime as exc:
        said = f"{noun} {key} in the POS database cannot be read: {exc}; correct it on the POS"
        raise PosUnavailable(said, public=said) from exc  # names the record, not the file


def read_bookings(noun: str, reads: Iterable[tuple[object, Callable[[], T]]], *, searching: bool = False) -> list[T]:
    """Each ``(key, read)`` through :func:`searched` or :func:`read_booking`, in order."""
    if not searching:
        return [read_booking(noun, key, read) for key, read in reads]
    return [booking for key, read in reads if (booking := searched(noun, key, read)) is not None]
