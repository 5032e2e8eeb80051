"""The programs the tray app launches get no secret: the logs folder opens in the desktop's file
browser (here a stand-in ``xdg-open`` on PATH that writes down the environment it was given)
without EPOS_BRIDGE_API_KEY, without the proxy password, and without anything else holding a
form of either."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from epos_bridge.protocol.redaction import KnownSecrets, Redactor, proxy_secrets
from epos_bridge.ui.launch import open_link
from epos_bridge.ui.support import open_logs_folder
from tests.helpers.fake_opener import install_fake_opener

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="xdg-open is the Linux desktop's opener")

KEY = "sk_prod_fake_child_env_9f8e7d6c5b4a3210"
PROXY = "http://till:Fake-Proxy-Pass-42@proxy.venue.example:3128"


@pytest.fixture
def fake_opener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dump = install_fake_opener(tmp_path, monkeypatch, "opened.env", keep_argument=True)
    monkeypatch.setenv("EPOS_BRIDGE_API_KEY", KEY)
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("SOME_TOOL_TOKEN", base64.b64encode(f"Basic {KEY}".encode()).decode())
    return dump


def read_env(dump: Path) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in dump.read_text().split("\0") if item]
    return {name: value for name, value in pairs}


def test_the_logs_folder_opens_with_no_secret_in_the_childs_environment(
    qtbot: QtBot, tmp_path: Path, fake_opener: Path
) -> None:
    secrets = KnownSecrets([KEY, *proxy_secrets(PROXY)])
    logs = tmp_path / "logs"

    assert open_logs_folder(logs, secrets)
    qtbot.waitUntil(fake_opener.exists, timeout=10_000)

    child = read_env(fake_opener)
    assert Path(fake_opener.with_suffix(".env.arg").read_text()) == logs
    assert "EPOS_BRIDGE_API_KEY" not in child and "SOME_TOOL_TOKEN" not in child
    assert child["HTTPS_PROXY"] == "http://proxy.venue.example:3128"  # the proxy, not its password
    assert child["PATH"] == os.environ["PATH"]  # an ordinary environment otherwise
    scan = Redactor([KEY, *proxy_secrets(PROXY)])
    assert [f"{name}={value}" for name, value in child.items() if scan.contains_secret(f"{name}={value}")] == []


def test_only_web_links_are_opened(
    qtbot: QtBot, tmp_path: Path, fake_opener: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = KnownSecrets([KEY])

    assert not open_link("file:///etc/passwd", secrets)
    assert [r.getMessage() for r in caplog.records] == [
        "not opening 'file:///etc/passwd': only http and https links are opened"
    ]
    assert open_link("https://docs.dojo.tech", secrets)
    qtbot.waitUntil(fake_opener.exists, timeout=10_000)
    assert fake_opener.with_suffix(".env.arg").read_text() == "https://docs.dojo.tech"
    assert "EPOS_BRIDGE_API_KEY" not in read_env(fake_opener)
