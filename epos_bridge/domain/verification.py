"""Dojo's EPOS tester tool as facts and rules (contract §5.7): the flows Dojo offers, their
parameters, the result of each step, and what a verification run adds up to.

Dojo runs a *flow* (one method, or a whole product flow such as Pay at Table) against the
capabilities this till registered, by calling the bridge over the WebSocket, and reports every
step. These types are what the client reads Dojo's answers into (leniently, in ``dojo_api``) and
what the CLI, the dialog and the report show. The rules here decide, without any I/O:

* whether the tester tool may be used with a key (sandbox only: a flow creates orders and
  takes payments),
* which parameter values a flow is started with (defaults filled in, required ones checked),
* when following a flow stops, and what a flow that never finished looks like (``TIMED_OUT``),
* what the whole run's outcome (and the ``verify`` command's exit code) is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

TESTER_NOT_ENABLED = "Dojo has not enabled the EPOS tester tool for this key; ask your Partnership Development Manager"
"""Contract §5.7 (rec): what 401/403/404 from ``/epos-tester-tool/*`` means, in the guide's words."""

PRODUCTION_REFUSAL = (
    "Verification with Dojo's EPOS tester tool is off for production keys: its flows create orders "
    "and record payments on the venue's POS. Use the venue's sandbox key (sk_sandbox_…) to verify."
)
UNKNOWN_KEY_REFUSAL = (
    "Verification with Dojo's EPOS tester tool needs a sandbox key (sk_sandbox_…): its flows create "
    "orders and record payments, and this key does not say it is a sandbox key."
)

POLL_INTERVAL_S = 1.0
"""Contract §5.7 (rec): ask for the flow's result about once a second."""
FLOW_TIMEOUT_S = 180.0
"""Contract §5.7 (rec): give up after a few minutes and show ``TIMED_OUT`` as such."""


class TesterToolError(Exception):
    """A call to the tester tool failed; ``str(error)`` is a sentence an installer can act on."""

    __test__ = False  # not a pytest test class, whatever the name says


class TesterToolUnavailable(TesterToolError):
    """The tester tool cannot be used with this key at all (not enabled, or not a sandbox key)."""


class FlowStatus(StrEnum):
    """``Status`` of the EPOS Tester API, for a flow and for each of its steps."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    TIMED_OUT = "TIMED_OUT"
    IN_PROGRESS = "IN_PROGRESS"

    @classmethod
    def read(cls, raw: object) -> tuple[FlowStatus, str | None]:
        """Dojo's status, leniently: an unknown value counts as a failure (never as success) and
        comes back as a note to show beside it."""
        try:
            return cls(str(raw)), None
        except ValueError:
            return cls.FAILURE, f"Dojo reported the status {str(raw)[:40]!r}, which the bridge does not know"


def verification_refusal(environment: str) -> str | None:
    """Why the tester tool must not be used with a key of this environment, or ``None`` (sandbox).

    ``environment`` is ``protocol.dojo.environment_of(key)``: sandbox, production or unknown.
    """
    if environment == "sandbox":
        return None
    if environment == "production":
        return PRODUCTION_REFUSAL
    return UNKNOWN_KEY_REFUSAL


# --- flows and their parameters ---------------------------------------------------------------


class ParamKind(StrEnum):
    """How a parameter is entered: an order or table of this POS gets a picker."""

    ORDER = "order"
    TABLE = "table"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TEXT = "text"


_INTEGER_TYPES = frozenset({"integer", "int", "int32", "int64", "long", "number"})
_BOOLEAN_TYPES = frozenset({"boolean", "bool"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class FlowParam:
    """``Param`` of a flow description: ``name``, ``type``, ``required``, ``description``, ``default``."""

    name: str
    type: str = "string"
    required: bool = False
    description: str = ""
    default: str | None = None

    @property
    def kind(self) -> ParamKind:
        # The API types every id as a plain string; the name says which POS entity it is.
        lowered = self.name.lower()
        if lowered.endswith("orderid"):
            return ParamKind.ORDER
        if lowered.endswith("tableid"):
            return ParamKind.TABLE
        declared = self.type.strip().lower()
        if declared in _INTEGER_TYPES:
            return ParamKind.INTEGER
        if declared in _BOOLEAN_TYPES:
            return ParamKind.BOOLEAN
        return ParamKind.TEXT

    def problem_with(self, value: str) -> str | None:
        """Why ``value`` (already trimmed, not empty) cannot be sent for this parameter, or ``None``."""
        if self.kind is ParamKind.INTEGER:
            try:
                int(value)
            except ValueError:
                return f"{self.name} must be a whole number, not {value[:40]!r}"
        if self.kind is ParamKind.BOOLEAN and value.lower() not in _TRUE | _FALSE:
            return f"{self.name} must be true or false, not {value[:40]!r}"
        return None


@dataclass(frozen=True)
class FlowDescription:
    """A flow Dojo can run: its ``name`` (what ``POST /flows`` takes) and its parameters."""

    name: str
    params: tuple[FlowParam, ...] = ()

    def param(self, name: str) -> FlowParam | None:
        return next((p for p in self.params if p.name == name), None)


class InvalidParams(ValueError):
    """Values a flow cannot start with; ``problems`` maps each parameter to what is wrong."""

    def __init__(self, flow: str, problems: Mapping[str, str]) -> None:
        self.flow = flow
        self.problems = dict(problems)
        super().__init__(f"{flow}: " + "; ".join(self.problems.values()))


def values_to_send(flow: FlowDescription, given: Mapping[str, str]) -> dict[str, str]:
    """The ``params`` of ``POST /flows`` for ``flow``: each declared parameter with the value given
    (trimmed), else its default; an empty optional one is left out. Values go as strings, the way
    the API types ``default``. Raises :class:`InvalidParams` for a missing required value or one
    that is not of the declared type. Values for parameters the flow does not declare are dropped.
    """
    values: dict[str, str] = {}
    problems: dict[str, str] = {}
    for param in flow.params:
        value = (given.get(param.name) or "").strip() or (param.default or "").strip()
        if not value:
            if param.required:
                problems[param.name] = f"{param.name} is required"
            continue
        problem = param.problem_with(value)
        if problem is not None:
            problems[param.name] = problem
            continue
        values[param.name] = value
    if problems:
        raise InvalidParams(flow.name, problems)
    return values


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """``["orderId=ord_1", "parts=3"]`` → ``{"orderId": "ord_1", "parts": "3"}`` (command line)."""
    values: dict[str, str] = {}
    for text in assignments:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"--param takes KEY=VALUE, not {text!r}")
        values[name.strip()] = value.strip()
    return values


class UnknownFlow(ValueError):
    pass


def select_flows(available: Sequence[FlowDescription], names: Sequence[str]) -> list[FlowDescription]:
    """The flows to run, in the order Dojo lists them (all when ``names`` is empty).

    Names are matched exactly, then ignoring case; an unknown name raises :class:`UnknownFlow`
    listing what Dojo offers.
    """
    if not names:
        return list(available)
    chosen: list[FlowDescription] = []
    for name in names:
        match = next((f for f in available if f.name == name), None) or next(
            (f for f in available if f.name.casefold() == name.strip().casefold()), None
        )
        if match is None:
            offered = ", ".join(f.name for f in available) or "none"
            raise UnknownFlow(f"Dojo offers no flow called {name!r}; it offers: {offered}")
        if match not in chosen:
            chosen.append(match)
    return [f for f in available if f in chosen]


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """``StepResult``: one step of a flow, as Dojo reported it."""

    name: str
    status: FlowStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    additional_information: tuple[str, ...] = ()

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class FlowResult:
    """``FlowResult``: a flow's status and its steps so far. ``flow_name`` may differ from the name
    the flow was started with ("Get Order" → "Get Order through EPOS Data API", §5.7)."""

    flow_id: str
    flow_name: str
    status: FlowStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: tuple[StepResult, ...] = ()
    notes: tuple[str, ...] = ()
    """What the bridge adds to Dojo's answer (an unknown status, a timeout)."""

    @property
    def finished(self) -> bool:
        return self.status is not FlowStatus.IN_PROGRESS

    @property
    def failing_step(self) -> StepResult | None:
        """The first step that did not succeed (and is no longer running)."""
        return next(
            (s for s in self.steps if s.status not in (FlowStatus.SUCCESS, FlowStatus.IN_PROGRESS)),
            None,
        )


def timed_out(flow_id: str, flow_name: str, last: FlowResult | None, waited_s: float, at: datetime) -> FlowResult:
    """What the bridge shows for a flow still ``IN_PROGRESS`` after ``waited_s``: ``TIMED_OUT``,
    with the steps seen so far, and a note that Dojo may still be running it."""
    note = (
        f"No final result from Dojo after {waited_s:.0f} s; the bridge stopped waiting "
        "(the flow may still be running at Dojo)"
    )
    if last is None:
        return FlowResult(flow_id, flow_name, FlowStatus.TIMED_OUT, finished_at=at, notes=(note,))
    return FlowResult(
        last.flow_id,
        last.flow_name,
        FlowStatus.TIMED_OUT,
        started_at=last.started_at,
        finished_at=at,
        steps=last.steps,
        notes=(*last.notes, note),
    )


def finished_steps_since(previous: FlowResult | None, current: FlowResult) -> list[StepResult]:
    """Steps that finished since ``previous`` was seen (for printing each step once, live)."""
    before = previous.steps if previous is not None else ()
    done_before = sum(1 for s in before if s.status is not FlowStatus.IN_PROGRESS)
    done_now = [s for s in current.steps if s.status is not FlowStatus.IN_PROGRESS]
    return done_now[done_before:]


@dataclass(frozen=True)
class FlowRun:
    """One flow as this bridge ran it: what it asked for, and what came back.

    ``error`` is set when the flow could not be started or followed at all (Dojo refused the
    parameters, the network failed); ``result`` is the last thing Dojo reported, if anything.
    """

    flow: str
    params: Mapping[str, str] = field(default_factory=dict)
    result: FlowResult | None = None
    error: str | None = None

    @property
    def status(self) -> FlowStatus:
        if self.result is not None:
            return self.result.status
        return FlowStatus.FAILURE if self.error is not None else FlowStatus.IN_PROGRESS

    @property
    def name(self) -> str:
        """The name Dojo gave the flow in its result, else the name it was started with."""
        return self.result.flow_name if self.result is not None and self.result.flow_name else self.flow

    @property
    def succeeded(self) -> bool:
        return self.status is FlowStatus.SUCCESS

    def why_not(self) -> str | None:
        """One line on why the flow did not succeed (``None`` when it did, or is still running)."""
        if self.succeeded or self.status is FlowStatus.IN_PROGRESS:
            return None
        if self.error is not None:
            return self.error
        assert self.result is not None
        step = self.result.failing_step
        if step is not None:
            said = f": {'; '.join(step.additional_information)}" if step.additional_information else ""
            return f"step {step.name!r} {step.status.value}{said}"
        if self.result.notes:
            return self.result.notes[-1]
        return f"Dojo reported {self.result.status.value}"


def run_succeeded(runs: Sequence[FlowRun]) -> bool:
    """Every flow ran and succeeded (an empty run proves nothing, so it is not a success)."""
    return bool(runs) and all(run.succeeded for run in runs)


EXIT_ALL_SUCCEEDED = 0
EXIT_A_FLOW_FAILED = 1
EXIT_TESTER_UNAVAILABLE = 2


def exit_code(runs: Sequence[FlowRun]) -> int:
    """``epos-bridge verify``: 0 only when every flow succeeded, else 1 (2 is decided earlier:
    the tester tool could not be used at all)."""
    return EXIT_ALL_SUCCEEDED if run_succeeded(runs) else EXIT_A_FLOW_FAILED
