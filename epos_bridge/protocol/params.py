"""The ``params`` of each wire method and the paged results (contract §3).

Method fields sit beside ``headers`` inside ``params`` (contract §1.3). ``headers`` is required
by the schema, but a missing one is tolerated *(rec)*.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from epos_bridge.protocol.base import Int64, UtcDateTime, WireModel
from epos_bridge.protocol.entities import (
    Area,
    Money,
    Order,
    OrderFields,
    OrderItem,
    Party,
    PartyFields,
    Payment,
    Reservation,
    ReservationFields,
    SearchDineInDetails,
    Table,
)

MAX_PAGE_SIZE = 100


class RequestHeaders(WireModel):
    """Who is asking: logged, shown in the lock and payment views, never trusted for access."""

    waiter_id: str | None = None
    dojo_requesting_product: str | None = None
    device_id: str | None = None
    device_type: str | None = None


class WithHeaders(WireModel):
    headers: RequestHeaders = Field(default_factory=RequestHeaders)


class Cursor(WireModel):
    limit: Int64 | None = None
    before: str | None = None
    after: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> Cursor:
        if self.before is not None and self.after is not None:
            raise ValueError("cursor.before and cursor.after are mutually exclusive")
        if self.limit is not None and self.limit > MAX_PAGE_SIZE:
            raise ValueError(f"cursor.limit must be at most {MAX_PAGE_SIZE}")
        return self


class SearchParams(WithHeaders):
    cursor: Cursor | None = None


# --- orders -----------------------------------------------------------------------------


class SearchOrdersParams(SearchParams):
    dine_in: SearchDineInDetails | None = None
    payable_only: bool | None = None


class OrderIdParams(WithHeaders):
    order_id: str


class CreateOrderParams(WithHeaders, OrderFields):
    items: list[OrderItem]
    total_amount: Money
    dojo_order_id: str
    payments: list[Payment]


class CreateOrderLockParams(WithHeaders):
    order_id: str
    lock_id: str
    expiry: UtcDateTime


class ExtendOrderLockParams(CreateOrderLockParams):
    """Same fields as CreateOrderLock; ``expiry`` is the new expiry."""


class DeleteOrderLockParams(WithHeaders):
    order_id: str
    lock_id: str


class RecordOrderPaymentParams(WithHeaders):
    order_id: str
    payment_intent_id: str
    paid_amount: Money
    tips_amount: Money | None = None
    lock_id: str | None = None


# --- tables and areas -------------------------------------------------------------------


class SearchTablesParams(SearchParams):
    area_id: str | None = None
    waiter_id: str | None = None


# --- parties ----------------------------------------------------------------------------


class CreatePartyParams(WithHeaders, PartyFields):
    dojo_party_id: str
    status: str | None = None
    reservation_id: str | None = None
    dojo_reservation_id: str | None = None


class PartyIdParams(WithHeaders):
    party_id: str


class UpdatePartyParams(WithHeaders, PartyFields):
    id: str
    dojo_party_id: str
    status: Annotated[str, Field(min_length=1)]
    end_time: UtcDateTime | None = None


class SearchPartiesParams(SearchParams):
    table_id: str | None = None
    completed_only: bool | None = None


# --- reservations -----------------------------------------------------------------------


class ReservationRequest(WithHeaders, ReservationFields):
    """The fields CreateReservation and UpdateReservation both send."""

    dojo_reservation_id: str
    # contract §6 C1: an empty list is accepted by the schema; the reference POS rejects it
    # with InvalidRequest because a reservation there always holds a table.
    table_ids: Annotated[list[str], Field(min_length=1)]


class CreateReservationParams(ReservationRequest):
    """Exactly the shared fields: Dojo's id, no POS id yet."""


class ReservationIdParams(WithHeaders):
    reservation_id: str


class UpdateReservationParams(ReservationRequest):
    id: str


class SearchReservationsParams(SearchParams):
    table_id: str | None = None
    from_time: UtcDateTime | None = None
    to_time: UtcDateTime | None = None


# --- events -----------------------------------------------------------------------------


class HandleEventParams(WithHeaders):
    """An ``Event`` at the top level of ``params``.

    ``data`` stays a plain object here: the event type is an open string (contract §6 C7) and
    only the payment-intent types have a known payload, parsed by the event service.
    """

    id: str
    account_id: str
    event: str
    data: dict[str, Any]
    created_at: UtcDateTime


# --- results ----------------------------------------------------------------------------


class Page(WireModel):
    before: str | None = None
    after: str | None = None


class PagedOrders(Page):
    data: list[Order]


class PagedParties(Page):
    data: list[Party]


class PagedReservations(Page):
    data: list[Reservation]


class PagedTables(Page):
    data: list[Table]


class EmptyResult(WireModel):
    """``{}``: ExtendOrderLock (contract §6 A4), deletes, HandleEvent."""


AreaList = list[Area]
