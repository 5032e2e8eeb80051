"""docs/security.md is linked from the README, covers what the issue asks of it, and every file it
cites exists (so the threat model cannot quietly drift from the code)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"


def test_the_readme_links_the_threat_model() -> None:
    assert "docs/security.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_it_names_the_assets_who_can_reach_them_and_the_installers_part() -> None:
    text = DOC.read_text(encoding="utf-8")
    for heading in ("## The assets", "## Who can reach what", "## What the installer must do"):
        assert heading in text
    for subject in ("API key", "Payments", "Customer data", "Dojo", "Other users", "The POS", "network"):
        assert subject in text, subject


def test_every_file_it_cites_exists() -> None:
    cited = set(re.findall(r"`([\w./-]+\.(?:py|md))`", DOC.read_text(encoding="utf-8")))
    assert cited
    missing = [name for name in cited if not (ROOT / name).exists() and not (ROOT / "epos_bridge" / name).exists()]
    assert missing == []
