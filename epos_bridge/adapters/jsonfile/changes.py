"""What changed in a file database, for the POS-event relay (ports.ChangeSource, contract §5.2).

Change detection is stat polling into a durable journal, so the POS has to do nothing extra:

* each poll stats ``orders/``, ``parties/`` and ``reservations/`` under the exclusive folder lock;
* a file whose identity (inode, size, mtime, ctime) changed, or whose mtime is still inside the
  racy window (:data:`store.RACY_WINDOW_NS`), is parsed and its content hashed *without* the
  ``lock`` key, so Dojo's own lock traffic is not reported as an order edit (the reference
  schema's triggers ignore ``order_locks`` in the same way);
* a new file is an ``insert``, a changed hash an ``update``, a vanished file a ``delete``; each
  gets the next sequence number in ``changes.json``, written atomically with the hashes it was
  decided on. Sequence numbers therefore survive restarts, and edits made while the bridge was
  stopped are found by the first poll after it starts.

The first poll of a folder records what is there without reporting it: history is not replayed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from epos_bridge.adapters.jsonfile.store import RACY_WINDOW_NS, JsonFolder, Snapshot
from epos_bridge.ports import ChangedEntity, PosChange

JOURNAL = "changes.json"
WATCHED: tuple[tuple[str, ChangedEntity], ...] = (
    ("orders", "order"),
    ("parties", "party"),
    ("reservations", "reservation"),
)


class JsonFileChangeLog:
    """Implements :class:`epos_bridge.ports.ChangeSource` for a :class:`JsonFolder`."""

    def __init__(self, folder: JsonFolder) -> None:
        self._folder = folder

    async def latest_change(self) -> int:
        journal = await self._folder.write(_sync)
        return int(journal["nextSeq"]) - 1

    async def changes_after(self, seq: int, limit: int) -> list[PosChange]:
        journal = await self._folder.write(_sync)
        found = [c for c in journal["changes"] if int(c["seq"]) > seq][:limit]
        return [PosChange(int(c["seq"]), c["entity"], str(c["entityId"]), str(c["change"])) for c in found]

    async def forget_changes_through(self, seq: int) -> None:
        def work(snap: Snapshot) -> None:
            journal = _sync(snap)
            kept = [c for c in journal["changes"] if int(c["seq"]) > seq]
            if len(kept) != len(journal["changes"]):
                snap.save(JOURNAL, {**journal, "changes": kept})

        await self._folder.write(work)


def _sync(snap: Snapshot) -> dict[str, Any]:
    """Bring the journal up to date with the files; runs under the exclusive lock."""
    stored = snap.load(JOURNAL, fresh=True)
    first_poll = not isinstance(stored, dict)
    journal: dict[str, Any] = stored if isinstance(stored, dict) else {"nextSeq": 1, "changes": [], "seen": {}}
    seen: dict[str, list[Any]] = dict(journal.get("seen", {}))
    next_seq = int(journal.get("nextSeq", 1))
    changes = list(journal.get("changes", []))
    now_ns = time.time_ns()
    current: dict[str, list[Any]] = {}
    dirty = first_poll
    for directory, entity in WATCHED:
        base = snap.root / directory
        try:
            names = sorted(os.listdir(base))
        except FileNotFoundError:
            names = []
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            relative = f"{directory}/{name}"
            try:
                stat = os.stat(base / name)
            except FileNotFoundError:
                continue
            identity = [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
            before = seen.get(relative)
            racy = now_ns - stat.st_mtime_ns < RACY_WINDOW_NS
            if before is not None and before[:4] == identity and not racy:
                current[relative] = before
                continue
            digest = _content_hash(snap, relative)
            current[relative] = [*identity, digest]
            if before != current[relative]:
                dirty = True
            if first_poll or (before is not None and before[4] == digest):
                continue
            change = "insert" if before is None else "update"
            changes.append({"seq": next_seq, "entity": entity, "entityId": name[: -len(".json")], "change": change})
            next_seq += 1
    for relative in sorted(set(seen) - set(current)):
        directory, name = relative.split("/", 1)
        entity = dict(WATCHED)[directory]
        changes.append({"seq": next_seq, "entity": entity, "entityId": name[: -len(".json")], "change": "delete"})
        next_seq += 1
        dirty = True
    journal = {"nextSeq": next_seq, "changes": changes, "seen": current}
    if dirty:
        snap.save(JOURNAL, journal)
    return journal


def _content_hash(snap: Snapshot, relative: str) -> str:
    """What the file says apart from Dojo's lock, so lock traffic is not an edit."""
    document = snap.load(relative, fresh=True)
    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k != "lock"}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
