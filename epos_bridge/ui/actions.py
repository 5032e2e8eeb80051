"""Menu actions made one way for the tray menu and the status window's menus."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, SignalInstance
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


def make_action(
    parent: QObject,
    name: str,
    slot: Callable[..., object] | SignalInstance,
    *,
    shortcut: str | None = None,
    to: QWidget | None = None,
) -> QAction:
    """An action named ``name`` (``&`` marks its mnemonic) that triggers ``slot``, added to
    ``to`` (a menu) when given; ``parent`` owns it, so it lives as long as the window or tray."""
    action = QAction(name, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    if to is not None:
        to.addAction(action)
    return action
