"""The real bridge against the Dojo simulator: in process (``Bridge``) and as ``epos-bridge run
--headless`` in a subprocess. Real sockets on 127.0.0.1, a real SQLite venue file."""

from __future__ import annotations

import random
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.app import STATE_DB_NAME, Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.domain.events import DomainEvent, LockCreated, LockReleased, PaymentRecorded
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.protocol.capabilities import CAPABILITY_VERSION
from epos_bridge.sim import flows
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from tests.e2e.conftest import REQUEST_LINE, CliProcess, posix_signals, started
from tests.helpers.contract import assert_valid_response

pytestmark = pytest.mark.timeout(60)


_stopped: weakref.WeakSet[Bridge] = weakref.WeakSet()


async def stop_once(bridge: Bridge) -> None:
    """Stop for the fixture's teardown too, without a second ``stop()`` (see the test below)."""
    if bridge not in _stopped:
        _stopped.add(bridge)
        await bridge.stop()


@pytest.fixture
async def bridge(make_settings: Callable[..., BridgeSettings]) -> AsyncIterator[Bridge]:
    running = Bridge(make_settings())
    try:
        yield running
    finally:
        await stop_once(running)


@pytest.fixture
def published(bridge: Bridge) -> list[DomainEvent]:
    """Every domain event ``bridge`` publishes, in order."""
    events: list[DomainEvent] = []
    bridge.on_domain_event(events.append)
    return events


def payments_for(db_path: Path, intent_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT order_id, paid_amount, tips_amount, status FROM payments WHERE payment_intent_id = ?",
            (intent_id,),
        ).fetchall()


def files_containing(root: Path, needle: bytes, name: str = "*") -> list[Path]:
    """Every file under ``root`` (any depth, any kind: SQLite, WAL, logs, output) holding ``needle``."""
    return [path for path in root.rglob(name) if path.is_file() and needle in path.read_bytes()]


async def a_payable_order(simulator: DojoSimulator) -> dict[str, Any]:
    page = await simulator.send("SearchOrdersV1", {"headers": {}, "payableOnly": True, "cursor": {"limit": 100}})
    assert "result" in page, page
    orders = [o for o in page["result"]["data"] if o["totalAmount"]["value"] - o["paidAmount"]["value"] >= 200]
    assert orders, "the demo venue has no order with at least 2.00 outstanding"
    order: dict[str, Any] = orders[-1]
    return order


def payment_params(order: dict[str, Any], intent_id: str, value: int = 150) -> dict[str, Any]:
    currency = order["totalAmount"]["currencyCode"]
    return {
        "headers": {"dojoRequestingProduct": "PayAtTable", "deviceId": "e2e-terminal"},
        "orderId": order["id"],
        "paymentIntentId": intent_id,
        "paidAmount": {"value": value, "currencyCode": currency},
        "tipsAmount": {"value": 15, "currencyCode": currency},
    }


# --- 1. the in-process bridge -----------------------------------------------------------------


async def test_handshake_sends_the_raw_key_and_software_house_id_and_no_reseller_id(
    bridge: Bridge, simulator: DojoSimulator, api_key: str
) -> None:
    await started(bridge, simulator)

    (handshake,) = simulator.gateway.handshakes
    assert handshake.status == 101
    assert ("Authorization", f"Basic {api_key}") in handshake.raw_headers  # raw key, never base64
    assert handshake.values("Authorization") == [f"Basic {api_key}"]
    assert ("software-house-id", DEMO_SOFTWARE_HOUSE_ID) in handshake.raw_headers
    assert handshake.values("software-house-id") == [DEMO_SOFTWARE_HOUSE_ID]
    assert handshake.values("reseller-id") == []


async def test_handshake_sends_the_reseller_id_when_one_is_set(
    make_settings: Callable[..., BridgeSettings], api_key: str
) -> None:
    async with DojoSimulator(api_key=api_key, reseller_id="reseller-e2e-7") as simulator:
        bridge = Bridge(make_settings(ws_url=simulator.ws_url, api_url=simulator.api_url, reseller_id="reseller-e2e-7"))
        try:
            await started(bridge, simulator)
        finally:
            await bridge.stop()
    (handshake,) = simulator.gateway.handshakes
    assert handshake.status == 101
    assert ("reseller-id", "reseller-e2e-7") in handshake.raw_headers
    assert handshake.values("reseller-id") == ["reseller-e2e-7"]
    assert handshake.values("Authorization") == [f"Basic {api_key}"]


async def test_start_registers_every_implemented_capability_once_then_reads_it_back(
    bridge: Bridge, simulator: DojoSimulator
) -> None:
    await started(bridge, simulator)

    implemented = {c.value for c in bridge.adapter.implemented_capabilities()}
    assert len(implemented) == 23
    (put,) = simulator.rest.requests_to("PUT", "/epos/integrations/ws")
    names = [entry["name"] for entry in put.json["capabilities"]]
    assert sorted(names) == sorted(implemented)  # exactly, and no duplicates
    assert {entry["version"] for entry in put.json["capabilities"]} == {CAPABILITY_VERSION} == {"v1"}
    paths = [(r.method, r.path) for r in simulator.rest.requests]
    assert paths.index(("GET", "/epos/integrations")) > paths.index(("PUT", "/epos/integrations/ws"))
    assert bridge.registration.error is None
    assert bridge.registration.report is not None and bridge.registration.report.in_sync


async def test_pay_at_table_through_the_gateway_lands_in_the_pos_file_and_reaches_listeners(
    bridge: Bridge, simulator: DojoSimulator, demo_db: Path, published: list[DomainEvent]
) -> None:
    await started(bridge, simulator)

    report = await flows.pay_at_table(simulator.send, rng=random.Random(7), parts=2)

    assert report.ok, (report.error, report.steps)
    assert len(report.payments) == 2
    for order_id, intent, paid, tip in report.payments:
        assert payments_for(demo_db, intent) == [(int(order_id), paid, tip, "Captured")]
    recorded = [e for e in published if isinstance(e, PaymentRecorded)]
    assert sorted(e.payment_intent_id for e in recorded) == sorted(p[1] for p in report.payments)
    created = [e for e in published if isinstance(e, LockCreated)]
    released = [e for e in published if isinstance(e, LockReleased)]
    assert len(created) == 1 and len(released) == 1
    assert created[0].lock_id == released[0].lock_id
    assert created[0].order_id == released[0].order_id == report.payments[0][0]


async def test_a_payment_repeated_with_the_same_id_after_a_reconnect_is_applied_once(
    bridge: Bridge, simulator: DojoSimulator, demo_db: Path, published: list[DomainEvent]
) -> None:
    await started(bridge, simulator)
    order = await a_payable_order(simulator)
    params = payment_params(order, "pi_e2e_repeat_1")

    first = await simulator.gateway.request("RecordOrderPaymentByIdV1", params, id="dojo-pay-1", timeout=10)
    assert "result" in first, first
    assert_valid_response("RecordOrderPaymentByIdV1", first)

    await simulator.gateway.drop_connections()  # a network drop: TCP abort, no close frame
    await simulator.gateway.wait_until(
        lambda: simulator.gateway.connections_opened == 2 and simulator.gateway.connected,
        timeout=10,
        what="the bridge to reconnect",
    )
    repeat = await simulator.gateway.request("RecordOrderPaymentByIdV1", params, id="dojo-pay-1", timeout=10)

    assert repeat == first
    assert len(payments_for(demo_db, "pi_e2e_repeat_1")) == 1
    assert [e.payment_intent_id for e in published if isinstance(e, PaymentRecorded)] == ["pi_e2e_repeat_1"]

    # Contract §1.2 (rec): a retry under a new id is still one payment (business key).
    await simulator.gateway.request("RecordOrderPaymentByIdV1", params, id="dojo-pay-1-retry", timeout=10)
    assert len(payments_for(demo_db, "pi_e2e_repeat_1")) == 1


async def test_stop_sends_a_going_away_close_frame(bridge: Bridge, simulator: DojoSimulator) -> None:
    statuses: list[ConnectionStatus] = []
    bridge.on_status(statuses.append)
    await started(bridge, simulator)

    await stop_once(bridge)

    await simulator.gateway.wait_until(
        lambda: simulator.gateway.connections_closed == 1, timeout=5, what="the server side to see the close"
    )
    assert simulator.gateway.close_codes == [1001]
    states = [s.state for s in statuses]
    assert ConnectionState.STOPPING in states
    assert states[-1] is ConnectionState.DISCONNECTED


async def test_stopping_twice_is_harmless(bridge: Bridge, simulator: DojoSimulator) -> None:
    """The tray's Quit and a SIGTERM can both ask; the second stop() must be a no-op."""
    await started(bridge, simulator)
    await stop_once(bridge)

    await bridge.stop()

    assert simulator.gateway.close_codes in ([], [1001])


# --- 3. a wrong API key ---------------------------------------------------------------------


async def test_a_wrong_key_is_auth_failed_with_a_friendly_rejection_and_never_shows_the_key(
    make_settings: Callable[..., BridgeSettings], simulator: DojoSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk_sandbox_wrong_" + "0f" * 16
    bridge = Bridge(make_settings(api_key=wrong_key))
    statuses: list[ConnectionStatus] = []
    bridge.on_status(statuses.append)
    try:
        await bridge.start()
        await simulator.gateway.wait_until(
            lambda: any(s.state is ConnectionState.AUTH_FAILED for s in statuses), timeout=10, what="auth_failed"
        )
        await simulator.gateway.wait_until(
            lambda: bridge.registration.error is not None, timeout=10, what="the registration to fail"
        )
    finally:
        await bridge.stop()

    assert [h.status for h in simulator.gateway.handshakes] == [401]
    assert simulator.gateway.connections_opened == 0
    auth_failed = next(s for s in statuses if s.state is ConnectionState.AUTH_FAILED)
    assert auth_failed.last_error
    assert auth_failed.next_retry_at is not None
    registration = bridge.registration
    assert registration.auth_rejected
    assert registration.report is None
    assert registration.error is not None and "rejected" in registration.error
    texts = [registration.error, *(s.last_error or "" for s in statuses), caplog.text]
    for text in texts:
        assert wrong_key not in text
    assert [r.path for r in simulator.rest.requests] == ["/epos/integrations/ws"]  # refused, not retried at once


# --- 2. `epos-bridge run --headless` as a real process --------------------------------------


@posix_signals
async def test_run_headless_serves_logs_each_request_and_stops_cleanly_on_sigterm(
    spawn: Callable[..., CliProcess],
    bridge_env: dict[str, str],
    simulator: DojoSimulator,
    demo_db: Path,
    data_dir: Path,
    api_key: str,
    tmp_path: Path,
) -> None:
    process = spawn(["run", "--headless"], bridge_env, name="run")
    await process.wait_for(lambda: simulator.gateway.connected, 20, "the bridge to connect")
    await simulator.gateway.wait_until(
        lambda: bool(simulator.rest.requests_to("GET", "/epos/integrations")), timeout=10, what="registration"
    )

    order = await a_payable_order(simulator)
    sent: dict[str, tuple[str, dict[str, Any]]] = {
        "e2e-tables": ("SearchTablesV1", {"headers": {}}),
        "e2e-missing": ("GetOrderByIdV1", {"headers": {}, "orderId": "no-such-order"}),
        "e2e-pay": ("RecordOrderPaymentByIdV1", payment_params(order, "pi_e2e_headless_1")),
    }
    answers = {rid: await simulator.gateway.request(m, p, id=rid, timeout=10) for rid, (m, p) in sent.items()}
    assert "result" in answers["e2e-tables"] and "result" in answers["e2e-pay"]
    assert answers["e2e-missing"]["error"]["errorType"] == "NotFound"
    assert len(payments_for(demo_db, "pi_e2e_headless_1")) == 1

    def logged() -> dict[str, list[re.Match[str]]]:
        found: dict[str, list[re.Match[str]]] = {}
        for line in process.stderr.splitlines():
            if (match := REQUEST_LINE.search(line)) is not None:
                found.setdefault(match["id"], []).append(match)
        return found

    await process.wait_for(lambda: set(sent) <= set(logged()), 5, "the request lines")
    lines = logged()
    expected_outcomes = {"e2e-tables": "ok", "e2e-missing": "NotFound", "e2e-pay": "ok"}
    for rid, (method, _) in sent.items():
        (match,) = lines[rid]  # exactly one line per request
        assert match["method"] == method
        assert match["outcome"] == expected_outcomes[rid]
        assert float(match["ms"]) >= 0

    code, seconds = await process.terminate(timeout=10)
    print(f"run --headless: SIGTERM to exit {seconds:.2f} s")

    assert code == 0, process.stderr
    assert seconds < 10
    await simulator.gateway.wait_until(lambda: simulator.gateway.connections_closed == 1, 5, "the close")
    assert simulator.gateway.close_codes[0] in (1000, 1001)
    assert "Traceback" not in process.stderr

    # The key appears nowhere: not in stderr, not in any file the run left behind.
    assert api_key not in process.stderr
    assert (data_dir / STATE_DB_NAME).exists()
    log_files = files_containing(tmp_path, b"e2e-pay", name="epos-bridge.log*")
    assert log_files, "run --headless wrote no log file with the request lines"
    # Control: the scan does read SQLite files and their WAL (the payment is found there) ...
    assert {p.name for p in files_containing(tmp_path, b"pi_e2e_headless_1")} & {
        demo_db.name,
        demo_db.name + "-wal",
    }
    # ... and the key is in none of them.
    assert files_containing(tmp_path, api_key.encode()) == []
