"""Following a counter session to its end, and putting its outcome on the POS exactly once.

A card captured on the terminal is a fact (:mod:`epos_bridge.domain.captures`): it is recorded
against its order whatever lock is on it by then, ours or another's. If the POS cannot be
written, the recording is retried with backoff (and after a restart) until it lands, the order
kept locked meanwhile. If the POS refuses it for good (the order closed or gone meanwhile), it is
kept as "captured, not on the till": the session stays unfinished, the payment log shows it and
staff are alerted until they refund it. A sale whose ``POST /terminal-sessions`` never answered
is followed through its payment intent, the lock kept while a session may still capture. Only
then is the lock released.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from epos_bridge.domain.captures import NOT_ON_TILL, RECORDED, Landing, landing_after
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.terminal_sessions import (
    CREATING,
    FINAL,
    SUCCESS,
    CounterSession,
    SessionKind,
    outcome_of_unknown_session,
)
from epos_bridge.protocol.dojo_errors import DojoApiError
from epos_bridge.protocol.dojo_rest import TerminalSessionStatus
from epos_bridge.services.counter_desk import CounterDesk
from epos_bridge.services.retry import BackoffPolicy
from epos_bridge.services.tasks import TaskSet

log = logging.getLogger(__name__)

RETRY_CAP_S = 30.0


class SessionFollower:
    """One task per unfinished session; ``follow`` starts one, ``stop`` cancels them all."""

    def __init__(self, desk: CounterDesk) -> None:
        self._desk = desk
        self._retries = BackoffPolicy(initial_s=desk.poll_s, max_s=RETRY_CAP_S, jitter=0.0)
        self._tasks = TaskSet("terminal session")
        self._following: set[str] = set()

    def is_following(self, session_id: str) -> bool:
        return session_id in self._following

    def follow(self, record: CounterSession) -> None:
        self._following.add(record.session_id)
        if record.status == NOT_ON_TILL:
            work = self._land_again
        else:
            work = self._resolve_unknown if record.pending else self._poll
        self._tasks.spawn(self._until_done(record, work(record)), name=f"terminal-{record.session_id}")

    async def stop(self) -> None:
        await self._tasks.stop()
        self._following.clear()

    async def _until_done(self, record: CounterSession, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        finally:
            self._following.discard(record.session_id)

    async def _poll(self, record: CounterSession) -> None:
        desk, failures = self._desk, 0
        while True:
            try:
                session = await desk.client.get_terminal_session(record.session_id)
                failures = 0
            except DojoApiError as exc:
                failures += 1
                desk.tell(record, record.status, error=str(exc))
                await desk.sleep(self._retries.delay_for(failures + 1))
                continue
            status = session.status
            notifications = tuple(n.notification_type for n in session.notification_events)
            if status != record.status:
                await desk.store.set_status(record.session_id, status)
                record = replace(record, status=status)
            if status in FINAL:
                await self._finish(record, status, notifications)
                return
            desk.tell(record, status, notifications)
            await desk.sleep(desk.poll_s)

    async def _resolve_unknown(self, record: CounterSession) -> None:
        desk, failures = self._desk, 0
        assert record.payment_intent_id is not None
        while True:
            try:
                intent = await desk.client.get_payment_intent(record.payment_intent_id, return_canceled=True)
                failures = 0
            except DojoApiError as exc:
                failures += 1
                desk.tell(record, CREATING, error=str(exc))
                await desk.sleep(self._retries.delay_for(failures + 1))
                continue
            outcome = outcome_of_unknown_session(intent.status, record.started_at, desk.wall())
            if outcome is not None:
                await self._finish(record, outcome, ())
                return
            desk.tell(record, CREATING)
            await desk.sleep(desk.poll_s)

    async def _land_again(self, record: CounterSession) -> None:
        """A capture a previous run kept as not on the till: the card is taken, so try the POS
        once more (the order may take it now) before alerting again."""
        await self._finish(record, TerminalSessionStatus.CAPTURED, ())

    async def _finish(self, record: CounterSession, status: str, notifications: tuple[str, ...]) -> None:
        """Apply a final outcome to the POS once, then let the lock go (not before).

        A captured sale the POS refused is not marked done: it stays unfinished as
        :data:`NOT_ON_TILL` (set by ``keep_not_on_till``) until staff refund it."""
        desk = self._desk
        recorded, error, not_on_till = False, None, False
        if status in SUCCESS and record.kind == SessionKind.SALE:
            recorded, error = await self._land_sale(record, status, notifications)
            not_on_till = record.session_id in desk.not_on_till
        elif status in SUCCESS and record.kind == SessionKind.MATCHED_REFUND and record.payment_intent_id:
            recorded, error = await self._land_refund(record)
        await desk.unlock(record.order_id, record.lock_id)
        if not not_on_till:
            await desk.store.set_status(record.session_id, status, outcome_recorded=True)
        desk.tell(record, status, notifications, recorded=recorded, error=error, not_on_till=not_on_till)

    async def _land_sale(
        self, record: CounterSession, status: str, notifications: tuple[str, ...]
    ) -> tuple[bool, str | None]:
        """Retry while the POS cannot be written; for a refusal retrying cannot change (the
        till closed the order, or it is gone), keep it as not on the till and say why."""
        desk = self._desk
        if not record.order_id or not record.payment_intent_id:
            return False, None
        attempt = 0
        while True:
            try:
                await desk.record_sale(record, retrying=attempt > 0)
            except EposFailure as failure:
                if landing_after(failure) is Landing.NOT_ON_TILL:
                    desk.unrecorded.pop(record.order_id, None)
                    log.error("terminal session %s captured %s for order %s but the POS refused it: %s; kept as "
                              "captured, not on the till", record.session_id, record.payment_intent_id,
                              record.order_id, failure.message)  # fmt: skip
                    await desk.keep_not_on_till(record, failure.message)
                    return False, (
                        f"Approved on the terminal, but the POS refused it: {failure.message} "
                        "The card payment is kept in the payment log as not on the till: refund it, "
                        "or record it on the till by hand."
                    )
                attempt += 1
                desk.unrecorded[record.order_id] = record.session_id
                delay = self._retries.delay_for(attempt)
                log.error("terminal session %s captured %s but the POS cannot record it yet (%s); retrying in %.0f s",
                          record.session_id, record.payment_intent_id, failure.message, delay)  # fmt: skip
                desk.tell(record, status, notifications, error=failure.message, unrecorded_capture=True)
                await desk.sleep(delay)
                continue
            desk.unrecorded.pop(record.order_id, None)
            if record.status == NOT_ON_TILL:  # kept as not on the till before a restart: it landed after all
                desk.settle(record.session_id, record.payment_intent_id, record.order_id, RECORDED)
            return True, None

    async def _land_refund(self, record: CounterSession) -> tuple[bool, str | None]:
        try:
            await self._desk.record_refund(record)
        except EposFailure as failure:
            log.error(
                "refund session %s succeeded but the POS did not record it: %s", record.session_id, failure.message
            )
            return False, f"Refunded on the terminal, but the POS did not record it: {failure.message}"
        return True, None
