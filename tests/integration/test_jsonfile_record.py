"""The file database keeps what Dojo was told: a call that fails after it wrote puts every file
back as it found it (the port's all-or-nothing: an answer refused leaves nothing a later call
would count), and a folder from before the bridge's ledger is brought over on its first write."""

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


async def test_a_folder_from_before_the_ledger_is_brought_over_on_the_first_write(tmp_path: Path) -> None:
    """Payments an older bridge recorded live only in their order's file; after the first write
    of this one they are in the ledger too, so the till removing the order forgets nothing."""
    from epos_bridge.testing.contract_suite import failed, ok, pay
    from tests.helpers.contract import rpc_over
    from tests.helpers.pos import jsonfile_pos

    root = tmp_path / "pos"
    init_folder(root, demo=False, now=datetime.now(UTC))
    (root / "ledger.json").unlink()  # as an older bridge left the folder
    stamp = "2026-12-07T10:00:00.000Z"
    order = {"id": "1", "status": "New", "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}}, "items": [],
             "currencyCode": "GBP", "totalAmount": 5000, "createdAt": stamp, "updatedAt": stamp, "lock": None,
             "payments": [{"paymentIntentId": "pi_old", "tender": "card", "paidAmount": 2000, "status": "Recorded",
                           "recordedAt": stamp}]}  # fmt: skip
    (root / "orders" / "1.json").write_text(json.dumps(order))
    (root / "orders" / "2.json").write_text(json.dumps({**order, "id": "2", "payments": []}))
    adapter = jsonfile_pos(root)
    try:
        rpc = rpc_over(adapter)
        ok(await rpc("RecordOrderPaymentByIdV1", pay("2", "pi_new", 100)))  # any write brings it over
        assert (root / "ledger.json").exists()
        (root / "orders" / "1.json").unlink()  # the till removes the paid order
        assert ok(await rpc("RecordOrderPaymentByIdV1", pay("1", "pi_old", 2000)))["id"] == "1"
        failed(await rpc("RecordOrderPaymentByIdV1", pay("1", "pi_other", 10)), "Conflict")
    finally:
        await adapter.close()
