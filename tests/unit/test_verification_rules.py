"""The EPOS tester tool's rules (contract §5.7), pure: parameters, refusals, timeouts, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from epos_bridge.domain.verification import (
    PRODUCTION_REFUSAL,
    FlowDescription,
    FlowParam,
    FlowResult,
    FlowRun,
    FlowStatus,
    InvalidParams,
    ParamKind,
    StepResult,
    UnknownFlow,
    exit_code,
    finished_steps_since,
    parse_assignments,
    select_flows,
    timed_out,
    values_to_send,
    verification_refusal,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

PAY = FlowDescription(
    "Pay at Table",
    (
        FlowParam("tableId", "string", True, "a table"),
        FlowParam("parts", "integer", False, "how many payments", "2"),
        FlowParam("note", "string", False, "free text"),
        FlowParam("dryRun", "boolean", False, "do not pay"),
    ),
)


def step(name: str, status: FlowStatus, seconds: float | None = 0.5) -> StepResult:
    finished = T0 + timedelta(seconds=seconds) if seconds is not None else None
    return StepResult(name, status, T0, finished)


def test_only_sandbox_keys_may_use_the_tester_tool() -> None:
    assert verification_refusal("sandbox") is None
    assert verification_refusal("production") == PRODUCTION_REFUSAL
    assert "create orders" in PRODUCTION_REFUSAL and "sk_sandbox_" in PRODUCTION_REFUSAL
    assert "sandbox key" in str(verification_refusal("unknown"))


def test_parameter_kinds_come_from_the_name_for_ids_and_the_type_otherwise() -> None:
    assert FlowParam("orderId").kind is ParamKind.ORDER
    assert FlowParam("tableId", "string").kind is ParamKind.TABLE
    assert FlowParam("parts", "integer").kind is ParamKind.INTEGER
    assert FlowParam("count", "int32").kind is ParamKind.INTEGER
    assert FlowParam("dryRun", "Boolean").kind is ParamKind.BOOLEAN
    assert FlowParam("paymentIntentId").kind is ParamKind.TEXT


def test_values_to_send_fill_defaults_drop_empty_optionals_and_unknown_names() -> None:
    values = values_to_send(PAY, {"tableId": " T4 ", "note": "", "colour": "red"})
    assert values == {"tableId": "T4", "parts": "2"}


def test_a_value_given_wins_over_the_default() -> None:
    assert values_to_send(PAY, {"tableId": "T4", "parts": "3", "dryRun": "false"}) == {
        "tableId": "T4",
        "parts": "3",
        "dryRun": "false",
    }


def test_missing_required_and_mistyped_values_are_named_together() -> None:
    with pytest.raises(InvalidParams) as raised:
        values_to_send(PAY, {"parts": "two", "dryRun": "maybe"})
    assert raised.value.problems == {
        "tableId": "tableId is required",
        "parts": "parts must be a whole number, not 'two'",
        "dryRun": "dryRun must be true or false, not 'maybe'",
    }
    assert str(raised.value).startswith("Pay at Table: ")


def test_command_line_assignments_split_on_the_first_equals() -> None:
    assert parse_assignments(["orderId=ord_1", " parts = 3", "note=a=b"]) == {
        "orderId": "ord_1",
        "parts": "3",
        "note": "a=b",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignments(["orderId"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignments(["=x"])


def test_flows_are_selected_in_dojos_order_by_exact_or_caseless_name() -> None:
    flows = [FlowDescription("Get Order"), PAY, FlowDescription("Bookings")]
    assert select_flows(flows, []) == flows
    assert select_flows(flows, ["bookings", "Get Order", "Get Order"]) == [flows[0], flows[2]]
    with pytest.raises(UnknownFlow, match="offers: Get Order, Pay at Table, Bookings"):
        select_flows(flows, ["Refunds"])


def test_an_unknown_status_is_a_failure_with_a_note_never_a_success() -> None:
    assert FlowStatus.read("SUCCESS") == (FlowStatus.SUCCESS, None)
    status, note = FlowStatus.read("CANCELLED")
    assert status is FlowStatus.FAILURE
    assert note is not None and "CANCELLED" in note
    assert FlowStatus.read(None)[0] is FlowStatus.FAILURE


def test_a_flow_still_running_at_the_deadline_is_timed_out_keeping_its_steps() -> None:
    last = FlowResult(
        "f1", "Get Order through EPOS Data API", FlowStatus.IN_PROGRESS, T0, steps=(step("a", FlowStatus.SUCCESS),)
    )
    result = timed_out("f1", "Get Order", last, 180.4, T0 + timedelta(minutes=3))
    assert result.status is FlowStatus.TIMED_OUT
    assert result.flow_name == "Get Order through EPOS Data API"
    assert result.steps == last.steps
    assert result.finished_at == T0 + timedelta(minutes=3)
    assert "after 180 s" in result.notes[-1] and "may still be running" in result.notes[-1]
    run = FlowRun("Get Order", {}, result)
    assert run.why_not() == result.notes[-1]
    assert exit_code([run]) == 1


def test_steps_are_reported_once_each_as_they_finish() -> None:
    first = FlowResult(
        "f", "F", FlowStatus.IN_PROGRESS, steps=(step("a", FlowStatus.SUCCESS), step("b", FlowStatus.IN_PROGRESS, None))
    )
    second = FlowResult(
        "f",
        "F",
        FlowStatus.SUCCESS,
        steps=(step("a", FlowStatus.SUCCESS), step("b", FlowStatus.SUCCESS), step("c", FlowStatus.FAILURE)),
    )
    assert [s.name for s in finished_steps_since(None, first)] == ["a"]
    assert [s.name for s in finished_steps_since(first, second)] == ["b", "c"]
    assert finished_steps_since(second, second) == []


def test_the_failing_step_is_named_with_dojos_words() -> None:
    failing = StepResult(
        "Get the order",
        FlowStatus.FAILURE,
        T0,
        T0,
        ("GetOrder method not found", "Please register the GetOrder method on an EPOS Data API adapter"),
    )
    result = FlowResult(
        "f", "Get Order through EPOS Data API", FlowStatus.FAILURE, steps=(step("x", FlowStatus.SUCCESS), failing)
    )
    run = FlowRun("Get Order", {"orderId": "1"}, result)
    assert result.failing_step is failing
    assert run.name == "Get Order through EPOS Data API"
    assert run.why_not() == (
        "step 'Get the order' FAILURE: GetOrder method not found; "
        "Please register the GetOrder method on an EPOS Data API adapter"
    )


def test_exit_code_is_0_only_when_every_flow_succeeded() -> None:
    ok = FlowRun("A", {}, FlowResult("1", "A", FlowStatus.SUCCESS))
    not_started = FlowRun("B", {}, error="Not started: tableId is required")
    assert exit_code([ok]) == 0
    assert exit_code([ok, not_started]) == 1
    assert not_started.status is FlowStatus.FAILURE and not_started.why_not() == "Not started: tableId is required"
    assert exit_code([]) == 1  # nothing ran: nothing was proven
