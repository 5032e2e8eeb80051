"""Answer a repeated mutating request once: the serving half of idempotency, over the store in
:mod:`epos_bridge.state.idempotency` (which says what the caller may rely on).

The session is handed ``IdempotentServe(store, dispatcher.handle)`` as its ``serve(text)``: each
frame is parsed once, here, a repeat of an answered request is answered from the store, and a
duplicate arriving while the first is still being served waits for the first's answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from epos_bridge.ports import AnswerStore, StoredAnswer
from epos_bridge.protocol.capabilities import WireMethod
from epos_bridge.protocol.jsonrpc import IncomingRequest, encode, printable_id, read_request, request_key
from epos_bridge.services.dispatcher import Served
from epos_bridge.services.tasks import TaskSet

log = logging.getLogger(__name__)

MUTATING_METHODS: frozenset[str] = frozenset(
    {
        WireMethod.CREATE_ORDER,
        WireMethod.CANCEL_ORDER_BY_ID,
        WireMethod.CREATE_ORDER_LOCK,
        WireMethod.EXTEND_ORDER_LOCK,
        WireMethod.DELETE_ORDER_LOCK,
        WireMethod.RECORD_ORDER_PAYMENT_BY_ID,
        WireMethod.CREATE_PARTY,
        WireMethod.UPDATE_PARTY,
        WireMethod.DELETE_PARTY_BY_ID,
        WireMethod.CREATE_RESERVATION,
        WireMethod.UPDATE_RESERVATION,
        WireMethod.DELETE_RESERVATION_BY_ID,
        WireMethod.HANDLE_EVENT,
    }
)
"""Methods with side effects on the POS; reads are simply served again."""

STORE_WAIT_S = 1.0
"""The longest an answer waits for the store (a lookup, or storing the answer)."""

Handle = Callable[[IncomingRequest], Awaitable[Served | None]]


class IdempotentServe:
    """Wraps the dispatcher's ``handle`` into the session's ``serve(text)``.

    The session stays ignorant of idempotency: it is handed ``IdempotentServe(store, handle)``.
    Each frame is parsed once, here, and the parsed request is what the dispatcher validates.
    """

    def __init__(
        self,
        store: AnswerStore,
        handle: Handle,
        *,
        methods: frozenset[str] = MUTATING_METHODS,
        store_wait_s: float = STORE_WAIT_S,
    ) -> None:
        self._store = store
        self._handle = handle
        self._methods = methods
        self._store_wait_s = store_wait_s
        # One entry per request being served; duplicates await the future. It resolves to the
        # reusable answer, or None when the first attempt produced nothing worth reusing.
        self._in_flight: dict[tuple[str, str, str], asyncio.Future[Served | None]] = {}
        self._storing = TaskSet("storing an answer", logger=log)

    async def __call__(self, text: str | bytes) -> Served | None:
        request = read_request(text)
        if request is None:
            return None
        method = request.method
        if not isinstance(method, str) or method not in self._methods:
            return await self._handle(request)
        started = time.perf_counter()
        key = (method, request_key(request.id), request.digest())
        while (pending := self._in_flight.get(key)) is not None:
            # shield: if *this* duplicate is cancelled, the first request's future is untouched.
            first = await asyncio.shield(pending)
            if first is not None:
                log.info(
                    "answered duplicate %s id %s with the first request's answer", method, printable_id(request.id)
                )
                return _replay(first.response_text, request.id, method, first.outcome, first.trace_id, started)
            # The first attempt failed: loop, and serve it ourselves if nobody else is.
        return await self._serve_once(request, key, started)

    async def flush(self) -> None:
        """Wait for answers still being stored (before the store closes)."""
        await self._storing.wait()

    async def _serve_once(self, request: IncomingRequest, key: tuple[str, str, str], started: float) -> Served | None:
        method, _, digest = key
        future: asyncio.Future[Served | None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        reusable: Served | None = None
        try:
            stored = await self._lookup(method, request.id)
            if stored is not None and stored.params_digest == digest:
                log.info("answered repeated %s id %s from the idempotency store", method, printable_id(request.id))
                reusable = _replay(stored.response_text, request.id, method, stored.outcome, stored.trace_id, started)
                return reusable
            if stored is not None:
                log.warning(
                    "%s id %s was answered before for different params: served as a new request",
                    method,
                    printable_id(request.id),
                )
            served = await self._handle(request)
            if served is not None and served.ok:
                await self._remember(method, request.id, digest, served)
                reusable = served
            return served
        finally:
            del self._in_flight[key]
            if not future.done():
                future.set_result(reusable)

    async def _lookup(self, method: str, request_id: Any) -> StoredAnswer | None:
        # A slow or broken state database must not stop the till answering Dojo; the adapters'
        # business-key de-duplication still guards against a double payment.
        try:
            return await asyncio.wait_for(self._store.get(method, request_id), self._store_wait_s)
        except TimeoutError:
            log.warning(
                "the idempotency store did not answer within %g s; serving %s without it", self._store_wait_s, method
            )
        except Exception:
            log.exception("could not read the idempotency store; serving %s without it", method)
        return None

    async def _remember(self, method: str, request_id: Any, digest: str, served: Served) -> None:
        answer = StoredAnswer(served.response_text, served.outcome, served.trace_id, served.debug_message, digest)
        task = self._storing.spawn(self._put(method, request_id, answer, served.trace_id))
        done, _ = await asyncio.wait({task}, timeout=self._store_wait_s)
        if not done:
            log.warning(
                "storing the answer to %s (trace %s) takes over %g s; answering now, it is stored when it can be",
                method,
                served.trace_id,
                self._store_wait_s,
            )

    async def _put(self, method: str, request_id: Any, answer: StoredAnswer, trace_id: str) -> None:
        try:
            await self._store.put(method, request_id, answer)
        except Exception:
            log.exception("could not store the answer to %s (trace %s)", method, trace_id)


def _replay(response_text: str, request_id: Any, method: str, outcome: str, trace_id: str, started: float) -> Served:
    """The stored answer re-addressed to ``request_id`` by JSON (the id may be any JSON type)."""
    document = json.loads(response_text)
    document["id"] = request_id
    return Served(
        request_id=request_id,
        method=method,
        outcome=outcome,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        response_text=encode(document),
        trace_id=trace_id,
        debug_message="replayed an earlier answer to the same request id",
    )
