"""The diagnostics zip: logs, settings, versions, recent requests, registration and outbox —
and no secret anywhere, whichever member it might have leaked into."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from epos_bridge.config import BridgeSettings
from epos_bridge.diagnostics import (
    DiagnosticsSources,
    RecentRequests,
    build_diagnostics,
    gather,
    settings_summary,
)
from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.host.crash import CrashReport
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo_rest import RegistrationReport
from epos_bridge.services.dispatcher import Served

KEY = "sk_prod_fake_DiagnosticsSecretKey_7f3a9c2e41"
PROXY_PASSWORD = "hunter2-proxy-pass"
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Registration:
    report: RegistrationReport | None
    error: str | None
    at: datetime | None
    auth_rejected: bool = False


def served(n: int, outcome: str = "ok", debug: str | None = None) -> Served:
    return Served(
        request_id=n,
        method="GetOrderByIdV1",
        outcome=outcome,
        elapsed_ms=3.14159,
        response_text='{"result": "the body stays out"}',
        trace_id=f"trace-{n}",
        debug_message=debug,
    )


@pytest.fixture
def settings(tmp_path: Path) -> BridgeSettings:
    return BridgeSettings(
        software_house_id="shid-1",
        db_path=tmp_path / "pos.db",
        data_dir=tmp_path / "data",
        proxy=f"http://till:{PROXY_PASSWORD}@proxy.local:3128",
        api_key=SecretStr(KEY),
        api_key_source="keyring",
    )


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "epos-bridge.log").write_text(
        f"2026-03-01 INFO epos_bridge: connected\n2026-03-01 ERROR leaked Authorization: Basic {KEY}\n",
        encoding="utf-8",
    )
    (folder / "epos-bridge.log.1").write_text("2026-02-28 INFO epos_bridge: older\n", encoding="utf-8")
    (folder / "unrelated.txt").write_text("not ours\n", encoding="utf-8")
    return folder


@pytest.fixture
def sources(settings: BridgeSettings, log_dir: Path) -> DiagnosticsSources:
    recent = RecentRequests(capacity=3)
    for n in range(5):
        recent.record(served(n), at=NOW)
    recent.record(served(5, "OrderNotFound", debug=f"key was {KEY}"), at=NOW)
    report = RegistrationReport(
        missing_at_dojo=frozenset({Capability.GET_ORDER_BY_ID}),
        extra_at_dojo=frozenset(),
        matching=frozenset(),
    )
    return DiagnosticsSources(
        settings=settings,
        log_dir=log_dir,
        requests=recent.snapshot(),
        registration=Registration(report=report, error=None, at=NOW),
        connection=ConnectionStatus(ConnectionState.CONNECTED, NOW),
        outbox_depth=7,
        crashes=[CrashReport("thread export", "OSError: disk full", f"Traceback ... {KEY}", NOW)],
        extra_secrets=[PROXY_PASSWORD],
    )


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_zip_holds_logs_settings_versions_requests_and_state(sources: DiagnosticsSources, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    path = build_diagnostics(tmp_path / "out", sources, now=NOW)

    assert path.name == "epos-bridge-diagnostics-20260301-123000.zip"
    members = read_zip(path)
    assert {
        "README.txt",
        "settings.json",
        "versions.json",
        "requests.json",
        "registration.json",
        "status.json",
        "errors.txt",
        "logs/epos-bridge.log",
        "logs/epos-bridge.log.1",
    } == set(members)

    assert b"connected" in members["logs/epos-bridge.log"]
    settings = json.loads(members["settings.json"])
    assert settings["api_key"] == "set"
    assert settings["api_key_source"] == "keyring"
    assert settings["api_key_environment"] == "production"
    assert settings["software_house_id"] == "shid-1"
    assert settings["proxy"] == "http://«redacted»@proxy.local:3128"

    versions = json.loads(members["versions.json"])
    for name in ("epos-bridge", "python", "PySide6", "websockets", "pydantic", "sqlite"):
        assert versions[name], name

    requests = json.loads(members["requests.json"])
    assert [r["request_id"] for r in requests] == ["3", "4", "5"]  # the last three, oldest first
    assert requests[-1]["outcome"] == "OrderNotFound"
    assert requests[0]["elapsed_ms"] == 3.1
    assert b"the body stays out" not in members["requests.json"]

    registration = json.loads(members["registration.json"])
    assert registration["in_sync"] is False
    assert registration["missing_at_dojo"] == [Capability.GET_ORDER_BY_ID.value]
    status = json.loads(members["status.json"])
    assert status["outbox_depth"] == 7
    assert status["connection"]["state"] == "connected"
    assert b"disk full" in members["errors.txt"]


def test_no_member_contains_a_secret(sources: DiagnosticsSources, tmp_path: Path) -> None:
    path = build_diagnostics(tmp_path / "diag.zip", sources, now=NOW)
    for name, data in read_zip(path).items():
        assert KEY.encode() not in data, name
        assert KEY[len("sk_prod_") :].encode() not in data, name  # no masked form either
        assert KEY[len("sk_prod_") : len("sk_prod_") + 6].encode() not in data, name
        assert PROXY_PASSWORD.encode() not in data, name
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    assert KEY.encode() not in raw


def test_settings_summary_never_holds_the_key(settings: BridgeSettings) -> None:
    assert KEY not in json.dumps(settings_summary(settings), default=str)
    unset = settings.model_copy(update={"api_key": None, "api_key_source": None})
    assert settings_summary(unset)["api_key"] == "not set"
    assert settings_summary(unset)["api_key_environment"] == "unknown"


def test_missing_log_folder_still_makes_a_zip(sources: DiagnosticsSources, tmp_path: Path) -> None:
    sources = DiagnosticsSources(settings=sources.settings, log_dir=tmp_path / "nowhere")
    members = read_zip(build_diagnostics(tmp_path / "d.zip", sources, now=NOW))
    assert not any(name.startswith("logs/") for name in members)
    assert json.loads(members["registration.json"]) == {"state": "not known (the bridge is not running)"}


def test_recent_requests_is_a_bounded_on_served_listener() -> None:
    recent = RecentRequests(capacity=2)
    for n in range(3):
        recent.record(served(n))
    assert len(recent) == 2
    assert [r.request_id for r in recent.snapshot()] == ["1", "2"]
    with pytest.raises(ValueError, match="capacity"):
        RecentRequests(capacity=0)


class FakeOutbox:
    async def depth(self) -> int:
        return 4

    async def last_error(self) -> str | None:
        return "503 from Dojo"


class FakeSession:
    status = ConnectionStatus(ConnectionState.CONNECTING, NOW, attempt=2)


@dataclass
class FakeBridge:
    settings: BridgeSettings
    registration: Registration
    outbox: FakeOutbox
    session: FakeSession


async def test_gather_reads_a_running_bridge(settings: BridgeSettings, log_dir: Path) -> None:
    recent = RecentRequests()
    recent.record(served(1))
    bridge = FakeBridge(settings, Registration(None, "401 from Dojo", NOW, True), FakeOutbox(), FakeSession())
    sources = await gather(bridge, log_dir=log_dir, requests=recent)
    assert sources.outbox_depth == 4
    assert sources.outbox_last_error == "503 from Dojo"
    assert sources.connection is not None
    assert sources.connection.attempt == 2
    assert [r.request_id for r in sources.requests] == ["1"]
