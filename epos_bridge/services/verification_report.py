"""The verification report an installer leaves with the venue, and the ``verify --json`` output.

:func:`render_html` makes one self-contained HTML page (no scripts, no external files, simple
tables that Qt's ``QTextDocument`` also renders, so the dialog can print the same page to PDF):
the venue, the ids and versions this till runs with, when it was made, and every flow with every
step, its status, times and Dojo's ``additionalInformation``. Everything that came from outside
(Dojo's texts, the POS's names) is escaped.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from epos_bridge import __version__
from epos_bridge.domain.verification import FlowResult, FlowRun, FlowStatus, StepResult, run_succeeded
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import CAPABILITY_VERSION
from epos_bridge.protocol.dojo import API_VERSION

TESTER_API_VERSION = "1.0.0"
"""The EPOS Tester API this bridge follows (its OpenAPI ``info.version``, contract §5.7)."""


def standard_versions() -> tuple[tuple[str, str], ...]:
    """The versions every report writes down, besides the bridge's own."""
    return (
        ("Dojo API version", API_VERSION),
        ("Capability version", CAPABILITY_VERSION),
        ("EPOS Tester API", TESTER_API_VERSION),
        ("Python", platform.python_version()),
        ("Operating system", platform.platform(terse=True)),
    )


@dataclass(frozen=True)
class ReportFacts:
    """Who was verified, with what, and when."""

    generated_at: datetime
    bridge_version: str
    venue: str | None = None
    software_house_id: str | None = None
    reseller_id: str | None = None
    environment: str = "unknown"
    api_url: str | None = None
    gateway_url: str | None = None
    adapter: str | None = None
    registered_capabilities: tuple[str, ...] = ()
    versions: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """Other versions worth writing down (API version, Python, Qt), as (what, version)."""
    till_warnings: tuple[str, ...] = ()
    """Where a Dojo payment would not show on the POS's own screens, from the adapter's
    configuration (a mapping's ``payments.shown_by``): flows can pass while staff take it twice."""


class ReportedSettings(Protocol):
    """What a report writes down of the bridge's settings (``config.BridgeSettings``)."""

    software_house_id: str | None
    reseller_id: str | None
    api_url: str
    ws_url: str
    adapter: str

    @property
    def environment(self) -> str: ...


def report_facts(
    settings: ReportedSettings,
    venue: str | None,
    registered_capabilities: Sequence[str],
    more_versions: Sequence[tuple[str, str]] = (),
    till_warnings: Sequence[str] = (),
) -> ReportFacts:
    """The facts of a report made now, the same from ``verify`` and from the Verify dialog.

    ``more_versions`` follow the :func:`standard_versions` (the dialog adds Qt's)."""
    return ReportFacts(
        generated_at=datetime.now(UTC),
        bridge_version=__version__,
        venue=venue,
        software_house_id=settings.software_house_id,
        reseller_id=settings.reseller_id,
        environment=settings.environment,
        api_url=settings.api_url,
        gateway_url=settings.ws_url,
        adapter=settings.adapter,
        registered_capabilities=tuple(registered_capabilities),
        versions=(*standard_versions(), *more_versions),
        till_warnings=tuple(till_warnings),
    )


@dataclass(frozen=True)
class VerificationReport:
    facts: ReportFacts
    runs: tuple[FlowRun, ...]

    @property
    def succeeded(self) -> bool:
        return run_succeeded(self.runs)

    def summary(self) -> str:
        """``All 8 flows succeeded`` / ``2 of 8 flows did not succeed`` / ``No flow was run``."""
        total = len(self.runs)
        if total == 0:
            return "No flow was run"
        failed = sum(1 for run in self.runs if not run.succeeded)
        if failed == 0:
            return f"All {total} flow{'s' if total != 1 else ''} succeeded"
        return f"{failed} of {total} flow{'s' if total != 1 else ''} did not succeed"


# --- JSON (``epos-bridge verify --json``) --------------------------------------------------------


def _stamp(at: datetime | None) -> str | None:
    return format_utc(at) if at is not None else None


def step_to_json(step: StepResult) -> dict[str, Any]:
    return {
        "name": step.name,
        "status": step.status.value,
        "startedAt": _stamp(step.started_at),
        "finishedAt": _stamp(step.finished_at),
        "additionalInformation": list(step.additional_information),
    }


def run_to_json(run: FlowRun) -> dict[str, Any]:
    """One flow: ``name``, ``status`` and ``steps`` (as the issue asks), plus what identifies it."""
    result: FlowResult | None = run.result
    failing = result.failing_step if result is not None else None
    return {
        "name": run.name,
        "flow": run.flow,
        "status": run.status.value,
        "flowId": result.flow_id if result is not None else None,
        "params": dict(run.params),
        "startedAt": _stamp(result.started_at) if result is not None else None,
        "finishedAt": _stamp(result.finished_at) if result is not None else None,
        "failedStep": failing.name if failing is not None else None,
        "error": run.error,
        "notes": list(result.notes) if result is not None else [],
        "steps": [step_to_json(step) for step in (result.steps if result is not None else ())],
    }


# --- HTML -------------------------------------------------------------------------------------------

_STATUS_COLOURS = {
    FlowStatus.SUCCESS: ("#1b5e20", "#e8f5e9"),
    FlowStatus.FAILURE: ("#b3261e", "#fdecea"),
    FlowStatus.TIMED_OUT: ("#8a4b00", "#fff4e5"),
    FlowStatus.IN_PROGRESS: ("#37474f", "#eceff1"),
}


def local_stamp(at: datetime | None) -> str:
    """``2026-03-02 14:02:01 +0000``: the till's local time, with its offset, for people."""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %z") if at is not None else "—"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _flow_seconds(result: FlowResult | None) -> float | None:
    if result is None or result.started_at is None or result.finished_at is None:
        return None
    return max(0.0, (result.finished_at - result.started_at).total_seconds())


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _status_cell(status: FlowStatus) -> str:
    ink, paper = _STATUS_COLOURS[status]
    return f'<td style="color:{ink}; background-color:{paper}; font-weight:bold">{_e(status.value)}</td>'


def _facts_rows(facts: ReportFacts) -> list[tuple[str, str]]:
    rows = [
        ("Venue", facts.venue or "not given"),
        ("Report made", local_stamp(facts.generated_at)),
        ("Environment", facts.environment),
        ("Software-house-id", facts.software_house_id or "not set"),
        ("Reseller-id", facts.reseller_id or "not set"),
        ("Dojo API", facts.api_url or "—"),
        ("EPOS Data gateway", facts.gateway_url or "—"),
        ("POS adapter", facts.adapter or "—"),
        ("epos-bridge version", facts.bridge_version),
    ]
    rows.extend(facts.versions)
    if facts.registered_capabilities:
        rows.append(
            (
                f"Registered at Dojo ({len(facts.registered_capabilities)})",
                ", ".join(facts.registered_capabilities),
            )
        )
    return rows


def _run_section(run: FlowRun) -> str:
    result = run.result
    parts = [f"<h2>{_e(run.name)}</h2>"]
    meta = [("Status", run.status.value), ("Started as", run.flow)]
    if result is not None:
        meta += [
            ("Flow id", result.flow_id),
            ("Started", local_stamp(result.started_at)),
            ("Finished", local_stamp(result.finished_at)),
            ("Took", _took(_flow_seconds(result))),
        ]
    params = ", ".join(f"{k} = {v}" for k, v in run.params.items()) or "none"
    meta.append(("Parameters", params))
    why = run.why_not()
    if why:
        meta.append(("Why it did not succeed", why))
    parts.append('<table border="1" cellspacing="0" cellpadding="4">')
    for label, value in meta:
        if label == "Status":
            parts.append(f"<tr><th align=left>{_e(label)}</th>{_status_cell(run.status)}</tr>")
        else:
            parts.append(f"<tr><th align=left>{_e(label)}</th><td>{_e(value)}</td></tr>")
    parts.append("</table>")
    if result is not None and result.notes:
        parts.append("<ul>" + "".join(f"<li>{_e(note)}</li>" for note in result.notes) + "</ul>")
    steps = result.steps if result is not None else ()
    if steps:
        parts.append('<table border="1" cellspacing="0" cellpadding="4" width="100%">')
        parts.append(
            "<tr><th>#</th><th align=left>Step</th><th>Status</th><th>Started</th>"
            "<th>Finished</th><th>Took</th><th align=left>Information</th></tr>"
        )
        for number, step in enumerate(steps, start=1):
            information = "<br>".join(_e(line) for line in step.additional_information) or "—"
            parts.append(
                f"<tr><td>{number}</td><td>{_e(step.name)}</td>{_status_cell(step.status)}"
                f"<td>{_e(local_stamp(step.started_at))}</td><td>{_e(local_stamp(step.finished_at))}</td>"
                f"<td>{_e(_took(step.seconds))}</td><td>{information}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>Dojo reported no steps.</p>")
    return "\n".join(parts)


def render_html(report: VerificationReport) -> str:
    """The whole report as one HTML page."""
    facts = report.facts
    title = f"EPOS tester tool report — {facts.venue}" if facts.venue else "EPOS tester tool report"
    verdict_status = FlowStatus.SUCCESS if report.succeeded else FlowStatus.FAILURE
    ink, paper = _STATUS_COLOURS[verdict_status]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        "<style>body{font-family:sans-serif;font-size:10pt} th{background-color:#f5f5f5}</style>",
        "</head><body>",
        f"<h1>{_e(title)}</h1>",
        "<p>Dojo's EPOS tester tool ran these flows against this till's registered capabilities, "
        "calling the bridge over the EPOS Data WebSocket the way Dojo's products do.</p>",
        f'<p style="color:{ink}; background-color:{paper}; font-weight:bold; padding:6px">{_e(report.summary())}</p>',
        '<table border="1" cellspacing="0" cellpadding="4">',
    ]
    out += [f"<tr><th align=left>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _facts_rows(facts)]
    out.append("</table>")
    if facts.till_warnings:
        ink, paper = _STATUS_COLOURS[FlowStatus.FAILURE]
        out.append("<h2>Where a Dojo payment would not show on the till</h2>")
        out.append("<p>Staff take again what the POS's own bill does not show: mend these before going live.</p>")
        out.append(f'<ul style="color:{ink}; background-color:{paper}">')
        out += [f"<li>{_e(warning)}</li>" for warning in facts.till_warnings]
        out.append("</ul>")
    if report.runs:
        out.append('<h2>Summary</h2><table border="1" cellspacing="0" cellpadding="4">')
        out.append("<tr><th align=left>Flow</th><th>Status</th><th align=left>Detail</th></tr>")
        for run in report.runs:
            out.append(f"<tr><td>{_e(run.name)}</td>{_status_cell(run.status)}<td>{_e(run.why_not() or '')}</td></tr>")
        out.append("</table>")
    out += [_run_section(run) for run in report.runs]
    out.append("</body></html>")
    return "\n".join(out)


def runs_to_json(runs: Sequence[FlowRun]) -> list[dict[str, Any]]:
    return [run_to_json(run) for run in runs]
