"""Orders, bills, tables and areas: each call's flow over a :class:`~epos_bridge.ports.PosRows`.

Each function is one transaction's body: it reads the facts the rule needs, lets ``domain/``
decide, and stores what was decided. ``now`` is handed in by the transaction once it holds the
POS's lock, so it is never older than the POS's own edits.
"""

from __future__ import annotations

import logging
from datetime import datetime

from epos_bridge.domain import bill, locks, orders, records
from epos_bridge.domain import registry as registry_rules
from epos_bridge.domain.pagination import read_cursor
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import PosRows
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.entities import Area, Order, OrderBill
from epos_bridge.services.pos_calls.registry import answer, answer_and_register, locate

log = logging.getLogger(__name__)


def search_orders(params: wire.SearchOrdersParams, rows: PosRows, now: datetime) -> wire.PagedOrders:
    page = rows.search_orders(orders.order_filter(params), read_cursor(params.cursor, "orders"))
    bounds = page.bounds("orders")
    return wire.PagedOrders(data=list(page.items), before=bounds.before, after=bounds.after)


def get_order(params: wire.OrderIdParams, rows: PosRows, now: datetime) -> Order:
    order = locate(rows, params.order_id)
    return registry_rules.read_gone(order) if isinstance(order, RegisteredOrder) else answer(rows, order)


def get_order_bill(params: wire.OrderIdParams, rows: PosRows, now: datetime) -> OrderBill:
    order = get_order(params, rows, now)
    venue = rows.venue()
    if venue is None:
        log.warning("the POS database has no venue details: the bill prints without a merchant header")
    table_id = bill.table_of(order)
    return bill.build_bill(order, venue, rows.table_name(table_id) if table_id else None, now)


def cancel_order(params: wire.OrderIdParams, rows: PosRows, now: datetime) -> Order:
    order = locate(rows, params.order_id)
    if isinstance(order, RegisteredOrder):
        raise registry_rules.refuse_on_gone(order, "cancel it")
    paid = orders.paid_value(rows.payments(order))
    held = locks.active_lock(rows.held_lock(order), now)
    cancelling = orders.check_cancellable(params.order_id, order.status, paid, held is not None, order.open_at_till)
    if cancelling:
        rows.cancel_order(order, now)
    return answer_and_register(rows, order, now, changed=cancelling)


def create_order(params: wire.CreateOrderParams, rows: PosRows, now: datetime) -> Order:
    existing = records.replay_of(records.ORDER, params.dojo_order_id, rows.order_of_dojo_id(params.dojo_order_id))
    if existing is not None:
        # Dojo's retry: the order as it is now, wherever the POS moved it; one the POS no longer
        # has is what Dojo was told, no longer payable (never NotFound: Dojo would create it again).
        found = locate(rows, str(existing))
        if isinstance(found, RegisteredOrder):
            return registry_rules.closed_answer(found)
        return answer(rows, found)
    known = rows.known_tables(orders.tables_named(params))
    key = rows.insert_order(orders.decide_new_order(params, known, now))
    told = rows.answer_order(key)
    orders.check_stored_as_sent(params, told)
    rows.register_order(str(told.id), key, told, now)
    return told


def list_areas(params: wire.WithHeaders, rows: PosRows, now: datetime) -> list[Area]:
    return rows.areas()


def search_tables(params: wire.SearchTablesParams, rows: PosRows, now: datetime) -> wire.PagedTables:
    page = rows.search_tables(params.area_id, params.waiter_id, read_cursor(params.cursor, "tables", str))
    bounds = page.bounds("tables")
    return wire.PagedTables(data=list(page.items), before=bounds.before, after=bounds.after)
