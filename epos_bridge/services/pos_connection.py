"""One POS database as the bridge uses it: the adapter, its dispatcher and its POS-event relay.

Saving Settings may point the bridge at another database while Dojo's requests are being
served. The whole connection is swapped at once, and the old one is *retired*, not closed:
every request (and every counter payment step) that started on it finishes on it, and only
then is its adapter closed. No request fails because an installer pressed Save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from epos_bridge.domain.events import DomainEvent
from epos_bridge.ports import CallContext, ChangeSource, Outbox, PosAdapter, SweepsTheTill
from epos_bridge.protocol.entities import OrderBill
from epos_bridge.protocol.jsonrpc import IncomingRequest
from epos_bridge.protocol.params import OrderIdParams, PagedOrders, PagedTables, SearchOrdersParams, SearchTablesParams
from epos_bridge.services.dispatcher import Dispatcher, Served
from epos_bridge.services.pos_events import PosEventRelay, RelayStatus, SendEvent
from epos_bridge.services.tasks import TaskSet

log = logging.getLogger(__name__)

LOCK_SWEEP_S = 10.0
"""How often expired Dojo locks are released on the POS's own screens (a lock lasts minutes) and
recent reversals applied again there."""


class PosConnection:
    """``using()`` for any work on the adapter; ``retire()`` once it has been replaced."""

    def __init__(
        self,
        adapter: PosAdapter,
        *,
        changes: ChangeSource | None = None,
        publish: Callable[[DomainEvent], None] = lambda event: None,
        name: str = "POS",
    ) -> None:
        """``changes``: the adapter's change log (``PosAdapter.changes``); without one
        the connection sends no POS events."""
        self.adapter = adapter
        self._changes = changes
        self.name = name
        self.dispatcher = Dispatcher(adapter, publish=publish)
        self.relay: PosEventRelay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._users = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._retired = False

    @contextlib.asynccontextmanager
    async def using(self) -> AsyncIterator[PosAdapter]:
        """The adapter, kept open until the block ends even if the connection is retired."""
        self._users += 1
        self._idle.clear()
        try:
            yield self.adapter
        finally:
            self._users -= 1
            if self._users == 0:
                self._idle.set()

    async def handle(self, request: IncomingRequest) -> Served:
        async with self.using():
            return await self.dispatcher.handle(request)

    def start_relay(
        self,
        outbox: Outbox,
        send: SendEvent,
        *,
        source_key: str,
        on_status: Callable[[RelayStatus], None] | None = None,
    ) -> None:
        """POS events need the adapter's change log; an adapter without one sends none."""
        if self._changes is None:
            log.info("the %s adapter has no change log: POS events are not sent", self.name)
            return
        self.relay = PosEventRelay(self._changes, source_key, outbox, send, on_status=on_status)
        self._relay_task = asyncio.create_task(self.relay.run(), name=f"pos-events:{self.name}")

    def start_lock_sweep(self, every_s: float = LOCK_SWEEP_S) -> None:
        """Dojo locks shown on the POS's own screens are released there once they expire, and
        reversals a till's cart undid are applied again (:class:`epos_bridge.ports.SweepsTheTill`)."""
        if isinstance(self.adapter, SweepsTheTill) and self._sweep_task is None:
            self._sweep_task = asyncio.create_task(self._sweep(self.adapter, every_s), name=f"lock-sweep:{self.name}")

    async def _sweep(self, adapter: SweepsTheTill, every_s: float) -> None:
        while True:
            try:
                async with self.using():
                    released = await adapter.sweep_the_till()
                if released:
                    log.info("released %d expired Dojo lock(s) on the POS", released)
            except Exception as exc:  # the POS database may be busy or gone: the next sweep tries again
                log.warning("the POS could not be kept in step with Dojo now (expired locks, reversals): %s", exc)
            await asyncio.sleep(every_s)

    async def stop_relay(self) -> None:
        for task in (self._relay_task, self._sweep_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._relay_task = self._sweep_task = None

    async def retire(self) -> None:
        """Stop sending its POS events, wait for the work still using it, then close it."""
        if self._retired:
            return
        self._retired = True
        await self.stop_relay()
        await self._idle.wait()
        await self.dispatcher.drain()
        await self.adapter.close()


class PosConnections:
    """The POS connection in use, and the ones it replaced until their work has finished.

    Only the current connection's relay reads the change log and feeds the outbox: the old one's
    is stopped before the new one starts, so the outbox has one reader at a time.
    """

    def __init__(
        self,
        first: PosConnection,
        outbox: Outbox,
        send: SendEvent,
        *,
        on_status: Callable[[RelayStatus], None] | None = None,
    ) -> None:
        self.current = first
        self._outbox = outbox
        self._send = send
        self._on_status = on_status
        self._retiring = TaskSet("retiring POS connection")

    def start(self, relay_key: str) -> None:
        self.current.start_relay(self._outbox, self._send, source_key=relay_key, on_status=self._on_status)
        self.current.start_lock_sweep()

    async def switch(self, replacement: PosConnection, relay_key: str) -> None:
        previous, self.current = self.current, replacement
        await previous.stop_relay()
        self.start(relay_key)
        # Requests and counter steps already running on the old database finish there.
        self._retiring.spawn(previous.retire(), name=f"retire-{previous.name}")

    async def close(self) -> None:
        await self.current.stop_relay()
        await self._retiring.wait()
        await self.current.retire()


class CurrentPos:
    """Reads on whichever POS connection is current when each call starts (for views that
    outlive a Settings save, like the Verify dialog's pickers)."""

    def __init__(self, current: Callable[[], PosConnection]) -> None:
        self._current = current

    async def search_orders(self, params: SearchOrdersParams, ctx: CallContext) -> PagedOrders:
        async with self._current().using() as adapter:
            return await adapter.search_orders(params, ctx)

    async def search_tables(self, params: SearchTablesParams, ctx: CallContext) -> PagedTables:
        async with self._current().using() as adapter:
            return await adapter.search_tables(params, ctx)

    async def get_order_bill(self, params: OrderIdParams, ctx: CallContext) -> OrderBill:
        async with self._current().using() as adapter:
            return await adapter.get_order_bill(params, ctx)
