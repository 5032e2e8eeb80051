"""Rules for the records Dojo creates on the POS: orders, parties and reservations.

Dojo may send a create again (contract §1.2: no replay, and a retry need not reuse the JSON-RPC
id), so a create is idempotent on Dojo's own id; a party or reservation is deleted softly, so its
id is never reused and a second delete is still success. Each function takes what an adapter
read inside its transaction and says what to answer or store; it raises the contract error
otherwise. ``K`` is the adapter's own key (an integer row id, a file number).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from epos_bridge.domain.errors import Conflict, InvalidRequest, NotFound

K = TypeVar("K")


@dataclass(frozen=True)
class RecordKind:
    """How the rules name a kind of record to Dojo: in messages, and the field of its Dojo id."""

    noun: str
    dojo_id_field: str


ORDER = RecordKind("order", "dojoOrderId")
PARTY = RecordKind("party", "dojoPartyId")
RESERVATION = RecordKind("reservation", "dojoReservationId")


@dataclass(frozen=True)
class StoredRecord(Generic[K]):
    """An order, party or reservation the POS holds, as far as these rules need to know it.

    ``dojo_id``: the Dojo id it was created or last updated under (``None``: made on the till).
    """

    key: K
    dojo_id: str | None = None
    deleted: bool = False


def replay_of(kind: RecordKind, dojo_id: str, found: StoredRecord[K] | None) -> K | None:
    """The record to answer a create with, or ``None`` when it is new and must be stored.

    ``found`` is the record already holding ``dojo_id``, if any. Contract §3.4, §3.12, §3.17
    (rec): idempotent on Dojo's id, so a repeat answers what is stored and writes nothing. A
    record deleted since cannot come back under the same id (its id is never reused, §3.15):
    ``Conflict``, so Dojo does not believe it exists.
    """
    if found is None:
        return None
    if found.deleted:
        raise Conflict(f"{kind.noun} {dojo_id!r} was deleted and cannot be created again")
    return found.key


def live(kind: RecordKind, wire_id: str, found: StoredRecord[K] | None) -> K:
    """The key of a record Dojo may read or change: ``NotFound`` once deleted (Dojo reads that
    as "deleted on the POS", contract §1.4) or for an id never issued."""
    if found is None or found.deleted:
        raise NotFound(f"{kind.noun} {wire_id!r} does not exist")
    return found.key


def decide_soft_delete(kind: RecordKind, wire_id: str, found: StoredRecord[K] | None) -> K | None:
    """The key to mark deleted now; ``None`` when it already is (a repeat writes nothing).

    Contract §3.15/§3.20 (rec): deleting twice is success; ``NotFound`` only for an id that
    never existed.
    """
    if found is None:
        raise NotFound(f"{kind.noun} {wire_id!r} does not exist")
    return None if found.deleted else found.key


def decide_update(
    kind: RecordKind,
    wire_id: str,
    found: StoredRecord[K] | None,
    dojo_id: str,
    table_ids: Sequence[str],
    known_tables: Container[str],
) -> K:
    """The key to replace (UpdateParty §3.14, UpdateReservation §3.19), in the order Dojo is told.

    The record must be live; the Dojo id sent must be the one it holds (a record made on the
    till has none yet, and takes Dojo's); every table must exist.
    """
    key = live(kind, wire_id, found)
    if found is not None and found.dojo_id not in (None, dojo_id):
        raise InvalidRequest(f"{kind.dojo_id_field} {dojo_id!r} does not match {kind.noun} {wire_id}")
    check_tables(table_ids, known_tables)
    return key


def check_tables(table_ids: Sequence[str], known_tables: Container[str]) -> None:
    """``InvalidRequest`` naming every table the POS does not have (contract §3.12, §3.17)."""
    unknown = [t for t in table_ids if t not in known_tables]
    if unknown:
        raise InvalidRequest(f"tableIds: unknown table(s) {', '.join(repr(t) for t in unknown)}")


def check_window(start: datetime, end: datetime) -> None:
    """A visit ends after it starts (contract §3.17, §3.19): judged before anything is read."""
    if end <= start:
        raise InvalidRequest("endTime must be after startTime")
