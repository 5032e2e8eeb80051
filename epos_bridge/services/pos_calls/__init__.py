"""The 22 POS calls, each written once over any storage: adapters store, services run the flow.

:class:`PosCalls` is the :class:`epos_bridge.ports.PosAdapter` the bridge serves Dojo with. It
runs every call in one transaction of a :class:`epos_bridge.ports.PosStorage` (an SQLite file,
a mapped POS schema, a folder of JSON files, a vendor's own), hands the body the time once the
transaction holds the POS's lock, and leaves every decision to ``domain/``. The bodies live by
family: :mod:`.orders`, :mod:`.locks`, :mod:`.payments`, :mod:`.bookings`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

from epos_bridge.domain import bookings as booking_rules
from epos_bridge.domain import locks as lock_rules
from epos_bridge.domain import records
from epos_bridge.ports import (
    CallContext,
    ChangeSource,
    Clock,
    KeepsTheTillInStep,
    PosAdapter,
    PosStorage,
    SystemClock,
)
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import Area, Order, OrderBill, Party, PaymentIntentEvent, Reservation
from epos_bridge.services.pos_calls import bookings, locks, orders, payments

T = TypeVar("T")


class PosCalls:
    """Implements :class:`epos_bridge.ports.PosAdapter` over a :class:`PosStorage`."""

    def __init__(self, storage: PosStorage, clock: Clock | None = None) -> None:
        self.storage = storage
        self._clock = clock or SystemClock()

    def implemented_capabilities(self) -> frozenset[Capability]:
        return self.storage.implemented_capabilities()

    @property
    def changes(self) -> ChangeSource | None:
        return self.storage.changes

    async def check_writable(self) -> None:
        await self.storage.check_writable()

    async def close(self) -> None:
        await self.storage.close()

    async def sweep_the_till(self) -> int:
        """Expired Dojo locks released on the POS too, and recent reversals applied again, where
        the storage writes them into the POS's own tables; how many locks were released."""
        if isinstance(self.storage, KeepsTheTillInStep):
            return await self.storage.keep_the_till_in_step(self._clock.now())
        return 0

    async def _read(self, ctx: CallContext, body: Callable[..., T]) -> T:
        return await self.storage.read(lambda rows: body(rows, self._clock.now()), ctx.deadline)

    async def _write(self, ctx: CallContext, body: Callable[..., T]) -> T:
        """The time is read inside the transaction, after it holds the POS's write lock: never
        older than the POS's edits. Events the body records reach listeners only if it commits."""
        return await ctx.transaction(self.storage.write, lambda rows: body(rows, self._clock.now()))

    # --- orders ---------------------------------------------------------------------------

    async def search_orders(self, params: wire.SearchOrdersParams, ctx: CallContext) -> wire.PagedOrders:
        return await self._read(ctx, partial(orders.search_orders, params))

    async def get_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        return await self._read(ctx, partial(orders.get_order, params))

    async def get_order_bill(self, params: wire.OrderIdParams, ctx: CallContext) -> OrderBill:
        return await self._read(ctx, partial(orders.get_order_bill, params))

    async def cancel_order(self, params: wire.OrderIdParams, ctx: CallContext) -> Order:
        return await self._write(ctx, partial(orders.cancel_order, params))

    async def create_order(self, params: wire.CreateOrderParams, ctx: CallContext) -> Order:
        return await self._write(ctx, partial(orders.create_order, params))

    async def record_order_payment(self, params: wire.RecordOrderPaymentParams, ctx: CallContext) -> Order:
        return await self._write(ctx, partial(payments.record_order_payment, params, ctx))

    # --- order locks ----------------------------------------------------------------------

    async def create_order_lock(self, params: wire.CreateOrderLockParams, ctx: CallContext) -> Order:
        return await self._write(ctx, partial(locks.change_lock, lock_rules.decide_create, params, ctx))

    async def extend_order_lock(self, params: wire.ExtendOrderLockParams, ctx: CallContext) -> None:
        await self._write(ctx, partial(locks.change_lock, lock_rules.decide_extend, params, ctx))

    async def delete_order_lock(self, params: wire.DeleteOrderLockParams, ctx: CallContext) -> Order:
        return await self._write(ctx, partial(locks.delete_order_lock, params, ctx))

    # --- tables and areas -----------------------------------------------------------------

    async def list_areas(self, params: wire.WithHeaders, ctx: CallContext) -> list[Area]:
        return await self._read(ctx, partial(orders.list_areas, params))

    async def search_tables(self, params: wire.SearchTablesParams, ctx: CallContext) -> wire.PagedTables:
        return await self._read(ctx, partial(orders.search_tables, params))

    # --- parties --------------------------------------------------------------------------

    async def create_party(self, params: wire.CreatePartyParams, ctx: CallContext) -> Party:
        return await self._write(ctx, partial(bookings.create_party, params))

    async def get_party(self, params: wire.PartyIdParams, ctx: CallContext) -> Party:
        return await self._read(ctx, lambda rows, now: bookings.get(records.PARTY, rows.parties, params.party_id))

    async def update_party(self, params: wire.UpdatePartyParams, ctx: CallContext) -> Party:
        party = booking_rules.updated_party(params)  # judged before anything is read
        update = (params.id, params.dojo_party_id, params.table_ids)
        return await self._write(
            ctx, lambda rows, now: bookings.update(records.PARTY, rows.parties, update, party, rows, now)
        )

    async def delete_party(self, params: wire.PartyIdParams, ctx: CallContext) -> None:
        await self._write(ctx, lambda rows, now: bookings.delete(records.PARTY, rows.parties, params.party_id, now))

    async def search_parties(self, params: wire.SearchPartiesParams, ctx: CallContext) -> wire.PagedParties:
        return await self._read(ctx, partial(bookings.search_parties, params))

    # --- reservations ---------------------------------------------------------------------

    async def create_reservation(self, params: wire.CreateReservationParams, ctx: CallContext) -> Reservation:
        reservation = booking_rules.reservation_record(params)  # judged before anything is read
        return await self._write(ctx, partial(bookings.create_reservation, params, reservation))

    async def get_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> Reservation:
        return await self._read(
            ctx, lambda rows, now: bookings.get(records.RESERVATION, rows.reservations, params.reservation_id)
        )

    async def update_reservation(self, params: wire.UpdateReservationParams, ctx: CallContext) -> Reservation:
        reservation = booking_rules.reservation_record(params)  # judged before anything is read
        update = (params.id, params.dojo_reservation_id, params.table_ids)
        return await self._write(
            ctx,
            lambda rows, now: bookings.update(records.RESERVATION, rows.reservations, update, reservation, rows, now),
        )

    async def delete_reservation(self, params: wire.ReservationIdParams, ctx: CallContext) -> None:
        await self._write(
            ctx, lambda rows, now: bookings.delete(records.RESERVATION, rows.reservations, params.reservation_id, now)
        )

    async def search_reservations(
        self, params: wire.SearchReservationsParams, ctx: CallContext
    ) -> wire.PagedReservations:
        return await self._read(ctx, partial(bookings.search_reservations, params))

    # --- events from Dojo -----------------------------------------------------------------

    async def handle_payment_intent_event(
        self, params: wire.HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:
        await self._write(ctx, partial(payments.handle_payment_intent_event, params, event, ctx))


def serve(opened: PosStorage | PosAdapter, clock: Clock | None = None) -> PosAdapter:
    """The adapter the bridge serves for what a factory opened: a storage gets the calls written
    here; a package written before the storage port (its own :class:`PosAdapter`) is served as
    it is."""
    if isinstance(opened, PosStorage):
        return PosCalls(opened, clock)
    return opened
