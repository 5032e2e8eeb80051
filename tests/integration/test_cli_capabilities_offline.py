"""``epos-bridge capabilities --offline``: what registration would send for an adapter and its
mapping, with no API key anywhere and no call to Dojo (an installer checking a new mapping)."""

from __future__ import annotations

from pathlib import Path

import pytest

from epos_bridge.adapters.sqlmap.mapping import SHIPPED, capabilities, load
from epos_bridge.cli import main


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EPOS_BRIDGE_API_KEY", raising=False)
    monkeypatch.setenv("EPOS_BRIDGE_ADAPTER", "sqlmap")
    monkeypatch.setenv("EPOS_BRIDGE_DB", str(tmp_path / "never-opened.db"))


def listed(out: str) -> list[str]:
    tail = out.split("(registration would send these):\n", 1)[1]
    return [line.strip() for line in tail.splitlines() if line.startswith("  ")]


def test_a_custom_mapping_shows_exactly_what_its_statements_implement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    start, end = text.index("\n[reservations]\n"), text.index("\n[venue]\n")
    custom = tmp_path / "no-bookings.toml"
    custom.write_text(text[:start] + text[end:], encoding="utf-8")
    monkeypatch.setenv("EPOS_BRIDGE_MAPPING", str(custom))

    assert main(["capabilities", "--offline"]) == 0
    out = capsys.readouterr().out
    expected = sorted(c.value for c in capabilities(load(str(custom))))
    assert listed(out) == expected
    assert "CreateReservation" not in expected and "RecordOrderPaymentById" in expected
    assert not (tmp_path / "never-opened.db").exists()


def test_a_broken_mapping_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\ndescription = "y"\ncurrency = "GBP"\nbogus = 1\n', encoding="utf-8")
    monkeypatch.setenv("EPOS_BRIDGE_MAPPING", str(broken))
    assert main(["capabilities", "--offline"]) == 2
    assert "bogus" in capsys.readouterr().err
