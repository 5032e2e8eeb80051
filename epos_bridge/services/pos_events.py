"""POS events: tell Dojo when an order, party or reservation changed on the till (contract §5.2).

The relay reads the POS's change log (every writer, the POS and the bridge alike, is captured by
the adapter's triggers), queues one event per changed entity in the durable outbox, and sends
``OrderUpdated`` / ``PartyUpdated`` / ``ReservationUpdated`` with only the id. Bursts coalesce
(~0.5 s); delivery is retried with backoff while the API is down; nothing is lost across a
restart because the queue and the read position live in the bridge's state database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from epos_bridge.ports import ChangeSource, Outbox
from epos_bridge.services.retry import BackoffPolicy

log = logging.getLogger(__name__)

EVENT_OF_ENTITY: dict[str, tuple[str, str]] = {
    "order": ("OrderUpdated", "orderId"),
    "party": ("PartyUpdated", "partyId"),
    "reservation": ("ReservationUpdated", "reservationId"),
}
"""contract §5.2 (rec): pair each event type strictly with its id field."""

COALESCE_S = 0.5
POLL_S = 0.25
READ_BATCH = 500
FORGET_AFTER = 1000
"""Ask the POS to drop change-log rows once this many have been queued (keeps its table small)."""


SendEvent = Callable[[str, str, str], Awaitable[None]]


DELIVERY_RETRIES = BackoffPolicy(initial_s=1.0, max_s=60.0, jitter=0.0)


def retry_delay(attempts: int) -> float:
    """1, 2, 4 … 60 s after ``attempts`` failed deliveries: the API may be down for minutes; the
    queue waits, nothing is dropped."""
    return DELIVERY_RETRIES.delay_for(attempts + 1)


@dataclass
class RelayStatus:
    depth: int = 0
    last_error: str | None = None
    delivered: int = 0


class PosEventRelay:
    def __init__(
        self,
        source: ChangeSource,
        source_key: str,
        outbox: Outbox,
        send: SendEvent,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = POLL_S,
        coalesce_s: float = COALESCE_S,
        on_status: Callable[[RelayStatus], None] | None = None,
    ) -> None:
        self._source = source
        self._source_key = source_key
        self._outbox = outbox
        self._send = send
        self._clock = clock
        self._poll_s = poll_s
        self._coalesce_s = coalesce_s
        self._on_status = on_status
        self.status = RelayStatus()
        self._unforgotten = 0
        self._cursor: int | None = None
        """How far the change log was queued: read from the outbox once, then kept here (this
        relay is the cursor's only writer), so an idle poll asks the state database nothing."""

    async def run(self) -> None:
        """Poll and deliver until cancelled; a failing POS database or API only delays."""
        while True:
            try:
                await self.capture_once()
            except Exception as exc:  # the POS database may be busy or gone: try again next tick
                log.warning("POS change log not readable now: %s", exc)
            try:
                await self.deliver_once()
            except Exception:
                log.exception("POS event delivery failed unexpectedly")
            await asyncio.sleep(self._poll_s)

    async def capture_once(self) -> int:
        """Queue what changed since the last read. Returns how many changes were read."""
        cursor = self._cursor if self._cursor is not None else await self._outbox.cursor(self._source_key)
        if cursor is None:
            # First run on this database: start from now, do not replay its whole history.
            latest = await self._source.latest_change()
            await self._outbox.enqueue(self._source_key, [], latest, self._clock())
            self._cursor = latest
            return 0
        self._cursor = cursor
        changes = await self._source.changes_after(cursor, READ_BATCH)
        if not changes:
            return 0
        through = changes[-1].seq
        forget = self._unforgotten + len(changes) >= FORGET_AFTER
        # Durable before the POS may forget these changes: the outbox skips the fsync otherwise.
        await self._outbox.enqueue(self._source_key, changes, through, self._clock() + self._coalesce_s, durable=forget)
        self._cursor = through
        self._unforgotten += len(changes)
        if forget:
            await self._source.forget_changes_through(through)
            self._unforgotten = 0
        await self._publish()
        return len(changes)

    async def deliver_once(self) -> int:
        """Send every due event once. Returns how many were delivered."""
        delivered = 0
        due = await self._outbox.due(self._clock())
        if not due:
            return 0  # nothing was due, so depth and last error are as last published
        for event in due:
            event_type, field = EVENT_OF_ENTITY[event.entity]
            try:
                await self._send(event_type, field, event.entity_id)
            except Exception as exc:
                delay = retry_delay(event.attempts)
                await self._outbox.failed(event, str(exc), self._clock() + delay)
                log.warning(
                    "%s %s not delivered (attempt %d), retry in %.0f s: %s",
                    event_type,
                    event.entity_id,
                    event.attempts + 1,
                    delay,
                    exc,
                )
                continue
            await self._outbox.delivered(event)
            delivered += 1
        if delivered:
            self.status.delivered += delivered
        await self._publish()
        return delivered

    async def _publish(self) -> None:
        depth, error = await self._outbox.depth(), await self._outbox.last_error()
        changed = (depth, error) != (self.status.depth, self.status.last_error)
        self.status.depth, self.status.last_error = depth, error
        if changed and self._on_status is not None:
            self._on_status(self.status)
