"""`epos-bridge db init` through the real console entry point, and the demo venue served end to end."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from epos_bridge.adapters.sqlite.schema import SCHEMA_VERSION
from epos_bridge.services.dispatcher import Dispatcher
from tests.helpers.contract import assert_valid_response
from tests.helpers.pos import sqlite_pos


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "epos_bridge", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_init_creates_a_versioned_database_and_is_repeatable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "pos.db"
    first = run_cli("db", "init", str(path))
    assert first.returncode == 0, first.stderr
    assert f"v0 -> v{SCHEMA_VERSION}" in first.stdout
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = run_cli("db", "init", str(path))
    assert again.returncode == 0 and "already current" in again.stdout


def test_init_refuses_a_foreign_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE their_orders (id INTEGER)")
    result = run_cli("db", "init", str(path))
    assert result.returncode == 1
    assert "not the reference schema" in result.stderr


def test_demo_refuses_a_database_that_already_has_data(tmp_path: Path) -> None:
    path = tmp_path / "pos.db"
    assert run_cli("db", "init", str(path), "--demo").returncode == 0
    second = run_cli("db", "init", str(path), "--demo")
    assert second.returncode == 1 and "already has rows" in second.stderr


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    result = run_cli("db", "init", str(path), "--demo")
    assert result.returncode == 0, result.stderr
    return path


SEARCHES = {
    "SearchOrdersV1": {},
    "SearchTablesV1": {},
    "SearchPartiesV1": {},
    "SearchReservationsV1": {},
    "ListAreasV1": {},
}


@pytest.mark.parametrize("method", list(SEARCHES))
async def test_every_search_returns_demo_data(demo_db: Path, method: str) -> None:
    adapter = sqlite_pos(demo_db)
    try:
        served = await Dispatcher(adapter).handle_text(
            json.dumps({"jsonrpc": "2.0", "id": "1", "method": method, "params": {"headers": {}, **SEARCHES[method]}})
        )
    finally:
        await adapter.close()
    assert served is not None and served.ok, served
    response = json.loads(served.response_text)
    assert_valid_response(method, response)
    data = response["result"] if method == "ListAreasV1" else response["result"]["data"]
    assert len(data) >= 3


async def test_demo_bills_and_orders_validate(demo_db: Path) -> None:
    adapter = sqlite_pos(demo_db)
    dispatcher = Dispatcher(adapter)
    try:
        search = await dispatcher.handle_text(
            json.dumps({"jsonrpc": "2.0", "id": "s", "method": "SearchOrdersV1", "params": {"headers": {}}})
        )
        assert search is not None
        orders = json.loads(search.response_text)["result"]["data"]
        assert len(orders) >= 12
        for order in orders:
            for method in ("GetOrderByIdV1", "GetOrderBillByIdV1"):
                served = await dispatcher.handle_text(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": order["id"],
                            "method": method,
                            "params": {"headers": {}, "orderId": order["id"]},
                        }
                    )
                )
                assert served is not None and served.ok
                assert_valid_response(method, json.loads(served.response_text))
    finally:
        await adapter.close()
