"""The JSON-RPC envelope Dojo and the bridge exchange (contract §1.3, §1.4, §6 A3/A7).

Pure functions: text in, dicts out. No I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from epos_bridge.protocol.base import WireEnum, WireModel, to_wire

JSONRPC_VERSION = "2.0"


class EPOSErrorType(WireEnum):
    NOT_FOUND = "NotFound"
    INVALID_REQUEST = "InvalidRequest"
    CONFLICT = "Conflict"
    UNEXPECTED_ERROR = "UnexpectedError"


class EPOSError(WireModel):
    """Replaces the JSON-RPC error object; no numeric codes exist (contract §6 A6)."""

    error_type: EPOSErrorType
    debug_message: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class IncomingRequest:
    """A frame that parsed as a JSON object, parsed once for everyone who reads it.

    ``id`` keeps its original JSON type (and may be any JSON string, lone surrogates included);
    ``params`` is the parsed JSON value, validated per method by the dispatcher.
    """

    id: Any
    method: Any
    params: Any
    has_id: bool

    def digest(self) -> str:
        """What this request asks, as a hash of (method, params): the same JSON-RPC id reused for
        a different request must not be answered with the first one's answer."""
        canonical = json.dumps([self.method, self.params], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


class UnreadableFrame(Exception):
    """The frame is not a JSON object: no id can be known, so no reply can be addressed."""


def peek_request(text: str) -> IncomingRequest:
    """Parse a frame's JSON once; params are validated per method later."""
    try:
        document = json.loads(text)
    except RecursionError as exc:
        raise UnreadableFrame("JSON nested too deeply") from exc
    except ValueError as exc:
        raise UnreadableFrame(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UnreadableFrame(f"a JSON-RPC request must be an object, got {type(document).__name__}")
    return IncomingRequest(
        id=document.get("id"),
        method=document.get("method"),
        params=document.get("params"),
        has_id="id" in document and document["id"] is not None,
    )


def printable_id(request_id: Any, limit: int = 80) -> str:
    """An id for a log line: as sent when it is plain printable ASCII, else escaped (a lone
    surrogate cannot be written to a log file); short either way."""
    plain = isinstance(request_id, str) and request_id.isascii() and request_id.isprintable() and request_id
    text = request_id if plain else ascii(request_id)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def success_response(
    request_id: Any, method: Any, result: WireModel | list[WireModel] | dict[str, Any]
) -> dict[str, Any]:
    """Echo ``id`` byte-for-byte and ``method`` (contract §1.3 (rec))."""
    if isinstance(result, WireModel):
        payload: Any = to_wire(result)
    elif isinstance(result, list):
        payload = [to_wire(item) for item in result]
    else:
        payload = result
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method, "result": payload}


def error_response(request_id: Any, method: Any, error: EPOSError) -> dict[str, Any]:
    """On error ``result`` is omitted: JSON-RPC 2.0 forbids both (contract §6 A3 (rec))."""
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method, "error": to_wire(error)}


def encode(response: dict[str, Any]) -> str:
    """ASCII JSON: every id Dojo can send (lone surrogates, control characters) can be echoed in
    a frame that encodes as UTF-8, so no request's content can break the connection."""
    return json.dumps(response, separators=(",", ":"), ensure_ascii=True)
