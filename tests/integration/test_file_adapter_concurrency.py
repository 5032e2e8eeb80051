"""The bridge and the venue's POS editing one file database at the same time.

The POS is a real second OS process: it takes the folder lock, reads an order, adds a cash
payment and a note, and replaces the file atomically, printing a journal line after each write.
The bridge records card payments on the same orders through the real dispatcher meanwhile, and
a reader thread parses every file continuously *without* the lock, as a careless reporting
tool would. What must hold: no update from either side is lost, replays are stored once, and
no reader ever sees a file that does not parse.

The two must really write at the same time, whatever their relative speed (left alone, whichever
starts first takes the lock over and over until it is done). So the POS keeps editing until the
bridge has made all its payments (and it has made at least ``POS_EDITS`` edits), and the bridge
pays in rounds (each intent and its replay at once, on every order), starting the next round
only once the POS has saved an order that already holds the last round's payment. The files must
show it: till edits between card payments on the same order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from epos_bridge.adapters.jsonfile import FolderLock, write_json_atomic
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.protocol.base import format_utc
from epos_bridge.services.dispatcher import Dispatcher
from tests.helpers.pos import jsonfile_pos

ORDERS = 4
TOTAL = 1_000_000_000
CARD_PER_ORDER = 12
POS_EDITS = 120

POS_SCRIPT = r"""
import json, sys, random
from pathlib import Path
from datetime import UTC, datetime
from epos_bridge.adapters.jsonfile import FolderLock, write_json_atomic

import threading, time

folder, orders, edits = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = FolderLock(folder, timeout_s=10)
rng = random.Random(7)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()  # "stop": close stdin
print("READY", flush=True)
n = 0
while n < edits or not stop.is_set():
    key = rng.randint(1, orders)
    with lock.hold():
        path = folder / "orders" / f"{key}.json"
        order = json.loads(path.read_text())
        order["payments"].append({"paymentIntentId": None, "tender": "other", "paidAmount": 1,
                                  "status": "Recorded", "recordedAt": order["updatedAt"]})
        order["note"] = f"till edit {n}"
        order["updatedAt"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        write_json_atomic(path, order)
        cards = sum(1 for p in order["payments"] if p["tender"] == "card")
    print(f"EDIT {key} {cards}", flush=True)  # the order saved, and how many card payments it held
    n += 1
    time.sleep(rng.uniform(0, 0.002))  # the till's own work between two saves
print("DONE", flush=True)
"""


def seed(folder: Path) -> None:
    init_folder(folder, demo=False, now=datetime.now(UTC))
    now = format_utc(datetime.now(UTC))
    with FolderLock(folder).hold():
        write_json_atomic(folder / "tables.json", [{"id": "T1", "name": "1"}])
        for key in range(1, ORDERS + 1):
            write_json_atomic(
                folder / "orders" / f"{key}.json",
                {
                    "id": str(key),
                    "status": "New",
                    "details": {"orderType": "DineIn", "dineIn": {"tableId": "T1"}},
                    "items": [],
                    "currencyCode": "GBP",
                    "totalAmount": TOTAL,
                    "createdAt": now,
                    "updatedAt": now,
                    "payments": [],
                },
            )


def read_everything_forever(folder: Path, stop: threading.Event, torn: list[str], reads: list[int]) -> None:
    while not stop.is_set():
        for path in folder.rglob("*.json"):
            if path.name.startswith("."):
                continue  # a temporary file being written; never a name a reader looks up
            try:
                json.loads(path.read_bytes())
            except FileNotFoundError:
                continue
            except ValueError as exc:
                torn.append(f"{path.name}: {exc}")
            reads[0] += 1


async def test_pos_process_and_bridge_interleave_without_lost_updates_or_torn_files(tmp_path: Path) -> None:
    folder = tmp_path / "pos"
    seed(folder)
    adapter = jsonfile_pos(folder, lock_timeout_s=10)
    dispatcher = Dispatcher(adapter)
    stop, torn, reads = threading.Event(), list[str](), [0]
    reader = threading.Thread(target=read_everything_forever, args=(folder, stop, torn, reads), daemon=True)
    reader.start()
    pos = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        POS_SCRIPT,
        str(folder),
        str(ORDERS),
        str(POS_EDITS),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert pos.stdin is not None and pos.stdout is not None
    assert (await pos.stdout.readline()).decode().strip() == "READY"

    async def pay(order: int, n: int) -> dict[str, object]:
        request = {
            "jsonrpc": "2.0",
            "id": f"{order}-{n}",
            "method": "RecordOrderPaymentByIdV1",
            "params": {
                "headers": {},
                "orderId": str(order),
                "paymentIntentId": f"pi_{order}_{n % (CARD_PER_ORDER // 2)}",  # every intent sent twice
                "paidAmount": {"value": 100, "currencyCode": "GBP"},
            },
        }
        served = await dispatcher.handle_text(json.dumps(request))
        assert served is not None
        answer: dict[str, object] = json.loads(served.response_text)
        return answer

    lines: list[str] = []
    saved = asyncio.Event()

    async def follow_the_pos() -> None:
        assert pos.stdout is not None
        async for raw in pos.stdout:
            lines.append(raw.decode().strip())
            saved.set()

    async def pos_saved_an_order_holding(cards: int) -> None:
        """Until the POS has saved an order holding ``cards`` card payments (30 s is a failure guard)."""
        async with asyncio.timeout(30):
            while not any(line.startswith("EDIT ") and int(line.split()[2]) >= cards for line in lines):
                saved.clear()
                await saved.wait()

    rounds = CARD_PER_ORDER // 2
    answers: list[dict[str, object]] = []
    try:
        following = asyncio.create_task(follow_the_pos())
        for round_ in range(rounds):
            answers += await asyncio.gather(
                *(pay(order, n) for n in (round_, round_ + rounds) for order in range(1, ORDERS + 1))
            )
            if round_ < rounds - 1:
                await pos_saved_an_order_holding(round_ + 1)  # a till edit lands between this round and the next
        pos.stdin.close()  # the bridge is done: the POS may stop once it has made POS_EDITS edits
        await asyncio.wait_for(following, 60)
        await asyncio.wait_for(pos.wait(), 60)
    finally:
        if pos.returncode is None:
            pos.kill()
            await pos.wait()
        stop.set()
        reader.join(10)
        await adapter.close()

    assert pos.returncode == 0, (await pos.stderr.read()).decode() if pos.stderr else ""
    journal = " ".join(lines).split()
    assert journal[-1] == "DONE"
    assert all("error" not in a for a in answers), [a for a in answers if "error" in a][:3]
    pos_edits = [int(word) for previous, word in itertools.pairwise(journal) if previous == "EDIT"]
    assert len(pos_edits) >= POS_EDITS
    interleaved = 0
    for key in range(1, ORDERS + 1):
        order = json.loads((folder / "orders" / f"{key}.json").read_text())
        cash = [p for p in order["payments"] if p["tender"] == "other"]
        card = [p["paymentIntentId"] for p in order["payments"] if p["tender"] == "card"]
        assert len(cash) == pos_edits.count(key), f"order {key}: a till edit was lost"
        assert sorted(card) == sorted(f"pi_{key}_{i}" for i in range(CARD_PER_ORDER // 2)), (
            f"order {key}: card payments"
        )
        tenders = "".join("c" if p["tender"] == "card" else "." for p in order["payments"])
        interleaved += tenders.strip(".").count(".")  # till edits between this order's card payments
    assert interleaved > 0, "the POS and the bridge never wrote at the same time"
    assert torn == [], torn[:5]
    assert reads[0] > 0
