"""The secrets scan: after a session that changed the key twice, met 401s, crashed a handler,
exported diagnostics and opened the logs folder, no form of any of the three keys (nor of the
proxy password) is anywhere under the data folder, in the logs, in the diagnostics zip or in the
environment of the program the tray launched.

The real tray parts (bridge, signals, status window, tray controller) over a real Bridge and the
simulator, the bridge's own logging set-up writing real log files, the real export and launch
paths. The session also plants the keys where a careless line of code would: a log message, a
listener that raises with the key in its message, a loop callback that crashes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr
from pytestqt.qtbot import QtBot

from epos_bridge.app import Bridge, demo_settings
from epos_bridge.config import BridgeSettings, settings_secrets
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.protocol.redaction import LEADING_RUN, KnownSecrets, proxy_secrets, secret_forms
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.ui import support
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.icons import IconLibrary
from epos_bridge.ui.status_window import StatusWindow
from epos_bridge.ui.tray import TrayController
from tests.helpers.fake_opener import install_fake_opener
from tests.helpers.logging_setup import bridge_logging
from tests.ui.conftest import Run

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the launched child is a stand-in xdg-open"),
    pytest.mark.timeout(120),
]

RUN_ID = uuid.uuid4().hex
KEYS = [f"sk_sandbox_fake_{n}_{RUN_ID}" for n in ("first", "second", "third")]
PROXY = f"http://till:Fake-Proxy-Pass-{RUN_ID[:8]}@proxy.venue.example:3128"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def needles() -> dict[bytes, str]:
    """Every form of every secret, as bytes to look for in files, archives and environments."""
    found: dict[bytes, str] = {}
    for secret in [*KEYS, *proxy_secrets(PROXY)]:
        for form in {*secret_forms(secret), secret[: LEADING_RUN + 1]}:
            found[form.encode("utf-8")] = secret
    return found


def leaks_in(data: bytes, where: str, out: list[str]) -> None:
    for needle, secret in NEEDLES.items():
        if needle in data:
            out.append(f"{where}: a form of {secret[: LEADING_RUN - 1]}… ({needle[:20]!r}…)")


NEEDLES = needles()


def test_the_scan_finds_what_it_looks_for() -> None:
    found: list[str] = []
    leaks_in(f"x {quote(KEYS[1])} y".encode(), "planted", found)
    leaks_in(b64(f"Basic {KEYS[2]}").encode(), "planted", found)
    leaks_in(KEYS[0][:14].encode(), "planted", found)
    assert len(found) >= 3


@pytest.fixture
def fake_opener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_fake_opener(tmp_path, monkeypatch, "child.env")


@pytest.mark.logs_warnings("rejected keys are logged (redacted)")
def test_no_form_of_any_key_survives_a_session_of_changes_401s_crashes_and_an_export(
    qtbot: QtBot,
    run: Run,
    qloop: asyncio.AbstractEventLoop,
    venue: Path,
    tmp_path: Path,
    fake_opener: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The installer gave the first key in the environment; the proxy password is there too.
    monkeypatch.setenv("EPOS_BRIDGE_API_KEY", KEYS[0])
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    simulator = DojoSimulator(api_key=KEYS[0], software_house_id=DEMO_SOFTWARE_HOUSE_ID)
    run(simulator.start())
    settings = demo_settings(venue, simulator.ws_url, simulator.api_url, KEYS[0], DEMO_SOFTWARE_HOUSE_ID)
    settings = settings.model_copy(update={"proxy": PROXY})
    secrets = KnownSecrets(settings_secrets(settings))
    zip_path = tmp_path / "support" / "diagnostics.zip"

    with bridge_logging(secrets, settings.log_dir):
        bridge = Bridge(settings, secrets=secrets)
        signals = BridgeSignals(bridge)
        icons = IconLibrary()
        window = StatusWindow(signals, icons)
        tray = TrayController(signals, window, icons, retry_interval_ms=50, retries=3)
        bridge.crashes.install_loop(qloop)
        try:
            run(bridge.start())
            tray.start()
            qtbot.waitUntil(lambda: signals.status.state is ConnectionState.CONNECTED, timeout=10_000)

            def careless_listener(served: Any) -> None:
                key = bridge.settings.api_key.get_secret_value() if bridge.settings.api_key else ""
                raise RuntimeError(f"listener broke on {key} ({b64('Basic ' + key)})")

            bridge.on_served(careless_listener)
            for n, new_key in enumerate(KEYS[1:], start=1):
                change_key(run, qtbot, simulator, bridge, signals, new_key)
                run(simulator.gateway.request("SearchTablesV1", {"headers": {}}))  # the listener raises
                qloop.call_soon(crash_with, new_key)
                qtbot.waitUntil(lambda n=n: len(bridge.crashes.recent) == n, timeout=5_000)
                logging.getLogger("epos_bridge.careless").warning(
                    "a careless line: %s %s %s…", new_key, quote(new_key), new_key[:16]
                )

            run(
                support.export_diagnostics(
                    window, bridge, file_dialog=lambda _p, _q, answered: answered(str(zip_path), "")
                )
            )
            assert support.open_logs_folder(settings.log_dir, bridge.secrets)
            qtbot.waitUntil(fake_opener.exists, timeout=10_000)
        finally:
            run(bridge.stop())
            bridge.crashes.uninstall()
            signals.detach()
            tray.shutdown()
            window.shutdown()
            window.main_window = False
            window.hide()
            window.deleteLater()
            tray.deleteLater()
            signals.deleteLater()
            run(simulator.stop())
            qtbot.wait(1)

    assert len(bridge.crashes.recent) >= 2
    assert [h.status for h in simulator.gateway.handshakes].count(401) >= 2
    found: list[str] = []
    scanned = []
    for path in sorted(p for p in settings.data_dir.rglob("*") if p.is_file()):
        leaks_in(path.read_bytes(), str(path.relative_to(settings.data_dir)), found)
        scanned.append(path.name)
    assert (settings.log_dir / "epos-bridge.log").is_file()  # the logs are under the data folder here
    leaks_in(zip_path.read_bytes(), "diagnostics zip (raw)", found)
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.namelist()
        for name in members:
            leaks_in(archive.read(name), f"diagnostics zip: {name}", found)
    leaks_in(fake_opener.read_bytes(), "the launched file browser's environment", found)

    assert found == []
    assert {"bridge-state.db", "epos-bridge.log"} <= set(scanned)
    assert "errors.txt" in members and any(m.startswith("logs/") for m in members)
    log_text = (settings.log_dir / "epos-bridge.log").read_text()
    assert "listener failed" in log_text and "a careless line" in log_text and "«redacted»" in log_text


def crash_with(key: str) -> None:
    raise ValueError(f"handler crashed holding {key} and {quote(key)}")


def change_key(
    run: Run, qtbot: QtBot, simulator: DojoSimulator, bridge: Bridge, signals: BridgeSignals, new_key: str
) -> None:
    """Dojo starts accepting only ``new_key``: the bridge meets 401s on both halves with its old
    key, then staff save the new one in Settings and it connects again."""
    simulator.gateway.expected_api_key = new_key
    simulator.rest.expected_api_key = new_key
    run(simulator.gateway.drop_connections())
    qtbot.waitUntil(lambda: signals.status.state is ConnectionState.AUTH_FAILED, timeout=10_000)
    state = run(bridge.register())
    assert state.auth_rejected
    new: BridgeSettings = bridge.settings.model_copy(update={"api_key": SecretStr(new_key)})
    run(signals.apply_settings(new))
    qtbot.waitUntil(lambda: signals.status.state is ConnectionState.CONNECTED, timeout=10_000)
    qtbot.waitUntil(lambda: bridge.registration.error is None and bridge.registration.at is not None, timeout=10_000)
