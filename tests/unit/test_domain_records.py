"""Pure rule tests for the records Dojo creates (domain/records.py, domain/bookings.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from epos_bridge.domain import bookings, records
from epos_bridge.domain.errors import Conflict, InvalidRequest, NotFound
from epos_bridge.domain.records import StoredRecord
from epos_bridge.protocol import params as wire

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TABLES = {"T1", "T2"}


class TestCreateIsIdempotentOnDojoIds:
    def test_a_new_dojo_id_is_created(self) -> None:
        assert records.replay_of(records.PARTY, "dp_1", None) is None

    def test_a_repeat_answers_the_stored_record(self) -> None:
        assert records.replay_of(records.ORDER, "do_1", StoredRecord(7, "do_1")) == 7

    def test_a_deleted_record_cannot_be_created_again(self) -> None:
        with pytest.raises(Conflict, match="reservation 'dr_1' was deleted and cannot be created again"):
            records.replay_of(records.RESERVATION, "dr_1", StoredRecord(3, "dr_1", deleted=True))


class TestSoftDelete:
    def test_a_live_record_is_marked_once(self) -> None:
        assert records.decide_soft_delete(records.PARTY, "4", StoredRecord(4)) == 4
        assert records.decide_soft_delete(records.PARTY, "4", StoredRecord(4, deleted=True)) is None

    def test_an_id_never_issued_is_not_found(self) -> None:
        with pytest.raises(NotFound, match="party '9' does not exist"):
            records.decide_soft_delete(records.PARTY, "9", None)

    def test_a_deleted_record_reads_as_not_found(self) -> None:
        assert records.live(records.RESERVATION, "4", StoredRecord(4)) == 4
        with pytest.raises(NotFound):
            records.live(records.RESERVATION, "4", StoredRecord(4, deleted=True))


class TestUpdate:
    def test_a_record_made_on_the_till_takes_dojos_id(self) -> None:
        assert records.decide_update(records.PARTY, "4", StoredRecord(4, None), "dp_1", ["T1"], TABLES) == 4

    def test_another_dojo_id_is_refused(self) -> None:
        with pytest.raises(InvalidRequest, match="dojoPartyId 'dp_2' does not match party 4"):
            records.decide_update(records.PARTY, "4", StoredRecord(4, "dp_1"), "dp_2", ["T1"], TABLES)

    def test_checks_come_in_order_not_found_then_id_then_tables(self) -> None:
        with pytest.raises(NotFound):
            records.decide_update(records.RESERVATION, "4", None, "dr_1", ["T9"], TABLES)
        with pytest.raises(InvalidRequest, match="dojoReservationId"):
            records.decide_update(records.RESERVATION, "4", StoredRecord(4, "dr_0"), "dr_1", ["T9"], TABLES)
        with pytest.raises(InvalidRequest, match=r"unknown table\(s\) 'T9', 'T8'"):
            records.decide_update(records.RESERVATION, "4", StoredRecord(4, "dr_1"), "dr_1", ["T9", "T1", "T8"], TABLES)

    def test_a_visit_must_end_after_it_starts(self) -> None:
        records.check_window(NOW, NOW + HOUR)
        for end in (NOW, NOW - HOUR):
            with pytest.raises(InvalidRequest, match="endTime must be after startTime"):
                records.check_window(NOW, end)


def create_party(**extra: object) -> wire.CreatePartyParams:
    return wire.CreatePartyParams.model_validate(
        {"startTime": "2026-11-27T12:00:00.000Z", "tableIds": ["T1", "T2", "T1"], "dojoPartyId": "dp_1", **extra}
    )


class TestParties:
    def test_a_new_party_is_seated_on_each_table_once(self) -> None:
        new = bookings.decide_new_party(create_party(), TABLES, None)
        assert new.status == bookings.DEFAULT_PARTY_STATUS == "Seated"
        assert new.table_ids == ("T1", "T2")
        assert new.start_time == NOW and new.end_time is None
        assert (new.reservation_id, new.dojo_reservation_id) == (None, None)

    def test_the_status_dojo_sends_is_kept(self) -> None:
        assert bookings.decide_new_party(create_party(status="Ordered"), TABLES, None).status == "Ordered"

    def test_an_unknown_table_is_refused(self) -> None:
        with pytest.raises(InvalidRequest, match="tableIds"):
            bookings.decide_new_party(create_party(tableIds=["T7"]), TABLES, None)

    def test_the_epos_reservation_id_wins_else_dojos_reservation_links_it(self) -> None:
        by_dojo = bookings.decide_new_party(create_party(dojoReservationId="dr_1"), TABLES, "5")
        assert (by_dojo.reservation_id, by_dojo.dojo_reservation_id) == ("5", "dr_1")
        named = bookings.decide_new_party(create_party(reservationId="2", dojoReservationId="dr_1"), TABLES, "5")
        assert (named.reservation_id, named.dojo_reservation_id) == ("2", "dr_1")

    def test_an_update_replaces_everything_and_clears_what_is_absent(self) -> None:
        request = wire.UpdatePartyParams.model_validate(
            {
                "id": "4",
                "dojoPartyId": "dp_1",
                "startTime": "2026-11-27T12:00:00.000Z",
                "status": "Paying",
                "tableIds": ["T2"],
                "endTime": "2026-11-27T13:00:00.000Z",
            }
        )
        party = bookings.updated_party(request)
        assert party == bookings.PartyRecord("dp_1", NOW, "Paying", ("T2",), end_time=NOW + HOUR)


def reservation(**extra: object) -> wire.CreateReservationParams:
    return wire.CreateReservationParams.model_validate(
        {
            "dojoReservationId": "dr_1",
            "name": "Hart",
            "covers": 2,
            "startTime": "2026-11-27T12:00:00.000Z",
            "endTime": "2026-11-27T14:00:00.000Z",
            "tableIds": ["T1", "T1"],
            **extra,
        }
    )


class TestReservations:
    def test_the_record_is_what_was_asked(self) -> None:
        record = bookings.reservation_record(reservation(hostNotes="window"))
        assert record == bookings.ReservationRecord("dr_1", "Hart", 2, NOW, NOW + 2 * HOUR, ("T1",), "window")

    def test_an_update_is_judged_the_same_way(self) -> None:
        request = wire.UpdateReservationParams.model_validate(
            {**reservation().model_dump(by_alias=True, mode="json"), "id": "3", "endTime": "2026-11-27T11:00:00.000Z"}
        )
        with pytest.raises(InvalidRequest, match="endTime"):
            bookings.reservation_record(request)


@dataclass(frozen=True)
class Party:
    deleted: bool = False
    has_left: bool = False
    table_ids: tuple[str, ...] = ("T1",)


class TestPartySearch:
    def test_seated_by_default_and_only_the_departed_with_completed_only(self) -> None:
        seated = bookings.party_filter(wire.SearchPartiesParams())
        departed = bookings.party_filter(wire.SearchPartiesParams(completed_only=True))
        assert seated.matches(Party()) and not seated.matches(Party(has_left=True))
        assert departed.matches(Party(has_left=True)) and not departed.matches(Party())

    def test_deleted_parties_never_and_the_table_narrows(self) -> None:
        wanted = bookings.party_filter(wire.SearchPartiesParams(table_id="T2"))
        assert not wanted.matches(Party(deleted=True, table_ids=("T2",)))
        assert wanted.matches(Party(table_ids=("T1", "T2"))) and not wanted.matches(Party())


@dataclass
class Reservation:
    """Counts how often a time is read: the filter reads one only when a bound asks."""

    start: datetime = NOW
    end: datetime = NOW + 2 * HOUR
    deleted: bool = False
    table_ids: tuple[str, ...] = ("T1",)
    reads: list[str] = field(default_factory=list)

    @property
    def start_time(self) -> datetime:
        self.reads.append("start")
        return self.start

    @property
    def end_time(self) -> datetime:
        self.reads.append("end")
        return self.end


def window(from_time: datetime | None, to_time: datetime | None) -> bookings.ReservationFilter:
    return bookings.reservation_filter(wire.SearchReservationsParams(from_time=from_time, to_time=to_time))


class TestReservationSearch:
    @pytest.mark.parametrize(
        ("from_time", "to_time", "expected"),
        [
            (None, None, True),
            (NOW - HOUR, NOW, False),  # ends exactly when it starts: [start, end) does not overlap
            (NOW - HOUR, NOW + timedelta(milliseconds=1), True),
            (NOW + 2 * HOUR, None, False),  # starts exactly when it ends
            (NOW + HOUR, None, True),
            (None, NOW + HOUR, True),
            (NOW + HOUR, NOW + HOUR + timedelta(minutes=1), True),  # inside the visit
            (NOW + 3 * HOUR, NOW + 4 * HOUR, False),
        ],
    )
    def test_the_visit_overlaps_the_window_and_a_missing_bound_is_open(
        self, from_time: datetime | None, to_time: datetime | None, expected: bool
    ) -> None:
        assert window(from_time, to_time).matches(Reservation()) is expected

    def test_times_are_read_only_when_a_bound_asks(self) -> None:
        unbounded = Reservation()
        assert window(None, None).matches(unbounded) and unbounded.reads == []
        deleted = Reservation(deleted=True)
        assert not window(NOW, NOW + HOUR).matches(deleted) and deleted.reads == []

    def test_the_table_narrows(self) -> None:
        wanted = bookings.reservation_filter(wire.SearchReservationsParams(table_id="T2"))
        assert not wanted.matches(Reservation()) and wanted.matches(Reservation(table_ids=("T2",)))
