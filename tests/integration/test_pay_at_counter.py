"""Pay at counter against the real REST simulator and a real demo POS database.

Terminal sessions in the simulator move one step per poll, so each test polls fast (10 ms).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from epos_bridge.adapters.sqlmap import setup as sqlmap_setup
from epos_bridge.adapters.sqlmap.mapping import load as load_mapping
from epos_bridge.dojo_api import DojoApiError, DojoClient
from epos_bridge.domain.events import DomainEvent, LockCreated, LockReleased, PaymentRecorded
from epos_bridge.ports import CallContext, PosAdapter
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.entities import Money
from epos_bridge.protocol.params import OrderIdParams, RecordOrderPaymentParams
from epos_bridge.services.counter import CounterPayments, SaleRefused, SessionUpdate
from epos_bridge.services.pos_connection import PosConnection
from epos_bridge.sim.rest import RestSimulator
from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID
from epos_bridge.state.terminal_sessions import TerminalSessionStore
from tests.helpers.pos import sqlite_pos, sqlmap_pos

ORDER = "8"  # demo: T12-0008, nothing paid yet


@pytest.fixture
async def rest() -> AsyncIterator[RestSimulator]:
    async with RestSimulator(DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID) as simulator:
        yield simulator


class Rig:
    def __init__(
        self,
        rest: RestSimulator,
        demo_db: Path,
        state: Path,
        *,
        busy_timeout_s: float = 5.0,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        adapter: PosAdapter | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(trust_env=False)
        self.client = DojoClient(
            self.http,
            credentials=DojoCredentials(DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID),
            base_url=rest.base_url,
            allow_insecure=True,
        )
        self.adapter = adapter or sqlite_pos(demo_db, busy_timeout_s=busy_timeout_s)
        connection = PosConnection(self.adapter)
        self.pos = lambda: connection
        self.store = TerminalSessionStore(state, clock=wall_clock)
        self.events: list[DomainEvent] = []
        self.updates: list[SessionUpdate] = []
        self.counter = CounterPayments(
            self.client,
            self.pos,
            self.store,
            poll_s=0.01,
            publish=self.events.append,
            wall_clock=wall_clock,
            sleep=sleep,
        )
        self.counter.on_update(self.updates.append)

    async def __aenter__(self) -> Rig:
        await self.store.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.counter.stop()
        await self.store.close()
        await self.adapter.close()
        await self.http.aclose()

    async def until(self, seen: Callable[[SessionUpdate], bool]) -> SessionUpdate:
        """The first update matching ``seen``; the terminal panel waits the same way, by updates.
        The timeout is a failure guard only."""
        async with asyncio.timeout(30):
            while True:
                matching = [u for u in self.updates if seen(u)]
                if matching:
                    return matching[-1]
                await asyncio.sleep(0.01)

    async def sale(self, pence: int) -> str:
        """A counter sale of ``pence`` (GBP) for :data:`ORDER` on the first available terminal."""
        return await self.counter.start_sale(
            ORDER, await available_terminal(self), Money(value=pence, currency_code="GBP")
        )

    async def finished(self, session_id: str) -> SessionUpdate:
        return await self.until(lambda u: u.session_id == session_id and u.final)


def paid(path: Path, order: str = ORDER) -> int:
    with sqlite3.connect(path) as conn:
        value = conn.execute(
            "SELECT COALESCE(SUM(paid_amount), 0) FROM payments WHERE order_id = ? AND status NOT IN ('Reversed','Refunded','Canceled')",
            [order],
        ).fetchone()[0]
    return int(value)


async def available_terminal(rig: Rig) -> str:
    terminals = CounterPayments.available(await rig.counter.terminals())
    assert terminals, "the simulator offers available terminals"
    return terminals[0].id


async def test_a_sale_ends_captured_and_the_order_is_paid_once(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        amount = await rig.counter.outstanding(ORDER)
        assert amount.value > 0
        session = await rig.counter.start_sale(ORDER, await available_terminal(rig), amount)
        final = await rig.finished(session)
        assert final.succeeded and final.recorded and final.status == "Captured"
        shown = {n for u in rig.updates for n in u.notifications}
        assert {"PresentCard", "EnterPin", "PleaseWait"} <= shown  # Dojo's codes; the UI words them
        assert paid(demo_db) == amount.value
        # Locked like Dojo's own products lock, paid, then released.
        assert [type(e) for e in rig.events] == [LockCreated, PaymentRecorded, LockReleased]
        # The final status seen a second time (a second follower) records nothing more.
        await rig.counter.resume()
        assert paid(demo_db) == amount.value


async def test_a_sale_on_a_floreant_ticket_ends_captured_and_lands_in_its_transactions_once(
    rest: RestSimulator, tmp_path: Path
) -> None:
    """Pay at counter through the mapped-SQL adapter: the Floreant demo venue's first open ticket."""
    floreant = load_mapping("floreant")
    path = tmp_path / "floreant.db"
    sqlmap_setup.init(path, floreant, demo=True, now=datetime.now(UTC))
    async with Rig(rest, path, tmp_path / "state.db", adapter=sqlmap_pos(path, floreant)) as rig:
        order = "1"
        amount = await rig.counter.outstanding(order)
        assert amount.value > 0
        session = await rig.counter.start_sale(order, await available_terminal(rig), amount)
        final = await rig.finished(session)
        assert final.succeeded and final.recorded and final.status == "Captured"
        assert [type(e) for e in rig.events] == [LockCreated, PaymentRecorded, LockReleased]
        await rig.counter.resume()
        with sqlite3.connect(path) as conn:
            cards = conn.execute(
                "SELECT ROUND(tr.AMOUNT * 100), b.STATUS FROM TRANSACTIONS tr JOIN EPOS_BRIDGE_PAYMENTS b"
                " ON b.POS_PAYMENT_ID = tr.ID WHERE tr.TICKET_ID = 1"
            ).fetchall()
            (due,) = conn.execute("SELECT DUE_AMOUNT FROM TICKET WHERE ID = 1").fetchone()
        assert cards == [(amount.value, "Recorded")]  # as the reference adapter: no intent event came
        assert due == 0


async def test_a_restart_mid_session_resumes_and_records_once(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    async with Rig(rest, demo_db, state) as first:
        first.counter = CounterPayments(first.client, first.pos, first.store, poll_s=60)  # never gets past step one
        first.counter.on_update(first.updates.append)
        session = await first.sale(1000)
        await first.until(lambda u: u.session_id == session)  # it followed the session to its first step
    assert paid(demo_db) == 0
    async with Rig(rest, demo_db, state) as second:
        assert await second.counter.resume() == 1
        final = await second.finished(session)
        assert final.recorded
    assert paid(demo_db) == 1000
    async with Rig(rest, demo_db, state) as third:
        assert await third.counter.resume() == 0


@pytest.mark.parametrize(("script", "status"), [("decline", "Declined"), ("expire", "Expired")])
async def test_unsuccessful_sessions_record_nothing(
    rest: RestSimulator, demo_db: Path, tmp_path: Path, script: str, status: str
) -> None:
    rest.next_session_script(script)
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        session = await rig.sale(500)
        final = await rig.finished(session)
        assert (final.status, final.succeeded, final.recorded) == (status, False, False)
    assert paid(demo_db) == 0


@pytest.mark.parametrize(("accepted", "expected_paid"), [(True, 700), (False, 0)])
async def test_a_signature_check_is_answered_and_only_acceptance_records(
    rest: RestSimulator, demo_db: Path, tmp_path: Path, accepted: bool, expected_paid: int
) -> None:
    rest.next_session_script("signature")
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        session = await rig.sale(700)
        await rig.until(lambda u: u.awaiting_signature)
        await rig.counter.answer_signature(session, accepted)
        final = await rig.finished(session)
        assert final.succeeded is accepted
    assert paid(demo_db) == expected_paid


async def test_a_session_can_be_cancelled_while_waiting_for_the_card(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    cancelled = asyncio.Event()

    async def waiting_for_the_card(seconds: float) -> None:
        # The simulated terminal moves one step per poll: no poll until the cancel is in, so the
        # card cannot be taken first however slowly this test runs.
        await cancelled.wait()
        await asyncio.sleep(seconds)

    async with Rig(rest, demo_db, tmp_path / "state.db", sleep=waiting_for_the_card) as rig:
        session = await rig.sale(500)
        await rig.until(lambda u: u.cancellable)
        await rig.counter.cancel(session)
        cancelled.set()
        final = await rig.finished(session)
        assert final.status == "Canceled"
    assert paid(demo_db) == 0


async def test_a_matched_refund_stops_the_payment_counting(rest: RestSimulator, demo_db: Path, tmp_path: Path) -> None:
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        terminal = await available_terminal(rig)
        sale = await rig.counter.start_sale(ORDER, terminal, Money(value=900, currency_code="GBP"))
        await rig.finished(sale)
        intent = next(e.payment_intent_id for e in rig.events if isinstance(e, PaymentRecorded))
        assert paid(demo_db) == 900
        refund = await rig.counter.start_matched_refund(intent, ORDER, terminal, Money(value=900, currency_code="GBP"))
        final = await rig.finished(refund)
        assert final.succeeded and final.recorded
    assert paid(demo_db) == 0


async def test_an_unlinked_refund_touches_no_order(rest: RestSimulator, demo_db: Path, tmp_path: Path) -> None:
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        session = await rig.counter.start_unlinked_refund(
            await available_terminal(rig), Money(value=250, currency_code="GBP")
        )
        final = await rig.finished(session)
        assert final.succeeded and not final.recorded
    assert paid(demo_db) == 0


async def test_an_order_open_on_a_till_is_refused_before_any_card_is_charged(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        with pytest.raises(SaleRefused, match="open on till TILL-2"):
            await rig.counter.start_sale("20", await available_terminal(rig), Money(value=100, currency_code="GBP"))
        with pytest.raises(SaleRefused, match="outstanding"):
            await rig.counter.start_sale(
                ORDER, await available_terminal(rig), Money(value=10_000_000, currency_code="GBP")
            )
    assert rest.payment_intents == {}
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM order_locks").fetchone()[0] == 0


# --- a captured card is a fact (issue 11, item 7) ------------------------------------------------


def locks_on(path: Path, order: str = ORDER) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT lock_id FROM order_locks WHERE order_id = ?", [order])]


class HeldPos:
    """The POS holding its database's write lock (a till stuck saving) until released."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)

    def hold(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self.release()
        self._conn.close()


@pytest.mark.logs_warnings("a captured card the POS cannot record yet is logged")
async def test_a_capture_the_pos_cannot_record_keeps_the_order_locked_and_lands_once(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    pos = HeldPos(demo_db)
    async with Rig(rest, demo_db, tmp_path / "state.db", busy_timeout_s=0.1) as rig:
        terminal = await available_terminal(rig)
        session = await rig.counter.start_sale(ORDER, terminal, Money(value=3000, currency_code="GBP"))
        pos.hold()  # the card is being taken; the till now holds its database
        try:
            waiting = await rig.until(lambda u: u.session_id == session and u.unrecorded_capture)
            assert (waiting.final, waiting.succeeded, waiting.terminal_id) == (False, True, terminal)
            assert rig.counter.unrecorded_captures() == {ORDER: session}
            with pytest.raises(SaleRefused, match="not on the till yet"):
                await rig.counter.start_sale(ORDER, terminal, Money(value=100, currency_code="GBP"))
            assert paid(demo_db) == 0
        finally:
            pos.close()
        final = await rig.finished(session)
        assert final.recorded and not final.unrecorded_capture and final.error is None
    assert paid(demo_db) == 3000
    assert locks_on(demo_db) == [], "released only once the payment was on the till"
    assert rig.counter.unrecorded_captures() == {}


@pytest.mark.logs_warnings("a captured card the POS cannot record yet is logged")
async def test_a_capture_not_yet_recorded_lands_once_after_a_restart(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    pos = HeldPos(demo_db)
    async with Rig(rest, demo_db, state, busy_timeout_s=0.1) as first:
        session = await first.sale(1234)
        pos.hold()
        await first.until(lambda u: u.session_id == session and u.unrecorded_capture)
    assert locks_on(demo_db) != [], "the bridge stopped with the card taken: the order stays locked"
    pos.close()
    async with Rig(rest, demo_db, state) as second:
        assert await second.counter.resume() == 1
        assert second.counter.unrecorded_captures() == {ORDER: session}
        final = await second.finished(session)
        assert final.recorded
    assert paid(demo_db) == 1234
    assert locks_on(demo_db) == []


@pytest.mark.logs_warnings("a POST without an answer is logged")
async def test_a_terminal_session_post_that_times_out_is_followed_until_the_card_is_taken(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    rest.lose_next_session_answer(504, create=True)
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        session = await rig.sale(2500)
        assert session.startswith("pending:")
        assert locks_on(demo_db) != [], "a session may be capturing: the order stays locked"
        final = await rig.finished(session)
        assert final.succeeded and final.recorded
    assert paid(demo_db) == 2500
    assert locks_on(demo_db) == []


@pytest.mark.logs_warnings("a POST without an answer is logged")
async def test_a_session_that_never_started_lets_the_lock_go_only_when_none_can_capture(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    rest.lose_next_session_answer(504, create=False)
    wall = [1_000_000.0]
    async with Rig(rest, demo_db, tmp_path / "state.db", wall_clock=lambda: wall[0]) as rig:
        session = await rig.sale(2500)
        await rig.until(lambda u: u.session_id == session and u.status == "CreatingSession")
        await asyncio.sleep(0.1)
        assert locks_on(demo_db) != [], "still within the time a session could capture"
        wall[0] += 11 * 60
        final = await rig.finished(session)
        assert (final.succeeded, final.recorded) == (False, False)
    assert paid(demo_db) == 0
    assert locks_on(demo_db) == []


async def test_a_terminal_session_refused_outright_releases_the_lock_at_once(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    rest.lose_next_session_answer(400, create=False)
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        with pytest.raises(DojoApiError):
            await rig.sale(100)
        assert await rig.counter.resume() == 0
    assert locks_on(demo_db) == []


async def test_a_matched_refund_of_a_payment_with_a_tip_returns_the_tip_too(
    rest: RestSimulator, demo_db: Path, tmp_path: Path
) -> None:
    async with Rig(rest, demo_db, tmp_path / "state.db") as rig:
        rest.payment_intents["pi_tipped"] = {
            "id": "pi_tipped", "status": "Captured", "amount": {"value": 3000, "currencyCode": "GBP"},
            "refundedAmount": 0, "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T10:00:00Z",
        }  # fmt: skip
        ctx = CallContext(trace_id="t")
        params = RecordOrderPaymentParams(
            order_id=ORDER,
            payment_intent_id="pi_tipped",
            paid_amount=Money(value=3000, currency_code="GBP"),
            tips_amount=Money(value=450, currency_code="GBP"),
        )
        await rig.adapter.record_order_payment(params, ctx)
        terminal = await available_terminal(rig)
        with pytest.raises(SaleRefused, match="tip included"):
            await rig.counter.start_matched_refund("pi_tipped", ORDER, terminal, Money(value=3000, currency_code="GBP"))
        refund = await rig.counter.start_matched_refund(
            "pi_tipped", ORDER, terminal, Money(value=3450, currency_code="GBP")
        )
        final = await rig.finished(refund)
        assert final.succeeded and final.recorded
        order = await rig.adapter.get_order(OrderIdParams(order_id=ORDER), CallContext(trace_id="t"))
    assert rest.payment_intents["pi_tipped"]["refundedAmount"] == 3450, "the whole card payment went back"
    assert (order.paid_amount, order.tips_amount) == (
        Money(value=0, currency_code="GBP"),
        Money(value=0, currency_code="GBP"),
    ), "and the whole payment, tip included, stopped counting"
