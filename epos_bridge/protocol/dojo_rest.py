"""What the bridge sends to and reads from Dojo's REST API.

Responses are read **leniently** (contract §6 D/E): unknown fields are kept, almost every field
is optional, and open sets (terminal status, notification types, error codes) stay plain
strings so a new value from Dojo never breaks a payment. Request bodies are built by hand from
small typed objects so they carry exactly the camelCase keys the schemas allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from epos_bridge.protocol.capabilities import Capability, canonical_capability


class DojoModel(BaseModel):
    """Base of every response model: camelCase on the wire, extra keys kept, coercion allowed."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# --- money --------------------------------------------------------------------------------


class MoneyLike(Protocol):
    """Anything with integer minor units and a currency code (protocol ``Money`` fits)."""

    @property
    def value(self) -> int: ...

    @property
    def currency_code(self) -> str: ...


class Money(DojoModel):
    value: int
    currency_code: str


def money_to_wire(amount: MoneyLike) -> dict[str, Any]:
    """Dojo's ``Money`` is ``additionalProperties:false`` (§6 E6): exactly these two keys."""
    if isinstance(amount.value, bool) or not isinstance(amount.value, int):
        raise TypeError("amount.value must be an integer number of minor units")
    return {"value": amount.value, "currencyCode": amount.currency_code}


# --- registration -------------------------------------------------------------------------


class CapabilityEntry(DojoModel):
    name: str
    version: str | None = None
    updated_at: datetime | None = None


class WsIntegration(DojoModel):
    capabilities: list[CapabilityEntry] = Field(default_factory=list)
    created_at: datetime | None = None


class RestIntegration(DojoModel):
    url: str | None = None
    capabilities: list[CapabilityEntry] = Field(default_factory=list)
    created_at: datetime | None = None


@dataclass(frozen=True)
class RegistrationReport:
    """How Dojo's registered set compares with what the adapter implements."""

    missing_at_dojo: frozenset[Capability]
    """Implemented here but not routed to us: Dojo will not call these."""
    extra_at_dojo: frozenset[Capability]
    """Registered at Dojo but not implemented: Dojo would call and get errors."""
    matching: frozenset[Capability]
    unknown_at_dojo: frozenset[str] = frozenset()
    """Names Dojo reports that are not capabilities we know (e.g. ``GetOrder`` from §6 A2)."""

    @property
    def in_sync(self) -> bool:
        return not self.missing_at_dojo and not self.extra_at_dojo


class Integrations(DojoModel):
    """``GET /epos/integrations`` (``AllIntegrationsResponse``, §2)."""

    ws_integrations: list[WsIntegration] = Field(default_factory=list)
    rest_integrations: list[RestIntegration] = Field(default_factory=list)
    dojo_managed_integrations: list[dict[str, Any]] = Field(default_factory=list)

    def _ws_names(self) -> list[str]:
        return [entry.name for integration in self.ws_integrations for entry in integration.capabilities]

    @property
    def registered_capabilities(self) -> frozenset[Capability]:
        """Capabilities routed to us over WebSocket; legacy aliases read as their new names (§2.1)."""
        found = (canonical_capability(name) for name in self._ws_names())
        return frozenset(c for c in found if c is not None)

    @property
    def unknown_names(self) -> frozenset[str]:
        return frozenset(name for name in self._ws_names() if canonical_capability(name) is None)

    def compare(self, implemented: Iterable[Capability]) -> RegistrationReport:
        wanted = frozenset(implemented)
        registered = self.registered_capabilities
        return RegistrationReport(
            missing_at_dojo=wanted - registered,
            extra_at_dojo=registered - wanted,
            matching=wanted & registered,
            unknown_at_dojo=self.unknown_names,
        )


# --- POS events ---------------------------------------------------------------------------


class PosEventType(StrEnum):
    ORDER_UPDATED = "OrderUpdated"
    PARTY_UPDATED = "PartyUpdated"
    RESERVATION_UPDATED = "ReservationUpdated"


EVENT_ENTITY_FIELD: dict[PosEventType, str] = {
    PosEventType.ORDER_UPDATED: "orderId",
    PosEventType.PARTY_UPDATED: "partyId",
    PosEventType.RESERVATION_UPDATED: "reservationId",
}
"""Each event type travels with exactly one id field (§5.2, paired strictly)."""


# --- terminals ----------------------------------------------------------------------------


class TerminalStatus(StrEnum):
    AVAILABLE = "Available"
    OFFLINE = "Offline"
    IN_USE = "InUse"


class TerminalProperties(DojoModel):
    tid: str | None = None


class Terminal(DojoModel):
    id: str
    properties: TerminalProperties | None = None
    status: str | None = None
    """An open string in practice; compare with :class:`TerminalStatus` values."""
    updated_at: datetime | None = None

    @property
    def tid(self) -> str | None:
        return self.properties.tid if self.properties else None


# --- payment intents ----------------------------------------------------------------------


class PaymentIntentStatus(StrEnum):
    CREATED = "Created"
    AUTHORIZED = "Authorized"
    CAPTURED = "Captured"
    REVERSED = "Reversed"
    REFUNDED = "Refunded"
    CANCELED = "Canceled"


class PaymentIntent(DojoModel):
    id: str | None = None
    status: str | None = None
    capture_mode: str | None = None
    amount: Money | None = None
    tips_amount: Money | None = None
    total_amount: Money | None = None
    requested_amount: Money | None = None
    refunded_amount: int | None = None
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    order_details: dict[str, Any] | None = None
    payment_details: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Reversal(DojoModel):
    reversal_id: str | None = None
    message: str | None = None
    id: str | None = None

    @property
    def effective_id(self) -> str | None:
        """The schema says ``reversalId``, the example says ``id`` (§6 D): take either."""
        return self.reversal_id or self.id


# --- terminal sessions --------------------------------------------------------------------


class TerminalSessionStatus(StrEnum):
    INITIATE_REQUESTED = "InitiateRequested"
    INITIATED = "Initiated"
    AUTHORIZED = "Authorized"
    CAPTURED = "Captured"
    CANCEL_REQUESTED = "CancelRequested"
    CANCELED = "Canceled"
    SIGNATURE_VERIFICATION_REQUIRED = "SignatureVerificationRequired"
    SIGNATURE_VERIFICATION_ACCEPTED = "SignatureVerificationAccepted"
    SIGNATURE_VERIFICATION_REJECTED = "SignatureVerificationRejected"
    EXPIRED = "Expired"
    DECLINED = "Declined"


FINAL_SESSION_STATUSES = frozenset(
    {
        TerminalSessionStatus.CAPTURED,
        TerminalSessionStatus.CANCELED,
        TerminalSessionStatus.SIGNATURE_VERIFICATION_ACCEPTED,
        TerminalSessionStatus.SIGNATURE_VERIFICATION_REJECTED,
        TerminalSessionStatus.EXPIRED,
        TerminalSessionStatus.DECLINED,
    }
)
"""Polling stops here (§5.5). ``Authorized`` ends a Manual-capture session; the caller decides."""


class NotificationEvent(DojoModel):
    notification_type: str
    created_at: datetime | None = None


class StatusEvent(DojoModel):
    status: str
    created_at: datetime | None = None
    debug_message: str | None = None


class TerminalSession(DojoModel):
    id: str
    terminal_id: str | None = None
    status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expire_at: datetime | None = None
    notification_events: list[NotificationEvent] = Field(default_factory=list)
    status_events: list[StatusEvent] = Field(default_factory=list)
    details: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None
    customer_receipt: Any = None
    merchant_receipt: Any = None
    """The signature example uses these two instead of ``receipt`` (§6 D): accept all three."""
    payment_details: dict[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_SESSION_STATUSES

    @property
    def awaiting_signature(self) -> bool:
        return self.status == TerminalSessionStatus.SIGNATURE_VERIFICATION_REQUIRED

    @property
    def latest_notification(self) -> str | None:
        """What the terminal shows the customer now; the cashier should see it too (§5.5)."""
        return self.notification_events[-1].notification_type if self.notification_events else None


@dataclass(frozen=True)
class SaleDetails:
    """Take a card payment for an existing payment intent."""

    payment_intent_id: str

    def to_wire(self) -> dict[str, Any]:
        return {"sessionType": "Sale", "sale": {"paymentIntentId": self.payment_intent_id}}


@dataclass(frozen=True)
class MatchedRefundDetails:
    """Refund (part of) a captured payment intent; ``amount=None`` refunds it all."""

    payment_intent_id: str
    amount: MoneyLike | None = None

    def to_wire(self) -> dict[str, Any]:
        refund: dict[str, Any] = {"paymentIntentId": self.payment_intent_id}
        if self.amount is not None:
            refund["amount"] = money_to_wire(self.amount)
        return {"sessionType": "MatchedRefund", "matchedRefund": refund}


@dataclass(frozen=True)
class UnlinkedRefundDetails:
    """Refund money to a card with no payment intent behind it."""

    amount: MoneyLike
    cardholder_not_present: bool | None = None

    def to_wire(self) -> dict[str, Any]:
        refund: dict[str, Any] = {"amount": money_to_wire(self.amount)}
        if self.cardholder_not_present is not None:
            refund["cardholderNotPresent"] = self.cardholder_not_present
        return {"sessionType": "UnlinkedRefund", "unlinkedRefund": refund}


SessionDetails = SaleDetails | MatchedRefundDetails | UnlinkedRefundDetails


@dataclass(frozen=True)
class RegistrationState:
    """The bridge's latest registration attempt: what Dojo routes to us compared with what the
    adapter implements, or why it failed. Read by the status window and the diagnostics zip."""

    report: RegistrationReport | None = None
    error: str | None = None
    at: datetime | None = None
    auth_rejected: bool = False
