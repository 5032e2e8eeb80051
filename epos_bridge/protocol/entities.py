"""EPOS Data entities exactly as the WebSocket contract names them (contract §4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from epos_bridge.protocol.base import Int64, UtcDateTime, WireEnum, WireModel

# --- money ------------------------------------------------------------------------------


class Money(WireModel):
    """Integer minor units plus ISO 4217 code (100 = 1.00)."""

    value: Int64
    currency_code: Annotated[str, Field(min_length=1, max_length=10)]


# --- orders -----------------------------------------------------------------------------


class OrderStatus(WireEnum):
    NEW = "New"
    SUBMITTED = "Submitted"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    PREPARING = "Preparing"
    PREPARED = "Prepared"
    READY = "Ready"
    FINALIZED = "Finalized"
    CANCELED = "Canceled"
    FAILED = "Failed"


CLOSED_ORDER_STATUSES = frozenset({OrderStatus.FINALIZED, OrderStatus.CANCELED})
"""Orders a search leaves out by default (contract §3.1 (rec))."""


class OrderType(WireEnum):
    DINE_IN = "DineIn"
    COLLECTION = "Collection"


class SearchDineInDetails(WireModel):
    """The ids a dine-in order carries; a search matches on them (contract §3.1)."""

    table_id: str | None = None
    waiter_id: str | None = None
    party_id: str | None = None
    reservation_id: str | None = None


class DineInDetails(SearchDineInDetails):
    """An order's dine-in ids plus when it will be ready."""

    ready_at: UtcDateTime | None = None


class CollectionDetails(WireModel):
    asap: bool | None = None
    collect_at: UtcDateTime | None = None


class OrderDetails(WireModel):
    order_type: OrderType
    dine_in: DineInDetails | None = None
    collection: CollectionDetails | None = None

    @model_validator(mode="after")
    def _one_branch_present(self) -> OrderDetails:
        # Schema: anyOf [required dineIn, required collection].
        if self.dine_in is None and self.collection is None:
            raise ValueError("details needs dineIn or collection")
        return self


class Modifier(WireModel):
    name: str
    plu: str
    quantity: Int64
    amount_per_modifier: Money


class OrderSubItem(WireModel):
    name: str
    plu: str
    quantity: Int64
    amount_per_item: Money
    note: str | None = None
    modifiers: list[Modifier] | None = None


class OrderItem(WireModel):
    name: str
    plu: str
    quantity: Int64
    amount_per_item: Money
    note: str | None = None
    sub_items: list[OrderSubItem] | None = None
    modifiers: list[Modifier] | None = None


class Discount(WireModel):
    name: str
    amount_total: Money
    affected_plu: str | None = None
    discount_reference: str | None = None
    code: str | None = None
    amount_percentage: Int64 | None = None


class TaxLine(WireModel):
    amount_total: Money
    id: Annotated[str, Field(max_length=60)] | None = None
    name: Annotated[str, Field(max_length=100)] | None = None
    affected_plu: str | None = None
    amount_percentage: Int64 | None = None


class Payment(WireModel):
    paid_amount: Money
    payment_intent_id: str | None = None
    tips_amount: Money | None = None


class Customer(WireModel):
    id: str | None = None
    email_address: Annotated[str, Field(max_length=254)] | None = None
    phone_number: Annotated[str, Field(max_length=50)] | None = None
    name: str | None = None


class OrderFields(WireModel):
    """What an ``Order`` shares with ``CreateOrderRequest``, with the same names and flags."""

    details: OrderDetails
    note: str | None = None
    customer: Customer | None = None
    discounts: list[Discount] | None = None
    tax_lines: list[TaxLine] | None = None
    service_charge_amount: Money | None = None
    reference: str | None = None
    display_name: str | None = None


class Order(OrderFields):
    status: OrderStatus = OrderStatus.NEW
    id: str | None = None
    items: list[OrderItem] | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    total_amount: Money | None = None
    payments: list[Payment] | None = None
    payable: bool | None = None
    paid_amount: Money | None = None
    tips_amount: Money | None = None


# --- bills ------------------------------------------------------------------------------


class LineType(WireEnum):
    IMAGE = "Image"
    LOGO = "Logo"
    MERCHANT_ADDRESS = "MerchantAddress"
    MERCHANT_EMAIL_ADDRESS = "MerchantEmailAddress"
    MERCHANT_NAME = "MerchantName"
    MERCHANT_PHONE_NUMBER = "MerchantPhoneNumber"
    TEXT = "Text"
    URL = "URL"
    HORIZONTAL_LINE = "HorizontalLine"
    TAX_NUMBER = "TaxNumber"


class Align(WireEnum):
    CENTER = "Center"
    LEFT = "Left"
    RIGHT = "Right"


class Size(WireEnum):
    BODY = "Body"
    HEADER1 = "Header1"
    HEADER2 = "Header2"


class Image(WireModel):
    svg_image: str
    align: Align | None = None


class Logo(WireModel):
    svg_image: str


class MerchantAddress(WireModel):
    address_lines: list[str]
    postcode: str


class MerchantEmailAddress(WireModel):
    email_address: str


class MerchantName(WireModel):
    name: str


class MerchantPhoneNumber(WireModel):
    phone_number: str


class Text(WireModel):
    value: str
    size: Size
    align: Align | None = None
    bold: bool | None = None  # contract §6 C11: send `bold`, not `emphasisBold`


class Url(WireModel):
    url: str
    description: str | None = None
    # contract §6 B4: the WebSocket spelling, not REST's showQr/showUrl.
    show_qr: bool | None = Field(default=None, alias="showQR")
    show_url: bool | None = Field(default=None, alias="showURL")


class HorizontalLineStyle(WireEnum):
    SINGLE = "Single"
    DOUBLE = "Double"


class HorizontalLine(WireModel):
    line: HorizontalLineStyle | None = None


class TaxNumber(WireModel):
    name: str
    number: str


class BillLine(WireModel):
    """One printed line: ``lineType`` plus the one payload that matches it."""

    line_type: LineType
    image: Image | None = None
    logo: Logo | None = None
    merchant_address: MerchantAddress | None = None
    merchant_email_address: MerchantEmailAddress | None = None
    merchant_name: MerchantName | None = None
    merchant_phone_number: MerchantPhoneNumber | None = None
    text: Text | None = None
    url: Url | None = None
    horizontal_line: HorizontalLine | None = None
    tax_number: TaxNumber | None = None

    @model_validator(mode="after")
    def _payload_matches_type(self) -> BillLine:
        payload_field = _PAYLOAD_FIELD_BY_LINE_TYPE[self.line_type]
        if getattr(self, payload_field) is None:
            raise ValueError(f"a {self.line_type.value} line needs its {payload_field} payload")
        return self


_PAYLOAD_FIELD_BY_LINE_TYPE = {
    LineType.IMAGE: "image",
    LineType.LOGO: "logo",
    LineType.MERCHANT_ADDRESS: "merchant_address",
    LineType.MERCHANT_EMAIL_ADDRESS: "merchant_email_address",
    LineType.MERCHANT_NAME: "merchant_name",
    LineType.MERCHANT_PHONE_NUMBER: "merchant_phone_number",
    LineType.TEXT: "text",
    LineType.URL: "url",
    LineType.HORIZONTAL_LINE: "horizontal_line",
    LineType.TAX_NUMBER: "tax_number",
}


class BillSection(WireModel):
    lines: list[BillLine]


class OrderBill(WireModel):
    header: BillSection
    order: Order
    footer: BillSection


# --- parties, reservations, tables, areas -----------------------------------------------


class PartyDeposit(WireModel):
    total_amount: Money
    payment_intent_ids: list[str]
    description: str | None = None


class PartyFields(WireModel):
    """What a ``Party`` shares with ``CreatePartyRequest`` and ``UpdatePartyRequest``."""

    start_time: UtcDateTime
    # contract §6 C1: the schema's minLength has no effect on an array in the requests; we require
    # one table ourselves because a Party must always carry at least one (Party.tableIds minItems 1).
    table_ids: Annotated[list[str], Field(min_length=1)]
    name: str | None = None
    covers: Int64 | None = None
    expected_end_time: UtcDateTime | None = None
    host_notes: str | None = None
    guest_requests: str | None = None
    deposit: PartyDeposit | None = None


class Party(PartyFields):
    id: str
    status: Annotated[str, Field(min_length=1)]
    end_time: UtcDateTime | None = None
    reservation_id: str | None = None


class ReservationFields(WireModel):
    """What a ``Reservation`` shares with ``CreateReservationRequest`` and ``UpdateReservationRequest``
    (``tableIds`` aside: the requests require a table, a stored reservation need not show one)."""

    name: str
    covers: Int64
    start_time: UtcDateTime
    end_time: UtcDateTime
    host_notes: str | None = None
    guest_requests: str | None = None


class Reservation(ReservationFields):
    id: str
    table_ids: list[str]


class Table(WireModel):
    id: str
    name: str
    max_covers: Int64 | None = None
    area_id: str | None = None
    waiter_ids: list[str] | None = None


class Area(WireModel):
    id: str
    name: str
    waiter_ids: list[str] | None = None


# --- events from Dojo -------------------------------------------------------------------


class PaymentIntentStatus(WireEnum):
    CREATED = "Created"
    AUTHORIZED = "Authorized"
    CAPTURED = "Captured"
    REVERSED = "Reversed"
    REFUNDED = "Refunded"
    CANCELED = "Canceled"


NON_COUNTING_INTENT_STATUSES = frozenset(
    {PaymentIntentStatus.REVERSED, PaymentIntentStatus.REFUNDED, PaymentIntentStatus.CANCELED}
)
"""A payment whose intent reached one of these no longer counts towards ``paidAmount``."""


class CaptureMode(WireEnum):
    AUTO = "Auto"
    MANUAL = "Manual"


class EventType(WireEnum):
    PAYMENT_INTENT_CREATED = "payment_intent.created"
    PAYMENT_INTENT_STATUS_UPDATED = "payment_intent.status_updated"


class PaymentIntentEvent(WireModel):
    payment_intent_id: str
    payment_status: PaymentIntentStatus
    capture_mode: CaptureMode
