"""The EPOS tester tool of the local Dojo stand-in (contract §5.7, ``epos-tester.schema.json``).

``GET /epos-tester-tool/flows`` lists the flows below with their parameters; ``POST`` starts one
and answers its id as a bare JSON string; ``GET /epos-tester-tool/flows/{flowId}`` reports the
flow so far: every step with its times, status and ``additionalInformation``.

A flow drives the connected bridge **over the real WebSocket**, through the gateway simulator,
exactly as Dojo's products do: JSON-RPC requests with the product's headers, answers matched by
id. Before each call the flow checks that the capability is registered (what the bridge last
sent to ``PUT /epos/integrations/ws``); a step that needs one that is not fails with the
published wording ("GetOrder method not found", "Please register the GetOrder method on an
EPOS Data API adapter") and ends the flow, as Dojo would never route that call. Each answer is
read with the contract's own wire models, so a malformed Order fails its step naming the field.

Flows (the issue's list, plus the bill and the floor plan):

* **Get Order** — get an order by id; an unknown id must be ``NotFound``.
* **Get Order Bill** — the bill a terminal prints.
* **Search Orders** — a table's payable orders, then the same search a page at a time.
* **Tables and Areas** — ListAreas, SearchTables.
* **Lock Conflict** — lock, a second lock under another id must be ``Conflict``, unlock, the
  other lock now succeeds, unlock.
* **Pay at Table** — find, get, lock, pay in parts with a tip, extending the lock before each
  part, unlock; locking follows the registered set as Dojo does (§2.2).
* **Bookings** — book, read back, change, find, seat as a party, order, leave; book and cancel.
* **Payment Intent Events** — ``payment_intent.created``, ``status_updated``, and the same event
  again (delivery is at least once, §3.22).

Choices of the simulator (Dojo does not publish them): a step waits ``step_timeout`` seconds for
the bridge's answer and is ``TIMED_OUT`` after that; the steps of the Dojo method names drop
"ById" (the published example says "GetOrder" for GetOrderById); ``step_pause`` seconds pass
between steps so a person can watch them arrive (0 in tests). A flow waits for the simulator's
product lock, so the demo's own product flows never interleave with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import Capability, WireMethod, canonical_capability, capabilities_of
from epos_bridge.protocol.entities import Area, Order, OrderBill, Party, Reservation
from epos_bridge.protocol.params import PagedOrders, PagedParties, PagedReservations, PagedTables
from epos_bridge.services.tasks import TaskSet
from epos_bridge.sim.gateway import GatewaySimulator, SimulatorError
from epos_bridge.sim.rest import JSON_BODY, problem_response

log = logging.getLogger(__name__)

BASE = "/epos-tester-tool/flows"
DEVICE_ID = "epos-tester-tool"
TESTER_PRODUCT = "EposTesterTool"
KEEP_RECORDS = 200

Now = Callable[[], datetime]
ModelT = TypeVar("ModelT", bound=BaseModel)


def _now() -> datetime:
    return datetime.now(UTC)


# --- what a flow reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimParam:
    name: str
    description: str
    required: bool = True
    type: str = "string"
    default: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "description": self.description,
        }
        if self.default is not None:
            wire["default"] = self.default
        return wire


@dataclass
class StepRecord:
    name: str
    started_at: datetime
    status: str = "IN_PROGRESS"
    finished_at: datetime | None = None
    information: list[str] = field(default_factory=list)

    def finish(self, status: str, at: datetime, *lines: str) -> None:
        self.status = status
        self.finished_at = at
        self.information.extend(lines)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.name, "status": self.status, "startedAt": format_utc(self.started_at)}
        if self.finished_at is not None:
            wire["finishedAt"] = format_utc(self.finished_at)
        wire["additionalInformation"] = list(self.information)
        return wire


@dataclass
class FlowRecord:
    id: str
    name: str
    started_at: datetime
    params: dict[str, str]
    status: str = "IN_PROGRESS"
    finished_at: datetime | None = None
    steps: list[StepRecord] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "flowID": self.id,
            "flowName": self.name,
            "status": self.status,
            "startedAt": format_utc(self.started_at),
            "steps": [step.to_wire() for step in self.steps],
        }
        if self.finished_at is not None:
            wire["finishedAt"] = format_utc(self.finished_at)
        return wire


class FlowStopped(Exception):
    """A step did not succeed: the flow ends with ``status`` (FAILURE or TIMED_OUT)."""

    def __init__(self, status: str = "FAILURE") -> None:
        super().__init__(status)
        self.status = status


class CheckFailed(Exception):
    """The bridge answered, but not what the contract asks; ``lines`` say why."""

    def __init__(self, *lines: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def dojo_method_name(capability: Capability) -> str:
    """The method name Dojo's tester prints: GetOrderById → "GetOrder" (the published example)."""
    return capability.value.removesuffix("ById")


def not_registered_words(capability: Capability) -> tuple[str, str]:
    name = dojo_method_name(capability)
    return f"{name} method not found", f"Please register the {name} method on an EPOS Data API adapter"


Check = Callable[[Any], list[str]]


@dataclass(kw_only=True)
class FlowContext:
    """What a flow script uses: one call to the bridge per step, reported as it happens."""

    record: FlowRecord
    gateway: GatewaySimulator
    registered: Callable[[], frozenset[Capability]]
    product: str
    step_pause: float
    step_timeout: float
    now: Now

    def has(self, capability: Capability) -> bool:
        return capability in self.registered()

    def headers(self) -> dict[str, Any]:
        return {"dojoRequestingProduct": self.product, "deviceId": DEVICE_ID, "deviceType": "tester"}

    def note(self, name: str, *lines: str) -> None:
        """A step that calls nothing (a decision the flow took), successful by definition."""
        step = StepRecord(name, self.now())
        step.finish("SUCCESS", self.now(), *lines)
        self.record.steps.append(step)

    async def call(
        self,
        name: str,
        method: WireMethod,
        params: dict[str, Any],
        *,
        capability: Capability | None = None,
        expect_error: str | None = None,
        check: Check | None = None,
    ) -> Any:
        """One step: ``method`` with ``params`` (headers added). Returns the result (or the error
        object when ``expect_error`` was expected); raises :class:`FlowStopped` otherwise."""
        if self.record.steps and self.step_pause > 0:
            await asyncio.sleep(self.step_pause)
        step = StepRecord(name, self.now())
        self.record.steps.append(step)
        needed = capability or _capability_of(method)
        if not self.has(needed):
            step.finish("FAILURE", self.now(), *not_registered_words(needed))
            raise FlowStopped()
        if not self.gateway.connected:
            step.finish(
                "FAILURE",
                self.now(),
                "No EPOS is connected to the EPOS Data API WebSocket for this account",
                "Start the bridge and check it shows Connected, then run the flow again",
            )
            raise FlowStopped()
        try:
            response = await self.gateway.request(
                method.value, {"headers": self.headers(), **params}, timeout=self.step_timeout
            )
        except SimulatorError as exc:
            timed_out = "no answer" in str(exc)
            step.finish(
                "TIMED_OUT" if timed_out else "FAILURE",
                self.now(),
                f"The EPOS did not answer {method.value} within {self.step_timeout:g} s"
                if timed_out
                else f"{method.value} could not be sent: {exc}",
            )
            raise FlowStopped("TIMED_OUT" if timed_out else "FAILURE") from None
        error = response.get("error")
        if error is not None:
            error_type = str(error.get("errorType")) if isinstance(error, dict) else "?"
            said = str(error.get("debugMessage") or "") if isinstance(error, dict) else ""
            if expect_error is not None and error_type == expect_error:
                step.finish("SUCCESS", self.now(), f"{method.value} answered {error_type}, as expected" + _said(said))
                return error
            expected = f" (expected {expect_error})" if expect_error else ""
            step.finish("FAILURE", self.now(), f"{method.value} answered {error_type}{expected}" + _said(said))
            raise FlowStopped()
        if expect_error is not None:
            step.finish("FAILURE", self.now(), f"{method.value} succeeded, but the contract asks for {expect_error}")
            raise FlowStopped()
        if "result" not in response:
            step.finish("FAILURE", self.now(), f"The answer to {method.value} has neither result nor error")
            raise FlowStopped()
        result = response["result"]
        try:
            lines = check(result) if check is not None else []
        except CheckFailed as failed:
            step.finish("FAILURE", self.now(), *failed.lines)
            raise FlowStopped() from None
        step.finish("SUCCESS", self.now(), *lines)
        return result


def _said(debug_message: str) -> str:
    return f": {debug_message}" if debug_message else ""


def _capability_of(method: WireMethod) -> Capability:
    # Every method but HandleEventV1 has exactly one capability; HandleEvent steps name theirs.
    (capability,) = capabilities_of(method)
    return capability


def read(model: type[ModelT], data: Any, what: str) -> ModelT:
    """The answer as the contract's wire model (from JSON, as the bridge's answer arrived)."""
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors(include_url=False)[:3]
        )
        raise CheckFailed(f"The answer is not a valid {what} ({fields})") from None


# --- the flows -----------------------------------------------------------------------------------------------------


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 party``, ``2 parties``."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _money(value: int, currency: str) -> str:
    return f"{value / 100:.2f} {currency}"


def describe_order(order: Order) -> str:
    currency = order.total_amount.currency_code if order.total_amount else ""
    total = order.total_amount.value if order.total_amount else 0
    paid = order.paid_amount.value if order.paid_amount else 0
    table = order.details.dine_in.table_id if order.details.dine_in else None
    where = f" at table {table}" if table else ""
    items = len(order.items or [])
    payable = "payable" if order.payable else "not payable"
    return (
        f"Order {order.reference or order.id} ({order.id}){where}: {items} item{'s' if items != 1 else ''}, "
        f"total {_money(total, currency)}, paid {_money(paid, currency)}, {order.status.value}, {payable}"
    )


def order_check(expected_id: str | None = None) -> Check:
    def check(result: Any) -> list[str]:
        order = read(Order, result, "Order")
        if order.id is None:
            raise CheckFailed("The Order has no id (contract §4.2: always send it)")
        if expected_id is not None and order.id != expected_id:
            raise CheckFailed(f"Asked for order {expected_id}, the EPOS answered order {order.id}")
        if order.total_amount is None or order.paid_amount is None:
            raise CheckFailed(f"Order {order.id} has no totalAmount or paidAmount: a terminal cannot settle it")
        lines = [describe_order(order)]
        missing = [name for name, value in (("items", order.items), ("payable", order.payable)) if value is None]
        if missing:
            lines.append(f"Recommended fields missing: {', '.join(missing)} (contract §4.2)")
        return lines

    return check


def outstanding(order: Order) -> int:
    total = order.total_amount.value if order.total_amount else 0
    paid = order.paid_amount.value if order.paid_amount else 0
    return total - paid


def split(amount: int, parts: int) -> list[int]:
    """``amount`` in ``parts`` near-equal positive shares that add up exactly."""
    parts = max(1, min(parts, amount))
    share, rest = divmod(amount, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


async def get_order(ctx: FlowContext, params: dict[str, str]) -> None:
    order_id = params["orderId"]
    await ctx.call(
        "Get the order by its id", WireMethod.GET_ORDER_BY_ID, {"orderId": order_id}, check=order_check(order_id)
    )
    missing = f"tester-missing-{uuid.uuid4().hex[:12]}"
    await ctx.call(
        "Get an order that does not exist (NotFound expected)",
        WireMethod.GET_ORDER_BY_ID,
        {"orderId": missing},
        expect_error="NotFound",
    )


async def get_order_bill(ctx: FlowContext, params: dict[str, str]) -> None:
    order_id = params["orderId"]

    def check(result: Any) -> list[str]:
        bill = read(OrderBill, result, "OrderBill")
        if bill.order.id != order_id:
            raise CheckFailed(f"The bill is for order {bill.order.id}, not {order_id}")
        kinds = [line.line_type.value for line in bill.header.lines]
        header = f"Header: {len(bill.header.lines)} lines ({', '.join(kinds) or 'none'})"
        return [describe_order(bill.order), f"{header}; footer: {len(bill.footer.lines)} lines"]

    await ctx.call(
        "Get the bill a terminal prints", WireMethod.GET_ORDER_BILL_BY_ID, {"orderId": order_id}, check=check
    )


async def search_orders(ctx: FlowContext, params: dict[str, str]) -> None:
    table_id = params["tableId"]
    found: list[Order] = []

    def at_table(result: Any, payable_only: bool) -> list[str]:
        page = read(PagedOrders, result, "page of orders")
        for order in page.data:
            table = order.details.dine_in.table_id if order.details.dine_in else None
            if table != table_id:
                raise CheckFailed(f"Order {order.id} is at table {table}, not {table_id}: the dineIn.tableId filter")
            if payable_only and not order.payable:
                raise CheckFailed(f"Order {order.id} is not payable, yet payableOnly was asked for")
        found[:] = page.data
        names = ", ".join(o.reference or o.id or "?" for o in page.data) or "none"
        kind = "payable" if payable_only else "open"
        return [f"{count(len(page.data), kind + ' order')} at table {table_id}: {names}"]

    await ctx.call(
        "Search the table's payable orders",
        WireMethod.SEARCH_ORDERS,
        {"dineIn": {"tableId": table_id}, "payableOnly": True, "cursor": {"limit": 100}},
        check=lambda r: at_table(r, True),
    )
    await ctx.call(
        "Search the table's open orders",
        WireMethod.SEARCH_ORDERS,
        {"dineIn": {"tableId": table_id}, "cursor": {"limit": 100}},
        check=lambda r: at_table(r, False),
    )
    everything = list(found)
    if len(everything) < 2:
        ctx.note(
            "Page through the orders", f"{count(len(everything), 'open order')} at the table: one page holds them all"
        )
        return
    pages: dict[str, Any] = {}

    def first_page(result: Any) -> list[str]:
        page = read(PagedOrders, result, "page of orders")
        if len(page.data) != 1:
            raise CheckFailed(f"Asked for 1 order per page, the EPOS sent {len(page.data)}")
        if not page.after:
            raise CheckFailed("More orders are open at the table, but the page has no after cursor (§3.23)")
        pages["after"] = page.after
        pages["first"] = page.data[0].id
        return [f"Page 1: {page.data[0].reference or page.data[0].id}; after cursor given"]

    await ctx.call(
        "Read the orders one per page",
        WireMethod.SEARCH_ORDERS,
        {"dineIn": {"tableId": table_id}, "cursor": {"limit": 1}},
        check=first_page,
    )

    def next_page(result: Any) -> list[str]:
        page = read(PagedOrders, result, "page of orders")
        if len(page.data) != 1:
            raise CheckFailed(f"Asked for 1 order per page, the EPOS sent {len(page.data)}")
        if page.data[0].id == pages["first"]:
            raise CheckFailed("The next page repeats the first page's order: the after cursor is not followed")
        return [f"Page 2: {page.data[0].reference or page.data[0].id}"]

    await ctx.call(
        "Read the next page with the after cursor",
        WireMethod.SEARCH_ORDERS,
        {"dineIn": {"tableId": table_id}, "cursor": {"limit": 1, "after": pages["after"]}},
        check=next_page,
    )


async def tables_and_areas(ctx: FlowContext, params: dict[str, str]) -> None:
    areas: list[str] = []

    def check_areas(result: Any) -> list[str]:
        if not isinstance(result, list):
            raise CheckFailed("ListAreas must answer a bare array of areas (§3.10)")
        listed = [read(Area, item, "Area") for item in result]
        areas.extend(a.id for a in listed)
        return [f"{len(listed)} areas: {', '.join(a.name for a in listed) or 'none'}"]

    await ctx.call("List the areas", WireMethod.LIST_AREAS, {}, check=check_areas)

    def check_tables(result: Any) -> list[str]:
        page = read(PagedTables, result, "page of tables")
        lines = [f"{len(page.data)} tables: {', '.join(t.name for t in page.data[:20]) or 'none'}"]
        strays = [t.name for t in page.data if t.area_id and areas and t.area_id not in areas]
        if strays:
            lines.append(f"Tables in an area ListAreas does not list: {', '.join(strays)}")
        return lines

    await ctx.call("Search the tables", WireMethod.SEARCH_TABLES, {"cursor": {"limit": 100}}, check=check_tables)


async def lock_conflict(ctx: FlowContext, params: dict[str, str]) -> None:
    order_id = params["orderId"]
    first, second = f"lock_tester_{uuid.uuid4().hex[:10]}", f"lock_tester_{uuid.uuid4().hex[:10]}"

    def lock(lock_id: str) -> dict[str, Any]:
        expiry = format_utc(ctx.now() + timedelta(seconds=60))
        return {"orderId": order_id, "lockId": lock_id, "expiry": expiry}

    await ctx.call("Lock the order (lock A)", WireMethod.CREATE_ORDER_LOCK, lock(first), check=order_check(order_id))
    try:
        await ctx.call(
            "Lock it again under another lock id (Conflict expected)",
            WireMethod.CREATE_ORDER_LOCK,
            lock(second),
            expect_error="Conflict",
        )
    finally:
        with contextlib.suppress(FlowStopped):  # the first failure is the one that counts
            await ctx.call(
                "Unlock lock A",
                WireMethod.DELETE_ORDER_LOCK,
                {"orderId": order_id, "lockId": first},
                check=order_check(order_id),
            )
    if ctx.record.steps[-1].status != "SUCCESS":
        raise FlowStopped()
    await ctx.call(
        "Lock under the other lock id, now that the order is free",
        WireMethod.CREATE_ORDER_LOCK,
        lock(second),
        check=order_check(order_id),
    )
    await ctx.call(
        "Unlock lock B",
        WireMethod.DELETE_ORDER_LOCK,
        {"orderId": order_id, "lockId": second},
        check=order_check(order_id),
    )


async def pay_at_table(ctx: FlowContext, params: dict[str, str]) -> None:
    table_id = params["tableId"]
    parts = int(params.get("parts") or "2")
    tip_percent = int(params.get("tipPercent") or "10")
    chosen: dict[str, Order] = {}

    def choose(result: Any) -> list[str]:
        page = read(PagedOrders, result, "page of orders")
        owed = [o for o in page.data if o.id and outstanding(o) > 0]
        if not owed:
            raise CheckFailed(f"No payable order with money owed at table {table_id}")
        chosen["order"] = owed[0]
        return [f"{count(len(page.data), 'payable order')} at table {table_id}; paying {describe_order(owed[0])}"]

    await ctx.call(
        "Find the table's payable orders",
        WireMethod.SEARCH_ORDERS,
        {"dineIn": {"tableId": table_id}, "payableOnly": True, "cursor": {"limit": 100}},
        check=choose,
    )
    order_id = str(chosen["order"].id)
    current: dict[str, Order] = {}

    def remember(result: Any) -> list[str]:
        lines = order_check(order_id)(result)
        current["order"] = read(Order, result, "Order")
        return lines

    await ctx.call("Get the order", WireMethod.GET_ORDER_BY_ID, {"orderId": order_id}, check=remember)
    locking = ctx.has(Capability.CREATE_ORDER_LOCK) and ctx.has(Capability.DELETE_ORDER_LOCK)
    extending = locking and ctx.has(Capability.EXTEND_ORDER_LOCK)
    lock_id = f"lock_tester_{uuid.uuid4().hex[:10]}"
    # Contract §2.2: with ExtendOrderLock registered Dojo takes a short lock and extends it.
    lifetime = timedelta(seconds=60) if extending else timedelta(minutes=15)
    if locking:
        how = "short expiry, extended while paying" if extending else "long expiry: ExtendOrderLock is not registered"
        await ctx.call(
            f"Lock the order ({how})",
            WireMethod.CREATE_ORDER_LOCK,
            {"orderId": order_id, "lockId": lock_id, "expiry": format_utc(ctx.now() + lifetime)},
            check=remember,
        )
    else:
        ctx.note(
            "Lock the order",
            "CreateOrderLock and DeleteOrderLock are not both registered: "
            "Dojo records payments without a lock (contract §2.2)",
        )
    try:
        order = current["order"]
        assert order.total_amount is not None
        currency = order.total_amount.currency_code
        shares = split(outstanding(order), parts)
        for number, share in enumerate(shares, start=1):
            tip = share * tip_percent // 100
            if extending:
                expiry = format_utc(ctx.now() + lifetime)
                await ctx.call(
                    f"Extend the lock before payment {number} of {len(shares)}",
                    WireMethod.EXTEND_ORDER_LOCK,
                    {"orderId": order_id, "lockId": lock_id, "expiry": expiry},
                    check=_empty_object("ExtendOrderLock", f"Lock {lock_id} extended until {expiry}"),
                )
            before = current["order"]
            intent = f"pi_tester_{uuid.uuid4().hex[:16]}"
            payment: dict[str, Any] = {
                "orderId": order_id,
                "paymentIntentId": intent,
                "paidAmount": {"value": share, "currencyCode": currency},
                "tipsAmount": {"value": tip, "currencyCode": currency},
            }
            if locking:
                payment["lockId"] = lock_id
            await ctx.call(
                f"Pay part {number} of {len(shares)}: {_money(share, currency)} + {_money(tip, currency)} tip",
                WireMethod.RECORD_ORDER_PAYMENT_BY_ID,
                payment,
                check=_payment_check(before, intent, share, tip, current),
            )
    finally:
        if locking:
            with contextlib.suppress(FlowStopped):
                await ctx.call(
                    "Unlock the order",
                    WireMethod.DELETE_ORDER_LOCK,
                    {"orderId": order_id, "lockId": lock_id},
                    check=_settled_check(order_id),
                )
    if any(step.status != "SUCCESS" for step in ctx.record.steps):
        raise FlowStopped()
    if not locking:
        await ctx.call(
            "Read the settled order", WireMethod.GET_ORDER_BY_ID, {"orderId": order_id}, check=_settled_check(order_id)
        )


def _empty_object(method: str, done: str) -> Check:
    def check(result: Any) -> list[str]:
        if not isinstance(result, dict):
            raise CheckFailed(f"{method} must answer an object ({{}}, contract §6 A4)")
        return [done]

    return check


def _payment_check(before: Order, intent: str, share: int, tip: int, current: dict[str, Order]) -> Check:
    def check(result: Any) -> list[str]:
        order = read(Order, result, "Order")
        paid_before = before.paid_amount.value if before.paid_amount else 0
        tips_before = before.tips_amount.value if before.tips_amount else 0
        paid = order.paid_amount.value if order.paid_amount else 0
        tips = order.tips_amount.value if order.tips_amount else 0
        if paid != paid_before + share:
            raise CheckFailed(f"paidAmount went from {paid_before} to {paid}, not up by {share} (§3.9)")
        if tips != tips_before + tip:
            raise CheckFailed(f"tipsAmount went from {tips_before} to {tips}, not up by {tip} (§3.9)")
        if not any(p.payment_intent_id == intent for p in order.payments or ()):
            raise CheckFailed(f"The payment {intent} is not in the order's payments (§3.9)")
        current["order"] = order
        return [describe_order(order)]

    return check


def _settled_check(order_id: str) -> Check:
    def check(result: Any) -> list[str]:
        lines = order_check(order_id)(result)
        order = read(Order, result, "Order")
        if outstanding(order) != 0:
            raise CheckFailed(f"Order {order_id} still has {outstanding(order)} to pay after every part was paid")
        if order.payable:
            lines.append("The order is fully paid but still payable (contract §6 C13 recommends payable=false)")
        return lines

    return check


async def bookings(ctx: FlowContext, params: dict[str, str]) -> None:
    covers = int(params.get("covers") or "2")
    table_id = params.get("tableId") or ""
    if not table_id:
        picked: dict[str, str] = {}

        def choose_table(result: Any) -> list[str]:
            page = read(PagedTables, result, "page of tables")
            fitting = [t for t in page.data if t.max_covers is None or t.max_covers >= covers + 1] or page.data
            if not fitting:
                raise CheckFailed("The POS has no table to book")
            picked["table"] = fitting[0].id
            return [f"Booking table {fitting[0].name} ({fitting[0].id})"]

        await ctx.call("Find a table to book", WireMethod.SEARCH_TABLES, {"cursor": {"limit": 100}}, check=choose_table)
        table_id = picked["table"]
    tomorrow = (ctx.now() + timedelta(days=1)).replace(hour=19, minute=0, second=0, microsecond=0)
    until = tomorrow + timedelta(hours=2)
    booking = {
        "dojoReservationId": f"dojo_res_tester_{uuid.uuid4().hex[:10]}",
        "name": "EPOS tester",
        "covers": covers,
        "startTime": format_utc(tomorrow),
        "endTime": format_utc(until),
        "tableIds": [table_id],
        "guestRequests": "Created by Dojo's EPOS tester tool",
    }
    made: dict[str, Reservation] = {}

    def reservation_check(expected_covers: int) -> Check:
        def check(result: Any) -> list[str]:
            reservation = read(Reservation, result, "Reservation")
            if reservation.covers != expected_covers:
                raise CheckFailed(f"The reservation is for {reservation.covers}, not {expected_covers}")
            if table_id not in reservation.table_ids:
                raise CheckFailed(f"The reservation is not at table {table_id}: {reservation.table_ids}")
            made["reservation"] = reservation
            return [
                f"Reservation {reservation.id} for {reservation.covers} at {', '.join(reservation.table_ids)}, "
                f"{format_utc(reservation.start_time)} to {format_utc(reservation.end_time)}"
            ]

        return check

    await ctx.call("Book a table", WireMethod.CREATE_RESERVATION, booking, check=reservation_check(covers))
    reservation_id = made["reservation"].id
    await ctx.call(
        "Read the booking back",
        WireMethod.GET_RESERVATION_BY_ID,
        {"reservationId": reservation_id},
        check=reservation_check(covers),
    )
    changed = {**booking, "id": reservation_id, "covers": covers + 1}
    await ctx.call(
        f"Change the booking to {covers + 1} covers",
        WireMethod.UPDATE_RESERVATION,
        changed,
        check=reservation_check(covers + 1),
    )

    def found_it(result: Any) -> list[str]:
        page = read(PagedReservations, result, "page of reservations")
        if not any(r.id == reservation_id for r in page.data):
            raise CheckFailed(f"Reservation {reservation_id} is not among the {len(page.data)} found that evening")
        return [f"{count(len(page.data), 'reservation')} at table {table_id} that evening, the booking among them"]

    await ctx.call(
        "Find the booking among the evening's reservations",
        WireMethod.SEARCH_RESERVATIONS,
        {
            "tableId": table_id,
            "fromTime": format_utc(tomorrow - timedelta(hours=1)),
            "toTime": format_utc(until + timedelta(hours=1)),
        },
        check=found_it,
    )
    seated_at = ctx.now()
    dojo_party_id = f"dojo_party_tester_{uuid.uuid4().hex[:10]}"
    parties: dict[str, Party] = {}

    def party_check(status: str) -> Check:
        def check(result: Any) -> list[str]:
            party = read(Party, result, "Party")
            if party.status != status:
                raise CheckFailed(f"The party's status is {party.status!r}, not {status!r}")
            parties["party"] = party
            tables = ", ".join(party.table_ids)
            return [f"Party {party.id} ({party.name}, {party.covers} covers) at {tables}: {party.status}"]

        return check

    await ctx.call(
        "Seat the guests as a party",
        WireMethod.CREATE_PARTY,
        {
            "startTime": format_utc(seated_at),
            "tableIds": [table_id],
            "dojoPartyId": dojo_party_id,
            "name": "EPOS tester",
            "covers": covers + 1,
            "status": "Seated",
            "reservationId": reservation_id,
            "dojoReservationId": booking["dojoReservationId"],
            "expectedEndTime": format_utc(seated_at + timedelta(hours=2)),
        },
        check=party_check("Seated"),
    )
    party = parties["party"]
    update = {
        "id": party.id,
        "dojoPartyId": dojo_party_id,
        "startTime": format_utc(party.start_time),
        "tableIds": party.table_ids,
        "name": "EPOS tester",
        "covers": covers + 1,
        "expectedEndTime": format_utc(seated_at + timedelta(hours=2)),
    }
    await ctx.call(
        "The guests order", WireMethod.UPDATE_PARTY, {**update, "status": "Ordered"}, check=party_check("Ordered")
    )
    await ctx.call(
        "Read the party back", WireMethod.GET_PARTY_BY_ID, {"partyId": party.id}, check=party_check("Ordered")
    )
    await ctx.call(
        "The guests leave",
        WireMethod.UPDATE_PARTY,
        {**update, "status": "Left", "endTime": format_utc(ctx.now())},
        check=party_check("Left"),
    )

    def gone(result: Any) -> list[str]:
        page = read(PagedParties, result, "page of parties")
        if any(p.id == party.id for p in page.data):
            raise CheckFailed(f"Party {party.id} has left but is still listed (§3.16: leave out ended parties)")
        return [
            f"{count(len(page.data), 'party', 'parties')} still at table {table_id}; the party that left is not listed"
        ]

    await ctx.call(
        "The party that left is no longer listed", WireMethod.SEARCH_PARTIES, {"tableId": table_id}, check=gone
    )
    cancelled = {
        **booking,
        "dojoReservationId": f"dojo_res_tester_{uuid.uuid4().hex[:10]}",
        "name": "EPOS tester (cancel)",
    }
    await ctx.call(
        "Book another table to cancel", WireMethod.CREATE_RESERVATION, cancelled, check=reservation_check(covers)
    )
    other = made["reservation"].id
    await ctx.call(
        "Cancel that booking",
        WireMethod.DELETE_RESERVATION_BY_ID,
        {"reservationId": other},
        check=_empty_object("DeleteReservationById", f"Reservation {other} deleted"),
    )
    await ctx.call(
        "The cancelled booking is gone (NotFound expected)",
        WireMethod.GET_RESERVATION_BY_ID,
        {"reservationId": other},
        expect_error="NotFound",
    )


async def payment_intent_events(ctx: FlowContext, params: dict[str, str]) -> None:
    intent = params.get("paymentIntentId") or f"pi_tester_{uuid.uuid4().hex[:16]}"

    def event(kind: str, status: str, event_id: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "accountId": "acc_sim_tester",
            "event": kind,
            "createdAt": format_utc(ctx.now()),
            "data": {"paymentIntentId": intent, "paymentStatus": status, "captureMode": "Auto"},
        }

    acknowledged = _empty_object("HandleEvent", f"Acknowledged; the event is about {intent}")
    await ctx.call(
        "payment_intent.created",
        WireMethod.HANDLE_EVENT,
        event("payment_intent.created", "Created", f"evt_tester_{uuid.uuid4().hex[:12]}"),
        capability=Capability.HANDLE_PAYMENT_INTENT_CREATED,
        check=acknowledged,
    )
    captured = event("payment_intent.status_updated", "Captured", f"evt_tester_{uuid.uuid4().hex[:12]}")
    await ctx.call(
        "payment_intent.status_updated (Captured)",
        WireMethod.HANDLE_EVENT,
        captured,
        capability=Capability.HANDLE_PAYMENT_INTENT_STATUS_UPDATED,
        check=acknowledged,
    )
    await ctx.call(
        "The same event delivered again (at least once, §3.22)",
        WireMethod.HANDLE_EVENT,
        captured,
        capability=Capability.HANDLE_PAYMENT_INTENT_STATUS_UPDATED,
        check=acknowledged,
    )


Script = Callable[[FlowContext, dict[str, str]], Awaitable[None]]


@dataclass(frozen=True)
class SimFlow:
    name: str
    params: tuple[SimParam, ...]
    script: Script
    product: str = TESTER_PRODUCT

    @property
    def result_name(self) -> str:
        return f"{self.name} through EPOS Data API"

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "params": [p.to_wire() for p in self.params]}


ORDER_ID = SimParam("orderId", "The EPOS id of an open order")
TABLE_ID = SimParam("tableId", "The EPOS id of a table with open orders")

FLOWS: tuple[SimFlow, ...] = (
    SimFlow("Get Order", (ORDER_ID,), get_order),
    SimFlow("Get Order Bill", (ORDER_ID,), get_order_bill),
    SimFlow("Search Orders", (TABLE_ID,), search_orders),
    SimFlow("Tables and Areas", (), tables_and_areas),
    SimFlow("Lock Conflict", (SimParam("orderId", "The EPOS id of an open order that can be locked"),), lock_conflict),
    SimFlow(
        "Pay at Table",
        (
            SimParam("tableId", "The EPOS id of a table with a payable order"),
            SimParam("parts", "How many payments settle the order", required=False, type="integer", default="2"),
            SimParam("tipPercent", "The tip on each payment, in percent", required=False, type="integer", default="10"),
        ),
        pay_at_table,
        product="PayAtTable",
    ),
    SimFlow(
        "Bookings",
        (
            SimParam("tableId", "The table to book (empty: the first that fits)", required=False),
            SimParam("covers", "How many guests", required=False, type="integer", default="2"),
        ),
        bookings,
        product="Bookings",
    ),
    SimFlow(
        "Payment Intent Events",
        (SimParam("paymentIntentId", "The payment intent the events are about (empty: a new one)", required=False),),
        payment_intent_events,
    ),
)


# --- the REST endpoints ----------------------------------------------------------------------------------------------


class TesterToolSimulator:
    """The tester tool's three endpoints and its running flows, over one gateway simulator."""

    def __init__(
        self,
        gateway: GatewaySimulator,
        registered: Callable[[], list[dict[str, Any]]],
        *,
        products: asyncio.Lock | None = None,
        step_pause: float = 0.0,
        step_timeout: float = 10.0,
        now: Now = _now,
        flows: tuple[SimFlow, ...] = FLOWS,
    ) -> None:
        self._gateway = gateway
        self._registered = registered
        self._products = products or asyncio.Lock()
        self.step_pause = step_pause
        self.step_timeout = step_timeout
        self._now = now
        self.flows = {flow.name: flow for flow in flows}
        self.records: dict[str, FlowRecord] = {}
        """Every flow started, by id (tests read them)."""
        self.refusing: int | None = None
        """When set (401, 403, 404), every endpoint answers it: the account has no access."""
        self._tasks = TaskSet("tester flow", logger=log)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(BASE, self._list),
            web.post(BASE, self._start),
            web.get(BASE + "/{flow_id}", self._result),
        ]

    def refuse(self, status: int | None) -> None:
        """Answer every tester call with ``status`` (``None``: serve again)."""
        self.refusing = status

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def stop(self) -> None:
        await self._tasks.stop()

    def registered_capabilities(self) -> frozenset[Capability]:
        names = (canonical_capability(str(entry.get("name"))) for entry in self._registered())
        return frozenset(name for name in names if name is not None)

    async def wait_finished(self, flow_id: str, timeout: float = 30) -> FlowRecord:  # noqa: ASYNC109 - a test's bound
        record = self.records[flow_id]
        async with asyncio.timeout(timeout):
            await record.done.wait()
        return record

    # --- handlers ---------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self.refusing is None:
            return None
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
        title = titles.get(self.refusing, "Refused")
        return problem_response(
            request.path, self.refusing, title, "The EPOS tester tool is not enabled for this account."
        )

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        return web.json_response([flow.to_wire() for flow in self.flows.values()])

    async def _start(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        body = request.get(JSON_BODY)
        if not isinstance(body, dict) or not isinstance(body.get("flow"), str):
            return problem_response(request.path, 400, "Bad Request", "The body must be {flow, params?}.")
        flow = self.flows.get(body["flow"])
        if flow is None:
            offered = ", ".join(self.flows)
            return problem_response(
                request.path, 400, "Bad Request", f"Unknown flow {body['flow']!r}; flows: {offered}"
            )
        raw = body.get("params") or {}
        if not isinstance(raw, dict):
            return problem_response(request.path, 400, "Bad Request", "params must be an object.")
        values, problems = _values(flow, raw)
        if problems:
            return problem_response(
                request.path,
                400,
                "Bad Request",
                "; ".join(problems.values()),
                field_errors={k: [v] for k, v in problems.items()},
            )
        record = FlowRecord(str(uuid.uuid4()), flow.result_name, self._now(), values)
        self.records[record.id] = record
        for old in list(self.records)[:-KEEP_RECORDS]:  # a simulator left running all day stays small
            if self.records[old].done.is_set():
                del self.records[old]
        self._tasks.spawn(self._play(flow, record), name=f"tester-{flow.name}")
        return web.json_response(record.id)  # a bare JSON string (§5.7)

    async def _result(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        record = self.records.get(request.match_info["flow_id"])
        if record is None:
            return problem_response(request.path, 404, "Not Found", "No flow with this id.")
        return web.json_response(record.to_wire())

    async def _play(self, flow: SimFlow, record: FlowRecord) -> None:
        context = FlowContext(
            record=record,
            gateway=self._gateway,
            registered=self.registered_capabilities,
            product=flow.product,
            step_pause=self.step_pause,
            step_timeout=self.step_timeout,
            now=self._now,
        )
        status = "SUCCESS"
        try:
            async with self._products:
                await flow.script(context, dict(record.params))
        except FlowStopped as stopped:
            status = stopped.status
        except Exception as exc:  # a simulator bug: reported in the flow, never a silent hang
            log.exception("the tester flow %r failed inside the simulator", flow.name)
            context.note("Simulator error", f"The simulator failed: {type(exc).__name__}: {exc}")
            record.steps[-1].status = "FAILURE"
            status = "FAILURE"
        record.status = status
        record.finished_at = self._now()
        record.done.set()
        log.info("tester flow %s (%s): %s", flow.name, record.id, status)


def _values(flow: SimFlow, raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    values: dict[str, str] = {}
    problems: dict[str, str] = {}
    for param in flow.params:
        given = raw.get(param.name)
        text = "" if given is None else str(given).strip()
        if isinstance(given, bool):
            text = "true" if given else "false"
        if not text:
            if param.required:
                problems[param.name] = f"The parameter {param.name} is required."
            elif param.default is not None:
                values[param.name] = param.default
            continue
        if param.type == "integer":
            try:
                number = int(text)
            except ValueError:
                problems[param.name] = f"The parameter {param.name} must be an integer."
                continue
            if not 0 <= number <= 100:
                problems[param.name] = f"The parameter {param.name} must be between 0 and 100."
                continue
        values[param.name] = text
    return values, problems
