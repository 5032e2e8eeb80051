"""Shared fixtures: a real SQLite POS file, the reference adapter and the dispatcher over it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from epos_bridge.adapters.sqlite.demo import seed_demo
from epos_bridge.adapters.sqlite.schema import migrate
from epos_bridge.domain.events import DomainEvent
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import PosCalls
from tests.helpers.contract import assert_valid_response
from tests.helpers.keyring_backend import RealKeyring, open_real_keyring
from tests.helpers.pos import sqlite_pos

Rpc = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def pos_db_path(tmp_path: Path) -> Path:
    """An empty, migrated reference database with one venue, two areas and four tables."""
    path = tmp_path / "pos.db"
    db = sqlite_utils.Database(path)
    migrate(db)
    db.table("venue").insert(
        {
            "id": 1,
            "name": "Test Kitchen",
            "address_lines": json.dumps(["1 High Street", "Bristol"]),
            "postcode": "BS1 1AA",
            "vat_number": "GB123456789",
            "footer_text": "Thank you!",
        }
    )
    db.table("areas").insert_all([{"id": "main", "name": "Main floor"}, {"id": "bar", "name": "Bar"}])
    db.table("area_waiters").insert_all([{"area_id": "main", "waiter_id": "w1"}])
    db.table("tables").insert_all(
        [
            {"id": "T1", "name": "1", "area_id": "main", "max_covers": 4},
            {"id": "T2", "name": "2", "area_id": "main", "max_covers": 2},
            {"id": "T12", "name": "12", "area_id": "main", "max_covers": 6},
            {"id": "B1", "name": "Bar 1", "area_id": "bar", "max_covers": 2},
        ]
    )
    db.table("table_waiters").insert_all(
        [{"table_id": "T1", "waiter_id": "w1"}, {"table_id": "T12", "waiter_id": "w1"}]
    )
    db.conn.close()
    return path


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """A real reference database seeded with the demo venue (epos_bridge/demo_venue.py)."""
    path = tmp_path / "demo-venue.db"
    db = sqlite_utils.Database(path)
    migrate(db)
    seed_demo(db, datetime.now(UTC))
    db.conn.close()
    return path


@pytest.fixture
async def adapter(pos_db_path: Path) -> AsyncIterator[PosCalls]:
    pos = sqlite_pos(pos_db_path)
    yield pos
    await pos.close()


@pytest.fixture
def published() -> list[DomainEvent]:
    return []


@pytest.fixture
def dispatcher(adapter: PosCalls, published: list[DomainEvent]) -> Dispatcher:
    return Dispatcher(adapter, publish=published.append)


@pytest.fixture
def rpc(dispatcher: Dispatcher) -> Rpc:
    """Send one request as Dojo would; the response is validated against the contract."""
    counter = iter(range(1, 1_000_000))

    async def call(method: str, params: dict[str, Any] | None = None, *, request_id: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"headers": {}}
        body.update(params or {})
        rid = request_id if request_id is not None else f"req-{next(counter)}"
        served = await dispatcher.handle_text(
            json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": body})
        )
        assert served is not None
        response: dict[str, Any] = json.loads(served.response_text)
        assert response["id"] == rid
        assert_valid_response(method, response)
        return response

    return call


def money(value: int, currency: str = "GBP") -> dict[str, Any]:
    return {"value": value, "currencyCode": currency}


# --- the till's settings, its keyring and its files --------------------------------------------


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


@pytest.fixture
def real_keyring(tmp_path: Path) -> Iterator[RealKeyring]:
    """A real keyring backend in ``tmp_path`` (``tests/helpers/keyring_backend.py`` says which)."""
    with open_real_keyring(tmp_path / "keyring") as backend:
        print(f"keyring backend: {backend.kind} ({backend.why})")
        yield backend


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new files readable by others: what the bridge must not rely on."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


# --- a test that logs an unexpected warning or error fails (as qutebrowser's logfail does) -------


class _LogFail(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _fail_on_unexpected_warnings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any WARNING or worse logged during the test fails it, unless the test says it expects
    log lines: by asking for ``caplog`` (it then checks them itself) or with
    ``@pytest.mark.logs_warnings("why")``."""
    handler = _LogFail()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    expected = "caplog" in request.fixturenames or request.node.get_closest_marker("logs_warnings") is not None
    if handler.records and not expected:
        lines = "\n".join(f"  {r.levelname} {r.name}: {r.getMessage()[:300]}" for r in handler.records[:10])
        pytest.fail(
            f"the test logged {len(handler.records)} unexpected warning(s) or error(s):\n{lines}", pytrace=False
        )
