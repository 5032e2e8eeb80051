"""Which params model each wire method takes (contract §3)."""

from __future__ import annotations

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

PARAMS_MODEL: dict[WireMethod, type[WithHeaders]] = {
    WireMethod.SEARCH_ORDERS: SearchOrdersParams,
    WireMethod.GET_ORDER_BY_ID: OrderIdParams,
    WireMethod.CANCEL_ORDER_BY_ID: OrderIdParams,
    WireMethod.CREATE_ORDER: CreateOrderParams,
    WireMethod.CREATE_ORDER_LOCK: CreateOrderLockParams,
    WireMethod.DELETE_ORDER_LOCK: DeleteOrderLockParams,
    WireMethod.EXTEND_ORDER_LOCK: ExtendOrderLockParams,
    WireMethod.GET_ORDER_BILL_BY_ID: OrderIdParams,
    WireMethod.RECORD_ORDER_PAYMENT_BY_ID: RecordOrderPaymentParams,
    WireMethod.LIST_AREAS: WithHeaders,
    WireMethod.SEARCH_TABLES: SearchTablesParams,
    WireMethod.CREATE_PARTY: CreatePartyParams,
    WireMethod.GET_PARTY_BY_ID: PartyIdParams,
    WireMethod.UPDATE_PARTY: UpdatePartyParams,
    WireMethod.DELETE_PARTY_BY_ID: PartyIdParams,
    WireMethod.SEARCH_PARTIES: SearchPartiesParams,
    WireMethod.CREATE_RESERVATION: CreateReservationParams,
    WireMethod.GET_RESERVATION_BY_ID: ReservationIdParams,
    WireMethod.UPDATE_RESERVATION: UpdateReservationParams,
    WireMethod.DELETE_RESERVATION_BY_ID: ReservationIdParams,
    WireMethod.SEARCH_RESERVATIONS: SearchReservationsParams,
    WireMethod.HANDLE_EVENT: HandleEventParams,
}
