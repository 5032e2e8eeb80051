"""Order money rules (contract §4.1, §6 C2/C13)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from epos_bridge.domain.errors import Conflict, InvalidRequest
from epos_bridge.protocol.entities import (
    CLOSED_ORDER_STATUSES,
    NON_COUNTING_INTENT_STATUSES,
    Money,
    OrderItem,
    OrderStatus,
    Payment,
)
from epos_bridge.protocol.params import CreateOrderParams

RECORDED = "Recorded"
"""Status of a payment recorded by RecordOrderPaymentById before any intent event arrived."""


@dataclass(frozen=True)
class StoredPayment:
    """A payment row as the POS keeps it: Dojo card payments and other tenders alike."""

    paid_value: int
    tips_value: int | None = None
    payment_intent_id: str | None = None
    status: str = RECORDED

    @property
    def counts(self) -> bool:
        """Reversed, refunded or canceled intents no longer count towards ``paidAmount``."""
        return self.status not in {s.value for s in NON_COUNTING_INTENT_STATUSES}


@dataclass(frozen=True)
class PaymentSummary:
    paid_amount: Money
    tips_amount: Money
    payments: list[Payment]
    payable: bool
    total_value: int

    @property
    def outstanding_value(self) -> int:
        return max(0, self.total_value - self.paid_amount.value)


def summarise_payments(
    status: OrderStatus, total_value: int, currency: str, payments: Iterable[StoredPayment]
) -> PaymentSummary:
    """Wire payments, paid and tips totals, and ``payable``.

    Only counting payments are listed, so that ``paidAmount`` is always the sum of
    ``payments`` for whoever reads the order. Non-Dojo tenders are listed without a
    ``paymentIntentId`` (contract §6 C2). ``payable`` is false once fully paid or closed
    (contract §6 C13).
    """
    counting = [p for p in payments if p.counts]
    paid = sum(p.paid_value for p in counting)
    tips = sum(p.tips_value or 0 for p in counting)
    wire = [
        Payment(
            paid_amount=Money(value=p.paid_value, currency_code=currency),
            payment_intent_id=p.payment_intent_id,
            tips_amount=Money(value=p.tips_value, currency_code=currency) if p.tips_value else None,
        )
        for p in counting
    ]
    payable = is_payable(status, total_value, paid)
    return PaymentSummary(
        paid_amount=Money(value=paid, currency_code=currency),
        tips_amount=Money(value=tips, currency_code=currency),
        payments=wire,
        payable=payable,
        total_value=total_value,
    )


def is_payable(status: OrderStatus, total_value: int, paid_value: int) -> bool:
    return status not in CLOSED_ORDER_STATUSES and status is not OrderStatus.FAILED and paid_value < total_value


def item_line_value(item: OrderItem) -> int:
    """Gross value of one order line: base, modifiers and sub-items, times quantity.

    Modifier and sub-item quantities are per single parent item (contract §4.1, §6 C12).
    """
    per_unit = item.amount_per_item.value
    per_unit += sum(m.quantity * m.amount_per_modifier.value for m in item.modifiers or [])
    for sub in item.sub_items or []:
        sub_unit = sub.amount_per_item.value + sum(
            m.quantity * m.amount_per_modifier.value for m in sub.modifiers or []
        )
        per_unit += sub.quantity * sub_unit
    return item.quantity * per_unit


def check_new_order(params: CreateOrderParams) -> None:
    """Reject an order Dojo sends that cannot be stored faithfully.

    One currency for the whole order, positive quantities and no negative amounts. Totals are
    not re-derived: whether tax is inclusive is the POS's business, so we store Dojo's
    ``totalAmount`` as given.
    """
    currency = params.total_amount.currency_code
    for where, money in _all_money(params):
        if money.currency_code != currency:
            raise InvalidRequest(f"{where}: currency {money.currency_code} differs from the order's {currency}")
        if money.value < 0:
            raise InvalidRequest(f"{where}: amount must not be negative")
    for index, item in enumerate(params.items):
        if item.quantity <= 0:
            raise InvalidRequest(f"items[{index}].quantity must be positive")
    service = params.service_charge_amount.value if params.service_charge_amount else 0
    if service > params.total_amount.value:
        raise InvalidRequest("serviceChargeAmount must already be inside totalAmount")
    already_paid = sum(p.paid_amount.value for p in params.payments)
    if already_paid > params.total_amount.value:
        raise InvalidRequest("payments exceed totalAmount")


def _all_money(params: CreateOrderParams) -> Sequence[tuple[str, Money]]:
    found: list[tuple[str, Money]] = []
    for i, item in enumerate(params.items):
        found.append((f"items[{i}].amountPerItem", item.amount_per_item))
        found += [(f"items[{i}].modifiers[{j}]", m.amount_per_modifier) for j, m in enumerate(item.modifiers or [])]
        for j, sub in enumerate(item.sub_items or []):
            found.append((f"items[{i}].subItems[{j}].amountPerItem", sub.amount_per_item))
            found += [
                (f"items[{i}].subItems[{j}].modifiers[{k}]", m.amount_per_modifier)
                for k, m in enumerate(sub.modifiers or [])
            ]
    found += [(f"discounts[{i}].amountTotal", d.amount_total) for i, d in enumerate(params.discounts or [])]
    found += [(f"taxLines[{i}].amountTotal", t.amount_total) for i, t in enumerate(params.tax_lines or [])]
    for i, payment in enumerate(params.payments):
        found.append((f"payments[{i}].paidAmount", payment.paid_amount))
        if payment.tips_amount is not None:
            found.append((f"payments[{i}].tipsAmount", payment.tips_amount))
    if params.service_charge_amount is not None:
        found.append(("serviceChargeAmount", params.service_charge_amount))
    return found


def check_cancellable(
    order_id: str, status: OrderStatus, paid_value: int, locked: bool, open_at_till: str | None
) -> bool:
    """``False`` when already canceled (a repeat is success); raises ``Conflict`` when refused."""
    if status is OrderStatus.CANCELED:
        return False
    if status is OrderStatus.FINALIZED:
        raise Conflict(f"order {order_id} is Finalized and cannot be canceled")
    if paid_value > 0:
        raise Conflict(f"order {order_id} has payments recorded; refund them on the POS before canceling")
    if locked:
        raise Conflict(f"order {order_id} is locked by Dojo and cannot be canceled")
    if open_at_till:
        raise Conflict(f"order {order_id} is open on till {open_at_till}")
    return True
