"""Writing the domain's records into a POS's own tables through the mapping's statements, and
the bridge's rows that go with them. Runs inside a write transaction, through ``db`` only (a
transaction body may run twice: a snapshot attempt, then under the write lock). The demo seeder
writes its orders through the same functions.
"""

from __future__ import annotations

from datetime import datetime

from epos_bridge.adapters.sql_session import Sql
from epos_bridge.adapters.sqlmap import rows
from epos_bridge.adapters.sqlmap.mapping import Mapping
from epos_bridge.domain import orders
from epos_bridge.domain.bookings import ReservationRecord
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.protocol.base import format_utc


def insert_order(db: Sql, mapping: Mapping, record: orders.OrderRecord) -> int:
    """Store a whole order through ``orders.create`` and its line statements; what the POS has no
    column for (Dojo's order id, the reference, a line's PLU) the bridge keeps as facts."""
    dine_in = record.details.dine_in
    customer = record.customer
    stamp = mapping.time_text(record.created_at)
    tax = record.tax_lines[0] if record.tax_lines else None
    discount = record.discounts[0] if record.discounts else None
    key = rows.run(
        db,
        mapping,
        "orders.create",
        now=stamp,
        table_id=dine_in.table_id if dine_in else None,
        waiter_id=dine_in.waiter_id if dine_in else None,
        total_amount=record.total_value,
        service_charge_amount=record.service_charge_value,
        order_type=record.details.order_type.value,
        status=record.status.value,
        note=record.note,
        reference=record.reference,
        display_name=record.display_name,
        customer_name=customer.name if customer else None,
        customer_email=customer.email_address if customer else None,
        customer_phone=customer.phone_number if customer else None,
        tax_amount=tax.amount_total.value if tax else None,
        tax_name=tax.name if tax else None,
        tax_id=tax.id if tax else None,
        tax_percentage=tax.amount_percentage if tax else None,
        discount_amount=discount.amount_total.value if discount else None,
        discount_name=discount.name if discount else None,
        discount_code=discount.code if discount else None,
        discount_percentage=discount.amount_percentage if discount else None,
    )
    assert key is not None
    rows.keep_facts(
        db,
        mapping,
        "order",
        key,
        {
            "dojo_order_id": record.dojo_order_id,
            "reference": record.reference_for(key),
            "display_name": record.display_name,
            "note": record.note,
            "waiter_id": dine_in.waiter_id if dine_in else None,
            "party_id": dine_in.party_id if dine_in else None,
            "reservation_id": dine_in.reservation_id if dine_in else None,
            "customer_name": customer.name if customer else None,
            "customer_email": customer.email_address if customer else None,
            "customer_phone": customer.phone_number if customer else None,
            "tax_id": tax.id if tax else None,
            "tax_name": tax.name if tax else None,
            "tax_percentage": tax.amount_percentage if tax else None,
            "tax_affected_plu": tax.affected_plu if tax else None,
            "discount_name": discount.name if discount else None,
            "discount_code": discount.code if discount else None,
            "discount_reference": discount.discount_reference if discount else None,
            "discount_percentage": discount.amount_percentage if discount else None,
            "discount_affected_plu": discount.affected_plu if discount else None,
        },
    )
    for position, item in enumerate(record.items):
        item_key = rows.run(
            db,
            mapping,
            "orders.create_item",
            order_id=key,
            now=stamp,
            position=position,
            name=item.name,
            plu=item.plu,
            quantity=item.quantity,
            amount_per_item=item.amount_per_item.value,
            note=item.note,
        )
        # A POS may hand a line's row id out again: what the bridge kept of an earlier line goes.
        rows.forget_facts(db, "item", item_key, ("plu", "note"))
        rows.keep_facts(db, mapping, "item", item_key, {"plu": item.plu, "note": item.note})
        for m_position, modifier in enumerate(item.modifiers or []):
            modifier_key = rows.run(
                db,
                mapping,
                "orders.create_modifier",
                order_id=key,
                item_key=item_key,
                position=m_position,
                name=modifier.name,
                plu=modifier.plu,
                quantity=modifier.quantity,
                amount_per_modifier=modifier.amount_per_modifier.value,
            )
            rows.forget_facts(db, "modifier", modifier_key, ("plu",))
            rows.keep_facts(db, mapping, "modifier", modifier_key, {"plu": modifier.plu})
    for payment in record.payments:
        insert_payment(db, mapping, key, payment)
    return key


def insert_payment(db: Sql, mapping: Mapping, key: int, record: orders.PaymentRecord) -> None:
    """The POS's payment row and, for a Dojo payment, the bridge's de-duplication row: one
    transaction, so a paymentIntentId is recorded exactly once or not at all."""
    payment, requester = record.payment, record.requester
    recorded_at = format_utc(record.recorded_at)  # the bridge's own row: always UTC
    pos_payment = rows.run(
        db,
        mapping,
        "payments.insert",
        order_id=key,
        paid_amount=payment.paid_value,
        tips_amount=payment.tips_value,
        payment_intent_id=payment.payment_intent_id,
        tender=record.tender,
        recorded_at=mapping.time_text(record.recorded_at),
        dojo_requesting_product=requester.dojo_requesting_product if requester else None,
        device_id=requester.device_id if requester else None,
        waiter_id=requester.waiter_id if requester else None,
    )
    if payment.payment_intent_id is not None:
        db.execute(
            "INSERT INTO EPOS_BRIDGE_PAYMENTS (PAYMENT_INTENT_ID, ORDER_KEY, POS_PAYMENT_ID, PAID_AMOUNT,"
            " TIPS_AMOUNT, STATUS, RECORDED_AT) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                payment.payment_intent_id,
                key,
                pos_payment,
                payment.paid_value,
                payment.tips_value,
                payment.status,
                recorded_at,
            ],
        )
        if not payment.counts:  # an event reversed it before the payment arrived: the till must not count it
            recorded = RecordedIntent(str(key), payment.paid_value, payment.tips_value, payment.status)
            payment_status(db, mapping, recorded, payment.payment_intent_id, payment.status, record.recorded_at)
    order_paid(db, mapping, key, record.recorded_at)


def payment_status(
    db: Sql,
    mapping: Mapping,
    recorded: RecordedIntent,
    payment_intent_id: str,
    status: str,
    now: datetime,
) -> None:
    """The POS's own row of a recorded payment follows its new status; whether it still counts is
    the domain's (:attr:`orders.StoredPayment.counts`), never the mapping's SQL."""
    if not mapping.has("payments.status"):
        return
    counts = orders.StoredPayment(recorded.paid_value, recorded.tips_value, payment_intent_id, status).counts
    rows.run(
        db,
        mapping,
        "payments.status",
        order_id=rows.order_key(recorded.order_id),
        now=mapping.time_text(now),
        payment_intent_id=payment_intent_id,
        status=status,
        counts=int(counts),
        paid_amount=recorded.paid_value,
        tips_amount=recorded.tips_value,
    )


def order_paid(db: Sql, mapping: Mapping, key: int, now: datetime) -> None:
    """The POS's own paid and due columns, from the payments that count (the domain says which)."""
    if not mapping.has("payments.order_paid"):
        return
    row = rows.header(db, mapping, str(key))
    stored = rows.stored_payments(db, mapping, key)
    summary = orders.summarise_payments(rows.status_of(row), int(row["total_amount"]), "XXX", stored)
    rows.run(
        db,
        mapping,
        "payments.order_paid",
        order_id=key,
        now=mapping.time_text(now),
        paid_value=summary.paid_amount.value,
        tips_value=summary.tips_amount.value,
        due_value=summary.outstanding_value,
        fully_paid=int(summary.outstanding_value == 0),
    )


def store_reservation(
    db: Sql, mapping: Mapping, record: ReservationRecord, now: datetime, key: int | None = None
) -> int:
    """A new reservation (``key`` ``None``) or a replaced one, with its tables; Dojo's id is a fact."""
    fields = {
        "now": mapping.time_text(now),
        "name": record.name,
        "covers": record.covers,
        "start_time": mapping.time_text(record.start_time),
        "end_time": mapping.time_text(record.end_time),
        "host_notes": record.host_notes,
        "guest_requests": record.guest_requests,
    }
    if key is None:
        created = rows.run(db, mapping, "reservations.create", **fields)
        assert created is not None
        key = created
    else:
        rows.run(db, mapping, "reservations.update", reservation_id=key, **fields)
        rows.run(db, mapping, "reservations.clear_tables", reservation_id=key)
    for position, table_id in enumerate(record.table_ids):
        rows.run(db, mapping, "reservations.add_table", reservation_id=key, table_id=table_id, position=position)
    rows.keep_facts(db, mapping, "reservation", key, {"dojo_reservation_id": record.dojo_reservation_id})
    # Replace semantics: a field the update leaves out is gone, here as on the POS.
    rows.forget_facts(db, "reservation", key, ("host_notes", "guest_requests", "name"))
    rows.keep_facts(
        db,
        mapping,
        "reservation",
        key,
        {"name": record.name, "host_notes": record.host_notes, "guest_requests": record.guest_requests},
    )
    return key


def delete_reservation(db: Sql, mapping: Mapping, key: int, now: datetime) -> None:
    """Soft delete: the bridge keeps the deletion (its id is never reused); the POS is told if it can be."""
    rows.keep_facts(db, mapping, "reservation", key, {"deleted_at": format_utc(now)})
    if mapping.has("reservations.delete"):
        rows.run(db, mapping, "reservations.delete", reservation_id=key, now=mapping.time_text(now))
