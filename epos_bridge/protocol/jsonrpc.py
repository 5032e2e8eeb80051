"""The JSON-RPC envelope Dojo and the bridge exchange (contract §1.3, §1.4, §6 A3/A7).

Pure functions: text in, dicts out. No I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from epos_bridge.protocol.base import WireModel, to_wire

JSONRPC_VERSION = "2.0"


class EPOSErrorType(StrEnum):
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
    """A frame that parsed as a JSON object. ``id`` keeps its original JSON type."""

    id: Any
    method: Any
    params: Any
    has_id: bool


class UnreadableFrame(Exception):
    """The frame is not a JSON object: no id can be known, so no reply can be addressed."""


def peek_request(text: str) -> IncomingRequest:
    """Read the envelope without validating params (they are validated per method)."""
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
    return json.dumps(response, separators=(",", ":"), ensure_ascii=False)
