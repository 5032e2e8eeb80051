"""Validate what the bridge sends against ../shared/contract/epos-data-ws.schema.json.

The schema is used exactly as published, with one documented exception: on error we omit
``result`` (contract §6 A3 (rec)), so error responses are checked against the envelope minus
that requirement and the ``EPOSError`` definition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from epos_bridge.ports import PosAdapter
from epos_bridge.services.dispatcher import Dispatcher


def contract_dir() -> Path:
    override = os.environ.get("EPOS_BRIDGE_CONTRACT_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "contract"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("../shared/contract not found; set EPOS_BRIDGE_CONTRACT_DIR")


@cache
def ws_schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((contract_dir() / "epos-data-ws.schema.json").read_text())
    return document


def validator(ref: str | dict[str, Any]) -> jsonschema.Draft202012Validator:
    """``ref`` is ``"#/$defs/X"`` or a method entry's ``{"$ref": ...}`` object."""
    target = ref["$ref"] if isinstance(ref, dict) else ref
    return jsonschema.Draft202012Validator(
        {"$defs": ws_schema()["$defs"], "$ref": target}, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid_response(method: str, response: dict[str, Any]) -> None:
    """A success must match the method's response envelope; an error the EPOSError shape."""
    spec = ws_schema()["methods"][method]
    if "error" in response:
        assert "result" not in response, "an error response must not carry result"
        assert response["jsonrpc"] == "2.0"
        assert "id" in response and "method" in response
        validator("#/$defs/EPOSError").validate(response["error"])
        return
    validator(spec["responseEnvelope"]).validate(response)
    validator(spec["result"]).validate(response["result"])


def assert_valid_params(method: str, params: dict[str, Any]) -> None:
    """Tests build requests the way Dojo would; check them too so the tests speak the contract."""
    validator(ws_schema()["methods"][method]["params"]).validate(params)


@cache
def _tester_defs() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((contract_dir() / "epos-tester.schema.json").read_text())
    definitions: dict[str, Any] = document["$defs"]
    return definitions


def assert_tester_shape(definition: str, value: Any) -> Any:
    """``value`` matches ``#/$defs/<definition>`` of the published EPOS Tester API (§5.7); returns it."""
    jsonschema.Draft202012Validator(
        {"$defs": _tester_defs(), "$ref": f"#/$defs/{definition}"},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(value)
    return value


Rpc = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def rpc_over(adapter: PosAdapter) -> Rpc:
    """Requests as Dojo sends them, through the real dispatcher (``headers`` added when left
    out); every answer is checked against the contract schema before the test sees it."""
    dispatcher = Dispatcher(adapter)
    counter = iter(range(1, 1_000_000))

    async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
        frame = {"jsonrpc": "2.0", "id": f"r{next(counter)}", "method": method, "params": {"headers": {}, **params}}
        served = await dispatcher.handle_text(json.dumps(frame))
        assert served is not None
        answer: dict[str, Any] = json.loads(served.response_text)
        assert_valid_response(method, answer)
        return answer

    return call
