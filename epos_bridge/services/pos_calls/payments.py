"""Payments (contract §3.9) and payment-intent events (§3.22): each call's flow over a
:class:`~epos_bridge.ports.PosRows`. The rules are ``domain.payments`` and ``domain.intents``."""

from __future__ import annotations

import logging
from datetime import datetime

from epos_bridge.domain import intents, orders, payments
from epos_bridge.domain import registry as registry_rules
from epos_bridge.domain.errors import NotFound, PosUnavailable
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import CallContext, PosOrder, PosRows
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.entities import Order, PaymentIntentEvent
from epos_bridge.services.pos_calls.registry import answer, answer_and_register, locate

log = logging.getLogger(__name__)


def record_order_payment(
    params: wire.RecordOrderPaymentParams, ctx: CallContext, rows: PosRows, now: datetime
) -> Order:
    recorded = rows.recorded_intent(params.payment_intent_id)
    try:
        order = locate(rows, params.order_id)
    except NotFound:
        if recorded is None:
            raise
        order = None
    if order is None or isinstance(order, RegisteredOrder):
        told = registry_rules.pay_gone(params, order, recorded)
        log.info(
            "payment intent %s on order %s, which the POS no longer has: answered from the bridge's record",
            params.payment_intent_id,
            params.order_id,
        )
        return told
    payable = payments.PayableOrder(
        order_id=params.order_id,
        status=order.status,
        currency=order.currency,
        total_value=order.total_value,
        payments=rows.payments(order),
        open_at_till=order.open_at_till,
        facts=order.facts,
    )
    decision = payments.decide_payment(
        payable,
        rows.held_lock(order),
        params,
        intents.newest_status(rows.intent_events(params.payment_intent_id)),
        now,
        recorded=recorded,
    )
    if decision.warning:
        log.warning("%s", decision.warning)
    ctx.record(*decision.events)
    if decision.payment is None:
        return _replay_answer(rows, order, params)
    rows.insert_payment(order, orders.PaymentRecord.taken(decision.payment, now, params.headers), now)
    return answer_and_register(rows, order, now, changed=True)


def _replay_answer(rows: PosRows, order: PosOrder, params: wire.RecordOrderPaymentParams) -> Order:
    """A replay is success whatever the order reads like now: when the POS's rows no longer make
    an answer (a line the mapping cannot map, a fraction the till wrote since), the bridge's
    record answers instead. An error here would make Dojo reverse money the till holds."""
    try:
        return answer(rows, order)
    except PosUnavailable as exc:
        log.warning(
            "payment intent %s replayed on order %s, which cannot be read now (%s): answered from the bridge's record",
            params.payment_intent_id,
            params.order_id,
            exc,
        )
        registered = rows.registered_order(order.order_id) or RegisteredOrder(order.order_id, order.key)
        return registry_rules.last_answer(registered)


def handle_payment_intent_event(
    params: wire.HandleEventParams, event: PaymentIntentEvent, ctx: CallContext, rows: PosRows, now: datetime
) -> None:
    """Keep the event once (dedupe on ``params.id``) and apply it to the recorded payment. The
    payment's status is stored before the event, so a store that cannot write both at once
    (a folder of files) is repaired by the redelivery rather than skipping it."""
    history = rows.intent_events(event.payment_intent_id, params.id)
    if intents.is_redelivery(params, history):
        return  # contract §3.22: at-least-once delivery; a replay changes nothing and reads no order
    recorded = rows.recorded_intent(event.payment_intent_id)
    decision = intents.decide_intent_event(params, event, history, recorded, now)
    if decision.store is None:
        return
    if decision.payment_status is not None and recorded is not None:
        rows.set_payment_status(recorded, event.payment_intent_id, decision.payment_status.value, now)
    rows.keep_intent_event(params, event, now)
    ctx.record(*decision.events)
