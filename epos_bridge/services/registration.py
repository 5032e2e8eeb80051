"""Capability registration (contract §2): tell Dojo what this POS implements, and keep trying.

``PUT /epos/integrations/ws`` replaces the whole set, so the full list goes every time, at
start-up and whenever the settings change (*(rec)*), then ``GET /epos/integrations`` is read back
and compared. One loop at a time: a new one replaces one still retrying, which is gone before the
new one starts, and restarts and stops take turns (settings saved twice quickly must not leave two
loops, nor a stop racing a restart one loop after the stop). One registration at a time too, the
loop's and one asked for directly (:meth:`Registration.register`). A failure is retried on the
bridge's one schedule (:mod:`epos_bridge.services.retry`), a rejected key the way the gateway
retries it. Listeners hear every new result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo_errors import AuthRejected, DojoApiError
from epos_bridge.protocol.dojo_rest import Integrations, RegistrationState, WsIntegration
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.retry import Backoff

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class CapabilityRegistry(Protocol):
    """The two Dojo calls registration makes (``dojo_api.DojoClient`` has both)."""

    async def register_capabilities(self, capabilities: Iterable[Capability]) -> list[WsIntegration]: ...

    async def get_integrations(self) -> Integrations: ...


class Registration:
    """``restart()`` after start-up and each settings change; ``state`` is the latest result."""

    def __init__(
        self,
        registry: CapabilityRegistry,
        implemented: Callable[[], frozenset[Capability]],
        *,
        sleep: Sleep = asyncio.sleep,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.registry = registry
        """Swapped when the Dojo settings change; the next attempt uses the new one."""
        self._implemented = implemented
        self._sleep = sleep
        self._backoff = backoff
        self.state = RegistrationState()
        self._listeners: Listeners[RegistrationState] = Listeners("registration")
        self._loop: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()
        """Held while a restart or stop replaces :attr:`_loop`: they take turns."""
        self._registering = asyncio.Lock()
        """Held for one PUT-then-GET: never two registrations at once."""

    def on_change(self, listener: Callable[[RegistrationState], None]) -> Callable[[], None]:
        return self._listeners.add(listener)

    async def register(self) -> RegistrationState:
        """PUT the full capability list, then read back what Dojo has; never raises. One at a time:
        a call while another registers waits for it, then registers again (the settings may have
        changed meanwhile)."""
        async with self._registering:
            return await self._register_once()

    async def _register_once(self) -> RegistrationState:
        implemented = self._implemented()
        try:
            await self.registry.register_capabilities(implemented)
            report = (await self.registry.get_integrations()).compare(implemented)
            state = RegistrationState(report=report, at=datetime.now(UTC))
            log.info("registered %d capabilities with Dojo (%s)", len(implemented),
                     "in sync" if report.in_sync else "differs")  # fmt: skip
        except DojoApiError as exc:
            state = RegistrationState(error=str(exc), at=datetime.now(UTC), auth_rejected=isinstance(exc, AuthRejected))
            log.warning("capability registration failed: %s", exc)
        self.state = state
        self._listeners.emit(state)
        return state

    async def restart(self) -> None:
        """Start registering again, replacing a loop that is still retrying (gone before the new one
        starts). Concurrent restarts take turns: the last one's loop is the one left running."""
        async with self._turn:
            await self._stop_loop()
            self._loop = asyncio.get_running_loop().create_task(self._keep_registered(), name="registration")

    async def stop(self) -> None:
        """End the loop; a restart in progress finishes first, so no loop is left after this."""
        async with self._turn:
            await self._stop_loop()

    async def _stop_loop(self) -> None:
        previous, self._loop = self._loop, None
        if previous is not None:
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)

    async def _keep_registered(self) -> None:
        retry = self._backoff()
        while (state := await self.register()).error is not None:
            await self._sleep(retry.next_delay("auth_failed" if state.auth_rejected else "retry"))
