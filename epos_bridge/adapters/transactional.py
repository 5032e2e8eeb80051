"""What both built-in adapters share: a store that runs each call in one transaction of its own.

The adapter decides nothing here; this is plumbing only. Every call's work runs inside one store
transaction that owns the call's deadline (``ports.CallContext``), so an answer is always derived
from what committed. A new adapter over another store can reuse it as the two built-ins do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from epos_bridge.domain import locks
from epos_bridge.ports import CallContext, Clock, Deadline, SystemClock
from epos_bridge.protocol import params as wire
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.entities import Order

T = TypeVar("T")
H = TypeVar("H")
H_co = TypeVar("H_co", covariant=True)


class TransactionalStore(Protocol[H_co]):
    """A POS store (an SQLite file, a folder of JSON files) whose ``read``/``write`` run ``work``
    on a handle in one transaction that refuses to commit after ``deadline``."""

    @property
    def path(self) -> Path: ...

    async def read(self, work: Callable[[H_co], T], deadline: Deadline | None = None) -> T: ...

    async def write(self, work: Callable[[H_co], T], deadline: Deadline | None = None) -> T: ...

    async def close(self) -> None: ...


class StoreBackedAdapter(ABC, Generic[H]):
    """The part of a ``PosAdapter`` that is the same over any :class:`TransactionalStore`."""

    def __init__(self, store: TransactionalStore[H], clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or SystemClock()

    @property
    def path(self) -> Path:
        return self._store.path

    def implemented_capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    async def close(self) -> None:
        await self._store.close()

    def _now(self) -> datetime:
        return self._clock.now()

    async def _read(self, ctx: CallContext, work: Callable[[H], T]) -> T:
        return await self._store.read(work, ctx.deadline)

    async def _write(self, ctx: CallContext, work: Callable[[H], T]) -> T:
        """Events ``work`` records reach listeners only if its transaction commits."""
        return await ctx.transaction(self._store.write, work)

    # --- order locks: create and extend share one shape ---------------------------------------

    async def create_order_lock(self, params: wire.CreateOrderLockParams, ctx: CallContext) -> Order:
        return await self._change_lock(params, ctx, locks.decide_create)

    async def extend_order_lock(self, params: wire.ExtendOrderLockParams, ctx: CallContext) -> None:
        await self._change_lock(params, ctx, locks.decide_extend)

    @abstractmethod
    async def _change_lock(
        self, params: wire.CreateOrderLockParams, ctx: CallContext, decide: locks.LockDecision
    ) -> Order:
        """In one write: read the order and its lock, let ``decide`` rule, store what it decided,
        record its events; the order as stored."""
