"""The hand-written wire models are checked against the published schema, field by field.

Readable hand-written models plus this test replace code generation: if the contract file
changes, a field name, a new property or a required flag that no longer matches fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from epos_bridge.protocol import entities as e
from epos_bridge.protocol import params as p
from epos_bridge.protocol.capabilities import (
    LEGACY_ALIASES,
    NAMES_WITHOUT_WIRE_CONTRACT,
    Capability,
    WireMethod,
    canonical_capability,
    capabilities_of,
    wire_method_of,
)
from epos_bridge.protocol.jsonrpc import EPOSError, EPOSErrorType
from epos_bridge.protocol.methods import PARAMS_MODEL
from tests.helpers.contract import ws_schema

MODEL_TO_DEF: dict[type[BaseModel], str] = {
    e.Money: "Money",
    e.Order: "Order",
    e.OrderDetails: "OrderDetails",
    e.DineInDetails: "DineInDetails",
    e.SearchDineInDetails: "SearchDineInDetails",
    e.CollectionDetails: "CollectionDetails",
    e.OrderItem: "OrderItem",
    e.OrderSubItem: "OrderSubItem",
    e.Modifier: "Modifier",
    e.Discount: "Discount",
    e.TaxLine: "TaxLine",
    e.Payment: "Payment",
    e.Customer: "Customer",
    e.OrderBill: "OrderBill",
    e.BillSection: "BillSection",
    e.BillLine: "BillLine",
    e.Image: "Image",
    e.Logo: "Logo",
    e.MerchantAddress: "MerchantAddress",
    e.MerchantEmailAddress: "MerchantEmailAddress",
    e.MerchantName: "MerchantName",
    e.MerchantPhoneNumber: "MerchantPhoneNumber",
    e.Text: "Text",
    e.Url: "Url",
    e.HorizontalLine: "HorizontalLineType",
    e.TaxNumber: "TaxNumber",
    e.Party: "Party",
    e.PartyDeposit: "PartyDeposit",
    e.Reservation: "Reservation",
    e.Table: "Table",
    e.Area: "Area",
    e.PaymentIntentEvent: "PaymentIntentEvent",
    p.Cursor: "Cursor",
    p.RequestHeaders: "RequestHeaders",
    p.SearchOrdersParams: "SearchOrdersRequest",
    p.OrderIdParams: "OrderId",
    p.CreateOrderParams: "CreateOrderRequest",
    p.CreateOrderLockParams: "CreateOrderLockRequest",
    p.ExtendOrderLockParams: "ExtendOrderLockRequest",
    p.DeleteOrderLockParams: "DeleteOrderLockRequest",
    p.RecordOrderPaymentParams: "RecordOrderPaymentRequest",
    p.SearchTablesParams: "SearchTablesRequest",
    p.CreatePartyParams: "CreatePartyRequest",
    p.PartyIdParams: "PartyId",
    p.UpdatePartyParams: "UpdatePartyRequest",
    p.SearchPartiesParams: "SearchPartiesRequest",
    p.CreateReservationParams: "CreateReservationRequest",
    p.ReservationIdParams: "ReservationId",
    p.UpdateReservationParams: "UpdateReservationRequest",
    p.SearchReservationsParams: "SearchReservationsRequest",
    p.HandleEventParams: "Event",
    p.PagedOrders: "PagedOrdersResponse",
    p.PagedParties: "PagedPartiesResponse",
    p.PagedReservations: "PagedReservationsResponse",
    p.PagedTables: "PagedTablesResponse",
    EPOSError: "EPOSError",
}


def _wire_fields(model: type[BaseModel]) -> dict[str, Any]:
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    fields.pop("headers", None)  # carried by the Headers half of every params allOf
    return fields


def _schema_def(name: str) -> dict[str, Any]:
    definition: dict[str, Any] = ws_schema()["$defs"][name]
    return definition


@pytest.mark.parametrize("model", list(MODEL_TO_DEF), ids=lambda m: m.__name__)
def test_model_has_exactly_the_contract_properties(model: type[BaseModel]) -> None:
    definition = _schema_def(MODEL_TO_DEF[model])
    assert set(_wire_fields(model)) == set(definition["properties"])


@pytest.mark.parametrize("model", list(MODEL_TO_DEF), ids=lambda m: m.__name__)
def test_model_requires_what_the_contract_requires(model: type[BaseModel]) -> None:
    definition = _schema_def(MODEL_TO_DEF[model])
    fields = _wire_fields(model)
    required_by_model = {name for name, info in fields.items() if info.is_required()}
    has_default = {name for name, info in fields.items() if not info.is_required() and info.default is not None}
    schema_required = set(definition.get("required", []))
    assert required_by_model <= schema_required
    # Order.status is required with default "New": the model fills the default.
    assert schema_required <= required_by_model | has_default


def test_every_wire_method_has_a_params_model() -> None:
    assert {m.value for m in PARAMS_MODEL} == set(ws_schema()["methods"])
    assert set(WireMethod) == set(PARAMS_MODEL)


def test_capability_table_matches_registration() -> None:
    registration = ws_schema()["registration"]
    registerable = set(registration["names"]) - set(registration["namesWithoutWireContract"])
    assert {c.value for c in Capability} == registerable
    assert len(Capability) == 23
    assert set(NAMES_WITHOUT_WIRE_CONTRACT) == set(registration["namesWithoutWireContract"])
    assert {k: v.value for k, v in LEGACY_ALIASES.items()} == registration["legacyAliases"]


@pytest.mark.parametrize("method", list(WireMethod), ids=str)
def test_wire_method_maps_to_its_capabilities(method: WireMethod) -> None:
    spec = ws_schema()["methods"][method.value]
    assert {c.value for c in capabilities_of(method)} == set(spec["capability"])
    for capability in capabilities_of(method):
        assert wire_method_of(capability) is method
    if "legacyCapability" in spec:
        assert canonical_capability(spec["legacyCapability"]) in capabilities_of(method)


def test_handle_event_names_share_one_wire_method() -> None:
    assert wire_method_of(Capability.HANDLE_PAYMENT_INTENT_CREATED) is WireMethod.HANDLE_EVENT
    assert wire_method_of(Capability.HANDLE_PAYMENT_INTENT_STATUS_UPDATED) is WireMethod.HANDLE_EVENT
    assert canonical_capability("UpdatePartyById") is Capability.UPDATE_PARTY
    assert canonical_capability("GetOrder") is None


@pytest.mark.parametrize(
    ("enum", "definition"),
    [
        (e.OrderStatus, "OrderStatus"),
        (e.OrderType, "OrderType"),
        (e.LineType, "LineType"),
        (e.Align, "Align"),
        (e.Size, "Size"),
        (e.PaymentIntentStatus, "PaymentIntentStatus"),
        (e.CaptureMode, "CaptureMode"),
        (e.EventType, "EventType"),
        (EPOSErrorType, "EPOSErrorType"),
    ],
)
def test_enums_match_the_contract(enum: type, definition: str) -> None:
    assert {member.value for member in enum} == set(_schema_def(definition)["enum"])  # type: ignore[attr-defined]
