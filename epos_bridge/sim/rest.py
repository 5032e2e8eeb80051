"""The REST half of the local Dojo stand-in: registration, POS events, terminals, payment intents
and terminal sessions, served by aiohttp on 127.0.0.1 with an ephemeral port.

It exists so the demo and every test run without a real Dojo endpoint. It is deliberately
strict about what the bridge *sends* (exact ``Authorization``, the ``version`` header, the
camelCase bodies the schemas allow) and scripted in what it *answers*: a terminal session
walks through a fixed list of steps, one step per ``GET`` poll (deterministic for tests), or one
per ``step_interval`` seconds when that is set (for the demo).

Every request is recorded (:attr:`RestSimulator.requests`) so tests can assert on what went
over the wire, not on which function was called.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from aiohttp import web

from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import canonical_capability
from epos_bridge.protocol.dojo import HEADER_AUTHORIZATION, HEADER_SOFTWARE_HOUSE_ID, HEADER_VERSION
from epos_bridge.sim.serving import LocalServer

log = logging.getLogger(__name__)

JSON_BODY: web.RequestKey[Any] = web.RequestKey("json_body", object)
"""The parsed request body, stashed by the middleware for the handlers."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_VERSION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRACE_IDS = itertools.count(1)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime | None = None) -> str:
    return format_utc(moment or _now())


# --- what was received --------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: tests assert on these."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    """Header names exactly as the client sent them (case preserved)."""
    json: Any


# --- error bodies: the three shapes of contract §5.6 -------------------------------------


def _error_shape(path: str) -> str:
    if path.startswith("/terminals"):
        return "Error"
    if path.startswith("/terminal-sessions"):
        return "ProblemDetailsTerminals"
    if path.startswith("/payment-intents"):
        return "ProblemDetails"
    return "Error"


def problem_response(
    path: str, status: int, title: str, detail: str, *, field_errors: dict[str, list[str]] | None = None
) -> web.Response:
    """An error in the shape Dojo uses for that endpoint family."""
    trace_id = f"sim-trace-{next(_TRACE_IDS)}"
    shape = _error_shape(path)
    body: dict[str, Any]
    if shape == "ProblemDetails":  # no traceId property (§5.6); it rides in extensions
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        body["extensions"] = {"traceId": trace_id, **({"errors": field_errors} if field_errors else {})}
    elif shape == "ProblemDetailsTerminals":
        body = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "traceId": trace_id,
            "errors": field_errors,
        }
    else:
        code = {400: "INVALID_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}.get(
            status, "INTERNAL_ERROR"
        )
        body = {
            "code": code,
            "title": title,
            "type": "about:blank",
            "status": status,
            "traceId": trace_id,
            "errors": field_errors or {},
            "detail": detail,
        }
    return web.json_response(body, status=status, content_type="application/problem+json")


class _Refused(Exception):
    """Raised by handlers to answer with a problem body."""

    def __init__(self, status: int, title: str, detail: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field_errors = field_errors


# --- terminal sessions: one small state machine --------------------------------------------


@dataclass(frozen=True)
class Step:
    status: str
    notification: str | None = None


SESSION_SCRIPTS: dict[str, tuple[Step, ...]] = {
    "approve": (
        Step("InitiateRequested"),
        Step("Initiated", "PresentCard"),
        Step("Initiated", "EnterPin"),
        Step("Initiated", "PleaseWait"),
        Step("Captured", "Approved"),
    ),
    "decline": (
        Step("InitiateRequested"),
        Step("Initiated", "PresentCard"),
        Step("Initiated", "EnterPin"),
        Step("Initiated", "PleaseWait"),
        Step("Declined", "Declined"),
    ),
    "signature": (
        Step("InitiateRequested"),
        Step("Initiated", "PresentCard"),
        Step("Initiated", "PleaseWait"),
        Step("SignatureVerificationRequired"),
    ),
    "expire": (
        Step("InitiateRequested"),
        Step("Initiated", "PresentCard"),
        Step("Expired"),
    ),
}
"""Each script starts at its first step when the session is created."""

FINAL_STATUSES = frozenset(
    {"Captured", "Canceled", "SignatureVerificationAccepted", "SignatureVerificationRejected", "Expired", "Declined"}
)
SESSION_LIFETIME = timedelta(minutes=5)


@dataclass
class ScriptedSession:
    """A terminal session that moves along its script; cancel and signature branch off it."""

    id: str
    terminal_id: str
    details: dict[str, Any]
    script: tuple[Step, ...]
    created_at: datetime = field(default_factory=_now)
    position: int = 0
    status: str = ""
    updated_at: datetime = field(default_factory=_now)
    notifications: list[tuple[str, datetime]] = field(default_factory=list)
    status_events: list[tuple[str, datetime, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._apply(self.script[0])

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def advance(self) -> None:
        """One step along the script; a pending cancel completes; final states stay put."""
        if self.is_final or self.status == "SignatureVerificationRequired":
            return
        if self.status == "CancelRequested":
            self._set_status("Canceled", "Cancelled by the EPOS")
            return
        if self.position + 1 < len(self.script):
            self.position += 1
            self._apply(self.script[self.position])

    def request_cancel(self) -> None:
        if self.is_final:
            raise _Refused(422, "Unprocessable Entity", f"Terminal session is {self.status} and cannot be canceled.")
        self._set_status("CancelRequested", "Cancel requested by the EPOS")

    def answer_signature(self, accepted: bool) -> None:
        if self.status != "SignatureVerificationRequired":
            raise _Refused(422, "Unprocessable Entity", f"Terminal session is {self.status}, not awaiting a signature.")
        if accepted:
            self._set_status("SignatureVerificationAccepted", "Signature accepted")
            self._notify("Approved")
        else:
            self._set_status("SignatureVerificationRejected", "Signature rejected; payment reversed")
            self._notify("Declined")

    def _apply(self, step: Step) -> None:
        if step.status != self.status:
            self._set_status(step.status, f"sim step {self.position}")
        if step.notification:
            self._notify(step.notification)

    def _set_status(self, status: str, why: str) -> None:
        self.status = status
        self.updated_at = _now()
        self.status_events.append((status, self.updated_at, why))

    def _notify(self, notification: str) -> None:
        self.updated_at = _now()
        self.notifications.append((notification, self.updated_at))

    def to_wire(self, payment_details: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "terminalId": self.terminal_id,
            "status": self.status,
            "createdAt": _stamp(self.created_at),
            "updatedAt": _stamp(self.updated_at),
            "expireAt": _stamp(self.updated_at + SESSION_LIFETIME),
            "notificationEvents": [{"notificationType": n, "createdAt": _stamp(at)} for n, at in self.notifications],
            "statusEvents": [
                {"status": s, "createdAt": _stamp(at), "debugMessage": why} for s, at, why in self.status_events
            ],
            "details": self.details,
        }
        if self.is_final and payment_details is not None:
            body["paymentDetails"] = payment_details
        return body


# --- the simulator ------------------------------------------------------------------------

DEFAULT_TERMINALS: tuple[tuple[str, str, str], ...] = (
    ("tm_sim_counter", "10000001", "Available"),
    ("tm_sim_bar", "10000002", "InUse"),
    ("tm_sim_patio", "10000003", "Offline"),
)

_PAYMENT_INTENT_KEYS = frozenset(
    {
        "captureMode",
        "amount",
        "tipsAmount",
        "reference",
        "description",
        "cardHolderNotPresent",
        "itemLines",
        "taxLines",
        "paymentMethods",
        "expireAt",
        "autoExpireIn",
        "autoExpireAction",
        "metadata",
        "orderDetails",
        "cashbackAmount",
        "serviceChargeAmount",
        "config",
        "requestSecurity",
        "billingAddress",
        "shippingDetails",
        "actionLink",
        "setupIntentId",
        "generateRemoteToken",
        "customer",
    }
)


class RestSimulator(LocalServer):
    """Dojo's REST API, small and scripted. ``await start()``, use ``base_url``, ``await stop()``."""

    def __init__(
        self,
        expected_api_key: str,
        expected_software_house_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        step_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.expected_api_key = expected_api_key
        self._ssl_context = ssl_context
        self.expected_software_house_id = expected_software_house_id
        self._host = host
        self._port = port
        self._step_interval = step_interval
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._ids = itertools.count(1)

        self.requests: list[RecordedRequest] = []
        self.requests_begun = 0
        """Requests whose headers arrived (the body may still be on its way)."""
        self.requests_abandoned = 0
        """Requests whose client went away before its body arrived."""
        self.events: list[dict[str, Any]] = []
        """Every POS event accepted by ``POST /epos/events``, in order."""
        self.registered: list[dict[str, Any]] = []
        """The WebSocket capability set, as ``{name, version, updatedAt}`` entries."""
        self.registered_at: datetime | None = None
        self.terminals: dict[str, dict[str, Any]] = {
            tid: {"id": tid, "properties": {"tid": short}, "status": status, "updatedAt": _stamp()}
            for tid, short, status in DEFAULT_TERMINALS
        }
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, ScriptedSession] = {}
        self._session_clock: dict[str, float] = {}
        self._events_failure: int | None = None
        self._refusing_keys: int | None = None
        self._next_scripts: list[str] = []
        self._terminal_scripts: dict[str, str] = {}
        self._lose_session_answers: list[int] = []
        self._registration_failure: int | None = None
        self._extra_routes: list[web.RouteDef] = []

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("RestSimulator.start() has not been awaited")
        return self._base_url

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record_and_authenticate])
        app.add_routes(
            [
                web.put("/epos/integrations/ws", self._put_ws_integrations),
                web.get("/epos/integrations/ws", self._get_ws_integrations),
                web.get("/epos/integrations", self._get_integrations),
                web.post("/epos/events", self._post_event),
                web.get("/terminals", self._list_terminals),
                web.get("/terminals/{terminal_id}", self._get_terminal),
                web.post("/payment-intents", self._create_payment_intent),
                web.get("/payment-intents/{intent_id}", self._get_payment_intent),
                web.post("/payment-intents/{intent_id}/reversal", self._reverse_payment_intent),
                web.post("/terminal-sessions", self._create_session),
                web.get("/terminal-sessions/{session_id}", self._get_session),
                web.put("/terminal-sessions/{session_id}/cancel", self._cancel_session),
                web.put("/terminal-sessions/{session_id}/signature", self._answer_signature),
                *self._extra_routes,
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl_context)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        scheme = "https" if self._ssl_context is not None else "http"
        self._base_url = f"{scheme}://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        """More endpoints behind the same recording and key check (the EPOS tester tool,
        ``sim/tester.py``); call before :meth:`start`."""
        self._extra_routes.extend(routes)

    # --- switches for tests and the demo -----------------------------------------------------

    def refuse_keys(self, status: int = 401) -> None:
        """Answer every request ``status`` whatever its key (an authentication blip at Dojo, or a
        new key still propagating) until :meth:`accept_keys`."""
        self._refusing_keys = status

    def accept_keys(self) -> None:
        self._refusing_keys = None

    def fail_events(self, status: int = 503) -> None:
        """Make ``POST /epos/events`` answer ``status`` until :meth:`restore_events`."""
        self._events_failure = status

    def restore_events(self) -> None:
        self._events_failure = None

    def fail_registration(self, status: int | None = 503) -> None:
        """Make ``PUT /epos/integrations/ws`` answer ``status`` (``None``: accept again)."""
        self._registration_failure = status

    def next_session_script(self, name: str) -> None:
        """Use script ``name`` (approve, decline, signature, expire) for the next session only."""
        self._check_script(name)
        self._next_scripts.append(name)

    def lose_next_session_answer(self, status: int = 504, *, create: bool = True) -> None:
        """The next ``POST /terminal-sessions`` answers ``status`` (a gateway timeout, say).

        With ``create`` the session is created all the same and runs — the case a till must
        never get wrong: a card may be taken although the bridge never heard of the session.
        """
        self._lose_session_answers.append(status if create else -status)

    def set_terminal_script(self, terminal_id: str, name: str | None) -> None:
        """Every session on ``terminal_id`` follows script ``name`` (``None``: back to approve)."""
        if name is None:
            self._terminal_scripts.pop(terminal_id, None)
            return
        self._check_script(name)
        self._terminal_scripts[terminal_id] = name

    def set_registered_names(self, names: list[str], version: str = "v1") -> None:
        """Pretend Dojo holds these names (e.g. legacy aliases) without a PUT."""
        self.registered_at = _now()
        self.registered = [{"name": n, "version": version, "updatedAt": _stamp(self.registered_at)} for n in names]

    def cancel_payment_intent(self, intent_id: str) -> None:
        """Mark an intent Canceled, as Dojo does when one expires unused."""
        self.payment_intents[intent_id]["status"] = "Canceled"

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @staticmethod
    def _check_script(name: str) -> None:
        if name not in SESSION_SCRIPTS:
            raise ValueError(f"unknown session script {name!r}; choose from {sorted(SESSION_SCRIPTS)}")

    # --- middleware ----------------------------------------------------------------------------

    @web.middleware
    async def _record_and_authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests_begun += 1
        try:
            raw = await request.read()
        except ConnectionResetError:
            self.requests_abandoned += 1
            # The client gave up mid-body (a bridge cancelling a call when its settings change):
            # what Dojo sees as a dropped connection, not a server fault; nothing to answer.
            log.debug("%s %s: the client went away before its body arrived", request.method, request.path)
            return web.Response(status=HTTPStatus.BAD_REQUEST, text="the connection was lost")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=list(request.query.items()),
                headers=dict(request.headers),
                json=body,
            )
        )
        request[JSON_BODY] = body
        path = request.path
        if self._refusing_keys is not None:
            return problem_response(path, self._refusing_keys, "Unauthorized", "The API key is not valid (yet).")
        if request.headers.get(HEADER_AUTHORIZATION) != f"Basic {self.expected_api_key}":
            return problem_response(path, 401, "Unauthorized", "The API key is missing or not valid.")
        if path.startswith(("/terminals", "/terminal-sessions", "/payment-intents")):
            version = request.headers.get(HEADER_VERSION)
            if not version or not _VERSION_PATTERN.match(version):
                return problem_response(path, 400, "Bad Request", "The version header (yyyy-mm-dd) is required.")
        if path.startswith(("/terminals", "/terminal-sessions")):
            house = request.headers.get(HEADER_SOFTWARE_HOUSE_ID)
            if not house:
                return problem_response(path, 400, "Bad Request", "The software-house-id header is required.")
            if house != self.expected_software_house_id:
                return problem_response(path, 403, "Forbidden", "This software house may not use this account.")
        if isinstance(body, str):
            return problem_response(path, 400, "Bad Request", "The body is not valid JSON.")
        try:
            return await handler(request)
        except _Refused as refused:
            return problem_response(
                path, refused.status, refused.title, refused.detail, field_errors=refused.field_errors
            )

    # --- registration ----------------------------------------------------------------------

    def _ws_integrations(self) -> list[dict[str, Any]]:
        if self.registered_at is None:
            return []
        return [{"capabilities": self.registered, "createdAt": _stamp(self.registered_at)}]

    async def _put_ws_integrations(self, request: web.Request) -> web.Response:
        if self._registration_failure is not None:
            status = self._registration_failure
            raise _Refused(status, HTTPStatus(status).phrase, "Registration is not being accepted right now.")
        body = _json_object(request)
        capabilities = body.get("capabilities")
        if not isinstance(capabilities, list):
            raise _Refused(400, "Bad Request", "capabilities must be a list", {"capabilities": ["required"]})
        for entry in capabilities:
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("version"):
                raise _Refused(400, "Bad Request", "each capability needs name and version")
            if canonical_capability(str(entry["name"])) is None:
                raise _Refused(400, "Bad Request", f"unknown capability {entry['name']}")
        self.registered_at = _now()
        self.registered = [
            {"name": str(e["name"]), "version": str(e["version"]), "updatedAt": _stamp(self.registered_at)}
            for e in capabilities
        ]
        return web.json_response(self._ws_integrations())

    async def _get_ws_integrations(self, request: web.Request) -> web.Response:
        return web.json_response(self._ws_integrations())

    async def _get_integrations(self, request: web.Request) -> web.Response:
        return web.json_response({"wsIntegrations": self._ws_integrations(), "restIntegrations": []})

    # --- POS events --------------------------------------------------------------------------

    async def _post_event(self, request: web.Request) -> web.Response:
        if self._events_failure is not None:
            title = HTTPStatus(self._events_failure).phrase
            raise _Refused(self._events_failure, title, "Events are not being accepted right now.")
        body = _json_object(request)
        pairs = {"OrderUpdated": "orderId", "PartyUpdated": "partyId", "ReservationUpdated": "reservationId"}
        event_type = body.get("eventType")
        event = body.get("event")
        if event_type not in pairs or not isinstance(event, dict):
            raise _Refused(400, "Bad Request", "eventType must be OrderUpdated, PartyUpdated or ReservationUpdated")
        if set(event) != {pairs[str(event_type)]} or not event[pairs[str(event_type)]]:
            raise _Refused(400, "Bad Request", f"{event_type} needs exactly {pairs[str(event_type)]}")
        self.events.append(body)
        return web.json_response(body)

    # --- terminals ---------------------------------------------------------------------------

    async def _list_terminals(self, request: web.Request) -> web.Response:
        wanted = request.query.getall("statuses", [])
        terminals = [t for t in self.terminals.values() if not wanted or t["status"] in wanted]
        return web.json_response(terminals)

    async def _get_terminal(self, request: web.Request) -> web.Response:
        return web.json_response(self._terminal(request.match_info["terminal_id"]))

    def _terminal(self, terminal_id: str) -> dict[str, Any]:
        terminal = self.terminals.get(terminal_id)
        if terminal is None:
            raise _Refused(404, "Not Found", f"Terminal {terminal_id} was not found.")
        return terminal

    def _set_terminal_status(self, terminal_id: str, status: str) -> None:
        if self.terminals[terminal_id]["status"] == status:
            return
        self.terminals[terminal_id]["status"] = status
        self.terminals[terminal_id]["updatedAt"] = _stamp()

    # --- payment intents ---------------------------------------------------------------------

    async def _create_payment_intent(self, request: web.Request) -> web.Response:
        body = _json_object(request)
        unknown = sorted(set(body) - _PAYMENT_INTENT_KEYS)
        if unknown:  # additionalProperties:false (§5.4)
            raise _Refused(
                400, "Bad Request", f"Unknown fields: {', '.join(unknown)}", {k: ["unknown"] for k in unknown}
            )
        amount = _money(body.get("amount"), "amount")
        reference = body.get("reference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 60:
            raise _Refused(400, "Bad Request", "reference must be 1 to 60 characters", {"reference": ["length"]})
        intent_id = f"pi_sim_{next(self._ids):06d}"
        now = _stamp()
        intent: dict[str, Any] = {
            "id": intent_id,
            "status": "Created",
            "captureMode": body.get("captureMode", "Auto"),
            "amount": amount,
            "totalAmount": amount,
            "requestedAmount": amount,
            "refundedAmount": 0,
            "reference": reference,
            "description": body.get("description"),
            "metadata": body.get("metadata") or {},
            "orderDetails": body.get("orderDetails"),
            "createdAt": now,
            "updatedAt": now,
        }
        self.payment_intents[intent_id] = intent
        return web.json_response(intent)

    def _intent(self, intent_id: str, *, return_canceled: bool = True) -> dict[str, Any]:
        intent = self.payment_intents.get(intent_id)
        if intent is None or (intent["status"] == "Canceled" and not return_canceled):
            raise _Refused(404, "Not Found", f"Payment intent {intent_id} was not found.")
        return intent

    async def _get_payment_intent(self, request: web.Request) -> web.Response:
        return_canceled = request.query.get("returnCanceled", "false").lower() == "true"
        intent_id = request.match_info["intent_id"]
        for session in self.sessions.values():  # time passes at the terminal for whoever asks
            if _intent_id_of(session.details) == intent_id and not session.is_final:
                self._advance(session)
                self._session_wire(session)
        return web.json_response(self._intent(intent_id, return_canceled=return_canceled))

    async def _reverse_payment_intent(self, request: web.Request) -> web.Response:
        intent = self._intent(request.match_info["intent_id"])
        if intent["status"] not in ("Authorized", "Captured"):
            raise _Refused(409, "Conflict", f"A {intent['status']} payment intent cannot be reversed.")
        self._set_intent_status(intent, "Reversed")
        return web.json_response({"reversalId": f"rv_sim_{next(self._ids):06d}", "message": "Reversed"})

    @staticmethod
    def _set_intent_status(intent: dict[str, Any], status: str) -> None:
        intent["status"] = status
        intent["updatedAt"] = _stamp()
        if status == "Captured":
            intent["paymentDetails"] = {"transactionId": f"tx_{intent['id']}", "authCode": "123456"}

    # --- terminal sessions ---------------------------------------------------------------------

    async def _create_session(self, request: web.Request) -> web.Response:
        body = _json_object(request)
        unknown = sorted(set(body) - {"terminalId", "details"})
        if unknown:  # additionalProperties:false (§5.5)
            raise _Refused(400, "Bad Request", f"Unknown fields: {', '.join(unknown)}")
        terminal = self._terminal(str(body.get("terminalId")))
        details = body.get("details")
        if not isinstance(details, dict):
            raise _Refused(400, "Bad Request", "details is required", {"details": ["required"]})
        self._check_session_details(details)
        if terminal["status"] != "Available":
            raise _Refused(400, "Bad Request", f"Terminal {terminal['id']} is {terminal['status']}.")
        script_name = (
            self._next_scripts.pop(0) if self._next_scripts else self._terminal_scripts.get(terminal["id"], "approve")
        )
        session = ScriptedSession(
            id=f"ts_sim_{next(self._ids):06d}",
            terminal_id=terminal["id"],
            details=details,
            script=SESSION_SCRIPTS[script_name],
        )
        lost = self._lose_session_answers.pop(0) if self._lose_session_answers else None
        if lost is not None and lost < 0:
            raise _Refused(-lost, HTTPStatus(-lost).phrase, "The gateway timed out.")
        self.sessions[session.id] = session
        self._session_clock[session.id] = self._clock()
        self._set_terminal_status(terminal["id"], "InUse")
        if lost is not None:
            raise _Refused(lost, HTTPStatus(lost).phrase, "The gateway timed out.")
        return web.json_response(self._session_wire(session))

    def _check_session_details(self, details: dict[str, Any]) -> None:
        kind = details.get("sessionType")
        part = {"Sale": "sale", "MatchedRefund": "matchedRefund", "UnlinkedRefund": "unlinkedRefund"}.get(str(kind))
        if part is None:
            raise _Refused(400, "Bad Request", "sessionType must be Sale, MatchedRefund or UnlinkedRefund")
        inner = details.get(part)
        if not isinstance(inner, dict):
            raise _Refused(400, "Bad Request", f"{kind} needs details.{part}", {f"details.{part}": ["required"]})
        if part == "unlinkedRefund":
            _money(inner.get("amount"), "details.unlinkedRefund.amount")
            return
        intent = self._intent(str(inner.get("paymentIntentId")))
        if part == "sale" and intent["status"] != "Created":
            raise _Refused(400, "Bad Request", f"Payment intent {intent['id']} is {intent['status']}.")
        if part == "matchedRefund" and intent["status"] != "Captured":
            raise _Refused(400, "Bad Request", f"Payment intent {intent['id']} is not captured.")

    def _session(self, request: web.Request) -> ScriptedSession:
        session_id = request.match_info["session_id"]
        session = self.sessions.get(session_id)
        if session is None:
            raise _Refused(404, "Not Found", f"Terminal session {session_id} was not found.")
        return session

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self._session(request)
        self._advance(session)
        return web.json_response(self._session_wire(session))

    def _advance(self, session: ScriptedSession) -> None:
        """One step per look (tests), or one step per interval since creation (the demo)."""
        if self._step_interval is None:
            session.advance()
            return
        due = int((self._clock() - self._session_clock[session.id]) / self._step_interval)
        while session.position < due and not session.is_final:
            before = (session.position, session.status)
            session.advance()
            if (session.position, session.status) == before:
                break

    async def _cancel_session(self, request: web.Request) -> web.Response:
        session = self._session(request)
        session.request_cancel()
        return web.json_response(self._session_wire(session))

    async def _answer_signature(self, request: web.Request) -> web.Response:
        session = self._session(request)
        body = _json_object(request)
        if not isinstance(body.get("accepted"), bool):
            raise _Refused(400, "Bad Request", "accepted must be true or false", {"accepted": ["required"]})
        session.answer_signature(body["accepted"])
        return web.json_response(self._session_wire(session))

    def _session_wire(self, session: ScriptedSession) -> dict[str, Any]:
        """Render the session, first applying a final state to the intent and the terminal."""
        intent_id = _intent_id_of(session.details)
        intent = self.payment_intents.get(intent_id) if intent_id else None
        if session.is_final:
            self._set_terminal_status(session.terminal_id, "Available")
            if intent is not None and session.details.get("sessionType") == "Sale" and intent["status"] == "Created":
                if session.status in ("Captured", "SignatureVerificationAccepted"):
                    self._set_intent_status(intent, "Captured")
                elif session.status == "SignatureVerificationRejected":
                    self._set_intent_status(intent, "Reversed")
            if (
                intent is not None
                and session.details.get("sessionType") == "MatchedRefund"
                and session.status == "Captured"
                and intent["status"] == "Captured"
            ):
                refund = session.details.get("matchedRefund", {}).get("amount") or intent["amount"]
                intent["refundedAmount"] = int(intent.get("refundedAmount") or 0) + int(refund["value"])
                self._set_intent_status(intent, "Refunded")
        payment_details = intent.get("paymentDetails") if intent is not None else None
        return session.to_wire(payment_details)


def _intent_id_of(details: dict[str, Any]) -> str | None:
    for part in ("sale", "matchedRefund"):
        inner = details.get(part)
        if isinstance(inner, dict) and inner.get("paymentIntentId"):
            return str(inner["paymentIntentId"])
    return None


def _money(value: Any, name: str) -> dict[str, Any]:
    """Dojo ``Money``: exactly ``value`` (int) and ``currencyCode`` (§6 E6)."""
    if (
        not isinstance(value, dict)
        or set(value) != {"value", "currencyCode"}
        or not isinstance(value["value"], int)
        or isinstance(value["value"], bool)
        or not isinstance(value["currencyCode"], str)
        or not 1 <= len(value["currencyCode"]) <= 10
    ):
        raise _Refused(400, "Bad Request", f"{name} must be {{value: int, currencyCode}}", {name: ["invalid"]})
    return {"value": value["value"], "currencyCode": value["currencyCode"]}


def _json_object(request: web.Request) -> dict[str, Any]:
    """The body the middleware already read and parsed, if it is a JSON object."""
    body = request.get(JSON_BODY)
    if not isinstance(body, dict):
        raise _Refused(400, "Bad Request", "The body must be a JSON object.")
    return body
