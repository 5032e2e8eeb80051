"""A card captured at the counter is a fact: how it is put on its order, and what becomes of it
when the POS cannot take it (issue 25, item 3).

Pure. The money is taken the moment the terminal says ``Captured``; what follows only decides
where that fact is written:

* **On the order, whatever lock is on it now.** The counter's own sale lock may have expired
  while the capture waited (a restart, a POS that could not be written), and Pay at Table or
  another product may hold the order since, or the till may have it open. None of that changes
  what the card paid, so :func:`locks_may_refuse` says a :class:`CapturedCardPayment` is judged
  without lock checks (``domain.payments.decide_payment`` asks it). The paymentIntentId still
  de-duplicates: a retried or resumed landing never inserts a second payment.
* **Otherwise, "captured, not on the till".** Where the POS truly cannot take it — the order is
  gone, finalized or cancelled, or would be overpaid — the capture is kept by the bridge under
  :data:`NOT_ON_TILL` until staff refund it (one click: Dojo's reversal of the intent, contract
  §5.4) or it lands. :func:`landing_after` tells a refusal retrying cannot change from a POS that
  is only unavailable for now.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.events import DomainEvent
from epos_bridge.protocol.entities import Money
from epos_bridge.protocol.jsonrpc import EPOSErrorType
from epos_bridge.protocol.params import RecordOrderPaymentParams

NOT_ON_TILL = "CapturedNotOnTill"
"""The status, in the counter's session store and in the payment log, of a card captured at the
counter that the POS refused: the money is taken, the till does not show it. Not final: the
session stays unfinished (a restart shows it again) until it is refunded or lands."""

REVERSED = "Reversed"
"""The status once staff refunded such a capture (Dojo reversed the intent)."""
RECORDED = "Recorded"
"""The status once such a capture landed on the order after all (the payment log's word)."""


class CapturedCardPayment(RecordOrderPaymentParams):
    """A card payment a Dojo terminal has already captured, to be put on its order.

    Built only inside the bridge (pay at counter): requests from Dojo are validated into plain
    :class:`RecordOrderPaymentParams`, never into this, so no request can skip a lock check by
    claiming to be one.
    """


def locks_may_refuse(params: RecordOrderPaymentParams) -> bool:
    """Whether a lock on the order (another holder's, an expired one of ours, the till having it
    open) may refuse this payment. Not for a card already captured: the money is taken, and a
    refusal would only lose it (the order's state and the amounts are still judged)."""
    return not isinstance(params, CapturedCardPayment)


class Landing(StrEnum):
    RETRY = "retry"
    """The POS could not be written (busy, gone for now): try again, the order kept ours."""
    NOT_ON_TILL = "not-on-till"
    """The POS refused it for good (order closed, gone, would be overpaid): keep it as
    :data:`NOT_ON_TILL` and tell staff."""


def landing_after(failure: EposFailure) -> Landing:
    """What to do after the POS did not record a captured card. Only ``UnexpectedError`` (the
    POS unavailable, a deadline) can change by retrying; a contract refusal (``Conflict``,
    ``NotFound``, ``InvalidRequest``) says the order cannot take it as it stands."""
    if failure.error_type is EPOSErrorType.UNEXPECTED_ERROR:
        return Landing.RETRY
    return Landing.NOT_ON_TILL


@dataclass(frozen=True)
class CaptureNotOnTill(DomainEvent):
    """A captured card the POS refused: the payment log keeps it as :data:`NOT_ON_TILL`, staff
    are alerted naming the order and the amount."""

    session_id: str
    payment_intent_id: str
    amount: Money
    reason: str
    terminal_id: str | None = None
    order_reference: str | None = None
    """What the till calls the order (``T12-0008``), when the POS could still read it."""
    display_name: str | None = None


@dataclass(frozen=True)
class CaptureSettled(DomainEvent):
    """A capture that was not on the till is settled: ``status`` is :data:`REVERSED` (refunded
    to the card) or :data:`RECORDED` (it landed after all)."""

    session_id: str
    payment_intent_id: str
    status: str
