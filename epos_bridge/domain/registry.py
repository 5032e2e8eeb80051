"""Orders Dojo wrote to that the POS no longer has under Dojo's id: what Dojo is answered.

A POS may check an open bill out into a closed order under a new key, or delete it. The bridge
keeps its own record of every order Dojo wrote to (:class:`epos_bridge.ports.RegisteredOrder`):
where it was last found and the last answer Dojo was given. These rules decide from that
record alone; they never guess from a timer.

* A replayed paymentIntentId the bridge recorded is success, answered from the record (contract
  §3.9 (rec): never an error for a duplicate, or Dojo reverses money the till holds).
* Any other payment, lock or cancel on it is ``Conflict``: there is no open order to take it
  (§3.9 (rec): Conflict for a Finalized/Canceled order), never ``NotFound`` for an order Dojo paid.
* A read of an order Dojo paid answers the record, no longer payable; one Dojo never paid is
  ``NotFound`` as before (§1.4: Dojo takes it as "deleted on the POS", which it is).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from epos_bridge.domain.errors import Conflict, InvalidRequest, NotFound
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.protocol.entities import DineInDetails, Order, OrderDetails, OrderStatus, OrderType
from epos_bridge.protocol.params import RecordOrderPaymentParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredOrder:
    """What the bridge keeps of an order Dojo wrote to (locked, paid, created, cancelled), in its
    own rows: the POS key it was last found under and the last answer Dojo was given. It outlives
    the POS re-keying the order (an open bill checked out into a closed order) or deleting it, so
    a payment the bridge recorded is never answered as unknown."""

    order_id: str
    """Dojo's id for the order (the wire id it was first known by)."""
    key: int
    """The POS's key (:data:`epos_bridge.ports.RowKey`)."""
    answer: Order | None = None
    """The last answer to a write on it; ``None`` if the stored one cannot be read."""

    @classmethod
    def stored(cls, order_id: str, key: int, answer: str | Mapping[str, Any] | None) -> RegisteredOrder:
        """The record as a storage keeps it (the answer as JSON text or a decoded document). An
        answer that no longer reads (a hand edit, a model changed) is logged and counted lost:
        the record still names the order, and the rules answer without it."""
        if answer is None:
            return cls(order_id, key)
        try:
            if isinstance(answer, str):
                return cls(order_id, key, Order.model_validate_json(answer))
            return cls(order_id, key, Order.model_validate(answer))
        except ValidationError as exc:
            log.warning("the bridge's record of order %s holds an answer that no longer reads: %s", order_id, exc)
            return cls(order_id, key)

    def answer_document(self) -> dict[str, Any] | None:
        """The answer as it is stored: the wire's JSON form."""
        return None if self.answer is None else self.answer.model_dump(mode="json", by_alias=True, exclude_none=True)


def paid_through_dojo(registered: RegisteredOrder) -> bool:
    """Dojo was told of a payment of its own on the order (one carrying a paymentIntentId). A
    record without an answer was filled from recorded payments (an upgraded file), so it was."""
    answer = registered.answer
    return answer is None or any(p.payment_intent_id for p in answer.payments or ())


def closed_answer(registered: RegisteredOrder) -> Order:
    """What Dojo was last told of the order, as Dojo knows it, and no longer payable (its status
    as last told). Without a stored answer, the order's id, Finalized: *(rec, spec silent)* the
    POS closed it after Dojo paid, and it is the success that matters to Dojo here."""
    if registered.answer is None:
        # Recorded before answers were kept (an upgraded file): the record never held the order's
        # type, and DineIn is the one every product reads; Dojo needs only the success here.
        details = OrderDetails(order_type=OrderType.DINE_IN, dine_in=DineInDetails())
        return Order(id=registered.order_id, status=OrderStatus.FINALIZED, payable=False, details=details)
    return registered.answer.model_copy(update={"id": registered.order_id, "payable": False})


def last_answer(registered: RegisteredOrder) -> Order:
    """What Dojo was last told of an order the POS still has but cannot answer for now."""
    if registered.answer is None:
        return closed_answer(registered)
    return registered.answer.model_copy(update={"id": registered.order_id})


def read_gone(registered: RegisteredOrder) -> Order:
    """GetOrderById / GetOrderBillById of an order the POS no longer has."""
    if paid_through_dojo(registered):
        return closed_answer(registered)
    raise NotFound(f"order {registered.order_id!r} does not exist")


def refuse_on_gone(registered: RegisteredOrder, action: str) -> Conflict | NotFound:
    """A lock or cancel on an order the POS no longer has: Conflict once Dojo has paid it."""
    if paid_through_dojo(registered):
        return Conflict(
            f"order {registered.order_id} is no longer open on the POS (it was closed or removed after Dojo "
            f"paid it): cannot {action}"
        )
    return NotFound(f"order {registered.order_id!r} does not exist")


def pay_gone(
    params: RecordOrderPaymentParams, registered: RegisteredOrder | None, recorded: RecordedIntent | None
) -> Order:
    """RecordOrderPaymentById on an order the POS no longer has under Dojo's id (``registered``
    ``None``: nor has the bridge's record). A recorded intent is success wherever it is recorded:
    the retry may name another order, and an error would reverse money the till holds."""
    if not params.payment_intent_id.strip():
        raise InvalidRequest("paymentIntentId: must not be empty")
    if recorded is not None:
        return closed_answer(registered or RegisteredOrder(params.order_id, int(recorded.order_id)))
    if registered is None:
        raise NotFound(f"order {params.order_id!r} does not exist")
    raise Conflict(
        f"order {registered.order_id} is no longer open on the POS (it was closed or removed after Dojo last "
        f"wrote to it): payment intent {params.payment_intent_id} was not recorded"
    )
