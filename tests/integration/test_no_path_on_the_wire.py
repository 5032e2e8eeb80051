"""No POS file path reaches Dojo: a POS database that is missing, unreadable, locked or not a
database answers a contract error whose text names the problem generically ("The POS database
could not be opened"), while what the bridge logs locally (``Served.debug_message``, the request
log line) still names the file, for the venue and support.

Contract §1.4 (rec): keep ``debugMessage`` short and free of personal data; a path on a till
names the machine's user, the venue and its folders, and Dojo has no use for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from epos_bridge.adapters import sqlitedb
from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.sqlite import connection
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.ports import PosAdapter
from epos_bridge.services.dispatcher import Dispatcher, Served
from tests.conftest import money
from tests.helpers.builders import create_order_params
from tests.helpers.contract import assert_valid_response
from tests.helpers.floreant import create_floreant_database, floreant
from tests.helpers.pos import jsonfile_pos, sqlite_pos, sqlmap_pos

VENUE_FOLDER = "Chez-Marguerite-Dupont-till"
"""A folder name that says who and where: exactly what must not reach Dojo."""


@dataclass(frozen=True)
class Answer:
    response: dict[str, Any]
    text: str
    served: Served


async def ask(adapter: PosAdapter, method: str, params: dict[str, Any]) -> Answer:
    dispatcher = Dispatcher(adapter)
    frame = json.dumps({"jsonrpc": "2.0", "id": "r1", "method": method, "params": {"headers": {}, **params}})
    served = await dispatcher.handle_text(frame)
    assert served is not None
    response = json.loads(served.response_text)
    assert_valid_response(method, response)
    return Answer(response, served.response_text, served)


def assert_no_path(answer: Answer, path: Path, *, says: str) -> None:
    """No form of ``path`` (the file, its folder, its name) in any field of the answer; the text
    still says what is wrong, and the local record (what the request log writes) names the file."""
    error = answer.response["error"]
    assert error["errorType"] == "UnexpectedError", error
    for form in {str(path), str(path.resolve()), str(path.parent), str(path.parent.resolve()), path.name, VENUE_FOLDER}:
        assert form not in answer.text, f"{form!r} reached Dojo: {answer.text}"
        for field, value in error.items():
            assert form not in str(value), f"{form!r} in {field}"
    assert says.lower() in error["debugMessage"].lower(), error
    local = answer.served.debug_message or ""
    assert path.name in local, f"the local log lost the file: {local!r}"


def _readable(path: Path) -> bool:
    try:
        if path.is_dir():
            os.listdir(path)
        else:
            with path.open("rb"):
                pass
    except PermissionError:
        return False
    return True


@contextlib.contextmanager
def without_read_permission(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``chmod 000``. Root (CI containers) ignores modes, so there the refusal the OS would give
    is made where the bridge meets it: SQLite's "unable to open database file" for the file."""
    path.chmod(0)
    try:
        if _readable(path):
            real = {module: module.connect for module in (sqlitedb, connection)}

            def refusing(module: Any) -> Callable[..., sqlite3.Connection]:
                def connect(target: Path, **kwargs: Any) -> sqlite3.Connection:
                    if Path(target).resolve() == path.resolve():
                        raise sqlite3.OperationalError("unable to open database file")
                    return real[module](target, **kwargs)

                return connect

            for module in real:
                monkeypatch.setattr(module, "connect", refusing(module))
        yield
    finally:
        path.chmod(0o644)


@pytest.fixture
def venue(tmp_path: Path) -> Path:
    folder = tmp_path / VENUE_FOLDER
    folder.mkdir()
    return folder


def reference_db(path: Path) -> Path:
    """An empty reference POS database, as ``db init`` creates one."""
    init_database(path, demo=False, now=datetime.now(UTC))
    return path


@pytest.fixture
async def opened() -> AsyncIterator[list[PosAdapter]]:
    adapters: list[PosAdapter] = []
    yield adapters
    for adapter in adapters:
        await adapter.close()


def sqlite_adapter(opened: list[PosAdapter], path: Path, **kwargs: Any) -> PosAdapter:
    adapter = sqlite_pos(path, **kwargs)
    opened.append(adapter)
    return adapter


def sqlmap_adapter(opened: list[PosAdapter], path: Path) -> PosAdapter:
    adapter = sqlmap_pos(path, floreant())
    opened.append(adapter)
    return adapter


SEARCH = ("SearchOrdersV1", {})
PAYMENT = ("RecordOrderPaymentByIdV1", {"orderId": "1", "paymentIntentId": "pi_1", "paidAmount": money(100)})


# --- missing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "params"), [SEARCH, PAYMENT], ids=["read", "write"])
@pytest.mark.parametrize("kind", ["sqlite", "sqlmap"])
async def test_a_missing_database_is_named_generically(
    venue: Path,
    opened: list[PosAdapter],
    kind: str,
    method: str,
    params: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = venue / "marguerite-pos.db"
    adapter = sqlite_adapter(opened, missing) if kind == "sqlite" else sqlmap_adapter(opened, missing)

    answer = await ask(adapter, method, params)

    assert_no_path(answer, missing, says="the POS database could not be opened")


async def test_a_missing_file_database_folder_is_named_generically(venue: Path, opened: list[PosAdapter]) -> None:
    missing = venue / "marguerite-files"
    adapter = jsonfile_pos(missing)
    opened.append(adapter)

    answer = await ask(adapter, *SEARCH)

    assert_no_path(answer, missing, says="could not be opened")


# --- unreadable -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "sqlmap"])
async def test_a_database_without_read_permission_is_named_generically(
    venue: Path, opened: list[PosAdapter], kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = venue / "marguerite-pos.db"
    if kind == "sqlite":
        reference_db(path)
    else:
        create_floreant_database(path)
    adapter = sqlite_adapter(opened, path) if kind == "sqlite" else sqlmap_adapter(opened, path)

    with without_read_permission(path, monkeypatch):
        answer = await ask(adapter, *SEARCH)

    assert_no_path(answer, path, says="the POS database could not be opened")


# --- locked, not a database ----------------------------------------------------------------------


async def test_a_locked_database_is_named_generically(venue: Path, opened: list[PosAdapter]) -> None:
    path = reference_db(venue / "marguerite-pos.db")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO tables (id, name) VALUES ('T1', '1')")
        conn.commit()
    adapter = sqlite_adapter(opened, path, busy_timeout_s=0.2)
    created = await ask(adapter, "CreateOrderV1", create_order_params("dojo-1"))
    order_id = created.response["result"]["id"]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the POS in the middle of a long write
    try:
        answer = await ask(adapter, PAYMENT[0], {**PAYMENT[1], "orderId": order_id})
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert_no_path(answer, path, says="the POS database is busy")


@pytest.mark.parametrize("kind", ["sqlite", "sqlmap"])
async def test_a_file_that_is_not_a_database_is_named_generically(
    venue: Path, opened: list[PosAdapter], kind: str
) -> None:
    path = venue / "marguerite-pos.db"
    path.write_bytes(b"a shopping list, not a database\n" * 200)
    adapter = sqlite_adapter(opened, path) if kind == "sqlite" else sqlmap_adapter(opened, path)

    answer = await ask(adapter, *SEARCH)

    assert_no_path(answer, path, says="not a usable SQLite database")


async def test_a_damaged_file_database_document_is_named_generically(venue: Path, opened: list[PosAdapter]) -> None:
    folder = venue / "marguerite-files"
    init_folder(folder, demo=True, now=datetime.now(UTC))
    damaged = folder / "orders" / "1.json"
    damaged.write_text("{ not json", encoding="utf-8")
    adapter = jsonfile_pos(folder)
    opened.append(adapter)

    answer = await ask(adapter, "GetOrderByIdV1", {"orderId": "1"})

    assert_no_path(answer, folder, says="POS folder")
    assert "orders/1.json" not in answer.text, "not even the file's place inside the folder"
