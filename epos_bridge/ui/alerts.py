"""The banner across the status window that staff cannot miss: a card taken, not on the till.

It renders what the counter reports (``SessionUpdate.unrecorded_capture``) and nothing else:
one line per such payment, shown until the payment lands (or is refused, which the terminal
panel explains). It holds no rule; the counter decides, and the words are the notice's own
(:func:`epos_bridge.ui.words.capture_not_on_till_words`), so the banner and the notification agree.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QWidget

from epos_bridge.ui.text import PlainLabel
from epos_bridge.ui.words import capture_not_on_till_words

BANNER_STYLE = (
    "QLabel#captureAlert { background: #b00020; color: white; font-weight: bold; padding: 10px; border-radius: 4px; }"
)


class CaptureAlertBanner(PlainLabel):
    """Visible while at least one captured card payment is not on the till yet (plain text:
    amounts and terminal names come from outside)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setObjectName("captureAlert")
        self.setStyleSheet(BANNER_STYLE)
        self.setWordWrap(True)
        self.setAccessibleName("Card payment not on the till")
        self._lines: dict[str, str] = {}
        self.hide()

    def show_update(self, update: Any) -> None:
        if update.unrecorded_capture:
            self._lines[update.session_id] = capture_not_on_till_words(update)
        elif update.final:
            self._lines.pop(update.session_id, None)
        else:
            return
        self.setText("\n".join(self._lines.values()))
        self.setVisible(bool(self._lines))

    def lines(self) -> list[str]:
        return list(self._lines.values())
