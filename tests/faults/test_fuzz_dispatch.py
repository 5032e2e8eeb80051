"""Hypothesis-generated requests through the real dispatcher and SQLite adapter.

Wrong types, missing fields, huge and deep values, unicode, any of the 22 methods or junk:
the answer is always contract-shaped (or the frame is dropped when it carries no id), never an
exception, never an unexpected internal failure; and the bridge's Python memory does not grow
between the first and the last thousand requests.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epos_bridge.protocol.capabilities import WireMethod
from epos_bridge.services.dispatcher import Dispatcher
from tests.faults.helpers import venue_with_orders
from tests.helpers.contract import assert_valid_response, validator, ws_schema
from tests.helpers.pos import sqlite_pos

pytestmark = pytest.mark.timeout(300)

EXAMPLES = 2000
METHODS = [m.value for m in WireMethod]
MEMORY_BOUND_BYTES = 1024 * 1024


def _resolve(fragment: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in fragment:
        fragment = ws_schema()["$defs"][fragment["$ref"].rsplit("/", 1)[-1]]
    return fragment


def _properties(fragment: dict[str, Any]) -> dict[str, Any]:
    fragment = _resolve(fragment)
    found: dict[str, Any] = dict(fragment.get("properties", {}))
    for part in fragment.get("allOf", []):
        found.update(_properties(part))
    return found


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), st.text(max_size=30),
)  # fmt: skip
any_json = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
huge = st.sampled_from([10_000, 100_000, 1_000_000]).map(lambda n: "é" * n)
deep = st.integers(min_value=10, max_value=400).map(lambda n: json.loads("[" * n + "]" * n))
DEEP_MARK = "\u0000deep\u0000"
plausible = st.one_of(
    st.just("1"), st.just("7"), st.just("T12"), st.just("2030-01-01T12:00:00Z"), st.just({"value": 100, "currencyCode": "GBP"}),
    st.just([]), st.just({}), st.integers(-5, 5), st.text(alphabet="0123456789", min_size=1, max_size=25),
    st.text(max_size=20), st.just("\u202e\u0000\ud7ff\U0001f4b3"),
)  # fmt: skip


@st.composite
def params_for(draw: st.DrawFn, method: str) -> Any:
    spec = ws_schema()["methods"].get(method)
    if spec is None or draw(st.integers(0, 9)) == 0:
        return draw(any_json)
    properties = _properties(spec["params"])
    params: dict[str, Any] = {}
    for name, fragment in properties.items():
        roll = draw(st.integers(0, 9))
        if roll == 0:
            continue  # missing
        if roll <= 5:
            params[name] = draw(plausible)
        elif roll <= 7:
            nested = _properties(fragment)
            params[name] = {k: draw(plausible) for k in nested} if nested else draw(any_json)
        elif roll == 8:
            params[name] = draw(st.one_of(huge, deep))
        else:
            params[name] = draw(any_json)
    params.update(draw(st.dictionaries(st.text(max_size=8), any_json, max_size=2)))
    return params


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        return draw(st.binary(max_size=100))
    if kind == 2:
        return json.dumps(draw(any_json))
    if kind == 3:  # nesting deeper than any JSON parser's recursion limit, in params or in the id
        depth = draw(st.sampled_from([900, 2000, 100_000]))
        document = {"jsonrpc": "2.0", "method": draw(st.sampled_from(METHODS)), "id": "deep", "params": DEEP_MARK}
        if draw(st.booleans()):
            document["id"], document["params"] = DEEP_MARK, {"headers": {}}
        return json.dumps(document).replace(json.dumps(DEEP_MARK), "[" * depth + "]" * depth)
    method = draw(st.one_of(st.sampled_from(METHODS), st.sampled_from(METHODS), st.text(max_size=30), any_json))
    document: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0", None]))}
    document["method"] = method
    id_kind = draw(st.integers(0, 9))
    if id_kind < 6:
        document["id"] = draw(st.text(min_size=1, max_size=40))
    elif id_kind < 9:
        document["id"] = draw(any_json)
    if draw(st.integers(0, 12)):
        document["params"] = draw(params_for(method if isinstance(method, str) else ""))
    return json.dumps(document)


def check_answer(frame: str | bytes, text: str | None) -> None:
    if isinstance(frame, bytes):
        assert text is None
        return
    try:
        request = json.loads(frame)
    except (ValueError, RecursionError):
        assert text is None
        return
    if not isinstance(request, dict) or request.get("id") is None:
        assert text is None, f"a frame without an id was answered: {text[:200] if text else text}"
        return
    assert text is not None, "a request with an id was dropped"
    response = json.loads(text)
    assert response["jsonrpc"] == "2.0"
    assert response["id"] == request["id"]
    method = request.get("method")
    spec = ws_schema()["methods"].get(method) if isinstance(method, str) else None
    if spec is not None and isinstance(request["id"], str):
        assert_valid_response(method, response)
    elif "error" in response:
        assert set(response) == {"jsonrpc", "id", "method", "error"}, response
        validator("#/$defs/EPOSError").validate(response["error"])
    else:
        # The schema's envelopes only allow string ids; the bridge echoes any JSON id (JSON-RPC
        # 2.0 allows numbers too), so check the result itself.
        assert spec is not None, response
        assert set(response) == {"jsonrpc", "id", "method", "result"}, response
        validator(spec["result"]).validate(response["result"])


class Unexpected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage() + (f"\n{record.exc_text or ''}" if record.exc_info else ""))


@pytest.fixture
def quiet_bridge_logs() -> Any:
    """Count ERROR records from the bridge and keep the rest out of pytest's in-memory capture
    (which would otherwise grow with every dropped-frame warning and spoil the memory figure)."""
    logger = logging.getLogger("epos_bridge")
    handler = Unexpected()
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)
    logger.propagate = saved


def test_every_generated_request_gets_a_contract_answer_and_memory_stays_flat(
    tmp_path: Path, quiet_bridge_logs: Unexpected
) -> None:
    db = tmp_path / "venue.db"
    venue_with_orders(db, 5)
    served_frames: list[str | bytes] = []
    with asyncio.Runner() as runner:
        adapter = sqlite_pos(db)
        dispatcher = Dispatcher(adapter)

        async def serve(frame: str | bytes) -> str | None:
            served = await asyncio.wait_for(dispatcher.handle_text(frame), 15)
            return None if served is None else served.response_text

        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        )  # fmt: skip
        @given(frame=frames())
        def answers(frame: str | bytes) -> None:
            served_frames.append(frame)
            check_answer(frame, runner.run(serve(frame)))
            assert not quiet_bridge_logs.records, quiet_bridge_logs.records[0]

        try:
            answers()
            assert len(served_frames) >= EXAMPLES

            # Memory: replay the generated frames; Python memory after the first thousand and
            # after the last thousand must be within a small bound.
            replay = served_frames[: max(EXAMPLES, 3000)]
            gc.collect()
            tracemalloc.start()
            try:
                for frame in replay[:1000]:
                    runner.run(serve(frame))
                gc.collect()
                first, _ = tracemalloc.get_traced_memory()
                for frame in replay[1000:]:
                    runner.run(serve(frame))
                gc.collect()
                last, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert last - first < MEMORY_BOUND_BYTES, f"grew {last - first} bytes over {len(replay) - 1000} requests"
            assert not quiet_bridge_logs.records, quiet_bridge_logs.records[0]
        finally:
            runner.run(adapter.close())
