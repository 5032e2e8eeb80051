"""POS times stored as local wall-clock text (a mapping's ``timezone``), across DST edges."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from epos_bridge.adapters.sqlmap.mapping import SHIPPED, Mapping, MappingError, load
from epos_bridge.protocol.times import parse_stored_time

LONDON = ZoneInfo("Europe/London")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-01 13:00:00.000", utc(2026, 7, 1, 12)),  # summer time, one hour ahead
        ("2026-12-01 13:00:00", utc(2026, 12, 1, 13)),  # winter: GMT
        # 25 Oct 2026: 01:30 happens twice (BST, then GMT); read as the later, 01:30 UTC.
        ("2026-10-25T01:30:00", utc(2026, 10, 25, 1, 30)),
        ("2026-10-25T00:59:00", utc(2026, 10, 24, 23, 59)),  # before the repeat: still BST
        ("2026-10-25T02:00:00", utc(2026, 10, 25, 2)),
        # 29 Mar 2026: 01:00 GMT jumps to 02:00 BST; 01:30 never showed: read as the later instant it could be.
        ("2026-03-29T01:30:00", utc(2026, 3, 29, 1, 30)),
        ("2026-03-29T00:59:00", utc(2026, 3, 29, 0, 59)),
        ("2026-03-29T02:00:00", utc(2026, 3, 29, 1)),
        ("2026-07-01T13:00:00Z", utc(2026, 7, 1, 13)),  # an explicit offset wins over the zone
        ("2026-07-01T13:00:00+02:00", utc(2026, 7, 1, 11)),
    ],
)
def test_local_text_is_read_in_the_pos_zone(text: str, expected: datetime) -> None:
    assert parse_stored_time(text, LONDON) == expected


def test_naive_text_stays_utc_without_a_zone() -> None:
    assert parse_stored_time("2026-07-01 13:00:00") == utc(2026, 7, 1, 13)


def london(**changes: object) -> Mapping:
    return load("floreant").model_copy(update={"timezone": "Europe/London", **changes})


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (utc(2026, 7, 1, 12), "2026-07-01T13:00:00.000"),
        (utc(2026, 10, 25, 0, 30), "2026-10-25T01:30:00.000"),  # the first 01:30 (BST)
        (utc(2026, 10, 25, 1, 30), "2026-10-25T01:30:00.000"),  # the second (GMT): same text
        (utc(2026, 3, 29, 1, 0, 0, 250_000), "2026-03-29T02:00:00.250"),
    ],
)
def test_statements_are_given_wall_clock_text_in_the_pos_zone(moment: datetime, text: str) -> None:
    assert london().time_text(moment) == text
    # and read back to an instant no earlier than the one written (the repeated hour reads later)
    back = parse_stored_time(text, LONDON)
    assert back is not None and back >= moment


def test_a_utc_pos_gets_iso_utc_as_before() -> None:
    mapping = load("floreant")
    assert mapping.timezone == "UTC"
    assert mapping.time_text(utc(2026, 7, 1, 12)) == "2026-07-01T12:00:00.000Z"


def test_an_unknown_zone_is_refused_naming_the_key(tmp_path: Path) -> None:
    folder = tmp_path
    text = (
        (SHIPPED / "floreant.toml").read_text(encoding="utf-8").replace('timezone = "UTC"', 'timezone = "Mars/Olympus"')
    )
    (folder / "m.toml").write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match=r"timezone.*Mars/Olympus.*IANA"):
        load(str(folder / "m.toml"))
