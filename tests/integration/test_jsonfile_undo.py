"""A file-database call that fails after it wrote puts every file back as it found it: the port's
all-or-nothing, so an answer refused (Dojo told "not created", "not recorded") leaves nothing
behind that a later call would count."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.jsonfile.store import JsonFolder, Snapshot
from epos_bridge.domain.errors import InvalidRequest


def test_a_failing_write_restores_replaced_files_and_removes_new_ones(tmp_path: Path) -> None:
    root = tmp_path / "pos"
    init_folder(root, demo=False, now=datetime.now(UTC))
    (root / "venue.json").write_text(json.dumps({"name": "The Kitchen"}))
    venue_before = (root / "venue.json").read_bytes()
    folder = JsonFolder(root)

    def work(snap: Snapshot) -> None:
        snap.save("venue.json", {"name": "changed"})
        snap.save("venue.json", {"name": "changed twice"})
        snap.save("orders/1.json", {"id": "1"})
        snap.save("payment_intents/abc.json", {"paymentIntentId": "pi_1", "events": []})
        raise InvalidRequest("refused after writing")

    with pytest.raises(InvalidRequest):
        folder.run(work, writable=True)
    assert (root / "venue.json").read_bytes() == venue_before
    assert not (root / "orders" / "1.json").exists()
    assert not (root / "payment_intents" / "abc.json").exists()
    # and a read sees the folder as it was, not a cached copy of what was undone
    assert folder.run(lambda snap: snap.load("venue.json"), writable=False) == json.loads(venue_before)


def test_a_write_that_succeeds_keeps_what_it_wrote(tmp_path: Path) -> None:
    root = tmp_path / "pos"
    init_folder(root, demo=False, now=datetime.now(UTC))
    folder = JsonFolder(root)
    folder.run(lambda snap: snap.save("orders/1.json", {"id": "1"}), writable=True)
    assert json.loads((root / "orders" / "1.json").read_text()) == {"id": "1"}
