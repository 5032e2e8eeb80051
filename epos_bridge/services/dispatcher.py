"""JSON-RPC request text in, response text out; no I/O of its own.

Validates ``params`` through the wire models (``InvalidRequest`` naming the field), routes to
the POS adapter, and turns every failure into an EPOSError with a ``traceId``. A Python
traceback never reaches the wire: unexpected exceptions are logged here with the trace id and
answered as ``UnexpectedError``. Frames without an ``id`` are logged and dropped (contract
§1.2, §6 A7).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from epos_bridge.domain.errors import EposFailure, InvalidRequest
from epos_bridge.domain.events import DomainEvent
from epos_bridge.ports import CallContext, PosAdapter
from epos_bridge.protocol.base import WireModel
from epos_bridge.protocol.capabilities import Capability, WireMethod, capabilities_of
from epos_bridge.protocol.entities import EventType, PaymentIntentEvent
from epos_bridge.protocol.jsonrpc import (
    EPOSError,
    EPOSErrorType,
    UnreadableFrame,
    encode,
    error_response,
    peek_request,
    success_response,
)
from epos_bridge.protocol.methods import PARAMS_MODEL
from epos_bridge.protocol.params import EmptyResult, HandleEventParams, WithHeaders

log = logging.getLogger(__name__)

Result = WireModel | list[Any] | dict[str, Any]
Route = Callable[[PosAdapter, Any, CallContext], Awaitable[Result]]

DEFAULT_DEADLINE_S = 10.0
"""Last-resort answer time. Adapters give up sooner (SQLite busy timeout 5 s), so a slow
database is reported as the adapter's clear error, not as this deadline."""


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

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


async def _empty(result: Awaitable[None]) -> EmptyResult:
    await result
    return EmptyResult()


ROUTES: dict[WireMethod, Route] = {
    WireMethod.SEARCH_ORDERS: lambda a, p, c: a.search_orders(p, c),
    WireMethod.GET_ORDER_BY_ID: lambda a, p, c: a.get_order(p, c),
    WireMethod.CANCEL_ORDER_BY_ID: lambda a, p, c: a.cancel_order(p, c),
    WireMethod.CREATE_ORDER: lambda a, p, c: a.create_order(p, c),
    WireMethod.CREATE_ORDER_LOCK: lambda a, p, c: a.create_order_lock(p, c),
    WireMethod.DELETE_ORDER_LOCK: lambda a, p, c: a.delete_order_lock(p, c),
    WireMethod.EXTEND_ORDER_LOCK: lambda a, p, c: _empty(a.extend_order_lock(p, c)),
    WireMethod.GET_ORDER_BILL_BY_ID: lambda a, p, c: a.get_order_bill(p, c),
    WireMethod.RECORD_ORDER_PAYMENT_BY_ID: lambda a, p, c: a.record_order_payment(p, c),
    WireMethod.LIST_AREAS: lambda a, p, c: a.list_areas(p, c),
    WireMethod.SEARCH_TABLES: lambda a, p, c: a.search_tables(p, c),
    WireMethod.CREATE_PARTY: lambda a, p, c: a.create_party(p, c),
    WireMethod.GET_PARTY_BY_ID: lambda a, p, c: a.get_party(p, c),
    WireMethod.UPDATE_PARTY: lambda a, p, c: a.update_party(p, c),
    WireMethod.DELETE_PARTY_BY_ID: lambda a, p, c: _empty(a.delete_party(p, c)),
    WireMethod.SEARCH_PARTIES: lambda a, p, c: a.search_parties(p, c),
    WireMethod.CREATE_RESERVATION: lambda a, p, c: a.create_reservation(p, c),
    WireMethod.GET_RESERVATION_BY_ID: lambda a, p, c: a.get_reservation(p, c),
    WireMethod.UPDATE_RESERVATION: lambda a, p, c: a.update_reservation(p, c),
    WireMethod.DELETE_RESERVATION_BY_ID: lambda a, p, c: _empty(a.delete_reservation(p, c)),
    WireMethod.SEARCH_RESERVATIONS: lambda a, p, c: a.search_reservations(p, c),
}


def _envelope(method: WireMethod, params_model: type[WithHeaders]) -> type[BaseModel]:
    # ListAreasV1's params object is optional (contract §1.3 (rec)); every other method needs one.
    default: Any = WithHeaders() if method is WireMethod.LIST_AREAS else ...
    return create_model(
        f"{method.value}Envelope",
        __config__=ConfigDict(extra="ignore", strict=True),
        params=(params_model, default),
    )


ENVELOPES: dict[WireMethod, type[BaseModel]] = {m: _envelope(m, model) for m, model in PARAMS_MODEL.items()}

PAYMENT_INTENT_EVENT_TYPES = frozenset(t.value for t in EventType)


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


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

    async def handle_text(self, text: str | bytes) -> Served | None:
        """Serve one frame. ``None`` means the frame had no id and was dropped."""
        started = time.perf_counter()
        trace_id = new_trace_id()
        if isinstance(text, bytes):
            log.warning("dropped a binary frame of %d bytes: requests are text frames", len(text))
            return None
        try:
            request = peek_request(text)
        except UnreadableFrame as exc:
            log.warning("dropped an unreadable frame (trace %s): %s", trace_id, exc)
            return None
        if not request.has_id:
            log.warning("dropped a frame without an id (method %r, trace %s)", request.method, trace_id)
            return None
        ctx = CallContext(trace_id=trace_id)
        try:
            result = await self._serve(request.method, text, ctx)
            response = success_response(request.id, request.method, result)
            outcome, message = "ok", None
        except EposFailure as failure:
            ctx.record(*failure.events)
            outcome, message = failure.error_type.value, failure.message
            response = error_response(request.id, request.method, self._error(failure.error_type, message, trace_id))
        except Exception:
            log.exception("unexpected failure serving %r (trace %s)", request.method, trace_id)
            outcome, message = EPOSErrorType.UNEXPECTED_ERROR.value, f"internal error in the bridge (trace {trace_id})"
            response = error_response(
                request.id, request.method, self._error(EPOSErrorType.UNEXPECTED_ERROR, message, trace_id)
            )
        self._publish_all(ctx)
        return Served(
            request_id=request.id,
            method=str(request.method),
            outcome=outcome,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            response_text=encode(response),
            trace_id=trace_id,
            debug_message=message,
        )

    async def _serve(self, method_name: Any, text: str, ctx: CallContext) -> Result:
        method = self._method(method_name)
        params = self._params(method, text)
        ctx.headers = params.headers
        try:
            async with asyncio.timeout(self._deadline_s):
                if method is WireMethod.HANDLE_EVENT:
                    assert isinstance(params, HandleEventParams)
                    return await self._handle_event(params, ctx)
                return await ROUTES[method](self._adapter, params, ctx)
        except TimeoutError as exc:
            raise EposFailure(f"the POS did not answer within {self._deadline_s:g} s") from exc

    def _method(self, method_name: Any) -> WireMethod:
        if not isinstance(method_name, str):
            raise InvalidRequest("method must be a string")
        try:
            method = WireMethod(method_name)
        except ValueError:
            raise InvalidRequest(f"unknown method {method_name[:80]!r}") from None
        if method is not WireMethod.HANDLE_EVENT and not (capabilities_of(method) & self._implemented):
            raise InvalidRequest(f"{method.value} is not supported by this POS")
        return method

    @staticmethod
    def _params(method: WireMethod, text: str) -> WithHeaders:
        try:
            envelope = ENVELOPES[method].model_validate_json(text)
        except ValidationError as exc:
            raise InvalidRequest(describe_validation_error(exc)) from None
        params = envelope.params  # type: ignore[attr-defined]
        assert isinstance(params, WithHeaders)
        return params

    async def _handle_event(self, params: HandleEventParams, ctx: CallContext) -> EmptyResult:
        # contract §3.22 (rec): acknowledge event types we do not know, or did not register.
        capability_name = f"HandleEvent:{params.event}"
        if params.event not in PAYMENT_INTENT_EVENT_TYPES or Capability(capability_name) not in self._implemented:
            log.info("acknowledged an event of unhandled type %r (id %s)", params.event[:80], params.id)
            return EmptyResult()
        try:
            event = PaymentIntentEvent.model_validate_json(json.dumps(params.data))
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
