"""The Dojo REST client: registration, POS events, terminals, payment intents, terminal sessions.

The client owns no connection: the composition root builds the ``httpx.AsyncClient`` (TLS
verification on, proxy, timeouts) and passes it in; tests pass one over ``httpx.MockTransport``
or point it at the local simulator. Every call carries the same headers (contract §5.1).

Retry policy (contract §5.6): only server errors (5xx) and network failures are retried, with
exponential backoff, and only on calls that are safe to repeat — GET, PUT (registration,
cancel, signature) and ``POST /epos/events`` (an event holds only an id; a duplicate makes
Dojo re-read the entity, which is harmless, §5.2). ``POST /payment-intents``,
``POST /terminal-sessions`` and ``POST …/reversal`` are **never** retried: a repeat could
charge or refund twice, and Dojo offers no idempotency key. After such a failure, read the
state back (GET) before deciding to try again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from epos_bridge.dojo_api.tester import EposTesterClient
from epos_bridge.protocol.capabilities import CAPABILITY_VERSION, Capability
from epos_bridge.protocol.dojo import (
    API_VERSION,
    DEFAULT_API_URL,
    HEADER_VERSION,
    DojoCredentials,
    environment_of,
    redact,
)
from epos_bridge.protocol.dojo_errors import (
    DojoApiError,
    InsecureEndpointError,
    NetworkError,
    ServerError,
    UnexpectedResponseError,
    error_for_status,
    parse_problem,
)
from epos_bridge.protocol.dojo_rest import (
    EVENT_ENTITY_FIELD,
    Integrations,
    MoneyLike,
    PaymentIntent,
    PosEventType,
    Reversal,
    SessionDetails,
    Terminal,
    TerminalSession,
    TerminalStatus,
    WsIntegration,
    money_to_wire,
)
from epos_bridge.protocol.endpoints import plain_text_refusal
from epos_bridge.services.retry import BackoffPolicy

Sleep = Callable[[float], Awaitable[None]]
ModelT = TypeVar("ModelT", bound=BaseModel)
QueryList = list[tuple[str, str | int | float | bool | None]]

REFERENCE_MAX_LENGTH = 60


SAFE_RETRIES = BackoffPolicy(initial_s=0.5, max_s=8.0, jitter=0.0)
"""A safe call's retries (5xx, network): 0.5, 1, 2, 4, 8, 8 … s (the bridge's one backoff helper)."""


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): 0.5, 1, 2, 4, 8, 8, …"""
    return SAFE_RETRIES.delay_for(attempt)


def should_retry(error: DojoApiError) -> bool:
    """Only Dojo-side trouble is worth repeating; a 4xx will fail the same way again."""
    return isinstance(error, ServerError | NetworkError)


def check_base_url(base_url: str, *, allow_insecure: bool) -> str:
    """Refuse plain HTTP unless explicitly allowed, and then to loopback only (the simulator;
    :mod:`epos_bridge.protocol.endpoints`); return the URL without a trailing /."""
    parts = urlsplit(base_url)
    if parts.scheme == "https" and parts.netloc:
        return base_url.rstrip("/")
    if parts.scheme == "http" and parts.netloc:
        refusal = plain_text_refusal(base_url, "https", allow_insecure=allow_insecure)
        if refusal is None:
            return base_url.rstrip("/")
        raise InsecureEndpointError(f"Refusing the Dojo API URL {base_url!r}: {refusal}.")
    raise InsecureEndpointError(f"The Dojo API URL {base_url!r} must be an https:// URL.")


class DojoClient:
    """One Dojo account (API key) as seen over REST. Safe to share between tasks."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        credentials: DojoCredentials,
        base_url: str = DEFAULT_API_URL,
        allow_insecure: bool = False,
        sleep: Sleep = asyncio.sleep,
        max_retries: int = 3,
        backoff: Callable[[int], float] = backoff_delay,
    ) -> None:
        self._http = http
        self._api_key = credentials.api_key
        self._base_url = check_base_url(base_url, allow_insecure=allow_insecure)
        self._sleep = sleep
        self._max_retries = max(0, max_retries)
        self._backoff = backoff
        self._headers = {
            **credentials.headers(),
            HEADER_VERSION: API_VERSION,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def environment(self) -> str:
        """``sandbox``, ``production`` or ``unknown``, from the key prefix."""
        return environment_of(self._api_key)

    def __repr__(self) -> str:
        return f"DojoClient(base_url={self._base_url!r}, environment={self.environment!r})"

    # --- registration (§2) -------------------------------------------------------------------

    async def register_capabilities(self, capabilities: Iterable[Capability]) -> list[WsIntegration]:
        """Replace the whole registered set with ``capabilities`` (the PUT is not additive, §2)."""
        names = sorted({Capability(c).value for c in capabilities})
        body = {"capabilities": [{"name": name, "version": CAPABILITY_VERSION} for name in names]}
        data = await self._call("PUT", "/epos/integrations/ws", json_body=body, retry=True)
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        return [self._parse(WsIntegration, item, "PUT", "/epos/integrations/ws") for item in items]

    async def get_integrations(self) -> Integrations:
        data = await self._call("GET", "/epos/integrations", retry=True)
        return self._parse(Integrations, data if data is not None else {}, "GET", "/epos/integrations")

    # --- POS events (§5.2) -------------------------------------------------------------------

    async def post_event(self, event_type: PosEventType | str, entity_field: str, entity_id: str) -> None:
        """Tell Dojo an order, party or reservation changed; Dojo re-reads it through the bridge.

        The type and id field must pair up (OrderUpdated/orderId, …); a mismatch is a bug and
        raises ``ValueError`` before anything is sent.
        """
        kind = PosEventType(event_type)
        expected = EVENT_ENTITY_FIELD[kind]
        if entity_field != expected:
            raise ValueError(f"{kind.value} travels with {expected}, not {entity_field}")
        if not entity_id:
            raise ValueError(f"{kind.value} needs a non-empty {expected}")
        body = {"eventType": kind.value, "event": {expected: entity_id}}
        await self._call("POST", "/epos/events", json_body=body, retry=True)

    # --- terminals (§5.3) --------------------------------------------------------------------

    async def list_terminals(self, statuses: Iterable[TerminalStatus | str] | None = None) -> list[Terminal]:
        """All terminals of the account, optionally only those in ``statuses`` (key repeated)."""
        params: QueryList = [("statuses", str(status)) for status in statuses or ()]
        data = await self._call("GET", "/terminals", params=params, retry=True)
        if not isinstance(data, list):
            raise UnexpectedResponseError(
                "Dojo's terminal list was not a list.", status=200, method="GET", path="/terminals"
            )
        return [self._parse(Terminal, item, "GET", "/terminals") for item in data]

    async def get_terminal(self, terminal_id: str) -> Terminal:
        path = f"/terminals/{_segment(terminal_id)}"
        return self._parse(Terminal, await self._call("GET", path, retry=True), "GET", path)

    # --- payment intents (§5.4) --------------------------------------------------------------

    async def create_payment_intent(
        self,
        amount: MoneyLike,
        reference: str,
        *,
        metadata: Mapping[str, str] | None = None,
        order_external_id: str | None = None,
        description: str | None = None,
        capture_mode: str | None = None,
    ) -> PaymentIntent:
        """Create an intent to take ``amount``. **Never retried** (not idempotent, §5.6).

        ``order_external_id`` and ``metadata`` let the bridge find the POS order again when
        Dojo later reports the payment (§6 C14). ``customer`` is never sent (§6 E1).
        """
        if not 1 <= len(reference) <= REFERENCE_MAX_LENGTH:
            raise ValueError(f"reference must be 1 to {REFERENCE_MAX_LENGTH} characters")
        body: dict[str, Any] = {"amount": money_to_wire(amount), "reference": reference}
        if capture_mode is not None:
            body["captureMode"] = capture_mode
        if description is not None:
            body["description"] = description
        if metadata:
            body["metadata"] = {str(k): str(v) for k, v in metadata.items()}
        if order_external_id is not None:
            body["orderDetails"] = {"externalId": order_external_id}
        data = await self._call("POST", "/payment-intents", json_body=body, retry=False)
        return self._parse(PaymentIntent, data, "POST", "/payment-intents")

    async def get_payment_intent(self, payment_intent_id: str, *, return_canceled: bool = False) -> PaymentIntent:
        """Without ``return_canceled`` a Canceled intent is a :class:`NotFoundError` (§5.4)."""
        path = f"/payment-intents/{_segment(payment_intent_id)}"
        params: QueryList = [("returnCanceled", "true")] if return_canceled else []
        data = await self._call("GET", path, params=params, retry=True)
        return self._parse(PaymentIntent, data, "GET", path)

    async def reverse_payment_intent(self, payment_intent_id: str) -> Reversal:
        """Reverse (void/refund) an intent; :class:`ConflictError` if it cannot be. Never retried."""
        path = f"/payment-intents/{_segment(payment_intent_id)}/reversal"
        data = await self._call("POST", path, retry=False)
        return self._parse(Reversal, data if data is not None else {}, "POST", path)

    # --- terminal sessions (§5.5) ------------------------------------------------------------

    async def create_terminal_session(self, terminal_id: str, details: SessionDetails) -> TerminalSession:
        """Start a Sale, MatchedRefund or UnlinkedRefund on a terminal. Never retried."""
        body = {"terminalId": terminal_id, "details": details.to_wire()}
        data = await self._call("POST", "/terminal-sessions", json_body=body, retry=False)
        return self._parse(TerminalSession, data, "POST", "/terminal-sessions")

    async def get_terminal_session(self, terminal_session_id: str) -> TerminalSession:
        path = f"/terminal-sessions/{_segment(terminal_session_id)}"
        return self._parse(TerminalSession, await self._call("GET", path, retry=True), "GET", path)

    async def cancel_terminal_session(self, terminal_session_id: str) -> TerminalSession:
        """Ask the terminal to stop; normally ``CancelRequested`` follows. 422 (final) → InvalidRequestError."""
        path = f"/terminal-sessions/{_segment(terminal_session_id)}/cancel"
        return self._parse(TerminalSession, await self._call("PUT", path, retry=True), "PUT", path)

    async def answer_signature(self, terminal_session_id: str, accepted: bool) -> TerminalSession:
        """Answer ``SignatureVerificationRequired`` quickly: Dojo accepts by itself when it times out."""
        path = f"/terminal-sessions/{_segment(terminal_session_id)}/signature"
        data = await self._call("PUT", path, json_body={"accepted": accepted}, retry=True)
        return self._parse(TerminalSession, data, "PUT", path)

    # --- EPOS tester tool (§5.7) ---------------------------------------------------------------

    def tester_tool(self) -> EposTesterClient:
        """Dojo's EPOS tester tool for this account, over this client's calls and headers."""
        return EposTesterClient(self._call, self.environment, _segment)

    # --- plumbing ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: QueryList | None = None,
        retry: bool,
    ) -> Any:
        """Send one call, retrying 5xx/network failures when ``retry`` allows; return the JSON body."""
        attempt = 0
        while True:
            try:
                return await self._send_once(method, path, json_body=json_body, params=params)
            except DojoApiError as error:
                if not retry or not should_retry(error) or attempt >= self._max_retries:
                    raise
                attempt += 1
                await self._sleep(self._backoff(attempt))

    async def _send_once(self, method: str, path: str, *, json_body: Any, params: QueryList | None) -> Any:
        content = json.dumps(json_body, separators=(",", ":")).encode() if json_body is not None else None
        try:
            response = await self._http.request(
                method,
                self._base_url + path,
                headers=self._headers,
                content=content,
                params=params or None,
            )
        except httpx.TimeoutException as exc:
            raise NetworkError(
                self._redact(
                    f"Dojo did not answer {method} {path} in time ({type(exc).__name__}). "
                    "Check the internet connection; the bridge will try again."
                ),
                method=method,
                path=path,
                staff_message="No answer from Dojo in time. Check the internet connection; the bridge tries again.",
            ) from None
        except httpx.TransportError as exc:
            raise NetworkError(
                self._redact(
                    f"Could not reach Dojo for {method} {path} ({type(exc).__name__}: {exc}). "
                    "Check the internet connection and proxy settings."
                ),
                method=method,
                path=path,
                staff_message="Could not reach Dojo. Check the internet connection.",
            ) from None
        if response.is_success:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise UnexpectedResponseError(
                    f"Dojo answered {method} {path} with something that is not JSON.",
                    status=response.status_code,
                    method=method,
                    path=path,
                ) from None
        raise error_for_status(
            response.status_code,
            parse_problem(response.content),
            method=method,
            path=path,
            secrets=(self._api_key,),
        )

    def _parse(self, model: type[ModelT], data: Any, method: str, path: str) -> ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors())
            raise UnexpectedResponseError(
                self._redact(f"Dojo's answer to {method} {path} could not be read (fields: {fields})."),
                status=200,
                method=method,
                path=path,
            ) from None

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)


def _segment(value: str) -> str:
    """An id as one path segment: never lets ``/`` or ``..`` change the path."""
    if not value:
        raise ValueError("an id is required")
    return quote(value, safe="")
