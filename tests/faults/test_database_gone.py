"""The POS database deleted, made read-only, or replaced by a file that is not a database.

The bridge is (re)started while the file is broken, serves with the same adapter once it is back.

Each fault is met by the running dispatcher (a clear ``UnexpectedError`` naming the problem)
and by ``epos-bridge doctor`` (a FAIL line for the POS database naming the problem); when the
file is back, requests are served again and doctor passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from tests.faults.helpers import HEADERS, bridge_env, venue_with_orders
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos import sqlite_pos

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]


@contextlib.contextmanager
def deleted(path: Path) -> Iterator[None]:
    aside = path.with_name(path.name + ".aside")
    os.replace(path, aside)
    try:
        yield
    finally:
        os.replace(aside, path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """chmod 0o444; as root (which ignores modes) ``chattr +i`` as well."""
    path.chmod(0o444)
    immutable = False
    try:
        if os.geteuid() == 0:
            immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode == 0
            if not immutable:
                pytest.skip("running as root where chattr +i is not allowed: a file cannot be made read-only")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


@contextlib.contextmanager
def not_a_database(path: Path) -> Iterator[None]:
    aside = path.with_name(path.name + ".aside")
    os.replace(path, aside)
    path.write_bytes(b"this is the POS's CSV export, not a database\n" * 200)
    try:
        yield
    finally:
        os.replace(aside, path)


FAULTS = {
    # fault: (how, words the request error must contain, words doctor's FAIL line must contain)
    "deleted": (deleted, "missing", "missing"),
    "read-only": (read_only, "read-only", "read-only"),
    "not a database": (not_a_database, "not a usable SQLite database", "not a usable SQLite database"),
}


async def doctor(env: dict[str, str]) -> str:
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "epos_bridge", "doctor"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def db_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "POS database" in line and line.startswith(("PASS", "FAIL"))]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.logs_warnings("a missing database and its stale -wal set aside are logged")
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_requests_and_doctor_name_the_database_problem_and_recover(tmp_path: Path, fault: str) -> None:
    how, request_words, doctor_words = FAULTS[fault]
    db = tmp_path / "venue.db"
    (order,) = venue_with_orders(db, 1)
    api_key = f"sk_sandbox_fault_{uuid.uuid4().hex}"
    adapters = [sqlite_pos(db)]
    counter = iter(range(10_000))

    async def send(method: str, params: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps({"jsonrpc": "2.0", "id": f"req-{next(counter)}", "method": method, "params": params})
        served = await asyncio.wait_for(Dispatcher(adapters[-1]).handle_text(text), 15)
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response(method, response)
        return response

    def pay(n: int) -> dict[str, Any]:
        return {"headers": HEADERS, "orderId": order, "paymentIntentId": f"pi_gone_{n}",
                "paidAmount": {"value": 100, "currencyCode": "GBP"}}  # fmt: skip

    get = {"headers": HEADERS, "orderId": order}
    try:
        async with DojoSimulator(api_key=api_key, software_house_id=DEMO_SOFTWARE_HOUSE_ID) as sim:
            env = bridge_env(tmp_path, sim, api_key, db, tmp_path / "data")
            assert "result" in await send("GetOrderByIdV1", get)
            with how(db):
                # The bridge (re)starts while the file is broken. (A file made read-only under an
                # open WAL connection keeps taking writes into the -wal until a checkpoint; that
                # is SQLite's behaviour, not what this test is about.)
                await adapters[-1].close()
                adapters.append(sqlite_pos(db))
                # A read-only file still answers reads; the write is what must fail clearly.
                broken = await send("RecordOrderPaymentByIdV1", pay(1))
                assert broken["error"]["errorType"] == "UnexpectedError", broken
                assert request_words in broken["error"]["debugMessage"], broken
                line = db_line(await doctor(env))
                assert line.startswith("FAIL"), f"doctor passed a {fault} POS database: {line}"
                assert doctor_words in line, line
            assert "result" in await send("GetOrderByIdV1", get)
            assert "result" in await send("RecordOrderPaymentByIdV1", pay(2))
            assert db_line(await doctor(env)).startswith("PASS")
    finally:
        await adapters[-1].close()
