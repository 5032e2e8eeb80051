"""The OS's word that the network changed (Wi-Fi back, cable plugged in, another network): the
gateway session checks its link at once instead of waiting out its backoff.

Qt's ``QNetworkInformation`` listens to the platform (NetworkManager, Windows' Network List
Manager, macOS' Network framework); where no backend loads, nothing is watched and the
session's own backoff and wake-up check still reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QNetworkInformation

log = logging.getLogger(__name__)


class NetworkWatch(QObject):
    """Calls ``on_change`` when the network comes back or the machine moves to another medium."""

    def __init__(self, on_change: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_change = on_change
        info: QNetworkInformation | None = QNetworkInformation.instance()
        if info is None and QNetworkInformation.loadDefaultBackend():
            info = QNetworkInformation.instance()
        self.info: QNetworkInformation | None = info
        if info is None:
            log.info("no network-change backend on this system: relying on the reconnect backoff")
            return
        info.reachabilityChanged.connect(self._reachability_changed)
        info.transportMediumChanged.connect(self._medium_changed)

    def close(self) -> None:
        """Stop listening (the bridge this watch serves is stopping); idempotent."""
        info, self.info = self.info, None
        if info is not None:
            info.reachabilityChanged.disconnect(self._reachability_changed)
            info.transportMediumChanged.disconnect(self._medium_changed)

    def _medium_changed(self, medium: QNetworkInformation.TransportMedium) -> None:
        self._changed(f"the network medium changed ({medium.name})")

    def _reachability_changed(self, reachability: QNetworkInformation.Reachability) -> None:
        if reachability != QNetworkInformation.Reachability.Disconnected:
            self._changed(f"the network is reachable again ({reachability.name})")

    def _changed(self, why: str) -> None:
        log.info("%s: checking the Dojo connection now", why)
        self._on_change()
