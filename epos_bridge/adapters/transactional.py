"""What every built-in storage shares: a store that runs each call in one transaction of its own,
handing the work a :class:`~epos_bridge.ports.PosRows` over its handle.

Plumbing only; nothing is decided here. Every call's work runs inside one store transaction that
owns the call's deadline (``ports.Deadline``), so an answer is always derived from what
committed. A storage over another store can reuse it as the built-ins do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from epos_bridge.domain.errors import NotFound
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.ports import Deadline, PosOrder, PosRows
from epos_bridge.protocol.capabilities import Capability

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


class RowStorage(Generic[H]):
    """The part of a :class:`~epos_bridge.ports.PosStorage` that is the same over any
    :class:`TransactionalStore`: ``rows_of`` views one transaction's handle as rows."""

    def __init__(
        self,
        store: TransactionalStore[H],
        rows_of: Callable[[H], PosRows],
        capabilities: frozenset[Capability] = frozenset(Capability),
    ) -> None:
        self._store = store
        self._rows_of = rows_of
        self._capabilities = capabilities

    @property
    def path(self) -> Path:
        return self._store.path

    def implemented_capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    async def read(self, work: Callable[[PosRows], T], deadline: Deadline | None = None) -> T:
        return await self._store.read(lambda handle: work(self._rows_of(handle)), deadline)

    async def write(self, work: Callable[[PosRows], T], deadline: Deadline | None = None) -> T:
        return await self._store.write(lambda handle: work(self._rows_of(handle)), deadline)

    async def close(self) -> None:
        await self._store.close()


class FindsOrders(Protocol):
    def order(self, order_id: str) -> PosOrder: ...


def last_known(rows: FindsOrders, registered: RegisteredOrder) -> PosOrder | None:
    """``rows.order`` of the key the registry last found the order under (its own wire id, for
    every built-in storage), once that is not the id Dojo asked for; ``None`` when it is gone."""
    wire_id = str(registered.key)
    if wire_id == registered.order_id:
        return None
    try:
        return rows.order(wire_id)
    except NotFound:
        return None
