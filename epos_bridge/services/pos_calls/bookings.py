"""Parties (contract §3.11-3.16) and reservations (§3.17-3.21): one flow for both kinds, over
the storage's :class:`~epos_bridge.ports.BookingRows`. The rules are ``domain.records`` and
``domain.bookings``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from epos_bridge.domain import bookings, records
from epos_bridge.domain.pagination import Page, read_cursor
from epos_bridge.ports import BookingRows, PosRows
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.entities import Party, Reservation

B = TypeVar("B")
R = TypeVar("R")


def create_party(params: wire.CreatePartyParams, rows: PosRows, now: datetime) -> Party:
    parties = rows.parties
    existing = records.replay_of(records.PARTY, params.dojo_party_id, parties.of_dojo_id(params.dojo_party_id))
    if existing is not None:
        return parties.answer(existing)
    linked = rows.reservations.of_dojo_id(params.dojo_reservation_id) if params.dojo_reservation_id else None
    new = bookings.decide_new_party(
        params, rows.known_tables(params.table_ids), str(linked.key) if linked is not None else None
    )
    return parties.answer(parties.insert(new, now))


def create_reservation(
    params: wire.CreateReservationParams, record: bookings.ReservationRecord, rows: PosRows, now: datetime
) -> Reservation:
    """``record``: what ``params`` asks to store, judged before anything is read."""
    reservations = rows.reservations
    found = reservations.of_dojo_id(params.dojo_reservation_id)
    existing = records.replay_of(records.RESERVATION, params.dojo_reservation_id, found)
    if existing is not None:
        return reservations.answer(existing)
    records.check_tables(params.table_ids, rows.known_tables(params.table_ids))
    return reservations.answer(reservations.insert(record, now))


def get(kind: records.RecordKind, booked: BookingRows[Any, B, Any], wire_id: str) -> B:
    return booked.answer(records.live(kind, wire_id, booked.record(wire_id)))


def update(
    kind: records.RecordKind,
    booked: BookingRows[R, B, Any],
    update: tuple[str, str, list[str]],
    record: R,
    rows: PosRows,
    now: datetime,
) -> B:
    """An Update (replace semantics): ``update`` is the wire id, Dojo's id and the tables sent."""
    wire_id, dojo_id, table_ids = update
    found = booked.record(wire_id)
    key = records.decide_update(kind, wire_id, found, dojo_id, table_ids, rows.known_tables(table_ids))
    booked.replace(key, record, now)
    return booked.answer(key)


def delete(kind: records.RecordKind, booked: BookingRows[Any, Any, Any], wire_id: str, now: datetime) -> None:
    key = records.decide_soft_delete(kind, wire_id, booked.record(wire_id))
    if key is not None:
        booked.delete(key, now)


def search_parties(params: wire.SearchPartiesParams, rows: PosRows, now: datetime) -> wire.PagedParties:
    page: Page[Party] = rows.parties.search(bookings.party_filter(params), read_cursor(params.cursor, "parties"))
    bounds = page.bounds("parties")
    return wire.PagedParties(data=list(page.items), before=bounds.before, after=bounds.after)


def search_reservations(params: wire.SearchReservationsParams, rows: PosRows, now: datetime) -> wire.PagedReservations:
    wanted = bookings.reservation_filter(params)
    page: Page[Reservation] = rows.reservations.search(wanted, read_cursor(params.cursor, "reservations"))
    bounds = page.bounds("reservations")
    return wire.PagedReservations(data=list(page.items), before=bounds.before, after=bounds.after)
