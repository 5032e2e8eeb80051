"""Dojo's EPOS tester tool over REST (contract §5.7, ``epos-tester.schema.json``).

Three calls, same base URL and headers as the rest of the Dojo API (§5.1):

* ``GET /epos-tester-tool/flows``: the flows that can be started. The schema declares one
  ``FlowDescription`` although the prose says it lists them all, so both an array and a single
  object are accepted.
* ``POST /epos-tester-tool/flows`` with ``{"flow": name, "params": {...}}``: the answer is the
  bare flow id as a quoted JSON string. **Never retried**: a flow creates orders and records
  payments, and a repeat would run it twice.
* ``GET /epos-tester-tool/flows/{flowId}``: the ``FlowResult`` so far (note ``flowID``).

Answers are read leniently (unknown keys kept, nearly everything optional, an unknown status
read as a failure) and turned into the plain types of :mod:`epos_bridge.domain.verification`.
``401``/``403``/``404`` mean the tool is not enabled for the account: that is
:class:`TesterToolUnavailable` with the guide's wording, not a generic failure. A key that is not
a sandbox key is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from epos_bridge.domain.verification import (
    TESTER_NOT_ENABLED,
    FlowDescription,
    FlowParam,
    FlowResult,
    FlowStatus,
    StepResult,
    TesterToolError,
    TesterToolUnavailable,
    verification_refusal,
)
from epos_bridge.protocol.dojo_errors import AuthRejected, DojoApiError, NotFoundError

FLOWS_PATH = "/epos-tester-tool/flows"


class Call(Protocol):
    """``DojoClient._call``: one REST call with the client's headers, retry policy and errors."""

    def __call__(self, method: str, path: str, *, json_body: Any = None, retry: bool) -> Awaitable[Any]: ...


Segment = Callable[[str], str]


class _Lenient(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class _Param(_Lenient):
    name: str
    type: str | None = None
    required: bool | None = None
    description: str | None = None
    default: str | int | float | bool | None = None


class _FlowDescription(_Lenient):
    name: str
    params: list[_Param] | None = None


class _StepResult(_Lenient):
    name: str | None = None
    status: str | None = None
    additional_information: list[Any] | None = Field(default=None, alias="additionalInformation")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    finished_at: datetime | None = Field(default=None, alias="finishedAt")


class _FlowResult(_Lenient):
    flow_id: str | None = Field(default=None, alias="flowID")
    flow_name: str | None = Field(default=None, alias="flowName")
    status: str | None = None
    started_at: datetime | None = Field(default=None, alias="startedAt")
    finished_at: datetime | None = Field(default=None, alias="finishedAt")
    steps: list[_StepResult] | None = None


def _default_text(value: str | int | float | bool | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _description(model: _FlowDescription) -> FlowDescription:
    return FlowDescription(
        name=model.name,
        params=tuple(
            FlowParam(
                name=p.name,
                type=p.type or "string",
                required=bool(p.required),
                description=p.description or "",
                default=_default_text(p.default),
            )
            for p in model.params or ()
        ),
    )


def _step(model: _StepResult, position: int) -> StepResult:
    status, note = FlowStatus.read(model.status)
    information = tuple(str(line) for line in model.additional_information or ())
    return StepResult(
        name=model.name or f"Step {position}",
        status=status,
        started_at=model.started_at,
        finished_at=model.finished_at,
        additional_information=(*information, note) if note else information,
    )


def _result(model: _FlowResult, flow_id: str) -> FlowResult:
    status, note = FlowStatus.read(model.status)
    return FlowResult(
        flow_id=model.flow_id or flow_id,
        flow_name=model.flow_name or "",
        status=status,
        started_at=model.started_at,
        finished_at=model.finished_at,
        steps=tuple(_step(step, n) for n, step in enumerate(model.steps or (), start=1)),
        notes=(note,) if note else (),
    )


class EposTesterClient:
    """The tester tool of one Dojo account. Built by :meth:`DojoClient.tester_tool`, which lends
    it the client's call (headers, retries, redacted errors)."""

    def __init__(self, call: Call, environment: str, segment: Segment) -> None:
        self._call = call
        self._environment = environment
        self._segment = segment

    @property
    def environment(self) -> str:
        return self._environment

    def refusal(self) -> str | None:
        """Why this key may not use the tester tool (see :func:`verification_refusal`), or ``None``."""
        return verification_refusal(self._environment)

    async def list_flows(self) -> list[FlowDescription]:
        data = await self._request("GET", FLOWS_PATH, retry=True)
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else None
        if items is None:
            raise TesterToolError("Dojo's list of EPOS tester flows could not be read (not a list or an object).")
        flows: list[FlowDescription] = []
        for item in items:
            try:
                flows.append(_description(_FlowDescription.model_validate(item)))
            except ValidationError:
                raise TesterToolError(
                    "Dojo's list of EPOS tester flows could not be read (a flow without a name)."
                ) from None
        return flows

    async def start_flow(self, flow: str, params: Mapping[str, str]) -> str:
        """Ask Dojo to run ``flow``; returns its flow id. Never retried (a flow takes payments)."""
        body = {"flow": flow, "params": dict(params)}
        data = await self._request("POST", FLOWS_PATH, json_body=body, retry=False)
        flow_id = data
        if isinstance(data, dict):  # lenient: the schema says a bare string, accept a wrapped one
            flow_id = data.get("flowID") or data.get("flowId") or data.get("id")
        if not isinstance(flow_id, str) or not flow_id.strip():
            raise TesterToolError(f"Dojo started the flow {flow!r} but its answer carried no flow id.")
        return flow_id.strip()

    async def flow_result(self, flow_id: str) -> FlowResult:
        path = f"{FLOWS_PATH}/{self._segment(flow_id)}"
        data = await self._request("GET", path, retry=True)
        try:
            return _result(_FlowResult.model_validate(data if data is not None else {}), flow_id)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
            raise TesterToolError(f"Dojo's result for flow {flow_id} could not be read (fields: {fields}).") from None

    async def _request(self, method: str, path: str, *, json_body: Any = None, retry: bool) -> Any:
        refusal = self.refusal()
        if refusal is not None:
            raise TesterToolUnavailable(refusal)
        try:
            return await self._call(method, path, json_body=json_body, retry=retry)
        except (AuthRejected, NotFoundError) as exc:  # 401, 403, 404: not enabled for this account
            raise TesterToolUnavailable(
                f"{TESTER_NOT_ENABLED} (Dojo answered {method} {path} with {exc.status})."
            ) from None
        except DojoApiError as exc:
            raise TesterToolError(str(exc)) from None
