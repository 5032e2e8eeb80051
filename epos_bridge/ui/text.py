"""Text from outside (Dojo, the POS, error messages) is shown as text, never as markup.

A ``QLabel`` guesses: anything that looks like HTML (``Qt.mightBeRichText``) is rendered as rich
text, so an order reference of ``<img src=…>`` or a terminal message with ``<a href=…>`` would be
drawn as an image or a link on the till. Every label in the UI is a :class:`PlainLabel`, and a
tooltip that carries outside words goes through :func:`plain_tooltip`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGui
from PySide6.QtWidgets import QLabel, QWidget


class PlainLabel(QLabel):
    """A label that always renders its text literally (``Qt.PlainText``)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)


def plain_tooltip(text: str) -> str:
    """A tooltip showing ``text`` literally: tooltips, too, render anything that looks like HTML.
    No text, no tooltip (Qt would otherwise show an empty ``<p>``)."""
    if not text.strip():
        return ""
    return str(QtGui.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal))
