"""An example epos-bridge adapter: a till that keeps its venue in memory.

A vendor writes only storage: :class:`SampleStorage` is an ``epos_bridge.ports.PosStorage``,
and :class:`SampleRows` reads and stores what each call needs. The bridge's own call code
(``epos_bridge.services.pos_calls``) runs every call over it and ``epos_bridge.domain`` decides
every rule, exactly as for the built-in adapters. It implements a subset of the capabilities
(orders, payments, locks, tables and areas) and reports exactly that subset, so the bridge
registers only those with Dojo and never asks for anything else: the rows need only the methods
those calls use (docs/writing-an-adapter.md lists them).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from epos_bridge.domain import orders
from epos_bridge.domain.errors import NotFound, PosUnavailable
from epos_bridge.domain.events import OrderFacts
from epos_bridge.domain.intents import StoredIntentEvent
from epos_bridge.domain.locks import HeldLock, LockChange
from epos_bridge.domain.orders import OrderFilter, PaymentRecord, StoredPayment, summarise_payments
from epos_bridge.domain.pagination import Page, PageRequest, page_in_memory
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import AdapterFactory, ChangeSource, Deadline, LocationKind, PosOrder, PosRows
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

T = TypeVar("T")

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
    """The till's whole state. One ``threading.Lock`` makes every transaction atomic."""

    areas: list[Area] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    orders: dict[int, TillOrder] = field(default_factory=dict)
    ledger: dict[str, RecordedIntent] = field(default_factory=dict)
    """The bridge's record of each Dojo payment, kept apart from the till's orders (which a
    till may delete): a recorded paymentIntentId is never forgotten."""
    registry: dict[str, RegisteredOrder] = field(default_factory=dict)
    """The bridge's record of each order Dojo wrote to (its key and Dojo's last answer)."""
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


class SampleStorage:
    """The ``PosStorage``: runs each call's work in one transaction under the venue's lock.

    A write works on a copy of the orders and puts it in place only when the work returns before
    the deadline: it either commits entirely or changes nothing, as the port requires."""

    changes: ChangeSource | None = None
    """This till keeps no change log: it sends no POS events (a storage that has one returns it)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    def implemented_capabilities(self) -> frozenset[Capability]:
        return CAPABILITIES

    async def check_writable(self) -> None:
        return None  # memory is always writable

    async def close(self) -> None:
        return None

    async def read(self, work: Callable[[PosRows], T], deadline: Deadline | None = None) -> T:
        return await self._run(work, deadline, writes=False)

    async def write(self, work: Callable[[PosRows], T], deadline: Deadline | None = None) -> T:
        return await self._run(work, deadline, writes=True)

    async def _run(self, work: Callable[[PosRows], T], deadline: Deadline | None, *, writes: bool) -> T:
        """Blocking work (here, a thread lock) never runs on the event loop."""

        def transaction() -> T:
            with self.venue.guard:
                _refuse_if_late(deadline)
                state = (self.venue.orders, self.venue.ledger, self.venue.registry)
                working = copy.deepcopy(state) if writes else state
                answer = work(cast(PosRows, SampleRows(self.venue, *working)))
                if writes:
                    _refuse_if_late(deadline)  # the commit point
                    self.venue.orders, self.venue.ledger, self.venue.registry = working
                return answer

        return await asyncio.to_thread(transaction)


def _refuse_if_late(deadline: Deadline | None) -> None:
    if deadline is not None and deadline.passed():
        raise PosUnavailable("the till took longer than the answer allows; nothing was written")


class SampleRows:
    """What the reported calls read and store, inside one transaction (``epos_bridge.ports.PosRows``)."""

    def __init__(
        self,
        venue: Venue,
        till_orders: dict[int, TillOrder],
        ledger: dict[str, RecordedIntent],
        registry: dict[str, RegisteredOrder],
    ) -> None:
        self.venue = venue
        self.orders = till_orders
        self.ledger = ledger
        self.registry = registry

    # orders -----------------------------------------------------------------------------------

    def _till_order(self, key: int) -> TillOrder:
        return self.orders[key]

    def order(self, order_id: str) -> PosOrder:
        key = canonical_int_id(order_id)  # ids are exact strings: "007" is not order 7
        found = self.orders.get(key) if key is not None else None
        if found is None:
            raise NotFound(f"order {order_id!r} does not exist")
        facts = OrderFacts(reference=f"TILL-{found.id}", table_id=found.table_id)
        return PosOrder(
            found.id, order_id, found.status, found.currency, found.total, found.updated_at, found.open_at_till, facts
        )

    def payments(self, order: PosOrder) -> tuple[StoredPayment, ...]:
        return tuple(self._till_order(order.key).payments)

    def answer_order(self, key: int) -> Order:
        order = self._till_order(key)
        summary = summarise_payments(order.status, order.total, order.currency, order.payments)
        total = Money(value=order.total, currency_code=order.currency)
        return Order(
            id=str(order.id),
            status=order.status,
            details=OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails(table_id=order.table_id)),
            items=[OrderItem(name="Meal", plu="MEAL", quantity=1, amount_per_item=total)],
            total_amount=total,
            payments=summary.payments,
            payable=summary.payable,
            paid_amount=summary.paid_amount,
            tips_amount=summary.tips_amount,
            reference=f"TILL-{order.id}",
            updated_at=order.updated_at,
        )

    def search_orders(self, wanted: OrderFilter, page: PageRequest) -> Page[Order]:
        found = {key: order for key, order in self.orders.items() if wanted.matches(order)}
        return page_in_memory(found, page, lambda key, _: self.answer_order(key))

    # locks ------------------------------------------------------------------------------------

    def held_lock(self, order: PosOrder) -> HeldLock | None:
        return self._till_order(order.key).lock

    def store_lock(self, order: PosOrder, change: LockChange) -> None:
        if change.remove:
            self._till_order(order.key).lock = None
        elif change.store is not None:
            self._till_order(order.key).lock = change.store

    # payments ---------------------------------------------------------------------------------

    def recorded_intent(self, payment_intent_id: str) -> RecordedIntent | None:
        return self.ledger.get(payment_intent_id)

    def intent_events(self, payment_intent_id: str, event_id: str | None = None) -> list[StoredIntentEvent]:
        """This till does not take payment-intent events (HandleEvent is not reported), so it
        holds none."""
        return []

    def insert_payment(self, order: PosOrder, payment: PaymentRecord, now: datetime) -> None:
        till_order = self._till_order(order.key)
        till_order.payments.append(payment.payment)
        till_order.updated_at = now
        taken = payment.payment
        if taken.payment_intent_id is not None:
            self.ledger[taken.payment_intent_id] = RecordedIntent(
                str(order.key), taken.paid_value, taken.tips_value, taken.status
            )

    # the bridge's registry of the orders Dojo wrote to ------------------------------------------

    def registered_order(self, order_id: str) -> RegisteredOrder | None:
        return self.registry.get(order_id)

    def register_order(self, order_id: str, key: int, answer: Order, now: datetime) -> None:
        self.registry[order_id] = RegisteredOrder(order_id, key, answer)

    def follow_order(self, registered: RegisteredOrder) -> PosOrder | None:
        return None  # this till never re-keys an order

    # tables and areas -------------------------------------------------------------------------

    def known_tables(self, table_ids: Sequence[str]) -> set[str]:
        return {t.id for t in self.venue.tables}

    def areas(self) -> list[Area]:
        return sorted(self.venue.areas, key=lambda a: (a.name, a.id))

    def search_tables(self, area_id: str | None, waiter_id: str | None, page: PageRequest) -> Page[Table]:
        found: dict[str, Any] = {
            t.id: t
            for t in self.venue.tables
            if area_id in (None, t.area_id) and (waiter_id is None or waiter_id in (t.waiter_ids or []))
        }
        return page_in_memory(found, page, lambda _, table: table)


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

    def open(self, location: Path) -> SampleStorage:
        return SampleStorage(venue_at(location))


factory = SampleFactory()
