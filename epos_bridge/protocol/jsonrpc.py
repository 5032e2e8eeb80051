"""The JSON-RPC envelope Dojo and the bridge exchange (contract §1.3, §1.4, §6 A3/A7).

Pure functions: text in, dicts out. No I/O.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from epos_bridge.protocol.base import WireEnum, WireModel, to_wire

log = logging.getLogger(__name__)

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
        document = _loads(text)
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


_LONG_NUMBER = re.compile(r"\d{19}")
"""19 digits in a row: a number orjson may read as a float (it reads integers past 64 bits so)."""


def _loads(text: str) -> Any:
    """orjson (Rust) for the frames Dojo really sends; the standard library for the rest, so
    every edge keeps its meaning: an integer past 64 bits (orjson makes it a float, and an id
    must be echoed as sent), a lone surrogate in an id, NaN, nesting past orjson's limit, and
    the error messages (orjson refuses those; json decides)."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


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


def encode_success(request_id: Any, method: Any, result: WireModel | list[WireModel] | dict[str, Any]) -> str:
    """:func:`encode` of :func:`success_response`, the result serialised by pydantic-core in
    Rust (``model_dump_json``) instead of ``model_dump`` + ``json.dumps``: same names, same
    values, same order, ``None`` omitted; then escaped to ASCII as :func:`encode` is."""
    if isinstance(result, WireModel):
        payload = result.model_dump_json(by_alias=True, exclude_none=True)
    elif isinstance(result, list):
        payload = "[" + ",".join(item.model_dump_json(by_alias=True, exclude_none=True) for item in result) + "]"
    else:
        payload = json.dumps(result, separators=(",", ":"), ensure_ascii=True)
    id_text = json.dumps(request_id, separators=(",", ":"), ensure_ascii=True)
    method_text = json.dumps(method, separators=(",", ":"), ensure_ascii=True)
    return f'{{"jsonrpc":"{JSONRPC_VERSION}","id":{id_text},"method":{method_text},"result":{ascii_json(payload)}}}'


_NON_ASCII = re.compile("[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def ascii_json(text: str) -> str:
    """JSON text with every non-ASCII character written as a ``\\u`` escape (a surrogate pair
    beyond the BMP), as ``json.dumps(..., ensure_ascii=True)`` writes it."""
    return text if text.isascii() else _NON_ASCII.sub(_escape, text)


def encode(response: dict[str, Any]) -> str:
    """ASCII JSON: every id Dojo can send (lone surrogates, control characters) can be echoed in
    a frame that encodes as UTF-8, so no request's content can break the connection."""
    return json.dumps(response, separators=(",", ":"), ensure_ascii=True)


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


def read_request(text: str | bytes) -> IncomingRequest | None:
    """Parse a frame once; ``None`` (logged) for a frame that can get no answer."""
    if isinstance(text, bytes):
        log.warning("dropped a binary frame of %d bytes: requests are text frames", len(text))
        return None
    try:
        request = peek_request(text)
    except UnreadableFrame as exc:
        log.warning("dropped an unreadable frame (trace %s): %s", new_trace_id(), exc)
        return None
    if not request.has_id:
        log.warning("dropped a frame without an id (method %a)", str(request.method)[:80])
        return None
    return request


def request_key(request_id: Any) -> str:
    """The id as canonical ASCII JSON, so ids of different JSON types never collide and any id
    (lone surrogates included) can be stored."""
    return json.dumps(request_id, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
