"""Order rules: money (contract §4.1, §6 C2/C13), what an order Dojo creates stores (§3.4), and
which orders a search returns (§3.1).

The adapters store and load; what a new order holds, how it is numbered, when it can be paid and
whether a search keeps it are decided here, once, for every adapter.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from epos_bridge.domain.errors import Conflict, InvalidRequest
from epos_bridge.protocol.entities import (
    CLOSED_ORDER_STATUSES,
    NON_COUNTING_INTENT_STATUSES,
    CollectionDetails,
    Customer,
    DineInDetails,
    Discount,
    Money,
    Order,
    OrderDetails,
    OrderItem,
    OrderStatus,
    OrderType,
    Payment,
    TaxLine,
)
from epos_bridge.protocol.params import CreateOrderParams, RequestHeaders, SearchOrdersParams

RECORDED = "Recorded"
"""Status of a payment recorded by RecordOrderPaymentById before any intent event arrived."""

NON_COUNTING_PAYMENT_STATUSES = frozenset(s.value for s in NON_COUNTING_INTENT_STATUSES)
"""Stored payment statuses that no longer count towards ``paidAmount`` (reversed, refunded, canceled)."""

NOT_PAYABLE_STATUSES = CLOSED_ORDER_STATUSES | {OrderStatus.FAILED}
"""Orders that cannot take a payment whatever they owe (contract §6 C13)."""

CARD = "card"
OTHER_TENDER = "other"


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
        return self.status not in NON_COUNTING_PAYMENT_STATUSES


def paid_value(payments: Iterable[StoredPayment]) -> int:
    """``paidAmount`` in minor units: the counting payments, tips excluded (contract §4.1)."""
    return sum(p.paid_value for p in payments if p.counts)


def tender_of(payment_intent_id: str | None) -> str:
    """A Dojo payment carries its paymentIntentId; any other tender (cash, …) is listed without
    one (contract §6 C2)."""
    return CARD if payment_intent_id else OTHER_TENDER


@dataclass(frozen=True)
class PaymentRecord:
    """A payment as the POS keeps it: the money, and when, how and for whom it was taken.

    ``requester`` is ``None`` for a payment that came inside CreateOrder (nobody took it here).
    """

    payment: StoredPayment
    recorded_at: datetime
    tender: str = CARD
    requester: RequestHeaders | None = None

    @classmethod
    def taken(cls, payment: StoredPayment, now: datetime, requester: RequestHeaders | None = None) -> PaymentRecord:
        return cls(payment, now, tender_of(payment.payment_intent_id), requester)


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
    """Whether the order can take a payment now: open and still owing (contract §6 C13).

    The SQLite adapter's ``payableOnly`` search says the same in SQL, built from
    :data:`NOT_PAYABLE_STATUSES` and tested against this function.
    """
    return status not in NOT_PAYABLE_STATUSES and paid_value < total_value


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


# --- what an order holds ----------------------------------------------------------------


@dataclass(frozen=True)
class OrderRecord:
    """An order as the POS stores it: what CreateOrder decided, or what a till rang up.

    Money at order level is in minor units of ``currency``; the lines keep the wire's shape.
    ``reference`` ``None``: number it from its key once stored (:meth:`reference_for`).
    """

    status: OrderStatus
    details: OrderDetails
    currency: str
    total_value: int
    created_at: datetime
    updated_at: datetime
    items: tuple[OrderItem, ...] = ()
    dojo_order_id: str | None = None
    reference: str | None = None
    display_name: str | None = None
    note: str | None = None
    customer: Customer | None = None
    discounts: tuple[Discount, ...] = ()
    tax_lines: tuple[TaxLine, ...] = ()
    service_charge_value: int | None = None
    open_at_till: str | None = None
    payments: tuple[PaymentRecord, ...] = ()

    def reference_for(self, key: int) -> str:
        return self.reference if self.reference is not None else order_reference(self.details.order_type, key)


def order_reference(order_type: OrderType, key: int) -> str:
    """The human-readable reference of an order Dojo creates without one (contract §4.2 (rec):
    always send ``reference``): ``DOJO-0007`` at a table, ``COL-0008`` for collection. Numbered
    by the POS's own key, so it never clashes with another order's."""
    prefix = "DOJO" if order_type is OrderType.DINE_IN else "COL"
    return f"{prefix}-{key:04d}"


def display_reference(reference: str | None, order_id: str | int) -> str:
    """What staff and the terminal see for an order a till made without a reference."""
    return str(reference or f"#{order_id}")


def order_details(order_type: str | None, dine_in: DineInDetails, collection: CollectionDetails) -> OrderDetails:
    """The details as the wire carries them: the branch of the order's type only.

    Contract §6 C3: anything that is not a collection is dine-in, and a till order with no table
    still carries ``dineIn: {}``.
    """
    if order_type == OrderType.COLLECTION.value:
        return OrderDetails(order_type=OrderType.COLLECTION, collection=collection)
    return OrderDetails(order_type=OrderType.DINE_IN, dine_in=dine_in)


def tables_named(params: CreateOrderParams) -> tuple[str, ...]:
    """The tables a new order names, which the POS must have."""
    dine_in = params.details.dine_in
    return (dine_in.table_id,) if dine_in is not None and dine_in.table_id else ()


STORED_AS_SENT = frozenset(
    {
        "items",
        "total_amount",
        "details",
        "note",
        "customer",
        "discounts",
        "tax_lines",
        "service_charge_amount",
        "reference",
        "display_name",
        "payments",
    }
)
"""What CreateOrder sends that the stored order must read back unchanged (contract §3.4: the
result is the order "as the EPOS stored it"). ``dojoOrderId`` is the bridge's own record."""


def check_stored_as_sent(params: CreateOrderParams, stored: Order) -> None:
    """Refuse an order the POS did not store exactly as Dojo sent it: a field its schema or
    mapping has nowhere for (a service charge, a modifier's quantity, a tax line's name, the
    order type) would otherwise be dropped in silence, and the till would bill something else.
    Checked on the order as read back inside the same transaction, so the refusal
    (``InvalidRequest`` naming the field) stores nothing."""
    sent = params.model_dump(mode="json", by_alias=True, exclude_none=True, include=set(STORED_AS_SENT))
    kept = stored.model_dump(mode="json", by_alias=True, exclude_none=True, include=set(STORED_AS_SENT))
    difference = _first_difference(sent, kept, "")
    if difference is not None:
        raise InvalidRequest(f"{difference}: this POS does not store it as sent, so the order was not created")


def _first_difference(sent: object, kept: object, path: str) -> str | None:
    """Where ``kept`` does not hold what ``sent`` says. An empty list or object, and a zero
    amount (a tip of 0, which every storage reads back as none), count as absent. A field not
    stored at all is named before any difference it causes (a service charge the POS has no
    column for makes its computed total differ too)."""
    if isinstance(sent, dict):
        kept_fields = kept if isinstance(kept, dict) else {}
        present = {name: value for name, value in sent.items() if value not in ([], {})}
        for name, value in present.items():
            if name not in kept_fields and not _zero_money(value):
                return f"{path}.{name}: sent but not stored" if path else f"{name}: sent but not stored"
        for name, value in present.items():
            if name not in kept_fields:
                continue
            where = f"{path}.{name}" if path else name
            found = _first_difference(value, kept_fields[name], where)
            if found is not None:
                return found
        return None
    if isinstance(sent, list):
        kept_items = kept if isinstance(kept, list) else []
        if len(sent) != len(kept_items):
            return f"{path}: {len(sent)} sent, {len(kept_items)} stored"
        for index, (one, other) in enumerate(zip(sent, kept_items, strict=True)):
            found = _first_difference(one, other, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if sent == kept else f"{path}: sent {sent!r}, stored {kept!r}"


def _zero_money(value: object) -> bool:
    return isinstance(value, dict) and value.keys() == {"value", "currencyCode"} and value["value"] == 0


def decide_new_order(params: CreateOrderParams, known_tables: Container[str], now: datetime) -> OrderRecord:
    """What to store for an order Dojo creates (contract §3.4), once no order holds its
    ``dojoOrderId`` (:func:`epos_bridge.domain.records.replay_of`).

    Refuses what cannot be stored faithfully, and an unknown table. The order starts ``New``;
    payments that come with it are recorded as given, a Dojo one by its paymentIntentId.
    """
    check_new_order(params)
    for table_id in tables_named(params):
        if table_id not in known_tables:
            raise InvalidRequest(f"details.dineIn.tableId: unknown table {table_id!r}")
    currency = params.total_amount.currency_code
    return OrderRecord(
        status=OrderStatus.NEW,
        details=params.details,
        currency=currency,
        total_value=params.total_amount.value,
        created_at=now,
        updated_at=now,
        items=tuple(params.items),
        dojo_order_id=params.dojo_order_id,
        reference=params.reference,
        display_name=params.display_name,
        note=params.note,
        customer=params.customer,
        discounts=tuple(params.discounts or ()),
        tax_lines=tuple(params.tax_lines or ()),
        service_charge_value=params.service_charge_amount.value if params.service_charge_amount else None,
        payments=tuple(
            PaymentRecord.taken(
                StoredPayment(
                    paid_value=p.paid_amount.value,
                    tips_value=p.tips_amount.value if p.tips_amount else None,
                    payment_intent_id=p.payment_intent_id,
                ),
                now,
            )
            for p in params.payments
        ),
    )


# --- which orders a search returns ----------------------------------------------------------


class SearchedOrder(Protocol):
    """What SearchOrders filters on. An adapter may compute each lazily: the filter reads
    only what it needs, in this order."""

    @property
    def status(self) -> OrderStatus: ...

    @property
    def dine_in(self) -> Mapping[str, object]:
        """The order's dine-in fields by ``SearchDineInDetails`` name; empty for a collection."""
        ...

    @property
    def total_value(self) -> int: ...

    @property
    def paid_value(self) -> int: ...


@dataclass(frozen=True)
class OrderFilter:
    """Which orders SearchOrders returns (contract §3.1).

    ``dine_in``: ``(field, value)`` pairs of ``SearchDineInDetails`` that must all match. The
    SQLite adapter says the same in SQL, built from these fields and tested against
    :meth:`matches`.
    """

    dine_in: tuple[tuple[str, str], ...] = ()
    payable_only: bool = False

    left_out: ClassVar[frozenset[OrderStatus]] = CLOSED_ORDER_STATUSES
    """(rec): by default a search leaves out Finalized and Canceled orders."""

    def matches(self, order: SearchedOrder) -> bool:
        if order.status in self.left_out:
            return False
        if self.dine_in and any(order.dine_in.get(name) != value for name, value in self.dine_in):
            return False
        return not self.payable_only or is_payable(order.status, order.total_value, order.paid_value)


def order_filter(params: SearchOrdersParams) -> OrderFilter:
    """(rec): filters combine with AND, and an absent one is ignored."""
    wanted = params.dine_in.model_dump(exclude_none=True) if params.dine_in is not None else {}
    return OrderFilter(dine_in=tuple(wanted.items()), payable_only=bool(params.payable_only))
