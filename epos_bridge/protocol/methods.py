"""Each wire method: which params model it takes and which adapter call answers it (contract §3)."""

from __future__ import annotations

from dataclasses import dataclass

from epos_bridge.protocol.capabilities import WireMethod
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    CreateOrderParams,
    CreatePartyParams,
    CreateReservationParams,
    DeleteOrderLockParams,
    ExtendOrderLockParams,
    HandleEventParams,
    OrderIdParams,
    PartyIdParams,
    RecordOrderPaymentParams,
    ReservationIdParams,
    SearchOrdersParams,
    SearchPartiesParams,
    SearchReservationsParams,
    SearchTablesParams,
    UpdatePartyParams,
    UpdateReservationParams,
    WithHeaders,
)


@dataclass(frozen=True)
class MethodSpec:
    """One wire method: the params model it takes and the :class:`~epos_bridge.ports.PosAdapter`
    call that answers it (named, so this module needs no import of the port)."""

    params: type[WithHeaders]
    port_call: str | None
    """The adapter method called with ``(params, ctx)``; ``None`` for HandleEvent (routed by type)."""
    answers_empty: bool = False
    """The contract answers ``{}`` (the call returns nothing): ExtendOrderLock (§6 A4), the deletes."""
    serial_key: tuple[str, str] | None = None
    """For a write: what it is about, as (kind, params field). Retries of one key are served one at
    a time (contract §1.2 (rec): paymentIntentId, an order's lock, dojoOrderId, dojoPartyId,
    dojoReservationId, event id). Reads have none: they never wait for each other."""


METHODS: dict[WireMethod, MethodSpec] = {
    WireMethod.SEARCH_ORDERS: MethodSpec(SearchOrdersParams, "search_orders"),
    WireMethod.GET_ORDER_BY_ID: MethodSpec(OrderIdParams, "get_order"),
    WireMethod.CANCEL_ORDER_BY_ID: MethodSpec(OrderIdParams, "cancel_order", serial_key=("order", "order_id")),
    WireMethod.CREATE_ORDER: MethodSpec(CreateOrderParams, "create_order", serial_key=("dojo-order", "dojo_order_id")),
    WireMethod.CREATE_ORDER_LOCK: MethodSpec(
        CreateOrderLockParams, "create_order_lock", serial_key=("order", "order_id")
    ),
    WireMethod.DELETE_ORDER_LOCK: MethodSpec(
        DeleteOrderLockParams, "delete_order_lock", serial_key=("order", "order_id")
    ),
    WireMethod.EXTEND_ORDER_LOCK: MethodSpec(
        ExtendOrderLockParams, "extend_order_lock", answers_empty=True, serial_key=("order", "order_id")
    ),
    WireMethod.GET_ORDER_BILL_BY_ID: MethodSpec(OrderIdParams, "get_order_bill"),
    WireMethod.RECORD_ORDER_PAYMENT_BY_ID: MethodSpec(
        RecordOrderPaymentParams, "record_order_payment", serial_key=("payment", "payment_intent_id")
    ),
    WireMethod.LIST_AREAS: MethodSpec(WithHeaders, "list_areas"),
    WireMethod.SEARCH_TABLES: MethodSpec(SearchTablesParams, "search_tables"),
    WireMethod.CREATE_PARTY: MethodSpec(CreatePartyParams, "create_party", serial_key=("dojo-party", "dojo_party_id")),
    WireMethod.GET_PARTY_BY_ID: MethodSpec(PartyIdParams, "get_party"),
    WireMethod.UPDATE_PARTY: MethodSpec(UpdatePartyParams, "update_party", serial_key=("party", "id")),
    WireMethod.DELETE_PARTY_BY_ID: MethodSpec(
        PartyIdParams, "delete_party", answers_empty=True, serial_key=("party", "party_id")
    ),
    WireMethod.SEARCH_PARTIES: MethodSpec(SearchPartiesParams, "search_parties"),
    WireMethod.CREATE_RESERVATION: MethodSpec(
        CreateReservationParams, "create_reservation", serial_key=("dojo-reservation", "dojo_reservation_id")
    ),
    WireMethod.GET_RESERVATION_BY_ID: MethodSpec(ReservationIdParams, "get_reservation"),
    WireMethod.UPDATE_RESERVATION: MethodSpec(
        UpdateReservationParams, "update_reservation", serial_key=("reservation", "id")
    ),
    WireMethod.DELETE_RESERVATION_BY_ID: MethodSpec(
        ReservationIdParams,
        "delete_reservation",
        answers_empty=True,
        serial_key=("reservation", "reservation_id"),
    ),
    WireMethod.SEARCH_RESERVATIONS: MethodSpec(SearchReservationsParams, "search_reservations"),
    # HandleEvent has no port call: the dispatcher routes it by event type.
    WireMethod.HANDLE_EVENT: MethodSpec(HandleEventParams, None, serial_key=("event", "id")),
}
"""The one table of wire methods: the dispatcher's routes and every params check come from it."""

PARAMS_MODEL: dict[WireMethod, type[WithHeaders]] = {method: spec.params for method, spec in METHODS.items()}
