"""Capability names, legacy aliases and wire methods: the one place these facts live.

Contract §2.1: wire method = name + ``V1``; both ``HandleEvent:*`` names map to
``HandleEventV1``; legacy aliases are accepted by Dojo but we register the wire-aligned names.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    CREATE_ORDER = "CreateOrder"
    GET_ORDER_BY_ID = "GetOrderById"
    CANCEL_ORDER_BY_ID = "CancelOrderById"
    SEARCH_ORDERS = "SearchOrders"
    RECORD_ORDER_PAYMENT_BY_ID = "RecordOrderPaymentById"
    GET_ORDER_BILL_BY_ID = "GetOrderBillById"
    CREATE_ORDER_LOCK = "CreateOrderLock"
    DELETE_ORDER_LOCK = "DeleteOrderLock"
    EXTEND_ORDER_LOCK = "ExtendOrderLock"
    CREATE_PARTY = "CreateParty"
    GET_PARTY_BY_ID = "GetPartyById"
    UPDATE_PARTY = "UpdateParty"
    DELETE_PARTY_BY_ID = "DeletePartyById"
    SEARCH_PARTIES = "SearchParties"
    CREATE_RESERVATION = "CreateReservation"
    GET_RESERVATION_BY_ID = "GetReservationById"
    UPDATE_RESERVATION = "UpdateReservation"
    DELETE_RESERVATION_BY_ID = "DeleteReservationById"
    SEARCH_RESERVATIONS = "SearchReservations"
    SEARCH_TABLES = "SearchTables"
    LIST_AREAS = "ListAreas"
    HANDLE_PAYMENT_INTENT_CREATED = "HandleEvent:payment_intent.created"
    HANDLE_PAYMENT_INTENT_STATUS_UPDATED = "HandleEvent:payment_intent.status_updated"


CAPABILITY_VERSION = "v1"
"""Registration sends ``version: "v1"`` (guide; contract §6 A2)."""

LEGACY_ALIASES: dict[str, Capability] = {
    "GetOrderBill": Capability.GET_ORDER_BILL_BY_ID,
    "RecordOrderPayment": Capability.RECORD_ORDER_PAYMENT_BY_ID,
    "UpdatePartyById": Capability.UPDATE_PARTY,
    "UpdateReservationById": Capability.UPDATE_RESERVATION,
}

NAMES_WITHOUT_WIRE_CONTRACT = frozenset({"AddOrderItems", "CalculateOrder", "SubmitCalculatedOrder", "SearchMenus"})
"""Named by the guide but with no wire contract yet: never registered."""


class WireMethod(StrEnum):
    SEARCH_ORDERS = "SearchOrdersV1"
    GET_ORDER_BY_ID = "GetOrderByIdV1"
    CANCEL_ORDER_BY_ID = "CancelOrderByIdV1"
    CREATE_ORDER = "CreateOrderV1"
    CREATE_ORDER_LOCK = "CreateOrderLockV1"
    DELETE_ORDER_LOCK = "DeleteOrderLockV1"
    EXTEND_ORDER_LOCK = "ExtendOrderLockV1"
    GET_ORDER_BILL_BY_ID = "GetOrderBillByIdV1"
    RECORD_ORDER_PAYMENT_BY_ID = "RecordOrderPaymentByIdV1"
    LIST_AREAS = "ListAreasV1"
    SEARCH_TABLES = "SearchTablesV1"
    CREATE_PARTY = "CreatePartyV1"
    GET_PARTY_BY_ID = "GetPartyByIdV1"
    UPDATE_PARTY = "UpdatePartyV1"
    DELETE_PARTY_BY_ID = "DeletePartyByIdV1"
    SEARCH_PARTIES = "SearchPartiesV1"
    CREATE_RESERVATION = "CreateReservationV1"
    GET_RESERVATION_BY_ID = "GetReservationByIdV1"
    UPDATE_RESERVATION = "UpdateReservationV1"
    DELETE_RESERVATION_BY_ID = "DeleteReservationByIdV1"
    SEARCH_RESERVATIONS = "SearchReservationsV1"
    HANDLE_EVENT = "HandleEventV1"


def wire_method_of(capability: Capability) -> WireMethod:
    if capability.value.startswith("HandleEvent:"):
        return WireMethod.HANDLE_EVENT
    return WireMethod(capability.value + "V1")


def capabilities_of(method: WireMethod) -> frozenset[Capability]:
    """The capabilities whose registration routes ``method`` to us."""
    return _CAPABILITIES_OF[method]


_CAPABILITIES_OF: dict[WireMethod, frozenset[Capability]] = {
    method: frozenset(c for c in Capability if wire_method_of(c) is method) for method in WireMethod
}
"""Worked out once: the dispatcher asks for every request (it walked every capability each time)."""


def canonical_capability(name: str) -> Capability | None:
    """Read a name Dojo reports (maybe a legacy alias) as our capability; ``None`` if unknown."""
    if name in LEGACY_ALIASES:
        return LEGACY_ALIASES[name]
    try:
        return Capability(name)
    except ValueError:
        return None


def handled_event_type(capability: Capability) -> str | None:
    """``payment_intent.created`` for ``HandleEvent:payment_intent.created``, else ``None``."""
    prefix = "HandleEvent:"
    return capability.value[len(prefix) :] if capability.value.startswith(prefix) else None
