"""``epos-bridge verify``: Dojo's EPOS tester tool from the command line (contract §5.7).

It talks to Dojo's REST API with the configured key and ids; the bridge that Dojo drives while
the flows run is the one already serving this venue (``epos-bridge run``, the tray app, or the
demo). Every step is printed as Dojo reports it; ``--json`` prints the flows at the end instead.

Exit codes: 0 when every flow succeeded, 1 when one did not, 2 when the tester tool cannot be
used at all (not enabled for the key, not a sandbox key, Dojo unreachable, a bad command line).

A required order or table parameter that is not given on the command line is picked from the
venue's POS through the configured adapter (the open order or table a payment flow can use),
so ``epos-bridge verify`` alone runs every flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import TextIO

from epos_bridge.app import dojo_client, http_client, open_adapter, till_warnings
from epos_bridge.config import BridgeSettings, ConfigError
from epos_bridge.dojo_api import DojoApiError, DojoClient
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.verification import (
    EXIT_TESTER_UNAVAILABLE,
    FLOW_TIMEOUT_S,
    FlowDescription,
    FlowRun,
    FlowStatus,
    InvalidParams,
    StepResult,
    TesterToolError,
    TesterToolUnavailable,
    UnknownFlow,
    exit_code,
    finished_steps_since,
    select_flows,
    values_to_send,
)
from epos_bridge.ports import PosAdapter
from epos_bridge.protocol.dojo import redact
from epos_bridge.services.verification import Verification
from epos_bridge.services.verification_report import (
    ReportFacts,
    VerificationReport,
    render_html,
    report_facts,
    runs_to_json,
)

log = logging.getLogger(__name__)

INDENT = " " * 13


def took(step: StepResult) -> str:
    seconds = step.seconds
    if seconds is None:
        return ""
    return f" ({seconds * 1000:.0f} ms)" if seconds < 1 else f" ({seconds:.1f} s)"


def step_lines(step: StepResult) -> list[str]:
    lines = [f"  {step.status.value:<10} {step.name}{took(step)}"]
    lines += [f"{INDENT}{line}" for line in step.additional_information]
    return lines


def describe_flow(flow: FlowDescription) -> list[str]:
    """``--list``: a flow and its parameters, with the required mark and default."""
    lines = [flow.name]
    for param in flow.params:
        mark = "required" if param.required else "optional"
        default = f", default {param.default}" if param.default else ""
        about = f": {param.description}" if param.description else ""
        lines.append(f"    {param.name} ({param.type}, {mark}{default}){about}")
    if not flow.params:
        lines.append("    no parameters")
    return lines


class StepPrinter:
    """Prints each step once, as soon as Dojo reports it finished, then the flow's verdict."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._seen: dict[str, FlowRun] = {}

    def progress(self, run: FlowRun) -> None:
        if run.result is None:
            return
        previous = self._seen.get(run.flow)
        for step in finished_steps_since(previous.result if previous else None, run.result):
            self._print(*step_lines(step))
        self._seen[run.flow] = run

    def finished(self, run: FlowRun) -> None:
        self.progress(run)
        if run.result is not None:
            running = [s for s in run.result.steps if s.status is FlowStatus.IN_PROGRESS]
            for step in running:  # only when following stopped early (timed out)
                self._print(*step_lines(step))
            for note in run.result.notes:
                self._print(f"  note       {note}")
        flow_id = f", flow {run.result.flow_id}" if run.result is not None else ""
        why = run.why_not()
        verdict = f"= {run.status.value:<10} {run.name}{flow_id}"
        self._print(verdict + (f": {why}" if why else ""), "")
        self._seen.pop(run.flow, None)

    def _print(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self._out, flush=True)


def _open_pos(settings: BridgeSettings, err: TextIO) -> PosAdapter | None:
    """The venue's POS for picking orders and tables; without it, pass them with --param."""
    if settings.db_path is None:
        return None
    if isinstance(settings.db_path, Path) and not settings.db_path.exists():  # never create one
        print(
            f"epos-bridge: the POS database {settings.db_path} does not exist; pass orders and tables with --param",
            file=err,
        )
        return None
    try:
        return open_adapter(settings)
    except (ConfigError, EposFailure, OSError, ValueError) as exc:
        print(f"epos-bridge: the POS database is not used to pick orders and tables: {exc}", file=err)
        return None


async def verify(
    settings: BridgeSettings,
    *,
    flows: list[str],
    params: dict[str, str],
    as_json: bool = False,
    list_only: bool = False,
    report_path: Path | None = None,
    venue: str | None = None,
    timeout_s: float | None = None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Run the command; returns its exit code."""
    secret = settings.api_key.get_secret_value() if settings.api_key else ""

    def say(text: str) -> None:
        print(redact(text, secret), file=err, flush=True)

    if not secret:
        say("epos-bridge: no Dojo API key: enter it in Settings → API key, or set EPOS_BRIDGE_API_KEY")
        return EXIT_TESTER_UNAVAILABLE
    for warning in till_warnings(settings):  # flows can pass while the till's own bill misses a payment
        say(f"epos-bridge: warning: {warning}")
    async with http_client(settings) as http:
        try:
            client = dojo_client(settings, http)
        except ValueError as exc:  # an http:// URL without allow_insecure
            say(f"epos-bridge: {exc}")
            return EXIT_TESTER_UNAVAILABLE
        tool = client.tester_tool()
        refusal = tool.refusal()
        if refusal is not None:
            say(f"epos-bridge: {refusal}")
            return EXIT_TESTER_UNAVAILABLE
        pos = None if list_only else _open_pos(settings, err)
        try:
            verification = Verification(tool, pos, timeout=timeout_s or FLOW_TIMEOUT_S)
            try:
                available = await verification.load_flows()
            except TesterToolUnavailable as exc:
                say(f"epos-bridge: {exc}")
                return EXIT_TESTER_UNAVAILABLE
            except TesterToolError as exc:
                say(f"epos-bridge: the EPOS tester tool could not be reached: {exc}")
                return EXIT_TESTER_UNAVAILABLE
            if list_only:
                for flow in available:
                    print("\n".join(describe_flow(flow)), file=out)
                return 0
            if not available:
                say("epos-bridge: Dojo's EPOS tester tool offers no flows for this key")
                return EXIT_TESTER_UNAVAILABLE
            try:
                selected = select_flows(available, flows)
            except UnknownFlow as exc:
                say(f"epos-bridge: {exc}")
                return EXIT_TESTER_UNAVAILABLE
            declared = {p.name for flow in selected for p in flow.params}
            stray = sorted(set(params) - declared)
            if stray:
                say(f"epos-bridge: no flow chosen takes the parameter {', '.join(stray)}")
                return EXIT_TESTER_UNAVAILABLE
            printer = StepPrinter(out)
            if not as_json:
                verification.on_progress(printer.progress)
                verification.on_finished(printer.finished)
                print(f"Dojo's EPOS tester tool at {client.base_url} ({client.environment}):", file=out, flush=True)
            runs: list[FlowRun] = []
            try:
                for flow in selected:
                    values = await verification.with_pos_defaults(flow, params)
                    if not as_json:
                        print(f"> {flow.name} ({_parameters(flow, values)})", file=out, flush=True)
                    runs.append(await verification.run_one(flow, values))
            except TesterToolUnavailable as exc:
                say(f"epos-bridge: {exc}")
                return EXIT_TESTER_UNAVAILABLE
            if report_path is not None:
                facts = await _facts(settings, client, verification, venue)
                written = await _write_report(report_path, VerificationReport(facts, tuple(runs)), err)
                if written and not as_json:
                    print(f"Report written to {report_path}", file=out)
            if as_json:
                print(json.dumps(runs_to_json(runs), indent=2, ensure_ascii=False), file=out)
            else:
                print(_summary(runs), file=out)
            return exit_code(runs)
        finally:
            if pos is not None:
                await pos.close()


def _parameters(flow: FlowDescription, values: dict[str, str]) -> str:
    """What will be sent, in the flow's order with defaults filled (or what was given, if invalid)."""
    try:
        shown = values_to_send(flow, values)
    except InvalidParams:
        shown = values
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no parameters"


def _summary(runs: list[FlowRun]) -> str:
    failed = [run.name for run in runs if not run.succeeded]
    total = f"{len(runs)} flow{'s' if len(runs) != 1 else ''}"
    if not failed:
        return f"{total}: all succeeded"
    return f"{total}: {len(runs) - len(failed)} succeeded, {len(failed)} did not ({'; '.join(failed)})"


async def _facts(
    settings: BridgeSettings, client: DojoClient, verification: Verification, venue: str | None
) -> ReportFacts:
    registered: tuple[str, ...] = ()
    with contextlib.suppress(DojoApiError):
        integrations = await client.get_integrations()
        registered = tuple(sorted(c.value for c in integrations.registered_capabilities))
    if venue is None:
        venue = await verification.venue_name()
    return report_facts(settings, venue, registered, till_warnings=till_warnings(settings))


async def _write_report(path: Path, report: VerificationReport, err: TextIO) -> bool:
    try:
        await asyncio.to_thread(path.write_text, render_html(report), encoding="utf-8")
    except OSError as exc:
        print(f"epos-bridge: the report could not be written to {path}: {exc.strerror or exc}", file=err)
        return False
    return True
