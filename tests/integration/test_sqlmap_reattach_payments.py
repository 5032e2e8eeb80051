"""A payment is counted once, however often the bridge's tables are detached and attached again:
``db detach`` keeps the payment record (and refuses while a bridge serves the database), and the
"run db attach again" hint never leads through a detach that forgets it."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters.registry import BUILT_IN_SQLMAP
from epos_bridge.adapters.sqlmap import setup
from epos_bridge.host.instance import InstanceLock, Venue
from epos_bridge.ports import AdapterInitError
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.testing.contract_suite import STANDARD_VENUE, pay
from tests.helpers.child import db_cli
from tests.helpers.floreant import FloreantTill, floreant
from tests.helpers.pos import sqlmap_pos

INTENT = "pi_detach_then_attach"


async def record_payment(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One RecordOrderPaymentByIdV1 as Dojo sends it, through a freshly opened sqlmap adapter."""
    adapter = sqlmap_pos(path, floreant())
    try:
        served = await Dispatcher(adapter).handle_text(
            json.dumps({"jsonrpc": "2.0", "id": "pay", "method": "RecordOrderPaymentByIdV1", "params": params})
        )
    finally:
        await adapter.close()
    assert served is not None
    response: dict[str, Any] = json.loads(served.response_text)
    return response


def card_rows(path: Path, intent: str) -> list[tuple[Any, ...]]:
    """Floreant's own payment rows for the intent (its card transaction id), whatever the bridge keeps."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT TICKET_ID, ROUND(AMOUNT * 100) FROM TRANSACTIONS WHERE CARD_TRANSACTION_ID = ?", [intent]
        ).fetchall()


@pytest.fixture
def venue(tmp_path: Path) -> tuple[Path, str]:
    till = FloreantTill(tmp_path / "floreant.db")
    till.seed(STANDARD_VENUE)
    return till.path, till.add_open_order("T1", 10000, STANDARD_VENUE.currency)


async def test_detach_then_attach_then_a_retried_payment_is_counted_once(
    tmp_path: Path, venue: tuple[Path, str]
) -> None:
    path, order = venue
    first = await record_payment(path, pay(order, INTENT, 4000))
    assert "result" in first, first
    assert len(card_rows(path, INTENT)) == 1

    detached = db_cli(tmp_path, "detach", str(path))
    assert detached.returncode == 0, detached.stderr
    attached = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant")
    assert attached.returncode == 0, attached.stderr
    again = await record_payment(path, pay(order, INTENT, 4000))  # Dojo retries the same intent

    assert again["result"] == first["result"], "a replay answers as the first time"
    assert card_rows(path, INTENT) == [(int(order), 4000.0)], "one POS payment row for one card payment"


async def test_detach_refuses_while_a_bridge_serves_the_database(tmp_path: Path, venue: tuple[Path, str]) -> None:
    path, order = venue
    await record_payment(path, pay(order, INTENT, 4000))
    with closing(sqlite3.connect(path)) as conn:
        before = conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
    serving = InstanceLock(tmp_path / "bridge-data", Venue(path, "sk_sandbox_serving"))
    owner = serving.acquire(role="headless")
    try:
        refused = db_cli(tmp_path, "detach", str(path))
        dry = db_cli(tmp_path, "detach", str(path), "--dry-run")
    finally:
        serving.release()

    assert refused.returncode == 1
    assert "a bridge is serving" in refused.stderr and f"pid {owner.pid}" in refused.stderr, refused.stderr
    assert "stop it" in refused.stderr
    assert dry.returncode == 1 and "a bridge is serving" in dry.stderr
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall() == before


async def test_following_the_attach_again_hint_keeps_the_payment_record(
    tmp_path: Path, venue: tuple[Path, str]
) -> None:
    """A database lacking a change trigger (the mapping gained a table) says to attach again;
    doing just that adds the trigger and keeps every payment the bridge recorded."""
    path, order = venue
    first = await record_payment(path, pay(order, INTENT, 4000))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER EPOS_BRIDGE_TRANSACTIONS_INSERT")
        conn.commit()

    problem = await BUILT_IN_SQLMAP.with_mapping("floreant").problem(path)
    assert problem is not None and "EPOS_BRIDGE_TRANSACTIONS_INSERT" in problem
    assert f"epos-bridge db attach {path} --mapping floreant" in problem, problem
    assert "detach" not in problem
    hinted = db_cli(tmp_path, "attach", str(path), "--mapping", "floreant")
    assert hinted.returncode == 0, hinted.stderr
    assert await BUILT_IN_SQLMAP.with_mapping("floreant").problem(path) is None

    again = await record_payment(path, pay(order, INTENT, 4000))
    assert again["result"] == first["result"]
    assert len(card_rows(path, INTENT)) == 1


async def test_forgetting_the_payment_record_is_explicit_and_not_while_dojo_may_retry(
    tmp_path: Path, venue: tuple[Path, str]
) -> None:
    path, order = venue
    await record_payment(path, pay(order, INTENT, 4000))
    kept = db_cli(tmp_path, "detach", str(path))
    assert kept.returncode == 0, kept.stderr
    assert "payment record" in kept.stdout and "--forget-payments" in kept.stdout

    with pytest.raises(AdapterInitError, match="recorded in the last"):
        setup.detach(path, forget_payments=True)
    with closing(sqlite3.connect(path)) as conn:  # a month on: Dojo retries nothing that old
        conn.execute("UPDATE EPOS_BRIDGE_PAYMENTS SET RECORDED_AT = '2020-01-01T00:00:00.000Z'")
        conn.execute("UPDATE EPOS_BRIDGE_INTENT_EVENTS SET RECEIVED_AT = '2020-01-01T00:00:00.000Z'")
        conn.execute("UPDATE EPOS_BRIDGE_ORDERS SET ANSWERED_AT = '2020-01-01T00:00:00.000Z'")  # the registry too
        conn.commit()
    forgot = db_cli(tmp_path, "detach", str(path), "--forget-payments")
    assert forgot.returncode == 0, forgot.stderr
    with closing(sqlite3.connect(path)) as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name GLOB 'EPOS_BRIDGE_*'").fetchall()
    assert len(card_rows(path, INTENT)) == 1, "the POS's own payment row is the POS's: it stays"
