"""Entity ids are exact strings (contract §4): ``"007"`` is not order ``7``, ``" 7"`` is not ``"7"``."""

from __future__ import annotations

MAX_INT_ID_DIGITS = 18
"""Below 2**63: a longer number cannot be an SQLite rowid, and is simply not an id we issued."""


def canonical_int_id(wire_id: str) -> int | None:
    """The integer an id names when it is written exactly as we write integer ids, else ``None``.

    Only ASCII digits without a leading zero (``"0"`` itself aside): ``"²".isdigit()`` is true,
    ``int(" 7")`` and ``int("007")`` are 7, and none of those is an id the POS issued.
    """
    if not (0 < len(wire_id) <= MAX_INT_ID_DIGITS and wire_id.isascii() and wire_id.isdigit()):
        return None
    if wire_id[0] == "0" and wire_id != "0":
        return None
    return int(wire_id)
