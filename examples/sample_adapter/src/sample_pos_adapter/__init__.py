"""An example epos-bridge adapter: a till that keeps its venue in memory.

It implements a subset of the capabilities (orders, payments, locks, tables and areas) and
reports exactly that subset, so the bridge registers only those with Dojo. Every rule comes
from ``epos_bridge.domain``; this module only stores facts and maps them to wire models.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from epos_bridge.domain import locks, orders, payments
from epos_bridge.domain.errors import InvalidRequest, NotFound
from epos_bridge.domain.locks import HeldLock
from epos_bridge.domain.orders import StoredPayment, summarise_payments
from epos_bridge.domain.pagination import page_bounds, page_of, read_cursor
from epos_bridge.ports import AdapterFactory, CallContext, ChangeSource, LocationKind, PosAdapter
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import (
    Area,
    DineInDetails,
    Money,
    Order,
    OrderDetails,
    OrderItem,
    OrderStatus,
    OrderType,
    Table,
)
from epos_bridge.protocol.ids import canonical_int_id
from epos_bridge.protocol.params import PagedOrders, PagedTables

CAPABILITIES = frozenset(
    {
        Capability.GET_ORDER_BY_ID,
        Capability.SEARCH_ORDERS,
        Capability.RECORD_ORDER_PAYMENT_BY_ID,
        Capability.CREATE_ORDER_LOCK,
        Capability.EXTEND_ORDER_LOCK,
        Capability.DELETE_ORDER_LOCK,
        Capability.LIST_AREAS,
        Capability.SEARCH_TABLES,
    }
)


@dataclass
class TillOrder:
    id: int
    table_id: str
    total: int
    currency: str
    status: OrderStatus = OrderStatus.NEW
    open_at_till: str | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    payments: list[StoredPayment] = field(default_factory=list)
    lock: HeldLock | None = None

    # What SearchOrders filters on (epos_bridge.domain.orders.SearchedOrder).
    @property
    def dine_in(self) -> dict[str, object]:
        return {"table_id": self.table_id}

    @property
    def total_value(self) -> int:
        return self.total

    @property
    def paid_value(self) -> int:
        return orders.paid_value(self.payments)


@dataclass
class Venue:
    """The till's whole state. One ``threading.Lock`` makes every read-modify-write atomic."""

    areas: list[Area] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    orders: dict[int, TillOrder] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def add_order(self, table_id: str, total: int, currency: str) -> TillOrder:
        with self.guard:
            order = TillOrder(max(self.orders, default=0) + 1, table_id, total, currency)
            self.orders[order.id] = order
            return order


VENUES: dict[str, Venue] = {}
"""Venues by location, so a till (or a test) and the adapter share one."""


def venue_at(location: Path | str) -> Venue:
    return VENUES.setdefault(str(location), Venue())


class SamplePosAdapter:
    changes: ChangeSource | None = None
    """This till keeps no change log: it sends no POS events (a storage that has one returns it)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    async def check_writable(self) -> None:
        return None  # memory is always writable

    def implemented_capabilities(self) -> frozenset[Capability]:
        return CAPABILITIES

    async def close(self) -> None:
        return None

    def _order(self, wire_id: str) -> TillOrder:
        key = canonical_int_id(wire_id)  # ids are exact strings: "007" is not order 7
        order = self.venue.orders.get(key) if key is not None else None
        if order is None:
            raise NotFound(f"order {wire_id!r} does not exist")
        return order

    def _wire(self, order: TillOrder) -> Order:
        summary = summarise_payments(order.status, order.total, order.currency, order.payments)
        return Order(
            id=str(order.id),
            status=order.status,
            details=OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails(table_id=order.table_id)),
            items=[OrderItem(name="Meal", plu="MEAL", quantity=1, amount_per_item=self._money(order, order.total))],
            total_amount=self._money(order, order.total),
            payments=summary.payments,
            payable=summary.payable,
            paid_amount=summary.paid_amount,
            tips_amount=summary.tips_amount,
            reference=f"TILL-{order.id}",
            updated_at=order.updated_at,
        )

    @staticmethod
    def _money(order: TillOrder, value: int) -> Money:
        return Money(value=value, currency_code=order.currency)

    async def _locked(self, work):  # type: ignore[no-untyped-def]
        """Blocking work (here, a thread lock) never runs on the event loop."""

        def run():  # type: ignore[no-untyped-def]
            with self.venue.guard:
                return work()

        return await asyncio.to_thread(run)

    # orders -----------------------------------------------------------------------------------

    async def get_order(self, params, ctx: CallContext) -> Order:  # type: ignore[no-untyped-def]
        return await self._locked(lambda: self._wire(self._order(params.order_id)))

    async def search_orders(self, params, ctx: CallContext) -> PagedOrders:  # type: ignore[no-untyped-def]
        request = read_cursor(params.cursor, "orders")
        wanted = orders.order_filter(params)

        def work() -> PagedOrders:
            everything = sorted(o.id for o in self.venue.orders.values() if wanted.matches(o))
            page, more_before, more_after = page_of(everything, request)
            bounds = page_bounds("orders", list(page), more_before, more_after)
            data = [self._wire(self.venue.orders[k]) for k in page]
            return PagedOrders(data=data, before=bounds.before, after=bounds.after)

        return await self._locked(work)

    async def record_order_payment(self, params, ctx: CallContext) -> Order:  # type: ignore[no-untyped-def]
        def work() -> Order:
            now = datetime.now(UTC)
            order = self._order(params.order_id)
            recorded = next(
                (
                    payments.RecordedIntent(str(o.id), p.paid_value, p.tips_value)
                    for o in self.venue.orders.values()
                    for p in o.payments
                    if p.payment_intent_id == params.payment_intent_id
                ),
                None,
            )
            facts = payments.PayableOrder(
                str(order.id), order.status, order.currency, order.total, tuple(order.payments), order.open_at_till
            )
            decision = payments.decide_payment(facts, order.lock, params, None, now, recorded=recorded)
            if decision.payment is not None:
                order.payments.append(decision.payment)
                order.updated_at = now
            ctx.record(*decision.events)
            return self._wire(order)

        return await self._locked(work)

    # locks -------------------------------------------------------------------------------------

    def _lockable(self, order: TillOrder) -> locks.LockableOrder:
        return locks.LockableOrder(str(order.id), order.status, order.updated_at, order.open_at_till)

    def _apply(self, order: TillOrder, change: locks.LockChange, ctx: CallContext) -> None:
        if change.remove:
            order.lock = None
        elif change.store is not None:
            order.lock = change.store
        ctx.record(*change.events)

    async def create_order_lock(self, params, ctx: CallContext) -> Order:  # type: ignore[no-untyped-def]
        return await self._change_lock(params, ctx, locks.decide_create)

    async def extend_order_lock(self, params, ctx: CallContext) -> None:  # type: ignore[no-untyped-def]
        await self._change_lock(params, ctx, locks.decide_extend)

    async def _change_lock(self, params, ctx: CallContext, decide) -> Order:  # type: ignore[no-untyped-def]
        """Create and extend share one shape: the rule decides, the till stores what it says."""

        def work() -> Order:
            order = self._order(params.order_id)
            change = decide(
                self._lockable(order), order.lock, params.lock_id, params.expiry, datetime.now(UTC), params.headers
            )
            self._apply(order, change, ctx)
            return self._wire(order)

        return await self._locked(work)

    async def delete_order_lock(self, params, ctx: CallContext) -> Order:  # type: ignore[no-untyped-def]
        def work() -> Order:
            order = self._order(params.order_id)
            self._apply(order, locks.decide_delete(str(order.id), order.lock, params.lock_id, datetime.now(UTC)), ctx)
            return self._wire(order)

        return await self._locked(work)

    # tables and areas ----------------------------------------------------------------------------

    async def list_areas(self, params, ctx: CallContext) -> list[Area]:  # type: ignore[no-untyped-def]
        return sorted(self.venue.areas, key=lambda a: (a.name, a.id))

    async def search_tables(self, params, ctx: CallContext) -> PagedTables:  # type: ignore[no-untyped-def]
        request = read_cursor(params.cursor, "tables", str)
        found = sorted(
            (
                t
                for t in self.venue.tables
                if params.area_id in (None, t.area_id)
                and (params.waiter_id is None or params.waiter_id in (t.waiter_ids or []))
            ),
            key=lambda t: t.id,
        )
        page, more_before, more_after = page_of([t.id for t in found], request)
        bounds = page_bounds("tables", list(page), more_before, more_after)
        by_id = {t.id: t for t in found}
        return PagedTables(data=[by_id[k] for k in page], before=bounds.before, after=bounds.after)

    # not implemented: never called, because they are never registered --------------------------

    async def _unsupported(self, *args: object) -> None:
        raise InvalidRequest("this POS does not support that method")

    cancel_order = create_order = get_order_bill = _unsupported
    create_party = get_party = update_party = delete_party = search_parties = _unsupported
    create_reservation = get_reservation = update_reservation = delete_reservation = _unsupported
    search_reservations = handle_payment_intent_event = _unsupported


@dataclass(frozen=True)
class SampleFactory:
    """What the ``epos_bridge.adapters`` entry point names: an :class:`epos_bridge.ports.AdapterFactory`.

    Everything the bridge needs to know about this kind of storage lives here, so the CLI, the
    Settings dialog and ``doctor`` never need to know this adapter by name.
    """

    description: str = "an in-memory example till (examples/sample_adapter); EPOS_BRIDGE_DB names the venue"
    location: LocationKind = "file"
    mappings: tuple[str, ...] | None = None  # its layout is its own: no mapping file

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        return self

    def init(self, location: Path, *, demo: bool) -> list[str]:
        venue_at(location)
        return [f"{location}: an in-memory example till (nothing is written to disk)"]

    async def problem(self, location: Path) -> str | None:
        return None  # any name is a venue of this example till

    def open(self, location: Path) -> PosAdapter:
        return SamplePosAdapter(venue_at(location))


factory = SampleFactory()
