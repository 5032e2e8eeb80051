"""A card captured at the counter is never lost (issue 25, item 3), against the real REST
simulator, a real demo POS file and the bridge's real state database.

* Another lock holder (Pay at Table) locks the order after the counter's own sale lock expired
  while the capture waited: the capture is recorded against the order all the same, once.
* The till finalizes the order while the card is on the terminal: the capture is kept as
  "captured, not on the till" in the payment log and the session store, an alert names the order
  and the amount, it survives a restart, and the one-click refund reverses the intent and clears
  it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from epos_bridge.domain.captures import NOT_ON_TILL, CaptureNotOnTill
from epos_bridge.ports import CallContext
from epos_bridge.protocol.entities import Money
from epos_bridge.protocol.params import CreateOrderLockParams, RequestHeaders
from epos_bridge.protocol.times import format_utc
from epos_bridge.services.counter import CounterPayments, SaleRefused
from epos_bridge.services.events import EventRouter
from epos_bridge.sim.rest import RestSimulator
from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID
from epos_bridge.state.payment_log import PaymentLogStore
from tests.helpers.pos import sqlite_pos
from tests.integration.test_pay_at_counter import ORDER, HeldPos, Rig, locks_on, paid

PAY_AT_TABLE = RequestHeaders(dojo_requesting_product="PayAtTable", device_id="pat-terminal")


@pytest.fixture
async def rest() -> AsyncIterator[RestSimulator]:
    async with RestSimulator(DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID) as simulator:
        yield simulator


class LoggedRig(Rig):
    """The counter publishing through the real EventRouter into the real payment log, as the
    app wires it (``app.py``), with the alerts it raises collected."""

    def __init__(self, rest: RestSimulator, demo_db: Path, state: Path, **kwargs: object) -> None:
        super().__init__(rest, demo_db, state, **kwargs)  # type: ignore[arg-type]
        self.payment_log = PaymentLogStore(state)
        self.router = EventRouter(self.payment_log)
        self.counter = CounterPayments(
            self.client, self.pos, self.store, poll_s=0.01, publish=self.router.publish, sleep=kwargs.get("sleep", asyncio.sleep)  # type: ignore[arg-type]
        )  # fmt: skip
        self.counter.on_update(self.updates.append)
        self.alerts: list[tuple[CaptureNotOnTill, ...]] = []
        self._alerted = asyncio.Event()
        self.counter.on_not_on_till(self._alert)

    async def __aenter__(self) -> LoggedRig:
        await self.payment_log.open()
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        await self.router.flush()
        await self.payment_log.close()

    def _alert(self, captures: tuple[CaptureNotOnTill, ...]) -> None:
        self.alerts.append(captures)
        if captures:
            self._alerted.set()

    async def alerted(self) -> tuple[CaptureNotOnTill, ...]:
        """The captures not on the till, once the counter raised its alert (a failure guard only)."""
        async with asyncio.timeout(30):
            await self._alerted.wait()
        return self.alerts[-1]

    async def log_line(self, payment_intent_id: str) -> tuple[str, int, str, str]:
        await self.router.flush()
        [entry] = [e for e in await self.payment_log.entries() if e.payment_intent_id == payment_intent_id]
        return entry.order_id, entry.amount_value, entry.currency, entry.status


def finalize(path: Path, order: str = ORDER) -> None:
    """The till finalizes (closes) the order, as a till does: its own write to its own table."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE orders SET status = 'Finalized' WHERE id = ?", [int(order)])


def expire_locks(path: Path, order: str = ORDER) -> None:
    with sqlite3.connect(path) as conn:
        past = format_utc(datetime.now(UTC) - timedelta(minutes=1))
        conn.execute("UPDATE order_locks SET expires_at = ? WHERE order_id = ?", [past, int(order)])


async def pay_at_table_locks(path: Path, lock_id: str, order: str = ORDER) -> None:
    """Pay at Table locks the order through the bridge's own rules (another lock holder)."""
    adapter = sqlite_pos(path)
    try:
        await adapter.create_order_lock(
            CreateOrderLockParams(
                headers=PAY_AT_TABLE,
                order_id=order,
                lock_id=lock_id,
                expiry=datetime.now(UTC) + timedelta(minutes=10),
            ),
            CallContext(trace_id="pay-at-table"),
        )
    finally:
        await adapter.close()


def intent_of(rest: RestSimulator) -> str:
    [intent] = rest.payment_intents
    return intent


@pytest.mark.logs_warnings("a captured card the POS cannot record yet is logged; our expired lock is not released")
async def test_a_capture_is_recorded_even_when_another_holder_locked_the_order_meanwhile(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    """Failed before the fix: the restarted bridge refused its own capture ("held by another
    lock"), marked the session done, recorded nothing and left the intent captured."""
    state = tmp_path / "state.db"
    pos = HeldPos(demo_db)
    async with Rig(rest, demo_db, state, busy_timeout_s=0.1) as first:
        session = await first.sale(1800)
        pos.hold()  # the card is being taken; the till now holds its database
        await first.until(lambda u: u.session_id == session and u.unrecorded_capture)
    pos.close()  # the bridge is gone (as if killed) with the capture waiting
    expire_locks(demo_db)  # its sale lock runs out…
    await pay_at_table_locks(demo_db, "pat-lock-1")  # …and Pay at Table locks the order
    assert locks_on(demo_db) == ["pat-lock-1"]

    async with LoggedRig(rest, demo_db, state) as second:
        assert await second.counter.resume() == 1
        final = await second.finished(session)
        assert (final.recorded, final.error, final.not_on_till) == (True, None, False)
        assert second.counter.captures_not_on_till() == ()
        # The same capture landed again (a second restart) counts once: the paymentIntentId.
        await second.counter.resume()
    async with LoggedRig(rest, demo_db, state) as third:
        assert await third.counter.resume() == 0
    assert paid(demo_db) == 1800
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute(
            "SELECT COUNT(*) FROM payments WHERE payment_intent_id = ?", [intent_of(rest)]
        ).fetchone() == (1,)
    assert locks_on(demo_db) == ["pat-lock-1"], "Pay at Table's lock is theirs: the counter never removes it"
    assert rest.payment_intents[intent_of(rest)]["status"] == "Captured", "nothing reversed"


@pytest.mark.logs_warnings("a capture the POS refused is logged as an error")
async def test_a_capture_for_an_order_the_till_closed_is_kept_as_not_on_the_till_until_refunded(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    """Failed before the fix: the session was marked done with nothing in the payment log, no
    alert, and the intent left captured."""
    state = tmp_path / "state.db"
    card_on_terminal = asyncio.Event()
    closed = asyncio.Event()

    async def terminal_waits_for_the_till(seconds: float) -> None:
        # The simulated terminal moves one step per poll: no poll until the till has closed the
        # order, so the card is captured after it whatever the speed of this machine.
        card_on_terminal.set()
        await closed.wait()
        await asyncio.sleep(seconds)

    async with LoggedRig(rest, demo_db, state, sleep=terminal_waits_for_the_till) as first:
        session = await first.sale(1500)
        await card_on_terminal.wait()
        finalize(demo_db)  # the till closes the order while the card is on the terminal
        closed.set()
        final = await first.finished(session)
        assert final.succeeded and not final.recorded and final.not_on_till
        assert final.error is not None and "not on the till" in final.error
        [alert] = await first.alerted()
        assert (alert.order_id, alert.amount, alert.session_id) == (
            ORDER, Money(value=1500, currency_code="GBP"), session
        )  # fmt: skip
        assert "Finalized" in alert.reason
        intent = intent_of(rest)
        assert await first.log_line(intent) == (ORDER, 1500, "GBP", NOT_ON_TILL)
        [kept] = await first.store.unfinished()
        assert (kept.session_id, kept.status) == (session, NOT_ON_TILL), "not marked done"
        with pytest.raises(SaleRefused, match="not on the till"):
            await first.counter.start_sale(ORDER, final.terminal_id or "", Money(value=100, currency_code="GBP"))

    # A restart: the capture is still not on the till, shown again, counted nowhere twice.
    async with LoggedRig(rest, demo_db, state) as second:
        assert await second.counter.resume() == 1
        [alert] = await second.alerted()
        assert (alert.order_id, alert.amount.value, alert.payment_intent_id) == (ORDER, 1500, intent)
        assert await second.log_line(intent) == (ORDER, 1500, "GBP", NOT_ON_TILL)
        assert len(await second.payment_log.entries()) == 1

        await second.counter.refund_not_on_till(session)  # the one click
        assert rest.payment_intents[intent]["status"] == "Reversed"
        assert second.alerts[-1] == ()
        assert second.counter.captures_not_on_till() == ()
        assert await second.log_line(intent) == (ORDER, 1500, "GBP", "Reversed")
        assert await second.store.unfinished() == []
        with pytest.raises(SaleRefused, match="no longer waiting"):
            await second.counter.refund_not_on_till(session)

    async with LoggedRig(rest, demo_db, state) as third:
        assert await third.counter.resume() == 0
        assert third.counter.captures_not_on_till() == ()
    assert paid(demo_db) == 0
