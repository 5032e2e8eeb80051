"""How the UI looks where Qt's defaults are not enough: tone colours and larger type.

Till screens are read from a step away and at a glance: an outcome is green, red or amber, and
key text is drawn larger than Qt's default. One place, so a widget never spells a colour.
"""

from __future__ import annotations

from PySide6.QtGui import QFont

TONE_STYLES = {
    "idle": "color: #5f6368;",
    "progress": "color: palette(text);",
    "success": "color: #1b7f3b;",
    "failure": "color: #b3261e;",
    "warning": "color: #8a5a00;",
}
"""Text colour by tone: idle (a hint), progress, success, failure (an error), warning."""

HINT_STYLE = TONE_STYLES["idle"]
ERROR_STYLE = TONE_STYLES["failure"]

_OUTCOME_BOX = "QLabel {{ background: {}; color: {}; border: 2px solid {}; border-radius: 6px; padding: 10px; }}"
OUTCOME_STYLES = {
    "success": _OUTCOME_BOX.format("#e3f4e8", "#14532d", "#1b7f3b"),
    "failure": _OUTCOME_BOX.format("#fbe9e7", "#7f1d1d", "#b3261e"),
    "warning": _OUTCOME_BOX.format("#fff4dc", "#5c3d00", "#c98a00"),
}
"""A boxed outcome line ("Recorded on T12-0008", "Nothing was recorded") by tone."""


def scaled_font(base: QFont, factor: float, *, bold: bool = False) -> QFont:
    """``base`` drawn ``factor`` times larger (and bold if asked)."""
    font = QFont(base)
    font.setPointSizeF(font.pointSizeF() * factor)
    font.setBold(bold)
    return font
