"""Customer names (``Customer.name``, ``Party.name``, ``Reservation.name``, contract §4.2, §4.4,
§4.5; and the customer's email and phone beside the name) never reach the bridge's logs or the
diagnostics zip, even with logging at DEBUG.

A venue serving over the real socket (gateway session against the simulator, real dispatcher,
real SQLite POS), the bridge's own logging set-up at DEBUG, a booking search and an order with a
customer; then the diagnostics zip as support gets it. The one place that removes them is
``protocol.redaction.redact_personal``, which the logging filter and the zip both apply.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from epos_bridge.config import BridgeSettings
from epos_bridge.diagnostics import DiagnosticsSources, RecentRequests, build_diagnostics
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.redaction import KnownSecrets, redact_personal
from epos_bridge.services.dispatcher import Dispatcher, Served
from epos_bridge.sim.gateway import GatewaySimulator
from tests.conftest import money
from tests.helpers.builders import create_order_params, create_party_params, create_reservation_params
from tests.helpers.gateway import serving_over_loopback
from tests.helpers.logging_setup import bridge_logging
from tests.helpers.pos import sqlite_pos

API_KEY = "sk_sandbox_fake_NoNamesInLogs_8c2e41"
HOUSE = "acme-pos"
GUEST = "Philippa Quennell-Ashworth"
DINER = "Bartholomew Okonkwo-Lindqvist"
EMAIL = "bartholomew.ol@example.org"
PHONE = "+44 7700 900123"
PERSONAL = [GUEST, "Quennell-Ashworth", DINER, "Okonkwo-Lindqvist", EMAIL, PHONE]


class Lines(logging.Handler):
    """Every record as the bridge's handlers write it (after the bridge's filter)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def debug_logging(log_dir: Path) -> Iterator[Lines]:
    with bridge_logging(KnownSecrets([API_KEY]), log_dir) as redactor:
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)  # the bridge's handlers pass everything; this makes loggers emit it
        lines = Lines()
        lines.addFilter(redactor)
        root.addHandler(lines)
        try:
            yield lines
        finally:
            root.removeHandler(lines)


@asynccontextmanager
async def venue(pos_db_path: Path, recent: RecentRequests) -> AsyncIterator[GatewaySimulator]:
    adapter = sqlite_pos(pos_db_path)
    dispatcher = Dispatcher(adapter)

    async def serve(text: str | bytes) -> Served | None:
        served = await dispatcher.handle_text(text)
        if served is not None:
            recent.record(served)  # what Bridge.on_served feeds the diagnostics
        return served

    try:
        async with serving_over_loopback(serve, DojoCredentials(API_KEY, HOUSE)) as sim:
            yield sim
    finally:
        await adapter.close()


async def ask(sim: GatewaySimulator, method: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await sim.request(method, params)
    assert "result" in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


async def test_no_customer_name_in_any_log_record_or_the_diagnostics_zip(pos_db_path: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    recent = RecentRequests()
    with debug_logging(log_dir) as written:
        async with venue(pos_db_path, recent) as sim:
            await ask(sim, "CreateReservationV1", create_reservation_params("dojo-r1", name=GUEST))
            found = await ask(sim, "SearchReservationsV1", {"headers": {}})
            await ask(sim, "CreatePartyV1", create_party_params("dojo-p1", name=GUEST))
            parties = await ask(sim, "SearchPartiesV1", {"headers": {}})
            customer = {"name": DINER, "emailAddress": EMAIL, "phoneNumber": PHONE}
            order = await ask(sim, "CreateOrderV1", create_order_params("dojo-o1", customer=customer))
            again = await ask(sim, "GetOrderByIdV1", {"headers": {}, "orderId": order["id"]})
            await ask(sim, "SearchOrdersV1", {"headers": {}})
            paid = {"headers": {}, "orderId": order["id"], "paymentIntentId": "pi_1", "paidAmount": money(1000)}
            await ask(sim, "RecordOrderPaymentByIdV1", paid)

    assert found["data"][0]["name"] == GUEST and parties["data"][0]["name"] == GUEST, "Dojo gets the names"
    assert again["customer"] == customer
    assert any("TEXT" in line for line in written.lines), "the frames were logged at DEBUG (else this proves nothing)"
    log_text = "\n".join(path.read_text(encoding="utf-8") for path in log_dir.iterdir())
    for personal in PERSONAL:
        assert not [line for line in written.lines if personal in line], f"{personal!r} in a log record"
        assert personal not in log_text, f"{personal!r} in the log file"

    settings = BridgeSettings(
        software_house_id=HOUSE, db_path=pos_db_path, data_dir=tmp_path / "data", api_key=SecretStr(API_KEY)
    )
    archive = build_diagnostics(tmp_path / "diagnostics.zip", DiagnosticsSources(settings, log_dir, recent.snapshot()))
    with zipfile.ZipFile(archive) as opened:
        members = {name: opened.read(name).decode("utf-8") for name in opened.namelist()}
    assert any(name.startswith("logs/") for name in members) and "requests.json" in members
    for name, text in members.items():
        for personal in PERSONAL:
            assert personal not in text, f"{personal!r} in {name} of the diagnostics zip"


def test_a_log_written_before_the_rule_is_cleaned_in_the_zip(tmp_path: Path) -> None:
    """An old log (an older bridge, or DEBUG from a library) still holding names: the zip removes
    them as it removes secrets, whatever produced the file."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "epos-bridge.log").write_text(
        '2026-03-01 DEBUG websockets.client: < TEXT \'{"jsonrpc": "2.0", "id": "x", "method": "Cr...'
        f"{GUEST}\"}}}}' [399 bytes]\n"
        f"2026-03-01 ERROR epos_bridge: 1 validation error for Reservation input_value={{'name': '{GUEST}', "
        f"'covers': None}}\n"
        f'2026-03-01 INFO epos_bridge: {{"customer": {{"name": "{DINER}", "emailAddress": "{EMAIL}", '
        f'"phoneNumber": "{PHONE}"}}}}\n',
        encoding="utf-8",
    )
    settings = BridgeSettings(software_house_id=HOUSE, data_dir=tmp_path / "data")
    archive = build_diagnostics(tmp_path / "d.zip", DiagnosticsSources(settings, log_dir))
    with zipfile.ZipFile(archive) as opened:
        text = opened.read("logs/epos-bridge.log").decode("utf-8")
    for personal in PERSONAL:
        assert personal not in text, (personal, text)
    assert "[399 bytes]" in text and "covers" in text, "the rest of each line is kept for support"


@pytest.mark.parametrize(
    "text",
    [
        f'{{"name": "{GUEST}"}}',
        f'{{"name":"{GUEST}","covers":2}}',
        f"{{'name': '{GUEST}'}}",
        f"Reservation(name='{GUEST}', covers=2)",
        f'{{\\"name\\": \\"{GUEST}\\"}}',  # JSON inside JSON
        f'{{"customer_name": "{GUEST}"}}',
        f'< TEXT \'{{"jsonrpc": "2.0", "method": "Se...{GUEST}"}}]}}}}\' [523 bytes]',
        f'{{"name": "{GUEST} \\"the boss\\""}}',
    ],
)
def test_every_form_a_name_takes_in_text_is_removed(text: str) -> None:
    cleaned = redact_personal(text)
    assert "Quennell-Ashworth" not in cleaned, cleaned
    assert "the boss" not in cleaned, cleaned
