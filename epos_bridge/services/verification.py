"""Verify this till with Dojo's EPOS tester tool (contract §5.7): list the flows, start them one
after another, follow each until Dojo has a final answer, and keep what came back for the report.

The CLI (``epos-bridge verify``) and the Verify dialog both use :class:`Verification`; it knows the
tester tool and the POS only through the two small ports below, so tests drive it through the real
REST client over ``httpx.MockTransport`` or the simulator, and the real adapter.

What callers may rely on:

* Flows run **one at a time**, in the order given: they change the same POS (orders get locked
  and paid), so running them side by side would make them fail each other.
* A flow is followed by asking for its result about once a second until it is no longer
  ``IN_PROGRESS``; after ``timeout`` seconds it is reported ``TIMED_OUT`` with the steps seen so
  far. Following never abandons a flow at Dojo: it only stops waiting.
* ``on_progress`` hears every result read while a flow runs (live steps), ``on_finished`` each
  flow's final :class:`FlowRun`. A flow that could not be started (bad parameters, Dojo refused)
  is a failed :class:`FlowRun` with ``error`` set; the run goes on with the next flow.
* :class:`TesterToolUnavailable` (not enabled for the key, or not a sandbox key) stops the whole
  run: nothing else could work either.
* Order and table choices are read through the bridge's own POS adapter (whose disk work runs
  off the event loop), never from a cache (a lock answer below is reused for two seconds, so
  one refresh of both kinds of picker asks once).
* The best choice is one a flow can use now: an open order that owes money and that Dojo could
  lock, and a table whose payable orders it could all lock. A till having an order open, or
  another device (a Pay at Table terminal) holding it, is POS knowledge no read shows, so the POS
  is asked the way Dojo asks it: a lock taken and released at once (:meth:`Verification.
  lockable`, under a ``verify-probe-`` lock id, a few seconds' expiry, its events published to
  no one). Only payable orders are asked about, best first, until one (or a table's payable
  orders) can be locked: usually one or two asks, at most :data:`PROBE_LIMIT`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar, runtime_checkable

from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.verification import (
    FLOW_TIMEOUT_S,
    POLL_INTERVAL_S,
    FlowDescription,
    FlowParam,
    FlowResult,
    FlowRun,
    InvalidParams,
    ParamKind,
    TesterToolError,
    TesterToolUnavailable,
    timed_out,
    values_to_send,
)
from epos_bridge.ports import CallContext
from epos_bridge.protocol.entities import LineType, Order, OrderBill, Table
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    Cursor,
    DeleteOrderLockParams,
    OrderIdParams,
    PagedOrders,
    PagedTables,
    RequestHeaders,
    SearchOrdersParams,
    SearchTablesParams,
)
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.notifications import format_money
from epos_bridge.services.paging import Paged, every_page

log = logging.getLogger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]
Now = Callable[[], datetime]

PAGE = 100
MAX_PAGES = 5
"""Pickers list at most 500 orders or tables: a till never has more open at once."""
PROBE_LIMIT = 25
"""At most this many orders are asked whether they can be locked for one picker, best first."""
PROBE_EXPIRY_S = 10.0
"""A probe lock is released at once; if that fails it expires by itself this soon."""
PROBE_REUSE_S = 2.0
"""One refresh asks for order and table choices in turn: an answer this recent is used again."""
PROBE_PREFIX = "verify-probe-"
PROBE_HEADERS = RequestHeaders(dojo_requesting_product="epos-bridge Verify", device_type="till")


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- ports -----------------------------------------------------------------------------------------


class TesterTool(Protocol):
    """Dojo's EPOS tester tool (``dojo_api.tester.EposTesterClient``). Its errors are
    :class:`TesterToolError` (or :class:`TesterToolUnavailable`) carrying a sentence to show."""

    def refusal(self) -> str | None: ...
    async def list_flows(self) -> list[FlowDescription]: ...
    async def start_flow(self, flow: str, params: Mapping[str, str]) -> str: ...
    async def flow_result(self, flow_id: str) -> FlowResult: ...


class PosReader(Protocol):
    """The adapter calls the pickers and the report need (a :class:`epos_bridge.ports.PosAdapter`)."""

    async def search_orders(self, params: SearchOrdersParams, ctx: CallContext) -> PagedOrders: ...
    async def search_tables(self, params: SearchTablesParams, ctx: CallContext) -> PagedTables: ...
    async def get_order_bill(self, params: OrderIdParams, ctx: CallContext) -> OrderBill: ...


@runtime_checkable
class OrderLocks(Protocol):
    """The adapter's lock calls, to ask whether an order can be locked now (a ``PosAdapter``)."""

    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order: ...
    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order: ...


class LockingConnection(Protocol):
    """A POS connection (``services.pos_connection.PosConnection``): its adapter while in use."""

    def using(self) -> AbstractAsyncContextManager[OrderLocks]: ...


class CurrentLocks:
    """:class:`OrderLocks` on whichever POS connection is current when each call starts (the
    Verify dialog outlives a Settings save, as ``CurrentPos`` does for reads)."""

    def __init__(self, current: Callable[[], LockingConnection]) -> None:
        self._current = current

    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order:
        async with self._current().using() as adapter:
            return await adapter.create_order_lock(params, ctx)

    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order:
        async with self._current().using() as adapter:
            return await adapter.delete_order_lock(params, ctx)


# --- following one flow ------------------------------------------------------------------------------


async def follow_flow(
    tool: TesterTool,
    flow: str,
    params: Mapping[str, str],
    *,
    on_progress: Callable[[FlowRun], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    monotonic: Monotonic = time.monotonic,
    now: Now = utc_now,
    poll_interval: float = POLL_INTERVAL_S,
    timeout_s: float = FLOW_TIMEOUT_S,
) -> FlowRun:
    """Start ``flow`` and poll its result until it is final or ``timeout_s`` seconds have passed."""
    sent = dict(params)
    try:
        flow_id = await tool.start_flow(flow, sent)
    except TesterToolUnavailable:
        raise
    except TesterToolError as exc:
        return FlowRun(flow, sent, error=f"Dojo did not start the flow: {exc}")
    started = monotonic()
    last: FlowResult | None = None
    while True:
        try:
            result = await tool.flow_result(flow_id)
        except TesterToolUnavailable:
            raise
        except TesterToolError as exc:
            return FlowRun(flow, sent, result=last, error=f"The flow's result could not be read: {exc}")
        last = result
        if result.finished:
            return FlowRun(flow, sent, result=result)
        if on_progress is not None:
            on_progress(FlowRun(flow, sent, result=result))
        waited = monotonic() - started
        if waited >= timeout_s:
            return FlowRun(flow, sent, result=timed_out(flow_id, result.flow_name or flow, result, waited, now()))
        await sleep(min(poll_interval, max(0.0, timeout_s - waited)))


# --- POS choices for order and table parameters ----------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One entry of a parameter's picker: the id to send and how staff recognise it."""

    value: str
    label: str


def _outstanding(order: Order) -> int:
    total = order.total_amount.value if order.total_amount else 0
    paid = order.paid_amount.value if order.paid_amount else 0
    return total - paid


def _table_of(order: Order) -> str | None:
    return order.details.dine_in.table_id if order.details.dine_in else None


def _payable_now(order: Order) -> bool:
    """An order a Pay at Table flow can settle: payable, money still owed, at a table."""
    return bool(order.payable) and _outstanding(order) > 0 and _table_of(order) is not None


HELD = "held now (open at a till or locked)"
"""How a picker names an order that cannot be locked at the moment."""


def _lock_tier(order_ids: Sequence[str], lockable: Mapping[str, bool]) -> int:
    """0: each can be locked now; 1: not asked about (none refused); 2: one or more held."""
    answers = [lockable.get(order_id) for order_id in order_ids]
    if any(answer is False for answer in answers):
        return 2
    return 0 if answers and all(answers) else 1


def _ranked_orders(orders: Sequence[Order], lockable: Mapping[str, bool]) -> list[Order]:
    """Payable orders at a table first, those a flow can lock now before the rest; else POS order."""
    return sorted(
        (o for o in orders if o.id),
        key=lambda o: (not _payable_now(o), _lock_tier([o.id or ""], lockable)),
    )


def order_choices(orders: Sequence[Order], lockable: Mapping[str, bool] | None = None) -> list[Choice]:
    """Open orders, those a payment flow can use first: ``R-1042 · table T4 · £42.50 to pay``.

    ``lockable`` (order id → whether it could be locked now; orders not asked about are left
    out) puts an order a till has open or another device holds after the ones a flow can use."""
    known = lockable or {}
    choices = []
    for order in _ranked_orders(orders, known):
        assert order.id is not None
        parts = [order.reference or order.id]
        if order.display_name:
            parts.append(order.display_name)
        table = _table_of(order)
        if table:
            parts.append(f"table {table}")
        currency = order.total_amount.currency_code if order.total_amount else ""
        owed = _outstanding(order)
        parts.append(f"{format_money(owed, currency)} to pay" if owed > 0 and currency else "nothing to pay")
        if known.get(order.id) is False:
            parts.append(HELD)
        choices.append(Choice(order.id, " · ".join(parts)))
    return choices


@dataclass(frozen=True)
class _TableSeen:
    table: Table
    open: list[Order]
    payable: list[Order]

    def payable_ids(self) -> list[str]:
        return [o.id for o in self.payable if o.id]


def _ranked_tables(tables: Sequence[Table], orders: Sequence[Order], lockable: Mapping[str, bool]) -> list[_TableSeen]:
    """Tables with orders to settle first, and among them those whose payable orders a flow can
    all lock (a payment flow may pick any of them); most to settle first, as a search finds several."""
    open_at: dict[str, list[Order]] = {}
    for order in orders:
        at = _table_of(order)
        if at:
            open_at.setdefault(at, []).append(order)
    seen = []
    for table in tables:
        at_table = open_at.get(table.id, [])
        seen.append(_TableSeen(table, at_table, [o for o in at_table if _payable_now(o)]))

    def rank(entry: _TableSeen) -> tuple[int, int, int]:
        tier = _lock_tier(entry.payable_ids(), lockable) if entry.payable else 3
        return tier, -len(entry.payable), -len(entry.open)

    return sorted(seen, key=rank)


def table_choices(
    tables: Sequence[Table], orders: Sequence[Order], lockable: Mapping[str, bool] | None = None
) -> list[Choice]:
    """Tables, those with an order to settle first: ``Table 4 (T4) · 2 open orders, 1 to pay``.

    A table where some payable order cannot be locked now (``lockable``) comes after the tables
    whose payable orders a payment flow can lock: it may pick that one."""
    known = lockable or {}
    choices = []
    for entry in _ranked_tables(tables, orders, known):
        table, count = entry.table, len(entry.open)
        if count == 0:
            status = "no open order"
        else:
            status = f"{count} open order{'s' if count != 1 else ''}, {len(entry.payable)} to pay"
            held = sum(1 for order_id in entry.payable_ids() if known.get(order_id) is False)
            if held:
                status += f", {held} {HELD}"
        name = table.name if table.name == table.id else f"{table.name} ({table.id})"
        choices.append(Choice(table.id, f"{name} · {status}"))
    return choices


# --- the verification session --------------------------------------------------------------------------------


class Verification:
    """One installer's verification: the flows Dojo offers and the latest run of each."""

    def __init__(
        self,
        tool: TesterTool,
        pos: PosReader | None = None,
        *,
        locks: OrderLocks | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic = time.monotonic,
        now: Now = utc_now,
        poll_interval: float = POLL_INTERVAL_S,
        timeout: float = FLOW_TIMEOUT_S,
    ) -> None:
        self._tool = tool
        self._pos = pos
        self._locks = locks if locks is not None else pos if isinstance(pos, OrderLocks) else None
        """Where to ask whether an order can be locked (the adapter itself, when it is one)."""
        self._answers: dict[str, tuple[float, bool]] = {}
        """Recent answers (monotonic time, lockable): a refresh asks about orders, then tables."""
        self._sleep = sleep
        self._monotonic = monotonic
        self._now = now
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._progress: Listeners[FlowRun] = Listeners("verification progress")
        self._finished: Listeners[FlowRun] = Listeners("verification result")
        self.available: list[FlowDescription] = []
        """The flows Dojo listed, as last loaded."""
        self.runs: dict[str, FlowRun] = {}
        """The latest run of each flow (by the name it was started with)."""

    def on_progress(self, listener: Callable[[FlowRun], None]) -> None:
        """A flow still running has new steps (called about once a second per flow)."""
        self._progress.add(listener)

    def on_finished(self, listener: Callable[[FlowRun], None]) -> None:
        self._finished.add(listener)

    def refusal(self) -> str | None:
        """Why the tester tool cannot be used with this key, before asking Dojo anything."""
        return self._tool.refusal()

    async def load_flows(self) -> list[FlowDescription]:
        """Ask Dojo which flows it can run. Raises :class:`TesterToolUnavailable` or
        :class:`TesterToolError` (with a sentence to show)."""
        self.available = await self._tool.list_flows()
        return list(self.available)

    # --- parameters --------------------------------------------------------------------------

    async def choices(self, kind: ParamKind) -> list[Choice]:
        """Picker entries for an order or table parameter, read from the POS now (best first:
        one a flow can lock now, asked of the POS in that order until one is found)."""
        if self._pos is None or kind not in (ParamKind.ORDER, ParamKind.TABLE):
            return []
        orders = await self._open_orders()
        if kind is ParamKind.ORDER:
            candidates = [[o.id] for o in _ranked_orders(orders, {}) if o.id and _payable_now(o)]
            return order_choices(orders, await self.lockable(candidates))
        tables = await self._tables()
        candidates = [entry.payable_ids() for entry in _ranked_tables(tables, orders, {}) if entry.payable]
        return table_choices(tables, orders, await self.lockable(candidates))

    async def lockable(self, candidates: Sequence[Sequence[str]]) -> dict[str, bool]:
        """Whether Dojo could lock orders now, asked for each group of ``candidates`` in turn
        (an order, or a table's payable orders) until a group can be locked whole, at most
        :data:`PROBE_LIMIT` orders. Asked the only way the POS tells: a lock taken and released
        at once. Empty when the POS cannot be asked (no lock calls were given)."""
        locks = self._locks
        if locks is None:
            return {}
        now = self._monotonic()
        self._answers = {k: v for k, v in self._answers.items() if now - v[0] < PROBE_REUSE_S}
        found = {order_id: answer for order_id, (_, answer) in self._answers.items()}
        asked = 0
        for group in candidates:
            for order_id in group:
                if order_id in found:
                    continue
                if asked >= PROBE_LIMIT:
                    return found
                asked += 1
                found[order_id] = await self._can_lock(locks, order_id)
                self._answers[order_id] = (self._monotonic(), found[order_id])
            if group and all(found.get(order_id) for order_id in group):
                break
        return found

    async def _can_lock(self, locks: OrderLocks, order_id: str) -> bool:
        lock_id = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
        expiry = self._now() + timedelta(seconds=PROBE_EXPIRY_S)
        try:
            await locks.create_order_lock(
                CreateOrderLockParams(headers=PROBE_HEADERS, order_id=order_id, lock_id=lock_id, expiry=expiry), _ctx()
            )
        except EposFailure as exc:  # Conflict: a till has it open, or another lock holds it
            log.info("verification: order %s is not offered first: %s", order_id, exc)
            return False
        try:
            await locks.delete_order_lock(
                DeleteOrderLockParams(headers=PROBE_HEADERS, order_id=order_id, lock_id=lock_id), _ctx()
            )
        except EposFailure as exc:
            log.warning(
                "verification: the probe lock on order %s was not released (it expires in %.0f s): %s",
                order_id,
                PROBE_EXPIRY_S,
                exc,
            )
        return True

    async def with_pos_defaults(self, flow: FlowDescription, given: Mapping[str, str]) -> dict[str, str]:
        """``given`` plus, for each required order or table parameter left empty (and without a
        default), the POS's best choice now — what the command line does when none is passed."""
        values = {k: v for k, v in given.items() if flow.param(k) is not None}
        for param in flow.params:
            if not _needs_pos_value(param, values):
                continue
            picked = await self.choices(param.kind)
            if picked:
                values[param.name] = picked[0].value
        return values

    async def venue_name(self) -> str | None:
        """The venue as its own bills name it (the merchant line of an open order's bill), or
        ``None`` when the POS has no open order or cannot print a bill."""
        if self._pos is None:
            return None
        try:
            page = await self._pos.search_orders(SearchOrdersParams(cursor=Cursor(limit=1)), _ctx())
            if not page.data or not page.data[0].id:
                return None
            bill = await self._pos.get_order_bill(OrderIdParams(order_id=page.data[0].id), _ctx())
        except EposFailure as exc:
            log.info("the venue's name could not be read from the POS: %s", exc)
            return None
        for line in bill.header.lines:
            if line.line_type is LineType.MERCHANT_NAME and line.merchant_name is not None:
                return line.merchant_name.name
        return None

    # --- running -------------------------------------------------------------------------------

    async def run(self, plan: Sequence[tuple[FlowDescription, Mapping[str, str]]]) -> list[FlowRun]:
        """Run each flow of ``plan`` with its values, one after another; returns every run."""
        runs = []
        for flow, given in plan:
            run = await self.run_one(flow, given)
            runs.append(run)
        return runs

    async def run_one(self, flow: FlowDescription, given: Mapping[str, str]) -> FlowRun:
        try:
            values = values_to_send(flow, given)
        except InvalidParams as invalid:
            run = FlowRun(flow.name, dict(given), error="Not started: " + "; ".join(invalid.problems.values()))
        else:
            log.info("verification: starting the flow %r with %s", flow.name, values or "no parameters")
            run = await follow_flow(
                self._tool,
                flow.name,
                values,
                on_progress=self._progress.emit,
                sleep=self._sleep,
                monotonic=self._monotonic,
                now=self._now,
                poll_interval=self._poll_interval,
                timeout_s=self._timeout,
            )
            log.info("verification: %s → %s", run.name, run.status.value)
        self.runs[flow.name] = run
        self._finished.emit(run)
        return run

    def latest_runs(self) -> list[FlowRun]:
        """The latest run of every flow that ran, in Dojo's order (flows no longer listed last)."""
        order = {f.name: n for n, f in enumerate(self.available)}
        return sorted(self.runs.values(), key=lambda run: order.get(run.flow, len(order)))

    # --- POS reads ---------------------------------------------------------------------------------

    async def _open_orders(self) -> list[Order]:
        return await self._every_page(lambda pos, cursor: pos.search_orders(SearchOrdersParams(cursor=cursor), _ctx()))

    async def _tables(self) -> list[Table]:
        return await self._every_page(lambda pos, cursor: pos.search_tables(SearchTablesParams(cursor=cursor), _ctx()))

    async def _every_page(self, search: Callable[[PosReader, Cursor], Awaitable[Paged[T]]]) -> list[T]:
        pos = self._pos
        assert pos is not None
        return await every_page(lambda cursor: search(pos, cursor), page_size=PAGE, max_pages=MAX_PAGES)


def _needs_pos_value(param: FlowParam, values: Mapping[str, str]) -> bool:
    return (
        param.required
        and param.kind in (ParamKind.ORDER, ParamKind.TABLE)
        and not (values.get(param.name) or "").strip()
        and not (param.default or "").strip()
    )


def _ctx() -> CallContext:
    return CallContext(trace_id=f"verify-{uuid.uuid4().hex[:12]}")
