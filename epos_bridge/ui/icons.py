"""The bridge's own icons: one per connection state, an attention badge and the app icon.

Each state has its own shape *and* colour (Okabe-Ito palette), so staff who cannot tell the
colours apart still read the state: connected = disc with a check, connecting = square with
circular arrows, disconnected = ring with a slash, auth failed = triangle with "!". The badge
is an orange dot drawn over the state icon's top-right corner.

The SVGs live in ``resources/icons`` of the source tree; a PyInstaller bundle carries them as
``resources/icons`` under ``sys._MEIPASS``. They are rendered with QtSvg at several sizes
rather than left to the icon engine, so the tray gets crisp pixmaps on every desktop.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from epos_bridge.gateway.connection_state import ConnectionState

ICON_SIZES = (16, 20, 22, 24, 32, 48, 64, 128, 256)
APP_ICON = "app"
ATTENTION_BADGE = "attention"

STATE_ICONS: dict[ConnectionState, str] = {
    ConnectionState.CONNECTED: "connected",
    ConnectionState.CONNECTING: "connecting",
    ConnectionState.DISCONNECTED: "disconnected",
    ConnectionState.AUTH_FAILED: "auth_failed",
    ConnectionState.STALLED: "disconnected",  # connected but not answering: payments do not work
    ConnectionState.STOPPING: "disconnected",  # quitting: payments stop working, like disconnected
}


def state_icon_name(state: ConnectionState) -> str:
    """The icon file (without ``.svg``) that shows ``state``."""
    return STATE_ICONS[state]


def icon_key(state: ConnectionState, attention: bool) -> str:
    """What the tray currently shows, as a comparable string (``"connected"``, ``"connecting+attention"``)."""
    name = state_icon_name(state)
    return f"{name}+{ATTENTION_BADGE}" if attention else name


def icons_dir() -> Path:
    """Where the SVGs are: inside a PyInstaller bundle, or in the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / "resources" / "icons"
    return Path(__file__).resolve().parents[2] / "resources" / "icons"


class IconLibrary:
    """Renders and caches the bridge's icons. Create one after the QApplication and pass it on."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else icons_dir()
        self._renderers: dict[str, QSvgRenderer] = {}
        self._icons: dict[tuple[str, bool], QIcon] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.svg"

    def _renderer(self, name: str) -> QSvgRenderer:
        renderer = self._renderers.get(name)
        if renderer is None:
            path = self.path(name)
            renderer = QSvgRenderer(str(path))
            if not renderer.isValid():
                raise FileNotFoundError(f"icon {path} is missing or not a valid SVG")
            self._renderers[name] = renderer
        return renderer

    def pixmap(self, name: str, size: int, *, attention: bool = False) -> QPixmap:
        """``name`` drawn at ``size``×``size`` px, with the attention badge when asked."""
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._renderer(name).render(painter, QRectF(0, 0, size, size))
            if attention:
                badge = max(6.0, size * 0.45)
                self._renderer(ATTENTION_BADGE).render(painter, QRectF(size - badge, 0, badge, badge))
        finally:
            painter.end()
        return pixmap

    def icon(self, name: str, *, attention: bool = False) -> QIcon:
        key = (name, attention)
        icon = self._icons.get(key)
        if icon is None:
            icon = QIcon()
            for size in ICON_SIZES:
                icon.addPixmap(self.pixmap(name, size, attention=attention))
            self._icons[key] = icon
        return icon

    def state_icon(self, state: ConnectionState, *, attention: bool = False) -> QIcon:
        return self.icon(state_icon_name(state), attention=attention)

    def app_icon(self) -> QIcon:
        return self.icon(APP_ICON)
