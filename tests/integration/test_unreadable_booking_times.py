"""One party or reservation whose time the bridge cannot read (a POS row with start time 'garbage',
or a date outside what a date-time can hold) never fails the whole booking search.

Contract §4.4 and §4.5 require ``Party.startTime`` and ``Reservation.startTime``/``endTime``: a
booking without a readable one cannot be sent, so a search leaves it out, logs one warning naming
its POS key (never the guest), and answers the others. An optional time (``Party.endTime``,
``expectedEndTime``) that cannot be read is left out of the booking, which is answered. Every
adapter that reads booking times is covered: the SQLite reference, the file database, and the
mapped-SQL adapter (Floreant's table bookings).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.jsonfile import FolderLock, write_json_atomic
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.domain import bookings
from epos_bridge.ports import PosAdapter
from epos_bridge.services.dispatcher import Dispatcher
from tests.conftest import Rpc
from tests.helpers.builders import create_party_params, create_reservation_params, failed, ok
from tests.helpers.contract import assert_valid_response
from tests.helpers.floreant import create_floreant_database, floreant
from tests.helpers.pos import jsonfile_pos, sqlite_pos, sqlmap_pos

GUEST = "Philippa Quennell-Ashworth"
UNREADABLE = [
    "garbage",
    "10000-01-01T00:00:00.000Z",  # past year 9999
    "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
    "2026-13-45T99:00:00Z",
]


def rpc_over(dispatcher: Dispatcher) -> Rpc:
    counter = iter(range(1, 1_000_000))

    async def call(method: str, params: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        body = {"headers": {}, **(params or {})}
        frame = json.dumps({"jsonrpc": "2.0", "id": f"q{next(counter)}", "method": method, "params": body})
        served = await dispatcher.handle_text(frame)
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response(method, response)
        return response

    return call


@dataclass
class Pos:
    """One adapter over its own storage, and a way to write a cell as the POS (or a bad import) did."""

    rpc: Rpc
    table_id: str
    set_time: Callable[[str, str, str, str], None]
    """``(kind, key, wire field, stored text)``: kind is ``party`` or ``reservation``."""


def _sql(path: Path, statement: str, args: tuple[Any, ...]) -> None:
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        conn.execute(statement, args)
        conn.commit()


_SQLITE_COLUMN = {"startTime": "start_time", "endTime": "end_time", "expectedEndTime": "expected_end_time"}
_FLOREANT_COLUMN = {"startTime": "FROM_DATE", "endTime": "TO_DATE"}


@pytest.fixture(params=["sqlite", "jsonfile", "sqlmap"])
async def pos(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pos]:
    """Every adapter that reads reservations."""
    async for found in _opened(request, tmp_path):
        yield found


@pytest.fixture(params=["sqlite", "jsonfile"])
async def party_pos(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pos]:
    """Every adapter that reads parties (the floreant mapping has no statements for them)."""
    async for found in _opened(request, tmp_path):
        yield found


async def _opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pos]:
    adapter: PosAdapter
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("pos_db_path")
        adapter = sqlite_pos(path)

        def set_sqlite(kind: str, key: str, field: str, text: str) -> None:
            table = {"party": "parties", "reservation": "reservations"}[kind]
            _sql(path, f"UPDATE {table} SET {_SQLITE_COLUMN[field]} = ? WHERE id = ?", (text, int(key)))

        found = Pos(rpc_over(Dispatcher(adapter)), "T1", set_sqlite)
    elif request.param == "jsonfile":
        folder = tmp_path / "pos"
        init_folder(folder, demo=False, now=datetime.now(UTC))
        lock = FolderLock(folder)
        with lock.hold():
            write_json_atomic(folder / "tables.json", [{"id": "T1", "name": "1", "areaId": "main"}])
        adapter = jsonfile_pos(folder)

        def set_document(kind: str, key: str, field: str, text: str) -> None:
            path = folder / {"party": "parties", "reservation": "reservations"}[kind] / f"{key}.json"
            with lock.hold():
                document = json.loads(path.read_text(encoding="utf-8"))
                document[field] = text
                write_json_atomic(path, document)

        found = Pos(rpc_over(Dispatcher(adapter)), "T1", set_document)
    else:
        path = tmp_path / "floreant.db"
        create_floreant_database(path)
        _sql(path, "INSERT INTO SHOP_TABLE (NUMBER, X, Y) VALUES (?, 0, 0)", (1,))
        adapter = sqlmap_pos(path, floreant())

        def set_booking(kind: str, key: str, field: str, text: str) -> None:
            assert kind == "reservation"
            _sql(path, f"UPDATE TABLE_BOOKING_INFO SET {_FLOREANT_COLUMN[field]} = ? WHERE ID = ?", (text, int(key)))

        found = Pos(rpc_over(Dispatcher(adapter)), "1", set_booking)
    try:
        yield found
    finally:
        await adapter.close()


async def new_reservations(pos: Pos, count: int) -> list[str]:
    ids = []
    for n in range(count):
        params = create_reservation_params(f"dojo-r{n}", name=GUEST, table_ids=[pos.table_id])
        ids.append(ok(await pos.rpc("CreateReservationV1", params))["id"])
    return ids


async def new_parties(pos: Pos, count: int) -> list[str]:
    ids = []
    for n in range(count):
        params = create_party_params(f"dojo-p{n}", name=GUEST, table_ids=[pos.table_id])
        ids.append(ok(await pos.rpc("CreatePartyV1", params))["id"])
    return ids


@pytest.fixture(autouse=True)
def fresh_process() -> None:
    """Each test is a bridge that has not told of any unreadable booking yet."""
    bookings._TOLD_UNREADABLE.clear()


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_one_warning_naming(caplog: pytest.LogCaptureFixture, kind: str, key: str, field: str) -> None:
    said = warnings(caplog)
    assert len(said) == 1, f"one warning for the one bad {kind}, got {said}"
    assert f"{kind} {key}" in said[0] and field in said[0], said[0]
    assert GUEST not in said[0], "the warning names the POS key, never the guest"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "nothing is an unexpected failure"


@pytest.mark.parametrize("stored", UNREADABLE)
@pytest.mark.parametrize("field", ["startTime", "endTime"])
async def test_a_reservation_whose_time_cannot_be_read_is_left_out_of_the_search(
    pos: Pos, stored: str, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, bad, last = await new_reservations(pos, 3)
    pos.set_time("reservation", bad, field, stored)

    with caplog.at_level(logging.WARNING):
        page = ok(await pos.rpc("SearchReservationsV1", {}))

    assert [r["id"] for r in page["data"]] == [first, last]
    assert_one_warning_naming(caplog, "reservation", bad, field)
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # Dojo searches again all evening: told once, not each time
        again = ok(await pos.rpc("SearchReservationsV1", {}))
    assert [r["id"] for r in again["data"]] == [first, last]
    assert warnings(caplog) == []


@pytest.mark.parametrize("window", [{"fromTime": "2025-03-14T18:00:00Z"}, {"toTime": "2025-03-14T22:00:00Z"}])
async def test_a_search_with_a_time_window_leaves_the_unreadable_reservation_out_too(
    pos: Pos, window: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    first, bad, last = await new_reservations(pos, 3)
    pos.set_time("reservation", bad, "startTime", "garbage")
    pos.set_time("reservation", bad, "endTime", "garbage")

    with caplog.at_level(logging.WARNING):
        page = ok(await pos.rpc("SearchReservationsV1", window))

    assert [r["id"] for r in page["data"]] == [first, last]
    said = warnings(caplog)
    assert len(said) <= 1 and all(GUEST not in line for line in said), said


async def test_the_unreadable_reservation_itself_is_a_contract_error_and_the_others_are_served(
    pos: Pos, caplog: pytest.LogCaptureFixture
) -> None:
    good, bad = await new_reservations(pos, 2)
    pos.set_time("reservation", bad, "startTime", "garbage")

    with caplog.at_level(logging.WARNING):
        refused = await pos.rpc("GetReservationByIdV1", {"reservationId": bad})
        served = await pos.rpc("GetReservationByIdV1", {"reservationId": good})

    error = failed(refused, "UnexpectedError")
    assert "internal error" not in error.get("debugMessage", ""), "a bad row is not a bug in the bridge"
    assert GUEST not in json.dumps(refused)
    assert ok(served)["name"] == GUEST
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("stored", UNREADABLE)
async def test_a_party_whose_start_cannot_be_read_is_left_out_of_the_search(
    party_pos: Pos, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    pos = party_pos
    first, bad, last = await new_parties(pos, 3)
    pos.set_time("party", bad, "startTime", stored)

    with caplog.at_level(logging.WARNING):
        page = ok(await pos.rpc("SearchPartiesV1", {}))

    assert [p["id"] for p in page["data"]] == [first, last]
    assert_one_warning_naming(caplog, "party", bad, "startTime")


async def test_a_party_whose_expected_end_cannot_be_read_is_answered_without_it(
    party_pos: Pos, caplog: pytest.LogCaptureFixture
) -> None:
    pos = party_pos
    first, odd = await new_parties(pos, 2)
    pos.set_time("party", odd, "expectedEndTime", "garbage")

    with caplog.at_level(logging.WARNING):
        page = ok(await pos.rpc("SearchPartiesV1", {}))

    assert [p["id"] for p in page["data"]] == [first, odd]
    assert "expectedEndTime" not in page["data"][1], "an optional time that cannot be read is unknown"
    assert_one_warning_naming(caplog, "party", odd, "expectedEndTime")
