"""One table of wire methods (issue 20, item 5): every method Dojo can send has its params model
and the adapter call that answers it in ``protocol/methods.py``, and the dispatcher's routes are
generated from it, so a method cannot be added to one place and forgotten in another."""

from __future__ import annotations

import inspect

from epos_bridge.ports import PosAdapter
from epos_bridge.protocol.capabilities import WireMethod
from epos_bridge.protocol.methods import METHODS, PARAMS_MODEL
from epos_bridge.services.dispatcher import ROUTES


def test_every_wire_method_is_in_the_table_once() -> None:
    assert set(METHODS) == set(WireMethod)
    assert {method: spec.params for method, spec in METHODS.items()} == PARAMS_MODEL


def test_every_route_calls_a_port_method_taking_params_and_context() -> None:
    routed = {method for method, spec in METHODS.items() if spec.port_call is not None}
    assert routed == set(WireMethod) - {WireMethod.HANDLE_EVENT}  # routed by its event type instead
    assert set(ROUTES) == routed
    for method in routed:
        name = METHODS[method].port_call
        assert name is not None
        call = getattr(PosAdapter, name, None)
        assert call is not None, f"{method.value} names {name}, which PosAdapter does not have"
        assert list(inspect.signature(call).parameters)[:3] == ["self", "params", "ctx"], name


def test_the_methods_dojo_answers_with_an_empty_object_are_the_ones_the_contract_says() -> None:
    empty = {method for method, spec in METHODS.items() if spec.answers_empty}
    assert empty == {WireMethod.EXTEND_ORDER_LOCK, WireMethod.DELETE_PARTY_BY_ID, WireMethod.DELETE_RESERVATION_BY_ID}
