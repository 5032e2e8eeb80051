"""The adapter contract suite: the rules every POS adapter must keep, checked over the wire.

Use it from a test module (docs/writing-an-adapter.md)::

    from epos_bridge.testing.contract_suite import AdapterContract

    class TestMyPos(AdapterContract):
        pass

and provide two fixtures, in that class or your ``conftest.py``:

* ``epos_venue_seeder``: an object implementing :class:`Seeder` over *fresh, empty* storage:
  it seeds :data:`STANDARD_VENUE` and does what a till does (close an order, open it at a till);
* ``epos_adapter_factory``: a zero-argument callable that opens your storage (a
  :class:`epos_bridge.ports.PosStorage`; an older whole ``PosAdapter`` is accepted too).

Every request goes through the bridge's real dispatcher, so the suite sees exactly what Dojo
would. Every response is validated against the published contract schema when the contract
folder can be found (``EPOS_BRIDGE_CONTRACT_DIR``, or ``shared/contract`` / ``contract`` above
the working directory); otherwise :meth:`AdapterContract.test_responses_are_checked_against_the_contract_schema`
is skipped and says why. The suite skips a test only when the adapter does not report the
capabilities it needs (``implemented_capabilities``): registration sends exactly those, so Dojo
will never call the rest. ``pytest -p epos_bridge.testing.contract_suite`` adds a report header
saying whether schema validation is on. Needs pytest and pytest-asyncio (and jsonschema for the
schema checks).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import pytest
import pytest_asyncio

from epos_bridge.domain.events import (
    DomainEvent,
    LockCreated,
    LockExpired,
    LockExtended,
    LockRefused,
    LockReleased,
    PaymentRecorded,
    PaymentStatusChanged,
)
from epos_bridge.ports import PosAdapter, PosStorage
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.services.dispatcher import Dispatcher
from epos_bridge.services.pos_calls import serve

C = Capability
F = TypeVar("F", bound=Callable[..., Any])
Json = dict[str, Any]
Rpc = Callable[..., Awaitable[Json]]

# --- the standard venue ---------------------------------------------------------------------


@dataclass(frozen=True)
class VenueArea:
    id: str
    name: str
    waiter_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VenueTable:
    id: str
    name: str
    area_id: str
    max_covers: int
    waiter_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StandardVenue:
    """The small venue every adapter is tested with. Seed exactly this; nothing else."""

    name: str = "Test Kitchen"
    address_lines: tuple[str, ...] = ("1 High Street", "Bristol")
    postcode: str = "BS1 1AA"
    vat_number: str = "GB123456789"
    footer_text: str = "Thank you!"
    currency: str = "GBP"
    areas: tuple[VenueArea, ...] = (VenueArea("main", "Main floor", ("w1",)), VenueArea("bar", "Bar"))
    tables: tuple[VenueTable, ...] = field(
        default=(
            VenueTable("T1", "1", "main", 4, ("w1",)),
            VenueTable("T2", "2", "main", 2),
            VenueTable("T12", "12", "main", 6, ("w1",)),
            VenueTable("B1", "Bar 1", "bar", 2),
        )
    )


STANDARD_VENUE = StandardVenue()


@runtime_checkable
class Seeder(Protocol):
    """What the suite needs done on the POS side, which Dojo cannot do over the wire.

    Implement it against your own storage (SQL, files, an API). Order ids are the wire ids your
    adapter issues. Each method is called from the test's thread; blocking I/O is fine here.
    """

    def seed(self, venue: StandardVenue) -> None:
        """Write the venue, its areas and tables into empty storage."""
        ...

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        """A till rings up an open DineIn order with one line of ``total_value``; returns its id."""
        ...

    def set_order_status(self, order_id: str, status: str) -> str | None:
        """A till moves the order to ``status`` (e.g. ``Finalized``), bumping its last change.

        Returns ``None``, or the id the order is known by afterwards when the POS re-keys it (an
        open bill checked out into a closed sale under a new key): the tests go on with that id.
        """
        ...

    def open_order_at_till(self, order_id: str, till: str) -> None:
        """A till opens the order for editing (Dojo may not lock or pay it meanwhile)."""
        ...

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        """Pretend the order last changed at ``moment`` (for the lock-expiry rules)."""
        ...


@runtime_checkable
class RemovesOrders(Protocol):
    """Optional for a :class:`Seeder`: the tests that need it are skipped, saying so, without it."""

    def remove_order(self, order_id: str) -> None:
        """The till removes the order as the POS would, with its lines and payment rows (a bill
        checked out into another table, a ticket purged)."""
        ...


def requires(*capabilities: Capability) -> Callable[[F], F]:
    """Mark a suite test as needing these capabilities; it is skipped if the adapter lacks one."""

    def mark(test: F) -> F:
        test._epos_requires = frozenset(capabilities)  # type: ignore[attr-defined]
        return test

    return mark


# --- contract schema ------------------------------------------------------------------------

SCHEMA_FILE = "epos-data-ws.schema.json"


def contract_schema_path() -> Path | None:
    override = os.environ.get("EPOS_BRIDGE_CONTRACT_DIR")
    if override:
        candidate = Path(override) / SCHEMA_FILE
        return candidate if candidate.is_file() else None
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for parent in (start, *start.parents):
            for candidate in (parent / "shared" / "contract" / SCHEMA_FILE, parent / "contract" / SCHEMA_FILE):
                if candidate.is_file():
                    return candidate
    return None


@cache
def _schema() -> tuple[Json | None, str]:
    """The schema document, or ``None`` and why validation is off."""
    path = contract_schema_path()
    if path is None:
        return None, f"{SCHEMA_FILE} not found (set EPOS_BRIDGE_CONTRACT_DIR); responses are NOT schema-validated"
    try:
        importlib.import_module("jsonschema")
    except ImportError:
        return None, "jsonschema is not installed; responses are NOT schema-validated"
    document: Json = json.loads(path.read_text(encoding="utf-8"))
    return document, f"responses are validated against {path}"


def validate_response(method: str, response: Json) -> None:
    """A success must match the method's result schema; an error the EPOSError shape (§1.4)."""
    schema, _ = _schema()
    if schema is None:
        return
    jsonschema: Any = importlib.import_module("jsonschema")

    def check(ref: str, value: Any) -> None:
        validator = jsonschema.Draft202012Validator(
            {"$defs": schema["$defs"], "$ref": ref}, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(value)

    if "error" in response:
        assert "result" not in response, "an error response must not carry result"
        check("#/$defs/EPOSError", response["error"])
        return
    spec = schema["methods"][method]
    check(spec["result"]["$ref"], response["result"])


def pytest_report_header() -> str:
    """Shown when loaded with ``-p epos_bridge.testing.contract_suite``."""
    return f"epos-bridge adapter contract suite: {_schema()[1]}"


# --- request builders -------------------------------------------------------------------------


def money(value: int, currency: str = "GBP") -> Json:
    return {"value": value, "currencyCode": currency}


def minutes_from_now(minutes: float) -> str:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ok(response: Json) -> Any:
    assert "error" not in response, f"expected success, got {response['error']}"
    return response["result"]


def failed(response: Json, error_type: str) -> Json:
    assert "result" not in response, f"expected {error_type}, got result {response.get('result')}"
    error: Json = response["error"]
    assert error["errorType"] == error_type, f"expected {error_type}, got {error}"
    assert error.get("traceId"), "every error carries a traceId"
    return error


def order_params(dojo_order_id: str, total: int = 1000, table_id: str | None = "T1", **extra: Any) -> Json:
    dine_in = {"tableId": table_id} if table_id else {}
    for key in ("waiterId", "partyId", "reservationId"):
        if key in extra:
            dine_in[key] = extra.pop(key)
    item = {"name": "Burger", "plu": "BURG", "quantity": 1, "amountPerItem": money(total)}
    return {
        "items": [item],
        "totalAmount": money(total),
        "dojoOrderId": dojo_order_id,
        "payments": [],
        "details": {"orderType": "DineIn", "dineIn": dine_in},
        **extra,
    }


def pay(order_id: str, intent: str, paid: int, *, tips: int | None = None, lock_id: str | None = None) -> Json:
    params: Json = {
        "headers": {"dojoRequestingProduct": "PayAtTable", "deviceId": "term-1"},
        "orderId": order_id,
        "paymentIntentId": intent,
        "paidAmount": money(paid),
    }
    if tips is not None:
        params["tipsAmount"] = money(tips)
    if lock_id is not None:
        params["lockId"] = lock_id
    return params


def lock(order_id: str, lock_id: str, expiry: str) -> Json:
    return {
        "headers": {"dojoRequestingProduct": "PayAtTable"},
        "orderId": order_id,
        "lockId": lock_id,
        "expiry": expiry,
    }


def event(event_id: str, intent: str, status: str, *, created_at: str | None = None, kind: str = "") -> Json:
    return {
        "id": event_id,
        "accountId": "acc_test",
        "event": kind or "payment_intent.status_updated",
        "createdAt": created_at or minutes_from_now(0),
        "data": {"paymentIntentId": intent, "paymentStatus": status, "captureMode": "Auto"},
    }


def party_params(dojo_party_id: str, table_ids: tuple[str, ...] = ("T1",), **extra: Any) -> Json:
    return {"dojoPartyId": dojo_party_id, "startTime": "2025-03-14T19:00:00.000Z", "tableIds": list(table_ids), **extra}


def reservation_params(dojo_id: str, start: str = "19:00", end: str = "21:00", **extra: Any) -> Json:
    return {
        "dojoReservationId": dojo_id,
        "name": "Ada Lovelace",
        "covers": 2,
        "startTime": f"2025-03-14T{start}:00.000Z",
        "endTime": f"2025-03-14T{end}:00.000Z",
        "tableIds": extra.pop("tableIds", ["T1"]),
        **extra,
    }


def _holds(stored: Any, sent: Any) -> bool:
    """``stored`` carries everything ``sent`` does (the POS may add fields of its own; a zero
    amount, a tip of 0, may read back as none)."""
    if isinstance(sent, dict):
        if stored is None and sent.keys() == {"value", "currencyCode"} and sent["value"] == 0:
            return True
        return isinstance(stored, dict) and all(_holds(stored.get(k), v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(_holds, stored, sent))
    return bool(stored == sent)


LINES_ONLY_REFUSES = ("modifiers", "discounts", "taxLines", "serviceChargeAmount")
"""What a POS that keeps only an order's lines may refuse of a new order, naming it."""


def _moved_to(seeder: Seeder, order_id: str, status: str) -> str:
    """The till moves the order to ``status``; the id it is known by afterwards (a POS that
    checks a bill out under a new key says which)."""
    return seeder.set_order_status(order_id, status) or order_id


def _remove(seeder: Seeder, order_id: str) -> None:
    if not isinstance(seeder, RemovesOrders):
        pytest.skip("the seeder has no remove_order (RemovesOrders): it cannot act as a till removing an order")
    seeder.remove_order(order_id)


def forged_cursor(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


async def walk(rpc: Rpc, method: str, params: Json, limit: int) -> list[Json]:
    """Every page from the first, following ``after`` until it is omitted."""
    pages = [ok(await rpc(method, {**params, "cursor": {"limit": limit}}))]
    while "after" in pages[-1]:
        pages.append(ok(await rpc(method, {**params, "cursor": {"limit": limit, "after": pages[-1]["after"]}})))
        assert len(pages) < 100, "pagination does not terminate"
    return pages


async def walk_back(rpc: Rpc, method: str, params: Json, limit: int, page: Json) -> list[Json]:
    pages: list[Json] = []
    while "before" in page:
        page = ok(await rpc(method, {**params, "cursor": {"limit": limit, "before": page["before"]}}))
        pages.append(page)
        assert len(pages) < 100, "pagination does not terminate"
    return pages


def ids(page: Json) -> list[str]:
    return [entry["id"] for entry in page["data"]]


def of_type(published: list[DomainEvent], kind: type[DomainEvent]) -> list[Any]:
    return [e for e in published if isinstance(e, kind)]


UNISSUED_IDS = ["999999", "abc", "", "-1", "1.5", " 1", "\u00b2"]
"""Ids the POS never issued: NotFound, never a crash or another error type."""


def respellings(wire_id: str) -> list[str]:
    """The same id written differently: each names *another* entity (ids are exact strings)."""
    return [f"0{wire_id}", f" {wire_id}", f"{wire_id} ", f"+{wire_id}", f"{wire_id}\n", wire_id.upper() + "\u200b"]


OUT_OF_WINDOW_TIMES = [
    "0009-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "1999-12-31T23:59:59Z",
    "2101-01-01T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-12-01T10:00:00",
    "tomorrow",
]
"""Date-times a POS must refuse with InvalidRequest naming the field, storing nothing."""

BAD_PAYMENTS: list[tuple[str, Json]] = [
    ("empty-intent", {"paymentIntentId": ""}),
    ("blank-intent", {"paymentIntentId": "   "}),
    ("zero", {"paidAmount": money(0)}),
    ("negative", {"paidAmount": money(-100)}),
    ("beyond-int64", {"paidAmount": money(2**63)}),
    ("negative-tip", {"tipsAmount": money(-1)}),
    ("tip-beyond-int64", {"tipsAmount": money(2**63)}),
    ("lower-case-currency", {"paidAmount": money(1000, "gbp")}),
    ("four-letter-currency", {"paidAmount": money(1000, "GBPX")}),
    ("tip-currency-format", {"tipsAmount": money(100, "£")}),
]
"""Money a payment must refuse with InvalidRequest naming the field, recording nothing."""

# --- the suite -------------------------------------------------------------------------------


@pytest.mark.asyncio
class AdapterContract:
    """Subclass as ``Test…`` and provide ``epos_venue_seeder`` and ``epos_adapter_factory``."""

    # fixtures ----------------------------------------------------------------------------------

    @pytest.fixture
    def epos_published(self) -> list[DomainEvent]:
        return []

    @pytest_asyncio.fixture
    async def epos_adapter(
        self, epos_venue_seeder: Seeder, epos_adapter_factory: Callable[[], PosStorage | PosAdapter]
    ) -> AsyncIterator[PosAdapter]:
        """Served as the bridge serves what a factory opens (``services.pos_calls.serve``)."""
        assert isinstance(epos_venue_seeder, Seeder), "epos_venue_seeder must implement the Seeder protocol"
        epos_venue_seeder.seed(STANDARD_VENUE)
        opened = epos_adapter_factory()
        assert isinstance(opened, PosStorage | PosAdapter), "epos_adapter_factory must return a PosStorage"
        adapter = serve(opened)
        yield adapter
        await adapter.close()

    @pytest.fixture
    def epos_rpc(
        self, request: pytest.FixtureRequest, epos_adapter: PosAdapter, epos_published: list[DomainEvent]
    ) -> Rpc:
        """Send one request as Dojo would; the response is checked against the contract schema."""
        needed: frozenset[Capability] = getattr(request.function, "_epos_requires", frozenset())
        missing = needed - epos_adapter.implemented_capabilities()
        if missing:
            pytest.skip(f"the adapter does not implement {', '.join(sorted(missing))}")
        dispatcher = Dispatcher(epos_adapter, publish=epos_published.append)
        counter: Iterator[int] = iter(range(1, 1_000_000))

        async def call(method: str, params: Json | None = None) -> Json:
            body: Json = {"headers": {}, **(params or {})}
            rid = f"req-{next(counter)}"
            served = await dispatcher.handle_text(
                json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": body})
            )
            assert served is not None
            response: Json = json.loads(served.response_text)
            assert response["id"] == rid
            validate_response(method, response)
            return response

        return call

    @pytest.fixture
    def epos_order(self, epos_adapter: PosAdapter, epos_venue_seeder: Seeder) -> str:
        """A £100.00 open order on T1, rung up on the till."""
        return epos_venue_seeder.add_open_order("T1", 10000, STANDARD_VENUE.currency)

    # schema --------------------------------------------------------------------------------------

    async def test_responses_are_checked_against_the_contract_schema(self) -> None:
        schema, reason = _schema()
        if schema is None:
            pytest.skip(reason)

    # capabilities --------------------------------------------------------------------------------

    async def test_reported_capabilities_are_known_names_and_the_methods_answer(self, epos_rpc: Rpc) -> None:
        assert (await epos_rpc("NoSuchMethodV1"))["error"]["errorType"] == "InvalidRequest"

    # orders ----------------------------------------------------------------------------------------

    @requires(C.GET_ORDER_BY_ID)
    async def test_get_order_returns_what_a_terminal_needs(self, epos_rpc: Rpc, epos_order: str) -> None:
        order = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert order["id"] == epos_order
        assert order["totalAmount"] == money(10000)
        assert (order["paidAmount"], order["tipsAmount"], order["payments"]) == (money(0), money(0), [])
        assert order["payable"] is True
        assert order.get("reference")

    @requires(C.GET_ORDER_BY_ID)
    @pytest.mark.parametrize("order_id", UNISSUED_IDS)
    async def test_get_order_of_an_id_never_issued_is_not_found(
        self, epos_rpc: Rpc, epos_order: str, order_id: str
    ) -> None:
        failed(await epos_rpc("GetOrderByIdV1", {"orderId": order_id}), "NotFound")

    @requires(C.GET_ORDER_BY_ID, C.CREATE_ORDER_LOCK, C.RECORD_ORDER_PAYMENT_BY_ID)
    async def test_an_id_written_differently_names_no_order(self, epos_rpc: Rpc, epos_order: str) -> None:
        for other in respellings(epos_order):
            failed(await epos_rpc("GetOrderByIdV1", {"orderId": other}), "NotFound")
            failed(await epos_rpc("CreateOrderLockV1", lock(other, "lock-1", minutes_from_now(5))), "NotFound")
            failed(await epos_rpc("RecordOrderPaymentByIdV1", pay(other, "pi_x", 100)), "NotFound")
        order = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert (order["id"], order["paidAmount"]) == (epos_order, money(0))

    @requires(C.CREATE_ORDER_LOCK, C.DELETE_ORDER_LOCK)
    async def test_lock_ids_are_exact_strings(self, epos_rpc: Rpc, epos_order: str) -> None:
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        for other in ("lock-1 ", " lock-1", "LOCK-1", "lock-01"):
            ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": other}))  # not ours: no-op
            failed(await epos_rpc("CreateOrderLockV1", lock(epos_order, other, minutes_from_now(10))), "Conflict")
        ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "lock-1"}))
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-01", minutes_from_now(10))))

    @requires(C.CREATE_ORDER, C.GET_ORDER_BY_ID)
    async def test_create_order_round_trips_and_is_idempotent_on_dojo_order_id(self, epos_rpc: Rpc) -> None:
        request = order_params(
            "dojo-1",
            total=3300,
            note="birthday",
            customer={"name": "Grace Hopper", "phoneNumber": "07700"},
            discounts=[{"name": "Happy hour", "amountTotal": money(300)}],
            taxLines=[{"amountTotal": money(550), "name": "VAT 20%", "amountPercentage": 2000}],
            serviceChargeAmount=money(300),
            reference="TAB-77",
            displayName="Table 1 - Grace",
        )
        request["items"] = [
            {
                "name": "Burger",
                "plu": "BURG",
                "quantity": 2,
                "amountPerItem": money(1000),
                "modifiers": [{"name": "Cheese", "plu": "CHS", "quantity": 1, "amountPerModifier": money(150)}],
                "subItems": [{"name": "Fries", "plu": "FRY", "quantity": 1, "amountPerItem": money(300)}],
            },
            {"name": "Cola", "plu": "COLA", "quantity": 1, "amountPerItem": money(300)},
        ]
        answer = await epos_rpc("CreateOrderV1", request)
        if "error" in answer:
            # A POS with no parent line for an item (Floreant, for one) may refuse sub-items, as it
            # refuses anything it cannot store faithfully: storing nothing. The same order without
            # them must then round-trip exactly.
            assert "subItems" in failed(answer, "InvalidRequest")["debugMessage"]
            assert ok(await epos_rpc("SearchOrdersV1", {}))["data"] == []
            burger = {k: v for k, v in request["items"][0].items() if k != "subItems"}
            request = {**request, "items": [burger, request["items"][1]], "totalAmount": money(3000)}
            answer = await epos_rpc("CreateOrderV1", request)
        if "error" in answer:
            # A POS that keeps only lines (no modifiers, order discounts, Dojo's tax lines or
            # service charge: Open Source Point of Sale) refuses the first of them by name,
            # storing nothing; the lines alone, at the total they make, must then round-trip.
            refused = failed(answer, "InvalidRequest")["debugMessage"]
            assert any(part in refused for part in LINES_ONLY_REFUSES), refused
            assert ok(await epos_rpc("SearchOrdersV1", {}))["data"] == []
            lines = [{k: v for k, v in item.items() if k not in ("subItems", "modifiers")} for item in request["items"]]
            total = sum(item["quantity"] * item["amountPerItem"]["value"] for item in lines)
            request = {k: v for k, v in request.items() if k not in LINES_ONLY_REFUSES}
            request = {**request, "items": lines, "totalAmount": money(total)}
            answer = await epos_rpc("CreateOrderV1", request)
        created = ok(answer)
        again = ok(await epos_rpc("CreateOrderV1", order_params("dojo-1", total=99)))
        fetched = ok(await epos_rpc("GetOrderByIdV1", {"orderId": created["id"]}))
        assert again == created == fetched
        for key in ("items", "note", "customer", "discounts", "taxLines", "serviceChargeAmount", "reference"):
            if key in request:
                assert fetched[key] == request[key], key
        assert fetched["status"] == "New"
        assert fetched["payable"] is True
        other = ok(await epos_rpc("CreateOrderV1", order_params("dojo-2")))
        assert other["id"] != created["id"]

    @requires(C.CREATE_ORDER, C.SEARCH_ORDERS)
    @pytest.mark.parametrize(
        ("change", "mentions"),
        [
            ({"items": [{"name": "B", "plu": "B", "quantity": 1, "amountPerItem": money(1000, "EUR")}]}, "currency"),
            ({"details": {"orderType": "DineIn", "dineIn": {"tableId": "T99"}}}, "T99"),
            ({"serviceChargeAmount": money(1001)}, "serviceChargeAmount"),
            ({"payments": [{"paidAmount": money(1500)}]}, "payments"),
            ({"items": [{"name": "B", "plu": "B", "quantity": 0, "amountPerItem": money(1000)}]}, "quantity"),
        ],
        ids=["currency", "unknown-table", "service-charge", "overpaid", "zero-quantity"],
    )
    async def test_create_order_refuses_what_it_cannot_store_faithfully(
        self, epos_rpc: Rpc, change: Json, mentions: str
    ) -> None:
        error = failed(await epos_rpc("CreateOrderV1", {**order_params("dojo-bad"), **change}), "InvalidRequest")
        assert mentions in error["debugMessage"]
        assert ok(await epos_rpc("SearchOrdersV1", {}))["data"] == []

    @requires(C.CREATE_ORDER, C.GET_ORDER_BY_ID, C.SEARCH_ORDERS)
    @pytest.mark.parametrize(
        ("field", "change"),
        [
            ("serviceChargeAmount", {"totalAmount": money(1100), "serviceChargeAmount": money(100)}),
            ("note", {"note": "No onions, please"}),
            ("reference", {"reference": "WEB-1042"}),
            ("displayName", {"displayName": "Ada's table"}),
            ("customer", {"customer": {"name": "Ada", "emailAddress": "ada@example.com",
                                       "phoneNumber": "+447700900123"}}),
            ("items", {"items": [{"name": "Fries", "plu": "FRY", "quantity": 3, "amountPerItem": money(250),
                                  "note": "extra salt"}, {"name": "Cola", "plu": "COLA", "quantity": 1,
                                  "amountPerItem": money(250)}]}),
            ("modifiers", {"items": [{"name": "Burger", "plu": "BURG", "quantity": 2, "amountPerItem": money(400),
                                      "modifiers": [{"name": "Cheese", "plu": "CHS", "quantity": 2,
                                                     "amountPerModifier": money(50)}]}]}),
            ("discounts", {"discounts": [{"name": "Happy hour", "amountTotal": money(100), "code": "HH",
                                          "amountPercentage": 10}]}),
            ("taxLines", {"taxLines": [{"name": "VAT", "id": "vat-20", "amountTotal": money(167),
                                        "amountPercentage": 20}]}),
            ("details", {"details": {"orderType": "Collection", "collection": {"asap": True}}}),
            ("details", {"details": {"orderType": "DineIn", "dineIn": {"tableId": "T1", "waiterId": "w1"}}}),
            ("payments", {"payments": [{"paidAmount": money(400), "paymentIntentId": "pi_at_creation",
                                        "tipsAmount": money(0)}]}),
        ],
    )  # fmt: skip
    async def test_create_order_stores_every_field_as_sent_or_refuses_it_by_name(
        self, epos_rpc: Rpc, field: str, change: Json
    ) -> None:
        """Never dropped in silence: the order reads back with what Dojo sent, or is refused
        naming the field and nothing is stored."""
        sent = {**order_params("dojo-field"), **change}
        created = await epos_rpc("CreateOrderV1", sent)
        if "error" in created:
            assert field in failed(created, "InvalidRequest")["debugMessage"]
            assert ok(await epos_rpc("SearchOrdersV1", {}))["data"] == []
            return
        stored = ok(await epos_rpc("GetOrderByIdV1", {"orderId": ok(created)["id"]}))
        for name, value in change.items():
            assert _holds(stored.get(name), value), f"{name}: sent {value}, stored {stored.get(name)}"

    @requires(C.CREATE_ORDER, C.SEARCH_ORDERS)
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"tableId": "T1"}, ["a", "b", "d"]),
            ({"waiterId": "w1"}, ["a", "c", "d"]),
            ({"partyId": "P1"}, ["a"]),
            ({"reservationId": "R1"}, ["d"]),
            ({"tableId": "T1", "waiterId": "w1"}, ["a", "d"]),
            ({"tableId": "T2", "partyId": "P1"}, []),
            ({"tableId": "B1"}, []),
            ({}, ["a", "b", "c", "d"]),
        ],
    )
    async def test_search_orders_filters_combine_with_and(
        self, epos_rpc: Rpc, filters: Json, expected: list[str]
    ) -> None:
        specs: dict[str, dict[str, Any]] = {
            "a": {"table_id": "T1", "waiterId": "w1", "partyId": "P1"},
            "b": {"table_id": "T1", "waiterId": "w2"},
            "c": {"table_id": "T2", "waiterId": "w1"},
            "d": {"table_id": "T1", "waiterId": "w1", "reservationId": "R1"},
        }
        made = {k: ok(await epos_rpc("CreateOrderV1", order_params(f"dojo-{k}", **v)))["id"] for k, v in specs.items()}
        found = ids(ok(await epos_rpc("SearchOrdersV1", {"dineIn": filters})))
        assert found == [made[k] for k in expected]

    @requires(C.SEARCH_ORDERS, C.RECORD_ORDER_PAYMENT_BY_ID)
    async def test_search_orders_leaves_out_closed_orders_and_payable_only_leaves_out_paid_ones(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder
    ) -> None:
        unpaid, paid, finalized, failed_order = (epos_venue_seeder.add_open_order("T1", 3000, "GBP") for _ in range(4))
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(paid, "pi_full", 3000)))
        epos_venue_seeder.set_order_status(finalized, "Finalized")
        epos_venue_seeder.set_order_status(failed_order, "Failed")
        assert ids(ok(await epos_rpc("SearchOrdersV1", {}))) == [unpaid, paid, failed_order]
        assert ids(ok(await epos_rpc("SearchOrdersV1", {"payableOnly": True}))) == [unpaid]

    @requires(C.SEARCH_ORDERS)
    async def test_search_orders_walks_every_order_exactly_once_both_ways(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder
    ) -> None:
        made = [epos_venue_seeder.add_open_order("T1", 1000, "GBP") for _ in range(10)]
        pages = await walk(epos_rpc, "SearchOrdersV1", {}, 3)
        assert [len(p["data"]) for p in pages] == [3, 3, 3, 1]
        assert [i for p in pages for i in ids(p)] == made
        assert "before" not in pages[0]
        assert "after" not in pages[-1]
        back = await walk_back(epos_rpc, "SearchOrdersV1", {}, 3, pages[-1])
        assert [ids(p) for p in back] == [made[6:9], made[3:6], made[0:3]]
        assert "before" not in back[-1]
        first = ok(await epos_rpc("SearchOrdersV1", {"cursor": {"limit": 5}}))
        late = epos_venue_seeder.add_open_order("T1", 1000, "GBP")
        rest = ok(await epos_rpc("SearchOrdersV1", {"cursor": {"limit": 100, "after": first["after"]}}))
        assert ids(first) + ids(rest) == [*made, late], "rows added while walking appear once"
        assert len(ids(ok(await epos_rpc("SearchOrdersV1", {"cursor": {"limit": 0}})))) == 1, "limit clamps to 1"

    @requires(C.SEARCH_ORDERS)
    @pytest.mark.parametrize(
        "cursor",
        [
            {"after": "garbage!!"},
            {"before": "bm90IGpzb24"},
            {"after": forged_cursor({"s": "tables", "k": "T1"})},
            {"limit": 101},
            {"before": forged_cursor({"s": "orders", "k": 1}), "after": forged_cursor({"s": "orders", "k": 1})},
        ],
        ids=["garbage", "not-json", "foreign-scope", "limit-above-100", "both-directions"],
    )
    async def test_search_orders_refuses_a_bad_cursor(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, cursor: Json
    ) -> None:
        epos_venue_seeder.add_open_order("T1", 1000, "GBP")
        failed(await epos_rpc("SearchOrdersV1", {"cursor": cursor}), "InvalidRequest")

    @requires(C.GET_ORDER_BILL_BY_ID, C.GET_ORDER_BY_ID)
    async def test_bill_carries_the_venue_around_the_current_order(self, epos_rpc: Rpc, epos_order: str) -> None:
        bill = ok(await epos_rpc("GetOrderBillByIdV1", {"orderId": epos_order}))
        header = {line["lineType"]: line for line in bill["header"]["lines"]}
        assert header["MerchantName"]["merchantName"] == {"name": STANDARD_VENUE.name}
        footer = {line["lineType"]: line for line in bill["footer"]["lines"]}
        assert footer["TaxNumber"]["taxNumber"]["number"] == STANDARD_VENUE.vat_number
        assert bill["order"] == ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        failed(await epos_rpc("GetOrderBillByIdV1", {"orderId": "999999"}), "NotFound")

    @requires(C.CANCEL_ORDER_BY_ID, C.GET_ORDER_BY_ID)
    async def test_cancel_order_is_idempotent_and_leaves_the_order_not_payable(
        self, epos_rpc: Rpc, epos_order: str
    ) -> None:
        first = ok(await epos_rpc("CancelOrderByIdV1", {"orderId": epos_order}))
        again = ok(await epos_rpc("CancelOrderByIdV1", {"orderId": epos_order}))
        assert first == again
        assert (first["status"], first["payable"]) == ("Canceled", False)
        failed(await epos_rpc("CancelOrderByIdV1", {"orderId": "999999"}), "NotFound")

    @requires(C.CANCEL_ORDER_BY_ID, C.GET_ORDER_BY_ID, C.RECORD_ORDER_PAYMENT_BY_ID, C.CREATE_ORDER_LOCK)
    @pytest.mark.parametrize("state", ["paid", "finalized", "locked", "open-at-till"])
    async def test_cancel_order_is_a_conflict_when_the_order_is_not_free(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_order: str, state: str
    ) -> None:
        if state == "paid":
            ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 500)))
        elif state == "finalized":
            epos_order = _moved_to(epos_venue_seeder, epos_order, "Finalized")
        elif state == "locked":
            ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(30))))
        else:
            epos_venue_seeder.open_order_at_till(epos_order, "till-2")
        failed(await epos_rpc("CancelOrderByIdV1", {"orderId": epos_order}), "Conflict")
        assert ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))["status"] != "Canceled"

    # locks -----------------------------------------------------------------------------------------

    @requires(C.CREATE_ORDER_LOCK, C.DELETE_ORDER_LOCK, C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    async def test_lock_pay_release_publishes_the_events_in_order(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        before = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        locked = ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(60))))
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 10000, lock_id="lock-1")))
        released = ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "lock-1"}))
        assert locked == before, "CreateOrderLock returns the full current order"
        assert (released["paidAmount"], released["payable"]) == (money(10000), False)
        assert [type(e).__name__ for e in epos_published] == ["LockCreated", "PaymentRecorded", "LockReleased"]
        [created] = of_type(epos_published, LockCreated)
        assert (created.order_id, created.lock_id) == (epos_order, "lock-1")

    @requires(C.CREATE_ORDER_LOCK)
    async def test_a_second_lock_id_is_a_conflict_and_a_repeat_is_success(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        first = ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        assert ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(20)))) == first
        error = failed(
            await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-2", minutes_from_now(10))), "Conflict"
        )
        assert "lock-1" in error["debugMessage"]
        assert len(of_type(epos_published, LockCreated)) == 1
        [refused] = of_type(epos_published, LockRefused)
        assert refused.lock_id == "lock-2"

    @requires(C.CREATE_ORDER_LOCK)
    async def test_an_expired_lock_counts_as_released(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-stale", minutes_from_now(-5))))
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-new", minutes_from_now(10))))
        [expired] = of_type(epos_published, LockExpired)
        assert expired.lock_id == "lock-stale"
        failed(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-3", minutes_from_now(10))), "Conflict")

    @requires(C.CREATE_ORDER_LOCK)
    @pytest.mark.parametrize("state", ["Finalized", "Canceled", "open-at-till"])
    async def test_an_order_that_is_closed_or_open_at_a_till_cannot_be_locked(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_published: list[DomainEvent], epos_order: str, state: str
    ) -> None:
        if state == "open-at-till":
            epos_venue_seeder.open_order_at_till(epos_order, "till-3")
        else:
            epos_order = _moved_to(epos_venue_seeder, epos_order, state)
        error = failed(
            await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))), "Conflict"
        )
        assert (state if state != "open-at-till" else "till-3") in error["debugMessage"]
        assert len(of_type(epos_published, LockRefused)) == 1

    @requires(C.CREATE_ORDER_LOCK, C.DELETE_ORDER_LOCK, C.EXTEND_ORDER_LOCK)
    @pytest.mark.parametrize("order_id", ["999999", "abc"])
    async def test_lock_methods_on_an_unknown_order_are_not_found(self, epos_rpc: Rpc, order_id: str) -> None:
        failed(await epos_rpc("CreateOrderLockV1", lock(order_id, "lock-1", minutes_from_now(5))), "NotFound")
        failed(await epos_rpc("ExtendOrderLockV1", lock(order_id, "lock-1", minutes_from_now(5))), "NotFound")
        failed(await epos_rpc("DeleteOrderLockV1", {"orderId": order_id, "lockId": "lock-1"}), "NotFound")

    @requires(C.CREATE_ORDER_LOCK, C.EXTEND_ORDER_LOCK, C.DELETE_ORDER_LOCK, C.RECORD_ORDER_PAYMENT_BY_ID)
    @pytest.mark.parametrize("expiry", OUT_OF_WINDOW_TIMES)
    async def test_an_expiry_outside_the_window_is_refused_and_breaks_nothing(
        self, epos_rpc: Rpc, epos_order: str, expiry: str
    ) -> None:
        error = failed(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-bad", expiry)), "InvalidRequest")
        assert "expiry" in error["debugMessage"]
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        error = failed(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-1", expiry)), "InvalidRequest")
        assert "expiry" in error["debugMessage"]
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 1000, lock_id="lock-1")))
        assert ok(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(20)))) == {}
        released = ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "lock-1"}))
        assert (released["paidAmount"], released["payable"]) == (money(1000), True)

    @requires(C.CREATE_ORDER_LOCK, C.EXTEND_ORDER_LOCK)
    async def test_extend_stores_the_new_expiry_and_answers_an_empty_object(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        past = minutes_from_now(-1)
        assert ok(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-1", past))) == {}
        [extended] = of_type(epos_published, LockExtended)
        assert extended.expires_at == parse_time(past)
        # The stored expiry is now in the past, so another lock may take the order.
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-2", minutes_from_now(10))))
        failed(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(5))), "Conflict")
        failed(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-9", minutes_from_now(5))), "Conflict")

    @requires(C.CREATE_ORDER_LOCK, C.EXTEND_ORDER_LOCK)
    async def test_extend_an_expired_lock_retakes_it_only_if_the_order_was_untouched(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_order: str
    ) -> None:
        epos_venue_seeder.set_order_updated_at(epos_order, datetime.now(UTC) - timedelta(minutes=120))
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(-60))))
        assert ok(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(-30)))) == {}
        epos_venue_seeder.set_order_updated_at(epos_order, datetime.now(UTC))
        error = failed(await epos_rpc("ExtendOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(5))), "Conflict")
        assert "changed" in error["debugMessage"]

    @requires(C.CREATE_ORDER_LOCK, C.DELETE_ORDER_LOCK, C.GET_ORDER_BY_ID)
    async def test_delete_lock_is_idempotent_and_never_releases_another_holder(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        order = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "never"})) == order
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "someone-else"}))
        failed(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-2", minutes_from_now(10))), "Conflict")
        ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "lock-1"}))
        ok(await epos_rpc("DeleteOrderLockV1", {"orderId": epos_order, "lockId": "lock-1"}))
        assert len(of_type(epos_published, LockReleased)) == 1
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-2", minutes_from_now(10))))

    # payments ----------------------------------------------------------------------------------------

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    async def test_split_payments_with_tips_until_fully_paid(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        first = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_a", 4000, tips=500)))
        assert first["payments"] == [{"paymentIntentId": "pi_a", "paidAmount": money(4000), "tipsAmount": money(500)}]
        assert (first["paidAmount"], first["tipsAmount"], first["payable"]) == (money(4000), money(500), True)
        last = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_b", 6000)))
        assert (last["paidAmount"], last["tipsAmount"], last["payable"]) == (money(10000), money(500), False)
        assert last == ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert [e.payment_intent_id for e in of_type(epos_published, PaymentRecorded)] == ["pi_a", "pi_b"]

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.CREATE_ORDER_LOCK)
    async def test_a_replayed_payment_intent_is_success_and_counts_once_whatever_happened_since(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        first = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000, lock_id="lock-1")))
        assert ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000))) == first
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-2", minutes_from_now(10))))
        epos_venue_seeder.set_order_status(epos_order, "Finalized")
        replay = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000, lock_id="lock-1")))
        assert (replay["paidAmount"], replay["status"]) == (money(4000), "Finalized")
        assert len(of_type(epos_published, PaymentRecorded)) == 1

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    async def test_a_payment_intent_recorded_on_another_order_is_success_and_moves_no_money(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_order: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        # caplog: an adapter may log such a replay as a warning (the built-in ones do).
        other = epos_venue_seeder.add_open_order("T2", 10000, "GBP")
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000)))
        answer = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(other, "pi_1", 4000)))
        assert answer["id"] == other
        assert answer["paidAmount"] == money(0)
        assert ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))["paidAmount"] == money(4000)

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.CREATE_ORDER_LOCK, C.GET_ORDER_BY_ID)
    async def test_payments_follow_the_lock_rules(self, epos_rpc: Rpc, epos_order: str) -> None:
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 1000, lock_id="lock-1")))
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_2", 1000)))  # Dojo may omit lockId
        error = failed(
            await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_3", 1000, lock_id="lock-2")), "Conflict"
        )
        assert "lock-1" in error["debugMessage"]
        assert ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))["paidAmount"] == money(2000)

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    @pytest.mark.parametrize(
        ("state", "params", "error_type"),
        [
            ("Finalized", pay("{id}", "pi_x", 1000), "Conflict"),
            ("Canceled", pay("{id}", "pi_x", 1000), "Conflict"),
            ("open-at-till", pay("{id}", "pi_x", 1000), "Conflict"),
            ("", pay("{id}", "pi_x", 10001), "Conflict"),
            ("", {**pay("{id}", "pi_x", 1000), "paidAmount": money(1000, "EUR")}, "InvalidRequest"),
            ("", {**pay("{id}", "pi_x", 1000), "tipsAmount": money(100, "EUR")}, "InvalidRequest"),
            ("", {**pay("{id}", "pi_x", 1000), "orderId": "999999"}, "NotFound"),
        ],
        ids=["finalized", "canceled", "open-at-till", "above-outstanding", "currency", "tip-currency", "unknown"],
    )
    async def test_a_payment_that_cannot_be_recorded_stores_nothing(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_order: str, state: str, params: Json, error_type: str
    ) -> None:
        if state == "open-at-till":
            epos_venue_seeder.open_order_at_till(epos_order, "till-1")
        elif state:
            epos_order = _moved_to(epos_venue_seeder, epos_order, state)
        request = {**params, "orderId": epos_order if params["orderId"] == "{id}" else params["orderId"]}
        failed(await epos_rpc("RecordOrderPaymentByIdV1", request), error_type)
        after = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert (after["paidAmount"], after["payments"]) == (money(0), [])

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    @pytest.mark.parametrize(("case", "change"), BAD_PAYMENTS, ids=[case for case, _ in BAD_PAYMENTS])
    async def test_money_that_is_not_a_payment_is_refused_naming_the_field(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str, case: str, change: Json
    ) -> None:
        field_name = next(iter(change))
        request = {**pay(epos_order, "pi_bad", 1000, tips=100), **change}
        error = failed(await epos_rpc("RecordOrderPaymentByIdV1", request), "InvalidRequest")
        assert field_name in error["debugMessage"], error
        after = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert (after["paidAmount"], after["payments"]) == (money(0), [])
        assert of_type(epos_published, PaymentRecorded) == []
        # The order still takes a real payment, and an empty intent id never becomes a "duplicate".
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_good", 1000)))
        failed(await epos_rpc("RecordOrderPaymentByIdV1", {**pay(epos_order, "", 500)}), "InvalidRequest")

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    async def test_a_recorded_intent_sent_again_with_another_amount_is_success_and_counts_once(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        # caplog: an adapter may log such a replay as a warning (the built-in ones do).
        first = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000, tips=400)))
        for replay in (
            pay(epos_order, "pi_1", 9000),
            pay(epos_order, "pi_1", 4000, tips=900),
            pay(epos_order, "pi_1", 1),
        ):
            assert ok(await epos_rpc("RecordOrderPaymentByIdV1", replay)) == first  # never Conflict
        assert len(of_type(epos_published, PaymentRecorded)) == 1
        # An intent id is an exact string too: this one is a different payment.
        other = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1 ", 1000)))
        assert other["paidAmount"] == money(5000)

    # the bridge never forgets a payment ---------------------------------------------------------------

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    async def test_a_payment_is_never_forgotten_when_the_pos_removes_the_order(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_published: list[DomainEvent], epos_order: str
    ) -> None:
        first = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000, tips=200)))
        _remove(epos_venue_seeder, epos_order)
        # Dojo's retry after a lost answer: success, from the bridge's record (an error reverses it).
        replay = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000, tips=200)))
        assert replay == {**first, "payable": False}
        # Another payment has no open order to go to: Conflict (Dojo reverses it), never NotFound.
        failed(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_2", 1000)), "Conflict")
        assert ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order})) == {**first, "payable": False}
        assert len(of_type(epos_published, PaymentRecorded)) == 1

    @requires(C.RECORD_ORDER_PAYMENT_BY_ID, C.CREATE_ORDER_LOCK, C.GET_ORDER_BY_ID)
    async def test_an_order_removed_before_dojo_paid_it_is_gone_and_takes_no_payment(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_order: str
    ) -> None:
        ok(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-1", minutes_from_now(10))))
        _remove(epos_venue_seeder, epos_order)
        failed(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}), "NotFound")
        failed(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 1000)), "Conflict")
        failed(await epos_rpc("CreateOrderLockV1", lock(epos_order, "lock-2", minutes_from_now(10))), "NotFound")

    @requires(C.HANDLE_PAYMENT_INTENT_STATUS_UPDATED, C.RECORD_ORDER_PAYMENT_BY_ID)
    async def test_an_event_for_a_payment_on_a_removed_order_is_kept_and_the_replay_still_succeeds(
        self, epos_rpc: Rpc, epos_venue_seeder: Seeder, epos_order: str
    ) -> None:
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000)))
        _remove(epos_venue_seeder, epos_order)
        assert ok(await epos_rpc("HandleEventV1", event("evt_1", "pi_1", "Captured"))) == {}
        assert ok(await epos_rpc("HandleEventV1", event("evt_2", "pi_1", "Refunded"))) == {}
        assert ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000)))["id"] == epos_order

    # events -----------------------------------------------------------------------------------------

    @requires(C.HANDLE_PAYMENT_INTENT_STATUS_UPDATED, C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID, C.SEARCH_ORDERS)
    @pytest.mark.parametrize("status", ["Reversed", "Refunded", "Canceled"])
    async def test_a_reversed_payment_stops_counting_and_a_replayed_event_changes_nothing(
        self, epos_rpc: Rpc, epos_published: list[DomainEvent], epos_order: str, status: str
    ) -> None:
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_keep", 3000, tips=300)))
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_gone", 7000)))
        assert ok(await epos_rpc("HandleEventV1", event("evt_1", "pi_gone", status))) == {}
        # Same id, other content: at-least-once delivery de-duplicates on the event id alone.
        assert ok(await epos_rpc("HandleEventV1", event("evt_1", "pi_gone", "Captured"))) == {}
        after = ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))
        assert (after["paidAmount"], after["tipsAmount"], after["payable"]) == (money(3000), money(300), True)
        assert [p["paymentIntentId"] for p in after["payments"]] == ["pi_keep"]
        [changed] = of_type(epos_published, PaymentStatusChanged)
        assert (changed.order_id, changed.payment_intent_id, changed.status.value) == (epos_order, "pi_gone", status)
        assert ids(ok(await epos_rpc("SearchOrdersV1", {"payableOnly": True}))) == [epos_order]

    @requires(C.HANDLE_PAYMENT_INTENT_STATUS_UPDATED, C.RECORD_ORDER_PAYMENT_BY_ID, C.GET_ORDER_BY_ID)
    async def test_events_out_of_order_settle_on_the_newest_status(self, epos_rpc: Rpc, epos_order: str) -> None:
        ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_1", 4000)))
        ok(await epos_rpc("HandleEventV1", event("evt_2", "pi_1", "Reversed", created_at=minutes_from_now(-1))))
        ok(await epos_rpc("HandleEventV1", event("evt_1", "pi_1", "Captured", created_at=minutes_from_now(-2))))
        assert ok(await epos_rpc("GetOrderByIdV1", {"orderId": epos_order}))["paidAmount"] == money(0)

    @requires(C.HANDLE_PAYMENT_INTENT_STATUS_UPDATED, C.RECORD_ORDER_PAYMENT_BY_ID)
    async def test_an_event_before_its_payment_is_kept_and_applied_when_the_payment_arrives(
        self, epos_rpc: Rpc, epos_order: str
    ) -> None:
        ok(await epos_rpc("HandleEventV1", event("evt_1", "pi_early", "Reversed")))
        recorded = ok(await epos_rpc("RecordOrderPaymentByIdV1", pay(epos_order, "pi_early", 4000)))
        assert (recorded["paidAmount"], recorded["payments"], recorded["payable"]) == (money(0), [], True)

    @requires(C.HANDLE_PAYMENT_INTENT_STATUS_UPDATED)
    async def test_events_are_validated_and_unknown_types_acknowledged(self, epos_rpc: Rpc) -> None:
        assert ok(await epos_rpc("HandleEventV1", event("evt_1", "pi_1", "Captured", kind="order.updated"))) == {}
        bad = event("evt_2", "pi_1", "Bounced")
        assert (
            "params.data.paymentStatus"
            in failed(await epos_rpc("HandleEventV1", bad), "InvalidRequest")["debugMessage"]
        )

    # tables and areas ---------------------------------------------------------------------------------

    @requires(C.LIST_AREAS)
    async def test_list_areas_is_a_bare_array(self, epos_rpc: Rpc) -> None:
        assert ok(await epos_rpc("ListAreasV1", {})) == [
            {"id": "bar", "name": "Bar", "waiterIds": []},
            {"id": "main", "name": "Main floor", "waiterIds": ["w1"]},
        ]

    @requires(C.SEARCH_TABLES)
    async def test_search_tables_returns_every_table_and_filters_by_area_and_waiter(self, epos_rpc: Rpc) -> None:
        page = ok(await epos_rpc("SearchTablesV1", {}))
        assert page == {
            "data": [
                {"id": "B1", "name": "Bar 1", "maxCovers": 2, "areaId": "bar", "waiterIds": []},
                {"id": "T1", "name": "1", "maxCovers": 4, "areaId": "main", "waiterIds": ["w1"]},
                {"id": "T12", "name": "12", "maxCovers": 6, "areaId": "main", "waiterIds": ["w1"]},
                {"id": "T2", "name": "2", "maxCovers": 2, "areaId": "main", "waiterIds": []},
            ]
        }
        assert ids(ok(await epos_rpc("SearchTablesV1", {"areaId": "main", "waiterId": "w1"}))) == ["T1", "T12"]
        assert ids(ok(await epos_rpc("SearchTablesV1", {"areaId": "terrace"}))) == []

    @requires(C.SEARCH_TABLES)
    async def test_search_tables_pages_exactly_once_and_refuses_foreign_cursors(self, epos_rpc: Rpc) -> None:
        pages = await walk(epos_rpc, "SearchTablesV1", {}, 1)
        assert [i for p in pages for i in ids(p)] == ["B1", "T1", "T12", "T2"]
        back = await walk_back(epos_rpc, "SearchTablesV1", {}, 1, pages[-1])
        assert [i for p in back for i in ids(p)] == ["T12", "T1", "B1"]
        for cursor in ("!!", forged_cursor({"s": "tables", "k": 5}), forged_cursor({"s": "orders", "k": 1})):
            failed(await epos_rpc("SearchTablesV1", {"cursor": {"after": cursor}}), "InvalidRequest")

    # parties --------------------------------------------------------------------------------------------

    @requires(C.CREATE_PARTY, C.GET_PARTY_BY_ID, C.UPDATE_PARTY, C.DELETE_PARTY_BY_ID)
    async def test_party_lifecycle(self, epos_rpc: Rpc) -> None:
        deposit = {"totalAmount": money(2000), "paymentIntentIds": ["pi_dep"], "description": "Deposit"}
        created = ok(
            await epos_rpc(
                "CreatePartyV1", party_params("dojo-p1", ("T1", "T2"), name="Ada", covers=5, deposit=deposit)
            )
        )
        assert (created["status"], created["tableIds"], created["deposit"]) == ("Seated", ["T1", "T2"], deposit)
        assert ok(await epos_rpc("CreatePartyV1", party_params("dojo-p1", ("B1",), name="Other"))) == created
        assert ok(await epos_rpc("GetPartyByIdV1", {"partyId": created["id"]})) == created
        update = {"id": created["id"], **party_params("dojo-p1", ("T12",)), "status": "Paying"}
        updated = ok(await epos_rpc("UpdatePartyV1", update))
        assert updated == {
            "id": created["id"],
            "startTime": "2025-03-14T19:00:00.000Z",
            "status": "Paying",
            "tableIds": ["T12"],
        }, "replace semantics: omitted optional fields are cleared"
        failed(await epos_rpc("UpdatePartyV1", {**update, "dojoPartyId": "dojo-other"}), "InvalidRequest")
        failed(await epos_rpc("UpdatePartyV1", {**update, "tableIds": ["T99"]}), "InvalidRequest")
        failed(await epos_rpc("UpdatePartyV1", {**update, "id": "999999"}), "NotFound")
        assert ok(await epos_rpc("DeletePartyByIdV1", {"partyId": created["id"]})) == {}
        assert ok(await epos_rpc("DeletePartyByIdV1", {"partyId": created["id"]})) == {}
        failed(await epos_rpc("GetPartyByIdV1", {"partyId": created["id"]}), "NotFound")
        failed(await epos_rpc("DeletePartyByIdV1", {"partyId": "999999"}), "NotFound")
        failed(await epos_rpc("CreatePartyV1", party_params("dojo-p1")), "Conflict")
        failed(await epos_rpc("CreatePartyV1", party_params("dojo-p2", ("T99",))), "InvalidRequest")

    @requires(C.CREATE_PARTY, C.GET_PARTY_BY_ID, C.DELETE_PARTY_BY_ID)
    async def test_party_ids_are_exact_and_times_are_checked(self, epos_rpc: Rpc) -> None:
        created = ok(await epos_rpc("CreatePartyV1", party_params("dojo-p1")))
        for other in respellings(created["id"]):
            failed(await epos_rpc("GetPartyByIdV1", {"partyId": other}), "NotFound")
            failed(await epos_rpc("DeletePartyByIdV1", {"partyId": other}), "NotFound")
        for start in OUT_OF_WINDOW_TIMES:
            request = {**party_params("dojo-p2"), "startTime": start}
            error = failed(await epos_rpc("CreatePartyV1", request), "InvalidRequest")
            assert "startTime" in error["debugMessage"]
        assert ok(await epos_rpc("GetPartyByIdV1", {"partyId": created["id"]})) == created
        assert ok(await epos_rpc("CreatePartyV1", party_params("dojo-p2")))["id"] != created["id"]

    @requires(C.CREATE_PARTY, C.UPDATE_PARTY, C.SEARCH_PARTIES)
    async def test_search_parties_seated_by_default_departed_only_with_completed_only(self, epos_rpc: Rpc) -> None:
        seated = ok(await epos_rpc("CreatePartyV1", party_params("dojo-a", ("T1",))))["id"]
        other = ok(await epos_rpc("CreatePartyV1", party_params("dojo-b", ("T2", "T12"))))["id"]
        left = ok(await epos_rpc("CreatePartyV1", party_params("dojo-c", ("T1",))))["id"]
        departed = {"id": left, **party_params("dojo-c"), "status": "Left", "endTime": "2025-03-14T21:00:00.000Z"}
        ok(await epos_rpc("UpdatePartyV1", departed))
        assert ids(ok(await epos_rpc("SearchPartiesV1", {}))) == [seated, other]
        assert ids(ok(await epos_rpc("SearchPartiesV1", {"completedOnly": True}))) == [left]
        assert ids(ok(await epos_rpc("SearchPartiesV1", {"tableId": "T12"}))) == [other]
        pages = await walk(epos_rpc, "SearchPartiesV1", {}, 1)
        assert [i for p in pages for i in ids(p)] == [seated, other]
        failed(
            await epos_rpc("SearchPartiesV1", {"cursor": {"after": forged_cursor({"s": "orders", "k": 1})}}),
            "InvalidRequest",
        )

    @requires(C.CREATE_PARTY, C.CREATE_RESERVATION)
    async def test_a_party_links_to_the_reservation_dojo_names(self, epos_rpc: Rpc) -> None:
        reservation = ok(await epos_rpc("CreateReservationV1", reservation_params("dojo-r1")))
        party = ok(await epos_rpc("CreatePartyV1", party_params("dojo-p1", dojoReservationId="dojo-r1")))
        assert party["reservationId"] == reservation["id"]

    # reservations -----------------------------------------------------------------------------------------

    @requires(C.CREATE_RESERVATION, C.GET_RESERVATION_BY_ID, C.UPDATE_RESERVATION, C.DELETE_RESERVATION_BY_ID)
    async def test_reservation_lifecycle(self, epos_rpc: Rpc) -> None:
        request = reservation_params("dojo-r1", tableIds=["T1", "T12"], hostNotes="regulars")
        created = ok(await epos_rpc("CreateReservationV1", request))
        assert (created["tableIds"], created["hostNotes"], created["startTime"]) == (
            ["T1", "T12"],
            "regulars",
            "2025-03-14T19:00:00.000Z",
        )
        assert ok(await epos_rpc("CreateReservationV1", reservation_params("dojo-r1", name="X"))) == created
        assert ok(await epos_rpc("GetReservationByIdV1", {"reservationId": created["id"]})) == created
        update = {"id": created["id"], **reservation_params("dojo-r1", "20:00", "22:00", tableIds=["B1"])}
        updated = ok(await epos_rpc("UpdateReservationV1", update))
        assert "hostNotes" not in updated
        assert updated["tableIds"] == ["B1"]
        failed(await epos_rpc("UpdateReservationV1", {**update, "endTime": update["startTime"]}), "InvalidRequest")
        failed(await epos_rpc("UpdateReservationV1", {**update, "dojoReservationId": "other"}), "InvalidRequest")
        failed(await epos_rpc("CreateReservationV1", reservation_params("dojo-r2", tableIds=["T99"])), "InvalidRequest")
        assert ok(await epos_rpc("DeleteReservationByIdV1", {"reservationId": created["id"]})) == {}
        assert ok(await epos_rpc("DeleteReservationByIdV1", {"reservationId": created["id"]})) == {}
        failed(await epos_rpc("GetReservationByIdV1", {"reservationId": created["id"]}), "NotFound")
        failed(await epos_rpc("DeleteReservationByIdV1", {"reservationId": "abc"}), "NotFound")
        failed(await epos_rpc("CreateReservationV1", reservation_params("dojo-r1")), "Conflict")

    @requires(C.CREATE_RESERVATION, C.GET_RESERVATION_BY_ID, C.SEARCH_RESERVATIONS)
    async def test_reservation_ids_are_exact_and_times_are_checked(self, epos_rpc: Rpc) -> None:
        created = ok(await epos_rpc("CreateReservationV1", reservation_params("dojo-r1")))
        for other in respellings(created["id"]):
            failed(await epos_rpc("GetReservationByIdV1", {"reservationId": other}), "NotFound")
        for moment in OUT_OF_WINDOW_TIMES:
            request = {**reservation_params("dojo-r2"), "endTime": moment}
            assert "endTime" in failed(await epos_rpc("CreateReservationV1", request), "InvalidRequest")["debugMessage"]
            window = {"fromTime": moment}
            assert (
                "fromTime" in failed(await epos_rpc("SearchReservationsV1", window), "InvalidRequest")["debugMessage"]
            )
        assert ids(ok(await epos_rpc("SearchReservationsV1", {}))) == [created["id"]]

    @requires(C.CREATE_RESERVATION, C.SEARCH_RESERVATIONS)
    async def test_search_reservations_by_overlapping_window_table_and_page(self, epos_rpc: Rpc) -> None:
        early = ok(await epos_rpc("CreateReservationV1", reservation_params("e", "17:00", "19:00")))["id"]
        late = ok(await epos_rpc("CreateReservationV1", reservation_params("l", "19:00", "21:00", tableIds=["T2"])))[
            "id"
        ]
        bar = ok(await epos_rpc("CreateReservationV1", reservation_params("b", "18:00", "20:00", tableIds=["B1"])))[
            "id"
        ]

        async def found(**window: str) -> list[str]:
            return ids(ok(await epos_rpc("SearchReservationsV1", window)))

        assert await found() == [early, late, bar]
        assert await found(fromTime="2025-03-14T19:00:00.000Z") == [late, bar]
        assert await found(toTime="2025-03-14T19:00:00.000Z") == [early, bar]
        assert await found(fromTime="2025-03-14T20:30:00+01:00") == [late, bar]
        assert await found(tableId="T2") == [late]
        pages = await walk(epos_rpc, "SearchReservationsV1", {}, 2)
        assert [i for p in pages for i in ids(p)] == [early, late, bar]
