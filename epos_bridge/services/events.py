"""Where what happened goes: one publisher for the domain events of every request and counter step.

The adapters and the counter record events (:class:`epos_bridge.domain.events`); the dispatcher
and the counter hand them to :meth:`EventRouter.publish`. From here the lock board follows the
locks, the payment log stores each payment and its status changes (off the caller's path), and
listeners — the tray app — hear both. Nothing upstream knows who listens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from epos_bridge.domain.captures import NOT_ON_TILL, CaptureNotOnTill, CaptureSettled
from epos_bridge.domain.events import DomainEvent, PaymentRecorded, PaymentStatusChanged
from epos_bridge.services.activity import LockBoard, PaymentLogEntry, not_on_till_entry, payment_entry
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.tasks import TaskSet


class PaymentLog(Protocol):
    """The bridge's own record of payments (``state.payment_log.PaymentLogStore``)."""

    async def record(self, entry: PaymentLogEntry) -> None: ...

    async def set_status(self, payment_intent_id: str, status: str) -> PaymentLogEntry | None: ...


class EventRouter:
    def __init__(self, payment_log: PaymentLog, lock_board: LockBoard | None = None) -> None:
        self.lock_board = lock_board or LockBoard()
        self._payment_log = payment_log
        self._events: Listeners[DomainEvent] = Listeners("domain event")
        self._payments: Listeners[PaymentLogEntry] = Listeners("payment log")
        self._writes = TaskSet("payment log")

    def on_event(self, listener: Callable[[DomainEvent], None]) -> Callable[[], None]:
        return self._events.add(listener)

    def on_payment(self, listener: Callable[[PaymentLogEntry], None]) -> Callable[[], None]:
        """A new payment-log line, or an existing one whose status changed."""
        return self._payments.add(listener)

    def publish(self, event: DomainEvent) -> None:
        self.lock_board.apply(event)
        if isinstance(event, PaymentRecorded):
            entry = payment_entry(event)
            self._writes.spawn(self._payment_log.record(entry))
            self._payments.emit(entry)
        elif isinstance(event, PaymentStatusChanged):
            self._writes.spawn(self._status_changed(event.payment_intent_id, event.status.value))
        elif isinstance(event, CaptureNotOnTill):  # a line of its own, worded "not on the till"
            self._writes.spawn(self._not_on_till(event))
        elif isinstance(event, CaptureSettled):
            self._writes.spawn(self._status_changed(event.payment_intent_id, event.status))
        self._events.emit(event)

    async def flush(self) -> None:
        """Let the payment-log writes in progress finish (before the log closes)."""
        await self._writes.wait()

    async def _status_changed(self, payment_intent_id: str, status: str) -> None:
        entry = await self._payment_log.set_status(payment_intent_id, status)
        if entry is not None:
            self._payments.emit(entry)

    async def _not_on_till(self, event: CaptureNotOnTill) -> None:
        """Shown again after a restart (the counter re-publishes it): a line that exists gets
        the status back, the line is never doubled (one per paymentIntentId)."""
        await self._payment_log.record(not_on_till_entry(event))
        await self._status_changed(event.payment_intent_id, NOT_ON_TILL)
