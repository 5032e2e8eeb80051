"""Finding the order Dojo names, wherever the POS keeps it now, and keeping the bridge's record
of it: every call on one order goes through here (rules: :mod:`epos_bridge.domain.registry`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from epos_bridge.domain.errors import NotFound
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import PosOrder, PosRows
from epos_bridge.protocol.entities import Order


def locate(rows: PosRows, order_id: str) -> PosOrder | RegisteredOrder:
    """The order under Dojo's id; else where the POS moved it (followed from the bridge's
    record, still named by Dojo's id); else the record itself, when the POS no longer has it.
    ``NotFound`` for an id neither the POS nor the bridge knows."""
    try:
        return rows.order(order_id)
    except NotFound:
        registered = rows.registered_order(order_id)
        if registered is None:
            raise
        followed = rows.follow_order(registered)
        return registered if followed is None else replace(followed, order_id=order_id)


def answer(rows: PosRows, order: PosOrder) -> Order:
    """The order as stored now, under the id Dojo knows it by (a followed order's own id is the POS's)."""
    found = rows.answer_order(order.key)
    return found if found.id == order.order_id else found.model_copy(update={"id": order.order_id})


def answer_and_register(rows: PosRows, order: PosOrder, now: datetime, *, changed: bool) -> Order:
    """A write's answer, kept in the bridge's record in the same transaction when the write
    changed the order: what Dojo is told is what the record holds, should the POS later re-key
    or delete it. A replay that changed nothing writes nothing (it is answered without the
    POS's write lock, ``PosStorage.write``)."""
    told = answer(rows, order)
    if changed:
        rows.register_order(order.order_id, order.key, told, now)
    return told
