"""The diagnostics zip a venue sends to support ("Export diagnostics…" in the tray).

What goes in, each as a text file: the rotating logs, the settings (the API key never: only
whether one is set, where from, and whether it is a sandbox or production key), the versions of
everything that matters, the last requests Dojo sent with their outcomes, the capability
registration, the connection status, the POS-event outbox depth, and recent unexpected errors.
What stays out: the bridge's state database (payments, idempotency answers) and the POS database.

Every member passes through :func:`~epos_bridge.protocol.dojo.redact` with every form of the API
key, the proxy password and every other secret the caller names (the running bridge's
:class:`~epos_bridge.protocol.redaction.KnownSecrets`: old keys replaced today too), then through
:func:`~epos_bridge.protocol.redaction.redact_personal` (guests' names, emails, phones and booking
notes), just before it is written, whatever produced it — a log written before a redaction bug
was fixed, or at DEBUG, is cleaned here too. The zip is created ``0600``.

:class:`RecentRequests` is the ring buffer the bridge feeds from ``Bridge.on_served``;
:func:`build_diagnostics` does blocking file I/O, so a GUI calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import zipfile
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from epos_bridge import __version__
from epos_bridge.config import BridgeSettings, settings_secrets
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.host.crash import CrashReport
from epos_bridge.protocol.dojo import REDACTED, redact
from epos_bridge.protocol.dojo_rest import RegistrationState
from epos_bridge.protocol.redaction import redact_personal
from epos_bridge.services.dispatcher import Served

RECENT_REQUESTS = 200
LOG_FILE_PREFIX = "epos-bridge.log"


# --- the recent requests ring buffer ------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One served request, without its response body (orders and bills stay on the till)."""

    at: str
    """ISO 8601, UTC."""
    method: str
    request_id: str
    outcome: str
    elapsed_ms: float
    trace_id: str
    debug_message: str | None = None


class RecentRequests:
    """The last ``capacity`` requests with their outcomes. ``record`` is an ``on_served`` listener.

    Thread-safe, because an export may read it from another thread while the loop records.
    """

    def __init__(self, capacity: int = RECENT_REQUESTS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._items: deque[RequestRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def record(self, served: Served, *, at: datetime | None = None) -> None:
        item = RequestRecord(
            at=(at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
            method=served.method,
            request_id=str(served.request_id),
            outcome=served.outcome,
            elapsed_ms=round(served.elapsed_ms, 1),
            trace_id=served.trace_id,
            debug_message=served.debug_message,
        )
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[RequestRecord]:
        """Oldest first."""
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# --- what the zip is built from -----------------------------------------------------------------


@dataclass(frozen=True)
class DiagnosticsSources:
    """Everything the zip is made of; the caller gathers it (see :func:`gather`)."""

    settings: BridgeSettings
    log_dir: Path
    requests: Sequence[RequestRecord] = ()
    registration: RegistrationState | None = None
    connection: ConnectionStatus | None = None
    outbox_depth: int | None = None
    outbox_last_error: str | None = None
    crashes: Sequence[CrashReport] = ()
    extra_secrets: Sequence[str] = field(default_factory=tuple)
    """Other strings to remove (an old API key replaced today, a proxy password)."""


class _Outbox(Protocol):
    async def depth(self) -> int: ...
    async def last_error(self) -> str | None: ...


class _Session(Protocol):
    @property
    def status(self) -> ConnectionStatus: ...


class BridgeView(Protocol):
    """What :func:`gather` reads from a running ``epos_bridge.app.Bridge``."""

    @property
    def settings(self) -> BridgeSettings: ...
    @property
    def registration(self) -> RegistrationState: ...
    @property
    def outbox(self) -> _Outbox: ...
    @property
    def session(self) -> _Session: ...


async def gather(
    bridge: BridgeView,
    *,
    log_dir: Path | None = None,
    requests: RecentRequests | None = None,
    crashes: Iterable[CrashReport] = (),
    secrets: Iterable[str] = (),
) -> DiagnosticsSources:
    """Read a running bridge's state (on its loop) into :class:`DiagnosticsSources`."""
    depth: int | None
    last_error: str | None
    try:
        depth, last_error = await bridge.outbox.depth(), await bridge.outbox.last_error()
    except Exception as exc:  # a closed or broken state database must not stop the export
        depth, last_error = None, f"unavailable: {exc}"
    return DiagnosticsSources(
        settings=bridge.settings,
        log_dir=log_dir or bridge.settings.log_dir,
        requests=requests.snapshot() if requests is not None else (),
        registration=bridge.registration,
        connection=bridge.session.status,
        outbox_depth=depth,
        outbox_last_error=last_error,
        crashes=tuple(crashes),
        extra_secrets=tuple(secrets),
    )


# --- the members --------------------------------------------------------------------------------


def _without_userinfo(url: str | None) -> str | None:
    """A proxy URL may carry ``user:password@``; support needs the host, not the password."""
    if not url or url == "system":
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{REDACTED}@{host}", parts.path, parts.query, parts.fragment))


def settings_summary(settings: BridgeSettings) -> dict[str, Any]:
    """The settings as support needs them. The key is described, never shown: not even a masked
    prefix beyond the environment it selects (``sk_sandbox_`` / ``sk_prod_``)."""
    data = settings.file_form()
    data["proxy"] = _without_userinfo(settings.proxy)
    data["log_dir"] = str(settings.log_dir)
    data["api_key"] = "set" if settings.api_key is not None else "not set"
    data["api_key_source"] = settings.api_key_source
    data["api_key_environment"] = settings.environment
    return data


def _distribution_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, Any]:
    """Versions without side effects: PySide6 by its package metadata; the Qt runtime only when
    the app already loaded QtCore (importing Qt here could fail on a headless box, and must never
    create a QApplication)."""
    found: dict[str, Any] = {
        "epos-bridge": __version__,
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "frozen": bool(getattr(sys, "frozen", False)),
        "sqlite": sqlite3.sqlite_version,
    }
    for label, names in {
        "PySide6": ("PySide6-Essentials", "PySide6"),
        "websockets": ("websockets",),
        "pydantic": ("pydantic",),
        "httpx": ("httpx",),
        "qasync": ("qasync",),
        "keyring": ("keyring",),
    }.items():
        found[label] = _distribution_version(*names)
    if found["PySide6"] is None and "PySide6" in sys.modules:  # a bundle without dist-info
        found["PySide6"] = getattr(sys.modules["PySide6"], "__version__", None)
    qtcore = sys.modules.get("PySide6.QtCore")
    if qtcore is not None:
        found["Qt runtime"] = qtcore.qVersion()
    return found


def _registration_summary(state: RegistrationState | None) -> dict[str, Any]:
    if state is None:
        return {"state": "not known (the bridge is not running)"}
    summary: dict[str, Any] = {
        "checked_at": state.at.isoformat() if state.at else None,
        "error": state.error,
        "auth_rejected": state.auth_rejected,
    }
    report = state.report
    if report is not None:
        summary.update(
            in_sync=report.in_sync,
            matching=sorted(c.value for c in report.matching),
            missing_at_dojo=sorted(c.value for c in report.missing_at_dojo),
            extra_at_dojo=sorted(c.value for c in report.extra_at_dojo),
            unknown_at_dojo=sorted(report.unknown_at_dojo),
        )
    return summary


def _connection_summary(status: ConnectionStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "state": status.state.value,
        "since": status.since.isoformat(),
        "last_error": status.last_error,
        "attempt": status.attempt,
        "next_retry_at": status.next_retry_at.isoformat() if status.next_retry_at else None,
    }


def _log_files(log_dir: Path) -> list[Path]:
    """``epos-bridge.log`` and its rotations (``.1`` … ``.5``), oldest rotation last."""
    try:
        return sorted(p for p in log_dir.iterdir() if p.is_file() and p.name.startswith(LOG_FILE_PREFIX))
    except OSError:
        return []


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n"


def members(sources: DiagnosticsSources, *, now: datetime | None = None) -> dict[str, str]:
    """Archive name → text, before redaction (:func:`build_diagnostics` redacts every one)."""
    now = now or datetime.now(UTC)
    requests = [asdict(record) for record in sources.requests]
    crashes = "\n\n".join(
        f"{report.at.isoformat()} {report.where}: {report.summary}\n{report.details}" for report in sources.crashes
    )
    logs = _log_files(sources.log_dir)
    found: dict[str, str] = {
        "README.txt": (
            f"epos-bridge {__version__} diagnostics, made {now.isoformat(timespec='seconds')}\n"
            f"log folder: {sources.log_dir}\n"
            f"data folder: {sources.settings.data_dir} (its state database is not included)\n"
            f"{len(logs)} log file(s), {len(requests)} recent request(s), {len(sources.crashes)} recent error(s).\n"
            "The API key is not in this file set; anything resembling it has been replaced by "
            f"{REDACTED}.\n"
        ),
        "settings.json": _json(settings_summary(sources.settings)),
        "versions.json": _json(versions()),
        "requests.json": _json(requests),
        "registration.json": _json(_registration_summary(sources.registration)),
        "status.json": _json(
            {
                "connection": _connection_summary(sources.connection),
                "outbox_depth": sources.outbox_depth,
                "outbox_last_error": sources.outbox_last_error,
            }
        ),
        "errors.txt": crashes + "\n" if crashes else "no unexpected errors recorded since start\n",
    }
    for path in logs:
        try:
            found[f"logs/{path.name}"] = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            found[f"logs/{path.name}.unreadable.txt"] = f"{path}: {exc}\n"
    return found


def default_zip_name(now: datetime | None = None) -> str:
    return f"epos-bridge-diagnostics-{(now or datetime.now(UTC)).strftime('%Y%m%d-%H%M%S')}.zip"


def build_diagnostics(destination: Path, sources: DiagnosticsSources, *, now: datetime | None = None) -> Path:
    """Write the zip to ``destination`` (a folder gets :func:`default_zip_name`); returns its path.

    Written to a temporary file and moved into place, so support never gets half a zip.
    """
    now = now or datetime.now(UTC)
    if destination.is_dir():
        destination = destination / default_zip_name(now)
    secrets = [*settings_secrets(sources.settings), *sources.extra_secrets]
    # A folder made for it is the user's alone; one they chose is left as it is. mkstemp makes the
    # zip 0600, and os.replace keeps that.
    destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp_name = tempfile.mkstemp(prefix=".diagnostics.", suffix=".zip", dir=destination.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(temp_name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in members(sources, now=now).items():
                archive.writestr(name, redact_personal(redact(text, *secrets)).encode("utf-8"))
        os.replace(temp_name, destination)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return destination
