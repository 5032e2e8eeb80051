"""JSON-RPC request in, response out; no I/O of its own.

Validates ``params`` through the wire models (``InvalidRequest`` naming the field), routes to
the POS adapter, and turns every failure into an EPOSError with a ``traceId``. A Python
traceback never reaches the wire: unexpected exceptions are logged here with the trace id and
answered as ``UnexpectedError``. Frames without an ``id`` are logged and dropped (contract
§1.2, §6 A7).

What the caller may rely on:

* A frame is parsed once (:func:`epos_bridge.protocol.jsonrpc.read_request`); whoever wraps
  the dispatcher (``services/idempotent_serve.py``) hands the parsed :class:`IncomingRequest`
  to :meth:`Dispatcher.handle`.
* The answer is the adapter's verdict. The deadline travels to the adapter in the
  :class:`CallContext` and belongs to its transaction (refused once due, checked before
  commit, rolled back when late); the dispatcher never gives up on work already started, so a
  write it answers "failed" never commits later.
* Requests about the same business key (contract §1.2: a paymentIntentId, an order's lock, a
  Dojo id) are served one after another in this process, so a retry that Dojo sends while the
  first attempt is still running sees that attempt's committed result, never a race with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from epos_bridge.domain.errors import EposFailure, InvalidRequest
from epos_bridge.domain.events import DomainEvent
from epos_bridge.ports import CallContext, Deadline, PosAdapter
from epos_bridge.protocol.base import WireModel
from epos_bridge.protocol.capabilities import Capability, WireMethod, capabilities_of
from epos_bridge.protocol.entities import EventType, PaymentIntentEvent
from epos_bridge.protocol.jsonrpc import (
    EPOSError,
    EPOSErrorType,
    IncomingRequest,
    encode,
    encode_success,
    error_response,
    new_trace_id,
    printable_id,
    read_request,
)
from epos_bridge.protocol.methods import METHODS, PARAMS_MODEL, MethodSpec
from epos_bridge.protocol.params import (
    EmptyResult,
    HandleEventParams,
    WithHeaders,
)

log = logging.getLogger(__name__)

Result = WireModel | list[Any] | dict[str, Any]
Route = Callable[[PosAdapter, Any, CallContext], Awaitable[Result]]

DEFAULT_DEADLINE_S = 10.0
"""When an answer is due. The adapter's transaction owns it: a write not started by then is
refused, one running past it is rolled back (contract §1.2 (rec): reply within a few seconds)."""


@dataclass(frozen=True)
class Served:
    """What was answered, for the request log and the idempotency store."""

    request_id: Any
    method: str
    outcome: str  # "ok" or the EPOSErrorType
    elapsed_ms: float
    response_text: str
    trace_id: str
    debug_message: str | None = None
    """The failure as the venue reads it (the request log): may name the POS file, which the
    ``debugMessage`` sent to Dojo never does."""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _route(spec: MethodSpec) -> Route:
    assert spec.port_call is not None
    name = spec.port_call

    async def call(adapter: PosAdapter, params: Any, ctx: CallContext) -> Result:
        result: Result = await getattr(adapter, name)(params, ctx)
        return EmptyResult() if spec.answers_empty else result

    call.__name__ = name
    return call


ROUTES: dict[WireMethod, Route] = {
    method: _route(spec) for method, spec in METHODS.items() if spec.port_call is not None
}
"""Generated from :data:`epos_bridge.protocol.methods.METHODS`: a method is added in one table."""

PAYMENT_INTENT_EVENT_TYPES = frozenset(t.value for t in EventType)


def business_key(method: WireMethod, params: WithHeaders) -> tuple[str, str] | None:
    """What a writing request is about (see :attr:`MethodSpec.serial_key`), or ``None``."""
    by = METHODS[method].serial_key
    return None if by is None else (by[0], str(getattr(params, by[1])))


class KeyedLocks:
    """One asyncio lock per key, alive only while someone holds or waits for it.

    The key stays taken until the work *finishes*, even if the caller is cancelled (the
    connection dropped, the bridge is stopping): the database work goes on in its thread and may
    still commit, so a retry must wait for it rather than race it.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._running: set[asyncio.Future[Result]] = set()
        """Work whose caller may have given up, kept referenced until it finishes."""

    async def run(self, key: tuple[str, str] | None, work: Callable[[], Awaitable[Result]]) -> Result:
        if key is None:
            return await work()
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._leave(key)
            raise
        task: asyncio.Future[Result] = asyncio.ensure_future(work())
        self._running.add(task)
        task.add_done_callback(lambda done: self._finished(key, lock, done))
        return await asyncio.shield(task)

    def _finished(self, key: tuple[str, str], lock: asyncio.Lock, done: asyncio.Future[Result]) -> None:
        self._running.discard(done)
        lock.release()
        self._leave(key)
        if not done.cancelled():
            done.exception()  # retrieved: a caller that gave up must not leave it "never retrieved"

    def _leave(self, key: tuple[str, str]) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    async def drain(self) -> None:
        """Wait for work whose callers gave up (before the adapter under it closes)."""
        while self._running:
            await asyncio.wait(set(self._running))

    def __len__(self) -> int:
        return len(self._locks)


class Dispatcher:
    def __init__(
        self,
        adapter: PosAdapter,
        *,
        publish: Callable[[DomainEvent], None] = lambda event: None,
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:
        self._adapter = adapter
        self._publish = publish
        self._deadline_s = deadline_s
        self._implemented = adapter.implemented_capabilities()
        self._one_at_a_time = KeyedLocks()

    @property
    def adapter(self) -> PosAdapter:
        return self._adapter

    async def drain(self) -> None:
        """Wait for adapter work still running after its request was cancelled (the link
        dropped, the bridge is stopping): it may still commit, so its adapter must stay open."""
        await self._one_at_a_time.drain()

    async def handle_text(self, text: str | bytes) -> Served | None:
        """Serve one frame. ``None`` means the frame had no id and was dropped."""
        request = read_request(text)
        return None if request is None else await self.handle(request)

    async def handle(self, request: IncomingRequest) -> Served:
        """Serve one parsed request and answer it from the adapter's verdict."""
        started = time.perf_counter()
        trace_id = new_trace_id()
        ctx = CallContext(trace_id=trace_id, deadline=Deadline.after(self._deadline_s))
        try:
            result = await self._serve(request, ctx)
            response_text = encode_success(request.id, request.method, result)
            outcome, message = "ok", None
        except EposFailure as failure:
            ctx.record(*failure.events)
            # Dojo gets the public text (no POS path); the request log and Served keep the local one.
            outcome, message = failure.error_type.value, failure.message
            public = self._error(failure.error_type, failure.public_message, trace_id)
            response_text = encode(error_response(request.id, request.method, public))
        except Exception:
            log.exception("unexpected failure serving %a (trace %s)", str(request.method)[:80], trace_id)
            outcome, message = EPOSErrorType.UNEXPECTED_ERROR.value, f"internal error in the bridge (trace {trace_id})"
            response_text = encode(
                error_response(
                    request.id, request.method, self._error(EPOSErrorType.UNEXPECTED_ERROR, message, trace_id)
                )
            )
        self._publish_all(ctx)
        return Served(
            request_id=request.id,
            method=str(request.method),
            outcome=outcome,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            response_text=response_text,
            trace_id=trace_id,
            debug_message=message,
        )

    async def _serve(self, request: IncomingRequest, ctx: CallContext) -> Result:
        method = self._method(request.method)
        params = validate_params(method, request.params)
        ctx.headers = params.headers
        if method is WireMethod.HANDLE_EVENT:
            assert isinstance(params, HandleEventParams)
            event_params = params
            return await self._one_at_a_time.run(
                business_key(method, params), lambda: self._handle_event(event_params, ctx)
            )
        route = ROUTES[method]
        return await self._one_at_a_time.run(business_key(method, params), lambda: route(self._adapter, params, ctx))

    def _method(self, method_name: Any) -> WireMethod:
        if not isinstance(method_name, str):
            raise InvalidRequest("method must be a string")
        try:
            method = WireMethod(method_name)
        except ValueError:
            raise InvalidRequest(f"unknown method {method_name[:80]!a}") from None
        if method is not WireMethod.HANDLE_EVENT and not (capabilities_of(method) & self._implemented):
            raise InvalidRequest(f"{method.value} is not supported by this POS")
        return method

    async def _handle_event(self, params: HandleEventParams, ctx: CallContext) -> EmptyResult:
        # contract §3.22 (rec): acknowledge event types we do not know, or did not register.
        capability_name = f"HandleEvent:{params.event}"
        if params.event not in PAYMENT_INTENT_EVENT_TYPES or Capability(capability_name) not in self._implemented:
            log.info("acknowledged an event of unhandled type %a (id %s)", params.event[:80], printable_id(params.id))
            return EmptyResult()
        try:
            event = PaymentIntentEvent.model_validate(params.data)
        except ValidationError as exc:
            raise InvalidRequest(describe_validation_error(exc, prefix="params.data")) from None
        await self._adapter.handle_payment_intent_event(params, event, ctx)
        return EmptyResult()

    def _publish_all(self, ctx: CallContext) -> None:
        for event in ctx.events:
            try:
                self._publish(event)
            except Exception:
                log.exception("a subscriber failed on %s", type(event).__name__)

    @staticmethod
    def _error(error_type: EPOSErrorType, message: str | None, trace_id: str) -> EPOSError:
        return EPOSError(error_type=error_type, debug_message=_short(message), trace_id=trace_id)


def validate_params(method: WireMethod, raw: Any) -> WithHeaders:
    """The method's params model from the parsed JSON; ``InvalidRequest`` naming the field."""
    if raw is None and method is WireMethod.LIST_AREAS:
        return WithHeaders()  # contract §1.3 (rec): ListAreasV1's params object is optional.
    if not isinstance(raw, dict):
        raise InvalidRequest("params: required, and must be a JSON object")
    unencodable = _find_lone_surrogate(raw, "params")
    if unencodable is not None:
        raise InvalidRequest(f"{unencodable}: contains a lone UTF-16 surrogate, which is not text")
    try:
        params = PARAMS_MODEL[method].model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc, prefix="params")) from None
    return params


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _find_lone_surrogate(value: Any, where: str) -> str | None:
    """Where in a parsed JSON value a string holds a lone surrogate (which SQLite, file names and
    UTF-8 cannot take), or ``None``. JSON parsing has already paired the valid ones."""
    if isinstance(value, str):
        return where if _LONE_SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _LONE_SURROGATE.search(key):
                return f"{where} (a key)"
            found = _find_lone_surrogate(item, f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_lone_surrogate(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """``params.cursor.limit: Input should be a valid integer`` — names the field, short."""
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        location = ".".join(str(part) for part in error["loc"])
        if prefix:
            location = f"{prefix}.{location}" if location else prefix
        parts.append(f"{location or 'request'}: {error['msg']}")
    more = len(exc.errors()) - 3
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _short(message: str | None, limit: int = 300) -> str | None:
    if message is None or len(message) <= limit:
        return message
    return message[: limit - 1] + "…"
