"""Order locks (contract §3.6-3.8): each call's flow over a :class:`~epos_bridge.ports.PosRows`."""

from __future__ import annotations

from datetime import datetime

from epos_bridge.domain import locks
from epos_bridge.domain import registry as registry_rules
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import CallContext, PosOrder, PosRows
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.entities import Order
from epos_bridge.services.pos_calls.registry import answer_and_register, locate


def lockable(order: PosOrder) -> locks.LockableOrder:
    return locks.LockableOrder(order.order_id, order.status, order.updated_at, order.open_at_till, order.facts)


def change_lock(
    decide: locks.LockDecision, params: wire.CreateOrderLockParams, ctx: CallContext, rows: PosRows, now: datetime
) -> Order:
    """Create and extend share one shape: the rule decides, the storage keeps what it says."""
    order = locate(rows, params.order_id)
    if isinstance(order, RegisteredOrder):
        raise registry_rules.refuse_on_gone(order, "lock it")
    change = decide(lockable(order), rows.held_lock(order), params.lock_id, params.expiry, now, params.headers)
    rows.store_lock(order, change)
    ctx.record(*change.events)
    return answer_and_register(rows, order, now, changed=change.changes_anything)


def delete_order_lock(params: wire.DeleteOrderLockParams, ctx: CallContext, rows: PosRows, now: datetime) -> Order:
    order = locate(rows, params.order_id)
    if isinstance(order, RegisteredOrder):
        return registry_rules.read_gone(order)  # contract §3.6 (rec): a release always succeeds
    change = locks.decide_delete(params.order_id, rows.held_lock(order), params.lock_id, now)
    rows.store_lock(order, change)
    ctx.record(*change.events)
    return answer_and_register(rows, order, now, changed=change.changes_anything)
