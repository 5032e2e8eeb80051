"""The tray app's half of "one instance per user": a second launch brings the running window
forward and exits. The data-folder lock (:mod:`epos_bridge.host.instance`) decides who runs; this is
only the doorbell, a QLocalServer at :func:`epos_bridge.host.instance.new_raise_channel` (a socket in
a ``0700`` folder of this user, or a pipe with a random name and a this-user-only ACL)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

RAISE = b"raise\n"


class RaiseServer(QObject):
    """Listens on ``name``; every connection that says ``raise`` calls ``on_raise``."""

    def __init__(self, name: str, on_raise: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = name
        self._on_raise = on_raise
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        # The name is fresh each run, so there is nothing of a predecessor's to clear; removing
        # it anyway keeps listen() from failing on a leftover of ours.
        QLocalServer.removeServer(name)
        if not self.server.listen(name):
            log.warning("cannot listen for second launches on %s: %s", name, self.server.errorString())
        self.server.newConnection.connect(self._accept)

    def _accept(self) -> None:
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).startswith(RAISE.strip()):
            log.info("a second launch asked for this window: bringing it forward")
            self._on_raise()
        socket.disconnectFromServer()

    def close(self) -> None:
        """Stop listening; the socket file goes, and its folder too when nothing else is in it."""
        self.server.close()
        if os.sep in self._name:
            with contextlib.suppress(OSError):
                Path(self._name).parent.rmdir()


def ask_running_instance_to_raise(name: str, timeout_ms: int = 2000) -> bool:
    """True when the running tray app got the message (it then shows its window)."""
    _app = QCoreApplication.instance() or QCoreApplication([])  # sockets need a Qt application
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(timeout_ms):
        return False
    socket.write(RAISE)
    sent = socket.waitForBytesWritten(timeout_ms)
    socket.disconnectFromServer()
    return sent
